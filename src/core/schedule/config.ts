/**
 * Read a diffusers `scheduler_config.json` (already parsed) as it is, and map it onto rediffuse:
 * the noise schedule, the prediction type, the registry solver with its options, and the timestep
 * grid options for {@link buildTimesteps}.
 *
 * Missing fields take the defaults of the named diffusers class (e.g. DDIM: `clip_sample=True`,
 * `set_alpha_to_one=True`, `timestep_spacing="leading"`; PNDM: `set_alpha_to_one=False`), so a
 * config behaves as it does in diffusers. Fields we do not interpret are kept in `unknownFields`.
 * @packageDocumentation
 */
import type { PredictionType } from '../model.js';
import { buildTimesteps, type TimestepFamily, type TimestepOptions, type TimestepSpacing, type TimestepTerminal } from '../timesteps.js';
import { discreteSchedule, type BetaScheduleName, type DiscreteSchedule } from './discrete.js';
import { edmSchedule, type EdmSchedule } from './edm.js';
import { CLEAN_TIME } from './noise-schedule.js';
import {
  flowDynamicShiftMu,
  flowMatchSigmas,
  flowSchedule,
  flowShift,
  type FlowMatchSigmaOptions,
  type FlowSchedule,
  type FlowTimeShiftType,
} from './flow.js';

/** The diffusers scheduler classes {@link fromSchedulerConfig} understands. */
export const SUPPORTED_SCHEDULER_CLASSES = [
  'DDIMScheduler',
  'DDPMScheduler',
  'PNDMScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'HeunDiscreteScheduler',
  'LMSDiscreteScheduler',
  'DPMSolverMultistepScheduler',
  'DPMSolverSinglestepScheduler',
  'UniPCMultistepScheduler',
  'DEISMultistepScheduler',
  'LCMScheduler',
  'TCDScheduler',
  'KDPM2DiscreteScheduler',
  'KDPM2AncestralDiscreteScheduler',
  'DPMSolverSDEScheduler',
  'EDMEulerScheduler',
  'FlowMatchEulerDiscreteScheduler',
] as const;

/** One of {@link SUPPORTED_SCHEDULER_CLASSES}. */
export type SchedulerClassName = (typeof SUPPORTED_SCHEDULER_CLASSES)[number];

/** Dynamic thresholding (Saharia et al. 2022, Imagen §2.3): clip x̂0 at the `ratio` quantile of |x̂0|, at most `maxValue`. */
export interface ThresholdingConfig {
  /** diffusers' `dynamic_thresholding_ratio` (default 0.995). */
  ratio: number;
  /** diffusers' `sample_max_value` (default 1.0). */
  maxValue: number;
}

/** What {@link fromSchedulerConfig} reads out of a scheduler config. */
export interface SchedulerConfig {
  /** The diffusers class the config names. */
  className: SchedulerClassName;
  /**
   * The noise schedule built from the beta fields (float64); for `EDMEulerScheduler` the EDM schedule;
   * for `FlowMatchEulerDiscreteScheduler` and the `use_flow_sigmas` DPM-Solver / UniPC configs the
   * rectified-flow schedule (time t = σ, network time σ·T).
   */
  schedule: DiscreteSchedule | EdmSchedule | FlowSchedule;
  /**
   * Set for `EDMEulerScheduler`: the network is an EDM network F, to be wrapped with
   * `edmPreconditionedModel(network, { sigmaData })` (c_in, c_skip, c_out; the sign of c_out from
   * `prediction_type`) before sampling.
   */
  preconditioning?: { kind: 'edm'; sigmaData: number };
  /** `prediction_type` (default `epsilon`; diffusers' `flow_prediction` is `flow`). */
  predictionType: PredictionType;
  /** Our registry solver name. */
  solver: string;
  /** Options for that solver, in our option names (e.g. `eta`, `lowerOrderFinal`, `variant`). */
  solverOptions: Record<string, unknown>;
  /** Grid spacing: `timestep_spacing`, or `karras` / `exponential` / `beta` / `logSNR` when the config asks for those sigmas. */
  spacing: TimestepSpacing;
  /** The formula family of the class for `leading` / `trailing` / `linspace`. */
  family: TimestepFamily;
  /** `steps_offset` (default 0). */
  stepsOffset: number;
  /** From `set_alpha_to_one` (DDIM/PNDM) or `final_sigmas_type` (DPM-Solver, UniPC, Euler). */
  terminal: TimestepTerminal;
  /** `clip_sample`: clamp x̂0 to ±clipSampleRange. */
  clipSample: boolean;
  /** `clip_sample_range` (default 1). */
  clipSampleRange: number;
  /** Set when `thresholding` is true. */
  thresholding?: ThresholdingConfig;
  /** `use_karras_sigmas`. */
  karras: boolean;
  /** `rescale_betas_zero_snr`. */
  rescaleBetasZeroSnr: boolean;
  /** `timestep_spacing` exactly as written (undefined when absent). */
  timestepSpacing?: string;
  /** `sigma_min` / `sigma_max` overrides for sigma spacings, when the config has them. */
  sigmaMin?: number;
  sigmaMax?: number;
  /** The grid options to pass, with `steps`, to {@link buildTimesteps}. */
  timestepOptions: Omit<TimestepOptions, 'steps'>;
  /** `_diffusers_version`, when present. */
  diffusersVersion?: string;
  /** Where the mapping is not exact (unsupported fields or variants), in words. */
  notes: string[];
  /** Fields we do not interpret, kept as they were. */
  unknownFields: Record<string, unknown>;
  /**
   * The {@link sample} options that reproduce diffusers' `set_timesteps(numInferenceSteps)` and
   * its loop: solver, solver options, grid, and the budget (`steps` or `nfe`, as the class counts
   * `num_inference_steps`). Flow configs with `use_dynamic_shifting` need the image's latent
   * sequence length (or μ itself) in `flow`.
   */
  sampleOptions(numInferenceSteps: number, flow?: FlowGridRequest): ConfigSampleOptions;
}

/**
 * What a flow-matching grid may need from the caller: diffusers' pipelines pass μ to
 * `set_timesteps` under `use_dynamic_shifting`, computed from the image's latent sequence length
 * (SD3/FLUX: (H/8/2)·(W/8/2) patch tokens) by `calculate_shift`.
 */
