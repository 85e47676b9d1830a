/**
 * EXPERIMENTAL — ours, not from the PFDiff paper or its code: PFDiff around the variable-step
 * iPNDM (`ipndm_v`), whose update is an Adams–Bashforth extrapolation of the noise prediction.
 *
 * In x̃ = x/α, ρ = σ/α coordinates the probability-flow ODE is dx̃/dρ = ε̂ (as in ipndm-v.ts). With
 * the last p outputs (ρ_j, ε_j) (p ≤ the solver's `order`, newest first) the step from (x, ρ_s) to
 * ρ_t integrates their interpolating polynomial exactly over [ρ_s, ρ_t]:
 *   Φ(x, s → t) = α_t·(x/α_s + Σ_j w_j·ε_j),   w_j = ∫_{ρ_s}^{ρ_t} L_j(ρ) dρ,
 * with L_j the Lagrange basis on the nodes ρ_j. Unlike `ipndm_v`'s own step, the nodes need not
 * include ρ_s: after a foresight update the state sits at τ_{i+k+1} while the newest output was
 * made at the springboard τ_{i+h}. On PFDiff's first-order base grid (M = N(k+1) − k intervals)
 * one iteration is (pfdiff-extrapolation.ts, shared with the multistep variant):
 *   x_s = Φ(x, τ_i → τ_{i+h})                     springboard: extrapolation, no call
 *   ε   = ε̂(x_s, τ_{i+h})                         the one call, appended to the history
 *   x   ← Φ(x, τ_i → τ_{i+k+1})                   foresight update from x, with ε in the history
 * after a first step Φ(x, τ_0 → τ_1) with the output at τ_0 (an Euler step).
 * @packageDocumentation
 */
import { veSigma, type NoiseSchedule } from '../schedule/noise-schedule.js';
import { noiseStartState } from '../solvers/euler.js';
import type { IpndmOptions } from '../solvers/ipndm.js';
import { variableStepWeights } from '../solvers/ipndm-v.js';
import type { Solver } from '../solvers/types.js';
import { linearCombination, type NumArray } from '../tensor.js';
import type { PfdiffKH } from './pfdiff.js';
import { createExtrapolationPfdiffSolver } from './pfdiff-extrapolation.js';

/** Adams-type bases the experimental variant accepts. */
export type AdamsBase = 'ipndm_v';

/** Every valid {@link AdamsBase}. */
export const ADAMS_BASES: readonly AdamsBase[] = ['ipndm_v'];

/**
 * The Adams variant's order when none is given: 2, not ipndm_v's own 4. On the bundled U-Net (guidance
 * 2, trailing grids, 32 samples, trajectory MSE against DPM-Solver++ 2M with 100 calls) PFDiff 2_1
 * at order 2 gave 4.3e-3 at 8 calls and 1.5e-3 at 10, against 1.6e-2 and 2.3e-3 at order 4 and plain
 * ipndm_v's 1.1e-2 and 9.3e-3: the springboard and foresight steps extrapolate the slope polynomial
 * beyond its newest node, where a cubic through outputs far apart in ρ swings most.
 */
export const ADAMS_DEFAULT_ORDER = 2;

/** A past noise prediction and the ρ = σ/α where it was made. */
export interface SlopeEntry {
  rho: number;
  eps: NumArray;
}

/**
 * w_j = ∫_{ρ_s}^{ρ_t} L_j(ρ) dρ for the Lagrange basis on `nodes` (distinct, in any order):
 * W_j(ρ_t) − W_j(ρ_s) with W_j the integral from nodes[0] ({@link variableStepWeights}).
 * Σ_j w_j·p(ρ_j) = ∫_{ρ_s}^{ρ_t} p for every polynomial p of degree < nodes.length.
 */
export function intervalWeights(nodes: readonly number[], rhoS: number, rhoT: number): number[] {
  const toT = variableStepWeights(nodes, rhoT);
  const toS = variableStepWeights(nodes, rhoS);
  return toT.map((w, j) => w - toS[j]!);
}

/** Φ of the module comment: from (x, s) to t with the slopes in `history` (newest first, at least one). */
export function adamsExtrapolationStep(schedule: NoiseSchedule, x: NumArray, s: number, t: number, history: readonly SlopeEntry[]): NumArray {
  if (history.length === 0) throw new Error('adamsExtrapolationStep needs at least one past output');
  const w = intervalWeights(
    history.map((e) => e.rho),
    veSigma(schedule, s),
    veSigma(schedule, t),
  );
  const at = schedule.alpha(t);
  return linearCombination([at / schedule.alpha(s), ...w.map((wj) => at * wj)], [x, ...history.map((e) => e.eps)]);
}

/** Options of {@link createPfdiffAdamsSolver}: k_h and the base's own `order` (history length) and `noiseStart`. */
export type PfdiffAdamsOptions = PfdiffKH & IpndmOptions;

/**
 * A {@link Solver} running the experimental PFDiff around `ipndm_v` (module comment) on a base grid
 * of M = N(k+1) − k intervals with exactly N calls. Progress is reported once per call.
 */
export function createPfdiffAdamsSolver(options: PfdiffAdamsOptions): Solver {
  const { k, h, order, noiseStart } = options;
  if (!Number.isInteger(order) || order < 1 || order > 4) throw new RangeError(`PFDiff around ipndm_v: order must be an integer in [1, 4], got ${order}`);
  return createExtrapolationPfdiffSolver(k, h, (schedule) => {
    const history: SlopeEntry[] = []; // newest first
    return {
      start: (x, t) => noiseStartState(schedule, x, t, noiseStart),
      record(t, prediction) {
        history.unshift({ rho: veSigma(schedule, t), eps: prediction.eps });
        if (history.length > order) history.pop();
      },
      step: (x, s, t) => adamsExtrapolationStep(schedule, x, s, t, history),
    };
  });
}
