/**
 * The exponential-integrator algebra behind DPM-Solver, DPM-Solver++ and UniPC.
 *
 * In log-SNR λ = log(α/σ) the probability-flow ODE has an exact linear part, so over a step s → t
 * with h = λ_t − λ_s (Lu et al. 2022, DPM-Solver, eq. 3.4; Lu et al. 2022b, DPM-Solver++, eq. 8):
 *   noise prediction:  x_t = (α_t/α_s)·x_s − σ_t·∫₀ʰ e^{h−τ} ε̂(λ_s+τ) dτ
 *   data prediction:   x_t = (σ_t/σ_s)·x_s + α_t·∫₀ʰ e^{−(h−τ)} x̂0(λ_s+τ) dτ
 * Expanding ε̂ or x̂0 in τ, the k-th Taylor term integrates to h^{k+1}·φ_{k+1}(±h) times the k-th
 * λ-derivative, with the φ-functions φ_0(z) = e^z, φ_{k+1}(z) = (φ_k(z) − 1/k!)/z, i.e.
 * φ_k(z) = Σ_{j≥0} z^j/(j+k)!.
 *
 * The clean end point (σ_t = 0, λ_t = +∞, h = +∞) is handled explicitly: the data form has the
 * limit x_t = α_t·x̂0 (e^{−h} = 0), and the noise form's σ_t·(e^h − 1) has the finite limit
 * α_t·σ_s/α_s, which is what {@link noiseStepCoefficient} returns there.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';

/** α, σ, λ at both ends of one step s → t, and h = λ_t − λ_s. */
export interface LambdaStep {
  readonly alphaS: number;
  readonly sigmaS: number;
  readonly lambdaS: number;
  readonly alphaT: number;
  readonly sigmaT: number;
  readonly lambdaT: number;
  /** λ_t − λ_s (+∞ when t is the clean end point). */
  readonly h: number;
  /** True when t is the clean end point (σ_t = 0). */
  readonly clean: boolean;
}

/** The log-SNR geometry of the step s → t. */
export function lambdaStep(schedule: NoiseSchedule, s: number, t: number): LambdaStep {
  const alphaS = schedule.alpha(s);
  const sigmaS = schedule.sigma(s);
  const lambdaS = schedule.lambda(s);
  const alphaT = schedule.alpha(t);
  const sigmaT = schedule.sigma(t);
  const clean = sigmaT === 0;
  const lambdaT = clean ? Infinity : schedule.lambda(t);
  if (lambdaS === -Infinity) {
    throw new RangeError(
      `a log-SNR step cannot start at α = 0 (t = ${s}: σ = 1 of a flow schedule, λ = −∞): start the grid below σ = 1 ` +
        '(e.g. the use_flow_sigmas grid of DPMSolverMultistepScheduler / UniPCMultistepScheduler), or use ddim, euler or heun',
    );
  }
  if (!(sigmaS > 0) || !Number.isFinite(lambdaS)) {
    throw new RangeError(`a solver step cannot start at the clean end point (t = ${s}); only the last timestep may have σ = 0`);
  }
  const h = lambdaT - lambdaS;
  if (!(h > 0)) {
    throw new RangeError(`log-SNR must increase along the timesteps, but λ(${s}) = ${lambdaS} ≥ λ(${t}) = ${lambdaT}; pass timesteps noisiest first`);
  }
  return { alphaS, sigmaS, lambdaS, alphaT, sigmaT, lambdaT, h, clean };
}

/** 1/k! for small k. */
function invFactorial(k: number): number {
  let f = 1;
  for (let j = 2; j <= k; j++) f *= j;
  return 1 / f;
}

/**
 * φ_k(z) = Σ_{j≥0} z^j/(j+k)! (φ_0 = e^z, φ_1 = (e^z − 1)/z, …), accurate for small |z| (series)
 * and with the limit φ_k(−∞) = 0 for k ≥ 1.
 */
export function phi(k: number, z: number): number {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`phi: order k must be a non-negative integer, got ${k}`);
  if (k === 0) return Math.exp(z);
  if (z === -Infinity) return 0;
  if (Math.abs(z) < 0.5) {
    let term = invFactorial(k);
    let sum = term;
    for (let j = 1; j < 40; j++) {
      term *= z / (j + k);
      sum += term;
      if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
    }
    return sum;
  }
  // Recurrence φ_{j+1}(z) = (φ_j(z) − 1/j!)/z from φ_1 = expm1(z)/z (mild cancellation for |z| ≥ 0.5).
  let p = Math.expm1(z) / z;
  for (let j = 1; j < k; j++) p = (p - invFactorial(j)) / z;
  return p;
}

/**
 * σ_t·(e^h − 1), the first-order noise-prediction coefficient, with its finite limit α_t·σ_s/α_s
 * at the clean end point (σ_t·e^h = α_t·σ_s/α_s exactly, since e^h = (α_t/σ_t)·(σ_s/α_s)).
 */
export function noiseStepCoefficient(g: LambdaStep): number {
  return g.clean ? (g.alphaT * g.sigmaS) / g.alphaS : g.sigmaT * Math.expm1(g.h);
}

/** 1 − e^{−h} (= h·φ_1(−h)), the first-order data-prediction coefficient; 1 at the clean end point. */
export function dataStepCoefficient(g: LambdaStep): number {
  return -Math.expm1(-g.h);
}

/**
 * The widest log-SNR range, λ_t − λ_{s2}, over which a third-order multistep step (DPM-Solver++(3M),
 * UniPC-3) fits its quadratic in λ through x̂0 at s0, s1, s2; wider steps are taken at second order.
 *
 * Why: x̂0 = (x − σ·ε̂)/α carries the network's ε̂ error amplified by σ/α = e^{−λ} (×157 at t = 999 of
 * a linear-β schedule, and again by the guidance scale), so over a stencil of width S the oldest
 * point's error is e^S times the newest one's, and the third-order weights give it an O(1)
 * coefficient (the quadratic's extrapolation weights grow with S/h). For S ≳ 2 the added term is
 * no longer a small Taylor correction: on the bundled Fashion-MNIST U-Net at 8 model calls (Karras
 * or exponential σ grid, h ≈ 0.8…2.5) the third-order local error with exact history (MSE) is 3–45× the
 * second-order one at every step, and the run ends ~70× further from the reference (measured in
 * test/solvers-real-model.test.ts). S ≤ 2 means σ/α changes by at most e² ≈ 7.4 across the stencil;
 * grids of ≥ 24 steps over λ ∈ [−5, 4.6] never exceed it, so the measured third order is untouched.
 */
export const MAX_THIRD_ORDER_SPAN = 2;

/** Whether the third-order step over `g` with oldest stencil log-SNR `lambdaOldest` fits {@link MAX_THIRD_ORDER_SPAN}. */
export function thirdOrderStencilFits(g: LambdaStep, lambdaOldest: number): boolean {
  return g.lambdaT - lambdaOldest <= MAX_THIRD_ORDER_SPAN;
}
