/**
 * DEIS, multistep (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential
 * Integrator", §4 ρAB-DEIS; diffusers' `DEISMultistepScheduler` with `algorithm_type="deis"`,
 * `solver_type="logrho"`), orders 1–3, one model call per interval.
 *
 * In x̃ = x/α, ρ = σ/α the probability-flow ODE is dx̃/dρ = ε̂ (as for Euler). DEIS interpolates the
 * last k noise predictions ε_j at ρ_j (j = 0 newest) by a polynomial in u = log ρ and integrates it
 * exactly over the step s → t:
 *   x̃_t = x̃_s + Σ_j c_j·ε_j,   c_j = ∫_{ρ_s}^{ρ_t} L_j(log τ) dτ = ∫_{u_s}^{u_t} L_j(u)·e^u du,
 * with L_j the Lagrange basis on the nodes u_0 … u_{k−1}. For a polynomial p, ∫ p(u)·e^u du =
 * e^u·Σ_m (−1)^m·p^{(m)}(u), so every c_j is closed-form (diffusers writes out the same integrals for
 * k = 2, 3). k = 1 is DDIM. At the clean end point ρ_t = 0 (u_t = −∞) the antiderivative vanishes,
 * so the update stays finite (the final interval into σ = 0 is first order anyway).
 *
 * Order schedule: diffusers' multistep rule — warm-up 1, 2, …; with `lowerOrderFinal` and fewer
 * than 15 intervals the last interval is first order and the one before at most second order.
 * @packageDocumentation
 */
import { veSigma } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import { multistepOrder } from './dpmpp-multistep.js';
import type { SolverSpec } from './types.js';

/** Options of {@link deisSpec}. */
export interface DeisOptions {
  /** Order 1…3 (diffusers' `solver_order`, default 2). */
  order: number;
  /** Lower the order of the final interval(s) when there are fewer than 15 intervals. Default true. */
  lowerOrderFinal: boolean;
}

/** p(u) with coefficients in increasing degree. */
function polyMul(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length - 1).fill(0);
  for (let i = 0; i < a.length; i++) for (let j = 0; j < b.length; j++) out[i + j]! += a[i]! * b[j]!;
  return out;
}

/** e^u·Σ_m (−1)^m·p^{(m)}(u): an antiderivative of p(u)·e^u; 0 at u = −∞. */
function expPolyAntiderivative(p: readonly number[], u: number): number {
  if (u === -Infinity) return 0;
  let deriv = [...p];
  let sum = 0;
  for (let m = 0; deriv.length > 0; m++) {
    let v = 0;
    for (let k = deriv.length - 1; k >= 0; k--) v = v * u + deriv[k]!;
    sum += (m % 2 === 0 ? 1 : -1) * v;
    deriv = deriv.slice(1).map((c, k) => c * (k + 1));
  }
  return Math.exp(u) * sum;
}

/**
 * c_j = ∫_{ρ_from}^{ρ_to} L_j(log τ) dτ for the Lagrange basis in log ρ on `rhos` (1 to 3 nodes,
 * newest first); `rhoTo` may be 0 (the clean end point).
 */
export function deisCoefficients(rhos: readonly number[], rhoFrom: number, rhoTo: number): number[] {
  if (rhos.length < 1 || rhos.length > 3) throw new RangeError(`deisCoefficients takes 1 to 3 nodes, got ${rhos.length}`);
  const us = rhos.map(Math.log);
  const uFrom = Math.log(rhoFrom);
  const uTo = rhoTo === 0 ? -Infinity : Math.log(rhoTo);
  return us.map((uj, j) => {
    let basis = [1];
    us.forEach((um, m) => {
      if (m !== j) basis = polyMul(basis, [-um / (uj - um), 1 / (uj - um)]);
    });
    return expPolyAntiderivative(basis, uTo) - expPolyAntiderivative(basis, uFrom);
  });
}

/** DEIS (ρAB, log-ρ Lagrange basis), orders 1–3, one call per step. */
export const deisSpec: SolverSpec<DeisOptions> = defineSolver<DeisOptions>({
  name: 'deis',
  aliases: ['DEISMultistepScheduler'],
  description: 'DEIS multistep (Zhang & Chen 2023, ρAB with a log-ρ basis; diffusers DEISMultistepScheduler), orders 1–3, 1 call per step',
  order: (o) => o.order,
  gridFamily: 'dpm',
  options: {
    defaults: { order: 2, lowerOrderFinal: true },
    rules: {
      order: { kind: 'number', min: 1, max: 3, integer: true, doc: 'order 1…3, default 2' },
      lowerOrderFinal: { kind: 'boolean', doc: 'lower order in the final steps when steps < 15, default true' },
    },
  },
  step: (opts, { steps }) => {
    const eps: NumArray[] = []; // newest first
    const rhos: number[] = [];
    return async ({ i, s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const pred = await ctx.evaluate(x, s);
      const rs = veSigma(sch, s);
      eps.unshift(pred.eps);
      rhos.unshift(rs);
      if (eps.length > opts.order) {
        eps.pop();
        rhos.pop();
      }
      const at = sch.alpha(t);
      const k = Math.min(
        eps.length,
        multistepOrder(opts.order, i, steps, { lowerOrderFinal: opts.lowerOrderFinal, eulerAtFinal: false }, sch.sigma(t) === 0),
      );
      const c = deisCoefficients(rhos.slice(0, k), rs, veSigma(sch, t));
      return { x: linearCombination([at / sch.alpha(s), ...c.map((cj) => at * cj)], [x, ...eps.slice(0, k)]), x0: pred.x0 };
    };
  },
});
