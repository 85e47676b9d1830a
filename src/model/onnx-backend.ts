/**
 * A {@link DiffusionModel} backed by an ONNX network run with onnxruntime.
 *
 * The onnxruntime module is injected (`onnxruntime-node` in Node.js, `onnxruntime-web` in a
 * browser), and this file uses only their shared API, so it runs in both; reading files from disk
 * lives in `load-node.ts`.
 *
 * Signatures recognised (diffusers' `UNet2DModel` / `UNet2DConditionModel` exports and common
 * alternates):
 *   sample | x | x_t | latent(s) | noisy_input            [B, ...sampleShape]   float32 | float16
 *   timestep | timesteps | t | time                       [B] | [1] | []        int64 | int32 | float32 | float16
 *   class_labels | y | labels | label                     [B]                   int64 | int32
 *   encoder_hidden_states | context                       [B, tokens, dim]      float32 | float16
 *   → out_sample (else the first output)                  [B, ...sampleShape]
 * Input dtypes come from the session's `inputMetadata` (onnxruntime ≥ 1.20), else from the model
 * card's `inputs`, else the defaults above (first listed).
 *
 * Integer timesteps: the core hands the model fractional times on some grids (Karras, λ-uniform,
 * PFDiff's springboards). A model exported with an int64/int32 timestep can only take integers, so
 * the time is rounded to the nearest integer (halves up, `Math.round`) — what a discrete model was
 * trained on; a float timestep input receives the exact value.
 *
 * Batching: a request of B samples runs in chunks of at most `maxBatch`; classifier-free guidance
 * arrives as one request of 2B (cond half, uncond half) and therefore runs as one batch when
 * 2B ≤ maxBatch. Per-request wall time is recorded in {@link OnnxDiffusionModel.stats}.
 * @packageDocumentation
 */
import type { Conditioning, DiffusionModel, ModelCallOptions, PredictionType } from '../core/model.js';
import type { NumArray } from '../core/tensor.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import type { ModelCard } from './model-card.js';
import type {
  OrtElementType,
  OrtModuleLike,
  OrtSessionLike,
  OrtSessionOptionsLike,
  OrtTensorData,
  OrtTensorLike,
  OrtValueMetadataLike,
} from './ort-types.js';

/** Options of {@link OnnxDiffusionModel.create}. */
export interface OnnxModelOptions {
  /** The onnxruntime module: `import * as ort from 'onnxruntime-node'` (or `onnxruntime-web`). */
  ort: OrtModuleLike;
  /** The ONNX model: its bytes, or a path/URL that onnxruntime itself opens. */
  model: string | Uint8Array;
  /** The model card (see `model-card.ts`); supplies sample shape, null label, dtypes when the model does not. */
  card?: ModelCard;
  /** Name used in error messages (default: the path, or the card's name). */
  label?: string;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, usually all cores). */
  threads?: number;
  /** Largest batch sent to one `session.run` (default 64). */
  maxBatch?: number;
  /** onnxruntime execution providers, e.g. `['cpu']` or `['webgpu', 'wasm']` (default: onnxruntime's). */
  executionProviders?: readonly unknown[];
  /** Shape of one sample; overrides the card (needed when neither the card nor the model declares it). */
  sampleShape?: readonly number[];
  /** Overrides the card's prediction type (default `epsilon`). */
  predictionType?: PredictionType;
  /** Overrides the card's null label. */
  nullLabel?: number;
}

/** Which model input plays which role, and its element type and declared shape. */
export interface OnnxInputBinding {
  readonly name: string;
  readonly dtype: OrtElementType;
  /** Declared shape (numbers, or strings for symbolic dimensions); empty when unknown. */
  readonly shape: ReadonlyArray<number | string>;
}

/** The recognised signature of a loaded model. */
export interface OnnxSignature {
  readonly sample: OnnxInputBinding;
  readonly timestep: OnnxInputBinding;
  readonly classLabels?: OnnxInputBinding;
  readonly encoderHiddenStates?: OnnxInputBinding;
  /** Name of the output read as the prediction. */
  readonly output: string;
}

/** Call counts and timings of an {@link OnnxDiffusionModel}. */
export interface OnnxModelStats {
  /** `predict` calls (one per guided or unguided NFE). */
  readonly calls: number;
  /** `session.run` invocations (more than `calls` when requests are split into chunks). */
  readonly runs: number;
  /** Samples pushed through the network (a guided call of B images counts 2B). */
  readonly images: number;
  /** Wall time of each `predict` call, in ms. */
  readonly callMs: readonly number[];
  /** Sum of `callMs`. */
  readonly totalMs: number;
}

