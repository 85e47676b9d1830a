/**
 * PLMS, the pseudo linear multistep method of PNDM (Liu et al. 2022, "Pseudo Numerical Methods for
 * Diffusion Models on Manifolds", eq. 12), as diffusers runs it with `skip_prk_steps`.
 *
 * Each step combines the recent ε̂ with Adams–Bashforth weights (equal step spacing assumed):
 *   ε̄ = ε₀                                    (order 1)
 *   ε̄ = (3ε₀ − ε₋₁)/2                          (order 2)
 *   ε̄ = (23ε₀ − 16ε₋₁ + 5ε₋₂)/12              (order 3)
 *   ε̄ = (55ε₀ − 59ε₋₁ + 37ε₋₂ − 9ε₋₃)/24      (order 4)
 * and moves with PNDM's transfer φ (eq. 9), which equals the deterministic DDIM update:
 *   x_t = α_t·(x_s − σ_s·ε̄)/α_s + σ_t·ε̄.
 *
 * The first step. diffusers' PLMS (skip_prk_steps) starts with a pseudo improved-Euler step: a DDIM
 * step s→t with ε₀, a call at the predicted point, then the s→t step redone with the mean of the
 * two ε̂; the next step calls the model again at the corrected point (the predictor's ε̂ is not
 * kept). That costs M + 1 calls for M ≥ 2 steps (M = 1: one plain DDIM step, 1 call). We follow
 * diffusers by default (`firstStep: 'heun'`); `firstStep: 'euler'` starts with orders 1, 2, 3 instead
 * and costs exactly M calls (useful at equal NFE).
 *
 * The Runge–Kutta warm-up (`warmup: 'prk'`, diffusers' `skip_prk_steps=False`, PNDM's own start, paper
 * eq. 13): the first 3 intervals s → t are pseudo RK4 steps, the fourth-order stencil then starting
 * at once from their ε̂(s). With φ(x, s → u, ε) the transfer above and the half-step h:
 *   k₁ = ε̂(x, s);            x₁ = φ(x, s → s − h, k₁)
 *   k₂ = ε̂(x₁, t + h);       x₂ = φ(x, s → t + h, k₂)
 *   k₃ = ε̂(x₂, t + h);       x₃ = φ(x, s → t, k₃)
 *   k₄ = ε̂(x₃, t);           x_t = φ(x, s → t, (k₁ + 2k₂ + 2k₃ + k₄)/6)
 * 4 calls per warm-up interval: M + 9 calls for M ≥ 4 intervals. The half-step h is ⌊(s − t)/2⌋ between
 * integer times of a discrete schedule — diffusers' `num_train_timesteps // num_inference_steps // 2`
 * on its leading grids, where it hands the network t + h but lands x₁ at s − h (the same time when
 * s − t is even) — and (s − t)/2 otherwise. With `stepping: 'ratio'` (diffusers off leading grids) steps land
 * at s − ⌊T/N⌋ and h is ⌊⌊T/N⌋/2⌋, see {@link PlmsOptions.stepping}.
 * @packageDocumentation
 */
import { linearCombination, type NumArray } from '../tensor.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { ddimTransfer, ratioLanding } from './ddim.js';
import { defineSolver, type SolverCost } from './define-solver.js';
import type { SolverSpec } from './types.js';

/** Options of {@link plmsSpec}. */
export interface PlmsOptions {
  /** Highest Adams–Bashforth order, 1…4 (default 4, as PNDM). */
  order: number;
  /** First step: diffusers' pseudo improved Euler (`heun`, default, one extra call) or plain DDIM (`euler`). */
  firstStep: 'heun' | 'euler';
  /** Use order 1 on the last step (default false, as diffusers). */
  lowerOrderFinal: boolean;
  /**
   * Start-up: `none` (default; diffusers' `skip_prk_steps=True`, the start then set by `firstStep`) or
   * `prk`, PNDM's pseudo Runge–Kutta warm-up over the first 3 intervals (4 calls each; diffusers'
   * `skip_prk_steps=False`), which makes `firstStep` moot.
   */
  warmup: 'none' | 'prk';
  /**
   * Where a step lands, as for ddim: the next grid time (`grid`, default) or diffusers' s − ⌊T/N⌋
   * (`ratio`; then also the PRK half-step ⌊⌊T/N⌋/2⌋ and the improved-Euler redo from t + ⌊T/N⌋).
   * The same on `leading` grids; on `linspace` / `trailing` grids the state lands off the grid and
   * the next call treats it as lying at the next grid time, as diffusers' PNDMScheduler does.
   */
  stepping: 'grid' | 'ratio';
}

