/**
 * Discrete VP schedules built from betas, as diffusers builds them (but in float64).
 *
 * ᾱ_n = Π_{i≤n} (1 − β_i), n = 0…N−1. Fractional times interpolate log(σ/α) linearly between
 * integer steps by default — the convention of diffusers' `_sigma_to_t`, so Karras/exponential grids
 * hand the network the same fractional timesteps diffusers does; λ is then piecewise linear in t.
 *
 * Two diffusers choices are options of the schedule ({@link FractionalTimeOptions}), because they
 * change what every solver sees at a fractional time:
 * - `sigmaInterpolation: 'linear'`: σ/α itself is interpolated linearly between integer steps — the
 *   `np.interp(timesteps, arange, sigmas)` of diffusers' Euler, Euler ancestral, Heun and LMS
 *   schedulers (`interpolation_type="linear"`). On the SD 1.5 schedule the two differ in σ/α by
 *   8.5·10⁻⁶ at t = 799.2 (relative 1.7·10⁻⁶) and by 5.3·10⁻⁴ at t = 0.5 (1.5 %).
 * - `roundModelTimes: true`: the network is handed round-half-even(t) while the solver steps at t —
 *   diffusers' DPMSolverMultistep, DPMSolverSinglestep, UniPC and DEIS with Karras / exponential /
 *   beta sigmas (`timesteps = _sigma_to_t(σ).round()`).
 * @packageDocumentation
 */
import { CLEAN_TIME, type NoiseSchedule } from './noise-schedule.js';

/** The beta schedules diffusers names in `beta_schedule`. */
export type BetaScheduleName = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | 'trained_betas';

/** Options of {@link discreteSchedule}, named as in a diffusers `scheduler_config.json`. */
export interface DiscreteScheduleOptions {
  /** Default 1000. */
  numTrainTimesteps?: number;
  /** Default 0.0001. */
  betaStart?: number;
  /** Default 0.02. */
  betaEnd?: number;
  /** Default `linear`. */
  betaSchedule?: BetaScheduleName;
  /** Required for `trained_betas`. */
  trainedBetas?: readonly number[];
  /**
   * Rescale to zero terminal SNR (Lin et al. 2023, Alg. 1). ᾱ at the last step is then 0; like
   * diffusers' Euler scheduler we store 2⁻²⁴ there so σ/α stays finite. Use with v-prediction.
   */
  rescaleBetasZeroSnr?: boolean;
}

/** How a discrete schedule treats fractional times (see the file comment). */
export interface FractionalTimeOptions {
  /** Interpolate `log` σ/α (default; rediffuse, diffusers' `_sigma_to_t`) or `linear` σ/α (diffusers' Euler family). */
  sigmaInterpolation?: 'log' | 'linear';
  /** Hand the network round-half-even(t) instead of t (diffusers' DPM-Solver/UniPC/DEIS Karras grids). Default false. */
  roundModelTimes?: boolean;
}

/** Evenly spaced values from `a` to `b` inclusive (numpy's `linspace`: `a + i·step`). */
export function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(a + i * step);
  out[n - 1] = b;
  return out;
}

/** β_n for a named schedule, in float64. */
export function makeBetas(opts: DiscreteScheduleOptions = {}): Float64Array {
  const n = opts.numTrainTimesteps ?? 1000;
  const b0 = opts.betaStart ?? 0.0001;
  const b1 = opts.betaEnd ?? 0.02;
  const name = opts.betaSchedule ?? 'linear';
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`numTrainTimesteps must be an integer ≥ 2, got ${n}`);
  switch (name) {
    case 'linear':
      return Float64Array.from(linspace(b0, b1, n));
    case 'scaled_linear':
      return Float64Array.from(linspace(Math.sqrt(b0), Math.sqrt(b1), n), (v) => v * v);
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t + s)/(1 + s)·π/2), s = 0.008, β capped at 0.999.
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
      return out;
    }
    case 'trained_betas': {
      if (!opts.trainedBetas) throw new Error('betaSchedule "trained_betas" needs trainedBetas (the list of betas)');
      if (opts.trainedBetas.length !== n && opts.numTrainTimesteps !== undefined) {
        throw new RangeError(`trainedBetas has ${opts.trainedBetas.length} values but numTrainTimesteps is ${n}`);
      }
      return Float64Array.from(opts.trainedBetas);
    }
    default:
      throw new Error(`unknown beta schedule "${String(name)}": use linear, scaled_linear, squaredcos_cap_v2 or trained_betas`);
  }
}

/**
 * Zero-terminal-SNR rescaling (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps
 * are Flawed", Alg. 1): shift and scale √ᾱ so the last is 0 and the first unchanged.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const sq = new Float64Array(n);
  let cp = 1;
  for (let i = 0; i < n; i++) {
    cp *= 1 - betas[i]!;
    sq[i] = Math.sqrt(cp);
  }
  const first = sq[0]!;
  const last = sq[n - 1]!;
  for (let i = 0; i < n; i++) sq[i] = ((sq[i]! - last) * first) / (first - last);
  const out = new Float64Array(n);
  let prev = 1;
  for (let i = 0; i < n; i++) {
    const ab = sq[i]! * sq[i]!;
    out[i] = 1 - ab / prev;
    prev = ab;
  }
  return out;
}

/** A discrete VP schedule with its tables. */
export interface DiscreteSchedule extends NoiseSchedule {
  readonly kind: 'discrete';
  readonly numTrainTimesteps: number;
  /** β_n. */
  readonly betas: Float64Array;
  /** ᾱ_n. */
  readonly alphasCumprod: Float64Array;
}

