/**
 * FRDiff feature reuse on an ONNX diffusion model: the {@link FeatureReuseCapable} network that
 * `withFeatureReuse` (src/core/frdiff) drives.
 *
 * From one ONNX file the graph layer derives a KEYFRAME graph (the full model, also returning the
 * tensors at the reuse points) and a REUSE graph (those tensors become inputs; what only fed them is
 * pruned). This adapter loads both and lets {@link OnnxDiffusionModel} do everything else — input
 * recognition, dtype introspection, feed construction, batching into chunks, output checks — by
 * handing it a *routing session*: one `session.run` goes to the keyframe graph (and keeps the cache
 * of that chunk) or to the reuse graph (fed with the cache of that chunk), depending on which of
 * {@link FeatureReuseOnnxModel.predictKeyframe} / {@link FeatureReuseOnnxModel.predictReuse} is
 * running. So the feeds of a reuse call are built exactly as those of a plain call, and a request
 * split into chunks keeps one cache per chunk.
 *
 * The cache belongs to the batch of the keyframe call that made it (under classifier-free guidance:
 * the 2B batch `[uncond; cond]`); a reuse call with another batch size throws.
 * @packageDocumentation
 */
import type { Conditioning, ModelCallOptions, PredictionType } from '../core/model.js';
import type { FeatureReuseCapable } from '../core/frdiff/feature-reuse-model.js';
import type { NumArray } from '../core/tensor.js';
import type { ModelCard } from './model-card.js';
import { OnnxDiffusionModel, type OnnxModelOptions } from './onnx-backend.js';
import { analyzeOnnxModel, buildFeatureReuseGraphs, type AnalyzedOnnxModel, type FeatureReuseGraphs } from './onnx-graph/feature-reuse-graphs.js';
import { POLICY_NAMES, type FeatureReusePolicy, type ReusePoint } from './onnx-graph/reuse-points.js';
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptionsLike, OrtTensorLike } from './ort-types.js';

/**
 * Which tensors are cached: `frdiff`, `residual`, `deepcache` (shallowest skip branch),
 * `deepcache:N` (skip branch N), a list of tensor names, or a graph-layer policy object.
 */
export type ReusePointsSpec = string | readonly string[] | FeatureReusePolicy;

/**
 * Options of {@link FeatureReuseOnnxModel.create}: those of the plain backend (card, threads, batch
 * chunking, overrides), with the model given as bytes or an analysed graph, and the reuse points.
 */
export interface FeatureReuseOnnxOptions extends Omit<OnnxModelOptions, 'model'> {
  /** The ONNX model's bytes, or a model already analysed by `analyzeOnnxModel` (to build several policies from one parse). */
  model: Uint8Array | AnalyzedOnnxModel;
  /** Reuse points (see {@link ReusePointsSpec}). Default `frdiff`. A cache is kept per `maxBatch` chunk. */
  points?: ReusePointsSpec;
}

/** Call counts and timings of one kind of call. */
export interface KindStats {
  /** `predictKeyframe` / `predictReuse` calls. */
  calls: number;
  /** Samples pushed through (a guided call of B images counts 2B). */
  images: number;
  /** Wall time of each call, ms. */
  ms: number[];
  /** Sum of `ms`. */
  totalMs: number;
}

/** What {@link FeatureReuseOnnxModel.stats} reports. */
export interface FeatureReuseOnnxStats {
  keyframe: KindStats;
  reuse: KindStats;
  /** Bytes of the feature cache held now. */
  cacheBytes: number;
  /** Largest cache held since the last reset, bytes. */
  peakCacheBytes: number;
  /** Cache bytes per sample (per image of the network batch), from the graph. */
  cacheBytesPerSample: number;
  /** Share of the full model's MACs a reuse call still runs (graph count, batch 1). */
  reuseMacsRatio: number;
}