/** Intervals the PRK warm-up takes (PNDM: enough ε̂ for the fourth-order stencil). */
export const PRK_WARMUP_STEPS = 3;

/** The PRK half-step h between grid times s > t (see the file header). */
export function prkHalfStep(sch: NoiseSchedule, s: number, t: number): number {
  return sch.kind === 'discrete' && Number.isInteger(s) && Number.isInteger(t) && t >= 0 ? Math.floor((s - t) / 2) : (s - t) / 2;
}

/** Adams–Bashforth weights for equal steps, newest first (PNDM eq. 12). */
const AB_WEIGHTS: readonly (readonly number[])[] = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]];

/** PNDM's transfer φ from (x_s, s) with ε̄ to t, and the x̂0 it implies: x̂0 = (x_s − σ_s·ε̄)/α_s. */
function transfer(sch: NoiseSchedule, xs: NumArray, eps: NumArray, s: number, t: number): { x: NumArray; x0: NumArray } {
  const x0 = linearCombination([1 / sch.alpha(s), -sch.sigma(s) / sch.alpha(s)], [xs, eps]);
  return { x: ddimTransfer(sch, x0, eps, t), x0 };
}

// firstStep 'heun': N = M + 1 for M ≥ 2 and N = 1 for M = 1, so M = N − 1 for N ≥ 3, else 1.
// warmup 'prk': N = 4·M for M ≤ 3 and M + 9 beyond; a run needs M ≥ 4, so M = N − 9 for N ≥ 13, else none.
const plmsCost: SolverCost<PlmsOptions> = {
  callsForSteps: (steps, o) =>
    o.warmup === 'prk' ? (steps <= PRK_WARMUP_STEPS ? 4 * steps : steps + 3 * PRK_WARMUP_STEPS) : o.firstStep === 'heun' && steps > 1 ? steps + 1 : steps,
  stepsForCalls: (nfe, o) =>
    o.warmup === 'prk'
      ? Math.max(0, nfe - 3 * PRK_WARMUP_STEPS) > PRK_WARMUP_STEPS
        ? nfe - 3 * PRK_WARMUP_STEPS
        : 0
      : o.firstStep === 'heun' && nfe >= 3
        ? nfe - 1
        : o.firstStep === 'heun'
          ? 1
          : nfe,
};

