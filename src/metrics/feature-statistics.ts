/**
 * Mean and covariance of a set of feature vectors, accumulated batch by batch in float64.
 *
 * For N rows x_n ∈ R^D the statistics are μ = (1/N) Σ x_n and the unbiased covariance
 * Σ = (1/(N−1)) Σ (x_n − μ)(x_n − μ)ᵀ. Sums are taken about a fixed shift c (the first row seen):
 * with s₁ = Σ (x_n − c) and S₂ = Σ (x_n − c)(x_n − c)ᵀ, μ = c + s₁/N and
 * Σ = (S₂ − s₁s₁ᵀ/N)/(N−1). Centring on a sample keeps the subtraction well conditioned when the
 * features have a large common offset, so the result does not depend on how the rows were batched.
 * @packageDocumentation
 */

/** Gaussian summary of a feature set: what the Fréchet distance compares. */
export interface FeatureStatistics {
  /** Feature dimension D. */
  dim: number;
  /** Number of rows the statistics were computed from (0 when unknown, e.g. loaded from a file). */
  count: number;
  /** Mean, length D. */
  mean: Float64Array;
  /** Unbiased covariance (N−1 denominator), D×D row-major, symmetric. */
  covariance: Float64Array;
}

/** Rows of `features`, checked against `dim`. */
function rowCount(features: ArrayLike<number>, dim: number, what: string): number {
  if (!Number.isInteger(dim) || dim < 1) {
    throw new RangeError(`${what}: feature dimension must be a positive integer, got ${dim}`);
  }
  if (features.length % dim !== 0) {
    throw new RangeError(
      `${what}: array of length ${features.length} is not a whole number of rows of dimension ${dim}; ` +
        'pass features laid out as [N, D] row-major with the right D',
    );
  }
  return features.length / dim;
}

/**
 * Streaming accumulator of feature statistics: `add()` batches of rows `[n, D]` as they are produced,
 * then `statistics()`. Memory is O(D²) whatever the number of rows.
 */
export class FeatureStatisticsAccumulator {
  /** Feature dimension D. */
  readonly dim: number;
  private n = 0;
  private shift: Float64Array | null = null;
  private readonly sum: Float64Array;
  /** Upper triangle (i ≤ j) of S₂, stored full for simple indexing. */
  private readonly sumOuter: Float64Array;
  private readonly centred: Float64Array;

  /** @param dim feature dimension D (the classifier's `features` width). */
  constructor(dim: number) {
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(`FeatureStatisticsAccumulator: dim must be a positive integer, got ${dim}`);
    }
    this.dim = dim;
    this.sum = new Float64Array(dim);
    this.sumOuter = new Float64Array(dim * dim);
    this.centred = new Float64Array(dim);
  }

  /** Number of rows added so far. */
  get count(): number {
    return this.n;
  }

  /** Add a batch of rows laid out `[n, D]` row-major (float32 or float64). */
  add(features: ArrayLike<number>): this {
    const d = this.dim;
    const rows = rowCount(features, d, 'FeatureStatisticsAccumulator.add');
    const c = this.centred;
    for (let r = 0; r < rows; r++) {
      const base = r * d;
      if (this.shift === null) {
        this.shift = new Float64Array(d);
        for (let i = 0; i < d; i++) this.shift[i] = features[base + i]!;
      }
      const shift = this.shift;
      for (let i = 0; i < d; i++) {
        const v = features[base + i]!;
        if (!Number.isFinite(v)) {
          throw new RangeError(
            `FeatureStatisticsAccumulator.add: feature ${i} of row ${this.n} is ${v}; ` +
              'the features must be finite (check the images fed to the classifier)',
          );
        }
        c[i] = v - shift[i]!;
        this.sum[i]! += c[i]!;
      }
      for (let i = 0; i < d; i++) {
        const ci = c[i]!;
        if (ci === 0) continue;
        const row = i * d;
        for (let j = i; j < d; j++) this.sumOuter[row + j]! += ci * c[j]!;
      }
      this.n++;
    }
    return this;
  }

  /** Mean and unbiased covariance of all rows added; needs at least two rows. */
  statistics(): FeatureStatistics {
    const d = this.dim;
    const n = this.n;
    if (n < 2) {
      throw new RangeError(`FeatureStatisticsAccumulator.statistics: a covariance needs at least 2 rows, got ${n}; add more features`);
    }
    const shift = this.shift!;
    const mean = new Float64Array(d);
    for (let i = 0; i < d; i++) mean[i] = shift[i]! + this.sum[i]! / n;
    const covariance = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = (this.sumOuter[i * d + j]! - (this.sum[i]! * this.sum[j]!) / n) / (n - 1);
        covariance[i * d + j] = v;
        covariance[j * d + i] = v;
      }
    }
    return { dim: d, count: n, mean, covariance };
  }
}

/** Mean and unbiased covariance of `[N, D]` row-major features (N ≥ 2). */
export function featureStatistics(features: ArrayLike<number>, dim: number): FeatureStatistics {
  return new FeatureStatisticsAccumulator(dim).add(features).statistics();
}
