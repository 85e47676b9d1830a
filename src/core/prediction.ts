/**
 * Conversions between the prediction types at a point (x, α, σ) of a Gaussian path
 * x = α·x0 + σ·ε, for any schedule (VP, EDM's VP twin, rectified flow).
 *
 * VP velocity (Salimans & Ho 2022, "Progressive Distillation", §4), v = α·ε − σ·x0:
 *   x0 = (x − σ·ε)/α        ε = (x − α·x0)/σ
 *   x0 = (α·x − σ·v)/(α² + σ²)        ε = (σ·x + α·v)/(α² + σ²)
 * (α² + σ² = 1 on VP schedules, where this is the familiar x0 = α·x − σ·v, ε = σ·x + α·v.)
 *
 * Flow velocity (rectified flow, Liu et al. 2023; Lipman et al. 2023; SD3's `flow_prediction`),
 * u = ε − x0, the time derivative dx/dσ of the rectified-flow path x = (1 − σ)·x0 + σ·ε. From
 * x = α·x0 + σ·ε and u = ε − x0 (so ε = u + x0):
 *   x0 = (x − σ·u)/(α + σ)        ε = (x + α·u)/(α + σ)
 * On rectified flow (α + σ = 1) these are x0 = x − σ·u and ε = x + (1 − σ)·u, defined on the whole
 * path including the pure-noise end σ = 1 (α = 0), where ε-prediction cannot give x0.
 * @packageDocumentation
 */
import type { PredictionType } from './model.js';
import { axpby, type NumArray } from './tensor.js';

/** A model output expressed as both ε̂ and x̂0 at the point where it was computed. */
export interface Prediction {
  eps: NumArray;
  x0: NumArray;
  /**
   * The network's own flow velocity û = ε̂ − x̂0, set when it predicts `flow` and x̂0 was not
   * post-processed (clipping, thresholding): the flow Euler family steps with it as it came, not
   * with ε̂ − x̂0 recomputed in the state's precision.
   */
  velocity?: NumArray;
}

/**
 * α² + σ², the divisor of the VP-v conversions; exactly 1 where it is 1 up to rounding (VP and EDM
 * schedules), so those conversions stay the plain α·x − σ·v, σ·x + α·v bit for bit.
 */
function vpNorm(alpha: number, sigma: number): number {
  const n = alpha * alpha + sigma * sigma;
  return Math.abs(n - 1) < 1e-12 ? 1 : n;
}

/** ε̂ from a raw output of the given type at (x, α, σ). */
export function toEpsilon(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  switch (type) {
    case 'epsilon':
      return out;
    case 'sample':
      if (sigma === 0) throw new RangeError('ε is undefined at σ = 0 (the clean end point)');
      return axpby(1 / sigma, x, -alpha / sigma, out);
    case 'v_prediction': {
      const n = vpNorm(alpha, sigma);
      return axpby(sigma / n, x, alpha / n, out);
    }
    case 'flow':
      return axpby(1 / (alpha + sigma), x, alpha / (alpha + sigma), out);
  }
}

/** x̂0 from a raw output of the given type at (x, α, σ). */
export function toX0(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  switch (type) {
    case 'epsilon':
      if (alpha === 0) {
        throw new RangeError('x0 is undefined from ε at α = 0: use v-prediction with zero-terminal-SNR schedules, or flow prediction on flow schedules');
      }
      return axpby(1 / alpha, x, -sigma / alpha, out);
    case 'sample':
      return out;
    case 'v_prediction': {
      const n = vpNorm(alpha, sigma);
      return axpby(alpha / n, x, -sigma / n, out);
    }
    case 'flow':
      return axpby(1 / (alpha + sigma), x, -sigma / (alpha + sigma), out);
  }
}

/** VP v̂ = α·ε̂ − σ·x̂0 from a raw output of the given type at (x, α, σ). */
export function toV(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  if (type === 'v_prediction') return out;
  const eps = toEpsilon(type, out, x, alpha, sigma);
  const x0 = toX0(type, out, x, alpha, sigma);
  return axpby(alpha, eps, -sigma, x0);
}

/** Flow velocity û = ε̂ − x̂0 from a raw output of the given type at (x, α, σ). */
export function toFlow(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  if (type === 'flow') return out;
  const eps = toEpsilon(type, out, x, alpha, sigma);
  const x0 = toX0(type, out, x, alpha, sigma);
  return axpby(1, eps, -1, x0);
}

/** Convert a raw output to any prediction type. */
export function convertPrediction(from: PredictionType, to: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  if (from === to) return out;
  switch (to) {
    case 'epsilon':
      return toEpsilon(from, out, x, alpha, sigma);
    case 'sample':
      return toX0(from, out, x, alpha, sigma);
    case 'v_prediction':
      return toV(from, out, x, alpha, sigma);
    case 'flow':
      return toFlow(from, out, x, alpha, sigma);
  }
}
