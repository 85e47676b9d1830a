/**
 * The PFDiff iteration shared by the variants whose update Φ extrapolates past model outputs (the
 * multistep variant, pfdiff-multistep.ts, and the Adams variant around ipndm_v, pfdiff-adams.ts).
 * On PFDiff's first-order base grid (M = N(k+1) − k intervals), after a first step Φ(x, τ_0 → τ_1)
 * with the output at τ_0, one iteration per call is:
 *   x_s = Φ(x, τ_i → τ_{i+h})            springboard: extrapolation from the history, no call
 *   out = model(x_s, τ_{i+h})            the one call, recorded in the history
 *   x   ← Φ(x, τ_i → τ_{i+k+1})          foresight update from x (not from x_s), with the new output
 * @packageDocumentation
 */
import type { Prediction } from '../prediction.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import type { Solver } from '../solvers/types.js';
import type { NumArray } from '../tensor.js';
import { checkPfdiffKH, pfdiffCallsForSteps } from './pfdiff.js';

/** One run's extrapolation: its history of outputs and its step Φ over that history. */
export interface ExtrapolationRun {
  /** The state the first call sees (e.g. a scaled start); default the given noise. */
  start?(x: NumArray, t: number): NumArray;
  /** Record the output made at time t. */
  record(t: number, prediction: Prediction): void;
  /** Φ(x, s → t) with the history recorded so far. */
  step(x: NumArray, s: number, t: number): NumArray;
}

/** A {@link Solver} running the iteration of the module comment with N calls; `begin` makes each run's history. */
export function createExtrapolationPfdiffSolver(k: number, h: number, begin: (schedule: NoiseSchedule) => ExtrapolationRun): Solver {
  checkPfdiffKH(k, h);
  return async (xInit, timesteps, ctx) => {
    const M = timesteps.length - 1;
    const N = pfdiffCallsForSteps(M, k);
    const tau = (i: number): number => timesteps[i]!;
    const run = begin(ctx.schedule);
    let x = run.start ? run.start(xInit, tau(0)) : xInit;
    let pred = await ctx.evaluate(x, tau(0));
    run.record(tau(0), pred);
    x = run.step(x, tau(0), tau(1));
    await ctx.step({ step: 0, steps: N, t: tau(1), x, x0: pred.x0 });
    let call = 1;
    for (let i = 1; i < M; i += k + 1) {
      const xs = run.step(x, tau(i), tau(i + h));
      pred = await ctx.evaluate(xs, tau(i + h));
      run.record(tau(i + h), pred);
      x = run.step(x, tau(i), tau(i + k + 1));
      await ctx.step({ step: call, steps: N, t: tau(i + k + 1), x, x0: pred.x0 });
      call++;
    }
    return x;
  };
}
