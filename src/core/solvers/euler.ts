/**
 * Euler's method on the probability-flow ODE in Karras et al. 2022 ("Elucidating the Design Space
 * of Diffusion-Based Generative Models") coordinates: x̃ = x/α, ρ = σ/α, where the ODE is
 *   dx̃/dρ = (x̃ − x̂0)/ρ = ε̂     (Alg. 1 with the Euler step only).
 * Step s→t:  x̃_t = x̃_s + (ρ_t − ρ_s)·ε̂,  i.e.  x_t = (α_t/α_s)·x_s + α_t·(ρ_t − ρ_s)·ε̂.
 * Equal to deterministic DDIM in exact arithmetic; exact at the clean end point (ρ = 0, α = 1).
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { veSigma } from '../schedule/noise-schedule.js';
import { axpby, type NumArray } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** euler takes no options. */
export type EulerOptions = Record<string, never>;

/** x_s + (ρ_t − ρ_s)·d in x̃ = x/α coordinates, mapped back to x: the Euler step with slope d. */
export function veEulerStep(schedule: NoiseSchedule, x: NumArray, d: NumArray, s: number, t: number): NumArray {
  const at = schedule.alpha(t);
  return axpby(at / schedule.alpha(s), x, at * (veSigma(schedule, t) - veSigma(schedule, s)), d);
}

/** Euler (Karras et al. 2022): first order, one call per step. */
export const eulerSpec: SolverSpec<EulerOptions> = defineSolver<EulerOptions>({
  name: 'euler',
  aliases: ['EulerDiscreteScheduler', 'k_euler'],
  description: 'Euler on the probability-flow ODE in σ/α (Karras et al. 2022), first order',
  order: 1,
  gridFamily: 'euler',
  step:
    () =>
    async ({ s, t, x, ctx }) => {
      const { eps, x0 } = await ctx.evaluate(x, s);
      return { x: veEulerStep(ctx.schedule, x, eps, s, t), x0 };
    },
});
