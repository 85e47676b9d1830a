/**
 * DDPM ancestral sampling (Ho, Jain & Abbeel 2020) between consecutive grid points.
 *
 * From s (noisier) to t, with α_{s|t} = α_s/α_t and σ²_{s|t} = σ_s² − α_{s|t}²·σ_t² = 1 − α_s²/α_t²
 * (the "β" of the jump), the posterior q(x_t | x_s, x̂0) has (eq. 6–7)
 *   mean     μ = (α_{s|t}·σ_t²/σ_s²)·x_s + (α_t·σ²_{s|t}/σ_s²)·x̂0,
 *   variance 'fixed_small': β̃ = σ²_{s|t}·σ_t²/σ_s²    'fixed_large': β = σ²_{s|t},
 * and x_t = μ + √variance·z. No noise is added on the step into the clean end point (σ_t = 0), where
 * the update is x̂0 exactly (as diffusers does at t = 0).
 * @packageDocumentation
 */
import { linearCombination } from '../tensor.js';
import type { Solver, SolverSpec } from './types.js';
import { checkTimesteps, maxStepsWithin, resolveOptions, type OptionRules } from './validation.js';

/** Options of {@link ddpmSpec}. */
export interface DdpmOptions {
  /** Posterior variance: β̃ (`fixed_small`, default) or β (`fixed_large`), diffusers' `variance_type`. */
  varianceType: 'fixed_small' | 'fixed_large';
}

const DEFAULTS: DdpmOptions = { varianceType: 'fixed_small' };
const RULES: OptionRules<DdpmOptions> = { varianceType: { kind: 'enum', values: ['fixed_small', 'fixed_large'] } };

function create(options?: Partial<DdpmOptions>): Solver {
  const { varianceType } = resolveOptions('ddpm', options, DEFAULTS, RULES);
  return async (x, timesteps, ctx) => {
    const sch = ctx.schedule;
    checkTimesteps('ddpm', sch, timesteps);
    const steps = timesteps.length - 1;
    for (let i = 0; i < steps; i++) {
      const s = timesteps[i]!;
      const t = timesteps[i + 1]!;
      const { x0 } = await ctx.evaluate(x, s);
      const as = sch.alpha(s);
      const ss = sch.sigma(s);
      const at = sch.alpha(t);
      const st = sch.sigma(t);
      const jumpVar = Math.max(0, 1 - (as * as) / (at * at)); // σ²_{s|t}
      const cx = ((as / at) * st * st) / (ss * ss);
      const c0 = (at * jumpVar) / (ss * ss);
      if (st === 0) {
        x = linearCombination([cx, c0], [x, x0]);
      } else {
        const variance = varianceType === 'fixed_small' ? (jumpVar * st * st) / (ss * ss) : jumpVar;
        x = linearCombination([cx, c0, Math.sqrt(variance)], [x, x0, ctx.noise()]);
      }
      await ctx.step({ step: i, steps, t, x, x0 });
    }
    return x;
  };
}

/** DDPM ancestral sampler: one call per step, stochastic. */
export const ddpmSpec: SolverSpec<DdpmOptions> = {
  name: 'ddpm',
  aliases: ['DDPMScheduler'],
  description: 'DDPM ancestral sampling (Ho et al. 2020): posterior mean plus fixed_small/fixed_large noise',
  order: 1,
  stochastic: true,
  gridFamily: 'ddim',
  callsForSteps(steps, options) {
    resolveOptions('ddpm', options, DEFAULTS, RULES);
    return steps;
  },
  stepsForCalls(nfe, options) {
    return maxStepsWithin('ddpm', nfe, (m) => this.callsForSteps(m, options));
  },
  create,
};