export interface FlowGridRequest {
  /** Latent tokens of the image: μ = calculate_shift(imageSeqLen) from the config's base/max fields. */
  imageSeqLen?: number;
  /** μ itself (wins over `imageSeqLen`). */
  mu?: number;
}

/** What {@link SchedulerConfig.sampleOptions} returns: spread it into `sample({ model, ...it })`. */
export interface ConfigSampleOptions {
  schedule: DiscreteSchedule | EdmSchedule | FlowSchedule;
  solver: string;
  solverOptions: Record<string, unknown>;
  steps?: number;
  nfe?: number;
  timesteps: Omit<TimestepOptions, 'steps'>;
  clipSample?: number;
  thresholding?: ThresholdingConfig;
}

type Json = Record<string, unknown>;

/** Fields of diffusers scheduler configs this loader reads (or knowingly ignores). */
const KNOWN_FIELDS = new Set([
  '_class_name',
  '_diffusers_version',
  'num_train_timesteps',
  'beta_start',
  'beta_end',
  'beta_schedule',
  'trained_betas',
  'rescale_betas_zero_snr',
  'prediction_type',
  'timestep_spacing',
  'steps_offset',
  'set_alpha_to_one',
  'final_sigmas_type',
  'clip_sample',
  'clip_sample_range',
  'thresholding',
  'dynamic_thresholding_ratio',
  'sample_max_value',
  'use_karras_sigmas',
  'use_exponential_sigmas',
  'use_beta_sigmas',
  'use_lu_lambdas',
  'sigma_min',
  'sigma_max',
  'algorithm_type',
  'solver_order',
  'solver_type',
  'lower_order_final',
  'euler_at_final',
  'disable_corrector',
  'predict_x0',
  'variance_type',
  'skip_prk_steps',
  'interpolation_type',
  'timestep_type',
  'lambda_min_clipped',
  'original_inference_steps',
  'timestep_scaling',
  'sigma_data',
  'sigma_schedule',
  'rho',
  'use_flow_sigmas',
  'flow_shift',
]);

/** Fields of `FlowMatchEulerDiscreteScheduler` configs this loader reads (or refuses by value). */
const FLOW_MATCH_FIELDS = new Set([
  '_class_name',
  '_diffusers_version',
  'num_train_timesteps',
  'shift',
  'use_dynamic_shifting',
  'base_shift',
  'max_shift',
  'base_image_seq_len',
  'max_image_seq_len',
  'invert_sigmas',
  'shift_terminal',
  'use_karras_sigmas',
  'use_exponential_sigmas',
  'use_beta_sigmas',
  'time_shift_type',
  'stochastic_sampling',
]);

const BETA_SCHEDULES: readonly BetaScheduleName[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2'];
/** `prediction_type` as diffusers writes it, with `flow_prediction` (velocity ε − x0) for our `flow`. */
const CONFIG_PREDICTION_TYPES = ['epsilon', 'sample', 'v_prediction', 'flow_prediction'] as const;

function readPredictionType(c: Json): PredictionType {
  const v = readChoice(c, 'prediction_type', 'epsilon', CONFIG_PREDICTION_TYPES);
  return v === 'flow_prediction' ? 'flow' : v;
}
const SPACINGS = ['leading', 'trailing', 'linspace'] as const;

function configError(field: string, problem: string, fix: string): Error {
  return new Error(`scheduler config: field "${field}" ${problem}; ${fix}`);
}

function describe(v: unknown): string {
  return typeof v === 'string' ? `"${v}"` : Array.isArray(v) ? 'an array' : v === null ? 'null' : `${typeof v} ${String(v)}`;
}

/** Typed readers: an absent or null field gives the fallback; a wrong type throws naming the field. */
function readNumber(c: Json, key: string, fallback: number): number {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw configError(key, `must be a finite number, got ${describe(v)}`, `write e.g. "${key}": ${fallback}`);
  return v;
}

/** A number field that may also be ±Infinity (JSON writes diffusers' `-inf` default as `-Infinity` or null). */
function readNumberOrInfinity(c: Json, key: string): number | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (v === '-inf' || v === '-Infinity') return -Infinity;
  if (typeof v !== 'number' || Number.isNaN(v)) throw configError(key, `must be a number, got ${describe(v)}`, `write e.g. "${key}": -5.1, or null`);
  return v;
}

function readInteger(c: Json, key: string, fallback: number, min: number): number {
  const v = readNumber(c, key, fallback);
  if (!Number.isInteger(v) || v < min) throw configError(key, `must be an integer ≥ ${min}, got ${v}`, `write e.g. "${key}": ${fallback}`);
  return v;
}

function readBoolean(c: Json, key: string, fallback: boolean): boolean {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw configError(key, `must be true or false, got ${describe(v)}`, `write "${key}": ${fallback}`);
  return v;
}

function readChoice<T extends string>(c: Json, key: string, fallback: T, choices: readonly T[]): T {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw configError(key, `must be one of ${choices.map((s) => `"${s}"`).join(', ')}, got ${describe(v)}`, `use one of those`);
  }
  return v as T;
}

/** The classes whose set_timesteps clips the grid at `lambda_min_clipped`. */
const CLIPPING_CLASSES: ReadonlySet<SchedulerClassName> = new Set(['DPMSolverMultistepScheduler', 'DPMSolverSinglestepScheduler']);

/** Per-class defaults that differ between diffusers schedulers. */
interface ClassDefaults {
  family: TimestepFamily;
  spacing: (typeof SPACINGS)[number];
  clipSample: boolean;
  setAlphaToOne?: boolean;
  /** The `final_sigmas_type` default where the class has one other than "zero". */
  finalSigmas?: TimestepTerminal;
}

