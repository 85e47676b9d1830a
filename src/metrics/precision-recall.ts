/**
 * Improved precision and recall of a generative model (Kynkäänniemi et al. 2019, §2).
 *
 * Each set's manifold is the union of balls around its points, the ball of point φ having the radius
 * of its k-th nearest neighbour within the same set, NN_k(φ). A point φ is inside the manifold of set
 * Φ when ‖φ − φ'‖ ≤ ‖φ' − NN_k(φ')‖ for some φ' ∈ Φ. Then
 *
 *   precision = fraction of generated points inside the real manifold,
 *   recall    = fraction of real points inside the generated manifold.
 *
 * Distances are Euclidean in feature space, computed exactly from differences in float64
 * (cost O(N_real · N_gen · D) plus the two k-NN passes).
 * @packageDocumentation
 */

/** Options of {@link precisionRecall}. */
export interface PrecisionRecallOptions {
  /** Neighbourhood size k (the paper's default is 3). */
  k?: number;
}

/** k-NN precision and recall. */
export interface PrecisionRecallResult {
  /** Share of generated points inside the real manifold. */
  precision: number;
  /** Share of real points inside the generated manifold. */
  recall: number;
  /** The k used. */
  k: number;
}

/** Squared distance between row i of `a` and row j of `b`, four terms per step. */
function sqDist(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, d: number): number {
  const ai = i * d;
  const bj = j * d;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < d; t += 4) {
    const e0 = a[ai + t]! - b[bj + t]!;
    const e1 = a[ai + t + 1]! - b[bj + t + 1]!;
    const e2 = a[ai + t + 2]! - b[bj + t + 2]!;
    const e3 = a[ai + t + 3]! - b[bj + t + 3]!;
    s0 += e0 * e0;
    s1 += e1 * e1;
    s2 += e2 * e2;
    s3 += e3 * e3;
  }
  for (; t < d; t++) {
    const e = a[ai + t]! - b[bj + t]!;
    s0 += e * e;
  }
  return s0 + s1 + s2 + s3;
}

/** Insert `value` into row `row` of the ascending k-smallest lists `best` (`[n, k]`). */
function offer(best: Float64Array, row: number, k: number, value: number): void {
  const base = row * k;
  if (value >= best[base + k - 1]!) return;
  let p = k - 1;
  while (p > 0 && best[base + p - 1]! > value) {
    best[base + p] = best[base + p - 1]!;
    p--;
  }
  best[base + p] = value;
}

/**
 * Squared radius of each row's ball: the squared distance to its k-th nearest other row of the same
 * set (a duplicate row counts, at distance 0). Each pair's distance is computed once.
 */
export function kthNeighbourSqRadii(points: ArrayLike<number>, dim: number, k: number): Float64Array {
  const n = points.length / dim;
  if (n <= k) {
    throw new RangeError(`precisionRecall: a set of ${n} points has no ${k}-th nearest neighbour; pass more than k points or lower k`);
  }
  const best = new Float64Array(n * k).fill(Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dd = sqDist(points, i, points, j, dim);
      offer(best, i, k, dd);
      offer(best, j, k, dd);
    }
  }
  const radii = new Float64Array(n);
  for (let i = 0; i < n; i++) radii[i] = best[i * k + k - 1]!;
  return radii;
}

/** Share of `queries` rows inside the union of balls around `centres` with squared radii `sqRadii`. */
function coverage(queries: ArrayLike<number>, centres: ArrayLike<number>, sqRadii: Float64Array, dim: number): number {
  const nq = queries.length / dim;
  const nc = centres.length / dim;
  let inside = 0;
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < nc; j++) {
      if (sqDist(queries, i, centres, j, dim) <= sqRadii[j]!) {
        inside++;
        break;
      }
    }
  }
  return inside / nq;
}

/**
 * k-NN precision and recall of `generated` `[Ng, D]` against `real` `[Nr, D]` features
 * (row-major, float32 or float64).
 */
export function precisionRecall(
  real: ArrayLike<number>,
  generated: ArrayLike<number>,
  dim: number,
  options: PrecisionRecallOptions = {},
): PrecisionRecallResult {
  const { k = 3 } = options;
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`precisionRecall: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`precisionRecall: k must be a positive integer, got ${k}`);
  for (const [name, a] of [
    ['real', real],
    ['generated', generated],
  ] as const) {
    if (a.length % dim !== 0 || a.length === 0) {
      throw new RangeError(`precisionRecall: the ${name} set has ${a.length} numbers, not a non-empty whole number of rows of dimension ${dim}`);
    }
  }
  const realRadii = kthNeighbourSqRadii(real, dim, k);
  const generatedRadii = kthNeighbourSqRadii(generated, dim, k);
  return {
    precision: coverage(generated, real, realRadii, dim),
    recall: coverage(real, generated, generatedRadii, dim),
    k,
  };
}