/** The graph-layer policy of a {@link ReusePointsSpec}, or an error naming the valid forms. */
export function parseReusePoints(spec: ReusePointsSpec | undefined): FeatureReusePolicy | string[] {
  if (spec === undefined) return 'frdiff';
  if (Array.isArray(spec)) {
    if (spec.length === 0 || !spec.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new Error('reuse points: an explicit list must hold one or more tensor names; run `rediffuse inspect MODEL.onnx` to list candidates');
    }
    return [...spec];
  }
  if (typeof spec === 'string') {
    const m = /^deepcache:(\d+)$/.exec(spec);
    if (m) return { policy: 'deepcache', branch: Number(m[1]) };
    if ((POLICY_NAMES as readonly string[]).includes(spec)) return spec as FeatureReusePolicy;
    if (spec.includes(',')) return parseReusePoints(spec.split(',').map((s) => s.trim()).filter(Boolean));
    throw new Error(
      `unknown reuse points "${spec}": use ${POLICY_NAMES.join(', ')}, deepcache:N (skip branch N), or a comma-separated list of tensor names`,
    );
  }
  return spec as FeatureReusePolicy;
}

/** A printable name of a points spec (for reports and policy files). */
export function reusePointsName(spec: ReusePointsSpec | undefined): string | string[] {
  const p = parseReusePoints(spec);
  if (Array.isArray(p)) return p;
  if (typeof p === 'string') return p;
  if (p.policy === 'tensors') return p.tensors;
  if (p.policy === 'deepcache') return `deepcache:${p.branch ?? 0}`;
  return p.policy;
}

type Mode = 'idle' | 'keyframe' | 'reuse';

/** Sends each `run` to the keyframe or reuse session and keeps one cache per chunk of the current request. */
class RoutingSession implements OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: OrtSessionLike['inputMetadata'];
  mode: Mode = 'idle';
  /** Chunk index within the current request. */
  chunk = 0;
  caches: Record<string, OrtTensorLike>[] = [];

  constructor(
    private readonly keyframe: OrtSessionLike,
    private readonly reuse: OrtSessionLike,
    private readonly graphs: FeatureReuseGraphs,
    private readonly label: string,
  ) {
    this.inputNames = keyframe.inputNames;
    this.outputNames = graphs.outputNames;
    this.inputMetadata = keyframe.inputMetadata;
  }

  async run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>> {
    const k = this.chunk++;
    const outputs: Record<string, OrtTensorLike> = {};
    if (this.mode === 'keyframe') {
      const result = await this.keyframe.run(feeds);
      const cache: Record<string, OrtTensorLike> = {};
      for (const p of this.graphs.points) cache[p.name] = result[p.name]!;
      for (const name of this.graphs.outputNames) outputs[name] = result[name]!;
      disposeCache(this.caches[k]);
      this.caches[k] = cache;
      return outputs;
    }
    if (this.mode === 'reuse') {
      const cache = this.caches[k];
      if (!cache) throw new Error(`${this.label}: no feature cache for chunk ${k}; run a keyframe call on this batch first`);
      const result = await this.reuse.run({ ...feeds, ...cache });
      for (const name of this.graphs.outputNames) outputs[name] = result[name]!;
      return outputs;
    }
    throw new Error(`${this.label}: the routing session was run outside predictKeyframe/predictReuse`);
  }

  async release(): Promise<void> {
    for (const c of this.caches) disposeCache(c);
    this.caches = [];
    await Promise.all([this.keyframe.release?.(), this.reuse.release?.()]);
  }
}

function disposeCache(cache: Record<string, OrtTensorLike> | undefined): void {
  if (cache) for (const t of Object.values(cache)) t.dispose?.();
}

function tensorBytes(t: OrtTensorLike): number {
  const d = t.data as { byteLength?: number } | undefined;
  return d?.byteLength ?? 0;
}

function emptyKind(): KindStats {
  return { calls: 0, images: 0, ms: [], totalMs: 0 };
}

/**
 * An ONNX diffusion model that can run a full (keyframe) pass that caches its reuse-point features,
 * or a cheap pass that reuses them (see the module documentation).
 */
export class FeatureReuseOnnxModel implements FeatureReuseCapable {
  readonly predictionType: PredictionType;
  readonly sampleShape: readonly number[];
  /** The graphs, reuse points, FLOP accounting and cache size per sample. */
  readonly graphs: FeatureReuseGraphs;
  /** The backend that builds feeds and reads outputs (its `signature`, `nullLabel`, `maxBatch`). */
  readonly backend: OnnxDiffusionModel;
  /** The points spec as given (normalised name or tensor list). */
  readonly pointsName: string | string[];
  private readonly routing: RoutingSession;
  private cacheBatch: number | null = null;
  private kinds = { keyframe: emptyKind(), reuse: emptyKind() };
  private peak = 0;