/** PLMS/PNDM (diffusers `PNDMScheduler`; `warmup: 'prk'` for skip_prk_steps=False). */
export const plmsSpec: SolverSpec<PlmsOptions> = defineSolver<PlmsOptions>({
  name: 'plms',
  aliases: ['PNDMScheduler', 'pndm'],
  description: 'PLMS (PNDM, Liu et al. 2022): Adams–Bashforth on ε̂ with the DDIM transfer; diffusers start costs one extra call',
  // Nominal order 4 (measured on grids uniform in σ/α); on log-SNR or time grids the equal-step
  // weights limit it to 2 (measured 1.99, see test/solvers-classic.test.ts).
  order: (o) => o.order,
  gridFamily: 'ddim',
  // A zero-length last interval: the transfer φ from s to s is the identity (diffusers' PNDM grids ending at t = 0).
  identityFinalStep: true,
  options: {
    defaults: { order: 4, firstStep: 'heun', lowerOrderFinal: false, warmup: 'none', stepping: 'grid' },
    rules: {
      order: { kind: 'number', min: 1, max: 4, integer: true, doc: 'highest Adams–Bashforth order, 1…4, default 4' },
      firstStep: { kind: 'enum', values: ['heun', 'euler'], doc: "'heun' (diffusers, one extra call, default) or 'euler'" },
      lowerOrderFinal: { kind: 'boolean', doc: 'order 1 on the last step, default false' },
      stepping: { kind: 'enum', values: ['grid', 'ratio'], doc: "land on the next grid time ('grid', default) or at s − ⌊T/N⌋ ('ratio', diffusers)" },
      warmup: { kind: 'enum', values: ['none', 'prk'], doc: "'none' (default) or 'prk' (PNDM's Runge–Kutta warm-up, 4 calls × 3 intervals)" },
    },
  },
  checkOptions: (o) => {
    if (o.warmup === 'prk' && o.order !== 4) {
      throw new RangeError(`solver "plms": warmup 'prk' starts the order-4 stencil (PNDM), got order ${o.order}: use order 4 or warmup 'none'`);
    }
  },
  checkGrid: (timesteps, schedule, o) => {
    const steps = timesteps.length - 1;
    if (o.stepping === 'ratio') {
      const i = timesteps.slice(0, -1).findIndex((t) => !Number.isInteger(t));
      if (schedule.kind !== 'discrete' || schedule.numTrainTimesteps === undefined || i >= 0) {
        throw new RangeError(
          `plms stepping 'ratio' (diffusers' t → t − ⌊T/N⌋) needs integer times of a discrete schedule, got ` +
            `${schedule.kind !== 'discrete' ? 'a continuous schedule' : `timesteps[${i}] = ${timesteps[i]}`}: use stepping 'grid' on this grid`,
        );
      }
    }
    if (o.warmup === 'prk' && steps <= PRK_WARMUP_STEPS) {
      throw new RangeError(
        `solver "plms": warmup 'prk' takes ${PRK_WARMUP_STEPS} Runge–Kutta intervals before PLMS, so it needs a grid of at least ` +
          `${PRK_WARMUP_STEPS + 1} intervals, got ${steps} (diffusers' PNDM with skip_prk_steps=False needs num_inference_steps ≥ 4): ` +
          "take more steps or warmup 'none'",
      );
    }
  },
  cost: plmsCost,
  spend: (nfe, o) => {
    const steps = plmsCost.stepsForCalls(nfe, o);
    if (steps < 1) {
      throw new RangeError(
        `solver "plms" with warmup 'prk' needs at least ${plmsCost.callsForSteps(PRK_WARMUP_STEPS + 1, o)} model calls ` +
          `(${PRK_WARMUP_STEPS} Runge–Kutta intervals of 4 calls, then one PLMS step), more than the budget of ${nfe}: raise the NFE or use warmup 'none'`,
      );
    }
    return { steps, options: o };
  },
  step: (opts, { steps, timesteps }) => {
    const ratio = opts.stepping === 'ratio';
    const terminal = timesteps[timesteps.length - 1]!;
    const history: NumArray[] = []; // ε̂, newest last
    return async ({ i, s, t, x, ctx }) => {
      const sch = ctx.schedule;
      const { eps } = await ctx.evaluate(x, s);
      history.push(eps);
      if (history.length > opts.order) history.shift();
      let epsBar: NumArray;
      if (opts.warmup === 'prk' && i < PRK_WARMUP_STEPS) {
        const h = ratio ? Math.floor(Math.floor(sch.numTrainTimesteps! / steps) / 2) : prkHalfStep(sch, s, t);
        const x1 = transfer(sch, x, eps, s, s - h).x;
        const { eps: k2 } = await ctx.evaluate(x1, t + h);
        const x2 = transfer(sch, x, k2, s, t + h).x;
        const { eps: k3 } = await ctx.evaluate(x2, t + h);
        const x3 = transfer(sch, x, k3, s, t).x;
        const { eps: k4 } = await ctx.evaluate(x3, t);
        epsBar = linearCombination([1 / 6, 1 / 3, 1 / 3, 1 / 6], [eps, k2, k3, k4]);
      } else if (opts.warmup === 'none' && i === 0 && opts.firstStep === 'heun' && steps > 1) {
        const predicted = transfer(sch, x, eps, s, ratio ? ratioLanding(sch, s, steps, terminal) : t).x;
        const { eps: epsNext } = await ctx.evaluate(predicted, t);
        epsBar = linearCombination([0.5, 0.5], [eps, epsNext]);
        // diffusers redoes the step from t + ⌊T/N⌋ (= s on leading grids) with the mean ε̂.
        if (ratio) return transfer(sch, x, epsBar, t + Math.floor(sch.numTrainTimesteps! / steps), t);
      } else {
        const k = opts.lowerOrderFinal && i === steps - 1 ? 1 : history.length;
        const w = AB_WEIGHTS[k - 1]!;
        epsBar = linearCombination(w, history.slice(-k).reverse());
        if (ratio) {
          const to = ratioLanding(sch, s, steps, terminal);
          const r = transfer(sch, x, epsBar, s, to);
          return to === t ? r : { ...r, t: to };
        }
      }
      return transfer(sch, x, epsBar, s, t);
    };
  },
});
