/**
 * DPM++ SDE: k-diffusion's `sample_dpmpp_sde` (A1111 "DPM++ SDE", "DPM++ SDE Karras"; diffusers'
 * DPMSolverSDEScheduler) — a stochastic DPM-Solver++(2S) (Lu et al. 2022b) whose two substeps are
 * ancestral, in x̃ = x/α, ρ = σ/α coordinates with τ = −log ρ (= λ).
 *
 * Step ρ_s → ρ_t, h = τ_t − τ_s, intermediate ρ_m = ρ_s·e^{−r·h} (r = 1/2: √(ρ_s·ρ_t)); D = x̂0(x_s).
 * Each substep from ρ_s to a level ρ_to is split like Euler ancestral (euler-ancestral.ts) into
 * ρ_down and ρ_up with η, and moves by the data-prediction first-order update to ρ_down:
 *   x̃_m = (ρ_{m,down}/ρ_s)·x̃_s + (1 − ρ_{m,down}/ρ_s)·D + ρ_{m,up}·z₁,           D_m = x̂0(x_m)
 *   D̄ = (1 − 1/(2r))·D + (1/(2r))·D_m
 *   x̃_t = (ρ_{t,down}/ρ_s)·x̃_s + (1 − ρ_{t,down}/ρ_s)·D̄ + ρ_{t,up}·z₂.
 * The noise: k-diffusion draws z₁, z₂ as Brownian increments in ρ (torchsde's Brownian tree) over
 * [ρ_m, ρ_s] and [ρ_t, ρ_s], normalised; they are correlated with
 *   corr(z₁, z₂) = √((ρ_s − ρ_m)/(ρ_s − ρ_t)),
 * and we draw exactly that pair from two independent normals (same law, not the same stream as
 * torchsde's tree). η = 0 is the deterministic DPM-Solver++(2S) with r1 = r (dpmpp_2s); second order.
 * Into ρ_t = 0 the step is x = D (one call); with `lowerOrderFinal` (default true) the last step is
 * the first-order ancestral one, so M steps cost 2M − 1 calls.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { timeOfVeSigma, veSigma } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver, requireFinalSecondStage, TWO_STAGE_COST, type StepArgs, type StepResult } from './define-solver.js';
import { ancestralSplit } from './euler-ancestral.js';
import { NOISE_START_RULE, noiseStartState, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link dpmppSdeSpec}. */
export interface DpmppSdeOptions {
  /** Noise amount η ∈ [0, 1] (default 1); 0 is DPM-Solver++(2S). */
  eta: number;
  /** Scale of the injected noise (k-diffusion's `s_noise`, default 1). */
  sNoise: number;
  /** Intermediate point as a fraction of h in τ = −log ρ (default 1/2). */
  r: number;
  /** Last step first order (default true; required when the grid ends at σ = 0). */
  lowerOrderFinal: boolean;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/**
 * x at time `to` (VE level ρ_to) from the first-order data-prediction step to ρ_down plus ρ_up·z, in
 * VP coordinates: x̃_to = (ρ_down/ρ_s)·x̃_s + (1 − ρ_down/ρ_s)·d + ρ_up·z, x_to = α_to·x̃_to.
 */
export function ancestralDataStep(
  sch: NoiseSchedule,
  x: NumArray,
  s: number,
  d: NumArray,
  to: number,
  down: number,
  up: number,
  z: NumArray | undefined,
): NumArray {
  const rs = veSigma(sch, s);
  const a = sch.alpha(to);
  const k = down / rs;
  const coeffs = [(a * k) / sch.alpha(s), a * (1 - k)];
  return z && up > 0 ? linearCombination([...coeffs, a * up], [x, d, z]) : linearCombination(coeffs, [x, d]);
}

/** Options the two ancestral DPM-Solver++ steps (dpmpp_2s_a, dpmpp_sde) share. */
interface AncestralStepOptions {
  eta: number;
  sNoise: number;
  lowerOrderFinal: boolean;
  noiseStart: NoiseStart;
}

/**
 * The opening both ancestral DPM-Solver++ steps share: the start state (first step), the model call
 * at s, the VE levels ρ_s, ρ_t and the effective η (0 when `sNoise` is 0). A step into ρ_t = 0 ends at
 * x̂0; the final step with `lowerOrderFinal` is the first-order ancestral data step (one noise draw).
 * Either way `done` is the step's result; otherwise the caller takes its second stage.
 */
export async function ancestralOpening(
  o: AncestralStepOptions,
  { i, steps, s, t, x: given, ctx }: StepArgs,
): Promise<{ done: StepResult } | { done?: undefined; x: NumArray; x0: NumArray; rs: number; rt: number; eta: number }> {
  const sch = ctx.schedule;
  const x = i === 0 ? noiseStartState(sch, given, s, o.noiseStart) : given;
  const { x0 } = await ctx.evaluate(x, s);
  const rs = veSigma(sch, s);
  const rt = veSigma(sch, t);
  const eta = o.sNoise > 0 ? o.eta : 0;
  if (rt === 0) return { done: { x: x0, x0 } };
  if (o.lowerOrderFinal && i === steps - 1) {
    const { down, up } = ancestralSplit(rs, rt, eta);
    return { done: { x: ancestralDataStep(sch, x, s, x0, t, down, up * o.sNoise, up > 0 ? ctx.noise() : undefined), x0 } };
  }
  return { x, x0, rs, rt, eta };
}

/** DPM++ SDE (k-diffusion): two calls per step (one on the last), stochastic for η > 0. */
export const dpmppSdeSpec: SolverSpec<DpmppSdeOptions> = defineSolver<DpmppSdeOptions>({
  name: 'dpmpp_sde',
  aliases: ['DPMSolverSDEScheduler', 'k_dpmpp_sde'],
  description: 'DPM++ SDE (k-diffusion sample_dpmpp_sde): ancestral DPM-Solver++(2S) with Brownian-increment noise, 2 calls per step',
  order: 2,
  stochastic: (o) => o.eta > 0 && o.sNoise > 0,
  gridFamily: 'euler',
  options: {
    defaults: { eta: 1, sNoise: 1, r: 0.5, lowerOrderFinal: true, noiseStart: 'unit' },
    rules: {
      eta: { kind: 'number', min: 0, max: 1, doc: 'noise amount η in [0, 1], default 1 (0 = DPM-Solver++(2S))' },
      sNoise: { kind: 'number', min: 0, doc: 'noise scale, default 1' },
      r: { kind: 'number', min: 0, max: 1, minExclusive: true, doc: 'intermediate point as a fraction of h, default 1/2' },
      lowerOrderFinal: { kind: 'boolean', doc: 'last step first order, default true' },
      noiseStart: NOISE_START_RULE,
    },
  },
  cost: TWO_STAGE_COST,
  checkGrid: requireFinalSecondStage('dpmpp_sde', 'has no intermediate point on the step into σ = 0'),
  step: (o) => async (args) => {
    const open = await ancestralOpening(o, args);
    if (open.done) return open.done;
    const { x, rs, rt, eta } = open;
    const { s, t, ctx } = args;
    const sch = ctx.schedule;
    const first = { x0: open.x0 };
    const draw = (): NumArray => ctx.noise();
    const rm = rs * Math.exp(-o.r * (Math.log(rs) - Math.log(rt)));
    const m = timeOfVeSigma(sch, rm);
    const split1 = ancestralSplit(rs, rm, eta);
    const split2 = ancestralSplit(rs, rt, eta);
    let z1: NumArray | undefined;
    let z2: NumArray | undefined;
    if (eta > 0) {
      z1 = draw();
      const c = Math.sqrt((rs - rm) / (rs - rt));
      z2 = linearCombination([c, Math.sqrt(Math.max(0, 1 - c * c))], [z1, draw()]);
    }
    const xm = ancestralDataStep(sch, x, s, first.x0, m, split1.down, split1.up * o.sNoise, z1);
    const second = await ctx.evaluate(xm, m);
    const fac = 1 / (2 * o.r);
    const dBar = linearCombination([1 - fac, fac], [first.x0, second.x0]);
    return { x: ancestralDataStep(sch, x, s, dBar, t, split2.down, split2.up * o.sNoise, z2), x0: second.x0 };
  },
});
