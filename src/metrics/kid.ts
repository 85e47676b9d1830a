/**
 * KID: the unbiased squared maximum mean discrepancy (Gretton et al. 2012, Lemma 6) with the cubic
 * polynomial kernel k(x, y) = (xᵀy/D + 1)³, averaged over random subsets (Bińkowski et al. 2018,
 * "Demystifying MMD GANs", §4). On m rows X and m rows Y:
 *
 *   MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i,x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i,y_j) − 2/m² Σ_{i,j} k(x_i,y_j)
 *
 * whose expectation is exactly the population MMD², so it is 0 on average (and may be negative) when
 * both sets come from one distribution. Each subset draws m rows of each set without replacement; the
 * result is the mean and the (population) standard deviation over subsets. Here the features are the
 * shipped classifier's, not Inception's.
 * @packageDocumentation
 */
import { Rng } from '../core/rng.js';

/** Options of {@link kid}. */
export interface KidOptions {
  /** Rows per subset m (clamped to the smaller set). Default 1000. */
  subsetSize?: number;
  /** Number of subsets. Default 100. */
  subsets?: number;
  /** Seed of the subset draws. Default 0. */
  seed?: number;
  /**
   * Largest number of kernel values (Nx² + Ny² + Nx·Ny, float64) to precompute once for all subsets;
   * bigger sets compute each subset's kernels afresh (subsets × 2m²D work). Both give identical
   * results. Default 2²⁴ (128 MiB).
   */
  maxCachedKernels?: number;
}

/** KID estimate. */
export interface KidResult {
  /** Mean of MMD²_u over the subsets. */
  mean: number;
  /** Standard deviation of MMD²_u over the subsets (0 for one subset). */
  std: number;
  /** The subset size m actually used. */
  subsetSize: number;
  /** MMD²_u of each subset. */
  values: Float64Array;
}

/** xᵀy for row i of `a` and row j of `b` (width d), four products per step. */
function dot(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, d: number): number {
  const ai = i * d;
  const bj = j * d;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < d; t += 4) {
    s0 += a[ai + t]! * b[bj + t]!;
    s1 += a[ai + t + 1]! * b[bj + t + 1]!;
    s2 += a[ai + t + 2]! * b[bj + t + 2]!;
    s3 += a[ai + t + 3]! * b[bj + t + 3]!;
  }
  for (; t < d; t++) s0 += a[ai + t]! * b[bj + t]!;
  return s0 + s1 + s2 + s3;
}

/** k(x, y) = (xᵀy/D + 1)³ for rows i of `a` and j of `b`. */
function kernel(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, d: number): number {
  const s = dot(a, i, b, j, d) / d + 1;
  return s * s * s;
}

/** MMD²_u from the three kernel sums (Σ_{i<j} within X, within Y, Σ_{i,j} across). */
function mmdFromSums(m: number, sxx: number, syy: number, sxy: number): number {
  // Off-diagonal sums count each unordered pair once: Σ_{i≠j} = 2 Σ_{i<j}.
  return (2 * (sxx + syy)) / (m * (m - 1)) - (2 * sxy) / (m * m);
}

/**
 * The unbiased MMD² estimate with the cubic polynomial kernel between two equal-size row sets
 * (`[m, d]` row-major). m ≥ 2.
 */
export function mmdUnbiased(x: ArrayLike<number>, y: ArrayLike<number>, d: number): number {
  const m = x.length / d;
  if (y.length !== x.length || !Number.isInteger(m) || m < 2) {
    throw new RangeError(`mmdUnbiased: need two [m, ${d}] sets of equal size with m ≥ 2`);
  }
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      sxx += kernel(x, i, x, j, d);
      syy += kernel(y, i, y, j, d);
    }
    for (let j = 0; j < m; j++) sxy += kernel(x, i, y, j, d);
  }
  return mmdFromSums(m, sxx, syy, sxy);
}

/** All kernel values k(a_i, b_j), `[na, nb]` row-major (each symmetric pair computed once when a = b). */
function kernelMatrix(a: ArrayLike<number>, b: ArrayLike<number>, d: number): Float64Array {
  const na = a.length / d;
  const nb = b.length / d;
  const out = new Float64Array(na * nb);
  for (let i = 0; i < na; i++) {
    if (a === b) {
      for (let j = i; j < na; j++) out[j * na + i] = out[i * na + j] = kernel(a, i, a, j, d);
    } else {
      for (let j = 0; j < nb; j++) out[i * nb + j] = kernel(a, i, b, j, d);
    }
  }
  return out;
}

