/**
 * Test utilities for solver accuracy on the closed-form Gaussian model: build grids, run a solver
 * from a seeded start, compare with the exact probability-flow ODE end point, fit convergence orders.
 *
 * Typical use:
 *   const setup = { schedule: continuousVpSchedule() };
 *   const { order, errors } = await measureOrder(ddimSpec.create(), (m) => logSnrGrid(setup.schedule, m), [8, 16, 32], setup);
 *
 * Everything runs in float64 so that errors down to ~1e-12 are meaningful.
 * @packageDocumentation
 */
import { gaussianModel, type GaussianModel } from '../../src/core/reference-models.js';
import { createSolverContext, type CountingSolverContext, type SolverContextOptions } from '../../src/core/solver-context.js';
import { gaussianBatch } from '../../src/core/rng.js';
import { CLEAN_TIME, timeOfVeSigma, veSigma, type NoiseSchedule } from '../../src/core/schedule/noise-schedule.js';
import type { Solver } from '../../src/core/solvers/types.js';
import type { NumArray } from '../../src/core/tensor.js';

/** The Gaussian test problem: data N(mean, std²) per coordinate, `dim` coordinates, `batch` samples. */
export interface GaussianSetup {
  schedule: NoiseSchedule;
  /** Data mean (default 0.5). */
  mean?: number;
  /** Data standard deviation (default 0.5). */
  std?: number;
  /** Coordinates per sample (default 4). */
  dim?: number;
  /** Samples (default 4). */
  batch?: number;
  /** Seed of the start state and of the solver's noise (default 1). */
  seed?: number;
  /** Extra context options (clipSample, thresholding, onStep, signal). */
  context?: Partial<Omit<SolverContextOptions, 'model' | 'schedule' | 'batch' | 'seed' | 'precision'>>;
}

/** What one run produced. */
export interface GaussianRun {
  /** The solver's end state. */
  x: NumArray;
  /** The start state at `timesteps[0]`. */
  xStart: NumArray;
  /** The exact ODE solution from `xStart` at the terminal time. */
  exact: NumArray;
  /** Root-mean-square difference between `x` and `exact`. */
  error: number;
  /** Model calls made. */
  calls: number;
  ctx: CountingSolverContext;
  model: GaussianModel;
}

/**
 * A discrete-schedule grid ending at the clean point: log-SNR-uniform from t = 999 to t = 0
 * (steps − 1 intervals), then t = 0 → CLEAN_TIME. (A time-uniform grid puts h ≈ 3 into the step to
 * t = 0, where every solver, DDIM included, is far from its asymptotic regime.)
 */
export function cleanLogSnrGrid(schedule: NoiseSchedule, steps: number): number[] {
  return [...logSnrGrid(schedule, steps - 1, 999, 0), CLEAN_TIME];
}

/** Times with log-SNR evenly spaced from `tStart` to `tEnd` (DPM-Solver's logSNR grid). */
export function logSnrGrid(schedule: NoiseSchedule, steps: number, tStart = schedule.tMax, tEnd = schedule.tMin): number[] {
  const l0 = schedule.lambda(tStart);
  const l1 = schedule.lambda(tEnd);
  const out: number[] = [];
  for (let i = 0; i <= steps; i++) out.push(schedule.timeOfLambda(l0 + ((l1 - l0) * i) / steps));
  out[0] = tStart;
  out[steps] = tEnd;
  return out;
}

/** Times evenly spaced from `tStart` to `tEnd`. */
export function timeUniformGrid(schedule: NoiseSchedule, steps: number, tStart = schedule.tMax, tEnd = schedule.tMin): number[] {
  const out: number[] = [];
  for (let i = 0; i <= steps; i++) out.push(tStart + ((tEnd - tStart) * i) / steps);
  out[steps] = tEnd;
  return out;
}

/**
 * A discrete-schedule grid: `steps` integer times evenly spaced from `numTrainTimesteps − 1` down to
 * 0 (rounded), then the clean end point `CLEAN_TIME` — `steps` intervals in all.
 */
export function discreteGrid(numTrainTimesteps: number, steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(steps === 1 ? numTrainTimesteps - 1 : Math.round(((numTrainTimesteps - 1) * (steps - 1 - i)) / (steps - 1)));
  out.push(CLEAN_TIME);
  return out;
}

