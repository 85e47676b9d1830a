/**
 * DPM-Solver++(2M) SDE, midpoint form (Lu et al. 2022b, "DPM-Solver++", §5 / App. on SDE solvers;
 * k-diffusion's `sample_dpmpp_2m_sde`), registry name `dpmpp_2m_sde`. One call per step, fresh
 * noise per step.
 *
 * Step s0 → t, h = λ_t − λ_{s0}, η ≥ 0 the stochasticity (η = 0 is `dpmpp_2m` midpoint), z ~ N(0, I):
 *   order 1:  x_t = (σ_t/σ_{s0})·e^{−η·h}·x + α_t·(1 − e^{−(1+η)·h})·m0 + σ_t·√(1 − e^{−2·η·h})·z
 *   order 2:  the same plus α_t·(1 − e^{−(1+η)·h})·D1/2 with D1 = (m0 − m1)/r0, r0 = h_0/h
 * (for η = 1 these are the data-prediction SDE updates of DPM-Solver++ with e^{−h}·x, 1 − e^{−2h}).
 * At the clean point the step is first order and its limit is x_t = α_t·m0 (no noise).
 * Orders follow `dpmpp-multistep.ts` (warm-up, `lowerOrderFinal`, `eulerAtFinal`).
 * @packageDocumentation
 */
import { defineSolver } from './define-solver.js';
import { lambdaStep } from './exponential-integrator.js';
import { LOWER_ORDER_FINAL_BELOW, multistepOrder } from './dpmpp-multistep.js';
import { axpby, linearCombination, type NumArray } from '../tensor.js';
import type { SolverSpec } from './types.js';

/** Options of {@link dpmpp2mSdeSpec}. */
export interface Dpmpp2mSdeOptions {
  /** Stochasticity η ≥ 0 (k-diffusion's eta). Default 1. */
  eta: number;
  /** Lower the order of the final interval when there are fewer than 15 intervals. Default true. */
  lowerOrderFinal: boolean;
  /** Take the final interval at first order, always. Default false. */
  eulerAtFinal: boolean;
}

/** `dpmpp_2m_sde`: DPM-Solver++(2M) SDE (midpoint), one call per step, stochastic (unless η = 0). */
export const dpmpp2mSdeSpec: SolverSpec<Dpmpp2mSdeOptions> = defineSolver<Dpmpp2mSdeOptions>({
  name: 'dpmpp_2m_sde',
  description: 'DPM-Solver++(2M) SDE, midpoint (Lu et al. 2022b; k-diffusion dpmpp_2m_sde), 1 call per step, eta option',
  order: 2,
  stochastic: (o) => o.eta > 0,
  gridFamily: 'dpm',
  options: {
    defaults: { eta: 1, lowerOrderFinal: true, eulerAtFinal: false },
    rules: {
      eta: { kind: 'number', min: 0, doc: 'stochasticity η ≥ 0, default 1 (0 = dpmpp_2m)' },
      lowerOrderFinal: { kind: 'boolean', doc: `first-order final step when steps < ${LOWER_ORDER_FINAL_BELOW}, default true` },
      eulerAtFinal: { kind: 'boolean', doc: 'first-order final step, default false' },
    },
  },
  step: (opts, { steps }) => {
    let prev: { x0: NumArray; lambda: number } | undefined;
    return async ({ i, s, t, x, ctx }) => {
      const g = lambdaStep(ctx.schedule, s, t);
      const { x0 } = await ctx.evaluate(x, s);
      const order = multistepOrder(2, i, steps, opts, g.clean);
      const etaH = opts.eta === 0 ? 0 : opts.eta * g.h; // (0·∞ would be NaN at the clean point)
      // 1 − e^{−(1+η)h}; the clean limit (h = ∞) is 1, and e^{−ηh}·σ_t/σ_s = 0 there.
      const c0 = g.alphaT * -Math.expm1(-(g.h + etaH));
      const decay = g.clean ? 0 : (g.sigmaT / g.sigmaS) * Math.exp(-etaH);
      let next = axpby(decay, x, c0, x0);
      if (order === 2 && prev) {
        const r0 = (g.lambdaS - prev.lambda) / g.h;
        next = linearCombination([1, (0.5 * c0) / r0, (-0.5 * c0) / r0], [next, x0, prev.x0]);
      }
      const noiseScale = g.clean ? 0 : g.sigmaT * Math.sqrt(-Math.expm1(-2 * etaH));
      if (noiseScale > 0) next = axpby(1, next, noiseScale, ctx.noise());
      prev = { x0, lambda: g.lambdaS };
      return { x: next, x0 };
    };
  },
});
