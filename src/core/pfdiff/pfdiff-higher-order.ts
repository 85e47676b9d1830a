/**
 * PFDiff's past-only variant for singlestep higher-order solvers (Wang et al. 2024, §3.3 and App.;
 * docs/pfdiff.md, "Higher-order solvers"): DPM-Solver-2/3 (noise prediction, Lu et al. 2022,
 * Alg. 1–2) and DPM-Solver++ 2S/3S (data prediction, Lu et al. 2022b, Alg. 1).
 *
 * A singlestep order-p step from s to t evaluates the model p times (at s and at p − 1 nodes inside
 * the step, placed at the fractions r of the step's log-SNR span h = λ_t − λ_s: r1 = 1/2 for p = 2,
 * r1 = 1/3, r2 = 2/3 for p = 3 — DPM-Solver's defaults; the official PFDiff code places them on the
 * grid's own spacing instead). The updates are the registry solvers' own. PFDiff keeps those p outputs and, one
 * iteration later, uses them INSTEAD of fresh calls for a springboard step (the PAST part), then
 * takes an ordinary fresh order-p step from the springboard:
 *   x_sb = Φ_p(stored outputs, x, τ_i → τ_{i+k+1−h})     no call
 *   x    = Φ_p(fresh,          x_sb, τ_{i+k+1−h} → τ_{i+k+1})   p calls, outputs stored
 * The springboard sits at τ_{i+k+1−h}, like the official code (onefly123/PFDiff, dpm-solver files):
 * the past part covers k+1−h intervals and the fresh step h intervals, so h keeps its first-order
 * meaning of "intervals the fresh output is responsible for". The first block is a plain fresh step
 * τ_0 → τ_1.
 *
 * Remainder rule (the official code silently stops early when N is not a multiple of p; we don't):
 * the budget N is split into B = ⌈N/p⌉ blocks of p calls, except that the LAST block gets
 * r = N mod p calls (when r > 0) and takes a fresh order-r step — DPM-Solver's own convention of
 * putting the lower orders at the end. Its springboard still uses all stored outputs of the previous
 * block (they cost nothing). If N < p there is one block: a single fresh order-N step. Calls = N
 * exactly, always.
 *
 * Clean terminal: at σ = 0 (λ = +∞) a higher-order step is undefined (its λ-polynomial weights
 * diverge). When the base grid ends at the clean point, the blocks cover τ_0 … τ_{M−1} and the last
 * interval τ_{M−1} → clean is a zero-call first-order step in ε-form reusing the last output's ε̂
 * (x_clean = (x − σ·ε̂)/α), in the spirit of PFDiff's past reuse. Base grid size:
 * M = 1 + (B − 1)(k + 1), plus 1 with a clean terminal ({@link pfdiffHigherOrderBaseSteps}).
 * @packageDocumentation
 */
import type { Prediction } from '../prediction.js';
import { dpmSolverUpdate } from '../solvers/dpm-solver.js';
import { dpmppSinglestepUpdate } from '../solvers/dpmpp-singlestep.js';
import { lambdaStep } from '../solvers/exponential-integrator.js';
import { intermediateFractions, type IntermediateFractions, type SinglestepOptions, type SinglestepUpdate } from '../solvers/singlestep-plan.js';
import type { Solver, SolverContext } from '../solvers/types.js';
import { axpby, type NumArray } from '../tensor.js';
import { checkPfdiffKH, type PfdiffKH } from './pfdiff.js';

/** Singlestep higher-order base solvers the past-only variant wraps. */
export type SinglestepBase = 'dpm_solver_2' | 'dpm_solver_3' | 'dpmpp_2s' | 'dpmpp_3s';

/** Every valid {@link SinglestepBase}. */
export const SINGLESTEP_BASES: readonly SinglestepBase[] = ['dpm_solver_2', 'dpm_solver_3', 'dpmpp_2s', 'dpmpp_3s'];

/** Order p and prediction form of a singlestep base. */
export function singlestepBaseInfo(base: SinglestepBase): { order: 2 | 3; form: 'noise' | 'data' } {
  switch (base) {
    case 'dpm_solver_2':
      return { order: 2, form: 'noise' };
    case 'dpm_solver_3':
      return { order: 3, form: 'noise' };
    case 'dpmpp_2s':
      return { order: 2, form: 'data' };
    case 'dpmpp_3s':
      return { order: 3, form: 'data' };
    default:
      throw new RangeError(`"${String(base)}" is not a singlestep higher-order solver: use one of ${SINGLESTEP_BASES.join(', ')}`);
  }
}

/** The per-block orders for a budget of `nfe` calls with order p (remainder last). */
export function blockOrders(nfe: number, order: number): number[] {
  if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`PFDiff needs an integer NFE budget ≥ 1 (got ${nfe}): pass nfe ≥ 1`);
  const out: number[] = [];
  let left = nfe;
  while (left > 0) {
    out.push(Math.min(order, left));
    left -= order;
  }
  return out;
}