/** Build a discrete VP schedule (see {@link DiscreteScheduleOptions}). */
export function discreteSchedule(opts: DiscreteScheduleOptions & FractionalTimeOptions = {}): DiscreteSchedule {
  let betas = makeBetas(opts);
  if (opts.rescaleBetasZeroSnr) betas = rescaleZeroTerminalSnr(betas);
  return scheduleFromBetas(betas, opts);
}

/** numpy's `round`: nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** A discrete VP schedule from explicit betas. */
export function scheduleFromBetas(betas: Float64Array, fractional: FractionalTimeOptions = {}): DiscreteSchedule {
  const linearSigma = fractional.sigmaInterpolation === 'linear';
  if (fractional.sigmaInterpolation !== undefined && !linearSigma && fractional.sigmaInterpolation !== 'log') {
    throw new RangeError(`sigmaInterpolation must be 'log' or 'linear', got ${String(fractional.sigmaInterpolation)}`);
  }
  const n = betas.length;
  const alphasCumprod = new Float64Array(n);
  let cp = 1;
  for (let i = 0; i < n; i++) {
    const b = betas[i]!;
    if (!(b >= 0 && b <= 1)) throw new RangeError(`beta[${i}] = ${b} is outside [0, 1]`);
    cp *= 1 - b;
    alphasCumprod[i] = cp;
  }
  if (alphasCumprod[n - 1] === 0) alphasCumprod[n - 1] = 2 ** -24;
  // λ_n = ½·log(ᾱ/(1−ᾱ)), decreasing in n.
  const lambdas = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ab = alphasCumprod[i]!;
    lambdas[i] = 0.5 * (Math.log(ab) - Math.log1p(-ab));
  }
  const tMax = n - 1;

  const checkTime = (t: number): void => {
    if (!(t === CLEAN_TIME || (t >= 0 && t <= tMax))) {
      throw new RangeError(`time ${t} is outside the schedule: use 0…${tMax}, or ${CLEAN_TIME} for the clean end point`);
    }
  };
  const lambda = (t: number): number => {
    checkTime(t);
    if (t === CLEAN_TIME) return Infinity;
    const lo = Math.floor(t);
    if (lo === t) return lambdas[lo]!;
    const w = t - lo;
    // λ = −log(σ/α): linear in λ is linear in log σ/α; 'linear' interpolates σ/α = e^{−λ} itself.
    if (linearSigma) return -Math.log((1 - w) * Math.exp(-lambdas[lo]!) + w * Math.exp(-lambdas[lo + 1]!));
    return (1 - w) * lambdas[lo]! + w * lambdas[lo + 1]!;
  };
  // α = sigmoid(2λ)^{1/2}, σ = sigmoid(−2λ)^{1/2}, written to stay accurate for large |λ|.
  const alpha = (t: number): number => {
    const l = lambda(t);
    if (l === Infinity) return 1;
    return Math.exp(-0.5 * Math.log1p(Math.exp(-2 * l)));
  };
  const sigma = (t: number): number => {
    const l = lambda(t);
    if (l === Infinity) return 0;
    return Math.exp(-0.5 * Math.log1p(Math.exp(2 * l)));
  };
  const timeOfLambda = (l: number): number => {
    if (l === Infinity) return CLEAN_TIME;
    if (Number.isNaN(l)) throw new RangeError('timeOfLambda: λ is NaN');
    const eps = 1e-12 * Math.max(1, Math.abs(l));
    if (l > lambdas[0]! + eps || l < lambdas[tMax]! - eps) {
      throw new RangeError(`log-SNR ${l} is outside the schedule's range [${lambdas[tMax]}, ${lambdas[0]}] (or +∞ for the clean end point)`);
    }
    if (l >= lambdas[0]!) return 0;
    if (l <= lambdas[tMax]!) return tMax;
    let lo = 0;
    let hi = tMax;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (lambdas[mid]! >= l) lo = mid;
      else hi = mid;
    }
    if (linearSigma) {
      const a = Math.exp(-lambdas[lo]!);
      return lo + (Math.exp(-l) - a) / (Math.exp(-lambdas[hi]!) - a);
    }
    const w = (lambdas[lo]! - l) / (lambdas[lo]! - lambdas[hi]!);
    return lo + w;
  };
  return {
    kind: 'discrete',
    tMax,
    tMin: 0,
    numTrainTimesteps: n,
    betas,
    alphasCumprod,
    alpha,
    sigma,
    lambda,
    timeOfLambda,
    modelTime: fractional.roundModelTimes ? (t) => (t === CLEAN_TIME ? t : roundHalfEven(t)) : (t) => t,
  };
}
