/**
 * FRDiff score mixing (So et al. 2024, "FRDiff", §4.2).
 *
 * Reduced NFE keeps the low-frequency structure, feature reuse (FR) the high-frequency detail, so
 * the two are mixed over time. With r = i/N the progress of the sampling loop (0 = noisiest),
 *   λ(r) = clip((T·(r − b) + 2)/4, 0, 1)        (a hard sigmoid centred at b, slope T/4)
 * and at a non-keyframe call
 *   λ = 0  →  ε = ε_key                    (no network call: a coarser step)
 *   λ > 0  →  ε = λ·ε_FR(x_i, t_i) + (1 − λ)·ε_key
 * where ε_key is the output of the latest keyframe (full) call and ε_FR the cheap feature-reuse call.
 * Mixing is linear, so it commutes with classifier-free guidance.
 * @packageDocumentation
 */

/** Parameters of the hard-sigmoid mixing weight. */
export interface ScoreMixing {
  /** Temperature T (slope ×4). Default 30. */
  temperature: number;
  /**
   * Centre b of the switch on r = i/N, accepted in [−1, 2]: λ = 0 for r ≤ b − 2/T and 1 for r ≥ b + 2/T,
   * so b < −2/T reuses features at every non-keyframe call and b > 1 + 2/T skips them all. Default 0.5.
   */
  bias: number;
}

/** The paper's defaults: T = 30, b = 0.5. */
export const DEFAULT_SCORE_MIXING: Readonly<ScoreMixing> = Object.freeze({ temperature: 30, bias: 0.5 });

/** λ(r) = clip((T·(r − b) + 2)/4, 0, 1). */
export function mixingWeight(r: number, mixing: ScoreMixing = DEFAULT_SCORE_MIXING): number {
  const v = (mixing.temperature * (r - mixing.bias) + 2) / 4;
  return Math.min(1, Math.max(0, v));
}

/** Validate mixing parameters, naming the fix. */
export function validateScoreMixing(m: ScoreMixing): void {
  if (!Number.isFinite(m.temperature) || m.temperature <= 0) {
    throw new RangeError(`score mixing temperature must be a positive number, got ${m.temperature}`);
  }
  if (!Number.isFinite(m.bias) || m.bias < -1 || m.bias > 2) {
    throw new RangeError(`score mixing bias must lie in [-1, 2] (0.5 centres the switch mid-run), got ${m.bias}`);
  }
}