/** Base-grid intervals for the past-only variant: 1 + (⌈N/p⌉ − 1)(k + 1), plus 1 for a clean terminal. */
export function pfdiffHigherOrderBaseSteps(nfe: number, k: number, order: number, cleanTerminal: boolean): number {
  const blocks = blockOrders(nfe, order).length;
  return 1 + (blocks - 1) * (k + 1) + (cleanTerminal ? 1 : 0);
}

/**
 * One singlestep step of order 1–3 from (x, s) to t with the registry solver's own update
 * (`dpmSolverUpdate` / `dpmppSinglestepUpdate`). With `stored` the predictions are REPLAYED from
 * the previous block instead of calling the model (the past reuse: output j stands in for the
 * j-th evaluation of the new step); otherwise the model is called `order` times and the
 * predictions are returned for the next block.
 */
export async function singlestepStep(
  ctx: SolverContext,
  update: SinglestepUpdate,
  fractions: IntermediateFractions,
  order: number,
  x: NumArray,
  s: number,
  t: number,
  stored?: readonly Prediction[],
): Promise<{ x: NumArray; predictions: Prediction[] }> {
  const predictions: Prediction[] = [];
  let next = 0;
  const take = async (xj: NumArray, tj: number): Promise<Prediction> => {
    const p = stored ? stored[Math.min(next, stored.length - 1)]! : await ctx.evaluate(xj, tj);
    next++;
    predictions.push(p);
    return p;
  };
  const inner: SolverContext = {
    schedule: ctx.schedule,
    evaluate: take,
    noise: () => ctx.noise(),
    step: (info) => ctx.step(info),
  };
  const start = await take(x, s);
  const g = lambdaStep(ctx.schedule, s, t);
  const out = await update(order, x, g, start, s, inner, fractions);
  return { x: out, predictions };
}

/** Options of {@link createPfdiffHigherOrderSolver}. */
export interface PfdiffHigherOrderOptions extends PfdiffKH {
  /** The singlestep solver wrapped. */
  base: SinglestepBase;
  /** The NFE budget N (it fixes the remainder block; the grid must have {@link pfdiffHigherOrderBaseSteps} intervals). */
  nfe: number;
  /** The base solver's intermediate fractions r1, r2 (defaults: DPM-Solver's 1/2; 1/3 and 2/3). */
  solverOptions?: Pick<SinglestepOptions, 'r1' | 'r2'>;
}

/**
 * A {@link Solver} running the past-only PFDiff variant (see the module comment) on the base grid
 * `timesteps` with exactly `nfe` model calls. Progress is reported once per block.
 */
export function createPfdiffHigherOrderSolver(options: PfdiffHigherOrderOptions): Solver {
  const { k, h, nfe } = options;
  checkPfdiffKH(k, h);
  const { order, form } = singlestepBaseInfo(options.base);
  const update = form === 'noise' ? dpmSolverUpdate : dpmppSinglestepUpdate;
  const fractions = intermediateFractions(options.base, options.solverOptions ?? {}, order);
  const orders = blockOrders(nfe, order);
  return async (xInit: NumArray, timesteps: readonly number[], ctx: SolverContext): Promise<NumArray> => {
    const sch = ctx.schedule;
    const M = timesteps.length - 1;
    const clean = M >= 1 && sch.sigma(timesteps[M]!) === 0;
    const expected = pfdiffHigherOrderBaseSteps(nfe, k, order, clean);
    if (M !== expected) {
      throw new RangeError(
        `the PFDiff past-only variant with N = ${nfe}, p = ${order}, k = ${k} needs a base grid of ${expected} intervals ` +
          `(1 + (⌈N/p⌉ − 1)(k+1)${clean ? ' + 1 for the clean terminal' : ''}), got ${M}: build it with pfdiffHigherOrderBaseSteps(${nfe}, ${k}, ${order}, ${clean})`,
      );
    }
    const steps = orders.length + (clean ? 1 : 0);
    const tau = (i: number): number => timesteps[i]!;
    let res = await singlestepStep(ctx, update, fractions, orders[0]!, xInit, tau(0), tau(1));
    let x = res.x;
    let stored = res.predictions;
    await ctx.step({ step: 0, steps, t: tau(1), x, x0: stored[stored.length - 1]!.x0 });
    let i = 1;
    for (let b = 1; b < orders.length; b++) {
      const sb = i + k + 1 - h;
      const xs = (await singlestepStep(ctx, update, fractions, stored.length, x, tau(i), tau(sb), stored)).x;
      res = await singlestepStep(ctx, update, fractions, orders[b]!, xs, tau(sb), tau(i + k + 1));
      x = res.x;
      stored = res.predictions;
      i += k + 1;
      await ctx.step({ step: b, steps, t: tau(i), x, x0: stored[stored.length - 1]!.x0 });
    }
    if (clean) {
      // Zero-call ε-form step into the clean point reusing the last ε̂: x_0 = (x − σ·ε̂)/α.
      const s = tau(i);
      const a = sch.alpha(s);
      x = axpby(1 / a, x, -sch.sigma(s) / a, stored[stored.length - 1]!.eps);
      await ctx.step({ step: steps - 1, steps, t: tau(M), x, x0: x });
    }
    return x;
  };
}
