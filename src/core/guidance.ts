/**
 * Classifier-free guidance (Ho & Salimans 2022) as a model wrapper, with guidance rescale
 * (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4).
 *
 * One guided call runs the unconditional and the conditional inputs in ONE batch of 2B —
 * `[uncond; cond]` — so it counts as one NFE, and combines the two outputs in the model's own
 * prediction type:
 *   y_g = y_u + w·(y_c − y_u).
 * Every conversion between ε, x̂0 and v at a fixed (x, t) is affine with weights that do not depend
 * on the output, so combining in any prediction type gives the same guided ε̂ and x̂0.
 *
 * Rescale (§3.4, eq. 15–16): per sample, y_r = y_g·std(y_c)/std(y_g), then
 *   y = φ·y_r + (1 − φ)·y_g,
 * applied to the model output (diffusers' `guidance_rescale`) or, with `rescaleSpace: 'x0'`, to the
 * guided x̂0 as the paper writes it (then converted back to the model's type).
 * @packageDocumentation
 */
import type { Conditioning, DiffusionModel, ModelCallOptions } from './model.js';
import { sampleSize } from './model.js';
import { convertPrediction } from './prediction.js';
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import type { NumArray } from './tensor.js';

/** Options of {@link classifierFreeGuidance}. */
export interface GuidanceOptions {
  /** Guidance scale w (1 = conditional only, 0 = unconditional only). */
  scale: number;
  /** Guidance rescale φ ∈ [0, 1] (Lin et al. 2023 use 0.7). Default 0 (off). */
  rescale?: number;
  /**
   * Where the rescale acts: `output` (the model's own prediction type, as diffusers does; default)
   * or `x0` (the guided x̂0, as in the paper; needs `schedule`).
   */
  rescaleSpace?: 'output' | 'x0';
  /** The schedule of the model's time (only for `rescaleSpace: 'x0'`). */
  schedule?: NoiseSchedule;
  /**
   * Explicit unconditional conditioning for one sample or for the whole batch (e.g. the empty
   * prompt's encoder states). Takes precedence over `nullLabel`.
   */
  uncond?: Conditioning;
  /** The class label that means "unconditional" for class-conditional models. */
  nullLabel?: number;
}

/** Guidance settings, checked (throws an error naming the fix). */
export function checkGuidanceOptions(opts: GuidanceOptions): void {
  // w < 0 would push away from the condition (y_u − |w|·(y_c − y_u)); not a guidance scale.
  if (typeof opts.scale !== 'number' || !Number.isFinite(opts.scale) || opts.scale < 0) {
    throw new RangeError(`guidance scale must be a finite number ≥ 0 (0 = unconditional, 1 = off; e.g. 2 or 7.5), got ${String(opts.scale)}: pass a scale ≥ 0`);
  }
  const r = opts.rescale ?? 0;
  if (!(r >= 0 && r <= 1)) throw new RangeError(`guidance rescale must lie in [0, 1] (Lin et al. use 0.7), got ${r}`);
  if (opts.rescaleSpace !== undefined && opts.rescaleSpace !== 'output' && opts.rescaleSpace !== 'x0') {
    throw new RangeError(`guidance rescaleSpace must be 'output' or 'x0', got "${String(opts.rescaleSpace)}"`);
  }
  if (opts.rescaleSpace === 'x0' && r > 0 && !opts.schedule) {
    throw new Error("guidance rescaleSpace 'x0' needs the schedule: pass { schedule } in the guidance options");
  }
  if (opts.nullLabel !== undefined && !Number.isInteger(opts.nullLabel)) {
    throw new RangeError(`guidance nullLabel must be an integer class label, got ${opts.nullLabel}`);
  }
}

function repeatRows(data: Float32Array, rows: number, batch: number, what: string): Float32Array {
  if (data.length % rows !== 0) throw new RangeError(`${what}: ${data.length} values do not split into ${rows} rows`);
  const per = data.length / rows;
  if (rows === batch) return data;
  if (rows !== 1) throw new RangeError(`${what} holds ${rows} samples but the batch is ${batch}: give 1 or ${batch}`);
  const out = new Float32Array(per * batch);
  for (let b = 0; b < batch; b++) out.set(data, b * per);
  return out;
}

/** The unconditional conditioning for a batch of `batch`, derived from `cond` and the options. */
export function unconditionalFor(cond: Conditioning | undefined, batch: number, opts: GuidanceOptions): Conditioning {
  if (opts.uncond) {
    const u = opts.uncond;
    const out: Conditioning = {};
    if (u.classLabels) {
      if (u.classLabels.length !== 1 && u.classLabels.length !== batch) {
        throw new RangeError(`uncond.classLabels has ${u.classLabels.length} labels but the batch is ${batch}: give 1 or ${batch}`);
      }
      out.classLabels = u.classLabels.length === batch ? u.classLabels : new Array<number>(batch).fill(u.classLabels[0]!);
    }
    if (u.encoderHiddenStates) {
      const shape = u.encoderHiddenShape ?? cond?.encoderHiddenShape;
      const per = shape ? sampleSize(shape) : u.encoderHiddenStates.length;
      const rows = u.encoderHiddenStates.length / per;
      out.encoderHiddenStates = repeatRows(u.encoderHiddenStates, rows, batch, 'uncond.encoderHiddenStates');
      if (shape) out.encoderHiddenShape = shape;
    }
    return out;
  }
  if (cond?.encoderHiddenStates) {
    throw new Error('classifier-free guidance of a text-conditioned model needs explicit uncond conditioning (e.g. the empty prompt\'s encoder states): pass guidance.uncond');
  }
  if (cond?.classLabels) {
    if (opts.nullLabel === undefined) {
      throw new Error('classifier-free guidance with class labels needs the model\'s null label: pass guidance.nullLabel (from the model card) or guidance.uncond');
    }
    return { classLabels: new Array<number>(batch).fill(opts.nullLabel) };
  }
  throw new Error('classifier-free guidance needs conditioning to guide toward: pass cond (class labels or encoder states)');
}

