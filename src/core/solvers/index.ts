/**
 * The solver suite: the interface, `defineSolver`, the option rules, the registry and every solver
 * with its spec and reusable updates.
 * @packageDocumentation
 */
export type { GridFamily, PfdiffPlanInfo, PfdiffVariant, PlanRequest, Solver, SolverContext, SolverPlan, SolverSpec, StepInfo } from './types.js';
export {
  checkTimesteps,
  defineSolver,
  DEFAULT_NFE,
  type RunInfo,
  type SolverCost,
  type SolverDefinition,
  type StepArgs,
  type StepFunction,
  type StepResult,
} from './define-solver.js';
export { describeRule, resolveOptions, type OptionRule, type OptionRules, type OptionSchema } from './options.js';
export type { SolverName, SolverOptionsMap, SolverOptionsOf } from './solver-options.js';
export { getSolver, listSolvers, solverRegistry } from './registry.js';
export { ddimNoiseScale, ddimSpec, ddimTransfer, type DdimOptions } from './ddim.js';
export { dpmpp1Spec, dpmpp1Transfer, type Dpmpp1Options } from './dpmpp-1.js';
export { ddpmSpec, type DdpmOptions } from './ddpm.js';
export { plmsSpec, type PlmsOptions } from './plms.js';
export { eulerSpec, veEulerStep, type EulerOptions } from './euler.js';
export { ancestralSplit, eulerAncestralSpec, type EulerAncestralOptions } from './euler-ancestral.js';
export { heunSpec, type HeunOptions } from './heun.js';
export { lmsCoefficients, lmsSpec, type LmsOptions } from './lms.js';
export { dataStepCoefficient, lambdaStep, noiseStepCoefficient, phi, type LambdaStep } from './exponential-integrator.js';
export { stepPlanForCalls, singlestepOrders, type SinglestepOptions } from './singlestep-plan.js';
export { dpmSolver1Spec, dpmSolver2Spec, dpmSolver3Spec, dpmSolverUpdate } from './dpm-solver.js';
export { dpmpp2sSpec, dpmpp3sSpec, dpmppSinglestepUpdate } from './dpmpp-singlestep.js';
export { dpmpp2mSpec, dpmpp3mSpec, dpmppMultistepUpdate, multistepOrder, type Dpmpp3mOptions, type DpmppMultistepOptions } from './dpmpp-multistep.js';
export { dpmpp2mSdeSpec, type Dpmpp2mSdeOptions } from './dpmpp-2m-sde.js';
export { unipcSpec, type UniPcOptions } from './unipc.js';
export { deisCoefficients, deisSpec, type DeisOptions } from './deis.js';
export { dpm2AncestralSpec, dpm2Spec, type Dpm2AncestralOptions, type Dpm2Options } from './kdpm2.js';
export { IPNDM_WEIGHTS, ipndmSpec, type IpndmOptions } from './ipndm.js';
export { ipndmVSpec, variableStepWeights } from './ipndm-v.js';
export { lcmScalings, lcmSpec, type LcmOptions } from './lcm.js';
export { tcdSpec, type TcdOptions } from './tcd.js';
export { dpmppSdeSpec, type DpmppSdeOptions } from './dpmpp-sde.js';
export { dpmpp2sAncestralSpec, type Dpmpp2sAncestralOptions } from './dpmpp-2s-ancestral.js';
