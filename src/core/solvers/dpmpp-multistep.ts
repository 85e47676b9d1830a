/**
 * DPM-Solver++ 2M and 3M, multistep, data prediction (Lu et al. 2022b, "DPM-Solver++", Alg. 2 and
 * App. B; the third-order form is diffusers' `multistep_dpm_solver_third_order_update`), registry
 * names `dpmpp_2m`, `dpmpp_3m`. One model call per interval; earlier x̂0's supply the derivatives.
 *
 * Step s0 → t, h = λ_t − λ_{s0}; previous points s1, s2 with h_0 = λ_{s0} − λ_{s1},
 * h_1 = λ_{s1} − λ_{s2}, r0 = h_0/h, r1 = h_1/h, m_k = x̂0 at s_k:
 *   order 1:  x_t = (σ_t/σ_{s0})·x + α_t·(1 − e^{−h})·m0
 *   order 2, D1 = (m0 − m1)/r0:
 *     'midpoint' (Alg. 2):  x_t = (σ_t/σ_{s0})·x + α_t·(1 − e^{−h})·(m0 + D1/2)
 *     'heun':               x_t = (σ_t/σ_{s0})·x + α_t·(1 − e^{−h})·m0 + α_t·((e^{−h} − 1)/h + 1)·D1
 *   order 3, D1_0 = (m0 − m1)/r0, D1_1 = (m1 − m2)/r1,
 *            D1 = D1_0 + r0/(r0 + r1)·(D1_0 − D1_1) (≈ h·x̂0'),  D2 = (D1_0 − D1_1)/(r0 + r1) (≈ h²·x̂0''/2):
 *     x_t = (σ_t/σ_{s0})·x + α_t·(1 − e^{−h})·m0 + α_t·h·φ_2(−h)·D1 + 2·α_t·h·φ_3(−h)·D2
 *   (h·φ_2(−h) = (e^{−h} − 1)/h + 1; h·φ_3(−h) = 1/2 − (e^{−h} − 1 + h)/h²: the exact Taylor weights
 *   of the exponential integrator, see `exponential-integrator.ts`.)
 *   NOTE: diffusers (and DPM-Solver's reference code) weight D2 by h·φ_3(−h), not 2·h·φ_3(−h). Since
 *   D2 ≈ h²·x̂0''/2 and the Taylor term is h³·φ_3(−h)·x̂0'', that weight is half the exact one: for
 *   x̂0(λ) = λ²/2 it is not exact, and on a non-uniform log-SNR grid its measured order is 2, not 3.
 *   We use the exact weight by default (measured order 3; see test/solvers-dpm.test.ts);
 *   `d2Weight: 'diffusers'` takes diffusers' h·φ_3(−h) (what DPMSolverMultistepScheduler configs load).
 *
 * Order schedule (as diffusers' DPMSolverMultistepScheduler): warm-up at orders 1, 2, …; the last
 * interval is first order when `eulerAtFinal`, when `lowerOrderFinal` and fewer than 15 intervals,
 * or when it ends at σ = 0 (where r0 = h_0/h = 0 makes D1 undefined; the limit is x_t = α_t·m0);
 * with `lowerOrderFinal` and fewer than 15 intervals the second-to-last is at most second order.
 * A third-order step whose stencil spans more than 2 in λ (λ_t − λ_{s2} > 2, e.g. every step of an
 * 8-call Karras grid) is taken at second order: see `MAX_THIRD_ORDER_SPAN` in `exponential-integrator.ts`.
 * @packageDocumentation
 */
import { defineSolver } from './define-solver.js';
import { dataStepCoefficient, lambdaStep, phi, thirdOrderStencilFits } from './exponential-integrator.js';
import type { OptionSchema } from './options.js';
import { axpby, linearCombination, sub, type NumArray } from '../tensor.js';
import type { SolverSpec } from './types.js';

/** Options of {@link dpmpp2mSpec} and {@link dpmpp3mSpec}. */
export interface DpmppMultistepOptions {
  /** Second-order form: `'midpoint'` (default, Alg. 2) or `'heun'` (diffusers' solver_type). */
  solverType: 'midpoint' | 'heun';
  /** Lower the order of the final interval(s) when there are fewer than 15 intervals. Default true. */
  lowerOrderFinal: boolean;
  /** Take the final interval at first order, always. Default false. */
  eulerAtFinal: boolean;
}

/** Options of {@link dpmpp3mSpec}: the multistep options and the weight of the D2 term. */
export interface Dpmpp3mOptions extends DpmppMultistepOptions {
  /** D2 weight: `'taylor'` 2·h·φ_3(−h) (exact, default) or `'diffusers'` h·φ_3(−h). */
  d2Weight: 'taylor' | 'diffusers';
  /**
   * Take a third-order step only where its stencil spans at most `MAX_THIRD_ORDER_SPAN` in λ
   * (default true, ours); false is diffusers' behaviour (what DPMSolverMultistepScheduler configs load).
   */
  spanLimit: boolean;
}

/** The diffusers threshold below which `lowerOrderFinal` applies. */
export const LOWER_ORDER_FINAL_BELOW = 15;

const OPTIONS: OptionSchema<DpmppMultistepOptions> = {
  defaults: { solverType: 'midpoint', lowerOrderFinal: true, eulerAtFinal: false },
  rules: {
    solverType: { kind: 'enum', values: ['midpoint', 'heun'], doc: "'midpoint' (default) or 'heun'" },
    lowerOrderFinal: { kind: 'boolean', doc: `lower order in the final steps when steps < ${LOWER_ORDER_FINAL_BELOW}, default true` },
    eulerAtFinal: { kind: 'boolean', doc: 'first-order final step, default false' },
  },
};

