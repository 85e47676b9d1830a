/**
 * FRDiff feature reuse on an ONNX diffusion model: the {@link FeatureReuseCapable} network that
 * `withFeatureReuse` (src/core/frdiff) drives.
 *
 * From one ONNX file the graph layer derives a KEYFRAME graph (the full model, also returning the
 * tensors at the reuse points) and a REUSE graph (those tensors become inputs; what only fed them is
 * pruned); {@link FeatureReuseSession} loads both. This model composes the same parts as the plain
 * backend — the recognised signature, the feed builder and the runner — around that runtime: a
 * keyframe call runs each chunk on the keyframe session and keeps that chunk's cache, a reuse call
 * runs each chunk on the reuse session with the cache of the same chunk. So the feeds of a reuse
 * call are built exactly as those of a plain call, and a request split into chunks keeps one cache
 * per chunk.
 *
 * The cache belongs to the batch of the keyframe call that made it (under classifier-free guidance:
 * the 2B batch `[uncond; cond]`); a reuse call with another batch size throws.
 *
 * Forecasting ({@link FeatureReuseOnnxModel.setForecast}, src/core/frdiff/feature-forecast.ts): the
 * caches of the last k + 1 keyframes are kept with their solver times, and a reuse call feeds each
 * reuse point the order-k Newton forecast at its own time instead of the latest cache (while fewer
 * keyframes exist, the highest order they allow). Adaptive recompute: with `probe`, a third session
 * runs the probe graph (src/model/onnx-graph/probe-graph.ts) whose signal `predictProbe` returns.
 * @packageDocumentation
 */
import { now } from '../core/clock.js';
import type { Conditioning, ModelCall, ModelCallOptions, PredictionType } from '../core/model.js';
import type { AdaptiveReuseCapable } from '../core/frdiff/adaptive-policy.js';
import {
  forecastFeature,
  forecastOrderFor,
  forecastTimeOf,
  maxForecastOrder,
  validateForecastConfig,
  type FeatureForecastConfig,
} from '../core/frdiff/feature-forecast.js';
import type { NumArray } from '../core/tensor.js';
import type { OnnxModelOptions, OnnxModelStats } from './onnx-backend.js';
import { OnnxFeedBuilder, type OnnxFeedRequest } from './onnx-feeds.js';
import { OnnxRunner, type OnnxChunkRun } from './onnx-runner.js';
import { onnxSessionOptions } from './onnx-session.js';
import { describeOnnxModel, type OnnxModelDescription, type OnnxSignature } from './onnx-signature.js';
import { analyzeOnnxModel, buildFeatureReuseGraphs, type AnalyzedOnnxModel, type FeatureReuseGraphs } from './onnx-graph/feature-reuse-graphs.js';
import { FeatureReuseSession, type FeatureCache } from './onnx-graph/feature-reuse-session.js';
import { buildProbeGraph, type ProbeGraph } from './onnx-graph/probe-graph.js';
import { REUSE_POINT_PRESETS, type ReusePointSelection, type ReusePoint } from './onnx-graph/reuse-points.js';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from './ort-types.js';

/**
 * Which tensors are cached: `frdiff`, `residual`, `deepcache` (shallowest skip branch),
 * `deepcache:N` (skip branch N), a list of tensor names, or a graph-layer policy object.
 */
export type ReusePointsSpec = string | readonly string[] | ReusePointSelection;

/**
 * Options of {@link FeatureReuseOnnxModel.create}: those of the plain backend (card, threads, batch
 * chunking, overrides), with the model given as bytes or an analysed graph, and the reuse points.
 */
