/**
 * DPM2 and DPM2 ancestral: k-diffusion's `sample_dpm_2` / `sample_dpm_2_ancestral` (Katherine
 * Crowson's second-order "DPM-Solver-2 in σ" samplers; A1111 "DPM2", "DPM2 a"; diffusers'
 * KDPM2DiscreteScheduler / KDPM2AncestralDiscreteScheduler), in x̃ = x/α, ρ = σ/α coordinates where
 * the probability-flow ODE is dx̃/dρ = ε̂.
 *
 * DPM2, step ρ_s → ρ_t: a midpoint step at the geometric mean ρ_m = √(ρ_s·ρ_t) (the midpoint in
 * log ρ):
 *   x̃_m = x̃_s + (ρ_m − ρ_s)·ε̂(x_s, s),   x̃_t = x̃_s + (ρ_t − ρ_s)·ε̂(x_m, m).
 * Second order, two calls per step. A step into ρ_t = 0 has no midpoint (log 0): it is a plain Euler
 * step, as in k-diffusion; with `lowerOrderFinal` (default true) the last step is always Euler, so
 * M steps cost 2M − 1 calls.
 *
 * DPM2 ancestral: the jump is split as Euler ancestral's (euler-ancestral.ts), ρ_down and ρ_up with
 * η ∈ [0, 1] (so ρ_down > 0 whenever ρ_t > 0); the midpoint step goes to ρ_down with ρ_m = √(ρ_s·ρ_down),
 * then x̃_t = x̃_down + ρ_up·z.
 * @packageDocumentation
 */
import { timeOfVeSigma, veSigma } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver, type StepArgs, requireFinalSecondStage, TWO_STAGE_COST } from './define-solver.js';
import { ancestralSplit } from './euler-ancestral.js';
import { NOISE_START_RULE, noiseStartState, veEulerStep, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link dpm2Spec}. */
export interface Dpm2Options {
  /** Last step Euler (default true; required when the grid ends at σ = 0). */
  lowerOrderFinal: boolean;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** Options of {@link dpm2AncestralSpec}. */
export interface Dpm2AncestralOptions extends Dpm2Options {
  /** Noise amount η ∈ [0, 1] (default 1); 0 gives DPM2. */
  eta: number;
}

/** Calls N = 2M − [lowerOrderFinal], so M = ⌊(N + [lowerOrderFinal])/2⌋ (as heun). */

/**
 * The deterministic part of one step from s to the VE level `rhoTo` (> 0 for the midpoint form):
 * the slope for x̃_to = x̃_s + (ρ_to − ρ_s)·slope, and the latest x̂0.
 */
async function dpm2Slope(args: StepArgs, x: NumArray, rhoTo: number, euler: boolean): Promise<{ slope: NumArray; x0: NumArray }> {
  const { s, ctx } = args;
  const sch = ctx.schedule;
  const first = await ctx.evaluate(x, s);
  if (euler || rhoTo === 0) return { slope: first.eps, x0: first.x0 };
  // √(ρ_s·ρ_down) ≥ ρ_t for η ≤ 1 (equality at η = 1, ρ_down = ρ_t²/ρ_s); the max keeps rounding inside the schedule.
  const mid = timeOfVeSigma(sch, Math.max(veSigma(sch, args.t), Math.sqrt(veSigma(sch, s) * rhoTo)));
  const second = await ctx.evaluate(veEulerStep(sch, x, first.eps, s, mid), mid);
  return { slope: second.eps, x0: second.x0 };
}

/** DPM2 (k-diffusion): second order, two calls per step, last step Euler. */
export const dpm2Spec: SolverSpec<Dpm2Options> = defineSolver<Dpm2Options>({
  name: 'dpm_2',
  aliases: ['dpm2', 'k_dpm_2', 'KDPM2DiscreteScheduler'],
  description: 'DPM2 (k-diffusion sample_dpm_2): midpoint in log σ/α, second order, 2 calls per step, last step Euler',
  order: 2,
  gridFamily: 'euler',
  options: {
    defaults: { lowerOrderFinal: true, noiseStart: 'unit' },
    rules: { lowerOrderFinal: { kind: 'boolean', doc: 'last step Euler, default true' }, noiseStart: NOISE_START_RULE },
  },
  cost: TWO_STAGE_COST,
  checkGrid: requireFinalSecondStage('dpm_2', 'has no midpoint on the step into σ = 0 (log 0)'),
  step: (o) => async (args) => {
    const { i, steps, s, t, ctx } = args;
    const x = i === 0 ? noiseStartState(ctx.schedule, args.x, s, o.noiseStart) : args.x;
    const { slope, x0 } = await dpm2Slope(args, x, veSigma(ctx.schedule, t), o.lowerOrderFinal && i === steps - 1);
    return { x: veEulerStep(ctx.schedule, x, slope, s, t), x0 };
  },
});

/** DPM2 ancestral (k-diffusion): the DPM2 step to ρ_down plus fresh noise ρ_up. */
export const dpm2AncestralSpec: SolverSpec<Dpm2AncestralOptions> = defineSolver<Dpm2AncestralOptions>({
  name: 'dpm_2_a',
  aliases: ['dpm_2_ancestral', 'dpm2_a', 'k_dpm_2_a', 'KDPM2AncestralDiscreteScheduler'],
  description: 'DPM2 ancestral (k-diffusion sample_dpm_2_ancestral): DPM2 to σ_down plus noise σ_up, 2 calls per step',
  order: 2,
  stochastic: (o) => o.eta > 0,
  gridFamily: 'euler',
  options: {
    defaults: { lowerOrderFinal: true, noiseStart: 'unit', eta: 1 },
    rules: {
      lowerOrderFinal: { kind: 'boolean', doc: 'last step Euler, default true' },
      noiseStart: NOISE_START_RULE,
      eta: { kind: 'number', min: 0, max: 1, doc: 'noise amount η in [0, 1], default 1 (0 = dpm_2)' },
    },
  },
  cost: TWO_STAGE_COST,
  checkGrid: requireFinalSecondStage('dpm_2_a', 'has no midpoint on the step into σ = 0 (log 0)'),
  step: (o) => async (args) => {
    const { i, steps, s, t, ctx } = args;
    const sch = ctx.schedule;
    const x = i === 0 ? noiseStartState(sch, args.x, s, o.noiseStart) : args.x;
    const rs = veSigma(sch, s);
    const { down, up } = ancestralSplit(rs, veSigma(sch, t), o.eta);
    const { slope, x0 } = await dpm2Slope(args, x, down, o.lowerOrderFinal && i === steps - 1);
    const at = sch.alpha(t);
    const ratio = at / sch.alpha(s);
    const next =
      up > 0 ? linearCombination([ratio, at * (down - rs), at * up], [x, slope, ctx.noise()]) : linearCombination([ratio, at * (down - rs)], [x, slope]);
    return { x: next, x0 };
  },
});
