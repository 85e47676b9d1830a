/**
 * `rediffuse/core`: the sampling core, dependency-free TypeScript on Float32Array/Float64Array with
 * no Node API (browser-safe). Noise schedules and timestep grids, the solver suite, PFDiff,
 * classifier-free guidance, FRDiff feature reuse and Auto-FR, seeded noise, closed-form reference
 * models, and the one entry point {@link sample}.
 *
 * The list below is the public surface (docs/api.md); everything else in `src/core/` is internal —
 * solver updates, step plans and option validators may change without notice.
 * @packageDocumentation
 */

// tensors, noise and the model interface
export type { NumArray } from './tensor.js';
export { Rng, seedForSample, gaussianBatch } from './rng.js';
export {
  sampleSize,
  modelCallAt,
  type Conditioning,
  type ConditioningInput,
  type DiffusionModel,
  type ModelCall,
  type ModelCallOptions,
  type PredictionType,
} from './model.js';
export { now } from './clock.js';
export { median, timeInterleaved, TIMING_WARMUP_ROUNDS, type InterleavedTiming } from './timing.js';
export { convertPrediction, type Prediction } from './prediction.js';
export { edmPreconditionedModel, type EdmPreconditioningOptions } from './edm-preconditioning.js';

// schedules and timestep grids
export {
  CLEAN_TIME,
  veSigma,
  timeOfVeSigma,
  hasCleanEnd,
  discreteSchedule,
  scheduleFromBetas,
  makeBetas,
  rescaleZeroTerminalSnr,
  continuousVpSchedule,
  edmSchedule,
  fromSchedulerConfig,
  SUPPORTED_SCHEDULER_CLASSES,
  resolveSamplerName,
  type ResolvedSampler,
  type ConfigSampleOptions,
  type FractionalTimeOptions,
  type NoiseSchedule,
  type BetaScheduleName,
  type DiscreteSchedule,
  type DiscreteScheduleOptions,
  type ContinuousVpOptions,
  type EdmSchedule,
  type EdmScheduleOptions,
  type SchedulerClassName,
  type SchedulerConfig,
  type ThresholdingConfig,
} from './schedule/index.js';
// flow matching (rectified flow: SD3, FLUX)
export {
  flowSchedule,
  isFlowSchedule,
  flowShift,
  flowTimeShift,
  flowDynamicShiftMu,
  flowMatchSigmas,
  flowSigmasDpm,
  type DynamicShiftOptions,
  type FlowGridRequest,
  type FlowMatchSigmaOptions,
  type FlowModelTimes,
  type FlowSchedule,
  type FlowScheduleOptions,
  type FlowTimeShiftType,
} from './schedule/index.js';
export { gaussianFlowModel, type GaussianFlowModel, type GaussianFlowModelOptions } from './reference-flow-model.js';
export {
  buildTimesteps,
  gridEndsClean,
  MAX_GRID_STEPS,
  TimestepCountError,
  TIMESTEP_SPACINGS,
  TIMESTEP_FAMILIES,
  type TimestepSpacing,
  type TimestepFamily,
  type TimestepTerminal,
  type TimestepOptions,
  type AysModel,
  type AysDomain,
} from './timesteps.js';

// solvers: by name through the registry; the spec and context types are what a new solver implements
export { getSolver, listSolvers, defineSolver, DEFAULT_NFE } from './solvers/index.js';
export type {
  GridFamily,
  Solver,
  SolverContext,
  SolverSpec,
  SolverPlan,
  PlanRequest,
  PfdiffPlanInfo,
  PfdiffVariant,
  SolverDefinition,
  SolverCost,
  StepFunction,
  StepArgs,
  StepResult,
  RunInfo,
  OptionRule,
  OptionRules,
  OptionSchema,
  SolverName,
  SolverOptionsMap,
  SolverOptionsOf,
  StepInfo,
  DdimOptions,
  Dpmpp1Options,
  DdpmOptions,
  PlmsOptions,
  EulerOptions,
  EulerAncestralOptions,
  HeunOptions,
  LmsOptions,
  SinglestepOptions,
  DpmppMultistepOptions,
  Dpmpp2mSdeOptions,
  Dpmpp3mOptions,
  DeisOptions,
  Dpm2Options,
  Dpm2AncestralOptions,
  IpndmOptions,
  LcmOptions,
  TcdOptions,
  DpmppSdeOptions,
  Dpmpp2sAncestralOptions,
  UniPcOptions,
} from './solvers/index.js';
export type { DynamicThresholding } from './solver-context.js';
export { SOLVER_NOISE_SALT } from './solver-context.js';

