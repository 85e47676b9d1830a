/**
 * PLMS, the pseudo linear multistep method of PNDM (Liu et al. 2022, "Pseudo Numerical Methods for
 * Diffusion Models on Manifolds", eq. 12), as diffusers runs it with `skip_prk_steps`.
 *
 * Each step combines the recent ε̂ with Adams–Bashforth weights (equal step spacing assumed):
 *   ε̄ = ε₀                                    (order 1)
 *   ε̄ = (3ε₀ − ε₋₁)/2                          (order 2)
 *   ε̄ = (23ε₀ − 16ε₋₁ + 5ε₋₂)/12              (order 3)
 *   ε̄ = (55ε₀ − 59ε₋₁ + 37ε₋₂ − 9ε₋₃)/24      (order 4)
 * and moves with PNDM's transfer φ (eq. 9), which equals the deterministic DDIM update:
 *   x_t = α_t·(x_s − σ_s·ε̄)/α_s + σ_t·ε̄.
 *
 * The first step. diffusers' PLMS (skip_prk_steps) starts with a pseudo improved-Euler step: a DDIM
 * step s→t with ε₀, a call at the predicted point, then the s→t step redone with the mean of the
 * two ε̂; the next step calls the model again at the corrected point (the predictor's ε̂ is not
 * kept). That costs M + 1 calls for M ≥ 2 steps (M = 1: one plain DDIM step, 1 call). We follow
 * diffusers by default (`firstStep: 'heun'`); `firstStep: 'euler'` starts with orders 1, 2, 3 instead
 * and costs exactly M calls (useful at equal NFE).
 * @packageDocumentation
 */
import { linearCombination, type NumArray } from '../tensor.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { ddimTransfer } from './ddim.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link plmsSpec}. */
export interface PlmsOptions {
  /** Highest Adams–Bashforth order, 1…4 (default 4, as PNDM). */
  order: number;
  /** First step: diffusers' pseudo improved Euler (`heun`, default, one extra call) or plain DDIM (`euler`). */
  firstStep: 'heun' | 'euler';
  /** Use order 1 on the last step (default false, as diffusers). */
  lowerOrderFinal: boolean;
}

/** Adams–Bashforth weights for equal steps, newest first (PNDM eq. 12). */
const AB_WEIGHTS: readonly (readonly number[])[] = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]];

/** PNDM's transfer φ from (x_s, s) with ε̄ to t, and the x̂0 it implies: x̂0 = (x_s − σ_s·ε̄)/α_s. */
function transfer(sch: NoiseSchedule, xs: NumArray, eps: NumArray, s: number, t: number): { x: NumArray; x0: NumArray } {
  const x0 = linearCombination([1 / sch.alpha(s), -sch.sigma(s) / sch.alpha(s)], [xs, eps]);
  return { x: ddimTransfer(sch, x0, eps, t), x0 };
}

/** PLMS/PNDM (diffusers `PNDMScheduler` with skip_prk_steps). */
export const plmsSpec: SolverSpec<PlmsOptions> = defineSolver<PlmsOptions>({
  name: 'plms',
  aliases: ['PNDMScheduler', 'pndm'],
  description: 'PLMS (PNDM, Liu et al. 2022): Adams–Bashforth on ε̂ with the DDIM transfer; diffusers start costs one extra call',
  // Nominal order 4 (measured on grids uniform in σ/α); on log-SNR or time grids the equal-step
  // weights limit it to 2 (measured 1.99, see test/solvers-classic.test.ts).
  order: (o) => o.order,
  gridFamily: 'ddim',
  // A zero-length last interval: the transfer φ from s to s is the identity (diffusers' PNDM grids ending at t = 0).
  identityFinalStep: true,
  options: {
    defaults: { order: 4, firstStep: 'heun', lowerOrderFinal: false },
    rules: {
      order: { kind: 'number', min: 1, max: 4, integer: true, doc: 'highest Adams–Bashforth order, 1…4, default 4' },
      firstStep: { kind: 'enum', values: ['heun', 'euler'], doc: "'heun' (diffusers, one extra call, default) or 'euler'" },
      lowerOrderFinal: { kind: 'boolean', doc: 'order 1 on the last step, default false' },
    },
  },
  // firstStep 'heun': N = M + 1 for M ≥ 2 and N = 1 for M = 1, so M = N − 1 for N ≥ 3, else 1.
  cost: {
    callsForSteps: (steps, o) => (o.firstStep === 'heun' && steps > 1 ? steps + 1 : steps),
    stepsForCalls: (nfe, o) => (o.firstStep === 'heun' && nfe >= 3 ? nfe - 1 : o.firstStep === 'heun' ? 1 : nfe),
  },
  step: (opts, { steps }) => {
    const history: NumArray[] = []; // ε̂, newest last
    return async ({ i, s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const { eps } = await ctx.evaluate(x, s);
      history.push(eps);
      if (history.length > opts.order) history.shift();
      let epsBar: NumArray;
      if (i === 0 && opts.firstStep === 'heun' && steps > 1) {
        const predicted = transfer(sch, x, eps, s, t).x;
        const { eps: epsNext } = await ctx.evaluate(predicted, t);
        epsBar = linearCombination([0.5, 0.5], [eps, epsNext]);
      } else {
        const k = opts.lowerOrderFinal && i === steps - 1 ? 1 : history.length;
        const w = AB_WEIGHTS[k - 1]!;
        epsBar = linearCombination(w, history.slice(-k).reverse());
      }
      return transfer(sch, x, epsBar, s, t);
    };
  },
});
