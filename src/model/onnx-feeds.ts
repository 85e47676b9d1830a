/**
 * The feeds of one ONNX model call: from a state `x`, its {@link ModelCall} descriptor and its
 * conditioning to the onnxruntime tensors of each chunk — input names and element types from the
 * recognised signature, the batch split into chunks of at most `maxBatch` samples, chunks padded to
 * a fixed export batch, and the checks that the request is whole and finite before anything runs.
 *
 * Integer timesteps: the core hands the model fractional times on some grids (Karras, λ-uniform,
 * PFDiff's springboards). A model exported with an int64/int32 timestep can only take integers, so
 * the time is rounded to the nearest integer (halves up, `Math.round`) — what a discrete model was
 * trained on; a float timestep input receives the exact value.
 *
 * Timestep tensor: dims as declared — 0-d `[]` (one value for the batch, as Optimum's UNet
 * export declares), `[1]`, `[B]` or `[B, 1]`; an input of unknown shape gets `[B]` as diffusers
 * feeds it. The value is `scale · (model time | σ_t/α_t)` (the card's timestep encoding).
 *
 * Batching: a request of B samples runs in chunks of at most `maxBatch`; classifier-free guidance
 * arrives as one request of 2B (unconditional half, then conditional half) and therefore runs as
 * one batch when 2B ≤ maxBatch.
 * @packageDocumentation
 */
import type { Conditioning, ModelCall } from '../core/model.js';
import { firstNonFinite, type NumArray } from '../core/tensor.js';
import { toFloat16Bits } from './float16.js';
import type { OnnxExtraInput, OnnxInputBinding, OnnxSignature } from './onnx-signature.js';
import type { OrtElementType, OrtModuleLike, OrtTensorData, OrtTensorLike } from './ort-types.js';

/** What a {@link OnnxFeedBuilder} needs to know of its model. */
export interface OnnxFeedBuilderOptions {
  /** The onnxruntime module (only its `Tensor` constructor is used). */
  ort: Pick<OrtModuleLike, 'Tensor'>;
  signature: OnnxSignature;
  sampleShape: readonly number[];
  /** Label fed when the model takes class labels and the call gives none. */
  nullLabel: number | undefined;
  /** Largest chunk (ignored when the export fixes its batch). */
  maxBatch: number;
  /** Name used in error messages. */
  label: string;
}

/** The feeds of one chunk of a request. */
export interface OnnxChunk {
  /** 0-based chunk index within the request. */
  readonly index: number;
  /** Index of the first sample of the request in this chunk. */
  readonly start: number;
  /** Samples of the request in this chunk. */
  readonly rows: number;
  /** Rows fed: `rows`, or the export's fixed batch (the extra rows repeat the chunk's last sample). */
  readonly feedRows: number;
  /** Tensors by input name. */
  readonly feeds: Record<string, OrtTensorLike>;
}

/** A checked request: its size and, chunk by chunk, its feeds (built when asked for). */
export interface OnnxFeedRequest {
  /** Samples in the request. */
  readonly batch: number;
  /** The network's time input of the call. */
  readonly modelTime: number;
  /** Whether the state is float64 (the prediction keeps the state's precision). */
  readonly float64: boolean;
  readonly chunkCount: number;
  /** The feeds of chunk `k` (0 ≤ k < chunkCount). */
  chunk(k: number): OnnxChunk;
}

interface EncoderRows {
  data: Float32Array;
  shape: number[];
  rowSize: number;
}

/** Builds the feeds of ONNX model calls (see the module documentation). */
export class OnnxFeedBuilder {
  /** Largest chunk of one `session.run`. */
  readonly maxBatch: number;
  /** The batch the export fixes, when its sample input declares one. */
  readonly fixedBatch: number | undefined;
  /** Values in one sample. */
  readonly sampleSize: number;
  private readonly opts: OnnxFeedBuilderOptions;

