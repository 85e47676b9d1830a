/**
 * Cheap per-step previews of latent diffusion: a linear map from the C latent channels at one latent
 * pixel to the RGB of the 8×8 (VAE factor f × f) image patch it decodes to,
 *
 *   rgb(p) ≈ W·z(p) + b,   W ∈ ℝ^{3×C}, b ∈ ℝ³,
 *
 * the same form as the 4×3 "latent RGB factors" the SD 1.x web UIs use for previews. Instead of
 * numbers fitted once on SD 1.5's VAE (which mean nothing for any other VAE, and nothing at all for
 * a random-weight fixture), the map is fitted for the pipeline's own VAE decoder by least squares:
 * decode a batch of N(0, I) latents once, average each f × f patch of the decoded image, and solve
 * the normal equations [Z 1]ᵀ[Z 1]·[W b]ᵀ = [Z 1]ᵀ·RGB over all latent pixels. One VAE decode at a
 * small size per pipeline; each preview after that is 3(C + 1) multiply-adds per latent pixel.
 * @packageDocumentation
 */
import type { RgbaImage } from '../../io/image-grid.js';

/** A linear latent → RGB map (RGB in the VAE's [−1, 1]). */
export interface LatentRgbProjection {
  /** Latent channels C. */
  readonly channels: number;
  /** W, row-major [3, C]. */
  readonly weights: Float64Array;
  /** b, one per RGB channel. */
  readonly bias: readonly [number, number, number];
  /** Share of the patch means' variance the map explains on the fitting data, per RGB channel (R²). */
  readonly r2: readonly [number, number, number];
  /** Latent pixels the map was fitted on. */
  readonly samples: number;
}

/** Solve the symmetric positive (semi)definite system A·x = y (n × n, row-major) by Gaussian elimination with partial pivoting. */
function solve(a: Float64Array, y: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const v = Float64Array.from(y);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * n + col]!) > Math.abs(m[piv * n + col]!)) piv = r;
    if (Math.abs(m[piv * n + col]!) < 1e-12) throw new RangeError('latent preview fit: the latents are linearly dependent (a constant channel?)');
    if (piv !== col) {
      for (let k = 0; k < n; k++) [m[col * n + k], m[piv * n + k]] = [m[piv * n + k]!, m[col * n + k]!];
      [v[col], v[piv]] = [v[piv]!, v[col]!];
    }
    for (let r = col + 1; r < n; r++) {
      const f = m[r * n + col]! / m[col * n + col]!;
      if (f === 0) continue;
      for (let k = col; k < n; k++) m[r * n + k] = m[r * n + k]! - f * m[col * n + k]!;
      v[r] = v[r]! - f * v[col]!;
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = v[r]!;
    for (let k = r + 1; k < n; k++) s -= m[r * n + k]! * x[k]!;
    x[r] = s / m[r * n + r]!;
  }
  return x;
}

/**
 * Fit the map from latents [B, C, h, w] and their decoded images [B, 3, f·h, f·w] (see the module
 * notes). Needs at least C + 1 latent pixels in all.
 */
export function fitLatentRgbProjection(
  latents: ArrayLike<number>,
  decoded: ArrayLike<number>,
  dims: { batch: number; channels: number; height: number; width: number; factor: number },
): LatentRgbProjection {
  const { batch, channels: C, height: h, width: w, factor: f } = dims;
  const plane = h * w;
  const W = w * f;
  const imgPlane = plane * f * f;
  if (latents.length !== batch * C * plane) throw new RangeError(`latent preview fit: ${latents.length} latent values for [${batch},${C},${h},${w}]`);
  if (decoded.length !== batch * 3 * imgPlane) throw new RangeError(`latent preview fit: ${decoded.length} image values for [${batch},3,${h * f},${W}]`);
  const n = C + 1;
  if (batch * plane < n) throw new RangeError(`latent preview fit: ${batch * plane} latent pixels for ${n} unknowns per colour`);
  const ata = new Float64Array(n * n);
  const aty = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  const rows: { z: Float64Array; rgb: number[] }[] = [];
  const z = new Float64Array(n);
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < C; c++) z[c] = latents[(b * C + c) * plane + p]!;
      z[C] = 1;
      const py = Math.floor(p / w);
      const px = p % w;
      const rgb = [0, 0, 0];
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += decoded[(b * 3 + c) * imgPlane + (py * f + dy) * W + px * f + dx]!;
        rgb[c] = s / (f * f);
      }
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) ata[i * n + j] = ata[i * n + j]! + z[i]! * z[j]!;
        for (let c = 0; c < 3; c++) aty[c]![i] = aty[c]![i]! + z[i]! * rgb[c]!;
      }
      rows.push({ z: Float64Array.from(z), rgb });
    }
  }
  const sol = aty.map((y) => solve(ata, y, n));
  const weights = new Float64Array(3 * C);
  for (let c = 0; c < 3; c++) for (let k = 0; k < C; k++) weights[c * C + k] = sol[c]![k]!;
  const bias = [sol[0]![C]!, sol[1]![C]!, sol[2]![C]!] as const;
  const r2 = [0, 1, 2].map((c) => {
    const mean = rows.reduce((a, r) => a + r.rgb[c]!, 0) / rows.length;
    let res = 0;
    let tot = 0;
    for (const r of rows) {
      let pred = 0;
      for (let i = 0; i < n; i++) pred += sol[c]![i]! * r.z[i]!;
      res += (r.rgb[c]! - pred) ** 2;
      tot += (r.rgb[c]! - mean) ** 2;
    }
    return tot > 0 ? 1 - res / tot : 1;
  }) as [number, number, number];
  return { channels: C, weights, bias, r2, samples: rows.length };
}

/** Latents [B, C, h, w] → one h × w RGBA image per sample through the map (RGB [−1, 1] ↦ round(clamp(x/2 + 0.5, 0, 1)·255)). */
export function previewLatents(latents: ArrayLike<number>, batch: number, height: number, width: number, proj: LatentRgbProjection): RgbaImage[] {
  const C = proj.channels;
  const plane = height * width;
  if (latents.length !== batch * C * plane) throw new RangeError(`preview: ${latents.length} latent values for [${batch},${C},${height},${width}]`);
  const out: RgbaImage[] = [];
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(plane * 4);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        let v = proj.bias[c]!;
        for (let k = 0; k < C; k++) v += proj.weights[c * C + k]! * latents[(b * C + k) * plane + p]!;
        data[p * 4 + c] = Math.round(Math.min(1, Math.max(0, v / 2 + 0.5)) * 255);
      }
      data[p * 4 + 3] = 255;
    }
    out.push({ width, height, data });
  }
  return out;
}
