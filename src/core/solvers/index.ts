/**
 * The solver suite: the interface, the registry and every solver with its spec and reusable updates.
 * @packageDocumentation
 */
export type { GridFamily, Solver, SolverContext, SolverSpec, StepInfo } from './types.js';
export { getSolver, listSolvers, solverRegistry } from './registry.js';
export { checkTimesteps, maxStepsWithin, resolveOptions, type OptionRule, type OptionRules } from './validation.js';
export { ddimNoiseScale, ddimSpec, ddimTransfer, type DdimOptions } from './ddim.js';
export { dpmpp1Spec, dpmpp1Transfer, type Dpmpp1Options } from './dpmpp-1.js';
export { ddpmSpec, type DdpmOptions } from './ddpm.js';
export { plmsSpec, type PlmsOptions } from './plms.js';
export { eulerSpec, veEulerStep, type EulerOptions } from './euler.js';
export { ancestralSplit, eulerAncestralSpec, type EulerAncestralOptions } from './euler-ancestral.js';
export { heunSpec, type HeunOptions } from './heun.js';
export { lmsCoefficients, lmsSpec, type LmsOptions } from './lms.js';
// ── higher-order solvers (DPM-Solver, DPM-Solver++, UniPC): exports go here ──
