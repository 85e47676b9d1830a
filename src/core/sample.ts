/**
 * `sample(options)`: the one entry point of the sampling core, in four moves:
 * validate the options → plan the run (the solver spec, or PFDiff around it, lays out the grid and
 * the exact call count, {@link planSample}) → wrap the model with classifier-free guidance when
 * asked → run the planned solver through a counting {@link createSolverContext | solver context}.
 *
 * Initial state: x_T = z with z ~ N(0, I) from {@link gaussianBatch}(seed, batch, sampleSize,
 * precision). Every solver here works in the VP coordinates x_t = α_t·x0 + σ_t·ε, whose marginal at
 * the first grid time is N(α_T·x0, σ_T²) ≈ N(0, I) (α_T ≈ 0.006 for SD/DDPM linear schedules), so no
 * scaling is applied — diffusers' `init_noise_sigma = 1` of DDIM/DPM-Solver. (Euler-type schedulers
 * in diffusers scale by √(σ_VE² + 1) only because they work in the VE coordinates x/α.)
 * @packageDocumentation
 */
import { classifierFreeGuidance, checkGuidanceOptions, type GuidanceOptions } from './guidance.js';
import { sampleSize as sampleSizeOf, type Conditioning, type DiffusionModel } from './model.js';
import { pfdiff, type PfdiffSettings } from './pfdiff/pfdiff-spec.js';
import { now } from './clock.js';
import { gaussianBatch } from './rng.js';
import { abortError, createSolverContext, type DynamicThresholding } from './solver-context.js';
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import { checkCount } from './solvers/define-solver.js';
import { getSolver } from './solvers/registry.js';
import type { SolverOptionsOf } from './solvers/solver-options.js';
import type { PfdiffPlanInfo, SolverPlan, StepInfo } from './solvers/types.js';
import type { NumArray } from './tensor.js';
import type { TimestepOptions } from './timesteps.js';

export type { PfdiffSettings } from './pfdiff/pfdiff-spec.js';

/** Options of {@link sample}. */
export interface SampleOptions<S extends string = string> {
  /** The network (its prediction type and sample shape come with it). */
  model: DiffusionModel;
  /** The noise schedule the model was trained with. */
  schedule: NoiseSchedule;
  /** Registry solver name (e.g. `ddim`, `dpmpp_2m`) or alias. Default `ddim`. */
  solver?: S;
  /**
   * The solver's own options (e.g. `{ eta: 0.5 }` for DDIM), typed by `SolverOptionsMap` when
   * `solver` is a registry name literal; checked by the solver's rules either way.
   */
  solverOptions?: SolverOptionsOf<S>;
  /** Model-call budget N. Give `nfe` or `steps` (not both). Default: 20 calls. */
  nfe?: number;
  /** Grid intervals (with PFDiff: base-grid intervals M, which must fit M = N(k+1) − k). */
  steps?: number;
  /**
   * Grid options (`spacing`, `family`, `terminal`, `stepsOffset`, Karras ρ, AYS, or an explicit
   * `timesteps` list). Default spacing `linspace` in the solver's own formula family.
   */
  timesteps?: Omit<TimestepOptions, 'steps'>;
  /** PFDiff around the solver (first-order, singlestep higher-order, or the experimental multistep and Adams variants). */
  pfdiff?: PfdiffSettings;
  /** Classifier-free guidance: one batched [uncond; cond] call per step. */
  guidance?: GuidanceOptions;
  /** Conditioning, one entry per sample. */
  cond?: Conditioning;
  /** Number of samples. Default 1. */
  batch?: number;
  /** Seed of the initial noise (and of a stochastic solver's noise). Default 0. */
  seed?: number;
  /** Initial state x_T (length batch × sampleSize) instead of seeded noise. */
  initialNoise?: NumArray;
  /** Arithmetic precision of the state. Default `float32`. */
  precision?: 'float32' | 'float64';
  /** Clamp x̂0 into [−r, r] (diffusers' `clip_sample`). */
  clipSample?: number;
  /** Dynamic thresholding of x̂0 (Imagen). */
  thresholding?: DynamicThresholding;
  /** Called after each step with (step, steps, t, x, x̂0). */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Stops the run (the promise rejects with an `AbortError`). */
  signal?: AbortSignal;
  /**
   * The stochastic solver's noise from a given stream instead of `seed`: draw `index` (in the order
   * the solver draws) is `noise(index)`, batch × sampleSize values — e.g. a stream recorded from
   * diffusers, to replay its DDPM or Euler-ancestral run step for step.
   */
  noise?: (index: number) => NumArray;
}

/** What {@link sample} returns. */
export interface SampleResult {
  /** Final samples, `[batch, ...sampleShape]`. */
  samples: NumArray;
  /** Model calls made (NFE; a guided call counts once). */
  calls: number;
  /** Intervals of the grid the solver ran on (the base grid with PFDiff). */
  steps: number;
  /** The grid used, noisiest first, terminal last. */
  timesteps: number[];
  /** The registry name of the solver. */
  solver: string;
  /** The PFDiff variant used, if any. */
  pfdiff?: PfdiffPlanInfo;
  /** Wall time of the whole run, ms. */
  wallMs: number;
  /** Time spent inside model calls, ms. */
  callMs: number;
}

/** The largest seed {@link sample} takes: seeds are 32-bit (the CLI's `--seed` has the same range). */
export const MAX_SEED = 2 ** 32 - 1;