const CLASS_DEFAULTS: Record<SchedulerClassName, ClassDefaults> = {
  DDIMScheduler: { family: 'ddim', spacing: 'leading', clipSample: true, setAlphaToOne: true },
  DDPMScheduler: { family: 'ddim', spacing: 'leading', clipSample: true },
  PNDMScheduler: { family: 'ddim', spacing: 'leading', clipSample: false, setAlphaToOne: false },
  EulerDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  EulerAncestralDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  HeunDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  LMSDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  DPMSolverMultistepScheduler: { family: 'dpm', spacing: 'linspace', clipSample: false },
  DPMSolverSinglestepScheduler: { family: 'dpm', spacing: 'linspace', clipSample: false },
  UniPCMultistepScheduler: { family: 'dpm', spacing: 'linspace', clipSample: false },
  // DEIS ends its sigmas at σ(t = 0), not 0.
  DEISMultistepScheduler: { family: 'dpm', spacing: 'linspace', clipSample: false, finalSigmas: 'sigma_min' },
  // LCM's set_timesteps ignores timestep_spacing: its own grid (the `lcm` spacing).
  LCMScheduler: { family: 'ddim', spacing: 'leading', clipSample: false, setAlphaToOne: true },
  TCDScheduler: { family: 'ddim', spacing: 'leading', clipSample: false, setAlphaToOne: true },
  KDPM2DiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  KDPM2AncestralDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  DPMSolverSDEScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  // Its own σ grid (karras or exponential between sigma_min and sigma_max), see edmSchedulerConfig.
  EDMEulerScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
  // Its own σ grid, see flowMatchSchedulerConfig.
  FlowMatchEulerDiscreteScheduler: { family: 'euler', spacing: 'linspace', clipSample: false },
};

/**
 * Map a parsed diffusers `scheduler_config.json` onto rediffuse (see {@link SchedulerConfig}).
 * Throws when `_class_name` is missing or unsupported (listing the supported classes), or when a
 * field has the wrong type or an unknown value (naming the field).
 */
