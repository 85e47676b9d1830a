/**
 * The EDM noise schedule (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
 * Generative Models", Table 1 "EDM" column; diffusers' `EDMEulerScheduler`) on the VP core.
 *
 * EDM is a VE process x_VE = x0 + σ·ε with σ ∈ [σ_min, σ_max] (0.002, 80). Its VP twin divides by
 * √(1 + σ²): x = x_VE/√(1 + σ²) = α·x0 + σ_VP·ε with
 *   α = 1/√(1 + σ²),   σ_VP = σ/√(1 + σ²),   λ = log(α/σ_VP) = −log σ,
 * so every VP solver runs on it unchanged and its VE-sigma σ_VP/α is the EDM σ itself.
 *
 * Time: the schedule time `t` is the EDM σ (EDM's σ(t) = t), on [σ_min, σ_max]; the clean end point
 * is {@link CLEAN_TIME} (σ = 0, diffusers' `final_sigmas_type="zero"`). The network receives EDM's
 * c_noise = ¼·ln σ as its time input. The network's input and output scalings (c_in, c_skip, c_out,
 * which involve σ_data) are a model conversion: see `edm-preconditioning.ts`.
 * @packageDocumentation
 */
import { CLEAN_TIME, type NoiseSchedule } from './noise-schedule.js';

/** Options of {@link edmSchedule} (diffusers' EDMEulerScheduler config names in brackets). */
export interface EdmScheduleOptions {
  /** Smallest noise level σ_min (`sigma_min`, default 0.002). */
  sigmaMin?: number;
  /** Largest noise level σ_max (`sigma_max`, default 80). */
  sigmaMax?: number;
  /** Standard deviation of the data σ_data (`sigma_data`, default 0.5), used by the preconditioning. */
  sigmaData?: number;
}

/** An EDM schedule: a continuous {@link NoiseSchedule} whose time is σ, with its σ_data. */
export interface EdmSchedule extends NoiseSchedule {
  readonly kind: 'continuous';
  readonly cleanEnd: true;
  /** σ_data of the preconditioning (Karras et al. 2022, §5). */
  readonly sigmaData: number;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
}

/** The EDM schedule on [σ_min, σ_max] (see the file header). */
export function edmSchedule(opts: EdmScheduleOptions = {}): EdmSchedule {
  const sigmaMin = opts.sigmaMin ?? 0.002;
  const sigmaMax = opts.sigmaMax ?? 80;
  const sigmaData = opts.sigmaData ?? 0.5;
  if (!(Number.isFinite(sigmaMin) && Number.isFinite(sigmaMax) && sigmaMin > 0 && sigmaMax > sigmaMin)) {
    throw new RangeError(`edmSchedule: need 0 < sigmaMin < sigmaMax, got ${sigmaMin}, ${sigmaMax} (EDM uses 0.002 and 80)`);
  }
  if (!(Number.isFinite(sigmaData) && sigmaData > 0)) throw new RangeError(`edmSchedule: sigmaData must be > 0, got ${sigmaData} (EDM uses 0.5)`);
  const check = (t: number): void => {
    if (!(t === CLEAN_TIME || (t >= sigmaMin * (1 - 1e-12) && t <= sigmaMax * (1 + 1e-12)))) {
      throw new RangeError(`EDM time (noise level σ) ${t} is outside the schedule: use σ in [${sigmaMin}, ${sigmaMax}], or ${CLEAN_TIME} for σ = 0`);
    }
  };
  return {
    kind: 'continuous',
    cleanEnd: true,
    tMax: sigmaMax,
    tMin: sigmaMin,
    sigmaData,
    sigmaMin,
    sigmaMax,
    alpha: (t) => (check(t), t === CLEAN_TIME ? 1 : 1 / Math.hypot(1, t)),
    sigma: (t) => (check(t), t === CLEAN_TIME ? 0 : t / Math.hypot(1, t)),
    lambda: (t) => (check(t), t === CLEAN_TIME ? Infinity : -Math.log(t)),
    timeOfLambda: (l) => (l === Infinity ? CLEAN_TIME : Math.exp(-l)),
    modelTime: (t) => (t === CLEAN_TIME ? -Infinity : 0.25 * Math.log(t)),
  };
}