export interface FeatureReuseOnnxOptions extends Omit<OnnxModelOptions, 'model'> {
  /** The ONNX model's bytes, or a model already analysed by `analyzeOnnxModel` (to build several policies from one parse). */
  model: Uint8Array | AnalyzedOnnxModel;
  /** Reuse points (see {@link ReusePointsSpec}). Default `frdiff`. A cache is kept per `maxBatch` chunk. */
  points?: ReusePointsSpec;
  /**
   * Also load the probe graph of adaptive recompute: `true` for the first block's residual (the
   * FBCache signal), or the name of the signal tensor. Default none (`predictProbe` throws).
   */
  probe?: boolean | string;
  /** Forecast of the cached features at reuse calls (default none: the latest keyframe's, as FRDiff). */
  forecast?: FeatureForecastConfig;
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

/**
 * What {@link FeatureReuseOnnxModel.stats} reports: the plain backend's counts over calls of both
 * kinds (in call order), and per kind.
 */
export interface FeatureReuseOnnxStats extends OnnxModelStats {
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
  /** Probe calls of adaptive recompute (zero without a probe). */
  probe: KindStats;
  /** Share of the full model's MACs a probe runs (null without a probe). */
  probeMacsRatio: number | null;
  /** Forecast arithmetic at reuse calls: point tensors forecast (order ≥ 1) and the time it took, ms (part of `reuse.totalMs`). */
  forecast: { tensors: number; ms: number };
}

/** The graph-layer policy of a {@link ReusePointsSpec}, or an error naming the valid forms. */
export function parseReusePoints(spec: ReusePointsSpec | undefined): ReusePointSelection | string[] {
  if (spec === undefined) return 'frdiff';
  if (Array.isArray(spec)) {
    if (spec.length === 0 || !spec.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new Error('reuse points: an explicit list must hold one or more tensor names; run `rediffuse inspect MODEL.onnx` to list candidates');
    }
    return [...spec];
  }
  if (typeof spec === 'string') {
    const m = /^deepcache:(\d+)$/.exec(spec);
    if (m) return { preset: 'deepcache', branch: Number(m[1]) };
    if ((REUSE_POINT_PRESETS as readonly string[]).includes(spec)) return spec as ReusePointSelection;
    if (spec.includes(','))
      return parseReusePoints(
        spec
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
    throw new Error(
      `unknown reuse points "${spec}": use ${REUSE_POINT_PRESETS.join(', ')}, deepcache:N (skip branch N), or a comma-separated list of tensor names`,
    );
  }
  return spec as ReusePointSelection;
}

/** A printable name of a points spec (for reports and policy files). */
export function reusePointsName(spec: ReusePointsSpec | undefined): string | string[] {
  const p = parseReusePoints(spec);
  if (Array.isArray(p)) return p;
  if (typeof p === 'string') return p;
  if (p.preset === 'tensors') return p.tensors;
  if (p.preset === 'deepcache') return `deepcache:${p.branch ?? 0}`;
  return p.preset;
}

function disposeCache(cache: FeatureCache | undefined): void {
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
export class FeatureReuseOnnxModel implements AdaptiveReuseCapable {
  readonly predictionType: PredictionType;
  readonly sampleShape: readonly number[];
  /** The graphs, reuse points, FLOP accounting and cache size per sample. */
  readonly graphs: FeatureReuseGraphs;
  /** The keyframe and reuse sessions. */
  readonly session: FeatureReuseSession;
  /** The recognised inputs and output (of the keyframe graph, the same as the original model's). */
  readonly signature: OnnxSignature;
  /** Label meaning "unconditional" (from the card or options), for classifier-free guidance. */
  readonly nullLabel: number | undefined;
  /** Largest batch of one `session.run` (one cache is kept per chunk of this size). */
  readonly maxBatch: number;
  /** Name used in messages. */
  readonly label: string;
  /** The points spec as given (normalised name or tensor list). */
  readonly pointsName: string | string[];
  /** The probe graph of adaptive recompute, when loaded. */
  readonly probe: ProbeGraph | null;
  private readonly feeds: OnnxFeedBuilder;
  private readonly runner: OnnxRunner;
  private readonly ort: OrtModuleLike;
  private readonly probeSession: OrtSessionLike | null;
  /** One cache per chunk of the latest keyframe call. */
  private caches: FeatureCache[] = [];
  /** The last keyframes' caches with their solver times (newest last; the latest is `caches`). */
  private history: { call: { t: number; alpha: number; sigma: number }; caches: FeatureCache[] }[] = [];
  private forecastConfig: FeatureForecastConfig | undefined;
  private forecastStats = { tensors: 0, ms: 0 };
  /** Forecast outputs by chunk and point, reused from call to call (a reuse call's inputs live only during its run). */
  private scratch = new Map<string, Float32Array>();
  private cacheBatch: number | null = null;
  private kinds = { keyframe: emptyKind(), reuse: emptyKind(), probe: emptyKind() };
  private callMsList: number[] = [];
  private runCount = 0;
  private peak = 0;

  private constructor(parts: {
    session: FeatureReuseSession;
    feeds: OnnxFeedBuilder;
    runner: OnnxRunner;
    desc: OnnxModelDescription;
    label: string;
    pointsName: string | string[];
    ort: OrtModuleLike;
    probe: { graph: ProbeGraph; session: OrtSessionLike } | null;
  }) {
    this.session = parts.session;
    this.graphs = parts.session.graphs;
    this.feeds = parts.feeds;
    this.runner = parts.runner;
    this.signature = parts.desc.signature;
    this.sampleShape = parts.desc.sampleShape;
    this.predictionType = parts.desc.predictionType;
    this.nullLabel = parts.desc.nullLabel;
    this.maxBatch = parts.feeds.maxBatch;
    this.label = parts.label;
    this.pointsName = parts.pointsName;
    this.ort = parts.ort;
    this.probe = parts.probe?.graph ?? null;
    this.probeSession = parts.probe?.session ?? null;
  }

  /**
   * Build the keyframe and reuse graphs for `points` and load both. Throws the graph layer's error
   * (naming the fix) when the policy finds no reuse point, e.g. on a model without residual blocks.
   */
  static async create(opts: FeatureReuseOnnxOptions): Promise<FeatureReuseOnnxModel> {
    const policy = parseReusePoints(opts.points);
    const label = opts.label ?? opts.card?.name ?? 'ONNX model';
    const maxBatch = opts.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be an integer ≥ 1, got ${maxBatch}`);
    const sessionOptions = onnxSessionOptions(opts);
    const analyzed = opts.model instanceof Uint8Array ? await analyzeOnnxModel(opts.model, { ort: opts.ort }) : opts.model;
    let graphs: FeatureReuseGraphs;
    try {
      graphs = await buildFeatureReuseGraphs(analyzed, policy, { ort: opts.ort });
    } catch (err) {
      throw new Error(`${label}: cannot set up feature reuse: ${(err as Error).message}`, { cause: err });
    }
    if (opts.forecast) FeatureReuseOnnxModel.checkForecast(opts.forecast, graphs.points, label);
    let probe: { graph: ProbeGraph; session: OrtSessionLike } | null = null;
    if (opts.probe !== undefined && opts.probe !== false) {
      let graph: ProbeGraph;
      try {
        graph = buildProbeGraph(analyzed, typeof opts.probe === 'string' ? opts.probe : undefined);
      } catch (err) {
        throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
      }
      probe = { graph, session: await opts.ort.InferenceSession.create(graph.bytes, sessionOptions) };
    }
    const session = await FeatureReuseSession.fromGraphs(opts.ort, graphs, sessionOptions);
    const desc = describeOnnxModel(session.io, label, opts);
    const feeds = new OnnxFeedBuilder({ ort: opts.ort, ...desc, maxBatch, label });
    const runner = new OnnxRunner({ ...desc, label });
    const net = new FeatureReuseOnnxModel({ session, feeds, runner, desc, label, pointsName: reusePointsName(opts.points), ort: opts.ort, probe });
    if (opts.forecast) net.setForecast(opts.forecast);
    return net;
  }

  private static checkForecast(config: FeatureForecastConfig, points: readonly ReusePoint[], label: string): void {
    validateForecastConfig(config);
    for (const key of Object.keys(config.points ?? {})) {
      if (!points.some((p) => p.name === key || p.kind === key)) {
        throw new Error(
          `${label}: feature forecast names "${key}", which is neither a reuse point nor a point kind of this model (${points.map((p) => p.name).join(', ')})`,
        );
      }
    }
    for (const p of points) {
      if (forecastOrderFor(config, p) > 0 && p.dtype !== 'float32') {
        throw new Error(`${label}: reuse point ${p.name} is ${p.dtype}; feature forecasts of order ≥ 1 need float32 points (use order 0 for it)`);
      }
    }
  }

  /**
   * Forecast the cached features at reuse calls with `config` (see the module notes), or hold them
   * stale (FRDiff) with `undefined`. Takes effect from the next keyframe on (the history is dropped).
   */
  setForecast(config: FeatureForecastConfig | undefined): void {
    if (config) FeatureReuseOnnxModel.checkForecast(config, this.graphs.points, this.label);
    this.forecastConfig = config ? { ...config, ...(config.points ? { points: { ...config.points } } : {}) } : undefined;
    this.clearCache();
  }

  /** The forecast in use (undefined: stale features). */
  get forecast(): FeatureForecastConfig | undefined {
    return this.forecastConfig;
  }

  /** The cached tensors (names, shapes, kinds). */
  get points(): readonly ReusePoint[] {
    return this.graphs.points;
  }

  /** A plain call: a full pass (it refreshes the cache like a keyframe). */
  predict(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    return this.predictKeyframe(x, call, cond, options);
  }

  /** Full pass on the keyframe graph; keeps the reuse-point tensors of this batch, one cache per chunk. */
  async predictKeyframe(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    const request = this.feeds.request(x, call, cond);
    // A keyframe replaces every chunk's cache; with a forecast of order k the last k keyframes stay
    // in the history (the same batch only).
    const keep = maxForecastOrder(this.forecastConfig);
    if (keep === 0 || this.cacheBatch !== request.batch) this.clearCache();
    const caches: FeatureCache[] = [];
    try {
      const out = await this.timed(
        'keyframe',
        request,
        async (chunk) => {
          const { outputs, cache } = await this.session.runKeyframe(chunk.feeds);
          caches[chunk.index] = cache;
          return outputs;
        },
        options,
      );
      // a keyframe at the time of a kept one replaces it (the knots of a forecast are distinct)
      const tau = this.forecastConfig ? forecastTimeOf(this.forecastConfig.time ?? 't', call) : call.t;
      const same = this.history.findIndex((h) => (this.forecastConfig ? forecastTimeOf(this.forecastConfig.time ?? 't', h.call) : h.call.t) === tau);
      if (same >= 0) for (const c of this.history.splice(same, 1)[0]!.caches) disposeCache(c);
      this.history.push({ call: { t: call.t, alpha: call.alpha, sigma: call.sigma }, caches });
      while (this.history.length > keep + 1) for (const c of this.history.shift()!.caches) disposeCache(c);
      this.caches = caches;
      this.cacheBatch = request.batch;
      this.peak = Math.max(this.peak, this.cacheBytes);
      return out;
    } catch (err) {
      this.clearCache(); // a half-refreshed cache must not be reused
      throw err;
    }
  }

  /** Cheap pass on the reuse graph with the cache of the latest keyframe call (same batch). */
  async predictReuse(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray> {
    if (this.cacheBatch === null) {
      throw new Error(`${this.label}: a reuse call needs a feature cache; make a keyframe call first (call 0 of a policy is always a keyframe)`);
    }
    if (this.cacheBatch !== call.batch) {
      throw new Error(
        `${this.label}: the feature cache holds batch ${this.cacheBatch} but this reuse call has batch ${call.batch}; make a keyframe call on this batch first`,
      );
    }
    const request = this.feeds.request(x, call, cond);
    return this.timed(
      'reuse',
      request,
      (chunk) => {
        const cache = this.caches[chunk.index];
        if (!cache) throw new Error(`${this.label}: no feature cache for chunk ${chunk.index}; run a keyframe call on this batch first`);
        return this.session.runReuse(chunk.feeds, this.forecastConfig ? this.forecastCache(chunk.index, call) : cache);
      },
      options,
    );
  }

  /** The cache of chunk `k` forecast at `call`'s time from the kept keyframes (see the module notes). */
  private forecastCache(k: number, call: ModelCall): FeatureCache {
    const config = this.forecastConfig!;
    const time = config.time ?? 't';
    const started = now();
    const at = forecastTimeOf(time, call);
    const out: FeatureCache = {};
    let forecast = 0;
    for (const p of this.graphs.points) {
      const order = Math.min(forecastOrderFor(config, p), this.history.length - 1);
      const latest = this.history[this.history.length - 1]!.caches[k]![p.name]!;
      if (order <= 0) {
        out[p.name] = latest; // order 0: the cached tensor itself
        continue;
      }
      const used = this.history.slice(this.history.length - 1 - order);
      const values = used.map((h) => h.caches[k]![p.name]!.data as Float32Array);
      const knots = used.map((h) => forecastTimeOf(time, h.call));
      const key = `${k}/${p.name}`;
      let dst = this.scratch.get(key);
      if (!dst || dst.length !== values[0]!.length) this.scratch.set(key, (dst = new Float32Array(values[0]!.length)));
      out[p.name] = new this.ort.Tensor('float32', forecastFeature(values, knots, at, dst), [...latest.dims]);
      forecast++;
    }
    this.forecastStats.tensors += forecast;
    this.forecastStats.ms += now() - started;
    return out;
  }

  /** The probe's signal for this call (adaptive recompute), batch-major over the call's samples. */
  async predictProbe(x: NumArray, call: ModelCall, cond?: Conditioning, _options?: ModelCallOptions): Promise<Float32Array> {
    if (!this.probeSession || !this.probe) {
      throw new Error(`${this.label}: no probe graph loaded; create the model with { probe: true } for adaptive recompute`);
    }
    const request = this.feeds.request(x, call, cond);
    const started = now();
    const parts: Float32Array[] = [];
    for (let c = 0; c < request.chunkCount; c++) {
      const chunk = request.chunk(c);
      const result = await this.probeSession.run(chunk.feeds);
      const t = result[this.probe.signal]!;
      const data = t.data as Float32Array;
      const perRow = data.length / chunk.feedRows;
      parts.push(data.subarray(0, perRow * chunk.rows));
    }
    const n = parts.reduce((a, p) => a + p.length, 0);
    const signal = new Float32Array(n);
    let o = 0;
    for (const p of parts) {
      signal.set(p, o);
      o += p.length;
    }
    const ms = now() - started;
    const k = this.kinds.probe;
    k.calls++;
    k.images += request.batch;
    k.ms.push(ms);
    k.totalMs += ms;
    this.runCount += request.chunkCount;
    return signal;
  }

  private async timed(kind: 'keyframe' | 'reuse', request: OnnxFeedRequest, run: OnnxChunkRun, options?: ModelCallOptions): Promise<NumArray> {
    const started = now();
    const out = await this.runner.run(request, run, options?.signal);
    const ms = now() - started;
    const k = this.kinds[kind];
    k.calls++;
    k.images += request.batch;
    k.ms.push(ms);
    k.totalMs += ms;
    this.callMsList.push(ms);
    this.runCount += request.chunkCount;
    return out;
  }

  /** Drop the cache (the next call must be a keyframe). */
  clearCache(): void {
    for (const h of this.history) for (const c of h.caches) disposeCache(c);
    this.history = [];
    this.caches = [];
    this.scratch.clear();
    this.cacheBatch = null;
  }

  /** Bytes of the cache held now (every kept keyframe's, under a forecast). */
  get cacheBytes(): number {
    let n = 0;
    for (const h of this.history) for (const c of h.caches) if (c) for (const t of Object.values(c)) n += tensorBytes(t);
    return n;
  }

  /** Calls, timings and cache memory since the last {@link resetStats}. */
  get stats(): FeatureReuseOnnxStats {
    const copy = (k: KindStats): KindStats => ({ ...k, ms: [...k.ms] });
    const callMs = this.callMsList.slice();
    return {
      calls: callMs.length,
      runs: this.runCount,
      images: this.kinds.keyframe.images + this.kinds.reuse.images,
      callMs,
      totalMs: callMs.reduce((a, b) => a + b, 0),
      keyframe: copy(this.kinds.keyframe),
      reuse: copy(this.kinds.reuse),
      cacheBytes: this.cacheBytes,
      peakCacheBytes: this.peak,
      cacheBytesPerSample: this.graphs.cacheBytesPerSample,
      reuseMacsRatio: this.graphs.flops.ratio,
      probe: copy(this.kinds.probe),
      probeMacsRatio: this.probe ? this.probe.macsRatio : null,
      forecast: { ...this.forecastStats },
    };
  }

  /** Zero the counters (the cache is kept). */
  resetStats(): void {
    this.kinds = { keyframe: emptyKind(), reuse: emptyKind(), probe: emptyKind() };
    this.forecastStats = { tensors: 0, ms: 0 };
    this.callMsList = [];
    this.runCount = 0;
    this.peak = this.cacheBytes;
  }

  /** Free both sessions and the cache. */
  async release(): Promise<void> {
    this.clearCache();
    await Promise.all([this.session.release(), this.probeSession?.release?.()]);
  }
}