function checkCond(cond: Conditioning | undefined, batch: number): void {
  if (!cond) return;
  if (cond.classLabels && cond.classLabels.length !== batch) {
    throw new RangeError(`cond.classLabels has ${cond.classLabels.length} labels but batch is ${batch}: give one label per sample`);
  }
  if (cond.classLabels?.some((l) => !Number.isInteger(l))) {
    throw new RangeError('cond.classLabels must be integers: pass class indices');
  }
  if (cond.encoderHiddenStates && cond.encoderHiddenShape) {
    const per = sampleSizeOf(cond.encoderHiddenShape);
    if (cond.encoderHiddenStates.length !== per * batch) {
      throw new RangeError(
        `cond.encoderHiddenStates has ${cond.encoderHiddenStates.length} values, expected batch ${batch} × [${cond.encoderHiddenShape}]: encode one prompt per sample`,
      );
    }
  }
}

/** The checked run settings of {@link SampleOptions} (everything but the solver plan). */
interface RunSettings {
  batch: number;
  seed: number;
  precision: 'float32' | 'float64';
}

/** Check every option that is not the solver's (those are the plan's); throws naming the fix. */
function validate(options: SampleOptions): RunSettings {
  const { model, schedule } = options;
  if (!model || typeof model.predict !== 'function')
    throw new TypeError('sample: options.model must be a DiffusionModel (with predict, predictionType, sampleShape)');
  if (!schedule || typeof schedule.alpha !== 'function')
    throw new TypeError('sample: options.schedule must be a NoiseSchedule (e.g. discreteSchedule({...}))');
  if (options.signal?.aborted) throw abortError(options.signal);
  const batch = checkCount(options.batch ?? 1, 'batch', 'pass the number of samples');
  const seed = options.seed ?? 0;
  // The noise generator takes a 32-bit seed (rng.ts): a seed outside 0..2³² − 1 would alias another.
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new RangeError(`seed must be an integer in 0..${MAX_SEED} (the noise generator's 32-bit seed), got ${seed}: pick a seed in that range`);
  }
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float64') throw new RangeError(`precision must be 'float32' or 'float64', got "${String(precision)}"`);
  checkCond(options.cond, batch);
  if (options.noise !== undefined && typeof options.noise !== 'function') {
    throw new TypeError("sample: options.noise must be a function (index) => NumArray giving the solver's noise draw number index");
  }
  if (options.guidance) checkGuidanceOptions(options.guidance);
  if (options.initialNoise !== undefined) {
    const d = sampleSizeOf(model.sampleShape);
    if (options.initialNoise.length !== batch * d) {
      throw new RangeError(
        `initialNoise has ${options.initialNoise.length} values, expected batch ${batch} × ${d} (sampleShape [${model.sampleShape}]): match batch to the noise or pass noise of that length`,
      );
    }
  }
  return { batch, seed, precision };
}

/**
 * The plan of `sample(options)` without running it: the grid, the exact call count and the bound
 * solver, from the solver spec (wrapped by {@link pfdiff} when `options.pfdiff` is set). Needs only
 * `schedule`, `solver`, `solverOptions`, `nfe`/`steps`, `timesteps` and `pfdiff`.
 */
export function planSample(options: Pick<SampleOptions, 'schedule' | 'solver' | 'solverOptions' | 'nfe' | 'steps' | 'timesteps' | 'pfdiff'>): SolverPlan {
  const base = getSolver(options.solver ?? 'ddim');
  const spec = options.pfdiff ? pfdiff(base, options.pfdiff) : base;
  return spec.plan({
    schedule: options.schedule,
    ...(options.nfe !== undefined ? { nfe: options.nfe } : {}),
    ...(options.steps !== undefined ? { steps: options.steps } : {}),
    ...(options.timesteps !== undefined ? { timesteps: options.timesteps } : {}),
    ...(options.solverOptions !== undefined ? { options: options.solverOptions as Record<string, unknown> } : {}),
  });
}

/** x_T: the given initial noise in the run's precision, or seeded noise (see the module comment). */
function initialState(options: SampleOptions, { batch, seed, precision }: RunSettings): NumArray {
  const noise = options.initialNoise;
  if (noise === undefined) return gaussianBatch(seed, batch, sampleSizeOf(options.model.sampleShape), precision);
  return precision === 'float64' ? Float64Array.from(noise) : Float32Array.from(noise);
}

/** The model as the solver calls it: guided when guidance asks for it (scale 1 without rescale is the plain model). */
function guided(options: SampleOptions): DiffusionModel {
  const g = options.guidance;
  if (!g || (g.scale === 1 && !(g.rescale ?? 0))) return options.model;
  return classifierFreeGuidance(options.model, g);
}

/**
 * Run one sampling job (see {@link SampleOptions}): validate → plan → wrap → run. Every bad option
 * throws an error that names the problem and the fix before the first model call.
 */
export async function sample<S extends string = string>(options: SampleOptions<S>): Promise<SampleResult> {
  const start = now();
  const { batch, seed, precision } = validate(options);
  const plan = planSample(options);
  const x = initialState(options, { batch, seed, precision });
  const ctx = createSolverContext({
    model: guided(options),
    schedule: options.schedule,
    batch,
    precision,
    seed,
    ...(options.cond ? { cond: options.cond } : {}),
    ...(options.clipSample !== undefined ? { clipSample: options.clipSample } : {}),
    ...(options.thresholding ? { thresholding: options.thresholding } : {}),
    ...(options.onStep ? { onStep: options.onStep } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.noise ? { noise: options.noise } : {}),
  });
  const samples = await plan.run(x, plan.timesteps, ctx);
  return {
    samples,
    calls: ctx.calls,
    steps: plan.steps,
    timesteps: plan.timesteps,
    solver: plan.solver,
    ...(plan.pfdiff ? { pfdiff: plan.pfdiff } : {}),
    wallMs: now() - start,
    callMs: ctx.callTimes.reduce((a, b) => a + b, 0),
  };
}
