/**
 * The {@link SolverContext} of one sampling run: it calls the model with a {@link ModelCall}
 * descriptor (schedule and model time, α, σ, call index, batch), counted and checked, turns the
 * output into ε̂ and x̂0, optionally post-processes x̂0 (clip_sample or dynamic thresholding), draws
 * the solver's seeded noise and reports steps.
 *
 * Dynamic thresholding (Saharia et al. 2022, "Imagen", §2.3): per sample, s = quantile(|x̂0|, ratio),
 * s ← clamp(s, 1, maxValue), x̂0 ← clamp(x̂0, −s, s)/s. After x̂0 is changed, ε̂ = (x − α·x̂0)/σ, so the
 * pair stays consistent with x = α·x̂0 + σ·ε̂.
 * @packageDocumentation
 */
import { now } from './clock.js';
import type { Conditioning, DiffusionModel, ModelCall } from './model.js';
import { sampleSize } from './model.js';
import { toEpsilon, toX0, type Prediction } from './prediction.js';
import { Rng, seedForSample } from './rng.js';
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import type { SolverContext, StepInfo } from './solvers/types.js';
import { axpby, clamp, firstNonFinite, type NumArray } from './tensor.js';

/** Imagen's dynamic thresholding (diffusers' `thresholding`, `dynamic_thresholding_ratio`, `sample_max_value`). */
export interface DynamicThresholding {
  /** Quantile of |x̂0| per sample, in (0, 1] (diffusers default 0.995). */
  ratio: number;
  /** Upper bound of the threshold s, ≥ 1 (diffusers `sample_max_value`, default 1). */
  maxValue: number;
}

/** Options of {@link createSolverContext}. */
export interface SolverContextOptions {
  model: DiffusionModel;
  schedule: NoiseSchedule;
  /** Number of samples in the state. */
  batch: number;
  cond?: Conditioning;
  /** Precision of the state and of the solver's noise. Default `float32`. */
  precision?: 'float32' | 'float64';
  /** Seed of the solver's noise (stochastic solvers). Default 0. */
  seed?: number;
  /** diffusers' `clip_sample` with `clip_sample_range`: clamp x̂0 into [−r, r]. Ignored when thresholding is set (as in diffusers). */
  clipSample?: number;
  /** Dynamic thresholding of x̂0; takes precedence over `clipSample`. */
  thresholding?: DynamicThresholding;
  /** Called after each solver step (previews, progress). */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Aborts the run: the next model call or step throws an `AbortError`. */
  signal?: AbortSignal;
  /**
   * An injected noise stream instead of the seeded one: draw `index` (0, 1, …, in the order the
   * solver asks) is `noise(index)`, batch × sampleSize values (e.g. a recorded stream, to replay
   * another implementation's stochastic run).
   */
  noise?: (index: number) => NumArray;
}

/** A {@link SolverContext} that also reports what the run cost. */
export interface CountingSolverContext extends SolverContext {
  /** Model calls made so far (NFE). */
  readonly calls: number;
  /** Wall time of each model call, in milliseconds. */
  readonly callTimes: readonly number[];
  readonly batch: number;
  readonly precision: 'float32' | 'float64';
}

/**
 * Salt that separates the solver's noise streams from the initial-noise streams of the same seed:
 * sample `b` draws its solver noise from `seedForSample(seed ^ SOLVER_NOISE_SALT, b)`.
 */
export const SOLVER_NOISE_SALT = 0x51ad0e5e;

/** The error thrown when the run's AbortSignal has fired (`name` is `AbortError`). */
export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  const err = new Error(`the sampling run was aborted (its AbortSignal fired${reason}); start a new run to continue`);
  err.name = 'AbortError';
  return err;
}

/** Value at quantile q of a sorted array, linear interpolation (numpy/torch `quantile` default). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Dynamic thresholding of x̂0, sample by sample (see the file comment). */
export function dynamicThreshold(x0: NumArray, batch: number, opts: DynamicThresholding): NumArray {
  const d = x0.length / batch;
  const out = x0 instanceof Float64Array ? new Float64Array(x0.length) : new Float32Array(x0.length);
  const abs = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    const off = b * d;
    for (let i = 0; i < d; i++) abs[i] = Math.abs(x0[off + i]!);
    abs.sort();
    const s = Math.min(Math.max(quantileSorted(abs, opts.ratio), 1), opts.maxValue);
    for (let i = 0; i < d; i++) out[off + i] = Math.min(s, Math.max(-s, x0[off + i]!)) / s;
  }
  return out;
}

