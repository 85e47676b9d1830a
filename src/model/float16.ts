/**
 * IEEE 754 binary16 ("half") conversion, for models exported with float16 inputs or outputs.
 *
 * Values travel as their raw 16-bit patterns in a `Uint16Array`, which onnxruntime accepts for
 * `float16` tensors in Node.js and in browsers alike (Float16Array is not in Node 20).
 * binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits; subnormals below 2⁻¹⁴.
 * @packageDocumentation
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `value` (round to nearest, ties to even; overflow → ±∞). */
export function float16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // ∞ or NaN (quiet)
  // Unbiased exponent e = exp − 127; half keeps e ∈ [−14, 15] normal, down to −24 subnormal.
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal: keep 10 of 23 fraction bits, round half to even on the 13 dropped bits.
    let half = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1; // carry may bump exponent: correct
    return sign | half;
  }
  if (e < -25) return sign; // rounds to ±0
  // Subnormal: value = (1.mant)·2^e = m·2⁻²⁴ with m = (1.mant)·2^(e+24).
  // m = (mant | 2²³)·2^(e+1), so −e−1 low bits are dropped (rounded half to even).
  mant |= 0x800000;
  const dropped = -e - 1;
  let half = mant >>> dropped;
  const rest = mant & ((1 << dropped) - 1);
  const halfway = 1 << (dropped - 1);
  if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
  return sign | half;
}

/** The number a binary16 bit pattern stands for. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Encode numbers as binary16 bit patterns. */
export function toFloat16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]!);
  return out;
}

/** Decode binary16 bit patterns into float32. */
export function fromFloat16Bits(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16Value(bits[i]!);
  return out;
}