  private constructor(backend: OnnxDiffusionModel, routing: RoutingSession, graphs: FeatureReuseGraphs, pointsName: string | string[]) {
    this.backend = backend;
    this.routing = routing;
    this.graphs = graphs;
    this.pointsName = pointsName;
    this.predictionType = backend.predictionType;
    this.sampleShape = backend.sampleShape;
  }

  /**
   * Build the keyframe and reuse graphs for `points` and load both. Throws the graph layer's error
   * (naming the fix) when the policy finds no reuse point, e.g. on a model without residual blocks.
   */
  static async create(opts: FeatureReuseOnnxOptions): Promise<FeatureReuseOnnxModel> {
    const policy = parseReusePoints(opts.points);
    const label = opts.label ?? opts.card?.name ?? 'ONNX model';
    const analyzed = opts.model instanceof Uint8Array ? await analyzeOnnxModel(opts.model, { ort: opts.ort }) : opts.model;
    let graphs: FeatureReuseGraphs;
    try {
      graphs = await buildFeatureReuseGraphs(analyzed, policy, { ort: opts.ort });
    } catch (err) {
      throw new Error(`${label}: cannot set up feature reuse: ${(err as Error).message}`);
    }
    let routing: RoutingSession | undefined;
    // The backend creates "its" session through this module; we load both graphs with the session
    // options it chose (threads, providers) and give it the routing session.
    const routingOrt: OrtModuleLike = {
      Tensor: opts.ort.Tensor,
      InferenceSession: {
        create: (async (_model: Uint8Array | string, options?: OrtSessionOptionsLike) => {
          const [k, r] = await Promise.all([
            opts.ort.InferenceSession.create(graphs.keyframe, options),
            opts.ort.InferenceSession.create(graphs.reuse, options),
          ]);
          routing = new RoutingSession(k, r, graphs, label);
          return routing;
        }) as OrtModuleLike['InferenceSession']['create'],
      },
    };
    const backend = await OnnxDiffusionModel.create({
      ort: routingOrt,
      model: graphs.keyframe,
      label,
      ...(opts.card ? { card: opts.card } : {}),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
      ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
      ...(opts.sampleShape ? { sampleShape: opts.sampleShape } : {}),
      ...(opts.predictionType ? { predictionType: opts.predictionType } : {}),
      ...(opts.nullLabel !== undefined ? { nullLabel: opts.nullLabel } : {}),
    });
    return new FeatureReuseOnnxModel(backend, routing!, graphs, reusePointsName(opts.points));
  }

  /** The cached tensors (names, shapes, kinds). */
  get points(): readonly ReusePoint[] {
    return this.graphs.points;
  }

  /** Label meaning "unconditional" (from the card), for classifier-free guidance. */
  get nullLabel(): number | undefined {
    return this.backend.nullLabel;
  }

  /** A plain call: a full pass (it refreshes the cache like a keyframe). */
  predict(x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    return this.predictKeyframe(x, t, batch, cond, options);
  }

  /** Full pass on the keyframe graph; keeps the reuse-point tensors of this batch. */
  async predictKeyframe(x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    const out = await this.route('keyframe', x, t, batch, cond, options);
    this.cacheBatch = batch;
    this.peak = Math.max(this.peak, this.cacheBytes);
    return out;
  }

  /** Cheap pass on the reuse graph with the cache of the latest keyframe call (same batch). */
  async predictReuse(x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    if (this.cacheBatch === null) {
      throw new Error(`${this.backend.label}: a reuse call needs a feature cache; make a keyframe call first (call 0 of a policy is always a keyframe)`);
    }
    if (this.cacheBatch !== batch) {
      throw new Error(
        `${this.backend.label}: the feature cache holds batch ${this.cacheBatch} but this reuse call has batch ${batch}; make a keyframe call on this batch first`,
      );
    }
    return this.route('reuse', x, t, batch, cond, options);
  }

