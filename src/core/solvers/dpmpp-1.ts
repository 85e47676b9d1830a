/**
 * DPM-Solver++(1) (Lu et al. 2022, "DPM-Solver++", eq. 9 with k = 1): DDIM written in x̂0 form.
 *
 * From s to t with h = λ_t − λ_s and x̂0 predicted at (x_s, s):
 *   x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·x̂0.
 * Equal to deterministic DDIM in exact arithmetic. At the clean end point (σ_t = 0, h = +∞) it gives
 * x_t = x̂0 exactly.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { axpby, type NumArray } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** dpmpp_1 takes no options. */
export type Dpmpp1Options = Record<string, never>;

/** The x̂0-form first-order transfer from (x_s, s) to t (the update PFDiff reuses for data prediction). */
export function dpmpp1Transfer(schedule: NoiseSchedule, x: NumArray, x0: NumArray, s: number, t: number): NumArray {
  const h = schedule.lambda(t) - schedule.lambda(s);
  return axpby(schedule.sigma(t) / schedule.sigma(s), x, -schedule.alpha(t) * Math.expm1(-h), x0);
}

/** DPM-Solver++(1): first order, one call per step. */
export const dpmpp1Spec: SolverSpec<Dpmpp1Options> = defineSolver<Dpmpp1Options>({
  name: 'dpmpp_1',
  aliases: ['dpm_solver_pp_1', 'dpmsolver++1'],
  description: 'DPM-Solver++(1) (Lu et al. 2022): DDIM in data-prediction (x̂0) form, first order',
  order: 1,
  gridFamily: 'dpm',
  step:
    () =>
    async ({ s, t, x, ctx }) => {
      const { x0 } = await ctx.evaluate(x, s);
      return { x: dpmpp1Transfer(ctx.schedule, x, x0, s, t), x0 };
    },
});