const SAMPLE_NAMES = ['sample', 'x', 'x_t', 'xt', 'latent', 'latents', 'noisy_input', 'input'];
const TIMESTEP_NAMES = ['timestep', 'timesteps', 't', 'time'];
const CLASS_NAMES = ['class_labels', 'class_label', 'y', 'labels', 'label', 'classes'];
const ENCODER_NAMES = ['encoder_hidden_states', 'context', 'encoder_states', 'text_embeddings'];
const OUTPUT_NAMES = ['out_sample', 'sample_out', 'out', 'output', 'eps', 'noise_pred'];

const FLOAT_TYPES: readonly OrtElementType[] = ['float32', 'float16', 'float64'];
const INT_TYPES: readonly OrtElementType[] = ['int64', 'int32'];
const TIME_TYPES: readonly OrtElementType[] = ['float32', 'float16', 'int64', 'int32', 'float64'];

function pickName(names: readonly string[], wanted: readonly string[]): string | undefined {
  for (const w of wanted) {
    const hit = names.find((n) => n === w) ?? names.find((n) => n.toLowerCase() === w);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function describeSignature(session: OrtSessionLike): string {
  const meta = new Map((session.inputMetadata ?? []).map((m) => [m.name, m]));
  return session.inputNames
    .map((n) => {
      const m = meta.get(n);
      return m && m.isTensor ? `${n}: ${m.type ?? '?'}[${(m.shape ?? []).join(',')}]` : n;
    })
    .join(', ');
}

/** A diffusion network in ONNX form, run with an injected onnxruntime. */
export class OnnxDiffusionModel implements DiffusionModel {
  readonly predictionType: PredictionType;
  readonly sampleShape: readonly number[];
  /** The recognised inputs and output. */
  readonly signature: OnnxSignature;
  /** Largest batch of one `session.run`. */
  readonly maxBatch: number;
  /** Label meaning "unconditional", when the model is class-conditional. */
  readonly nullLabel: number | undefined;
  /** Name used in messages. */
  readonly label: string;
  private readonly ort: OrtModuleLike;
  private readonly session: OrtSessionLike;
  private readonly sampleSize: number;
  private readonly fixedBatch: number | undefined;
  private callMsList: number[] = [];
  private runCount = 0;
  private imageCount = 0;

  private constructor(
    ort: OrtModuleLike,
    session: OrtSessionLike,
    signature: OnnxSignature,
    sampleShape: readonly number[],
    predictionType: PredictionType,
    nullLabel: number | undefined,
    maxBatch: number,
    label: string,
  ) {
    this.ort = ort;
    this.session = session;
    this.signature = signature;
    this.sampleShape = sampleShape;
    this.sampleSize = sampleShape.reduce((a, b) => a * b, 1);
    this.predictionType = predictionType;
    this.nullLabel = nullLabel;
    this.label = label;
    const b0 = signature.sample.shape[0];
    this.fixedBatch = typeof b0 === 'number' && b0 > 0 ? b0 : undefined;
    this.maxBatch = this.fixedBatch ?? maxBatch;
  }

  /**
   * Load a model and recognise its signature. Throws a clear error for a file that is not ONNX,
   * inputs it cannot map (listing what the model has and what is needed), or a sample shape that
   * contradicts the card or the `sampleShape` option.
   */
  static async create(opts: OnnxModelOptions): Promise<OnnxDiffusionModel> {
    const label = opts.label ?? (typeof opts.model === 'string' ? opts.model : (opts.card?.name ?? 'ONNX model'));
    const maxBatch = opts.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be an integer ≥ 1, got ${maxBatch}`);
    if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 0)) {
      throw new RangeError(`threads must be a non-negative integer (0 = onnxruntime's default), got ${opts.threads}`);
    }
    const sessionOptions: OrtSessionOptionsLike = {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
    };
    let session: OrtSessionLike;
    try {
      session =
        typeof opts.model === 'string'
          ? await opts.ort.InferenceSession.create(opts.model, sessionOptions)
          : await opts.ort.InferenceSession.create(opts.model, sessionOptions);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(
        `${label} is not a valid ONNX model or could not be loaded (onnxruntime: ${msg.trim()}); ` +
          're-export it (torch.onnx.export, opset ≥ 14) or check that the file is complete',
      );
    }
    const signature = OnnxDiffusionModel.recognise(session, label, opts.card);
    const sampleShape = OnnxDiffusionModel.resolveSampleShape(signature.sample, label, opts.sampleShape ?? opts.card?.sampleShape);
    if (signature.encoderHiddenStates && signature.encoderHiddenStates.shape.length !== 0 && signature.encoderHiddenStates.shape.length !== 3) {
      throw new Error(`${label}: ${signature.encoderHiddenStates.name} must be [batch, tokens, dim], the model declares [${signature.encoderHiddenStates.shape.join(',')}]`);
    }
    const predictionType = opts.predictionType ?? opts.card?.predictionType ?? 'epsilon';
    const nullLabel = opts.nullLabel ?? opts.card?.nullLabel;
    return new OnnxDiffusionModel(opts.ort, session, signature, sampleShape, predictionType, nullLabel, maxBatch, label);
  }

  private static recognise(session: OrtSessionLike, label: string, card: ModelCard | undefined): OnnxSignature {
    const names = session.inputNames;
    const meta = new Map<string, OrtValueMetadataLike>((session.inputMetadata ?? []).map((m) => [m.name, m]));
    const have = describeSignature(session);
    const need =
      'sample [B,C,H,W] float, timestep [B], and optionally class_labels [B] int64 or encoder_hidden_states [B,tokens,dim]';
    const bind = (name: string, role: string, allowed: readonly OrtElementType[]): OnnxInputBinding => {
      const m = meta.get(name);
      const fromCard = card?.inputs?.[name];
      const t = (m && m.isTensor ? m.type : undefined) ?? fromCard?.dtype ?? allowed[0]!;
      if (!(allowed as readonly string[]).includes(t)) {
        throw new Error(`${label}: input "${name}" (${role}) has element type ${t}; rediffuse supports ${allowed.join(', ')} there — re-export the model with one of those`);
      }
      const shape = (m && m.isTensor && m.shape && m.shape.length ? m.shape : undefined) ?? fromCard?.shape ?? [];
      return { name, dtype: t as OrtElementType, shape };
    };
    const sampleName = pickName(names, SAMPLE_NAMES);
    const timeName = pickName(names, TIMESTEP_NAMES);
    if (sampleName === undefined || timeName === undefined) {
      const missing = [sampleName === undefined ? 'sample' : '', timeName === undefined ? 'timestep' : ''].filter(Boolean).join(' and ');
      throw new Error(`${label}: cannot find the ${missing} input. The model has inputs (${have}); rediffuse needs ${need}. Rename the inputs when exporting (torch.onnx.export input_names=[...])`);
    }
    const classLabelName = pickName(names, CLASS_NAMES);
    const encoderName = pickName(names, ENCODER_NAMES);
    const used = new Set([sampleName, timeName, classLabelName, encoderName].filter((n): n is string => n !== undefined));
    const extra = names.filter((n) => !used.has(n));
    if (extra.length > 0) {
      throw new Error(`${label}: input(s) ${extra.join(', ')} are not understood. The model has inputs (${have}); rediffuse needs ${need}. Export a model with that signature`);
    }
    const outNames = session.outputNames;
    if (outNames.length === 0) throw new Error(`${label}: the model has no outputs; re-export it`);
    const output = pickName(outNames, OUTPUT_NAMES) ?? outNames[0]!;
    return {
      sample: bind(sampleName, 'sample', FLOAT_TYPES),
      timestep: bind(timeName, 'timestep', TIME_TYPES),
      ...(classLabelName !== undefined ? { classLabels: bind(classLabelName, 'class labels', INT_TYPES) } : {}),
      ...(encoderName !== undefined ? { encoderHiddenStates: bind(encoderName, 'encoder hidden states', FLOAT_TYPES) } : {}),
      output,
    };
  }

  private static resolveSampleShape(sample: OnnxInputBinding, label: string, wanted: readonly number[] | undefined): number[] {
    const declared = sample.shape.slice(1);
    if (sample.shape.length > 0 && wanted !== undefined) {
      const clash =
        declared.length !== wanted.length || declared.some((d, i) => typeof d === 'number' && d > 0 && d !== wanted[i]);
      if (clash) {
        throw new Error(
          `${label}: the model's ${sample.name} input is [${sample.shape.join(',')}] but the card/options give a sample shape of [${wanted.join(',')}]; ` +
            'use the card that belongs to this model, or pass the right sample shape',
        );
      }
    }
    if (wanted !== undefined) return [...wanted];
    if (declared.length > 0 && declared.every((d) => typeof d === 'number' && d > 0)) return declared as number[];
    throw new Error(
      `${label}: the model does not declare a fixed sample shape (${sample.name} is [${sample.shape.join(',')}]); give one with a model card (sample_size) or the sampleShape option`,
    );
  }

  /** Call counts and wall times so far. */
  get stats(): OnnxModelStats {
    const callMs = this.callMsList.slice();
    return {
      calls: callMs.length,
      runs: this.runCount,
      images: this.imageCount,
      callMs,
      totalMs: callMs.reduce((a, b) => a + b, 0),
    };
  }

  /** Zero the counters of {@link OnnxDiffusionModel.stats}. */
  resetStats(): void {
    this.callMsList = [];
    this.runCount = 0;
    this.imageCount = 0;
  }

  /** Free the onnxruntime session. */
  async release(): Promise<void> {
    await this.session.release?.();
  }

  /**
   * One network evaluation on a batch laid out `[batch, ...sampleShape]` at model time `t`.
   * Class labels default to the null label (unconditional) when the model takes them and `cond`
   * gives none. The result has the precision of `x`.
   */
  async predict(x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    const started = performance.now();
    const { sampleSize } = this;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be an integer ≥ 1, got ${batch}`);
    if (x.length !== batch * sampleSize) {
      throw new RangeError(`${this.label}: input has ${x.length} values, expected batch ${batch} × [${this.sampleShape.join(',')}] = ${batch * sampleSize}`);
    }
    if (!Number.isFinite(t)) throw new RangeError(`${this.label}: timestep must be finite, got ${t}`);
    const labels = this.labelsFor(batch, cond);
    const encoder = this.encoderFor(batch, cond);
    const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
    for (let start = 0; start < batch; start += this.maxBatch) {
      options?.signal?.throwIfAborted();
      const n = Math.min(this.maxBatch, batch - start);
      const feedN = this.fixedBatch ?? n; // a model exported with a fixed batch gets padded chunks
      const feeds: Record<string, OrtTensorLike> = {};
      feeds[this.signature.sample.name] = this.floatTensor(this.signature.sample.dtype, padRows(x, start, n, feedN, sampleSize), [feedN, ...this.sampleShape]);
      feeds[this.signature.timestep.name] = this.timestepTensor(t, feedN);
      if (this.signature.classLabels && labels) {
        feeds[this.signature.classLabels.name] = this.intTensor(this.signature.classLabels.dtype, padRows(labels, start, n, feedN, 1), [feedN]);
      }
      if (this.signature.encoderHiddenStates && encoder) {
        feeds[this.signature.encoderHiddenStates.name] = this.floatTensor(
          this.signature.encoderHiddenStates.dtype,
          padRows(encoder.data, start, n, feedN, encoder.rowSize),
          [feedN, ...encoder.shape],
        );
      }
      const results = await this.session.run(feeds);
      this.runCount++;
      this.imageCount += n;
      const y = results[this.signature.output];
      if (!y) throw new Error(`${this.label}: onnxruntime returned no "${this.signature.output}" output`);
      const values = readFloats(y, this.label);
      if (values.length < n * sampleSize) {
        throw new Error(
          `${this.label}: output ${this.signature.output} has shape [${y.dims.join(',')}], expected [${feedN},${this.sampleShape.join(',')}]; the model's output does not match its sample`,
        );
      }
      for (let i = 0; i < n * sampleSize; i++) {
        const v = values[i]!;
        if (!Number.isFinite(v)) {
          throw new Error(
            `${this.label}: the model returned ${v} at timestep ${t} (sample ${start + Math.floor(i / sampleSize)}); the export or its weights are broken, or its timestep/label inputs are out of range`,
          );
        }
        out[start * sampleSize + i] = v;
      }
      for (const v of Object.values(results)) v.dispose?.();
    }
    this.callMsList.push(performance.now() - started);
    return out;
  }

  private labelsFor(batch: number, cond: Conditioning | undefined): readonly number[] | undefined {
    const given = cond?.classLabels;
    if (!this.signature.classLabels) {
      if (given && given.some((l) => l !== this.nullLabel)) {
        throw new Error(`${this.label} is not class-conditional (no class_labels input): sample it without a class or guidance`);
      }
      return undefined;
    }
    if (given === undefined) {
      if (this.nullLabel === undefined) {
        throw new Error(`${this.label} takes class labels but no label was given and no null label is known; pass classLabels or a card with null_label`);
      }
      return new Array<number>(batch).fill(this.nullLabel);
    }
    if (given.length !== batch) throw new RangeError(`${this.label}: ${given.length} class labels for a batch of ${batch}; give one per sample`);
    for (const l of given) if (!Number.isInteger(l) || l < 0) throw new RangeError(`${this.label}: class label ${l} is not a non-negative integer`);
    return given;
  }

  private encoderFor(batch: number, cond: Conditioning | undefined): { data: Float32Array; shape: number[]; rowSize: number } | undefined {
    const binding = this.signature.encoderHiddenStates;
    if (!binding) {
      if (cond?.encoderHiddenStates) throw new Error(`${this.label} takes no encoder_hidden_states: drop the text conditioning`);
      return undefined;
    }
    const data = cond?.encoderHiddenStates;
    const declared = binding.shape.slice(1);
    const shape = cond?.encoderHiddenShape ? [...cond.encoderHiddenShape] : declared.every((d) => typeof d === 'number' && d > 0) && declared.length > 0 ? (declared as number[]) : undefined;
    if (!data) {
      throw new Error(
        `${this.label} needs ${binding.name} [batch,${declared.join(',') || 'tokens,dim'}] (Stable-Diffusion-style conditioning): pass cond.encoderHiddenStates and encoderHiddenShape`,
      );
    }
    if (!shape) throw new Error(`${this.label}: ${binding.name} has symbolic dims [${binding.shape.join(',')}]; pass cond.encoderHiddenShape = [tokens, dim]`);
    if (declared.length === shape.length && declared.some((d, i) => typeof d === 'number' && d > 0 && d !== shape[i])) {
      throw new Error(`${this.label}: ${binding.name} must be [batch,${declared.join(',')}], got per-sample shape [${shape.join(',')}]`);
    }
    const rowSize = shape.reduce((a, b) => a * b, 1);
    if (data.length !== batch * rowSize) {
      throw new RangeError(`${this.label}: encoderHiddenStates has ${data.length} values, expected batch ${batch} × [${shape.join(',')}] = ${batch * rowSize}`);
    }
    return { data, shape, rowSize };
  }

  private floatTensor(dtype: OrtElementType, values: ArrayLike<number>, dims: number[]): OrtTensorLike {
    let data: OrtTensorData;
    if (dtype === 'float16') data = toFloat16Bits(values);
    else if (dtype === 'float64') data = values instanceof Float64Array ? values : Float64Array.from(values);
    else data = values instanceof Float32Array ? values : Float32Array.from(values);
    return new this.ort.Tensor(dtype, data, dims);
  }

  private intTensor(dtype: OrtElementType, values: ArrayLike<number>, dims: number[]): OrtTensorLike {
    if (dtype === 'int32') return new this.ort.Tensor('int32', Int32Array.from(values), dims);
    const data = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
    return new this.ort.Tensor('int64', data, dims);
  }

  /** The timestep tensor: one value per sample, or a scalar / [1] when the model declares that. */
  private timestepTensor(t: number, n: number): OrtTensorLike {
    const b = this.signature.timestep;
    // onnxruntime reports [] both for "scalar" and "unknown", so [] is fed as [B] like diffusers does.
    const dims = b.shape.length === 1 && b.shape[0] === 1 ? [1] : [n];
    const count = dims[0]!;
    if (b.dtype === 'int64' || b.dtype === 'int32') {
      // Integer-time export: the nearest integer time (see the file comment).
      const ti = Math.round(t);
      return this.intTensor(b.dtype, new Array<number>(count).fill(ti), dims);
    }
    return this.floatTensor(b.dtype, new Array<number>(count).fill(t), dims);
  }
}

