/** FRDiff: feature-reuse policies, score mixing and the feature-reuse model wrapper. @packageDocumentation */
export * from './score-mixing.js';
export * from './reuse-policy.js';
export * from './feature-reuse-model.js';
export * from './planned-calls.js';
