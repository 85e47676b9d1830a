/**
 * DPM-Solver++ singlestep, data prediction (Lu et al. 2022b, "DPM-Solver++", Alg. 1 for 2S; the
 * third-order form follows DPM-Solver-3 with x̂0 in place of ε̂), registry names `dpmpp_2s`,
 * `dpmpp_3s`.
 *
 * Over s → t with h = λ_t − λ_s and intermediate times s_i at λ_s + r_i·h:
 *   order 1:  x_t = (σ_t/σ_s)·x_s + α_t·(1 − e^{−h})·x̂0_s
 *   order 2 (2S, r1 = 1/2):
 *     u  = (σ_{s1}/σ_s)·x_s + α_{s1}·(1 − e^{−r1·h})·x̂0_s
 *     x_t = (σ_t/σ_s)·x_s + α_t·(1 − e^{−h})·[x̂0_s + (x̂0(u, s1) − x̂0_s)/(2·r1)]
 *   order 3 (3S, r1 = 1/3, r2 = 2/3):
 *     u1 = (σ_{s1}/σ_s)·x_s + α_{s1}·(1 − e^{−r1·h})·x̂0_s,                    D1 = x̂0(u1, s1) − x̂0_s
 *     u2 = (σ_{s2}/σ_s)·x_s + α_{s2}·(1 − e^{−r2·h})·x̂0_s
 *          + (α_{s2}·r2/r1)·((e^{−r2·h} − 1)/(r2·h) + 1)·D1,                   D2 = x̂0(u2, s2) − x̂0_s
 *     x_t = (σ_t/σ_s)·x_s + α_t·(1 − e^{−h})·x̂0_s + (α_t/r2)·((e^{−h} − 1)/h + 1)·D2
 * with (e^{−z} − 1)/z + 1 = z·φ_2(−z). At the clean point (order 1 only) e^{−h} = 0: x_t = α_t·x̂0_s.
 * @packageDocumentation
 */
import { dataStepCoefficient, lambdaStep, phi } from './exponential-integrator.js';
import { intermediateTime, singlestepSpec, type SinglestepOptions, type SinglestepUpdate } from './singlestep-plan.js';
import { linearCombination, sub } from '../tensor.js';
import type { SolverSpec } from './types.js';

/** The data-prediction singlestep update of order 1, 2 or 3. */
export const dpmppSinglestepUpdate: SinglestepUpdate = async (order, x, g, start, s, ctx, r) => {
  const x0 = start.x0;
  const linear = g.sigmaT / g.sigmaS;
  const c0 = g.alphaT * dataStepCoefficient(g);
  if (order === 1) return linearCombination([linear, c0], [x, x0]);
  if (order === 2) {
    const r1 = r.r1Order2;
    const s1 = intermediateTime(ctx, g, r1);
    const g1 = lambdaStep(ctx.schedule, s, s1);
    const u = linearCombination([g1.sigmaT / g.sigmaS, g1.alphaT * dataStepCoefficient(g1)], [x, x0]);
    const d1 = sub((await ctx.evaluate(u, s1)).x0, x0);
    return linearCombination([linear, c0, c0 / (2 * r1)], [x, x0, d1]);
  }
  const { r1Order3: r1, r2Order3: r2 } = r;
  const s1 = intermediateTime(ctx, g, r1);
  const s2 = intermediateTime(ctx, g, r2);
  const g1 = lambdaStep(ctx.schedule, s, s1);
  const g2 = lambdaStep(ctx.schedule, s, s2);
  const u1 = linearCombination([g1.sigmaT / g.sigmaS, g1.alphaT * dataStepCoefficient(g1)], [x, x0]);
  const d1 = sub((await ctx.evaluate(u1, s1)).x0, x0);
  const u2 = linearCombination(
    [g2.sigmaT / g.sigmaS, g2.alphaT * dataStepCoefficient(g2), ((g2.alphaT * r2) / r1) * (r2 * g.h) * phi(2, -r2 * g.h)],
    [x, x0, d1],
  );
  const d2 = sub((await ctx.evaluate(u2, s2)).x0, x0);
  return linearCombination([linear, c0, (g.alphaT / r2) * g.h * phi(2, -g.h)], [x, x0, d2]);
};

/** `dpmpp_2s`: DPM-Solver++(2S), two calls per interval. */
export const dpmpp2sSpec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpmpp_2s',
  description: 'DPM-Solver++(2S) singlestep (data prediction, Lu et al. 2022b Alg. 1), 2 calls per step',
  order: 2,
  update: dpmppSinglestepUpdate,
});

/** `dpmpp_3s`: DPM-Solver++(3S), three calls per interval. */
export const dpmpp3sSpec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpmpp_3s',
  description: 'DPM-Solver++(3S) singlestep (data prediction), 3 calls per step',
  order: 3,
  update: dpmppSinglestepUpdate,
});
