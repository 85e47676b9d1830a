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
 * guided x̂0 as the paper writes it (then converted back to the model's type at the call's α, σ).
 *
 * Non-finite values: the wrapped model's 2B output is scanned first (a NaN there is the model's
 * fault), then the guided combination (finite inputs times a large w overflow: the scale's fault).
 * @packageDocumentation
 */
import type { Conditioning, ConditioningInput, DiffusionModel, ModelCall, ModelCallOptions } from './model.js';
import { sampleSize } from './model.js';
import { convertPrediction } from './prediction.js';
import { firstNonFinite, type NumArray } from './tensor.js';

/**
 * The largest guidance scale |w| accepted. Published settings stay below ~20 (Ho & Salimans 2022
 * sweep w ≤ 4 in their w+1 form; Stable Diffusion uses 7.5). A bound is needed because the guided
 * output y_u + w·(y_c − y_u) grows linearly in w: for an ε-model |y_c − y_u| is O(1), and the solver
 * turns ε̂ into x̂0 = (x − σ·ε̂)/α, a further factor σ/α (≈ 160 at the noisiest step of a 1000-step
 * linear schedule). At |w| = 1e6 the first x̂0 is already ~1e8 — no image is left — and every later
 * call, fed that state, can multiply the error by w again, so a handful of steps leave the float32
 * range (3.4e38). Scales above the bound are refused before the run instead of failing mid-run.
 */
export const MAX_GUIDANCE_SCALE = 1e6;

/** Options of {@link classifierFreeGuidance}. */
export interface GuidanceOptions {
  /** Guidance scale w (1 = conditional only, 0 = unconditional only). */
  scale: number;
  /** Guidance rescale φ ∈ [0, 1] (Lin et al. 2023 use 0.7). Default 0 (off). */
  rescale?: number;
  /**
   * Where the rescale acts: `output` (the model's own prediction type, as diffusers does; default)
   * or `x0` (the guided x̂0, as in the paper, at the call's α and σ).
   */
  rescaleSpace?: 'output' | 'x0';
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
    throw new RangeError(
      `guidance scale must be a finite number ≥ 0 (0 = unconditional, 1 = off; e.g. 2 or 7.5), got ${String(opts.scale)}: pass a scale ≥ 0`,
    );
  }
  if (Math.abs(opts.scale) > MAX_GUIDANCE_SCALE) {
    throw new RangeError(
      `guidance scale ${opts.scale} is too large: |scale| must be at most ${MAX_GUIDANCE_SCALE} (typical values are 1–10); ` +
        'the guided output y_u + w·(y_c − y_u) grows with the scale and would overflow float32 within a few steps — pass a smaller scale',
    );
  }
  const r = opts.rescale ?? 0;
  if (!(r >= 0 && r <= 1)) throw new RangeError(`guidance rescale must lie in [0, 1] (Lin et al. use 0.7), got ${r}`);
  if (opts.rescaleSpace !== undefined && opts.rescaleSpace !== 'output' && opts.rescaleSpace !== 'x0') {
    throw new RangeError(`guidance rescaleSpace must be 'output' or 'x0', got "${String(opts.rescaleSpace)}"`);
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
    if (u.extra) {
      const extra: Record<string, ConditioningInput> = {};
      for (const [name, v] of Object.entries(u.extra)) {
        const per = sampleSize(v.shape);
        extra[name] = { data: repeatRows(v.data, v.data.length / per, batch, `uncond.extra.${name}`), shape: v.shape };
      }
      out.extra = extra;
    }
    return out;
  }
  if (cond?.extra && Object.keys(cond.extra).length > 0) {
    throw new Error(
      `classifier-free guidance of a model with extra inputs (${Object.keys(cond.extra).join(', ')}) needs their unconditional rows: pass guidance.uncond with the same extra inputs`,
    );
  }
  if (cond?.encoderHiddenStates) {
    throw new Error(
      "classifier-free guidance of a text-conditioned model needs explicit uncond conditioning (e.g. the empty prompt's encoder states): pass guidance.uncond",
    );
  }
  if (cond?.classLabels) {
    if (opts.nullLabel === undefined) {
      throw new Error(
        "classifier-free guidance with class labels needs the model's null label: pass guidance.nullLabel (from the model card) or guidance.uncond",
      );
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
      throw new RangeError(
        `class labels: expected ${batch} per half, got ${a.classLabels.length} and ${b.classLabels.length}: give one label per sample`,
      );
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
  if (a.extra || b.extra) {
    const ka = Object.keys(a.extra ?? {}).sort();
    const kb = Object.keys(b.extra ?? {}).sort();
    if (ka.join(',') !== kb.join(',')) {
      throw new Error(
        `both halves of a guided batch need the same extra inputs: uncond has [${ka.join(', ')}], cond has [${kb.join(', ')}] — give uncond the same inputs`,
      );
    }
    const extra: Record<string, ConditioningInput> = {};
    for (const name of ka) {
      const u = a.extra![name]!;
      const c = b.extra![name]!;
      const per = sampleSize(c.shape);
      if (sampleSize(u.shape) !== per || u.data.length !== per * batch || c.data.length !== per * batch) {
        throw new RangeError(
          `extra input ${name}: expected ${batch} rows of [${c.shape.join(',')}] per half, got ${u.data.length} (uncond, [${u.shape.join(',')}]) ` +
            `and ${c.data.length} (cond) values: give one row per sample`,
        );
      }
      const d = new Float32Array(2 * per * batch);
      d.set(u.data, 0);
      d.set(c.data, per * batch);
      extra[name] = { data: d, shape: c.shape };
    }
    out.extra = extra;
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
 * Wrap `model` so each `predict(x, call, cond)` is one classifier-free-guided call: one batch of
 * 2B `[uncond; cond]` (the same call descriptor with `batch` doubled), combined as
 * y_u + w·(y_c − y_u), then rescaled (see the module comment).
 */
export function classifierFreeGuidance(model: DiffusionModel, opts: GuidanceOptions): DiffusionModel {
  checkGuidanceOptions(opts);
  const w = opts.scale;
  const phi = opts.rescale ?? 0;
  const space = opts.rescaleSpace ?? 'output';
  return {
    predictionType: model.predictionType,
    sampleShape: model.sampleShape,
    async predict(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
      const { batch } = call;
      const uncond = unconditionalFor(cond, batch, opts);
      const both = concatConditioning(uncond, cond ?? {}, batch);
      const xx = x instanceof Float64Array ? new Float64Array(2 * x.length) : new Float32Array(2 * x.length);
      xx.set(x, 0);
      xx.set(x, x.length);
      const out = await model.predict(xx, { ...call, batch: 2 * batch }, both, options);
      if (out.length !== 2 * x.length) {
        throw new RangeError(`the guided batch returned ${out.length} values, expected 2 × ${x.length}: the model must accept batch ${2 * batch}`);
      }
      const badOut = firstNonFinite(out);
      if (badOut >= 0) {
        const v = out[badOut]!;
        const half = badOut < x.length ? 'unconditional' : 'conditional';
        throw new Error(
          `model returned ${Number.isNaN(v) ? 'NaN' : v} at t=${call.t} (model time ${call.modelTime}, element ${badOut % x.length} of the ${half} half of the guided batch): check the model file/inputs`,
        );
      }
      const yu = out.subarray(0, x.length) as NumArray;
      const yc = out.subarray(x.length) as NumArray;
      const guided = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) guided[i] = yu[i]! + w * (yc[i]! - yu[i]!);
      let result: NumArray = guided;
      if (phi > 0 && space === 'output') result = rescaleGuided(guided, yc, batch, phi);
      else if (phi > 0) {
        const { alpha: a, sigma: s } = call;
        const type = model.predictionType;
        const g0 = convertPrediction(type, 'sample', guided, x, a, s);
        const c0 = convertPrediction(type, 'sample', yc, x, a, s);
        result = convertPrediction('sample', type, rescaleGuided(g0, c0, batch, phi), x, a, s);
      }
      const bad = firstNonFinite(result);
      if (bad >= 0) {
        const precision = x instanceof Float64Array ? 'float64' : 'float32';
        throw new Error(
          `classifier-free guidance overflowed at t=${call.t} (element ${bad}): the model's outputs are finite ` +
            `(y_u = ${yu[bad]}, y_c = ${yc[bad]}) but the guided combination y_u + w·(y_c − y_u) with guidance scale w = ${w}` +
            `${phi > 0 ? ` and rescale ${phi}` : ''} is ${result[bad]} in ${precision}: lower the guidance scale (typical values are 1–10)`,
        );
      }
      return result;
    },
  };
}
