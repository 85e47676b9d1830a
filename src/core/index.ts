/**
 * The sampling core of rediffuse: dependency-free TypeScript on Float32Array/Float64Array, no Node
 * API. Noise schedules and timestep grids, the solver suite, PFDiff, classifier-free guidance,
 * seeded noise, closed-form reference models, and the one entry point {@link sample}.
 * @packageDocumentation
 */
export * from './tensor.js';
export * from './rng.js';
export * from './model.js';
export * from './prediction.js';
export * from './schedule/index.js';
export * from './timesteps.js';
export * from './solver-context.js';
export * from './solvers/index.js';
export * from './reference-models.js';
export * from './guidance.js';
export * from './pfdiff/index.js';
export * from './sample.js';
export * from './frdiff/index.js';
export * from './pfdiff/kh.js';
export * from './timing.js';
