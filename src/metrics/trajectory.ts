/**
 * Trajectory error: how far a fast sampler's output lands from a high-accuracy reference run from the
 * SAME initial noise and conditioning (e.g. 1000-step DDIM). With the model fixed, this isolates the
 * solver's discretisation error from the model's own error.
 *
 *   MSE = mean (x − x_ref)²,  PSNR = 10 log₁₀(R² / MSE)
 *
 * with R the peak-to-peak data range, 2 for images in [−1, 1].
 * @packageDocumentation
 */

/** Peak-to-peak range of images scaled to [−1, 1]. */
export const DATA_RANGE = 2;

/** Trajectory error of a batch. */
export interface TrajectoryError {
  /** MSE over every number of every sample. */
  mse: number;
  /** PSNR (dB) of the overall MSE; +Infinity when identical. */
  psnr: number;
  /** MSE of each sample. */
  sampleMse: Float64Array;
  /** Mean over samples of each sample's PSNR (dB; +Infinity if any sample is exact). */
  meanSamplePsnr: number;
}

/** PSNR in dB for a mean squared error and a peak-to-peak range R: 10 log₁₀(R²/MSE). */
export function psnrFromMse(mse: number, dataRange: number = DATA_RANGE): number {
  if (!(mse >= 0)) throw new RangeError(`psnrFromMse: MSE must be ≥ 0, got ${mse}`);
  if (!(dataRange > 0)) throw new RangeError(`psnrFromMse: data range must be > 0, got ${dataRange}`);
  return 10 * Math.log10((dataRange * dataRange) / mse);
}

/**
 * MSE and PSNR of `samples` against `reference`, both `[batch, ...sampleShape]` flat arrays of the
 * same length, for `batch` samples.
 */
export function trajectoryError(
  samples: ArrayLike<number>,
  reference: ArrayLike<number>,
  batch: number,
  dataRange: number = DATA_RANGE,
): TrajectoryError {
  if (samples.length !== reference.length) {
    throw new RangeError(
      `trajectoryError: samples (${samples.length} numbers) and reference (${reference.length}) differ in size; ` +
        'compare runs from the same noise and conditioning',
    );
  }
  if (!Number.isInteger(batch) || batch < 1 || samples.length % batch !== 0 || samples.length === 0) {
    throw new RangeError(`trajectoryError: ${samples.length} numbers do not split into ${batch} samples; pass the batch size`);
  }
  const size = samples.length / batch;
  const sampleMse = new Float64Array(batch);
  let total = 0;
  let psnrSum = 0;
  for (let b = 0; b < batch; b++) {
    let s = 0;
    for (let i = b * size; i < (b + 1) * size; i++) {
      const d = samples[i]! - reference[i]!;
      s += d * d;
    }
    if (!Number.isFinite(s)) throw new RangeError(`trajectoryError: sample ${b} has non-finite values; the sampler diverged`);
    total += s;
    sampleMse[b] = s / size;
    psnrSum += psnrFromMse(s / size, dataRange);
  }
  const mse = total / samples.length;
  return { mse, psnr: psnrFromMse(mse, dataRange), sampleMse, meanSamplePsnr: psnrSum / batch };
}
