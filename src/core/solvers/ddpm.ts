/**
 * DDPM ancestral sampling (Ho, Jain & Abbeel 2020) between consecutive grid points.
 *
 * From s (noisier) to t, with α_{s|t} = α_s/α_t and σ²_{s|t} = σ_s² − α_{s|t}²·σ_t² (= 1 − α_s²/α_t² on
 * VP schedules; the general form holds on any Gaussian path, rectified flow included) (the "β" of
 * the jump), the posterior q(x_t | x_s, x̂0) has (eq. 6–7)
 *   mean     μ = (α_{s|t}·σ_t²/σ_s²)·x_s + (α_t·σ²_{s|t}/σ_s²)·x̂0,
 *   variance 'fixed_small': β̃ = σ²_{s|t}·σ_t²/σ_s²    'fixed_large': β = σ²_{s|t},
 * and x_t = μ + √variance·z. No noise is added on the step into the clean end point (σ_t = 0), where
 * the update is x̂0 exactly (as diffusers does at t = 0) — unless `varianceFloor` > 0: diffusers
 * clamps the variance below at 10⁻²⁰, so its step from t > 0 into the clean point adds 10⁻¹⁰·z
 * (2·10⁻¹⁰ on the SD 1.5 parity data); the config loader sets that floor for DDPMScheduler.
 * @packageDocumentation
 */
import { linearCombination } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link ddpmSpec}. */
export interface DdpmOptions {
  /** Posterior variance: β̃ (`fixed_small`, default) or β (`fixed_large`), diffusers' `variance_type`. */
  varianceType: 'fixed_small' | 'fixed_large';
  /** Lower bound of the posterior variance (diffusers clamps at 1e-20). Default 0. */
  varianceFloor: number;
}

/** DDPM ancestral sampler: one call per step, stochastic. */
export const ddpmSpec: SolverSpec<DdpmOptions> = defineSolver<DdpmOptions>({
  name: 'ddpm',
  aliases: ['DDPMScheduler'],
  description: 'DDPM ancestral sampling (Ho et al. 2020): posterior mean plus fixed_small/fixed_large noise',
  order: 1,
  stochastic: true,
  gridFamily: 'ddim',
  pureNoiseStart: true,
  options: {
    defaults: { varianceType: 'fixed_small', varianceFloor: 0 },
    rules: {
      varianceType: { kind: 'enum', values: ['fixed_small', 'fixed_large'], doc: "posterior variance 'fixed_small' (default) or 'fixed_large'" },
      varianceFloor: { kind: 'number', min: 0, max: 1e-6, doc: 'lower bound of the variance, default 0 (diffusers: 1e-20)' },
    },
  },
  step:
    ({ varianceType, varianceFloor }) =>
    async ({ s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const { x0 } = await ctx.evaluate(x, s);
      const as = sch.alpha(s);
      const ss = sch.sigma(s);
      const at = sch.alpha(t);
      const st = sch.sigma(t);
      const jumpVar = Math.max(0, ss * ss - ((as * as) / (at * at)) * st * st); // σ²_{s|t} (1 − α_s²/α_t² on VP schedules)
      const cx = ((as / at) * st * st) / (ss * ss);
      const c0 = (at * jumpVar) / (ss * ss);
      if (st === 0 && !(varianceFloor > 0 && s > 0)) return { x: linearCombination([cx, c0], [x, x0]), x0 };
      const variance = Math.max(varianceFloor, varianceType === 'fixed_small' ? (jumpVar * st * st) / (ss * ss) : jumpVar);
      return { x: linearCombination([cx, c0, Math.sqrt(variance)], [x, x0, ctx.noise()]), x0 };
    },
});