export function fromSchedulerConfig(json: unknown): SchedulerConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('scheduler config: expected a JSON object (the parsed scheduler_config.json)');
  }
  const c = json as Json;
  const cls = c['_class_name'];
  if (typeof cls !== 'string' || !(SUPPORTED_SCHEDULER_CLASSES as readonly string[]).includes(cls)) {
    throw configError(
      '_class_name',
      cls === undefined ? 'is missing' : `names an unsupported scheduler ${describe(cls)}`,
      `use one of ${SUPPORTED_SCHEDULER_CLASSES.join(', ')}`,
    );
  }
  const className = cls as SchedulerClassName;
  if (className === 'EDMEulerScheduler') return edmSchedulerConfig(c);
  if (className === 'FlowMatchEulerDiscreteScheduler') return flowMatchSchedulerConfig(c);
  const defaults = CLASS_DEFAULTS[className];
  const notes: string[] = [];

  // --- schedule -----------------------------------------------------------------------------------
  const numTrainTimesteps = readInteger(c, 'num_train_timesteps', 1000, 2);
  const trainedBetasRaw = c['trained_betas'];
  let trainedBetas: number[] | undefined;
  if (trainedBetasRaw !== undefined && trainedBetasRaw !== null) {
    if (!Array.isArray(trainedBetasRaw) || !trainedBetasRaw.every((b) => typeof b === 'number' && Number.isFinite(b))) {
      throw configError('trained_betas', 'must be an array of numbers', 'write the betas as a JSON array, or null');
    }
    trainedBetas = trainedBetasRaw as number[];
  }
  const betaSchedule = readChoice<BetaScheduleName>(c, 'beta_schedule', 'linear', BETA_SCHEDULES);
  const rescaleBetasZeroSnr = readBoolean(c, 'rescale_betas_zero_snr', false);
  const betaOptions = {
    numTrainTimesteps: trainedBetas ? trainedBetas.length : numTrainTimesteps,
    betaStart: readNumber(c, 'beta_start', 0.0001),
    betaEnd: readNumber(c, 'beta_end', 0.02),
    betaSchedule: trainedBetas ? ('trained_betas' as const) : betaSchedule,
    trainedBetas,
    rescaleBetasZeroSnr,
  };
  const predictionType = readPredictionType(c);
  const flowSigmas = readBoolean(c, 'use_flow_sigmas', false);
  if (flowSigmas && className !== 'DPMSolverMultistepScheduler' && className !== 'UniPCMultistepScheduler') {
    throw configError(
      'use_flow_sigmas',
      `is true, but ${className} has no flow-sigma grid in diffusers`,
      'use it with DPMSolverMultistepScheduler or UniPCMultistepScheduler',
    );
  }
  if (predictionType === 'flow' && !flowSigmas) {
    throw configError(
      'prediction_type',
      `is "flow_prediction" on a VP beta schedule (diffusers converts it with x0 = x − σ·v, which holds on the rectified-flow path only)`,
      'set "use_flow_sigmas": true (with "flow_shift") for a flow-matching model, or use FlowMatchEulerDiscreteScheduler',
    );
  }

  // --- grid ---------------------------------------------------------------------------------------
  const rawSpacing = c['timestep_spacing'];
  if (rawSpacing !== undefined && rawSpacing !== null && typeof rawSpacing !== 'string') {
    throw configError('timestep_spacing', `must be a string, got ${describe(rawSpacing)}`, 'use "leading", "trailing" or "linspace"');
  }
  let spacing: TimestepSpacing = readChoice(c, 'timestep_spacing', defaults.spacing, SPACINGS);
  const stepsOffset = readInteger(c, 'steps_offset', 0, 0);
  const karras = readBoolean(c, 'use_karras_sigmas', false);
  const exponential = readBoolean(c, 'use_exponential_sigmas', false);
  const betaSigmas = readBoolean(c, 'use_beta_sigmas', false);
  if (karras && exponential) {
    throw configError('use_exponential_sigmas', 'is true together with use_karras_sigmas', 'set at most one of them');
  }
  if (betaSigmas && (karras || exponential)) {
    throw configError('use_beta_sigmas', `is true together with ${karras ? 'use_karras_sigmas' : 'use_exponential_sigmas'}`, 'set at most one of them');
  }
  if (karras) spacing = 'karras';
  else if (exponential) spacing = 'exponential';
  // Beta sampling (Lee et al. 2024): σ at the Beta(0.6, 0.6) quantiles between the schedule's σ ends.
  else if (betaSigmas) spacing = 'beta';
  if (readBoolean(c, 'use_lu_lambdas', false)) {
    spacing = 'logSNR';
    notes.push('use_lu_lambdas: mapped to the logSNR spacing (uniform in λ between the schedule ends)');
  }
  const sigmaMinRaw = c['sigma_min'];
  const sigmaMaxRaw = c['sigma_max'];
  const sigmaMin = sigmaMinRaw === undefined || sigmaMinRaw === null ? undefined : readNumber(c, 'sigma_min', 0);
  const sigmaMax = sigmaMaxRaw === undefined || sigmaMaxRaw === null ? undefined : readNumber(c, 'sigma_max', 0);

  let terminal: TimestepTerminal;
  if (defaults.setAlphaToOne !== undefined) {
    // DDIM/PNDM: the step after the last grid point uses ᾱ = 1 (clean) or ᾱ_0 (time 0).
    terminal = readBoolean(c, 'set_alpha_to_one', defaults.setAlphaToOne) ? 'zero' : 'sigma_min';
  } else if (className === 'DDPMScheduler') {
    terminal = 'zero';
  } else {
    terminal = readChoice<TimestepTerminal>(c, 'final_sigmas_type', defaults.finalSigmas ?? 'zero', ['zero', 'sigma_min']);
  }

  // --- fractional times (see discrete.ts): the Euler family interpolates σ/α linearly; the DPM
  // family hands the network rounded times on sigma-spaced grids. ---
  // On sigma-spaced grids (Karras, exponential, Lu's λ) diffusers maps each σ to its time by
  // `_sigma_to_t` (log σ), so those grids keep the log-σ schedule; the DPM family then rounds the
  // time handed to the network.
  const eulerFamily = defaults.family === 'euler';
  const sigmaSpaced = spacing === 'karras' || spacing === 'exponential' || spacing === 'beta' || spacing === 'logSNR';
  const schedule = discreteSchedule({
    ...betaOptions,
    ...(eulerFamily && !sigmaSpaced ? { sigmaInterpolation: 'linear' as const } : {}),
    ...(!eulerFamily && sigmaSpaced ? { roundModelTimes: true } : {}),
  });

  // --- x̂0 post-processing ---------------------------------------------------------------------
  const clipSample = readBoolean(c, 'clip_sample', defaults.clipSample);
  const clipSampleRange = readNumber(c, 'clip_sample_range', 1);
  const thresholding = readBoolean(c, 'thresholding', false)
    ? { ratio: readNumber(c, 'dynamic_thresholding_ratio', 0.995), maxValue: readNumber(c, 'sample_max_value', 1) }
    : undefined;

  // --- solver -------------------------------------------------------------------------------------
  const { solver, solverOptions } = mapSolver(className, c, notes);
  // diffusers' Euler family: init_noise_sigma = σ_max for linspace/trailing, √(σ_max² + 1) (the VP start z) for leading.
  const spacingName = typeof rawSpacing === 'string' ? rawSpacing : defaults.spacing;
  if (eulerFamily && spacingName !== 'leading') solverOptions['noiseStart'] = 'sigma_max';

  if (c['timestep_type'] !== undefined && c['timestep_type'] !== 'discrete') {
    notes.push(`timestep_type ${describe(c['timestep_type'])} is not supported: the network receives discrete-schedule times`);
  }
  if (c['interpolation_type'] !== undefined && c['interpolation_type'] !== 'linear') {
    notes.push(
      `interpolation_type ${describe(c['interpolation_type'])} is not supported: fractional times interpolate σ/α linearly (diffusers' "linear")`,
    );
  }
  // lambda_min_clipped (DPM-Solver classes): their leading/linspace/trailing grids skip the times with λ below it.
  const lambdaMinClipped = readNumberOrInfinity(c, 'lambda_min_clipped');
  const clipsLambda = lambdaMinClipped !== undefined && lambdaMinClipped !== -Infinity;
  if (clipsLambda && !CLIPPING_CLASSES.has(className)) {
    notes.push(`lambda_min_clipped is not a field of ${className} in diffusers: ignored`);
  }
  // variance_type "learned"/"learned_range" (DDPM reads it above): the network has 2× output channels.
  const varianceType = c['variance_type'];
  if (className !== 'DDPMScheduler' && (varianceType === 'learned' || varianceType === 'learned_range')) {
    throw configError(
      'variance_type',
      `is "${varianceType}": the network outputs 2× channels (ε̂ and its variance), and rediffuse's model interface carries one output shaped like the input`,
      `export the network with only its first half of output channels (the ε̂ that ${className} uses; diffusers drops the rest) and set "variance_type" to null`,
    );
  }

  const unknownFields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!KNOWN_FIELDS.has(k)) unknownFields[k] = v;
  const version = c['_diffusers_version'];

  const lcmGrid = className === 'LCMScheduler' || className === 'TCDScheduler';
  if (lcmGrid) spacing = 'lcm';
  // TCD's last step lands at ᾱ_0 (timestep_s = ⌊(1 − γ)·0⌋ = 0), whatever set_alpha_to_one says.
  if (className === 'TCDScheduler') terminal = 'sigma_min';
  const timestepOptions: Omit<TimestepOptions, 'steps'> = { spacing, family: defaults.family, stepsOffset, terminal };
  if (lcmGrid) timestepOptions.lcmOriginalSteps = readInteger(c, 'original_inference_steps', 50, 1);
  // DDIM / PNDM grids ending at t = 0 followed by the terminal t = 0 run an identity last step, as in diffusers.
  if (className === 'DDIMScheduler' || className === 'PNDMScheduler') timestepOptions.repeatedTerminal = true;
  if (sigmaMin !== undefined) timestepOptions.sigmaMin = sigmaMin;
  if (sigmaMax !== undefined) timestepOptions.sigmaMax = sigmaMax;
  // On sigma-spaced grids diffusers' σ come from the whole table: clipping applies to the time spacings only.
  if (clipsLambda && CLIPPING_CLASSES.has(className) && !sigmaSpaced) timestepOptions.lambdaMinClipped = lambdaMinClipped;

  if (flowSigmas) {
    const respaced = karras || exponential || betaSigmas || spacing === 'logSNR';
    return flowSigmaConfig(c, className as 'DPMSolverMultistepScheduler' | 'UniPCMultistepScheduler', {
      predictionType,
      solver,
      solverOptions,
      terminal,
      respaced,
      clipSample,
      clipSampleRange,
      notes,
      unknownFields,
      ...(thresholding ? { thresholding } : {}),
    });
  }

  const out: SchedulerConfig = {
    className,
    schedule,
    predictionType,
    solver,
    solverOptions,
    spacing,
    family: defaults.family,
    stepsOffset,
    terminal,
    clipSample,
    clipSampleRange,
    karras,
    rescaleBetasZeroSnr,
    timestepOptions,
    notes,
    unknownFields,
    sampleOptions(numInferenceSteps: number): ConfigSampleOptions {
      if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
        throw new RangeError(`sampleOptions: numInferenceSteps must be an integer ≥ 1, got ${String(numInferenceSteps)}`);
      }
      // DPM-Solver's own singlestep plan counts calls; diffusers' counts one call per interval.
      const singlestep = className === 'DPMSolverSinglestepScheduler' && solverOptions['plan'] !== 'diffusers';
      return {
        schedule,
        solver,
        solverOptions: { ...solverOptions },
        ...(singlestep ? { nfe: numInferenceSteps } : { steps: numInferenceSteps }),
        timesteps: { ...timestepOptions },
        ...(clipSample ? { clipSample: clipSampleRange } : {}),
        ...(thresholding ? { thresholding } : {}),
      };
    },
  };
  if (thresholding) out.thresholding = thresholding;
  if (typeof rawSpacing === 'string') out.timestepSpacing = rawSpacing;
  if (sigmaMin !== undefined) out.sigmaMin = sigmaMin;
  if (sigmaMax !== undefined) out.sigmaMax = sigmaMax;
  if (typeof version === 'string') out.diffusersVersion = version;
  return out;
}

