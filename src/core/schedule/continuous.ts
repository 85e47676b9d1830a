/**
 * Continuous VP schedule with linear β(t) (Song et al. 2021, ScoreSDE; DPM-Solver's "linear" VP).
 *
 * β(t) = β₀ + t·(β₁ − β₀), t ∈ [ε, 1]; log α_t = −(β₁−β₀)·t²/4 − β₀·t/2; σ_t = √(1 − α_t²).
 * Inverse of λ = log α_t − log σ_t (the closed-form t_λ of DPM-Solver's linear VP schedule, Lu et al.
 * 2022): α_t² = 1/(1 + e^{−2λ}), so with L = log(1 + e^{−2λ}) the time solves the quadratic
 * (β₁−β₀)·t² + 2β₀·t − 2L = 0, whose positive root, written without cancellation, is
 * t = 2L / (√Δ + β₀) with Δ = β₀² + 2(β₁−β₀)·L.
 * @packageDocumentation
 */
import type { NoiseSchedule } from './noise-schedule.js';

/** Options of {@link continuousVpSchedule}. */
export interface ContinuousVpOptions {
  /** β₀, default 0.1. */
  betaMin?: number;
  /** β₁, default 20. */
  betaMax?: number;
  /** Smallest time used for sampling, default 1e-3. */
  eps?: number;
  /** The network receives `t · timeInputScale` (ScoreSDE's continuous DDPM++ uses 999). Default 999. */
  timeInputScale?: number;
}

/** log(1 + eˣ), stable. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** A continuous-time VP schedule with linear β(t). */
export function continuousVpSchedule(opts: ContinuousVpOptions = {}): NoiseSchedule {
  const b0 = opts.betaMin ?? 0.1;
  const b1 = opts.betaMax ?? 20;
  const eps = opts.eps ?? 1e-3;
  const scale = opts.timeInputScale ?? 999;
  if (!(b1 > b0 && b0 >= 0)) throw new RangeError(`need 0 ≤ betaMin < betaMax, got ${b0}, ${b1}`);
  const check = (t: number): void => {
    if (!(t > 0 && t <= 1)) throw new RangeError(`continuous time ${t} must lie in (0, 1]`);
  };
  const logAlpha = (t: number): number => -0.25 * t * t * (b1 - b0) - 0.5 * t * b0;
  const alpha = (t: number): number => (check(t), Math.exp(logAlpha(t)));
  const logSigma = (t: number): number => 0.5 * Math.log(-Math.expm1(2 * logAlpha(t)));
  return {
    kind: 'continuous',
    tMax: 1,
    tMin: eps,
    alpha,
    sigma: (t) => (check(t), Math.exp(logSigma(t))),
    lambda: (t) => (check(t), logAlpha(t) - logSigma(t)),
    timeOfLambda: (l) => {
      const tmp = 2 * (b1 - b0) * softplus(-2 * l);
      const delta = b0 * b0 + tmp;
      return tmp / (Math.sqrt(delta) + b0) / (b1 - b0);
    },
    modelTime: (t) => t * scale,
  };
}
