/**
 * The bootstrap spread of a cell's FD-classifier (Efron & Tibshirani 1993, ch. 6): resample the N
 * sample features with replacement B times, recompute FD against the fixed reference statistics, and
 * report the standard deviation of the B values. A difference between two cells smaller than their
 * spread is not a measured difference (the headline report marks such gaps).
 * @packageDocumentation
 */
import { Rng } from '../core/index.js';
import { featureStatistics, frechetDistance, type GaussianStatistics } from '../metrics/index.js';

/** Bootstrap resamples per cell. */
export const FD_BOOTSTRAP_RESAMPLES = 50;

/** The bootstrap distribution of FD-classifier, summarised. */
export interface FdSpread {
  /** Standard deviation of the B bootstrap FD values. */
  std: number;
  /** 2.5 % and 97.5 % quantiles of the B values. */
  lo: number;
  hi: number;
  resamples: number;
}

/**
 * FD spread of `count` feature rows of width `dim` against `reference`, from `resamples` bootstrap
 * resamples drawn with a seeded generator (the same seed gives the same spread).
 */
export function fdBootstrap(
  features: ArrayLike<number>,
  count: number,
  dim: number,
  reference: GaussianStatistics,
  resamples = FD_BOOTSTRAP_RESAMPLES,
  seed = 0,
): FdSpread {
  if (!Number.isInteger(count) || count < 2 || features.length !== count * dim) {
    throw new RangeError(`fdBootstrap: ${features.length} numbers are not ${count} rows of ${dim} features (need at least 2 rows)`);
  }
  if (!Number.isInteger(resamples) || resamples < 2) throw new RangeError(`fdBootstrap: resamples must be an integer ≥ 2, got ${resamples}`);
  const rng = new Rng(seed);
  const rows = new Float64Array(count * dim);
  const values: number[] = [];
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < count; i++) {
      const j = Math.min(count - 1, Math.floor(rng.uniform() * count));
      for (let k = 0; k < dim; k++) rows[i * dim + k] = features[j * dim + k]!;
    }
    values.push(frechetDistance(featureStatistics(rows, dim), reference));
  }
  const mean = values.reduce((a, v) => a + v, 0) / resamples;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (resamples - 1));
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(resamples - 1, Math.max(0, Math.round(p * (resamples - 1))))]!;
  return { std, lo: q(0.025), hi: q(0.975), resamples };
}
