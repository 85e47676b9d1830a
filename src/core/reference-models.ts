/**
 * Closed-form diffusion models for testing and research.
 *
 * For data x0 ~ N(μ, s²·I) on a VP path x_t = α_t·x0 + σ_t·ε, the marginal is
 * x_t ~ N(α_t·μ, (α_t²s² + σ_t²)·I), so the exact noise prediction is
 *   ε*(x, t) = −σ_t·∇log p_t(x) = σ_t·(x − α_t·μ)/(α_t²·s² + σ_t²),
 * and the probability-flow ODE keeps z = (x_t − α_t·μ)/√(α_t²s² + σ_t²) constant, so its exact
 * solution from (x_T, T) to t is x_t = α_t·μ + √(α_t²s² + σ_t²)·z.
 * For a mixture Σ_k w_k·N(μ_k, s_k²·I) the score is the responsibility-weighted sum of the
 * components' scores (exact ε; its ODE has no closed form).
 * @packageDocumentation
 */
import type { DiffusionModel, PredictionType } from './model.js';
import { convertPrediction } from './prediction.js';
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import type { NumArray } from './tensor.js';

/** Options of {@link gaussianModel}. */
export interface GaussianModelOptions {
  /** The schedule of the exact ODE solution ({@link GaussianModel.exactOdeSolution}); a call's α and σ come with the call. */
  schedule: NoiseSchedule;
  /** Data mean μ: a number (every coordinate) or one value per coordinate. Default 0. */
  mean?: number | readonly number[];
  /** Data standard deviation s (every coordinate). Default 1. */
  std?: number;
  /** Shape of one sample. Default `[1]`. */
  sampleShape?: readonly number[];
  /** What the model returns. Default `epsilon`. */
  predictionType?: PredictionType;
}

/** A closed-form Gaussian-data model with its exact ODE solution. */
export interface GaussianModel extends DiffusionModel {
  /**
   * The exact probability-flow ODE solution at schedule time `tTo` from state `x` at `tFrom`
   * (`tTo` may be the clean end point).
   */
  exactOdeSolution(x: NumArray, tFrom: number, tTo: number): NumArray;
  /** Number of calls made so far. */
  readonly calls: number;
}

function perCoordinate(v: number | readonly number[] | undefined, n: number, fallback: number): Float64Array {
  if (v === undefined) return new Float64Array(n).fill(fallback);
  if (typeof v === 'number') return new Float64Array(n).fill(v);
  if (v.length !== n) throw new RangeError(`mean has ${v.length} values but a sample has ${n} coordinates`);
  return Float64Array.from(v);
}

function checkBatch(x: NumArray, batch: number, d: number): void {
  if (x.length !== batch * d) {
    throw new RangeError(`input has ${x.length} values, expected batch ${batch} × ${d} per sample`);
  }
}

/** Exact model for Gaussian data N(μ, s²·I). */
export function gaussianModel(opts: GaussianModelOptions): GaussianModel {
  const shape = opts.sampleShape ?? [1];
  const d = shape.reduce((a, b) => a * b, 1);
  const mu = perCoordinate(opts.mean, d, 0);
  const s2 = (opts.std ?? 1) ** 2;
  const sched = opts.schedule;
  const type = opts.predictionType ?? 'epsilon';
  let calls = 0;
  return {
    predictionType: type,
    sampleShape: shape,
    get calls() {
      return calls;
    },
    async predict(x, call) {
      checkBatch(x, call.batch, d);
      calls++;
      const { alpha: a, sigma: sg } = call;
      const v = a * a * s2 + sg * sg;
      const eps = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) eps[i] = (sg * (x[i]! - a * mu[i % d]!)) / v;
      return convertPrediction('epsilon', type, eps, x, a, sg);
    },
    exactOdeSolution(x, tFrom, tTo) {
      const a0 = sched.alpha(tFrom);
      const s0 = Math.sqrt(a0 * a0 * s2 + sched.sigma(tFrom) ** 2);
      const a1 = sched.alpha(tTo);
      const s1 = Math.sqrt(a1 * a1 * s2 + sched.sigma(tTo) ** 2);
      const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const m = mu[i % d]!;
        out[i] = a1 * m + (s1 * (x[i]! - a0 * m)) / s0;
      }
      return out;
    },
  };
}

/** One component of a {@link gaussianMixtureModel}. */
export interface MixtureComponent {
  weight: number;
  mean: readonly number[];
  std: number;
}

/** Options of {@link gaussianMixtureModel}. */
export interface GaussianMixtureOptions {
  components: readonly MixtureComponent[];
  predictionType?: PredictionType;
}

/**
 * Exact model for a mixture of isotropic Gaussians in d dimensions (sample shape `[d]`), on any VP
 * schedule: the score needs only the call's α and σ.
 */
export function gaussianMixtureModel(opts: GaussianMixtureOptions): DiffusionModel & { readonly calls: number } {
  const comps = opts.components;
  if (comps.length === 0) throw new RangeError('a Gaussian mixture needs at least one component');
  const d = comps[0]!.mean.length;
  let wsum = 0;
  for (const c of comps) {
    if (c.mean.length !== d) throw new RangeError('all mixture components must have means of the same dimension');
    if (!(c.weight > 0) || !(c.std > 0)) throw new RangeError('mixture weights and stds must be positive');
    wsum += c.weight;
  }
  const type = opts.predictionType ?? 'epsilon';
  let calls = 0;
  return {
    predictionType: type,
    sampleShape: [d],
    get calls() {
      return calls;
    },
    async predict(x, call) {
      const { batch, alpha: a, sigma: sg } = call;
      checkBatch(x, batch, d);
      calls++;
      const eps = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      const logr = new Float64Array(comps.length);
      for (let b = 0; b < batch; b++) {
        const off = b * d;
        // Responsibilities r_k ∝ w_k·N(x; α·μ_k, (α²s_k² + σ²)·I), in log space.
        let maxl = -Infinity;
        comps.forEach((c, k) => {
          const v = a * a * c.std * c.std + sg * sg;
          let q = 0;
          for (let i = 0; i < d; i++) {
            const r = x[off + i]! - a * c.mean[i]!;
            q += r * r;
          }
          logr[k] = Math.log(c.weight / wsum) - 0.5 * d * Math.log(v) - (0.5 * q) / v;
          maxl = Math.max(maxl, logr[k]!);
        });
        let z = 0;
        for (let k = 0; k < comps.length; k++) z += Math.exp(logr[k]! - maxl);
        for (let i = 0; i < d; i++) {
          let e = 0;
          comps.forEach((c, k) => {
            const v = a * a * c.std * c.std + sg * sg;
            e += (Math.exp(logr[k]! - maxl) / z) * ((sg * (x[off + i]! - a * c.mean[i]!)) / v);
          });
          eps[off + i] = e;
        }
      }
      return convertPrediction('epsilon', type, eps, x, a, sg);
    },
  };
}

/**
 * The diffusers scheduler config of the closed-form reference models as the CLI (`--reference`) and
 * the bench run them: DDPM's linear betas (1e-4 … 0.02 over 1000 steps) on diffusers' default
 * `linspace` grid.
 */
export const REFERENCE_SCHEDULER_CONFIG = {
  _class_name: 'DDPMScheduler',
  num_train_timesteps: 1000,
  beta_start: 1e-4,
  beta_end: 0.02,
  beta_schedule: 'linear',
  clip_sample: false,
  timestep_spacing: 'linspace',
} as const;
