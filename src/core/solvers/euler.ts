/**
 * Euler's method on the probability-flow ODE in Karras et al. 2022 ("Elucidating the Design Space
 * of Diffusion-Based Generative Models") coordinates: x̃ = x/α, ρ = σ/α, where the ODE is
 *   dx̃/dρ = (x̃ − x̂0)/ρ = ε̂     (Alg. 1 with the Euler step only).
 * Step s→t:  x̃_t = x̃_s + (ρ_t − ρ_s)·ε̂,  i.e.  x_t = (α_t/α_s)·x_s + α_t·(ρ_t − ρ_s)·ε̂.
 * Equal to deterministic DDIM in exact arithmetic; exact at the clean end point (ρ = 0, α = 1).
 *
 * The start (`noiseStart`, shared by euler, euler_a, heun and lms): `'unit'` (default) takes the
 * VP state x_T = z as given, whose marginal N(α_T·x0, σ_T²) ≈ N(0, 1) is the forward process's;
 * `'sigma_max'` is diffusers' `init_noise_sigma = σ_max` of `linspace`/`trailing` grids: the VE
 * state z·ρ_T, i.e. the VP state x_T = α_T·ρ_T·z = σ_T·z (SD 1.5: σ_T = 0.99766, so the start is
 * 0.23 % smaller; diffusers' `leading` value √(ρ_T² + 1) is the VP start z, i.e. `'unit'`).
 *
 * On a rectified-flow schedule (α = 1 − σ, `flow.ts`) the Euler family steps in the flow's own
 * coordinates (x, σ), where the ODE is dx/dσ = û with the velocity û = ε̂ − x̂0:
 *   x_t = x_s + (σ_t − σ_s)·û
 * — diffusers' FlowMatchEulerDiscreteScheduler step (and FlowMatchHeun's slope). x/α is infinite at
 * the pure-noise end σ = 1 where flow grids start; in exact arithmetic the Euler step is the same
 * (both equal DDIM), Heun's average of two slopes is not.
 * @packageDocumentation
 */
import type { Prediction } from '../prediction.js';
import { isFlowSchedule } from '../schedule/flow.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { veSigma } from '../schedule/noise-schedule.js';
import { axpby, scale, type NumArray } from '../tensor.js';
import type { OptionRule } from './options.js';
import { defineSolver } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** The start of the Euler family: the VP state z (`'unit'`) or diffusers' z·σ_max in VE terms (`'sigma_max'`). */
export type NoiseStart = 'unit' | 'sigma_max';

/** The option rule of {@link NoiseStart}. */
export const NOISE_START_RULE: OptionRule = {
  kind: 'enum',
  values: ['unit', 'sigma_max'],
  doc: "start from the VP state z ('unit', default) or from diffusers' z·σ_max in σ/α, i.e. σ_T·z ('sigma_max')",
};

/** The state the first step starts from (see the file comment): x, or σ_s·x for `'sigma_max'`. */
export function noiseStartState(schedule: NoiseSchedule, x: NumArray, s: number, start: NoiseStart): NumArray {
  return start === 'sigma_max' ? scale(schedule.sigma(s), x) : x;
}

/** Options of {@link eulerSpec}. */
export interface EulerOptions {
  /** The start, default `'unit'` (see the file comment). */
  noiseStart: NoiseStart;
}

/** x_s + (ρ_t − ρ_s)·d in x̃ = x/α coordinates, mapped back to x: the Euler step with slope d. */
export function veEulerStep(schedule: NoiseSchedule, x: NumArray, d: NumArray, s: number, t: number): NumArray {
  const at = schedule.alpha(t);
  return axpby(at / schedule.alpha(s), x, at * (veSigma(schedule, t) - veSigma(schedule, s)), d);
}

/** The Euler family's ODE slope of a prediction: ε̂ in (x/α, σ/α), or the velocity ε̂ − x̂0 in (x, σ) on a flow schedule. */
export function odeSlope(schedule: NoiseSchedule, p: Prediction): NumArray {
  if (!isFlowSchedule(schedule)) return p.eps;
  return p.velocity ?? axpby(1, p.eps, -1, p.x0);
}

/**
 * The Euler step with slope d from {@link odeSlope}: {@link veEulerStep}, or x + (σ_t − σ_s)·d on a
 * flow schedule — for a float32 state rounded as diffusers' float32 FlowMatch step rounds it:
 * Δσ, Δσ·d and the sum each to float32.
 */
export function odeEulerStep(schedule: NoiseSchedule, x: NumArray, d: NumArray, s: number, t: number): NumArray {
  if (!isFlowSchedule(schedule)) return veEulerStep(schedule, x, d, s, t);
  const dt = schedule.sigma(t) - schedule.sigma(s);
  if (!(x instanceof Float32Array)) return axpby(1, x, dt, d);
  return axpby(1, x, 1, Float32Array.from(scale(Math.fround(dt), d)));
}

/** Euler (Karras et al. 2022): first order, one call per step. */
export const eulerSpec: SolverSpec<EulerOptions> = defineSolver<EulerOptions>({
  name: 'euler',
  aliases: ['EulerDiscreteScheduler', 'FlowMatchEulerDiscreteScheduler', 'k_euler'],
  description: 'Euler on the probability-flow ODE in σ/α (Karras et al. 2022), first order',
  order: 1,
  gridFamily: 'euler',
  pureNoiseStart: true,
  options: { defaults: { noiseStart: 'unit' }, rules: { noiseStart: NOISE_START_RULE } },
  step:
    ({ noiseStart }) =>
    async ({ i, s, t, x: given, ctx }) => {
      const x = i === 0 ? noiseStartState(ctx.schedule, given, s, noiseStart) : given;
      const p = await ctx.evaluate(x, s);
      return { x: odeEulerStep(ctx.schedule, x, odeSlope(ctx.schedule, p), s, t), x0: p.x0 };
    },
});
