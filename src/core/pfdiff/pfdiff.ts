/**
 * PFDiff-k_h around a first-order solver (Wang et al., "PFDiff: Training-free Acceleration of
 * Diffusion Models Combining Past and Future Scores", ICLR 2025, Alg. 1; see docs/pfdiff.md).
 *
 * On a fine base grid τ_0 > τ_1 > … > τ_M with M = N(k+1) − k intervals, one iteration moves k+1
 * intervals for ONE model call:
 *   x_s  = φ(Q_past, x, τ_i, τ_{i+h})        springboard from the stored (past) output, no call
 *   Q    = model(x_s, τ_{i+h})               the future output: the one call of the iteration
 *   x    ← φ(Q, x, τ_i, τ_{i+k+1})           foresight jump, taken from x (not from x_s)
 * after a plain first step τ_0 → τ_1. Calls = 1 + (M − 1)/(k + 1) = N exactly.
 * @packageDocumentation
 */
import type { Solver, SolverContext } from '../solvers/types.js';
import type { NumArray } from '../tensor.js';
import { isFlowSchedule } from '../schedule/flow.js';
import { checkQuantity, firstOrderStep, storedQuantity, type PfdiffQuantity } from './first-order-step.js';

/** PFDiff hyperparameters: 1 ≤ h ≤ k ≤ 3. */
export interface PfdiffKH {
  /** Intervals skipped per call beyond the first: one iteration covers k + 1 base intervals. */
  k: number;
  /** Springboard offset: the one call of an iteration happens at τ_{i+h}. */
  h: number;
}

/** Options of {@link createPfdiffSolver}. */
export interface PfdiffOptions extends PfdiffKH {
  /** The stored, reused quantity (see `first-order-step.ts`). Default `epsilon` (`flow` on a flow schedule). */
  quantity?: PfdiffQuantity;
}

/** The six configurations the paper searches: 1_1, 2_1, 2_2, 3_1, 3_2, 3_3. */
export const PFDIFF_CONFIGS: readonly PfdiffKH[] = [
  { k: 1, h: 1 },
  { k: 2, h: 1 },
  { k: 2, h: 2 },
  { k: 3, h: 1 },
  { k: 3, h: 2 },
  { k: 3, h: 3 },
];

/** Throw unless 1 ≤ h ≤ k ≤ 3 are integers. */
export function checkPfdiffKH(k: unknown, h: unknown): void {
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (!ok(k) || k < 1 || k > 3) {
    throw new RangeError(`PFDiff k must be an integer 1, 2 or 3 (got ${String(k)}): pick k in 1..3 with 1 ≤ h ≤ k`);
  }
  if (!ok(h) || h < 1 || h > k) {
    throw new RangeError(`PFDiff h must be an integer with 1 ≤ h ≤ k = ${k} (got ${String(h)}): pick h in 1..${k}`);
  }
}

/** The number of base-grid intervals for a budget of `nfe` calls: M = N(k+1) − k. */
export function pfdiffBaseSteps(nfe: number, k: number): number {
  if (!Number.isInteger(nfe) || nfe < 1) {
    throw new RangeError(`PFDiff needs an integer NFE budget ≥ 1 (got ${nfe}): pass nfe ≥ 1`);
  }
  return nfe * (k + 1) - k;
}

/** Model calls PFDiff-k_h makes on a base grid of `steps` intervals: 1 + (M−1)/(k+1); throws if M ≠ N(k+1) − k. */
export function pfdiffCallsForSteps(steps: number, k: number): number {
  if (!Number.isInteger(steps) || steps < 1 || (steps - 1) % (k + 1) !== 0) {
    const n = Math.max(1, Math.round((steps - 1) / (k + 1)) + 1);
    throw new RangeError(
      `PFDiff-k_h with k = ${k} needs a base grid of M = N·(k+1) − k intervals, got M = ${steps}: ` +
        `build the grid with pfdiffBaseSteps(N, ${k}) steps (e.g. N = ${n} → M = ${pfdiffBaseSteps(n, k)}), or ask sample() for an nfe`,
    );
  }
  return 1 + (steps - 1) / (k + 1);
}

/**
 * A {@link Solver} running PFDiff-k_h with the first-order step φ on the given base grid
 * (`timesteps` = τ_0 … τ_M, M = N(k+1) − k). The guided/processed prediction returned by
 * `ctx.evaluate` is what is stored and reused. Progress is reported once per call (N steps).
 */
export function createPfdiffSolver(options: PfdiffOptions): Solver {
  const { k, h } = options;
  checkPfdiffKH(k, h);
  if (options.quantity !== undefined) checkQuantity(options.quantity);
  return async (x0: NumArray, timesteps: readonly number[], ctx: SolverContext): Promise<NumArray> => {
    const quantity = options.quantity ?? (isFlowSchedule(ctx.schedule) ? 'flow' : 'epsilon');
    const M = timesteps.length - 1;
    const N = pfdiffCallsForSteps(M, k);
    const sched = ctx.schedule;
    const tau = (i: number): number => timesteps[i]!;
    const store = (pred: { eps: NumArray; x0: NumArray }, t: number): NumArray => storedQuantity(pred, quantity, sched.alpha(t), sched.sigma(t));

    let x = x0;
    let pred = await ctx.evaluate(x, tau(0));
    let buf = store(pred, tau(0));
    x = firstOrderStep(sched, quantity, buf, x, tau(0), tau(1));
    await ctx.step({ step: 0, steps: N, t: tau(1), x, x0: pred.x0 });
    let call = 1;
    for (let i = 1; i < M; i += k + 1) {
      const xs = firstOrderStep(sched, quantity, buf, x, tau(i), tau(i + h));
      pred = await ctx.evaluate(xs, tau(i + h));
      buf = store(pred, tau(i + h));
      x = firstOrderStep(sched, quantity, buf, x, tau(i), tau(i + k + 1));
      await ctx.step({ step: call, steps: N, t: tau(i + k + 1), x, x0: pred.x0 });
      call++;
    }
    return x;
  };
}
