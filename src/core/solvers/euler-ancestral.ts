/**
 * Euler ancestral (k-diffusion's `sample_euler_ancestral`) in x̃ = x/α, ρ = σ/α coordinates.
 *
 * The jump ρ_s → ρ_t is split into a deterministic part down to ρ_down and fresh noise ρ_up:
 *   ρ_up = min(ρ_t, η·√(ρ_t²·(ρ_s² − ρ_t²)/ρ_s²)),   ρ_down = √(ρ_t² − ρ_up²),
 *   x̃_t = x̃_s + (ρ_down − ρ_s)·ε̂ + ρ_up·z,
 * so ρ_up² is the variance the DDPM posterior adds in VE form (η = 1). At ρ_t = 0 no noise is added and
 * x̃_t = x̂0 exactly.
 * @packageDocumentation
 */
import { veSigma } from '../schedule/noise-schedule.js';
import { linearCombination } from '../tensor.js';
import { defineSolver } from './define-solver.js';
import { NOISE_START_RULE, noiseStartState, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link eulerAncestralSpec}. */
export interface EulerAncestralOptions {
  /** Noise amount η ≥ 0 (default 1); 0 gives Euler. ρ_up is capped at ρ_t. */
  eta: number;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** ρ_down and ρ_up of an ancestral step from ρ_s to ρ_t (see the file comment). */
export function ancestralSplit(rhoFrom: number, rhoTo: number, eta: number): { down: number; up: number } {
  if (eta === 0 || rhoTo === 0) return { down: rhoTo, up: 0 };
  const up = Math.min(rhoTo, eta * Math.sqrt((rhoTo * rhoTo * (rhoFrom * rhoFrom - rhoTo * rhoTo)) / (rhoFrom * rhoFrom)));
  return { down: Math.sqrt(rhoTo * rhoTo - up * up), up };
}

/** Euler ancestral: one call per step, stochastic (unless η = 0). */
export const eulerAncestralSpec: SolverSpec<EulerAncestralOptions> = defineSolver<EulerAncestralOptions>({
  name: 'euler_a',
  aliases: ['EulerAncestralDiscreteScheduler', 'euler_ancestral', 'k_euler_a'],
  description: 'Euler ancestral (k-diffusion): Euler down to σ_down plus fresh noise σ_up; eta scales the noise',
  order: 1,
  stochastic: (o) => o.eta > 0,
  gridFamily: 'euler',
  options: {
    defaults: { eta: 1, noiseStart: 'unit' },
    rules: { eta: { kind: 'number', min: 0, doc: 'noise amount η ≥ 0, default 1 (0 = euler)' }, noiseStart: NOISE_START_RULE },
  },
  step:
    ({ eta, noiseStart }) =>
    async ({ i, s, t, x: given, ctx }) => {
      const sch = ctx.schedule;
      const x = i === 0 ? noiseStartState(sch, given, s, noiseStart) : given;
      const { eps, x0 } = await ctx.evaluate(x, s);
      const rs = veSigma(sch, s);
      const { down, up } = ancestralSplit(rs, veSigma(sch, t), eta);
      const at = sch.alpha(t);
      const ratio = at / sch.alpha(s);
      const next =
        up > 0 ? linearCombination([ratio, at * (down - rs), at * up], [x, eps, ctx.noise()]) : linearCombination([ratio, at * (down - rs)], [x, eps]);
      return { x: next, x0 };
    },
});
