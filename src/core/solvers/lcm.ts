/**
 * LCM multistep sampling (Luo et al. 2023, "Latent Consistency Models", Alg. 3; diffusers'
 * `LCMScheduler`), for consistency-distilled models (LCM, LCM-LoRA): each step maps the state to
 * the consistency function's estimate of x0 and re-noises it to the next time.
 *
 * At grid time s (the network's discrete timestep) with x̂0 the model's data prediction, the
 * consistency parametrisation's boundary scalings (Song et al. 2023, §3; LCM's discrete form with
 * σ_data = 0.5 and the time scaled by `timestepScaling` = 10) are
 *   c_skip = σ_data² / ((10·s)² + σ_data²),   c_out = 10·s / √((10·s)² + σ_data²),
 *   f(x_s) = c_skip·x_s + c_out·x̂0,
 * then x_t = α_t·f(x_s) + σ_t·z with fresh z ~ N(0, I), and on the last step x = f(x_s) (no noise).
 * One call per step, stochastic. Use the `lcm` timestep spacing for LCM models' own grid.
 * @packageDocumentation
 */
import { linearCombination } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link lcmSpec}. */
export interface LcmOptions {
  /** The time scaling of the boundary condition (diffusers' `timestep_scaling`, default 10). */
  timestepScaling: number;
  /** σ_data of the boundary condition (default 0.5). */
  sigmaData: number;
}

/** The consistency boundary scalings (c_skip, c_out) at model time `t` (see the file comment). */
export function lcmScalings(t: number, timestepScaling: number, sigmaData: number): { cSkip: number; cOut: number } {
  const st = t * timestepScaling;
  const d2 = sigmaData * sigmaData;
  return { cSkip: d2 / (st * st + d2), cOut: st / Math.sqrt(st * st + d2) };
}

/** LCM: consistency estimate of x0, re-noised to the next time. */
export const lcmSpec: SolverSpec<LcmOptions> = defineSolver<LcmOptions>({
  name: 'lcm',
  aliases: ['LCMScheduler'],
  description: 'LCM multistep consistency sampling (Luo et al. 2023): x̂0 by the boundary condition, re-noised each step, 1 call per step',
  // A consistency sampler, not an ODE solver: order 1 is the nominal value of one call per step.
  order: 1,
  stochastic: true,
  gridFamily: 'ddim',
  options: {
    defaults: { timestepScaling: 10, sigmaData: 0.5 },
    rules: {
      timestepScaling: { kind: 'number', min: 0, doc: 'time scaling of the boundary condition, default 10' },
      sigmaData: { kind: 'number', min: 0, minExclusive: true, doc: 'σ_data of the boundary condition, default 0.5' },
    },
  },
  step:
    ({ timestepScaling, sigmaData }) =>
    async ({ i, steps, s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const { x0 } = await ctx.evaluate(x, s);
      const { cSkip, cOut } = lcmScalings(sch.modelTime(s), timestepScaling, sigmaData);
      const denoised = linearCombination([cSkip, cOut], [x, x0]);
      if (i === steps - 1 || sch.sigma(t) === 0) return { x: denoised, x0: denoised };
      return { x: linearCombination([sch.alpha(t), sch.sigma(t)], [denoised, ctx.noise()]), x0: denoised };
    },
});
