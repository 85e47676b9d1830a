/**
 * Trajectory error: how far a fast sampler's output lands from a high-accuracy reference run from the
 * SAME initial noise and conditioning (e.g. 1000-step DDIM). With the model fixed, this isolates the
 * solver's discretisation error from the model's own error.
 *
 *   MSE = mean (x − x_ref)²,  PSNR = 10 log₁₀(R² / MSE)
 *
 * with R the peak-to-peak data range, 2 for images in [−1, 1].
 *
 * The error is only defined between runs that start at the same time: both runs solve the probability-
 * flow ODE from the same x_T, and x_T at t = 900 is not the same state as x_T at t = 999, so runs from
 * different start times differ by the start-time mismatch, not only by discretisation error (Lin et
 * al. 2023, §3.3: `leading` grids start at different times for different step counts). Pass the two
 * start times and a mismatch is refused ({@link TrajectoryStartError}); {@link alignReferenceGrid}
 * moves a high-accuracy reference grid to start where a sample's grid starts.
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

/** The start times (time of the shared initial noise x_T, the grid's first entry) of the two compared runs. */
export interface TrajectoryStarts {
  /** First time of the sample's grid. */
  sample: number;
  /** First time of the reference's grid. */
  reference: number;
}

/** Largest start-time difference treated as the same start (float rounding of computed grids). */
export const START_TOLERANCE = 1e-6;

/** Trajectory error asked for between runs that start at different times. */
export class TrajectoryStartError extends RangeError {
  constructor(readonly starts: TrajectoryStarts) {
    super(
      `trajectoryError: the sample's grid starts at t = ${starts.sample} but the reference's at t = ${starts.reference}; ` +
        'trajectory error is only defined between runs from the same start time: run the reference on a grid that starts ' +
        'where the sample starts (alignReferenceGrid), or give both the same spacing that starts at t = T − 1 (e.g. trailing)',
    );
    this.name = 'TrajectoryStartError';
  }
}

/** Throw a {@link TrajectoryStartError} unless the two runs start at the same time (within {@link START_TOLERANCE}). */
export function checkSameStart(starts: TrajectoryStarts): void {
  if (!Number.isFinite(starts.sample) || !Number.isFinite(starts.reference)) {
    throw new RangeError(`trajectoryError: start times must be finite numbers, got sample ${starts.sample}, reference ${starts.reference}`);
  }
  if (Math.abs(starts.sample - starts.reference) > START_TOLERANCE) throw new TrajectoryStartError(starts);
}

/**
 * The reference grid moved to start at `start`: given a reference grid `[t_0, …, t_{S−1}, terminal]`
 * (a solver plan's `timesteps`), the S non-terminal times mapped affinely so that t_{S−1} stays and
 * t_0 becomes `start`:
 *
 *   t'_i = t_{S−1} + (t_i − t_{S−1}) · (start − t_{S−1}) / (t_0 − t_{S−1})
 *
 * The shape of the spacing (and the step count) is kept; the result is the explicit `timesteps` list
 * of a grid whose terminal is appended by the solver (pass it as `timesteps: { timesteps: list }`).
 * Returns the S times unchanged when the grid already starts at `start`.
 */
export function alignReferenceGrid(referenceTimesteps: readonly number[], start: number): number[] {
  const times = referenceTimesteps.slice(0, -1);
  if (times.length < 2) throw new RangeError(`alignReferenceGrid: the reference grid needs at least 2 intervals, got ${times.length}`);
  const t0 = times[0]!;
  const last = times[times.length - 1]!;
  if (Math.abs(t0 - start) <= START_TOLERANCE) return times;
  if (!(start > last)) {
    throw new RangeError(
      `alignReferenceGrid: the sample starts at t = ${start}, at or below the reference grid's last time ${last}; use a sample grid that starts noisier`,
    );
  }
  const scale = (start - last) / (t0 - last);
  return times.map((t, i) => (i === 0 ? start : i === times.length - 1 ? last : last + (t - last) * scale));
}

/**
 * MSE and PSNR of `samples` against `reference`, both `[batch, ...sampleShape]` flat arrays of the
 * same length, for `batch` samples. With `starts`, runs that start at different times are refused
 * ({@link TrajectoryStartError}).
 */
export function trajectoryError(
  samples: ArrayLike<number>,
  reference: ArrayLike<number>,
  batch: number,
  dataRange: number = DATA_RANGE,
  starts?: TrajectoryStarts,
): TrajectoryError {
  if (starts) checkSameStart(starts);
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