/**
 * diffusers' `EDMEulerScheduler` (Karras et al. 2022): the EDM schedule on [sigma_min, sigma_max],
 * N noise levels of `sigma_schedule` (karras with `rho`, or exponential) and then σ = 0
 * (`final_sigmas_type="zero"`), Euler steps x_VE += (x_VE − D)/σ·(σ_next − σ), the start
 * z·√(σ_max² + 1) in VE terms — the VP state z, the euler solver's `noiseStart: 'unit'`.
 * `final_sigmas_type="sigma_min"` repeats σ_min as the last level: diffusers' last call then feeds a
 * step of length 0, so we stop at σ_min after N − 1 intervals — the same levels and final sample,
 * one call (whose output diffusers discards) fewer.
 */
function edmSchedulerConfig(c: Json): SchedulerConfig {
  const sigmaMin = readNumber(c, 'sigma_min', 0.002);
  const sigmaMax = readNumber(c, 'sigma_max', 80);
  const sigmaData = readNumber(c, 'sigma_data', 0.5);
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) {
    throw configError('sigma_min', `(${sigmaMin}) and sigma_max (${sigmaMax}) must satisfy 0 < sigma_min < sigma_max`, 'EDM uses 0.002 and 80');
  }
  if (!(sigmaData > 0)) throw configError('sigma_data', `must be > 0, got ${sigmaData}`, 'EDM uses 0.5');
  const sigmaSchedule = readChoice(c, 'sigma_schedule', 'karras', ['karras', 'exponential'] as const);
  const rho = readNumber(c, 'rho', 7);
  if (!(rho > 0)) throw configError('rho', `must be > 0, got ${rho}`, 'EDM uses 7');
  const predictionType = readChoice<PredictionType>(c, 'prediction_type', 'epsilon', ['epsilon', 'v_prediction']);
  const terminal = readChoice<TimestepTerminal>(c, 'final_sigmas_type', 'zero', ['zero', 'sigma_min']);
  readInteger(c, 'num_train_timesteps', 1000, 1); // the training table's length only; no grid uses it
  const schedule = edmSchedule({ sigmaMin, sigmaMax, sigmaData });
  const timestepOptions: Omit<TimestepOptions, 'steps'> = {
    spacing: sigmaSchedule,
    family: 'euler',
    terminal,
    ...(sigmaSchedule === 'karras' ? { rho } : {}),
  };
  const unknownFields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!KNOWN_FIELDS.has(k)) unknownFields[k] = v;
  const version = c['_diffusers_version'];
  const out: SchedulerConfig = {
    className: 'EDMEulerScheduler',
    schedule,
    preconditioning: { kind: 'edm', sigmaData },
    predictionType,
    solver: 'euler',
    solverOptions: {},
    spacing: sigmaSchedule,
    family: 'euler',
    stepsOffset: 0,
    terminal,
    clipSample: false,
    clipSampleRange: 1,
    karras: sigmaSchedule === 'karras',
    rescaleBetasZeroSnr: false,
    sigmaMin,
    sigmaMax,
    timestepOptions,
    notes: [],
    unknownFields,
    sampleOptions(numInferenceSteps: number): ConfigSampleOptions {
      if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
        throw new RangeError(`sampleOptions: numInferenceSteps must be an integer ≥ 1, got ${String(numInferenceSteps)}`);
      }
      if (terminal === 'sigma_min' && numInferenceSteps < 2) {
        throw new RangeError(
          'sampleOptions: EDMEulerScheduler with final_sigmas_type "sigma_min" and 1 step has the single level σ_max followed by σ_min = σ_max ' +
            '(diffusers returns the start unchanged): use numInferenceSteps ≥ 2',
        );
      }
      return {
        schedule,
        solver: 'euler',
        solverOptions: {},
        steps: terminal === 'sigma_min' ? numInferenceSteps - 1 : numInferenceSteps,
        timesteps: { ...timestepOptions },
      };
    },
  };
  if (typeof version === 'string') out.diffusersVersion = version;
  return out;
}

