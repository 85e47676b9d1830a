/**
 * A closed-form flow-matching model for tests: Gaussian data x0 ~ N(μ, s²·I) under rectified flow
 * x_σ = (1 − σ)·x0 + σ·ε (σ ∈ [0, 1], time t = σ as in `schedule/flow.ts`).
 *
 * Marginal: x_σ ~ N((1 − σ)·μ, V_σ·I) with V_σ = (1 − σ)²·s² + σ². With r = x − (1 − σ)·μ, the
 * posterior means are E[x0 | x_σ] = μ + (1 − σ)·s²·r/V_σ and E[ε | x_σ] = σ·r/V_σ, so the exact
 * velocity (the marginal flow, Liu et al. 2023, eq. 1) is
 *   v(x, σ) = E[ε − x0 | x_σ] = (σ − (1 − σ)·s²)·r/V_σ − μ,
 * defined on the whole path, including the pure-noise end σ = 1 (V = 1, v = x − μ).
 * The ODE dx/dσ = v maps quantiles (it is affine in x per coordinate and keeps the marginals), so
 *   x_{σ'} = (1 − σ')·μ + √(V_{σ'}/V_σ)·(x_σ − (1 − σ)·μ),
 * its exact solution; σ' = 0 ({@link CLEAN_TIME}) gives the clean end point.
 * @packageDocumentation
 */
import type { DiffusionModel, PredictionType } from './model.js';
import { convertPrediction } from './prediction.js';
import { CLEAN_TIME } from './schedule/noise-schedule.js';
import type { NumArray } from './tensor.js';

/** Options of {@link gaussianFlowModel}. */
export interface GaussianFlowModelOptions {
  /** Data mean μ: a number (every coordinate) or one value per coordinate. Default 0. */
  mean?: number | readonly number[];
  /** Data standard deviation s (every coordinate), > 0. Default 1. */
  std?: number;
  /** Shape of one sample. Default `[1]`. */
  sampleShape?: readonly number[];
  /** What the model returns. Default `flow` (the velocity ε − x0). */
  predictionType?: PredictionType;
}

/** The closed-form rectified-flow model with its exact velocity and ODE solution. */
export interface GaussianFlowModel extends DiffusionModel {
  /** The exact velocity v(x, σ) = E[ε − x0 | x_σ = x] (float64). */
  velocity(x: NumArray, sigma: number): Float64Array;
  /** The exact flow-ODE solution at σ = `tTo` from state `x` at σ = `tFrom` (either may be {@link CLEAN_TIME}, σ = 0). */
  exactOdeSolution(x: NumArray, tFrom: number, tTo: number): NumArray;
  /** Number of calls made so far. */
  readonly calls: number;
}

/** σ of a flow time: the time itself, 0 at {@link CLEAN_TIME}. */
function sigmaOf(t: number): number {
  if (t === CLEAN_TIME) return 0;
  if (!(t >= 0 && t <= 1)) throw new RangeError(`flow time σ = ${t} must lie in [0, 1] (or ${CLEAN_TIME} for σ = 0)`);
  return t;
}

/** Exact rectified-flow model for Gaussian data N(μ, s²·I) (see the file comment). */
export function gaussianFlowModel(opts: GaussianFlowModelOptions = {}): GaussianFlowModel {
  const shape = opts.sampleShape ?? [1];
  const d = shape.reduce((a, b) => a * b, 1);
  const mean = opts.mean ?? 0;
  if (typeof mean !== 'number' && mean.length !== d) throw new RangeError(`mean has ${mean.length} values but a sample has ${d} coordinates`);
  const mu = typeof mean === 'number' ? new Float64Array(d).fill(mean) : Float64Array.from(mean);
  const s = opts.std ?? 1;
  if (!(s > 0)) throw new RangeError(`std must be > 0, got ${s}`);
  const s2 = s * s;
  const type = opts.predictionType ?? 'flow';
  let calls = 0;
  const velocity = (x: NumArray, sigma: number): Float64Array => {
    const a = 1 - sigma;
    const v = a * a * s2 + sigma * sigma;
    const k = (sigma - a * s2) / v;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const m = mu[i % d]!;
      out[i] = k * (x[i]! - a * m) - m;
    }
    return out;
  };
  return {
    predictionType: type,
    sampleShape: shape,
    get calls() {
      return calls;
    },
    velocity,
    async predict(x, call) {
      if (x.length !== call.batch * d) throw new RangeError(`input has ${x.length} values, expected batch ${call.batch} × ${d} per sample`);
      calls++;
      // The velocity at the call's σ; α + σ = 1 on the flow path the call lies on.
      const v = velocity(x, call.sigma);
      const out = x instanceof Float64Array ? v : Float32Array.from(v);
      return convertPrediction('flow', type, out, x, call.alpha, call.sigma);
    },
    exactOdeSolution(x, tFrom, tTo) {
      const sf = sigmaOf(tFrom);
      const st = sigmaOf(tTo);
      const af = 1 - sf;
      const at = 1 - st;
      const ratio = Math.sqrt((at * at * s2 + st * st) / (af * af * s2 + sf * sf));
      const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const m = mu[i % d]!;
        out[i] = at * m + ratio * (x[i]! - af * m);
      }
      return out;
    },
  };
}
