/**
 * Elementwise arithmetic on flat numeric arrays.
 *
 * The sampling core works on flat `Float32Array`s (what an ONNX model consumes) or `Float64Array`s
 * (for closed-form tests that need 1e-9 accuracy). Every operation returns a new array of the same
 * kind as its first array argument; scalars are always float64.
 * @packageDocumentation
 */

/** A flat numeric state: a batch of samples laid out as `[batch, ...sampleShape]`, row-major. */
export type NumArray = Float32Array | Float64Array;

/** The constructor of `a`'s kind, so results keep the caller's precision. */
function like(a: NumArray, length = a.length): NumArray {
  return a instanceof Float64Array ? new Float64Array(length) : new Float32Array(length);
}

function sameLength(arrays: readonly NumArray[], op: string): void {
  const n = arrays[0]!.length;
  for (const a of arrays) {
    if (a.length !== n) {
      throw new RangeError(`${op}: arrays differ in length (${n} vs ${a.length}); all states of one sampling run must share one shape`);
    }
  }
}

/** `a·x` */
export function scale(a: number, x: NumArray): NumArray {
  const out = like(x);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i]!;
  return out;
}

/** `a·x + b·y` */
export function axpby(a: number, x: NumArray, b: number, y: NumArray): NumArray {
  sameLength([x, y], 'axpby');
  const out = like(x);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i]! + b * y[i]!;
  return out;
}

/** `Σ_j c_j·x_j` — the linear combination every linear multistep/singlestep update is made of. */
export function linearCombination(coeffs: readonly number[], xs: readonly NumArray[]): NumArray {
  if (coeffs.length !== xs.length || xs.length === 0) {
    throw new RangeError(`linearCombination: ${coeffs.length} coefficients for ${xs.length} arrays`);
  }
  sameLength(xs, 'linearCombination');
  const out = like(xs[0]!);
  for (let j = 0; j < xs.length; j++) {
    const c = coeffs[j]!;
    if (c === 0) continue;
    const x = xs[j]!;
    for (let i = 0; i < out.length; i++) out[i] += c * x[i]!;
  }
  return out;
}

/** `x - y` */
export function sub(x: NumArray, y: NumArray): NumArray {
  return axpby(1, x, -1, y);
}

/** Mean squared difference of two arrays of equal length. */
export function meanSquaredError(x: NumArray, y: NumArray): number {
  sameLength([x, y], 'meanSquaredError');
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i]! - y[i]!;
    s += d * d;
  }
  return s / x.length;
}

/**
 * Index of the first NaN or ±Infinity among `x[start…end)`, or -1 when every value there is finite:
 * the one scan of model outputs (the backend, guidance and the solver context all use it).
 */
export function firstNonFinite(x: ArrayLike<number>, start = 0, end = x.length): number {
  for (let i = start; i < end; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** Clamp every element into [lo, hi]. */
export function clamp(x: NumArray, lo: number, hi: number): NumArray {
  const out = like(x);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(hi, Math.max(lo, x[i]!));
  return out;
}