/** The registry solver and its options for a diffusers class and its solver fields. */
function mapSolver(cls: SchedulerClassName, c: Json, notes: string[]): { solver: string; solverOptions: Record<string, unknown> } {
  switch (cls) {
    case 'DDIMScheduler':
      // η is a call argument in diffusers, not a config field: deterministic DDIM, stepping t → t − ⌊T/N⌋.
      return { solver: 'ddim', solverOptions: { eta: 0, stepping: 'ratio' } };
    case 'DDPMScheduler': {
      const v = c['variance_type'];
      const varianceType = v === undefined || v === null ? 'fixed_small' : v;
      if (varianceType !== 'fixed_small' && varianceType !== 'fixed_large') {
        throw configError('variance_type', `${describe(v)} is not supported`, 'use "fixed_small" or "fixed_large"');
      }
      // diffusers clamps the fixed_small variance at 1e-20 (so its last step adds 1e-10·z).
      return { solver: 'ddpm', solverOptions: varianceType === 'fixed_small' ? { varianceType, varianceFloor: 1e-20 } : { varianceType } };
    }
    case 'PNDMScheduler':
      // skip_prk_steps=False (the class default): PNDM's Runge–Kutta warm-up over the first 3 intervals.
      // Off leading grids diffusers steps t → t − ⌊T/N⌋ (as DDIM): stepping 'ratio' (on leading grids the same steps).
      return {
        solver: 'plms',
        solverOptions: {
          ...(readBoolean(c, 'skip_prk_steps', false) ? {} : { warmup: 'prk' }),
          ...((c['timestep_spacing'] ?? 'leading') !== 'leading' ? { stepping: 'ratio' } : {}),
        },
      };
    case 'EulerDiscreteScheduler':
      return { solver: 'euler', solverOptions: {} };
    case 'EulerAncestralDiscreteScheduler':
      return { solver: 'euler_a', solverOptions: {} };
    case 'HeunDiscreteScheduler':
      return { solver: 'heun', solverOptions: {} };
    case 'LMSDiscreteScheduler':
      return { solver: 'lms', solverOptions: {} };
    case 'DPMSolverMultistepScheduler': {
      const algorithm = readChoice(c, 'algorithm_type', 'dpmsolver++', ['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver', 'sde-dpmsolver']);
      const order = readInteger(c, 'solver_order', 2, 1);
      if (order > 3) throw configError('solver_order', `is ${order}`, 'use 1, 2 or 3');
      const solverType = readChoice(c, 'solver_type', 'midpoint', ['midpoint', 'heun']);
      const lowerOrderFinal = readBoolean(c, 'lower_order_final', true);
      const eulerAtFinal = readBoolean(c, 'euler_at_final', false);
      const multistep = { solverType, lowerOrderFinal, eulerAtFinal };
      if (algorithm === 'dpmsolver' || algorithm === 'sde-dpmsolver') {
        notes.push(
          `algorithm_type "${algorithm}" (noise-prediction multistep) has no solver of its own here: using the ` +
            'data-prediction form, which is the same update at first order and of the same order otherwise',
        );
      }
      if (algorithm === 'sde-dpmsolver++' || algorithm === 'sde-dpmsolver') {
        if (order === 1) return { solver: 'ddim', solverOptions: { eta: 1 } }; // SDE-DPM-Solver++(1) ≡ DDIM with η = 1.
        if (order === 3) notes.push('solver_order 3 with an SDE algorithm: using the second-order dpmpp_2m_sde');
        return { solver: 'dpmpp_2m_sde', solverOptions: multistep };
      }
      if (order === 1) return { solver: 'dpmpp_1', solverOptions: {} };
      // 3M: diffusers weights D2 by h·φ₃(−h) (half the Taylor weight).
      return order === 2
        ? { solver: 'dpmpp_2m', solverOptions: multistep }
        : { solver: 'dpmpp_3m', solverOptions: { ...multistep, d2Weight: 'diffusers', spanLimit: false } };
    }
    case 'DPMSolverSinglestepScheduler': {
      const algorithm = readChoice(c, 'algorithm_type', 'dpmsolver++', ['dpmsolver++', 'dpmsolver', 'sde-dpmsolver++']);
      const order = readInteger(c, 'solver_order', 2, 1);
      if (order > 3) throw configError('solver_order', `is ${order}`, 'use 1, 2 or 3');
      const lowerOrderFinal = readBoolean(c, 'lower_order_final', true);
      const solverType = readChoice(c, 'solver_type', 'midpoint', ['midpoint', 'heun']);
      if (algorithm === 'sde-dpmsolver++') notes.push('algorithm_type "sde-dpmsolver++" singlestep: using the deterministic dpmpp singlestep solver');
      if (algorithm === 'dpmsolver') {
        notes.push('algorithm_type "dpmsolver" singlestep: DPM-Solver\'s own plan (k calls per interval), not diffusers\' one call per interval');
        return { solver: `dpm_solver_${order}`, solverOptions: order === 1 ? {} : { lowerOrderFinal } };
      }
      if (order === 1) return { solver: 'dpmpp_1', solverOptions: {} };
      // diffusers' plan: one call per interval, order list [1, 2, (3), …] (singlestep-plan.ts).
      return { solver: order === 2 ? 'dpmpp_2s' : 'dpmpp_3s', solverOptions: { lowerOrderFinal, plan: 'diffusers', solverType } };
    }
    case 'KDPM2DiscreteScheduler':
    case 'KDPM2AncestralDiscreteScheduler':
      // diffusers' KDPM2 is k-diffusion's sample_dpm_2(_ancestral): midpoint at √(σ_i·σ_{i+1}), Euler into σ = 0.
      notes.push(
        'KDPM2: k-diffusion semantics, not checked against diffusers numbers; on fractional (linspace) grids diffusers hands ' +
          'the network the log-σ time of the midpoint, we the linear-σ one (both step at the same σ)',
      );
      return { solver: cls === 'KDPM2DiscreteScheduler' ? 'dpm_2' : 'dpm_2_a', solverOptions: {} };
    case 'DPMSolverSDEScheduler':
      notes.push(
        "DPMSolverSDEScheduler: k-diffusion's sample_dpmpp_sde; its Brownian-tree noise is drawn from the run's seed with the " +
          'same correlations (not the same stream), and the numbers are not checked against diffusers',
      );
      return { solver: 'dpmpp_sde', solverOptions: {} };
    case 'TCDScheduler':
      // γ is diffusers' step() argument eta (default 0.3), not a config field.
      return { solver: 'tcd', solverOptions: { gamma: 0.3 } };
    case 'LCMScheduler':
      return { solver: 'lcm', solverOptions: { timestepScaling: readNumber(c, 'timestep_scaling', 10) } };
    case 'EDMEulerScheduler':
    case 'FlowMatchEulerDiscreteScheduler':
      return { solver: 'euler', solverOptions: {} }; // not reached: edmSchedulerConfig / flowMatchSchedulerConfig map these
    case 'DEISMultistepScheduler': {
      readChoice(c, 'algorithm_type', 'deis', ['deis']);
      readChoice(c, 'solver_type', 'logrho', ['logrho']);
      const order = readInteger(c, 'solver_order', 2, 1);
      if (order > 3) throw configError('solver_order', `is ${order}`, 'use 1, 2 or 3');
      return { solver: 'deis', solverOptions: { order, lowerOrderFinal: readBoolean(c, 'lower_order_final', true) } };
    }
    case 'UniPCMultistepScheduler': {
      const variant = readChoice(c, 'solver_type', 'bh2', ['bh1', 'bh2']);
      const order = readInteger(c, 'solver_order', 2, 1);
      if (order > 3) throw configError('solver_order', `is ${order}`, 'use 1, 2 or 3');
      const raw = c['disable_corrector'];
      let disableCorrector: number[] = [];
      if (raw !== undefined && raw !== null) {
        if (!Array.isArray(raw) || !raw.every((i) => Number.isInteger(i) && (i as number) >= 0)) {
          throw configError('disable_corrector', `must be a list of step indices, got ${describe(raw)}`, 'write e.g. [] or [0]');
        }
        disableCorrector = raw as number[];
      }
      return {
        solver: 'unipc',
        solverOptions: {
          variant,
          order,
          disableCorrector,
          predictX0: readBoolean(c, 'predict_x0', true),
          lowerOrderFinal: readBoolean(c, 'lower_order_final', true),
          spanLimit: false, // diffusers has no stencil-span rule (ours: see MAX_THIRD_ORDER_SPAN)
        },
      };
    }
  }
}

