/**
 * Heun's second-order method (Karras et al. 2022, Alg. 1) in x̃ = x/α, ρ = σ/α coordinates, where
 * dx̃/dρ = ε̂. Step s→t with Δρ = ρ_t − ρ_s:
 *   d_s = ε̂(x_s, s),   x̃' = x̃_s + Δρ·d_s,   d_t = ε̂(x', t),   x̃_t = x̃_s + Δρ·(d_s + d_t)/2.
 * The correction needs a call at t, impossible at the clean end point (ρ = 0): as in Alg. 1, a step
 * into ρ = 0 is a plain Euler step. With `lowerOrderFinal` (default true) the last step is always
 * Euler, so a run of M steps costs exactly 2M − 1 calls on every grid; with it off, the last step
 * is corrected too (2M calls) and the grid must end at σ > 0.
 * On a rectified-flow schedule the slopes are the velocities û = ε̂ − x̂0 and the steps are taken in
 * (x, σ) (euler.ts): x_t = x_s + Δσ·(û_s + û_t)/2 — diffusers' FlowMatchHeunDiscreteScheduler.
 * @packageDocumentation
 */
import { linearCombination } from '../tensor.js';
import { defineSolver, requireFinalSecondStage, TWO_STAGE_COST } from './define-solver.js';
import { NOISE_START_RULE, noiseStartState, odeEulerStep, odeSlope, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link heunSpec}. */
export interface HeunOptions {
  /** Last step without the correction (default true; required when the grid ends at σ = 0). */
  lowerOrderFinal: boolean;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** Heun (Karras et al. 2022): second order, two calls per step (one on the final Euler step). */
export const heunSpec: SolverSpec<HeunOptions> = defineSolver<HeunOptions>({
  name: 'heun',
  aliases: ['HeunDiscreteScheduler', 'FlowMatchHeunDiscreteScheduler', 'k_heun'],
  description: "Heun's method in σ/α (Karras et al. 2022 Alg. 1), second order, 2 calls per step, last step Euler",
  order: 2,
  gridFamily: 'euler',
  options: {
    defaults: { lowerOrderFinal: true, noiseStart: 'unit' },
    rules: { lowerOrderFinal: { kind: 'boolean', doc: 'last step without the correction, default true' }, noiseStart: NOISE_START_RULE },
  },
  cost: TWO_STAGE_COST,
  pureNoiseStart: true,
  checkGrid: requireFinalSecondStage('heun', 'cannot correct the step into σ = 0 (the clean end point)'),
  step:
    ({ lowerOrderFinal, noiseStart }) =>
    async ({ i, steps, s, t, x: given, ctx }) => {
      const sch = ctx.schedule;
      const x = i === 0 ? noiseStartState(sch, given, s, noiseStart) : given;
      const first = await ctx.evaluate(x, s);
      const d1 = odeSlope(sch, first);
      const predicted = odeEulerStep(sch, x, d1, s, t);
      if (lowerOrderFinal && i === steps - 1) return { x: predicted, x0: first.x0 };
      const second = await ctx.evaluate(predicted, t);
      return { x: odeEulerStep(sch, x, linearCombination([0.5, 0.5], [d1, odeSlope(sch, second)]), s, t), x0: second.x0 };
    },
});
