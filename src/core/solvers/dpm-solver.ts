/**
 * DPM-Solver-1/2/3, singlestep, noise prediction (Lu et al. 2022, "DPM-Solver", Alg. 1 and 2),
 * registry names `dpm_solver_1`, `dpm_solver_2`, `dpm_solver_3`.
 *
 * Over s → t with h = λ_t − λ_s and intermediate times s_i at λ_s + r_i·h:
 *   order 1 (eq. 3.7, = DDIM):  x_t = (α_t/α_s)·x_s − σ_t·(e^h − 1)·ε̂_s
 *   order 2 (Alg. 1, r1 = 1/2):
 *     u  = (α_{s1}/α_s)·x_s − σ_{s1}·(e^{r1·h} − 1)·ε̂_s
 *     x_t = (α_t/α_s)·x_s − σ_t·(e^h − 1)·ε̂_s − (σ_t/(2·r1))·(e^h − 1)·(ε̂(u, s1) − ε̂_s)
 *   order 3 (Alg. 2, r1 = 1/3, r2 = 2/3):
 *     u1 = (α_{s1}/α_s)·x_s − σ_{s1}·(e^{r1·h} − 1)·ε̂_s,                    D1 = ε̂(u1, s1) − ε̂_s
 *     u2 = (α_{s2}/α_s)·x_s − σ_{s2}·(e^{r2·h} − 1)·ε̂_s
 *          − (σ_{s2}·r2/r1)·((e^{r2·h} − 1)/(r2·h) − 1)·D1,                  D2 = ε̂(u2, s2) − ε̂_s
 *     x_t = (α_t/α_s)·x_s − σ_t·(e^h − 1)·ε̂_s − (σ_t/r2)·((e^h − 1)/h − 1)·D2
 * with (e^z − 1)/z − 1 = z·φ_2(z). Into the clean point only order 1 is used (see
 * `singlestep-plan.ts`), where σ_t·(e^h − 1) takes its limit α_t·σ_s/α_s: x_t = α_t·x̂0(x_s).
 * @packageDocumentation
 */
import { lambdaStep, noiseStepCoefficient, phi } from './exponential-integrator.js';
import { intermediateTime, singlestepSpec, type SinglestepOptions, type SinglestepUpdate } from './singlestep-plan.js';
import { linearCombination, sub } from '../tensor.js';
import type { SolverSpec } from './types.js';

/** The noise-prediction singlestep update of order 1, 2 or 3. */
export const dpmSolverUpdate: SinglestepUpdate = async (order, x, g, start, s, ctx, r) => {
  const eps = start.eps;
  const linear = g.alphaT / g.alphaS;
  const c0 = noiseStepCoefficient(g);
  if (order === 1) return linearCombination([linear, -c0], [x, eps]);
  if (order === 2) {
    const r1 = r.r1Order2;
    const s1 = intermediateTime(ctx, g, r1);
    const g1 = lambdaStep(ctx.schedule, s, s1);
    const u = linearCombination([g1.alphaT / g.alphaS, -noiseStepCoefficient(g1)], [x, eps]);
    const d1 = sub((await ctx.evaluate(u, s1)).eps, eps);
    return linearCombination([linear, -c0, -c0 / (2 * r1)], [x, eps, d1]);
  }
  const { r1Order3: r1, r2Order3: r2 } = r;
  const s1 = intermediateTime(ctx, g, r1);
  const s2 = intermediateTime(ctx, g, r2);
  const g1 = lambdaStep(ctx.schedule, s, s1);
  const g2 = lambdaStep(ctx.schedule, s, s2);
  const u1 = linearCombination([g1.alphaT / g.alphaS, -noiseStepCoefficient(g1)], [x, eps]);
  const d1 = sub((await ctx.evaluate(u1, s1)).eps, eps);
  const u2 = linearCombination([g2.alphaT / g.alphaS, -noiseStepCoefficient(g2), -((g2.sigmaT * r2) / r1) * (r2 * g.h) * phi(2, r2 * g.h)], [x, eps, d1]);
  const d2 = sub((await ctx.evaluate(u2, s2)).eps, eps);
  return linearCombination([linear, -c0, -(g.sigmaT / r2) * g.h * phi(2, g.h)], [x, eps, d2]);
};

/** `dpm_solver_1`: DPM-Solver-1 (= DDIM with η = 0), one call per interval. */
export const dpmSolver1Spec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpm_solver_1',
  description: 'DPM-Solver-1 (noise prediction, = DDIM η=0), 1 call per step',
  order: 1,
  update: dpmSolverUpdate,
});

/** `dpm_solver_2`: DPM-Solver-2 singlestep (Alg. 1), two calls per interval. */
export const dpmSolver2Spec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpm_solver_2',
  description: 'DPM-Solver-2 singlestep (noise prediction, Lu et al. 2022 Alg. 1), 2 calls per step',
  order: 2,
  update: dpmSolverUpdate,
});

/** `dpm_solver_3`: DPM-Solver-3 singlestep (Alg. 2), three calls per interval. */
export const dpmSolver3Spec: SolverSpec<SinglestepOptions> = singlestepSpec({
  name: 'dpm_solver_3',
  description: 'DPM-Solver-3 singlestep (noise prediction, Lu et al. 2022 Alg. 2), 3 calls per step',
  order: 3,
  update: dpmSolverUpdate,
});
