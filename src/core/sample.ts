/**
 * `sample(options)`: the one entry point of the sampling core.
 *
 * It draws the initial noise, wraps the model with classifier-free guidance when asked, builds the
 * timestep grid the solver (or PFDiff around it) needs for the NFE budget, runs the solver through a
 * counting {@link createSolverContext | solver context}, and reports what the run cost.
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
import { defaultReuse, FIRST_ORDER_BASES, type FirstOrderBase, type ReuseQuantity, checkReuse } from './pfdiff/first-order-step.js';
import { checkPfdiffKH, createPfdiffSolver, pfdiffBaseSteps } from './pfdiff/pfdiff.js';
import {
  createPfdiffHigherOrderSolver,
  pfdiffHigherOrderBaseSteps,
  SINGLESTEP_BASES,
  singlestepBaseInfo,
  type SinglestepBase,
} from './pfdiff/pfdiff-higher-order.js';
import { createPfdiffMultistepSolver, MULTISTEP_BASES, type MultistepBase } from './pfdiff/pfdiff-multistep.js';
import { gaussianBatch } from './rng.js';
import { abortError, createSolverContext, type DynamicThresholding } from './solver-context.js';
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import { getSolver } from './solvers/registry.js';
import { stepPlanForCalls } from './solvers/singlestep-plan.js';
import type { Solver, SolverSpec, StepInfo } from './solvers/types.js';
import type { NumArray } from './tensor.js';
import { buildTimesteps, type TimestepOptions } from './timesteps.js';

/** PFDiff settings of a run. */
export interface PfdiffSettings {
  /** 1 ≤ k ≤ 3: one call moves k + 1 base intervals. */
  k: number;
  /** 1 ≤ h ≤ k: the springboard offset. */
  h: number;
  /**
   * First-order bases only: the stored, reused quantity. Default: `x0` for `dpmpp_1`, else `epsilon`.
   */
  reuse?: ReuseQuantity;
}

/** Options of {@link sample}. */
export interface SampleOptions {
  /** The network (its prediction type and sample shape come with it). */
  model: DiffusionModel;
  /** The noise schedule the model was trained with. */
  schedule: NoiseSchedule;
  /** Registry solver name (e.g. `ddim`, `dpmpp_2m`) or alias. Default `ddim`. */
  solver?: string;
  /** The solver's own options (e.g. `{ eta: 0.5 }` for DDIM). */
  solverOptions?: Record<string, unknown>;
  /** Model-call budget N. Give `nfe` or `steps` (not both). Default: 20 calls. */
  nfe?: number;
  /** Grid intervals (with PFDiff: base-grid intervals M, which must fit M = N(k+1) − k). */
  steps?: number;
  /**
   * Grid options (`spacing`, `family`, `terminal`, `stepsOffset`, Karras ρ, AYS, or an explicit
   * `timesteps` list). Default spacing `linspace` in the solver's own formula family.
   */
  timesteps?: Omit<TimestepOptions, 'steps'>;
  /** PFDiff around the solver (first-order, singlestep higher-order, or the experimental multistep variant). */
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
  pfdiff?: { k: number; h: number; variant: 'first-order' | 'past-only' | 'multistep-experimental'; reuse?: ReuseQuantity };
  /** Wall time of the whole run, ms. */
  wallMs: number;
  /** Time spent inside model calls, ms. */
  callMs: number;
}

/** The largest seed {@link sample} takes: seeds are 32-bit (the CLI's `--seed` has the same range). */
export const MAX_SEED = 2 ** 32 - 1;

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}

/** Which PFDiff variant applies to a registry solver name, or an error naming the valid ones. */
function pfdiffVariant(name: string): 'first-order' | 'past-only' | 'multistep-experimental' {
  if ((FIRST_ORDER_BASES as readonly string[]).includes(name)) return 'first-order';
  if ((SINGLESTEP_BASES as readonly string[]).includes(name)) return 'past-only';
  if ((MULTISTEP_BASES as readonly string[]).includes(name)) return 'multistep-experimental';
  throw new RangeError(
    `PFDiff has no variant for solver "${name}": use a first-order solver (${FIRST_ORDER_BASES.join(', ')}), ` +
      `a singlestep one (${SINGLESTEP_BASES.join(', ')}) or, experimentally, ${MULTISTEP_BASES.join(', ')}`,
  );
}

