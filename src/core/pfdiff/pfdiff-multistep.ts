/**
 * EXPERIMENTAL — ours, not from the PFDiff paper or its code (which have no multistep variant):
 * PFDiff for multistep data-prediction solvers (DPM-Solver++ 2M, UniPC's predictor).
 *
 * Multistep solvers already reuse past outputs, so PFDiff's "past" part becomes the multistep
 * extrapolation itself. On the first-order PFDiff base grid (M = N(k+1) − k intervals) one
 * iteration is:
 *   x_s = Φ(x, τ_i → τ_{i+h}; history)            springboard: multistep extrapolation, no call
 *   d   = x̂0(x_s, τ_{i+h})                        the one call, appended to the history
 *   x   ← Φ(x, τ_i → τ_{i+k+1}; history with d)    foresight update from x (not from x_s)
 * after a plain first-order first step. Φ is the exponential integrator of the data-prediction
 * ODE (Lu et al. 2022b, DPM-Solver++ eq. 9) with x̂0(λ) replaced by the line through the two most
 * recent outputs at their TRUE log-SNRs (λ_a, d_a), (λ_b, d_b), integrated exactly:
 *   x_t = (σ_t/σ_s)·x + I0·d_b + I1·(d_b − d_a)/(λ_b − λ_a),
 *   I0 = σ_t∫_{λ_s}^{λ_t} e^λ dλ = α_t − σ_t·α_s/σ_s,
 *   I1 = σ_t∫_{λ_s}^{λ_t} e^λ(λ − λ_b) dλ = α_t(λ_t − λ_b − 1) − (σ_t·α_s/σ_s)(λ_s − λ_b − 1).
 * With one output it is the first-order x̂0-form step. Into the clean point (σ_t = 0, λ_t = +∞) the
 * line would be extrapolated to infinity, so that step is first order (x_t = d_b), as DPM-Solver++
 * does with its lower-order final step. UniPC is accepted as the same predictor (its corrector
 * needs an output at the new state, which is exactly what PFDiff avoids); measured, not claimed.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import type { Solver, SolverContext } from '../solvers/types.js';
import { linearCombination, type NumArray } from '../tensor.js';
import type { PfdiffKH } from './pfdiff.js';
import { createExtrapolationPfdiffSolver } from './pfdiff-extrapolation.js';

/** Multistep base solvers the experimental variant accepts. */
export type MultistepBase = 'dpmpp_2m' | 'unipc';

/** Every valid {@link MultistepBase}. */
export const MULTISTEP_BASES: readonly MultistepBase[] = ['dpmpp_2m', 'unipc'];

/** A past data prediction and the log-SNR where it was made. */
export interface HistoryEntry {
  lambda: number;
  x0: NumArray;
}

/**
 * Φ: the exponential-integrator step from (x, s) to t with x̂0(λ) linear through the last two
 * history entries (first order with one entry, or into the clean point). See the module comment.
 */
export function multistepExtrapolationStep(schedule: NoiseSchedule, x: NumArray, s: number, t: number, history: readonly HistoryEntry[]): NumArray {
  const b = history[history.length - 1];
  if (!b) throw new Error('multistepExtrapolationStep needs at least one past output');
  const as = schedule.alpha(s);
  const ss = schedule.sigma(s);
  const at = schedule.alpha(t);
  const st = schedule.sigma(t);
  const decay = (st * as) / ss; // σ_t·e^{λ_s} = σ_t·α_s/σ_s
  const i0 = at - decay;
  const a = history[history.length - 2];
  if (st === 0 || !a) return linearCombination([st / ss, i0], [x, b.x0]);
  const ls = schedule.lambda(s);
  const lt = schedule.lambda(t);
  const i1 = at * (lt - b.lambda - 1) - decay * (ls - b.lambda - 1);
  const slope = i1 / (b.lambda - a.lambda);
  return linearCombination([st / ss, i0 + slope, -slope], [x, b.x0, a.x0]);
}

/**
 * Options of {@link createPfdiffMultistepSolver}: k_h only. Whichever multistep base is named
 * (`dpmpp_2m` or `unipc`), the variant's predictor is the DPM-Solver++(2M)-type data-prediction
 * extrapolation of the module comment; the base's own options are refused by `pfdiff()`.
 */
export type PfdiffMultistepOptions = PfdiffKH;

/**
 * A {@link Solver} running the experimental multistep PFDiff (module comment) on a base grid of
 * M = N(k+1) − k intervals with exactly N calls. Progress is reported once per call.
 */
export function createPfdiffMultistepSolver(options: PfdiffMultistepOptions): Solver {
  return createExtrapolationPfdiffSolver(options.k, options.h, (schedule) => {
    const history: HistoryEntry[] = [];
    return {
      record(t, prediction) {
        history.push({ lambda: schedule.lambda(t), x0: prediction.x0 });
        if (history.length > 2) history.shift();
      },
      step: (x, s, t) => multistepExtrapolationStep(schedule, x, s, t, history),
    };
  });
}

/**
 * The same predictor without PFDiff (one call per grid point): a DPM-Solver++(2M)-type baseline
 * with exact weights for the linear x̂0 interpolant, used to measure the experimental variant.
 */
export function createMultistepExtrapolationSolver(): Solver {
  return async (xInit: NumArray, timesteps: readonly number[], ctx: SolverContext): Promise<NumArray> => {
    const M = timesteps.length - 1;
    const sch = ctx.schedule;
    const history: HistoryEntry[] = [];
    let x = xInit;
    for (let i = 0; i < M; i++) {
      const pred = await ctx.evaluate(x, timesteps[i]!);
      history.push({ lambda: sch.lambda(timesteps[i]!), x0: pred.x0 });
      if (history.length > 2) history.shift();
      x = multistepExtrapolationStep(sch, x, timesteps[i]!, timesteps[i + 1]!, history);
      await ctx.step({ step: i, steps: M, t: timesteps[i + 1]!, x, x0: pred.x0 });
    }
    return x;
  };
}