// sampling, guidance, reference models
export { sample, planSample, MAX_SEED, type PfdiffSettings, type SampleOptions, type SampleResult } from './sample.js';
export { classifierFreeGuidance, concatConditioning, MAX_GUIDANCE_SCALE, type GuidanceOptions } from './guidance.js';
export {
  gaussianModel,
  gaussianMixtureModel,
  REFERENCE_SCHEDULER_CONFIG,
  type GaussianModel,
  type GaussianModelOptions,
  type GaussianMixtureOptions,
  type MixtureComponent,
} from './reference-models.js';

// PFDiff
export {
  PFDIFF_CONFIGS,
  PFDIFF_QUANTITIES,
  FIRST_ORDER_BASES,
  SINGLESTEP_BASES,
  MULTISTEP_BASES,
  ADAMS_BASES,
  pickBestKH,
  pfdiff,
  pfdiffVariant,
  parseKH,
  formatKH,
  type PfdiffKH,
  type PfdiffQuantity,
  type FirstOrderBase,
  type SinglestepBase,
  type MultistepBase,
  type AdamsBase,
  type KHScore,
  type PickKHOptions,
  type PickKHResult,
} from './pfdiff/index.js';

// FRDiff: keyframe policies, score mixing, the feature-reuse wrapper, Auto-FR
export {
  DEFAULT_SCORE_MIXING,
  mixingWeight,
  validateScoreMixing,
  uniformKeyframes,
  uniformPolicy,
  callKind,
  countCalls,
  validateReusePolicy,
  withFeatureReuse,
  plannedCalls,
  planCalls,
  layoutReusePolicy,
  type KeyframeChoice,
  type ReuseChoice,
  type ScoreMixing,
  type CallKind,
  type ReusePolicy,
  type FeatureReuseCapable,
  type FeatureReuseModel,
  type FeatureReuseOptions,
  type ReuseStats,
} from './frdiff/index.js';
export {
  searchReusePolicy,
  policyCost,
  intervalBudget,
  measureCallCost,
  type MeasuredCallCost,
  type AutoFrLogEntry,
  type AutoFrOptions,
  type AutoFrResult,
  type PointsCost,
} from './frdiff/autofr.js';
export { createPolicyObjective, fullComputeSamples, pointsKey, type PolicyEvaluation, type PolicyObjectiveOptions } from './frdiff/policy-objective.js';
// Feature forecasting and adaptive recompute for feature reuse
export {
  forecastFeature,
  forecastWeights,
  forecastTimeOf,
  forecastOrderFor,
  maxForecastOrder,
  validateForecastConfig,
  FORECAST_ORDERS,
  FORECAST_TIMES,
  type FeatureForecastConfig,
  type ForecastOrder,
  type ForecastTime,
} from './frdiff/feature-forecast.js';
export {
  withAdaptiveReuse,
  RecomputeDecider,
  relativeL1Change,
  validateAdaptiveRecompute,
  type AdaptiveRecompute,
  type RecomputeAccumulation,
  type AdaptiveReuseCapable,
  type AdaptiveReuseStats,
  type AdaptiveReuseOptions,
  type AdaptiveReuseModel,
} from './frdiff/adaptive-policy.js';
export {
  cacheConfigChoice,
  enumerateCacheConfigs,
  type FeatureCacheConfig,
  type UniformCacheConfig,
  type AdaptiveCacheConfig,
  type PolicyCacheConfig,
  type CacheConfigChoice,
  type CacheSearchSpace,
} from './frdiff/cache-config.js';
