/**
 * φ(Q, x, s, t): one first-order (DDIM-type) step from time `s` to time `t` that uses a GIVEN model
 * output Q instead of calling the network — the building block of PFDiff (Wang et al. 2024,
 * arXiv 2408.08822, eq. 6–8), which reuses a stored output at another point (x, s).
 *
 * A fresh output determines a consistent pair (ε̂, x̂0) at its own point, and every first-order VP
 * solver then lands on x_t = α_t·x̂0 + σ_t·ε̂. A REUSED output is only one number per coordinate, and
 * which quantity is held fixed changes the step (docs/pfdiff.md, "Notation"):
 * - `epsilon` (DDIM ε-form = DPM-Solver-1 = Euler in VE coordinates x/α, σ/α):
 *     x_t = α_t·(x − σ_s·ε)/α_s + σ_t·ε
 * - `x0` (DDIM x̂0-form = DPM-Solver++(1)): ε' = (x − α_s·x̂0)/σ_s, then x_t = α_t·x̂0 + σ_t·ε', i.e.
 *     x_t = (σ_t/σ_s)·x + (α_t − σ_t·α_s/σ_s)·x̂0
 * - `v` (v = α·ε − σ·x0, Salimans & Ho 2022): ε = (σ_s·x + α_s·v)/n_s, x̂0 = (α_s·x − σ_s·v)/n_s with
 *   n_s = α_s² + σ_s² (1 on VP schedules), so
 *     x_t = ((α_t·α_s + σ_t·σ_s)·x + (σ_t·α_s − α_t·σ_s)·v)/n_s
 * - `flow` (the flow velocity u = ε − x0, rectified flow's network output): x̂0 = (x − σ_s·u)/(α_s + σ_s),
 *   ε = (x + α_s·u)/(α_s + σ_s), so
 *     x_t = ((α_t + σ_t)·x + (σ_t·α_s − α_t·σ_s)·u)/(α_s + σ_s)
 *   which on a rectified-flow schedule (α + σ = 1) is the FlowMatch Euler step x_t = x + (σ_t − σ_s)·u,
 *   finite at the pure-noise start σ_s = 1 (α_s = 0) where the ε-form divides by α_s. The default
 *   quantity on flow schedules.
 * @packageDocumentation
 */
import type { Prediction } from '../prediction.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { axpby, type NumArray } from '../tensor.js';

/** Which model quantity PFDiff stores and reuses at other points: ε̂, x̂0, the VP v̂ or the flow velocity û = ε̂ − x̂0. */
export type PfdiffQuantity = 'epsilon' | 'x0' | 'v' | 'flow';

/** Every valid {@link PfdiffQuantity}. */
export const PFDIFF_QUANTITIES: readonly PfdiffQuantity[] = ['epsilon', 'x0', 'v', 'flow'];

/** α² + σ², exactly 1 where it is 1 up to rounding (VP schedules keep their formulas bit for bit). */
function vpNorm(alpha: number, sigma: number): number {
  const n = alpha * alpha + sigma * sigma;
  return Math.abs(n - 1) < 1e-12 ? 1 : n;
}

/**
 * First-order base solvers PFDiff-k_h wraps. `ddim`, `dpm_solver_1` and `euler` are the same
 * deterministic ODE step (ε-form; Euler is DDIM in VE coordinates); `dpmpp_1` is the x̂0-form.
 */
export type FirstOrderBase = 'ddim' | 'dpm_solver_1' | 'dpmpp_1' | 'euler';

/** Every valid {@link FirstOrderBase}. */
export const FIRST_ORDER_BASES: readonly FirstOrderBase[] = ['ddim', 'dpm_solver_1', 'dpmpp_1', 'euler'];

/**
 * The quantity a base solver naturally holds fixed: x̂0 for DPM-Solver++(1), ε̂ for the others — on a
 * flow schedule (`flow`: true) the velocity û, the network's own output there.
 */
export function defaultQuantity(base: FirstOrderBase, flow = false): PfdiffQuantity {
  return base === 'dpmpp_1' ? 'x0' : flow ? 'flow' : 'epsilon';
}

/** Throw unless `quantity` is a {@link PfdiffQuantity}. */
export function checkQuantity(quantity: unknown): asserts quantity is PfdiffQuantity {
  if (!PFDIFF_QUANTITIES.includes(quantity as PfdiffQuantity)) {
    throw new RangeError(`unknown PFDiff quantity "${String(quantity)}": use one of ${PFDIFF_QUANTITIES.join(', ')}`);
  }
}

/**
 * The quantity to store from a fresh prediction made at a point with coefficients (α, σ):
 * ε̂, x̂0, v̂ = α·ε̂ − σ·x̂0, or û = ε̂ − x̂0.
 */
export function storedQuantity(pred: Prediction, quantity: PfdiffQuantity, alpha: number, sigma: number): NumArray {
  switch (quantity) {
    case 'epsilon':
      return pred.eps;
    case 'x0':
      return pred.x0;
    case 'v':
      return axpby(alpha, pred.eps, -sigma, pred.x0);
    case 'flow':
      return axpby(1, pred.eps, -1, pred.x0);
  }
}

/**
 * φ(Q, x, s, t): the first-order step from (x, s) to t holding the stored quantity `q` (of kind
 * `quantity`) fixed; see the module comment for the three formulas. No model call.
 */
export function firstOrderStep(schedule: NoiseSchedule, quantity: PfdiffQuantity, q: NumArray, x: NumArray, s: number, t: number): NumArray {
  const as = schedule.alpha(s);
  const ss = schedule.sigma(s);
  const at = schedule.alpha(t);
  const st = schedule.sigma(t);
  switch (quantity) {
    case 'epsilon':
      if (as === 0) {
        throw new RangeError("φ in ε-form cannot start at α = 0 (σ = 1 of a flow schedule): reuse the velocity (quantity 'flow') or x̂0 (quantity 'x0')");
      }
      return axpby(at / as, x, st - (at * ss) / as, q);
    case 'x0':
      if (ss === 0) throw new RangeError('φ in x̂0-form cannot start at σ = 0 (the clean end point): start the step at a noisy time');
      return axpby(st / ss, x, at - (st * as) / ss, q);
    case 'v': {
      const n = vpNorm(as, ss);
      return axpby((at * as + st * ss) / n, x, (st * as - at * ss) / n, q);
    }
    case 'flow':
      return axpby((at + st) / (as + ss), x, (st * as - at * ss) / (as + ss), q);
  }
}

/** The (ε̂, x̂0) pair that the stored `q` implies at the point (x, s) — for progress previews. */
export function predictionAt(schedule: NoiseSchedule, quantity: PfdiffQuantity, q: NumArray, x: NumArray, s: number): Prediction {
  const a = schedule.alpha(s);
  const sg = schedule.sigma(s);
  switch (quantity) {
    case 'epsilon':
      return { eps: q, x0: axpby(1 / a, x, -sg / a, q) };
    case 'x0':
      return { eps: axpby(1 / sg, x, -a / sg, q), x0: q };
    case 'v': {
      const n = vpNorm(a, sg);
      return { eps: axpby(sg / n, x, a / n, q), x0: axpby(a / n, x, -sg / n, q) };
    }
    case 'flow':
      return { eps: axpby(1 / (a + sg), x, a / (a + sg), q), x0: axpby(1 / (a + sg), x, -sg / (a + sg), q) };
  }
}