/** Rows [start, start+n) of a row-major array with `rowSize` values per row, padded to `rows` rows by repeating the last. */
function padRows(src: ArrayLike<number>, start: number, n: number, rows: number, rowSize: number): ArrayLike<number> {
  const whole = src.length === n * rowSize && start === 0 && rows === n;
  if (whole) return src;
  const out = src instanceof Float64Array ? new Float64Array(rows * rowSize) : new Float32Array(rows * rowSize);
  const isTyped = ArrayBuffer.isView(src);
  if (isTyped) {
    out.set((src as Float32Array).subarray(start * rowSize, (start + n) * rowSize));
  } else {
    for (let i = 0; i < n * rowSize; i++) out[i] = src[start * rowSize + i]!;
  }
  for (let r = n; r < rows; r++) out.copyWithin(r * rowSize, (n - 1) * rowSize, n * rowSize);
  return out;
}

/** The float values of an output tensor (float32, float64, or float16 as bits or Float16Array). */
function readFloats(y: OrtTensorLike, label: string): ArrayLike<number> {
  const d = y.data;
  if (y.type === 'float16' && d instanceof Uint16Array) return fromFloat16Bits(d);
  if (y.type === 'float32' || y.type === 'float64' || y.type === 'float16') return d as ArrayLike<number>;
  throw new Error(`${label}: output has element type ${y.type}; rediffuse needs a float output`);
}
