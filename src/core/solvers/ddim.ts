/**
 * DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models"), ε-form, with η.
 *
 * From s (noisier) to t, with x̂0 and ε̂ predicted at (x_s, s), eq. (12) in α/σ notation
 * (α = √ᾱ, σ = √(1 − ᾱ)):
 *   x_t = α_t·x̂0 + √(σ_t² − c²)·ε̂ + c·z,   z ~ N(0, I),
 * with eq. (16): c = η·(σ_t/σ_s)·√(1 − α_s²/α_t²). η = 0 is the deterministic DDIM (the probability-
 * flow ODE's Euler step in x/α, σ/α); η = 1 is the DDPM posterior between the two grid points.
 * At the clean end point (σ_t = 0) the update is x̂0 exactly.
 *
 * Where the step lands (`stepping`):
 * - `'grid'` (default): on the next grid time, as the DDIM paper's sub-sequence τ.
 * - `'ratio'`: diffusers' DDIMScheduler, t' = s − ⌊T/N⌋ (T training steps, N grid intervals), or the
 *   grid's terminal when t' < 0. On `leading` grids t' is the next grid time (identical); on
 *   `trailing` grids whose spacing is not ⌊T/N⌋ (SD 1.5 at N = 6: 999 → 833, the next call at 832)
 *   and on `linspace` grids the state lands off the grid, and the next call treats it as lying at
 *   the next grid time. Measured on the SD 1.5 closed-form parity data: the final samples differ
 *   from `'grid'` by 1.9·10⁻³ (trailing, N = 6) and 1.7·10⁻²…5.8·10⁻¹ (linspace, N = 50…4) — see
 *   docs/diffusers-parity.md.
 * A zero-length last interval (a grid ending at t = 0 followed by the terminal t = 0) is the
 * identity step x_t = α_s·x̂0 + σ_s·ε̂ = x_s (after its model call), as in diffusers.
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
  /** Where a step lands: the next grid time (`'grid'`, default) or s − ⌊T/N⌋ (`'ratio'`, diffusers). */
  stepping: 'grid' | 'ratio';
}

/** diffusers' DDIM landing time from s on a grid of `steps` intervals: s − ⌊T/N⌋, or the terminal below 0. */
export function ratioLanding(schedule: NoiseSchedule, s: number, steps: number, terminal: number): number {
  const n = schedule.numTrainTimesteps;
  if (schedule.kind !== 'discrete' || n === undefined) {
    throw new RangeError("ddim stepping 'ratio' needs a discrete schedule (it counts training steps): use stepping 'grid'");
  }
  const landing = s - Math.floor(n / steps);
  return landing >= 0 ? landing : terminal;
}

/**
 * DDIM's noise scale c between s and t (eq. 16); 0 at the clean end point. Eq. 16 is the DDPM
 * posterior std of x_t given (x_s, x0); written for any Gaussian path (not only α² + σ² = 1) it is
 *   c = η·σ_t·√(1 − (α_s·σ_t/(α_t·σ_s))²) = η·σ_t·√(1 − e^{−2(λ_t − λ_s)}),
 * which on VP schedules equals η·(σ_t/σ_s)·√(1 − α_s²/α_t²).
 */
export function ddimNoiseScale(schedule: NoiseSchedule, s: number, t: number, eta: number): number {
  const st = schedule.sigma(t);
  if (eta === 0 || st === 0) return 0;
  const as = schedule.alpha(s);
  const at = schedule.alpha(t);
  const r = (as * st) / (at * schedule.sigma(s));
  return eta * st * Math.sqrt(Math.max(0, 1 - r * r));
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
  identityFinalStep: true,
  pureNoiseStart: true,
  options: {
    defaults: { eta: 0, stepping: 'grid' },
    rules: {
      eta: { kind: 'number', min: 0, max: 1, doc: 'stochasticity η in [0, 1], default 0' },
      stepping: { kind: 'enum', values: ['grid', 'ratio'], doc: "land on the next grid time ('grid', default) or at s − ⌊T/N⌋ ('ratio', diffusers)" },
    },
  },
  checkGrid(timesteps, schedule, { stepping }) {
    if (stepping !== 'ratio') return;
    const i = timesteps.slice(0, -1).findIndex((t) => !Number.isInteger(t));
    if (schedule.kind !== 'discrete' || i >= 0) {
      throw new RangeError(
        `ddim stepping 'ratio' (diffusers' t → t − ⌊T/N⌋) needs integer times of a discrete schedule, got ` +
          `${schedule.kind !== 'discrete' ? 'a continuous schedule' : `timesteps[${i}] = ${timesteps[i]}`}: use stepping 'grid' on this grid`,
      );
    }
  },
  step: ({ eta, stepping }, { steps, timesteps }) => {
    const terminal = timesteps[timesteps.length - 1]!;
    return async ({ s, t, x, ctx }) => {
      const { eps, x0 } = await ctx.evaluate(x, s);
      const to = stepping === 'ratio' ? ratioLanding(ctx.schedule, s, steps, terminal) : t;
      const c = ddimNoiseScale(ctx.schedule, s, to, eta);
      const next = ddimTransfer(ctx.schedule, x0, eps, to, c, c > 0 ? ctx.noise() : undefined);
      return to === t ? { x: next, x0 } : { x: next, x0, t: to };
    };
  },
});
