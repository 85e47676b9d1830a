/**
 * Functions of symmetric positive semi-definite matrices, by symmetric eigendecomposition
 * (ml-matrix's Householder tridiagonalisation + QL), in float64.
 *
 * For A = V diag(λ) Vᵀ with λ ≥ 0, f(A) = V diag(f(λ)) Vᵀ. Eigenvalues that come out slightly
 * negative from rounding are clamped to 0; a clearly negative one means the input was not PSD.
 * Matrices are flat row-major `Float64Array`s of n×n numbers.
 * @packageDocumentation
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

/**
 * Relative size below which a negative eigenvalue counts as rounding noise: λ ≥ −tol · max|λ|.
 * Covariances assembled in float64 from float32 features sit many orders inside this.
 */
export const PSD_TOLERANCE = 1e-8;

/** Eigenvalues (ascending order not guaranteed) and eigenvectors (columns of V) of a symmetric matrix. */
export interface SymmetricEigen {
  values: Float64Array;
  /** V, n×n row-major; column k is the eigenvector of `values[k]`. */
  vectors: Float64Array;
}

function checkSquare(a: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n) {
    throw new RangeError(`${what}: expected an ${n}×${n} matrix (${n * n} numbers), got ${a.length} numbers`);
  }
}

/** (A + Aᵀ)/2 as an ml-matrix, after checking that A is symmetric up to rounding. */
function symmetrised(a: ArrayLike<number>, n: number, what: string): Matrix {
  checkSquare(a, n, what);
  let scale = 0;
  for (let i = 0; i < n * n; i++) {
    const v = a[i]!;
    if (!Number.isFinite(v)) throw new RangeError(`${what}: entry ${i} is ${v}; the matrix must be finite`);
    scale = Math.max(scale, Math.abs(v));
  }
  const m = new Matrix(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const x = a[i * n + j]!;
      const y = a[j * n + i]!;
      if (Math.abs(x - y) > 1e-9 * scale) {
        throw new RangeError(`${what}: matrix is not symmetric (entry [${i},${j}] = ${x} but [${j},${i}] = ${y}); pass a covariance matrix`);
      }
      const s = 0.5 * (x + y);
      m.set(i, j, s);
      m.set(j, i, s);
    }
  }
  return m;
}

/** Symmetric eigendecomposition A = V diag(λ) Vᵀ. */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  const evd = new EigenvalueDecomposition(symmetrised(a, n, 'symmetricEigen'), { assumeSymmetric: true });
  const values = Float64Array.from(evd.realEigenvalues);
  const v = evd.eigenvectorMatrix;
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) vectors[i * n + k] = v.get(i, k);
  return { values, vectors };
}

/** Eigenvalues of a PSD matrix with rounding negatives clamped to 0; throws if one is clearly negative. */
export function psdEigenvalues(values: Float64Array, what: string): Float64Array {
  let maxAbs = 0;
  for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
  const out = new Float64Array(values.length);
  for (let k = 0; k < values.length; k++) {
    const v = values[k]!;
    if (v < -PSD_TOLERANCE * maxAbs) {
      throw new RangeError(
        `${what}: matrix is not positive semi-definite (eigenvalue ${v} against largest |λ| ${maxAbs}); ` +
          'pass a covariance matrix, e.g. from featureStatistics()',
      );
    }
    out[k] = Math.max(0, v);
  }
  return out;
}

/** Principal square root A^{1/2} = V diag(√λ) Vᵀ of a symmetric PSD matrix (n×n row-major). */
export function sqrtPsd(a: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const root = psdEigenvalues(values, 'sqrtPsd');
  for (let k = 0; k < n; k++) root[k] = Math.sqrt(root[k]!);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[i * n + k]! * root[k]! * vectors[j * n + k]!;
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** tr(A^{1/2}) = Σ √λ_k of a symmetric PSD matrix: the eigenvalues suffice. */
export function traceSqrtPsd(a: ArrayLike<number>, n: number): number {
  const evd = new EigenvalueDecomposition(symmetrised(a, n, 'traceSqrtPsd'), { assumeSymmetric: true });
  const values = psdEigenvalues(Float64Array.from(evd.realEigenvalues), 'traceSqrtPsd');
  let s = 0;
  for (const v of values) s += Math.sqrt(v);
  return s;
}

/** Product A·B of two n×n row-major matrices. */
export function matMul(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  checkSquare(a, n, 'matMul');
  checkSquare(b, n, 'matMul');
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[row + k]!;
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) out[row + j]! += aik * b[bk + j]!;
    }
  }
  return out;
}
