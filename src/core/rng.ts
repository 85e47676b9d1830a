/**
 * Seeded random numbers, identical on every platform.
 *
 * Generator: xoshiro128** (Blackman & Vigna, 2018) on four 32-bit words, seeded by SplitMix32
 * from the 32-bit seed. Uniforms in [0, 1) take 53 bits from two outputs. Standard normals use the
 * Marsaglia polar method, which needs only `Math.log` and `Math.sqrt` (no trigonometry), with the
 * spare value kept for the next draw. All integer work uses `Math.imul` and `>>> 0`, so the bit
 * stream is the same in every JavaScript engine; the normals match wherever `Math.log` is the same
 * (it is in V8, i.e. Node.js and Chromium).
 *
 * Noise for a batch is drawn sample by sample: sample `b` of a run with seed `s` uses the stream
 * `seedForSample(s, b)`, so an image does not change when the batch size changes.
 * @packageDocumentation
 */

/** SplitMix32 step: a well-mixed 32-bit value from a 32-bit counter. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [next, z];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seeded stream of uniform and Gaussian numbers (xoshiro128** + polar method). */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /** @param seed any integer; it is reduced to 32 bits. */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
    let st = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [n, z] = splitmix32(st);
      st = n;
      words.push(z);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal N(0, 1) (Marsaglia polar method). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spare = v * f;
        return u * f;
      }
    }
  }

  /** Fill `out` with standard normals. */
  fillNormal<T extends Float32Array | Float64Array>(out: T): T {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }
}

/** The seed of sample `index` in a run seeded with `seed` (so batching never changes an image). */
export function seedForSample(seed: number, index: number): number {
  let st = (seed >>> 0) ^ Math.imul(index + 1, 0x9e3779b1);
  st = splitmix32(st >>> 0)[1];
  return st >>> 0;
}

/**
 * Gaussian noise for `batch` samples of `sampleSize` numbers each, sample `b` drawn from its own
 * stream `seedForSample(seed, offset + b)`.
 */
export function gaussianBatch(
  seed: number,
  batch: number,
  sampleSize: number,
  precision: 'float32' | 'float64' = 'float32',
  offset = 0,
): Float32Array | Float64Array {
  const out = precision === 'float64' ? new Float64Array(batch * sampleSize) : new Float32Array(batch * sampleSize);
  for (let b = 0; b < batch; b++) {
    const rng = new Rng(seedForSample(seed, offset + b));
    rng.fillNormal(out.subarray(b * sampleSize, (b + 1) * sampleSize));
  }
  return out;
}
