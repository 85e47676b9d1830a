/**
 * The rectified-flow schedule (Liu et al. 2023, "Flow Straight and Fast"; Esser et al. 2024, SD3
 * §2–3; diffusers' `FlowMatchEulerDiscreteScheduler`) on the shared {@link NoiseSchedule} interface,
 * and the σ grids diffusers builds for it.
 *
 * Path: x_σ = (1 − σ)·x0 + σ·ε, σ ∈ [0, 1], so
 *   α(σ) = 1 − σ,   σ(σ) = σ,   λ(σ) = log((1 − σ)/σ),   σ(λ) = 1/(1 + e^λ),
 * and α² + σ² ≠ 1: not VP. Every solver that works in (α, σ, λ) runs on it unchanged; the VE sigma
 * σ/α = σ/(1 − σ) is infinite at the pure-noise end σ = 1 (λ = −∞), where only the solvers that step
 * in (α, σ) or in the flow's own (x, σ) coordinates can start (ddim, euler, heun).
 *
 * Time: the schedule time `t` IS σ (as EDM's time is its σ), on [tMin, 1]; the clean end σ = 0 is
 * {@link CLEAN_TIME}. The network receives diffusers' timestep σ·T (T = `num_train_timesteps`,
 * 1000): a float32 σ times T ≤ 2²⁹ is exact in float64, so the float32 model input equals diffusers'
 * `sigmas * num_train_timesteps` bit for bit. With `modelTimes: 'truncate'` the network gets
 * ⌊σ·T⌋ instead — DPMSolverMultistep / UniPC with `use_flow_sigmas`, whose timesteps are int64.
 *
 * Grids (σ values, noisiest first, without the terminal σ = 0):
 * - {@link flowMatchSigmas}: `FlowMatchEulerDiscreteScheduler.set_timesteps(N)`: t = linspace(σ_max·T,
 *   σ_min·T, N) with σ_max, σ_min the ends of its (shifted, float32) training table, σ = t/T, then the
 *   shift σ' = s·σ/(1 + (s − 1)·σ) — or, with dynamic shifting, the time shift
 *   e^μ/(e^μ + (1/σ − 1)) (`exponential`) or μ/(μ + (1/σ − 1)) (`linear`) — then the `shift_terminal`
 *   stretch 1 − (1 − σ)·(1 − σ_term)/(1 − σ_last), then Karras / exponential / Beta σ between the ends,
 *   rounded to float32.
 * - {@link flowSigmasDpm}: DPMSolverMultistep / UniPC with `use_flow_sigmas`: σ = 1 − linspace(1, 1/T,
 *   N + 1), shifted by `flow_shift`, reversed, the last (σ = 0) dropped: σ_max = shift(1 − 1/T) < 1.
 * @packageDocumentation
 */
import { betaSigmas } from './beta-distribution.js';
import { linspace } from './discrete.js';
import { CLEAN_TIME, type NoiseSchedule } from './noise-schedule.js';

/** How the network's time input is formed from σ: σ·T (`exact`, default) or ⌊σ·T⌋ (`truncate`). */
export type FlowModelTimes = 'exact' | 'truncate';

/** Options of {@link flowSchedule}. */
export interface FlowScheduleOptions {
  /** T, diffusers' `num_train_timesteps` (default 1000): the network's time input is σ·T. */
  numTrainTimesteps?: number;
  /** Smallest σ a grid may visit (default 1/T, the smallest σ of the training table). */
  sigmaMin?: number;
  /** `exact` (default) hands the network σ·T, `truncate` ⌊σ·T⌋ (diffusers' int64 flow-sigma timesteps). */
  modelTimes?: FlowModelTimes;
}

/** A rectified-flow schedule: continuous, time t = σ on [tMin, 1], with the clean end {@link CLEAN_TIME}. */
export interface FlowSchedule extends NoiseSchedule {
  readonly kind: 'continuous';
  readonly cleanEnd: true;
  /** Marks the rectified-flow path α = 1 − σ (see {@link isFlowSchedule}). */
  readonly rectifiedFlow: true;
  /** T: the network's time input is σ·T. */
  readonly numTrainTimesteps: number;
  readonly modelTimes: FlowModelTimes;
}

/** Whether `schedule` is a rectified-flow schedule (α = 1 − σ), whose ODE the Euler family steps in (x, σ). */
export function isFlowSchedule(schedule: NoiseSchedule): schedule is FlowSchedule {
  return (schedule as Partial<FlowSchedule>).rectifiedFlow === true;
}