/** numInferenceSteps must be an integer ≥ 1 (every class's sampleOptions). */
function checkInferenceSteps(numInferenceSteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new RangeError(`sampleOptions: numInferenceSteps must be an integer ≥ 1, got ${String(numInferenceSteps)}`);
  }
}

/**
 * diffusers' `FlowMatchEulerDiscreteScheduler` (SD3, FLUX, …): the rectified-flow schedule, the σ
 * grid of {@link flowMatchSigmas} followed by σ = 0, and the FlowMatch Euler step
 * x_{σ'} = x_σ + (σ' − σ)·v — our `euler`, which on a flow schedule steps in (x, σ) with the
 * velocity (equal to DDIM there). The network predicts the flow velocity v = ε − x0 (`flow`).
 * Refused with the reason: `invert_sigmas` (Mochi's reversed convention), `stochastic_sampling`.
 */
function flowMatchSchedulerConfig(c: Json): SchedulerConfig {
  const n = readInteger(c, 'num_train_timesteps', 1000, 1);
  const shift = readNumber(c, 'shift', 1);
  if (!(shift > 0)) throw configError('shift', `must be > 0, got ${shift}`, 'SD3 uses 3.0');
  const dynamic = readBoolean(c, 'use_dynamic_shifting', false);
  const shiftOptions = {
    baseShift: readNumber(c, 'base_shift', 0.5),
    maxShift: readNumber(c, 'max_shift', 1.15),
    baseSeqLen: readNumber(c, 'base_image_seq_len', 256),
    maxSeqLen: readNumber(c, 'max_image_seq_len', 4096),
  };
  if (dynamic && shiftOptions.baseSeqLen === shiftOptions.maxSeqLen) {
    throw configError(
      'max_image_seq_len',
      `equals base_image_seq_len (${shiftOptions.baseSeqLen})`,
      'dynamic shifting interpolates between two different lengths',
    );
  }
  const timeShiftType = readChoice<FlowTimeShiftType>(c, 'time_shift_type', 'exponential', ['exponential', 'linear']);
  const shiftTerminalRaw = c['shift_terminal'];
  const shiftTerminal =
    shiftTerminalRaw === undefined || shiftTerminalRaw === null || shiftTerminalRaw === 0 ? undefined : readNumber(c, 'shift_terminal', 0.1);
  if (shiftTerminal !== undefined && !(shiftTerminal > 0 && shiftTerminal < 1)) {
    throw configError('shift_terminal', `must lie in (0, 1), got ${shiftTerminal}`, 'LTX-Video uses 0.1, or null for none');
  }
  const karras = readBoolean(c, 'use_karras_sigmas', false);
  const exponential = readBoolean(c, 'use_exponential_sigmas', false);
  const beta = readBoolean(c, 'use_beta_sigmas', false);
  if (Number(karras) + Number(exponential) + Number(beta) > 1) {
    throw configError('use_karras_sigmas', 'is set together with use_exponential_sigmas or use_beta_sigmas', 'set at most one of them');
  }
  if (readBoolean(c, 'invert_sigmas', false)) {
    throw configError(
      'invert_sigmas',
      "is true: Mochi's reversed convention (the network's time is (1 − σ)·T and the scheduler steps with the velocity toward the data, x0 − ε) is not supported",
      'use a model exported with the standard convention (time σ·T, velocity ε − x0), or set "invert_sigmas": false',
    );
  }
  if (readBoolean(c, 'stochastic_sampling', false)) {
    throw configError(
      'stochastic_sampling',
      "is true: the re-noising step x' = (1 − σ')·x̂0 + σ'·z is not provided",
      'set "stochastic_sampling": false for the deterministic FlowMatch Euler step (or pick a stochastic solver such as ddim with eta > 0)',
    );
  }
  const base: FlowMatchSigmaOptions = {
    numTrainTimesteps: n,
    shift,
    dynamic,
    timeShiftType,
    ...(shiftTerminal !== undefined ? { shiftTerminal } : {}),
    sigmaSpacing: karras ? 'karras' : exponential ? 'exponential' : beta ? 'beta' : 'none',
  };
  // The smallest σ any grid of this config visits: the last σ does not depend on N (linspace keeps
  // its ends); under dynamic shifting it is smallest for the shortest sequence (1 token).
  const lastSigma = (mu?: number): number => {
    const two = flowMatchSigmas(2, { ...base, dynamic: mu !== undefined, ...(mu !== undefined ? { mu } : {}) });
    return two[1]!;
  };
  const lowest = dynamic
    ? Math.min(lastSigma(flowDynamicShiftMu(1, shiftOptions)), lastSigma(flowDynamicShiftMu(shiftOptions.maxSeqLen, shiftOptions)))
    : lastSigma();
  const schedule = flowSchedule({ numTrainTimesteps: n, sigmaMin: Math.min(1 / n, lowest) });
  const unknownFields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!FLOW_MATCH_FIELDS.has(k)) unknownFields[k] = v;
  const notes: string[] = [];
  const version = c['_diffusers_version'];
  const out: SchedulerConfig = {
    className: 'FlowMatchEulerDiscreteScheduler',
    schedule,
    predictionType: 'flow',
    solver: 'euler',
    solverOptions: {},
    spacing: 'flow_match',
    family: 'euler',
    stepsOffset: 0,
    terminal: 'zero',
    clipSample: false,
    clipSampleRange: 1,
    karras,
    rescaleBetasZeroSnr: false,
    // Under dynamic shifting the grid also needs μ: sampleOptions(N, { imageSeqLen }) adds it.
    timestepOptions: { spacing: 'flow_match', terminal: 'zero', flow: { ...base } },
    notes,
    unknownFields,
    sampleOptions(numInferenceSteps: number, flow?: FlowGridRequest): ConfigSampleOptions {
      checkInferenceSteps(numInferenceSteps);
      let mu: number | undefined;
      if (dynamic) {
        if (flow?.mu !== undefined) mu = flow.mu;
        else if (flow?.imageSeqLen !== undefined) mu = flowDynamicShiftMu(flow.imageSeqLen, shiftOptions);
        else {
          throw new RangeError(
            'sampleOptions: this FlowMatchEulerDiscreteScheduler config has use_dynamic_shifting, so its σ grid depends on the image size: ' +
              'pass { imageSeqLen } (the latent tokens, e.g. (H/16)·(W/16) for SD3/FLUX) or { mu } as the second argument',
          );
        }
        if (!Number.isFinite(mu)) throw new RangeError(`sampleOptions: mu must be a finite number, got ${String(mu)}`);
      }
      return {
        schedule,
        solver: 'euler',
        solverOptions: {},
        steps: numInferenceSteps,
        // The explicit σ list (then σ = 0) of set_timesteps(N); `timestepOptions` (spacing flow_match) plans other budgets.
        timesteps: { timesteps: [...flowMatchSigmas(numInferenceSteps, { ...base, ...(mu !== undefined ? { mu } : {}) }), CLEAN_TIME] },
      };
    },
  };
  if (typeof version === 'string') out.diffusersVersion = version;
  return out;
}