/**
 * Run `solver` on the Gaussian model over `timesteps`, starting from a sample of the exact marginal
 * at `timesteps[0]` (x = α·μ + √(α²s² + σ²)·z with seeded z), and compare with the exact ODE end point.
 */
export async function runOnGaussian(solver: Solver, timesteps: readonly number[], setup: GaussianSetup): Promise<GaussianRun> {
  const { schedule } = setup;
  const mean = setup.mean ?? 0.5;
  const std = setup.std ?? 0.5;
  const dim = setup.dim ?? 4;
  const batch = setup.batch ?? 4;
  const seed = setup.seed ?? 1;
  const model = gaussianModel({ schedule, mean, std, sampleShape: [dim] });
  const t0 = timesteps[0]!;
  const a = schedule.alpha(t0);
  const scale = Math.sqrt(a * a * std * std + schedule.sigma(t0) ** 2);
  const z = gaussianBatch(seed, batch, dim, 'float64');
  const xStart = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) xStart[i] = a * mean + scale * z[i]!;
  const ctx = createSolverContext({ ...setup.context, model, schedule, batch, seed, precision: 'float64' });
  const x = await solver(xStart, timesteps, ctx);
  const exact = model.exactOdeSolution(xStart, t0, timesteps[timesteps.length - 1]!);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - exact[i]!) ** 2;
  return { x, xStart, exact, error: Math.sqrt(s / x.length), calls: ctx.calls, ctx, model };
}

/** Least-squares slope of log(y) against log(x). */
export function fitLogLogSlope(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length || xs.length < 2) throw new RangeError('fitLogLogSlope needs two equal-length lists of ≥ 2 points');
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i]! - mx) * (ly[i]! - my);
    den += (lx[i]! - mx) ** 2;
  }
  return num / den;
}

/** Errors at each step count and the measured order: −slope of log(error) vs log(steps). */
export interface OrderMeasurement {
  steps: number[];
  errors: number[];
  order: number;
}

/** Measure a solver's convergence order on the Gaussian model over `stepsList`. */
export async function measureOrder(
  solver: Solver,
  gridFor: (steps: number) => number[],
  stepsList: readonly number[],
  setup: GaussianSetup,
): Promise<OrderMeasurement> {
  const errors: number[] = [];
  for (const m of stepsList) errors.push((await runOnGaussian(solver, gridFor(m), setup)).error);
  return { steps: [...stepsList], errors, order: -fitLogLogSlope(stepsList, errors) };
}

/** Mean and (population) variance of all values of `x`. */
export function moments(x: NumArray): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
  return { mean: m, variance: v / x.length };
}

/**
 * A log-SNR grid with a smooth perturbation, λ = λ₀ + Δλ·(u + 0.1·sin 2πu), M intervals from tMax to
 * tMin: non-uniform steps, so multistep methods show their nominal order (on an exactly uniform
 * log-SNR grid they converge faster than it).
 */
export function smoothLogSnrGrid(schedule: NoiseSchedule, steps: number): number[] {
  const l0 = schedule.lambda(schedule.tMax);
  const l1 = schedule.lambda(schedule.tMin);
  const out: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const u = i / steps;
    out.push(schedule.timeOfLambda(l0 + (l1 - l0) * (u + 0.1 * Math.sin(2 * Math.PI * u))));
  }
  out[0] = schedule.tMax;
  out[steps] = schedule.tMin;
  return out;
}

/**
 * `steps` intervals uniform in ρ = σ/α between tStart and tEnd of `schedule`: where equal-step
 * Adams–Bashforth weights (LMS, PLMS, iPNDM) are exact.
 */
export function rhoUniformGrid(schedule: NoiseSchedule, steps: number, tStart: number, tEnd: number): number[] {
  const r0 = veSigma(schedule, tStart);
  const r1 = veSigma(schedule, tEnd);
  const out = [tStart];
  for (let i = 1; i < steps; i++) out.push(timeOfVeSigma(schedule, r0 + ((r1 - r0) * i) / steps));
  out.push(tEnd);
  return out;
}