const OPTIONS_3M: OptionSchema<Dpmpp3mOptions> = {
  defaults: { ...OPTIONS.defaults, d2Weight: 'taylor', spanLimit: true },
  rules: {
    ...OPTIONS.rules,
    d2Weight: { kind: 'enum', values: ['taylor', 'diffusers'], doc: "D2 weight: 'taylor' 2·h·φ₃(−h) (exact, default) or 'diffusers' h·φ₃(−h)" },
    spanLimit: { kind: 'boolean', doc: 'third order only over stencils spanning ≤ 2 in log-SNR (default true; false as diffusers)' },
  },
};

/**
 * The order used for interval `i` of `steps` by a multistep solver of order `maxOrder`: warm-up,
 * `lowerOrderFinal` (fewer than 15 intervals), `eulerAtFinal` and the clean terminal (diffusers'
 * rule; shared with UniPC's DPM-style callers).
 */
export function multistepOrder(
  maxOrder: number,
  i: number,
  steps: number,
  opts: { lowerOrderFinal: boolean; eulerAtFinal: boolean },
  endsClean: boolean,
): number {
  const short = opts.lowerOrderFinal && steps < LOWER_ORDER_FINAL_BELOW;
  const last = i === steps - 1;
  if (i === 0 || (last && (opts.eulerAtFinal || short || endsClean))) return 1;
  if (maxOrder === 2 || i === 1 || (i === steps - 2 && short)) return Math.min(maxOrder, 2);
  return maxOrder;
}

/** One DPM-Solver++ multistep update (see the file comment). `m` and `lambdas` hold the newest last. */
export function dpmppMultistepUpdate(
  order: number,
  x: NumArray,
  g: ReturnType<typeof lambdaStep>,
  m: readonly NumArray[],
  lambdas: readonly number[],
  solverType: 'midpoint' | 'heun',
  d2Factor = 2,
): NumArray {
  const n = m.length;
  const m0 = m[n - 1]!;
  const c0 = g.alphaT * dataStepCoefficient(g);
  const base = axpby(g.sigmaT / g.sigmaS, x, c0, m0);
  if (order === 1) return base;
  const m1 = m[n - 2]!;
  const r0 = (lambdas[n - 1]! - lambdas[n - 2]!) / g.h;
  const d10 = axpby(1 / r0, m0, -1 / r0, m1);
  if (order === 2) {
    const c1 = solverType === 'midpoint' ? 0.5 * c0 : g.alphaT * g.h * phi(2, -g.h);
    return axpby(1, base, c1, d10);
  }
  const m2 = m[n - 3]!;
  const r1 = (lambdas[n - 2]! - lambdas[n - 3]!) / g.h;
  const d11 = axpby(1 / r1, m1, -1 / r1, m2);
  const dd = sub(d10, d11);
  const d1 = axpby(1, d10, r0 / (r0 + r1), dd);
  const d2Coeff = 1 / (r0 + r1);
  return linearCombination([1, g.alphaT * g.h * phi(2, -g.h), d2Factor * g.alphaT * g.h * phi(3, -g.h) * d2Coeff], [base, d1, dd]);
}

function spec<O extends DpmppMultistepOptions>(
  name: string,
  maxOrder: number,
  description: string,
  options: OptionSchema<O>,
  aliases?: readonly string[],
): SolverSpec<O> {
  return defineSolver<O>({
    name,
    ...(aliases ? { aliases } : {}),
    description,
    order: maxOrder,
    gridFamily: 'dpm',
    options,
    step: (opts, { steps }) => {
      const m: NumArray[] = [];
      const lambdas: number[] = [];
      return async ({ i, s, t, x, ctx }) => {
        const g = lambdaStep(ctx.schedule, s, t);
        const pred = await ctx.evaluate(x, s);
        m.push(pred.x0);
        lambdas.push(g.lambdaS);
        if (m.length > maxOrder) {
          m.shift();
          lambdas.shift();
        }
        let order = multistepOrder(maxOrder, i, steps, opts, g.clean);
        // A third-order stencil wider than 2 in λ amplifies x̂0's error instead of correcting it (see MAX_THIRD_ORDER_SPAN).
        if (order === 3 && (opts as Partial<Dpmpp3mOptions>).spanLimit !== false && !thirdOrderStencilFits(g, lambdas[lambdas.length - 3]!)) order = 2;
        const d2Factor = (opts as Partial<Dpmpp3mOptions>).d2Weight === 'diffusers' ? 1 : 2;
        return { x: dpmppMultistepUpdate(order, x, g, m, lambdas, opts.solverType, d2Factor), x0: pred.x0 };
      };
    },
  });
}

/** `dpmpp_2m`: DPM-Solver++(2M), one call per step. */
export const dpmpp2mSpec: SolverSpec<DpmppMultistepOptions> = spec(
  'dpmpp_2m',
  2,
  'DPM-Solver++(2M) multistep (data prediction, Lu et al. 2022b Alg. 2), 1 call per step',
  OPTIONS,
  ['DPMSolverMultistepScheduler'],
);

/** `dpmpp_3m`: DPM-Solver++(3M), one call per step. */
export const dpmpp3mSpec: SolverSpec<Dpmpp3mOptions> = spec(
  'dpmpp_3m',
  3,
  'DPM-Solver++(3M) multistep (data prediction, third order), 1 call per step',
  OPTIONS_3M,
);
