/**
 * DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models"), ε-form, with η.
 *
 * From s (noisier) to t, with x̂0 and ε̂ predicted at (x_s, s), eq. (12) in α/σ notation
 * (α = √ᾱ, σ = √(1 − ᾱ)):
 *   x_t = α_t·x̂0 + √(σ_t² − c²)·ε̂ + c·z,   z ~ N(0, I),
 * with eq. (16): c = η·(σ_t/σ_s)·√(1 − α_s²/α_t²). η = 0 is the deterministic DDIM (the probability-
 * flow ODE's Euler step in x/α, σ/α); η = 1 is the DDPM posterior between the two grid points.
 * At the clean end point (σ_t = 0) the update is x̂0 exactly.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link ddimSpec}. */
export interface DdimOptions {
  /** Stochasticity η ∈ [0, 1]: 0 deterministic (default), 1 DDPM-like. */
  eta: number;
}

/** DDIM's noise scale c between s and t (eq. 16); 0 at the clean end point. */
export function ddimNoiseScale(schedule: NoiseSchedule, s: number, t: number, eta: number): number {
  const st = schedule.sigma(t);
  if (eta === 0 || st === 0) return 0;
  const as = schedule.alpha(s);
  const at = schedule.alpha(t);
  return eta * (st / schedule.sigma(s)) * Math.sqrt(Math.max(0, 1 - (as * as) / (at * at)));
}

/**
 * One DDIM update to time t from a prediction (x̂0, ε̂): α_t·x̂0 + √(σ_t² − c²)·ε̂ (+ c·z when c > 0).
 * With c = 0 this is the ε-form transfer PFDiff and PLMS reuse.
 */
export function ddimTransfer(schedule: NoiseSchedule, x0: NumArray, eps: NumArray, t: number, noiseScale = 0, z?: NumArray): NumArray {
  const at = schedule.alpha(t);
  const st = schedule.sigma(t);
  const dirScale = Math.sqrt(Math.max(0, st * st - noiseScale * noiseScale));
  if (noiseScale > 0) {
    if (!z) throw new Error('ddimTransfer: a noise array z is needed when the noise scale is positive');
    return linearCombination([at, dirScale, noiseScale], [x0, eps, z]);
  }
  return linearCombination([at, dirScale], [x0, eps]);
}

/** DDIM: first order, one call per step; stochastic when η > 0. */
export const ddimSpec: SolverSpec<DdimOptions> = defineSolver<DdimOptions>({
  name: 'ddim',
  aliases: ['DDIMScheduler'],
  description: 'DDIM (Song et al. 2021), ε-form, first order; eta > 0 adds DDPM-like noise',
  order: 1,
  stochastic: (o) => o.eta > 0,
  gridFamily: 'ddim',
  options: { defaults: { eta: 0 }, rules: { eta: { kind: 'number', min: 0, max: 1, doc: 'stochasticity η in [0, 1], default 0' } } },
  step:
    ({ eta }) =>
    async ({ s, t, x, ctx }) => {
      const { eps, x0 } = await ctx.evaluate(x, s);
      const c = ddimNoiseScale(ctx.schedule, s, t, eta);
      return { x: ddimTransfer(ctx.schedule, x0, eps, t, c, c > 0 ? ctx.noise() : undefined), x0 };
    },
});