/** `[a; b]` of two conditionings of `batch` samples each. */
export function concatConditioning(a: Conditioning, b: Conditioning, batch: number): Conditioning {
  const out: Conditioning = {};
  if (a.classLabels || b.classLabels) {
    if (!a.classLabels || !b.classLabels) throw new Error('both halves of a guided batch need class labels');
    if (a.classLabels.length !== batch || b.classLabels.length !== batch) {
      throw new RangeError(`class labels: expected ${batch} per half, got ${a.classLabels.length} and ${b.classLabels.length}: give one label per sample`);
    }
    out.classLabels = [...a.classLabels, ...b.classLabels];
  }
  if (a.encoderHiddenStates || b.encoderHiddenStates) {
    if (!a.encoderHiddenStates || !b.encoderHiddenStates) throw new Error('both halves of a guided batch need encoder states');
    if (a.encoderHiddenStates.length !== b.encoderHiddenStates.length) {
      throw new RangeError(
        `uncond and cond encoder states differ in size (${a.encoderHiddenStates.length} vs ${b.encoderHiddenStates.length}): encode both to the same [tokens, dim]`,
      );
    }
    const e = new Float32Array(a.encoderHiddenStates.length * 2);
    e.set(a.encoderHiddenStates, 0);
    e.set(b.encoderHiddenStates, a.encoderHiddenStates.length);
    out.encoderHiddenStates = e;
    const shape = b.encoderHiddenShape ?? a.encoderHiddenShape;
    if (shape) out.encoderHiddenShape = shape;
  }
  return out;
}

function std(x: NumArray, off: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) m += x[off + i]!;
  m /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[off + i]! - m) ** 2;
  // torch.std default (unbiased), as diffusers' rescale_noise_cfg uses; n = 1 falls back to 0.
  return n > 1 ? Math.sqrt(v / (n - 1)) : 0;
}

/**
 * Guidance rescale of `guided` toward the std of `cond`, per sample of `d` values (in place on a
 * copy): y = φ·y_g·std(y_c)/std(y_g) + (1 − φ)·y_g.
 */
export function rescaleGuided(guided: NumArray, cond: NumArray, batch: number, phi: number): NumArray {
  const out = guided.slice() as NumArray;
  if (phi === 0) return out;
  const d = guided.length / batch;
  for (let b = 0; b < batch; b++) {
    const off = b * d;
    const sg = std(guided, off, d);
    if (sg === 0) continue;
    const f = phi * (std(cond, off, d) / sg) + (1 - phi);
    for (let i = 0; i < d; i++) out[off + i] = guided[off + i]! * f;
  }
  return out;
}

/**
 * Wrap `model` so each `predict(x, t, batch, cond)` is one classifier-free-guided call: one batch
 * of 2B `[uncond; cond]`, combined as y_u + w·(y_c − y_u), then rescaled (see the module comment).
 */
export function classifierFreeGuidance(model: DiffusionModel, opts: GuidanceOptions): DiffusionModel {
  checkGuidanceOptions(opts);
  const w = opts.scale;
  const phi = opts.rescale ?? 0;
  const space = opts.rescaleSpace ?? 'output';
  return {
    predictionType: model.predictionType,
    sampleShape: model.sampleShape,
    async predict(x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
      const uncond = unconditionalFor(cond, batch, opts);
      const both = concatConditioning(uncond, cond ?? {}, batch);
      const xx = x instanceof Float64Array ? new Float64Array(2 * x.length) : new Float32Array(2 * x.length);
      xx.set(x, 0);
      xx.set(x, x.length);
      const out = await model.predict(xx, t, 2 * batch, both, options);
      if (out.length !== 2 * x.length) {
        throw new RangeError(`the guided batch returned ${out.length} values, expected 2 × ${x.length}: the model must accept batch ${2 * batch}`);
      }
      const yu = out.subarray(0, x.length) as NumArray;
      const yc = out.subarray(x.length) as NumArray;
      const guided = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) guided[i] = yu[i]! + w * (yc[i]! - yu[i]!);
      if (phi === 0) return guided;
      if (space === 'output') return rescaleGuided(guided, yc, batch, phi);
      const sch = opts.schedule!;
      const st = sch.timeOfModelTime(t);
      const a = sch.alpha(st);
      const s = sch.sigma(st);
      const type = model.predictionType;
      const g0 = convertPrediction(type, 'sample', guided, x, a, s);
      const c0 = convertPrediction(type, 'sample', yc, x, a, s);
      return convertPrediction('sample', type, rescaleGuided(g0, c0, batch, phi), x, a, s);
    },
  };
}
