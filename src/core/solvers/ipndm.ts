/**
 * iPNDM, the improved pseudo numerical method (Zhang & Chen 2023, "Fast Sampling of Diffusion Models
 * with Exponential Integrator", App. on PNDM; the `ipndm` of the diff-sampler toolbox), in
 * x̃ = x/α, ρ = σ/α coordinates where dx̃/dρ = ε̂.
 *
 * Each step is an explicit Adams–Bashforth step on the recent slopes ε_j (j = 0 newest), with
 * the order warming up 1, 2, 3, 4 and no extra model call (unlike PLMS's pseudo Runge–Kutta start):
 *   x̃_t = x̃_s + (ρ_t − ρ_s)·ε̄,
 *   ε̄ = ε₀;  (3ε₀ − ε₁)/2;  (23ε₀ − 16ε₁ + 5ε₂)/12;  (55ε₀ − 59ε₁ + 37ε₂ − 9ε₃)/24.
 * The weights are those of equal steps: exact for interior steps on grids uniform in ρ, O(h²) off
 * on others (as PLMS). The warm-up's Euler first step (local error O(h²)) bounds the global order
 * at 2 either way (measured 1.6 on a ρ-uniform grid, 2.05 on a log-SNR grid,
 * test/solvers-kdiffusion.test.ts); the higher orders lower the error constant (at 32 calls on a
 * ρ-uniform grid order 4 is > 100× closer than Euler). One call per step; exact at ρ_t = 0 in form.
 * @packageDocumentation
 */
import { veSigma } from '../schedule/noise-schedule.js';
import { linearCombination, type NumArray } from '../tensor.js';
import { defineSolver, type SolverDefinition } from './define-solver.js';
import { NOISE_START_RULE, noiseStartState, type NoiseStart } from './euler.js';
import type { SolverSpec } from './types.js';

/** Options of {@link ipndmSpec}. */
export interface IpndmOptions {
  /** Highest Adams–Bashforth order, 1…4 (default 4). */
  order: number;
  /** The start, default `'unit'` (see euler.ts). */
  noiseStart: NoiseStart;
}

/** Adams–Bashforth weights for equal steps, newest first. */
export const IPNDM_WEIGHTS: readonly (readonly number[])[] = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]];

/** What ipndm and ipndm_v share: the order (the Euler first step of the warm-up bounds it at 2; see the file comment), the grid family, the options. */
export const IPNDM_COMMON = {
  order: (o: IpndmOptions) => Math.min(o.order, 2),
  gridFamily: 'euler',
  options: {
    defaults: { order: 4, noiseStart: 'unit' },
    rules: {
      order: { kind: 'number', min: 1, max: 4, integer: true, doc: 'highest Adams–Bashforth order, 1…4, default 4' },
      noiseStart: NOISE_START_RULE,
    },
  },
} as const satisfies Pick<SolverDefinition<IpndmOptions>, 'order' | 'gridFamily' | 'options'>;

/** iPNDM: order 4 by default (on ρ-uniform grids), one call per step. */
export const ipndmSpec: SolverSpec<IpndmOptions> = defineSolver<IpndmOptions>({
  name: 'ipndm',
  aliases: ['iPNDM'],
  description: 'iPNDM (Zhang & Chen 2023): Adams–Bashforth on ε̂ in σ/α with a warm-up of orders 1…4, 1 call per step',
  ...IPNDM_COMMON,
  step: (o) => {
    const slopes: NumArray[] = []; // newest first
    return async ({ i, s, t, x: given, ctx }) => {
      const sch = ctx.schedule;
      const x = i === 0 ? noiseStartState(sch, given, s, o.noiseStart) : given;
      const { eps, x0 } = await ctx.evaluate(x, s);
      slopes.unshift(eps);
      if (slopes.length > o.order) slopes.pop();
      const w = IPNDM_WEIGHTS[slopes.length - 1]!;
      const at = sch.alpha(t);
      const dr = veSigma(sch, t) - veSigma(sch, s);
      return { x: linearCombination([at / sch.alpha(s), ...w.map((wj) => at * dr * wj)], [x, ...slopes]), x0 };
    };
  },
});