  constructor(opts: OnnxFeedBuilderOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`maxBatch must be an integer ≥ 1, got ${opts.maxBatch}`);
    this.opts = opts;
    this.sampleSize = opts.sampleShape.reduce((a, b) => a * b, 1);
    const b0 = opts.signature.sample.shape[0];
    this.fixedBatch = typeof b0 === 'number' && b0 > 0 ? b0 : undefined;
    this.maxBatch = this.fixedBatch ?? opts.maxBatch;
  }

  /**
   * Check one call — batch, state size, a finite state and time, labels and encoder states — and
   * return its chunks. Throws before any tensor is built; class labels default to the null label
   * (unconditional) when the model takes them and `cond` gives none.
   */
  request(x: NumArray, call: ModelCall, cond: Conditioning | undefined): OnnxFeedRequest {
    const { label, sampleShape, signature } = this.opts;
    const { sampleSize } = this;
    const { batch, modelTime } = call;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be an integer ≥ 1, got ${batch}`);
    if (x.length !== batch * sampleSize) {
      throw new RangeError(`${label}: input has ${x.length} values, expected batch ${batch} × [${sampleShape.join(',')}] = ${batch * sampleSize}`);
    }
    if (!Number.isFinite(modelTime)) throw new RangeError(`${label}: timestep must be finite, got ${modelTime}`);
    const bad = firstNonFinite(x);
    if (bad >= 0) {
      throw new RangeError(
        `${label}: the state fed to the model holds ${x[bad]} (sample ${Math.floor(bad / sampleSize)}) at timestep ${modelTime}: ` +
          'an earlier step of the run diverged (try more steps or a lower guidance scale)',
      );
    }
    const labels = this.labelsFor(batch, cond);
    const encoder = this.encoderFor(batch, cond);
    const condRows = this.condInputsFor(batch, cond);
    const chunkCount = Math.ceil(batch / this.maxBatch);
    const chunk = (k: number): OnnxChunk => {
      if (!Number.isInteger(k) || k < 0 || k >= chunkCount) throw new RangeError(`chunk ${k} is out of range 0…${chunkCount - 1}`);
      const start = k * this.maxBatch;
      const rows = Math.min(this.maxBatch, batch - start);
      const feedRows = this.fixedBatch ?? rows;
      const feeds: Record<string, OrtTensorLike> = {};
      feeds[signature.sample.name] = this.floatTensor(signature.sample.dtype, padRows(x, start, rows, feedRows, sampleSize), [feedRows, ...sampleShape]);
      feeds[signature.timestep.name] = this.timestepTensor(call, feedRows);
      for (const extra of signature.extras ?? []) feeds[extra.binding.name] = this.extraTensor(extra, feedRows);
      if (signature.classLabels && labels) {
        feeds[signature.classLabels.name] = this.intTensor(signature.classLabels.dtype, padRows(labels, start, rows, feedRows, 1), [feedRows]);
      }
      if (signature.encoderHiddenStates && encoder) {
        feeds[signature.encoderHiddenStates.name] = this.floatTensor(
          signature.encoderHiddenStates.dtype,
          padRows(encoder.data, start, rows, feedRows, encoder.rowSize),
          [feedRows, ...encoder.shape],
        );
      }
      for (const c of condRows) {
        feeds[c.binding.name] = this.floatTensor(c.binding.dtype, padRows(c.data, start, rows, feedRows, c.rowSize), [feedRows, ...c.shape]);
      }
      return { index: k, start, rows, feedRows, feeds };
    };
    return { batch, modelTime, float64: x instanceof Float64Array, chunkCount, chunk };
  }

  private labelsFor(batch: number, cond: Conditioning | undefined): readonly number[] | undefined {
    const { label, signature, nullLabel } = this.opts;
    const given = cond?.classLabels;
    if (!signature.classLabels) {
      if (given && given.some((l) => l !== nullLabel)) {
        throw new Error(`${label} is not class-conditional (no class_labels input): sample it without a class or guidance`);
      }
      return undefined;
    }
    if (given === undefined) {
      if (nullLabel === undefined) {
        throw new Error(`${label} takes class labels but no label was given and no null label is known; pass classLabels or a card with null_label`);
      }
      return new Array<number>(batch).fill(nullLabel);
    }
    if (given.length !== batch) throw new RangeError(`${label}: ${given.length} class labels for a batch of ${batch}; give one per sample`);
    for (const l of given) if (!Number.isInteger(l) || l < 0) throw new RangeError(`${label}: class label ${l} is not a non-negative integer`);
    return given;
  }

  private encoderFor(batch: number, cond: Conditioning | undefined): EncoderRows | undefined {
    const { label } = this.opts;
    const binding = this.opts.signature.encoderHiddenStates;
    if (!binding) {
      if (cond?.encoderHiddenStates) throw new Error(`${label} takes no encoder_hidden_states: drop the text conditioning`);
      return undefined;
    }
    const data = cond?.encoderHiddenStates;
    const declared = binding.shape.slice(1);
    const fixed = declared.length > 0 && declared.every((d) => typeof d === 'number' && d > 0);
    const shape = cond?.encoderHiddenShape ? [...cond.encoderHiddenShape] : fixed ? (declared as number[]) : undefined;
    if (!data) {
      throw new Error(
        `${label} needs ${binding.name} [batch,${declared.join(',') || 'tokens,dim'}] (Stable-Diffusion-style conditioning): pass cond.encoderHiddenStates and encoderHiddenShape`,
      );
    }
    if (!shape) throw new Error(`${label}: ${binding.name} has symbolic dims [${binding.shape.join(',')}]; pass cond.encoderHiddenShape = [tokens, dim]`);
    if (declared.length === shape.length && declared.some((d, i) => typeof d === 'number' && d > 0 && d !== shape[i])) {
      throw new Error(`${label}: ${binding.name} must be [batch,${declared.join(',')}], got per-sample shape [${shape.join(',')}]`);
    }
    const rowSize = shape.reduce((a, b) => a * b, 1);
    if (data.length !== batch * rowSize) {
      throw new RangeError(
        `${label}: encoderHiddenStates has ${data.length} values, expected batch ${batch} × [${shape.join(',')}] = ${batch * rowSize}`,
      );
    }
    return { data, shape, rowSize };
  }

  /** The rows of each `extra` input (card role `extra`) from `cond.extra`, checked against the declared shape. */
  private condInputsFor(batch: number, cond: Conditioning | undefined): (EncoderRows & { binding: OnnxInputBinding })[] {
    const { label } = this.opts;
    const bindings = this.opts.signature.condInputs ?? [];
    const given = cond?.extra ?? {};
    const names = new Set(bindings.map((b) => b.name));
    for (const n of Object.keys(given)) {
      if (!names.has(n)) {
        throw new Error(
          `${label} has no input "${n}" for cond.extra.${n}` +
            (names.size ? ` (its extra inputs: ${[...names].join(', ')})` : ' (it takes no extra conditioning inputs)') +
            ': drop it or load the model it was made for',
        );
      }
    }
    return bindings.map((binding) => {
      const v = given[binding.name];
      const declared = binding.shape.slice(1);
      if (!v) {
        throw new Error(
          `${label} needs input ${binding.name} [batch,${declared.join(',')}] per sample: pass cond.extra.${binding.name} = { data, shape } (one row per sample)`,
        );
      }
      const shape = [...v.shape];
      const mismatch =
        binding.shapeKnown !== false &&
        binding.shape.length > 0 &&
        (declared.length !== shape.length || declared.some((d, i) => typeof d === 'number' && d > 0 && d !== shape[i]));
      if (mismatch) {
        throw new RangeError(
          `${label}: input ${binding.name} is declared [${binding.shape.join(',')}], got per-sample shape [${shape.join(',')}]: give rows of [${declared.join(',')}]`,
        );
      }
      const rowSize = shape.reduce((a, b) => a * b, 1);
      if (v.data.length !== batch * rowSize) {
        throw new RangeError(
          `${label}: cond.extra.${binding.name} has ${v.data.length} values, expected batch ${batch} × [${shape.join(',')}] = ${batch * rowSize}`,
        );
      }
      const bad = firstNonFinite(v.data);
      if (bad >= 0)
        throw new RangeError(`${label}: cond.extra.${binding.name} holds ${v.data[bad]} (sample ${Math.floor(bad / rowSize)}): give finite values`);
      return { binding, data: v.data, shape, rowSize };
    });
  }

  private floatTensor(dtype: OrtElementType, values: ArrayLike<number>, dims: number[]): OrtTensorLike {
    let data: OrtTensorData;
    if (dtype === 'float16') data = toFloat16Bits(values);
    else if (dtype === 'float64') data = values instanceof Float64Array ? values : Float64Array.from(values);
    else data = values instanceof Float32Array ? values : Float32Array.from(values);
    return new this.opts.ort.Tensor(dtype, data, dims);
  }

  private intTensor(dtype: OrtElementType, values: ArrayLike<number>, dims: number[]): OrtTensorLike {
    if (dtype === 'int32') return new this.opts.ort.Tensor('int32', Int32Array.from(values), dims);
    const data = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
    return new this.opts.ort.Tensor('int64', data, dims);
  }

  /** The value fed as the timestep: `scale · (model time | σ_t/α_t)`. */
  private timeValue(call: ModelCall): number {
    const enc = this.opts.signature.timestepEncoding;
    if (!enc) return call.modelTime;
    const base = enc.time === 'sigma' ? call.sigma / call.alpha : call.modelTime;
    return base * enc.scale;
  }

  /** The timestep tensor, dims as declared (see the module comment). */
  private timestepTensor(call: ModelCall, n: number): OrtTensorLike {
    const b = this.opts.signature.timestep;
    const dims = b.shapeKnown ? declaredDims(b.shape, n) : [n];
    const count = dims.reduce((p, d) => p * d, 1);
    const t = this.timeValue(call);
    if (b.dtype === 'int64' || b.dtype === 'int32') {
      // Integer-time export: the nearest integer time (see the module comment).
      return this.intTensor(b.dtype, new Array<number>(count).fill(Math.round(t)), dims);
    }
    return this.floatTensor(b.dtype, new Array<number>(count).fill(t), dims);
  }

  /** A constant or derived input: its values repeated per row when the first declared dim is symbolic. */
  private extraTensor(extra: OnnxExtraInput, n: number): OrtTensorLike {
    const { sampleShape, label } = this.opts;
    const b = extra.binding;
    const dims = declaredDims(b.shape, n);
    const count = dims.reduce((p, d) => p * d, 1);
    let row: readonly number[];
    if (extra.role === 'constant') row = extra.value ?? [];
    else row = [sampleShape[sampleShape.length - (extra.role === 'image_height' ? 2 : 1)] ?? 0];
    if (row.length === 0 || count % row.length !== 0) {
      throw new Error(
        `${label}: input "${b.name}" is [${b.shape.join(',')}] (${count} values per call) but the card gives ${row.length} value(s); ` +
          'give a value list that fills one row (docs/model-card.md)',
      );
    }
    const values = Array.from({ length: count }, (_, i) => row[i % row.length]!);
    if (b.dtype === 'int64' || b.dtype === 'int32') return this.intTensor(b.dtype, values, dims);
    return this.floatTensor(b.dtype, values, dims);
  }
}

/** Concrete dims of a declared shape: the first symbolic (or -1) dim is the batch `n`, the others must be fixed. */
function declaredDims(shape: ReadonlyArray<number | string>, n: number): number[] {
  return shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? n : 1));
}

/** Rows [start, start+n) of a row-major array with `rowSize` values per row, padded to `rows` rows by repeating the last. */
function padRows(src: ArrayLike<number>, start: number, n: number, rows: number, rowSize: number): ArrayLike<number> {
  if (src.length === n * rowSize && start === 0 && rows === n) return src;
  const out = src instanceof Float64Array ? new Float64Array(rows * rowSize) : new Float32Array(rows * rowSize);
  if (ArrayBuffer.isView(src)) {
    out.set((src as Float32Array).subarray(start * rowSize, (start + n) * rowSize));
  } else {
    for (let i = 0; i < n * rowSize; i++) out[i] = src[start * rowSize + i]!;
  }
  for (let r = n; r < rows; r++) out.copyWithin(r * rowSize, (n - 1) * rowSize, n * rowSize);
  return out;
}