function checkPositiveInt(v: unknown, what: string, fix: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be an integer ≥ 1, got ${String(v)}: ${fix}`);
  return v;
}

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

/**
 * Run one sampling job (see {@link SampleOptions}); every bad option throws an error that names the
 * problem and the fix.
 */
export async function sample(options: SampleOptions): Promise<SampleResult> {
  const start = now();
  const { model, schedule } = options;
  if (!model || typeof model.predict !== 'function') throw new TypeError('sample: options.model must be a DiffusionModel (with predict, predictionType, sampleShape)');
  if (!schedule || typeof schedule.alpha !== 'function') throw new TypeError('sample: options.schedule must be a NoiseSchedule (e.g. discreteSchedule({...}))');
  if (options.signal?.aborted) throw abortError(options.signal);
  const spec: SolverSpec<any> = getSolver(options.solver ?? 'ddim'); // eslint-disable-line @typescript-eslint/no-explicit-any
  const batch = checkPositiveInt(options.batch ?? 1, 'batch', 'pass the number of samples');
  const seed = options.seed ?? 0;
  // The noise generator takes a 32-bit seed (rng.ts): a seed outside 0..2³² − 1 would alias another.
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new RangeError(`seed must be an integer in 0..${MAX_SEED} (the noise generator's 32-bit seed), got ${seed}: pick a seed in that range`);
  }
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float64') throw new RangeError(`precision must be 'float32' or 'float64', got "${String(precision)}"`);
  if (options.nfe !== undefined && options.steps !== undefined) {
    throw new Error('sample: give either nfe (a call budget) or steps (grid intervals), not both');
  }
  if (options.nfe !== undefined) checkPositiveInt(options.nfe, 'nfe', 'the budget is at least one model call');
  if (options.steps !== undefined) checkPositiveInt(options.steps, 'steps', 'a grid needs at least one interval');
  checkCond(options.cond, batch);
  if (options.guidance) checkGuidanceOptions(options.guidance);

  const d = sampleSizeOf(model.sampleShape);
  let x: NumArray;
  if (options.initialNoise !== undefined) {
    if (options.initialNoise.length !== batch * d) {
      throw new RangeError(
        `initialNoise has ${options.initialNoise.length} values, expected batch ${batch} × ${d} (sampleShape [${model.sampleShape}]): match batch to the noise or pass noise of that length`,
      );
    }
    x = precision === 'float64' ? Float64Array.from(options.initialNoise) : Float32Array.from(options.initialNoise);
  } else {
    x = gaussianBatch(seed, batch, d, precision);
  }

  // Grid + solver.
  const gridOptions: TimestepOptions = {
    spacing: 'linspace',
    family: spec.gridFamily,
    ...(options.timesteps ?? {}),
  };
  const grid = (steps: number): number[] => buildTimesteps(schedule, { ...gridOptions, steps });
  const explicit = options.timesteps?.timesteps !== undefined;
  let solver: Solver;
  let timesteps: number[];
  let pfdiffInfo: SampleResult['pfdiff'];
  if (options.pfdiff) {
    const { k, h } = options.pfdiff;
    checkPfdiffKH(k, h);
    const variant = pfdiffVariant(spec.name);
    const nfe = options.nfe ?? (options.steps === undefined ? 20 : undefined);
    if (variant === 'first-order') {
      const base = spec.name as FirstOrderBase;
      const eta = options.solverOptions?.['eta'];
      if (eta !== undefined && eta !== 0) {
        throw new RangeError(`PFDiff wraps the deterministic ${base} (eta = 0), got eta = ${String(eta)}: drop eta or set it to 0`);
      }
      const reuse = options.pfdiff.reuse ?? defaultReuse(base);
      checkReuse(reuse);
      solver = createPfdiffSolver({ k, h, reuse });
      timesteps = explicit ? buildTimesteps(schedule, gridOptions) : grid(nfe !== undefined ? pfdiffBaseSteps(nfe, k) : options.steps!);
      pfdiffInfo = { k, h, variant, reuse };
    } else if (variant === 'past-only') {
      if (options.pfdiff.reuse !== undefined) {
        throw new RangeError(`pfdiff.reuse applies to first-order solvers; ${spec.name} reuses its own outputs (${singlestepBaseInfo(spec.name as SinglestepBase).form} prediction): drop reuse`);
      }
      if (nfe === undefined) throw new Error(`PFDiff with ${spec.name} needs an nfe budget (the remainder rule depends on it): pass nfe instead of steps`);
      const order = singlestepBaseInfo(spec.name as SinglestepBase).order;
      const ro = options.solverOptions ?? {};
      solver = createPfdiffHigherOrderSolver({
        k,
        h,
        base: spec.name as SinglestepBase,
        nfe,
        solverOptions: { ...(ro['r1'] !== undefined ? { r1: ro['r1'] as number } : {}), ...(ro['r2'] !== undefined ? { r2: ro['r2'] as number } : {}) },
      });
      if (explicit) timesteps = buildTimesteps(schedule, gridOptions);
      else {
        timesteps = grid(pfdiffHigherOrderBaseSteps(nfe, k, order, true));
        if (schedule.sigma(timesteps[timesteps.length - 1]!) !== 0) timesteps = grid(pfdiffHigherOrderBaseSteps(nfe, k, order, false));
      }
      pfdiffInfo = { k, h, variant };
    } else {
      if (options.pfdiff.reuse !== undefined && options.pfdiff.reuse !== 'x0') {
        throw new RangeError(`the multistep PFDiff variant reuses x̂0 (data prediction), got reuse "${options.pfdiff.reuse}": drop reuse`);
      }
      solver = createPfdiffMultistepSolver({ k, h, base: spec.name as MultistepBase });
      timesteps = explicit ? buildTimesteps(schedule, gridOptions) : grid(nfe !== undefined ? pfdiffBaseSteps(nfe, k) : options.steps!);
      pfdiffInfo = { k, h, variant };
    }
  } else if (
    !explicit &&
    options.steps === undefined &&
    (SINGLESTEP_BASES as readonly string[]).includes(spec.name) &&
    options.solverOptions?.orders === undefined
  ) {
    // A singlestep order-p solver spends the whole budget with DPM-Solver's adaptive step plan
    // (e.g. 10 calls at order 3 → orders [3, 3, 3, 1]); a step into σ = 0 must be first order.
    const order = singlestepBaseInfo(spec.name as SinglestepBase).order;
    const budget = options.nfe ?? 20;
    let orders = stepPlanForCalls(budget, order, true);
    timesteps = grid(orders.length);
    if (schedule.sigma(timesteps[timesteps.length - 1]!) !== 0) {
      orders = stepPlanForCalls(budget, order, false);
      timesteps = grid(orders.length);
    }
    solver = spec.create({ ...(options.solverOptions ?? {}), orders });
  } else {
    solver = spec.create(options.solverOptions ?? {});
    if (explicit) timesteps = buildTimesteps(schedule, gridOptions);
    else timesteps = grid(options.steps ?? spec.stepsForCalls(options.nfe ?? 20, options.solverOptions ?? {}));
  }

  const runModel = options.guidance && !(options.guidance.scale === 1 && !(options.guidance.rescale ?? 0))
    ? classifierFreeGuidance(model, { ...options.guidance, schedule: options.guidance.schedule ?? schedule })
    : model;
  const ctx = createSolverContext({
    model: runModel,
    schedule,
    batch,
    precision,
    seed,
    ...(options.cond ? { cond: options.cond } : {}),
    ...(options.clipSample !== undefined ? { clipSample: options.clipSample } : {}),
    ...(options.thresholding ? { thresholding: options.thresholding } : {}),
    ...(options.onStep ? { onStep: options.onStep } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const samples = await solver(x, timesteps, ctx);
  const callMs = ctx.callTimes.reduce((a, b) => a + b, 0);
  return {
    samples,
    calls: ctx.calls,
    steps: timesteps.length - 1,
    timesteps,
    solver: spec.name,
    ...(pfdiffInfo ? { pfdiff: pfdiffInfo } : {}),
    wallMs: now() - start,
    callMs,
  };
}