/** MMD²_u of rows `rx` of X and `ry` of Y from precomputed kernel matrices (same sums, same order, as {@link mmdUnbiased}). */
function mmdFromKernelMatrices(
  rx: Uint32Array,
  ry: Uint32Array,
  kxx: Float64Array,
  kyy: Float64Array,
  kxy: Float64Array,
  nx: number,
  ny: number,
): number {
  const m = rx.length;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < m; i++) {
    const bx = rx[i]! * nx;
    const by = ry[i]! * ny;
    const bxy = rx[i]! * ny;
    for (let j = i + 1; j < m; j++) {
      sxx += kxx[bx + rx[j]!]!;
      syy += kyy[by + ry[j]!]!;
    }
    for (let j = 0; j < m; j++) sxy += kxy[bxy + ry[j]!]!;
  }
  return mmdFromSums(m, sxx, syy, sxy);
}

/** m distinct row indices out of n, by a partial Fisher–Yates shuffle, sorted ascending. */
function drawRows(rng: Rng, n: number, m: number): Uint32Array {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng.uniform() * (n - i));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  // The statistic sums over pairs, so order is free; ascending order makes look-ups run forward.
  return idx.subarray(0, m).sort();
}

function gather(src: ArrayLike<number>, rows: Uint32Array, d: number, out: Float64Array): Float64Array {
  for (let r = 0; r < rows.length; r++) {
    const s = rows[r]! * d;
    const o = r * d;
    for (let t = 0; t < d; t++) out[o + t] = src[s + t]!;
  }
  return out;
}

/**
 * KID between feature sets `x` `[Nx, D]` and `y` `[Ny, D]` (row-major, float32 or float64).
 * Cost: (Nx²/2 + Ny²/2 + Nx·Ny)·D multiply-adds once when the kernel values fit in
 * `maxCachedKernels` (then subsets × 2m² look-ups), else subsets × 2m²D.
 */
export function kid(x: ArrayLike<number>, y: ArrayLike<number>, dim: number, options: KidOptions = {}): KidResult {
  const { subsetSize = 1000, subsets = 100, seed = 0, maxCachedKernels = 2 ** 24 } = options;
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`kid: dim must be a positive integer, got ${dim}`);
  for (const [name, a] of [
    ['first', x],
    ['second', y],
  ] as const) {
    if (a.length % dim !== 0) {
      throw new RangeError(`kid: ${name} set has ${a.length} numbers, not a whole number of rows of dimension ${dim}`);
    }
  }
  if (!Number.isInteger(subsetSize) || subsetSize < 2) {
    throw new RangeError(`kid: subsetSize must be an integer ≥ 2, got ${subsetSize}`);
  }
  if (!Number.isInteger(subsets) || subsets < 1) {
    throw new RangeError(`kid: subsets must be a positive integer, got ${subsets}`);
  }
  const nx = x.length / dim;
  const ny = y.length / dim;
  const m = Math.min(subsetSize, nx, ny);
  if (m < 2) throw new RangeError(`kid: each set needs at least 2 rows (got ${nx} and ${ny}); pass more features`);
  const rng = new Rng(seed);
  const values = new Float64Array(subsets);
  if (nx * nx + ny * ny + nx * ny <= maxCachedKernels) {
    const kxx = kernelMatrix(x, x, dim);
    const kyy = kernelMatrix(y, y, dim);
    const kxy = kernelMatrix(x, y, dim);
    for (let s = 0; s < subsets; s++) {
      const rx = drawRows(rng, nx, m);
      const ry = drawRows(rng, ny, m);
      values[s] = mmdFromKernelMatrices(rx, ry, kxx, kyy, kxy, nx, ny);
    }
  } else {
    const xs = new Float64Array(m * dim);
    const ys = new Float64Array(m * dim);
    for (let s = 0; s < subsets; s++) {
      gather(x, drawRows(rng, nx, m), dim, xs);
      gather(y, drawRows(rng, ny, m), dim, ys);
      values[s] = mmdUnbiased(xs, ys, dim);
    }
  }
  let mean = 0;
  for (const v of values) mean += v;
  mean /= subsets;
  let variance = 0;
  for (const v of values) variance += (v - mean) * (v - mean);
  variance /= subsets;
  return { mean, std: Math.sqrt(variance), subsetSize: m, values };
}