  private async route(mode: 'keyframe' | 'reuse', x: NumArray, t: number, batch: number, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    const started = performance.now();
    if (mode === 'keyframe') this.clearCache(); // a keyframe replaces every chunk's cache
    this.routing.mode = mode;
    this.routing.chunk = 0;
    try {
      const out = await this.backend.predict(x, t, batch, cond, options);
      const k = this.kinds[mode];
      const ms = performance.now() - started;
      k.calls++;
      k.images += batch;
      k.ms.push(ms);
      k.totalMs += ms;
      return out;
    } catch (err) {
      if (mode === 'keyframe') this.clearCache(); // a half-refreshed cache must not be reused
      throw err;
    } finally {
      this.routing.mode = 'idle';
    }
  }

  /** Drop the cache (the next call must be a keyframe). */
  clearCache(): void {
    for (const c of this.routing.caches) disposeCache(c);
    this.routing.caches = [];
    this.cacheBatch = null;
  }

  /** Bytes of the cache held now. */
  get cacheBytes(): number {
    let n = 0;
    for (const c of this.routing.caches) if (c) for (const t of Object.values(c)) n += tensorBytes(t);
    return n;
  }

  /** Calls, timings and cache memory since the last {@link resetStats}. */
  get stats(): FeatureReuseOnnxStats {
    const copy = (k: KindStats): KindStats => ({ ...k, ms: [...k.ms] });
    return {
      keyframe: copy(this.kinds.keyframe),
      reuse: copy(this.kinds.reuse),
      cacheBytes: this.cacheBytes,
      peakCacheBytes: this.peak,
      cacheBytesPerSample: this.graphs.cacheBytesPerSample,
      reuseMacsRatio: this.graphs.flops.ratio,
    };
  }

  /** Zero the counters (the cache is kept). */
  resetStats(): void {
    this.kinds = { keyframe: emptyKind(), reuse: emptyKind() };
    this.peak = this.cacheBytes;
    this.backend.resetStats();
  }

  /** Free both sessions and the cache. */
  async release(): Promise<void> {
    this.clearCache();
    await this.routing.release();
  }
}

/** Measured ms of a full, a keyframe and a reuse call on the same batch (medians). */
export interface MeasuredCallCost {
  /** Samples in the network batch (2B for a guided call of B). */
  batch: number;
  /** Median ms of a plain full call (the unmodified model), when a plain model was given. */
  fullMs: number | null;
  /** Median ms of a keyframe call (full pass that also writes the cache). */
  keyframeMs: number;
  /** Median ms of a reuse call. */
  reuseMs: number;
  /** keyframeMs / fullMs (or 1 without a plain model) and reuseMs / fullMs (or / keyframeMs). */
  keyframeFraction: number;
  reuseFraction: number;
  /** Timed repeats per kind. */
  repeats: number;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Time keyframe and reuse calls of `net` (and full calls of `plain`, the unmodified model) on one
 * batch of `batch` samples at model time `t`, interleaving the kinds after `warmup` untimed rounds
 * so that drift hits all alike. Leaves `net`'s cache cleared.
 */
export async function measureCallCost(
  net: FeatureReuseOnnxModel,
  opts: { batch: number; t: number; cond?: Conditioning; plain?: { predict: FeatureReuseOnnxModel['predict'] }; repeats?: number; warmup?: number },
): Promise<MeasuredCallCost> {
  const repeats = opts.repeats ?? 5;
  const warmup = opts.warmup ?? 2;
  const d = net.sampleShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: opts.batch * d }, (_, i) => Math.sin(0.7 * i) * 0.8);
  const full: number[] = [];
  const key: number[] = [];
  const reuse: number[] = [];
  const time = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  for (let r = 0; r < warmup + repeats; r++) {
    const tf = opts.plain ? await time(() => opts.plain!.predict(x, opts.t, opts.batch, opts.cond)) : NaN;
    const tk = await time(() => net.predictKeyframe(x, opts.t, opts.batch, opts.cond));
    const tr = await time(() => net.predictReuse(x, opts.t, opts.batch, opts.cond));
    if (r < warmup) continue;
    full.push(tf);
    key.push(tk);
    reuse.push(tr);
  }
  net.clearCache();
  const fullMs = opts.plain ? median(full) : null;
  const keyframeMs = median(key);
  const reuseMs = median(reuse);
  const base = fullMs ?? keyframeMs;
  return { batch: opts.batch, fullMs, keyframeMs, reuseMs, keyframeFraction: keyframeMs / base, reuseFraction: reuseMs / base, repeats };
}
