/** FRDiff: feature-reuse policies, score mixing, the feature-reuse model wrapper, feature forecasting and adaptive recompute. @packageDocumentation */
export * from './score-mixing.js';
export * from './reuse-policy.js';
export * from './feature-reuse-model.js';
export * from './planned-calls.js';
export * from './feature-forecast.js';
export * from './adaptive-policy.js';
export * from './cache-config.js';