/** What the VP path of {@link fromSchedulerConfig} hands {@link flowSigmaConfig}. */
interface FlowSigmaParts {
  predictionType: PredictionType;
  solver: string;
  solverOptions: Record<string, unknown>;
  terminal: TimestepTerminal;
  /** A Karras / exponential / beta / Lu σ spacing was asked for as well. */
  respaced: boolean;
  clipSample: boolean;
  clipSampleRange: number;
  thresholding?: ThresholdingConfig;
  notes: string[];
  unknownFields: Record<string, unknown>;
}

/**
 * DPMSolverMultistep / UniPC with `use_flow_sigmas` (Wan, SANA): the rectified-flow schedule
 * (diffusers' `_sigma_to_alpha_sigma_t`: α = 1 − σ, σ = σ), the σ grid of `flowSigmasDpm` (spacing `flow_sigmas`) with
 * `flow_shift`, then σ = 0; the network gets the int64 timesteps ⌊σ·T⌋. The beta fields are unused.
 */
function flowSigmaConfig(c: Json, className: 'DPMSolverMultistepScheduler' | 'UniPCMultistepScheduler', p: FlowSigmaParts): SchedulerConfig {
  const n = readInteger(c, 'num_train_timesteps', 1000, 1);
  const shift = readNumber(c, 'flow_shift', 1);
  if (!(shift > 0)) throw configError('flow_shift', `must be > 0, got ${shift}`, 'Wan uses 3.0 to 5.0');
  if (p.respaced) {
    throw configError(
      'use_flow_sigmas',
      'is true together with a Karras / exponential / beta / Lu σ spacing',
      'keep only use_flow_sigmas (diffusers would ignore it)',
    );
  }
  if (p.terminal !== 'zero') {
    throw configError(
      'final_sigmas_type',
      'is "sigma_min" with use_flow_sigmas: diffusers then ends at the VP σ of the unused beta table',
      'use "zero" (the clean end σ = 0)',
    );
  }
  if (readBoolean(c, 'use_dynamic_shifting', false)) {
    throw configError('use_dynamic_shifting', 'is true with use_flow_sigmas: not supported here', 'fold the shift into "flow_shift"');
  }
  // The smallest σ of any grid up to MAX_GRID_STEPS (10 000) intervals, with room for rounding.
  const schedule = flowSchedule({
    numTrainTimesteps: n,
    modelTimes: 'truncate',
    sigmaMin: 0.5 * Math.min(1 / n, flowShift((1 - 1 / n) / 10_000, shift)),
  });
  p.notes.push('use_flow_sigmas: the rectified-flow schedule (α = 1 − σ) and its flow_shift grid; the beta fields are not used');
  const grid: Omit<TimestepOptions, 'steps'> = { spacing: 'flow_sigmas', terminal: 'zero', flow: { numTrainTimesteps: n, shift } };
  const version = c['_diffusers_version'];
  const solverOptions = p.solverOptions;
  const out: SchedulerConfig = {
    className,
    schedule,
    predictionType: p.predictionType,
    solver: p.solver,
    solverOptions,
    spacing: 'flow_sigmas',
    family: 'dpm',
    stepsOffset: 0,
    terminal: 'zero',
    clipSample: p.clipSample,
    clipSampleRange: p.clipSampleRange,
    karras: false,
    rescaleBetasZeroSnr: false,
    timestepOptions: grid,
    notes: p.notes,
    unknownFields: p.unknownFields,
    sampleOptions(numInferenceSteps: number): ConfigSampleOptions {
      checkInferenceSteps(numInferenceSteps);
      return {
        schedule,
        solver: p.solver,
        solverOptions: { ...solverOptions },
        steps: numInferenceSteps,
        timesteps: { timesteps: buildTimesteps(schedule, { ...grid, steps: numInferenceSteps }) },
        ...(p.clipSample ? { clipSample: p.clipSampleRange } : {}),
        ...(p.thresholding ? { thresholding: p.thresholding } : {}),
      };
    },
  };
  if (p.thresholding) out.thresholding = p.thresholding;
  if (typeof version === 'string') out.diffusersVersion = version;
  return out;
}
