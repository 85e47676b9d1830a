/**
 * Heun's second-order method (Karras et al. 2022, Alg. 1) in x̃ = x/α, ρ = σ/α coordinates, where
 * dx̃/dρ = ε̂. Step s→t with Δρ = ρ_t − ρ_s:
 *   d_s = ε̂(x_s, s),   x̃' = x̃_s + Δρ·d_s,   d_t = ε̂(x', t),   x̃_t = x̃_s + Δρ·(d_s + d_t)/2.
 * The correction needs a call at t, impossible at the clean end point (ρ = 0): as in Alg. 1, a step
 * into ρ = 0 is a plain Euler step. With `lowerOrderFinal` (default true) the last step is always
 * Euler, so a run of M steps costs exactly 2M − 1 calls on every grid; with it off, the last step
 * is corrected too (2M calls) and the grid must end at σ > 0.
 * @packageDocumentation
 */
import { linearCombination } from '../tensor.js';
import type { Solver, SolverSpec } from './types.js';
import { veEulerStep } from './euler.js';
import { checkTimesteps, maxStepsWithin, resolveOptions, type OptionRules } from './validation.js';

/** Options of {@link heunSpec}. */
export interface HeunOptions {
  /** Last step without the correction (default true; required when the grid ends at σ = 0). */
  lowerOrderFinal: boolean;
}

const DEFAULTS: HeunOptions = { lowerOrderFinal: true };
const RULES: OptionRules<HeunOptions> = { lowerOrderFinal: { kind: 'boolean' } };

function create(options?: Partial<HeunOptions>): Solver {
  const { lowerOrderFinal } = resolveOptions('heun', options, DEFAULTS, RULES);
  return async (x, timesteps, ctx) => {
    const sch = ctx.schedule;
    checkTimesteps('heun', sch, timesteps);
    const steps = timesteps.length - 1;
    if (!lowerOrderFinal && sch.sigma(timesteps[steps]!) === 0) {
      throw new Error(
        'heun with lowerOrderFinal: false cannot correct the step into σ = 0 (the clean end point): set lowerOrderFinal: true or end the grid at a time with σ > 0',
      );
    }
    for (let i = 0; i < steps; i++) {
      const s = timesteps[i]!;
      const t = timesteps[i + 1]!;
      const first = await ctx.evaluate(x, s);
      const predicted = veEulerStep(sch, x, first.eps, s, t);
      if (lowerOrderFinal && i === steps - 1) {
        x = predicted;
        await ctx.step({ step: i, steps, t, x, x0: first.x0 });
      } else {
        const second = await ctx.evaluate(predicted, t);
        x = veEulerStep(sch, x, linearCombination([0.5, 0.5], [first.eps, second.eps]), s, t);
        await ctx.step({ step: i, steps, t, x, x0: second.x0 });
      }
    }
    return x;
  };
}

/** Heun (Karras et al. 2022): second order, two calls per step (one on the final Euler step). */
export const heunSpec: SolverSpec<HeunOptions> = {
  name: 'heun',
  aliases: ['HeunDiscreteScheduler', 'k_heun'],
  description: "Heun's method in σ/α (Karras et al. 2022 Alg. 1), second order, 2 calls per step, last step Euler",
  order: 2,
  stochastic: false,
  gridFamily: 'euler',
  callsForSteps(steps, options) {
    const { lowerOrderFinal } = resolveOptions('heun', options, DEFAULTS, RULES);
    return 2 * steps - (lowerOrderFinal ? 1 : 0);
  },
  stepsForCalls(nfe, options) {
    return maxStepsWithin('heun', nfe, (m) => this.callsForSteps(m, options));
  },
  create,
};
