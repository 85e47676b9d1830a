/**
 * DPM++ 2S ancestral: k-diffusion's `sample_dpmpp_2s_ancestral` (A1111 "DPM++ 2S a"), in x̃ = x/α,
 * ρ = σ/α coordinates with τ = −log ρ.
 *
 * Step ρ_s → ρ_t: split like Euler ancestral (euler-ancestral.ts) into ρ_down and ρ_up with η; a
 * deterministic DPM-Solver++(2S) step (Lu et al. 2022b, Alg. 1, r = 1/2) to ρ_down, whose
 * intermediate point is ρ_m = √(ρ_s·ρ_down):
 *   x̃_m = (ρ_m/ρ_s)·x̃_s + (1 − ρ_m/ρ_s)·D,   D = x̂0(x_s),   D_m = x̂0(x_m),
 *   x̃_t = (ρ_down/ρ_s)·x̃_s + (1 − ρ_down/ρ_s)·D_m + ρ_up·z.
 * Into ρ_t = 0 (ρ_down = 0) the step is x = D (one call); with `lowerOrderFinal` (default true) the
 * last step is the first-order ancestral one, so M steps cost 2M − 1 calls. η = 0 is dpmpp_2s
 * (r1 = 1/2); second order.
 * @packageDocumentation
 */
import { timeOfVeSigma } from '../schedule/noise-schedule.js';
import { defineSolver, requireFinalSecondStage, TWO_STAGE_COST } from './define-solver.js';
import { ancestralDataStep, ancestralOpening } from './dpmpp-sde.js';
import { ancestralSplit } from './euler-ancestral.js';
import { NOISE_START_RULE, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link dpmpp2sAncestralSpec}. */
export interface Dpmpp2sAncestralOptions {
  /** Noise amount η ∈ [0, 1] (default 1); 0 is DPM-Solver++(2S). */
  eta: number;
  /** Scale of the injected noise (k-diffusion's `s_noise`, default 1). */
  sNoise: number;
  /** Last step first order (default true; required when the grid ends at σ = 0). */
  lowerOrderFinal: boolean;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** DPM++ 2S ancestral (k-diffusion): two calls per step (one on the last), stochastic for η > 0. */
export const dpmpp2sAncestralSpec: SolverSpec<Dpmpp2sAncestralOptions> = defineSolver<Dpmpp2sAncestralOptions>({
  name: 'dpmpp_2s_a',
  aliases: ['dpmpp_2s_ancestral', 'k_dpmpp_2s_a'],
  description: 'DPM++ 2S ancestral (k-diffusion sample_dpmpp_2s_ancestral): DPM-Solver++(2S) to σ_down plus noise σ_up, 2 calls per step',
  order: 2,
  stochastic: (o) => o.eta > 0 && o.sNoise > 0,
  gridFamily: 'euler',
  options: {
    defaults: { eta: 1, sNoise: 1, lowerOrderFinal: true, noiseStart: 'unit' },
    rules: {
      eta: { kind: 'number', min: 0, max: 1, doc: 'noise amount η in [0, 1], default 1 (0 = DPM-Solver++(2S))' },
      sNoise: { kind: 'number', min: 0, doc: 'noise scale, default 1' },
      lowerOrderFinal: { kind: 'boolean', doc: 'last step first order, default true' },
      noiseStart: NOISE_START_RULE,
    },
  },
  cost: TWO_STAGE_COST,
  checkGrid: requireFinalSecondStage('dpmpp_2s_a', 'has no intermediate point on the step into σ = 0'),
  step: (o) => async (args) => {
    const open = await ancestralOpening(o, args);
    if (open.done) return open.done;
    const { x, rs, rt, eta } = open;
    const { s, t, ctx } = args;
    const sch = ctx.schedule;
    const first = { x0: open.x0 };
    const { down, up } = ancestralSplit(rs, rt, eta);
    const z = up > 0 ? ctx.noise() : undefined;
    // √(ρ_s·ρ_down) ≥ ρ_t for η ≤ 1; the max keeps rounding inside the schedule.
    const rm = Math.max(rt, Math.sqrt(rs * down));
    const m = timeOfVeSigma(sch, rm);
    const xm = ancestralDataStep(sch, x, s, first.x0, m, rm, 0, undefined);
    const second = await ctx.evaluate(xm, m);
    return { x: ancestralDataStep(sch, x, s, second.x0, t, down, up * o.sNoise, z), x0: second.x0 };
  },
});
