/**
 * TCD's strategic stochastic sampling (Zheng et al. 2024, "Trajectory Consistency Distillation",
 * §4.3 and Alg. 4; diffusers' `TCDScheduler`), for trajectory-consistency-distilled models.
 *
 * From grid time s to the next grid time t, with γ ∈ [0, 1] the stochasticity (diffusers' `eta`,
 * default 0.3) and s' = ⌊(1 − γ)·t⌋ (discrete schedules; (1 − γ)·t on continuous ones):
 *   x_{s'} = α_{s'}·x̂0(x_s) + σ_{s'}·ε̂(x_s)                         (a DDIM jump past t to s')
 *   x_t = (α_t/α_{s'})·x_{s'} + √(σ_t² − (α_t/α_{s'})²·σ_{s'}²)·z,   z ~ N(0, I)  (forward noise back up to t;
 *   √(1 − α_t²/α_{s'}²) on VP schedules)
 * and on the last step x = x_{s'} with no noise. γ = 0 is DDIM; γ = 1 jumps to the end and re-noises.
 * One call per step. Not checked against diffusers here (no parity data for TCD).
 * @packageDocumentation
 */
import { CLEAN_TIME } from '../schedule/noise-schedule.js';
import { linearCombination } from '../tensor.js';
import { ddimTransfer } from './ddim.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link tcdSpec}. */
export interface TcdOptions {
  /** Stochasticity γ ∈ [0, 1] (diffusers' `eta`), default 0.3; 0 is DDIM. */
  gamma: number;
}

/** TCD: one call per step; stochastic for γ > 0. */
export const tcdSpec: SolverSpec<TcdOptions> = defineSolver<TcdOptions>({
  name: 'tcd',
  aliases: ['TCDScheduler'],
  description: 'TCD strategic stochastic sampling (Zheng et al. 2024): DDIM past t to ⌊(1−γ)t⌋, then forward noise to t; gamma 0 = DDIM',
  order: 1,
  stochastic: (o) => o.gamma > 0,
  gridFamily: 'ddim',
  pureNoiseStart: true,
  options: { defaults: { gamma: 0.3 }, rules: { gamma: { kind: 'number', min: 0, max: 1, doc: 'stochasticity γ in [0, 1], default 0.3 (0 = ddim)' } } },
  step:
    ({ gamma }) =>
    async ({ i, steps, s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const { eps, x0 } = await ctx.evaluate(x, s);
      const last = i === steps - 1;
      const raw = (1 - gamma) * t;
      const target = t === CLEAN_TIME ? CLEAN_TIME : sch.kind === 'discrete' ? Math.floor(raw) : Math.max(sch.tMin, raw);
      const jumped = ddimTransfer(sch, x0, eps, target);
      if (last || gamma === 0 || target === t) return { x: jumped, x0, ...(last && target !== t ? { t: target } : {}) };
      // Forward transition s' → t of any Gaussian path: x_t = (α_t/α_s')·x_s' + √(σ_t² − (α_t/α_s')²·σ_s'²)·z (VP: √(1 − α_t²/α_s'²)).
      const ratio = sch.alpha(t) / sch.alpha(target);
      const st = sch.sigma(t);
      const ss = sch.sigma(target);
      return { x: linearCombination([ratio, Math.sqrt(Math.max(0, st * st - ratio * ratio * ss * ss))], [jumped, ctx.noise()]), x0 };
    },
});
