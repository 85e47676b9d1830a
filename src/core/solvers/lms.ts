/**
 * Linear multistep in ρ = σ/α (k-diffusion's `sample_lms`, diffusers' `LMSDiscreteScheduler`).
 *
 * In x̃ = x/α the ODE is dx̃/dρ = ε̂. With the last k slopes d_j at ρ_j (j = 0 newest), the step
 * integrates their Lagrange interpolant:
 *   x̃_t = x̃_s + Σ_j c_j·d_j,   c_j = ∫_{ρ_s}^{ρ_t} Π_{m≠j} (τ − ρ_m)/(ρ_j − ρ_m) dτ.
 * The basis polynomials have degree ≤ 3, so 4-point Gauss–Legendre quadrature (exact to degree 7)
 * gives the coefficients exactly (diffusers uses adaptive quadrature). The first steps use the
 * orders available (1, 2, 3, …). Exact at the clean end point (ρ_t = 0, α_t = 1).
 * @packageDocumentation
 */
import { veSigma } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import { NOISE_START_RULE, noiseStartState, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link lmsSpec}. */
export interface LmsOptions {
  /** Number of slopes combined, 1…4 (default 4, as diffusers). */
  order: number;
  /** Use order 1 on the last step (default false, as diffusers). */
  lowerOrderFinal: boolean;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** 4-point Gauss–Legendre on [−1, 1]: nodes ±√(3/7 ∓ (2/7)√(6/5)), weights (18 ± √30)/36. */
const GL_INNER = Math.sqrt(3 / 7 - (2 / 7) * Math.sqrt(6 / 5));
const GL_OUTER = Math.sqrt(3 / 7 + (2 / 7) * Math.sqrt(6 / 5));
const GL_NODES = [-GL_OUTER, -GL_INNER, GL_INNER, GL_OUTER];
const GL_WEIGHTS = [(18 - Math.sqrt(30)) / 36, (18 + Math.sqrt(30)) / 36, (18 + Math.sqrt(30)) / 36, (18 - Math.sqrt(30)) / 36];

/**
 * c_j = ∫_from^to L_j(τ) dτ for the Lagrange basis on `nodes` (at most 4 nodes: exact).
 * Returns one coefficient per node, in the order given.
 */
export function lmsCoefficients(nodes: readonly number[], from: number, to: number): number[] {
  if (nodes.length < 1 || nodes.length > 4) throw new RangeError(`lmsCoefficients takes 1 to 4 nodes, got ${nodes.length}`);
  const mid = 0.5 * (from + to);
  const half = 0.5 * (to - from);
  return nodes.map((rj, j) => {
    let sum = 0;
    for (let q = 0; q < GL_NODES.length; q++) {
      const tau = mid + half * GL_NODES[q]!;
      let basis = 1;
      for (let m = 0; m < nodes.length; m++) if (m !== j) basis *= (tau - nodes[m]!) / (rj - nodes[m]!);
      sum += GL_WEIGHTS[q]! * basis;
    }
    return half * sum;
  });
}

/** LMS: order 4 by default, one call per step. */
export const lmsSpec: SolverSpec<LmsOptions> = defineSolver<LmsOptions>({
  name: 'lms',
  aliases: ['LMSDiscreteScheduler', 'k_lms'],
  description: 'Linear multistep in σ/α (k-diffusion/diffusers LMS), order 4 by default, 1 call per step',
  order: (o) => o.order,
  gridFamily: 'euler',
  options: {
    defaults: { order: 4, lowerOrderFinal: false, noiseStart: 'unit' },
    rules: {
      noiseStart: NOISE_START_RULE,
      order: { kind: 'number', min: 1, max: 4, integer: true, doc: 'slopes combined, 1…4, default 4' },
      lowerOrderFinal: { kind: 'boolean', doc: 'order 1 on the last step, default false' },
    },
  },
  step: (opts, { steps }) => {
    const slopes: NumArray[] = []; // newest first
    const rhos: number[] = [];
    return async ({ i, s, t, x: given, ctx }) => {
      const sch = ctx.schedule;
      const x = i === 0 ? noiseStartState(sch, given, s, opts.noiseStart) : given;
      const { eps, x0 } = await ctx.evaluate(x, s);
      const rs = veSigma(sch, s);
      slopes.unshift(eps);
      rhos.unshift(rs);
      if (slopes.length > opts.order) {
        slopes.pop();
        rhos.pop();
      }
      const k = opts.lowerOrderFinal && i === steps - 1 ? 1 : slopes.length;
      const c = lmsCoefficients(rhos.slice(0, k), rs, veSigma(sch, t));
      const at = sch.alpha(t);
      return { x: linearCombination([at / sch.alpha(s), ...c.map((cj) => at * cj)], [x, ...slopes.slice(0, k)]), x0 };
    };
  },
});
