/**
 * A {@link DiffusionModel} backed by an ONNX network run with onnxruntime: one session, composed of
 * the recognised signature (`onnx-signature.ts`), the feed builder (`onnx-feeds.ts`: names, dtypes,
 * chunking, padding, input checks) and the runner (`onnx-runner.ts`: `session.run` per chunk, output
 * shape and finiteness checks).
 *
 * The onnxruntime module is injected (`onnxruntime-node` in Node.js, `onnxruntime-web` in a
 * browser), and this file uses only their shared API, so it runs in both; reading files from disk
 * lives in `src/node/load-model.ts`. Per-call wall time is recorded in {@link OnnxDiffusionModel.stats}.
 * @packageDocumentation
 */
import { now } from '../core/clock.js';
import type { Conditioning, DiffusionModel, ModelCall, ModelCallOptions, PredictionType } from '../core/model.js';
import type { NumArray } from '../core/tensor.js';
import type { ModelCard } from './model-card.js';
import { OnnxFeedBuilder } from './onnx-feeds.js';
import { OnnxRunner } from './onnx-runner.js';
import { createOnnxSession, onnxSessionOptions } from './onnx-session.js';
import { describeOnnxModel, type OnnxModelDescription, type OnnxSignature } from './onnx-signature.js';
import type { OrtModuleLike, OrtSessionLike } from './ort-types.js';

export type { OnnxInputBinding, OnnxSignature } from './onnx-signature.js';

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
  private readonly session: OrtSessionLike;
  private readonly feeds: OnnxFeedBuilder;
  private readonly runner: OnnxRunner;
  private callMsList: number[] = [];
  private runCount = 0;
  private imageCount = 0;

  private constructor(session: OrtSessionLike, feeds: OnnxFeedBuilder, runner: OnnxRunner, desc: OnnxModelDescription, label: string) {
    this.session = session;
    this.feeds = feeds;
    this.runner = runner;
    this.signature = desc.signature;
    this.sampleShape = desc.sampleShape;
    this.predictionType = desc.predictionType;
    this.nullLabel = desc.nullLabel;
    this.maxBatch = feeds.maxBatch;
    this.label = label;
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
    const sessionOptions = onnxSessionOptions(opts);
    const session = await createOnnxSession(opts.ort, opts.model, sessionOptions, label);
    const desc = describeOnnxModel(session, label, opts);
    const feeds = new OnnxFeedBuilder({ ort: opts.ort, ...desc, maxBatch, label });
    const runner = new OnnxRunner({ ...desc, label });
    return new OnnxDiffusionModel(session, feeds, runner, desc, label);
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
   * One network evaluation on a batch laid out `[call.batch, ...sampleShape]` at the call's model
   * time. Class labels default to the null label (unconditional) when the model takes them and
   * `cond` gives none. The result has the precision of `x`.
   */
  async predict(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    const started = now();
    const request = this.feeds.request(x, call, cond);
    const out = await this.runner.run(request, (chunk) => this.session.run(chunk.feeds), options?.signal);
    this.runCount += request.chunkCount;
    this.imageCount += request.batch;
    this.callMsList.push(now() - started);
    return out;
  }
}