/** The rectified-flow schedule (see the file comment). */
export function flowSchedule(opts: FlowScheduleOptions = {}): FlowSchedule {
  const n = opts.numTrainTimesteps ?? 1000;
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`flowSchedule: numTrainTimesteps must be an integer ≥ 1, got ${String(n)} (SD3 and FLUX use 1000)`);
  const sigmaMin = opts.sigmaMin ?? 1 / n;
  if (!(Number.isFinite(sigmaMin) && sigmaMin > 0 && sigmaMin < 1)) {
    throw new RangeError(`flowSchedule: sigmaMin must lie in (0, 1), got ${String(sigmaMin)}`);
  }
  const modelTimes = opts.modelTimes ?? 'exact';
  if (modelTimes !== 'exact' && modelTimes !== 'truncate') {
    throw new RangeError(`flowSchedule: modelTimes must be 'exact' or 'truncate', got ${String(modelTimes)}`);
  }
  const check = (t: number): void => {
    if (!(t === CLEAN_TIME || (t >= sigmaMin && t <= 1))) {
      throw new RangeError(`flow time (noise level σ) ${t} is outside the schedule: use σ in [${sigmaMin}, 1], or ${CLEAN_TIME} for σ = 0`);
    }
  };
  return {
    kind: 'continuous',
    cleanEnd: true,
    rectifiedFlow: true,
    numTrainTimesteps: n,
    modelTimes,
    tMax: 1,
    tMin: sigmaMin,
    alpha: (t) => (check(t), t === CLEAN_TIME ? 1 : 1 - t),
    sigma: (t) => (check(t), t === CLEAN_TIME ? 0 : t),
    // λ = log(1 − σ) − log σ: −∞ at σ = 1, +∞ at the clean end.
    lambda: (t) => (check(t), t === CLEAN_TIME ? Infinity : Math.log1p(-t) - Math.log(t)),
    // σ = 1/(1 + e^λ), written so neither tail overflows.
    timeOfLambda: (l) => {
      if (Number.isNaN(l)) throw new RangeError('timeOfLambda: λ is NaN');
      if (l === Infinity) return CLEAN_TIME;
      return l > 0 ? Math.exp(-l) / (1 + Math.exp(-l)) : 1 / (1 + Math.exp(l));
    },
    modelTime: (t) => {
      const m = t === CLEAN_TIME ? 0 : t * n;
      return modelTimes === 'truncate' ? Math.trunc(m) : m;
    },
  };
}