/** Build the context of one sampling run (see {@link SolverContextOptions}). */
export function createSolverContext(opts: SolverContextOptions): CountingSolverContext {
  const { model, schedule, batch, cond, signal, onStep, clipSample, thresholding } = opts;
  const precision = opts.precision ?? 'float32';
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be an integer ≥ 1, got ${batch}`);
  if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
  if (clipSample !== undefined && !(clipSample > 0)) {
    throw new RangeError(`clipSample must be a positive range r (x̂0 is clamped to [−r, r]), got ${clipSample}`);
  }
  if (thresholding !== undefined) {
    if (!(thresholding.ratio > 0 && thresholding.ratio <= 1)) {
      throw new RangeError(`thresholding.ratio must lie in (0, 1] (e.g. 0.995), got ${thresholding.ratio}`);
    }
    if (!(thresholding.maxValue >= 1)) {
      throw new RangeError(`thresholding.maxValue must be ≥ 1 (e.g. 1.5), got ${thresholding.maxValue}`);
    }
  }
  const d = sampleSize(model.sampleShape);
  const n = batch * d;
  const rngs = Array.from({ length: batch }, (_, b) => new Rng(seedForSample((seed ^ SOLVER_NOISE_SALT) >>> 0, b)));
  const callTimes: number[] = [];
  let nextIndex = 0;
  let nextDraw = 0;
  const checkAbort = (): void => {
    if (signal?.aborted) throw abortError(signal);
  };

  const processX0 = (x0: NumArray): NumArray => {
    if (thresholding) return dynamicThreshold(x0, batch, thresholding);
    if (clipSample !== undefined) return clamp(x0, -clipSample, clipSample);
    return x0;
  };

  return {
    schedule,
    batch,
    precision,
    get calls() {
      return callTimes.length;
    },
    callTimes,
    async evaluate(x: NumArray, t: number): Promise<Prediction> {
      checkAbort();
      if (x.length !== n) {
        throw new RangeError(`state has ${x.length} values, expected batch ${batch} × ${d} (sampleShape [${model.sampleShape}])`);
      }
      const call: ModelCall = {
        t,
        modelTime: schedule.modelTime(t),
        alpha: schedule.alpha(t),
        sigma: schedule.sigma(t),
        index: nextIndex++,
        batch,
      };
      const start = now();
      let out = await model.predict(x, call, cond, { signal });
      callTimes.push(now() - start);
      checkAbort();
      if (out.length !== n) {
        throw new RangeError(
          `model returned ${out.length} values at t=${t}, expected batch ${batch} × ${d}: check that the model's output shape matches its sampleShape [${model.sampleShape}]`,
        );
      }
      const bad = firstNonFinite(out);
      if (bad >= 0) {
        const v = out[bad]!;
        throw new Error(
          `model returned ${Number.isNaN(v) ? 'NaN' : v} at t=${t} (model time ${call.modelTime}, element ${bad}): check the model file/inputs`,
        );
      }
      if (out instanceof Float64Array !== x instanceof Float64Array) {
        out = x instanceof Float64Array ? Float64Array.from(out) : Float32Array.from(out);
      }
      const { alpha, sigma } = call;
      const x0raw = toX0(model.predictionType, out, x, alpha, sigma);
      const x0 = processX0(x0raw);
      // ε̂ = (x − α·x̂0)/σ when x̂0 was changed (σ > 0 at every time a model is called).
      const eps = x0 === x0raw ? toEpsilon(model.predictionType, out, x, alpha, sigma) : axpby(1 / sigma, x, -alpha / sigma, x0);
      return model.predictionType === 'flow' && x0 === x0raw ? { eps, x0, velocity: out } : { eps, x0 };
    },
    noise(): NumArray {
      if (opts.noise) {
        const index = nextDraw++;
        const z = opts.noise(index);
        if (!z || z.length !== n) {
          throw new RangeError(
            `injected noise draw ${index} has ${z?.length ?? 0} values, expected batch ${batch} × ${d}: return one standard-normal draw shaped like the state`,
          );
        }
        return precision === 'float64' ? Float64Array.from(z) : Float32Array.from(z);
      }
      const out = precision === 'float64' ? new Float64Array(n) : new Float32Array(n);
      for (let b = 0; b < batch; b++) rngs[b]!.fillNormal(out.subarray(b * d, (b + 1) * d));
      return out;
    },
    async step(info: StepInfo): Promise<void> {
      checkAbort();
      if (onStep) await onStep(info);
      checkAbort();
    },
  };
}
