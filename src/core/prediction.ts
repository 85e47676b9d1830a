/**
 * Conversions between the three prediction types at a point (x, α, σ) of a VP path
 * x = α·x0 + σ·ε, with v = α·ε − σ·x0 (Salimans & Ho 2022, "Progressive Distillation", §4).
 *   x0 = (x − σ·ε)/α        ε = (x − α·x0)/σ
 *   x0 = α·x − σ·v          ε = σ·x + α·v
 * @packageDocumentation
 */
import type { PredictionType } from './model.js';
import { axpby, type NumArray } from './tensor.js';

/** A model output expressed as both ε̂ and x̂0 at the point where it was computed. */
export interface Prediction {
  eps: NumArray;
  x0: NumArray;
}

/** ε̂ from a raw output of the given type at (x, α, σ). */
export function toEpsilon(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  switch (type) {
    case 'epsilon':
      return out;
    case 'sample':
      if (sigma === 0) throw new RangeError('ε is undefined at σ = 0 (the clean end point)');
      return axpby(1 / sigma, x, -alpha / sigma, out);
    case 'v_prediction':
      return axpby(sigma, x, alpha, out);
  }
}

/** x̂0 from a raw output of the given type at (x, α, σ). */
export function toX0(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  switch (type) {
    case 'epsilon':
      if (alpha === 0) throw new RangeError('x0 is undefined from ε at α = 0: use v-prediction with zero-terminal-SNR schedules');
      return axpby(1 / alpha, x, -sigma / alpha, out);
    case 'sample':
      return out;
    case 'v_prediction':
      return axpby(alpha, x, -sigma, out);
  }
}

/** v̂ from a raw output of the given type at (x, α, σ). */
export function toV(type: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  if (type === 'v_prediction') return out;
  const eps = toEpsilon(type, out, x, alpha, sigma);
  const x0 = toX0(type, out, x, alpha, sigma);
  return axpby(alpha, eps, -sigma, x0);
}

/** Convert a raw output to any prediction type. */
export function convertPrediction(from: PredictionType, to: PredictionType, out: NumArray, x: NumArray, alpha: number, sigma: number): NumArray {
  if (from === to) return out;
  if (to === 'epsilon') return toEpsilon(from, out, x, alpha, sigma);
  if (to === 'sample') return toX0(from, out, x, alpha, sigma);
  return toV(from, out, x, alpha, sigma);
}