/** The static shift of SD3 (Esser et al. 2024, eq. 23): σ' = s·σ/(1 + (s − 1)·σ). */
export function flowShift(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** How dynamic shifting maps σ with μ: diffusers' `time_shift_type`. */
export type FlowTimeShiftType = 'exponential' | 'linear';

/** The resolution-dependent time shift (FLUX): e^μ/(e^μ + (1/σ − 1)) (`exponential`) or μ/(μ + (1/σ − 1)) (`linear`). */
export function flowTimeShift(sigma: number, mu: number, type: FlowTimeShiftType = 'exponential'): number {
  const m = type === 'exponential' ? Math.exp(mu) : mu;
  return m / (m + (1 / sigma - 1));
}

/** The sequence-length interpolation of dynamic shifting (diffusers' SD3/FLUX pipelines' `calculate_shift`). */
export interface DynamicShiftOptions {
  /** `base_image_seq_len`, default 256. */
  baseSeqLen?: number;
  /** `max_image_seq_len`, default 4096. */
  maxSeqLen?: number;
  /** `base_shift`, default 0.5. */
  baseShift?: number;
  /** `max_shift`, default 1.15. */
  maxShift?: number;
}

/**
 * μ for an image of `seqLen` latent tokens: the line through (baseSeqLen, baseShift) and
 * (maxSeqLen, maxShift), μ = seqLen·m + b with m = (maxShift − baseShift)/(maxSeqLen − baseSeqLen),
 * b = baseShift − m·baseSeqLen (not clamped, as in diffusers).
 */
export function flowDynamicShiftMu(seqLen: number, opts: DynamicShiftOptions = {}): number {
  const b0 = opts.baseSeqLen ?? 256;
  const b1 = opts.maxSeqLen ?? 4096;
  const s0 = opts.baseShift ?? 0.5;
  const s1 = opts.maxShift ?? 1.15;
  if (!(Number.isFinite(seqLen) && seqLen > 0)) {
    throw new RangeError(`dynamic shifting: the image sequence length must be a positive number of latent tokens, got ${String(seqLen)}`);
  }
  if (!(b1 !== b0)) throw new RangeError(`dynamic shifting: base_image_seq_len and max_image_seq_len are both ${b0}: they must differ`);
  const m = (s1 - s0) / (b1 - b0);
  return seqLen * m + (s0 - m * b0);
}

/** Options of {@link flowMatchSigmas}, named after `FlowMatchEulerDiscreteScheduler`'s config fields. */
export interface FlowMatchSigmaOptions {
  /** `num_train_timesteps`, default 1000. */
  numTrainTimesteps?: number;
  /** `shift`, default 1 (SD3: 3). Ignored under dynamic shifting. */
  shift?: number;
  /** `use_dynamic_shifting`: the time shift with {@link FlowMatchSigmaOptions.mu} instead of `shift` (default: whether `mu` is given). */
  dynamic?: boolean;
  /** μ of dynamic shifting (see {@link flowDynamicShiftMu}); required when `dynamic` is true. */
  mu?: number;
  /** `time_shift_type` of dynamic shifting, default `exponential`. */
  timeShiftType?: FlowTimeShiftType;
  /** `shift_terminal`: stretch the shifted σ so the last one equals it. */
  shiftTerminal?: number;
  /** `use_karras_sigmas` / `use_exponential_sigmas` / `use_beta_sigmas`: respace between the ends. Default `none`. */
  sigmaSpacing?: 'none' | 'karras' | 'exponential' | 'beta';
  /** `float32` (default, diffusers' tensors) or `float64` (the same formulas unrounded). */
  dtype?: 'float32' | 'float64';
}

/**
 * The N noise levels σ_0 > … > σ_{N−1} of `FlowMatchEulerDiscreteScheduler.set_timesteps(N)` (the
 * terminal σ = 0 not included); see the file comment for the formulas. diffusers' timesteps are
 * these σ times T (in float32).
 */
export function flowMatchSigmas(steps: number, opts: FlowMatchSigmaOptions = {}): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`flowMatchSigmas: steps must be an integer ≥ 1, got ${String(steps)}`);
  const n = opts.numTrainTimesteps ?? 1000;
  const shift = opts.shift ?? 1;
  const dynamic = opts.dynamic ?? opts.mu !== undefined;
  if (dynamic && opts.mu === undefined) {
    throw new RangeError(
      'flow_match grid: dynamic shifting (use_dynamic_shifting) needs μ, which depends on the image size: pass flow.mu = ' +
        'flowDynamicShiftMu(imageSeqLen) (the latent tokens), or sampleOptions(N, { imageSeqLen }) of the scheduler config',
    );
  }
  const f32 = (opts.dtype ?? 'float32') === 'float32' ? Math.fround : (v: number) => v;
  if (!(shift > 0)) throw new RangeError(`flowMatchSigmas: shift must be > 0, got ${shift} (SD3 uses 3)`);
  if (dynamic && !Number.isFinite(opts.mu)) throw new RangeError(`flowMatchSigmas: mu must be a finite number, got ${String(opts.mu)}`);
  // The ends of __init__'s float32 training table σ_i = i/T (i = T … 1), shifted unless dynamic.
  const tableShift = (s: number): number => {
    const f = Math.fround;
    const sh = f(shift);
    return f(f(sh * s) / f(1 + f(f(shift - 1) * s)));
  };
  const lo = Math.fround(1 / n);
  const sigmaMax = dynamic ? 1 : tableShift(1);
  const sigmaMin = dynamic ? lo : tableShift(lo);
  let sigmas = linspace(sigmaMax * n, sigmaMin * n, steps).map((t) => t / n);
  sigmas = dynamic ? sigmas.map((s) => flowTimeShift(s, opts.mu!, opts.timeShiftType ?? 'exponential')) : sigmas.map((s) => flowShift(s, shift));
  const term = opts.shiftTerminal;
  if (term !== undefined) {
    if (!(term > 0 && term < 1)) throw new RangeError(`flowMatchSigmas: shiftTerminal must lie in (0, 1), got ${term}`);
    const scale = (1 - sigmas[sigmas.length - 1]!) / (1 - term);
    sigmas = sigmas.map((s) => 1 - (1 - s) / scale);
  }
  const spacing = opts.sigmaSpacing ?? 'none';
  if (spacing !== 'none') {
    const hi = sigmas[0]!;
    const low = sigmas[sigmas.length - 1]!;
    if (spacing === 'karras') {
      // Karras et al. 2022 eq. 5 with ρ = 7 between the ends.
      const a = hi ** (1 / 7);
      const b = low ** (1 / 7);
      sigmas = linspace(0, 1, steps).map((r) => (a + r * (b - a)) ** 7);
    } else if (spacing === 'exponential') {
      sigmas = linspace(Math.log(hi), Math.log(low), steps).map(Math.exp);
    } else if (spacing === 'beta') {
      sigmas = betaSigmas(low, hi, steps);
    } else {
      throw new RangeError(`flowMatchSigmas: sigmaSpacing must be none, karras, exponential or beta, got ${String(spacing)}`);
    }
  }
  return sigmas.map(f32);
}

/**
 * The N noise levels of DPMSolverMultistep / UniPC with `use_flow_sigmas` (terminal not included):
 * σ = reverse(flowShift(1 − linspace(1, 1/T, N + 1)))[:N], rounded to float32.
 */
export function flowSigmasDpm(steps: number, opts: { numTrainTimesteps?: number; flowShift?: number; dtype?: 'float32' | 'float64' } = {}): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`flowSigmasDpm: steps must be an integer ≥ 1, got ${String(steps)}`);
  const n = opts.numTrainTimesteps ?? 1000;
  const shift = opts.flowShift ?? 1;
  if (!(shift > 0)) throw new RangeError(`flowSigmasDpm: flow_shift must be > 0, got ${shift}`);
  const f32 = (opts.dtype ?? 'float32') === 'float32' ? Math.fround : (v: number) => v;
  const raw = linspace(1, 1 / n, steps + 1).map((a) => flowShift(1 - a, shift));
  return raw.reverse().slice(0, steps).map(f32);
}
