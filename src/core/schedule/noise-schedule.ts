/**
 * The noise-schedule interface shared by every solver.
 *
 * VP diffusion: x_t = α_t·x0 + σ_t·ε with α_t² + σ_t² = 1 and log-SNR λ_t = log(α_t/σ_t).
 * Time `t` is the model's own time: 0…999 (fractional allowed) for discrete schedules, (0, 1] for
 * continuous ones. The sampler hands the model exactly these times (continuous schedules may scale
 * them, see {@link NoiseSchedule.modelTime}).
 *
 * The clean end point: discrete schedules accept `t = -1` as "x0 itself" (α = 1, σ = 0, λ = +∞),
 * which is diffusers' `set_alpha_to_one` / `final_sigmas_type="zero"` terminal. Solvers must treat
 * σ = 0 explicitly (no division by σ at the last step).
 * @packageDocumentation
 */

/** Model time of the clean terminal point of a discrete schedule (α = 1, σ = 0). */
export const CLEAN_TIME = -1;

/** A variance-preserving noise schedule: α_t, σ_t, λ_t and the inverse λ → t, all in float64. */
export interface NoiseSchedule {
  /** `discrete` (trained on integer timesteps) or `continuous` (ScoreSDE-style VP SDE). */
  readonly kind: 'discrete' | 'continuous';
  /** Largest model time (999 for a 1000-step discrete schedule, 1 for continuous). */
  readonly tMax: number;
  /** Smallest model time the network was trained on (0 discrete, ε e.g. 1e-3 continuous). */
  readonly tMin: number;
  /**
   * Whether {@link CLEAN_TIME} is a time of this schedule (σ = 0). Discrete schedules always have it;
   * a continuous one only when it says so (the EDM schedule: diffusers' `final_sigmas_type="zero"`).
   */
  readonly cleanEnd?: boolean;
  /** Number of training timesteps (discrete only). */
  readonly numTrainTimesteps?: number;
  /** α_t = √ᾱ_t. */
  alpha(t: number): number;
  /** σ_t = √(1−ᾱ_t). */
  sigma(t: number): number;
  /** λ_t = log(α_t/σ_t); +∞ at the clean end point. */
  lambda(t: number): number;
  /** The time with log-SNR `lambda` (inverse of {@link NoiseSchedule.lambda}, monotone decreasing). */
  timeOfLambda(lambda: number): number;
  /** The value the network receives as its timestep input for schedule time `t`. */
  modelTime(t: number): number;
}

/** Whether the schedule accepts {@link CLEAN_TIME} (σ = 0) as a time: every discrete one, and continuous ones with `cleanEnd`. */
export function hasCleanEnd(schedule: NoiseSchedule): boolean {
  return schedule.kind === 'discrete' || schedule.cleanEnd === true;
}

/** σ_t/α_t: the "VE sigma" k-diffusion and diffusers' Euler-family samplers work in. */
export function veSigma(schedule: NoiseSchedule, t: number): number {
  const a = schedule.alpha(t);
  return schedule.sigma(t) / a;
}

/** The time whose VE sigma σ/α equals `sigma` (0 → clean end point for discrete schedules). */
export function timeOfVeSigma(schedule: NoiseSchedule, sigma: number): number {
  return schedule.timeOfLambda(-Math.log(sigma));
}
