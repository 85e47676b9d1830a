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
 *
 * diffusers' plan (`plan: 'diffusers'`, see singlestep-plan.ts): an order-k interval steps from the
 * state x saved at s_{k−1} (k − 1 grid intervals back) to t, with the model outputs m_j at the grid
 * points s_{k−1}, …, s_0 (s_0 the newest) as its intermediate points; h = λ_t − λ_{s_{k−1}},
 * r_j = (λ_{s_j} − λ_{s_{k−1}})/h, L = (σ_t/σ_{s_{k−1}})·x + α_t·(1 − e^{−h})·m_{k−1}:
 *   order 2, D1 = (m_0 − m_1)/r_0:  midpoint x_t = L + ½·α_t·(1 − e^{−h})·D1;   heun x_t = L + α_t·h·φ_2(−h)·D1
 *   order 3, D1_1 = (m_0 − m_2)/r_0, D1_0 = (m_1 − m_2)/r_1:
 *     midpoint  x_t = L + α_t·h·φ_2(−h)·D1_1
 *     heun      x_t = L + α_t·h·φ_2(−h)·D1 + α_t·h·φ_3(−h)·D2,
 *               D1 = (r_0·D1_0 − r_1·D1_1)/(r_0 − r_1),  D2 = 2·(D1_1 − D1_0)/(r_0 − r_1).
 * @packageDocumentation
 */
import { dataStepCoefficient, lambdaStep, phi } from './exponential-integrator.js';
import { intermediateTime, singlestepSpec, type DiffusersSinglestepUpdate, type SinglestepOptions, type SinglestepUpdate } from './singlestep-plan.js';
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

/** The data-prediction update of diffusers' singlestep plan (see the file comment). */
export const dpmppDiffusersSinglestepUpdate: DiffusersSinglestepUpdate = (order, x, times, outputs, t, ctx, solverType) => {
  const g = lambdaStep(ctx.schedule, times[0]!, t);
  const m = outputs.map((p) => p.x0); // oldest first: m[0] at times[0]
  const c0 = g.alphaT * dataStepCoefficient(g);
  const linear = g.sigmaT / g.sigmaS;
  if (order === 1) return linearCombination([linear, c0], [x, m[0]!]);
  const r = (time: number): number => (ctx.schedule.lambda(time) - g.lambdaS) / g.h;
  const hphi2 = g.alphaT * g.h * phi(2, -g.h);
  if (order === 2) {
    const r0 = r(times[1]!);
    const d1 = linearCombination([1 / r0, -1 / r0], [m[1]!, m[0]!]);
    return linearCombination([linear, c0, solverType === 'midpoint' ? 0.5 * c0 : hphi2], [x, m[0]!, d1]);
  }
  const r0 = r(times[2]!);
  const r1 = r(times[1]!);
  const d11 = linearCombination([1 / r0, -1 / r0], [m[2]!, m[0]!]);
  if (solverType === 'midpoint') return linearCombination([linear, c0, hphi2], [x, m[0]!, d11]);
  const d10 = linearCombination([1 / r1, -1 / r1], [m[1]!, m[0]!]);
  const d1 = linearCombination([r0 / (r0 - r1), -r1 / (r0 - r1)], [d10, d11]);
  const d2 = linearCombination([2 / (r0 - r1), -2 / (r0 - r1)], [d11, d10]);
  return linearCombination([linear, c0, hphi2, g.alphaT * g.h * phi(3, -g.h)], [x, m[0]!, d1, d2]);
};

/** `dpmpp_2s`: DPM-Solver++(2S), two calls per interval. */
export const dpmpp2sSpec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpmpp_2s',
  description: 'DPM-Solver++(2S) singlestep (data prediction, Lu et al. 2022b Alg. 1), 2 calls per step',
  order: 2,
  update: dpmppSinglestepUpdate,
  diffusersUpdate: dpmppDiffusersSinglestepUpdate,
});

/** `dpmpp_3s`: DPM-Solver++(3S), three calls per interval. */
export const dpmpp3sSpec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpmpp_3s',
  description: 'DPM-Solver++(3S) singlestep (data prediction), 3 calls per step',
  order: 3,
  update: dpmppSinglestepUpdate,
  diffusersUpdate: dpmppDiffusersSinglestepUpdate,
});
