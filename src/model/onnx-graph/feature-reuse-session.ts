/**
 * The runtime of feature reuse on ONNX: one onnxruntime session for the keyframe graph and one for
 * the reuse graph (from {@link buildFeatureReuseGraphs}). A keyframe call returns the model outputs
 * and the cache (the tensors at the reuse points, batch-major `[B, …]`); a reuse call takes the same
 * feeds plus that cache. The cache belongs to the batch it was computed for: a reuse call must use
 * the same batch size and row order (use {@link selectCacheRows} to keep a subset of rows).
 * `FeatureReuseOnnxModel` (src/model/feature-reuse-onnx-model.ts) runs its calls through this class.
 * @packageDocumentation
 */
import type { OnnxSessionIo } from '../onnx-signature.js';
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptionsLike, OrtTensorData, OrtTensorLike } from '../ort-types.js';
import { buildFeatureReuseGraphs, type FeatureReuseBuildOptions, type FeatureReuseGraphs } from './feature-reuse-graphs.js';
import type { ReusePointSelection, ReusePoint } from './reuse-points.js';

/** Cached tensors by reuse-point name. */
export type FeatureCache = Record<string, OrtTensorLike>;

/** Result of a keyframe call. */
export interface KeyframeResult {
  /** The model's own outputs. */
  outputs: Record<string, OrtTensorLike>;
  /** Tensors to pass to {@link FeatureReuseSession.runReuse}. */
  cache: FeatureCache;
}

/** Keyframe + reuse sessions of one model and policy. */
export class FeatureReuseSession {
  private constructor(
    private readonly ort: OrtModuleLike,
    private readonly keyframe: OrtSessionLike,
    private readonly reuse: OrtSessionLike,
    /** The graphs, points and FLOP accounting this session runs. */
    readonly graphs: FeatureReuseGraphs,
  ) {}

  /** Build the graphs of `modelBytes` for `policy` and load both into `ort`. */
  static async create(
    ort: OrtModuleLike,
    modelBytes: Uint8Array,
    policy: ReusePointSelection | string[],
    options: FeatureReuseBuildOptions & { session?: OrtSessionOptionsLike } = {},
  ): Promise<FeatureReuseSession> {
    const graphs = await buildFeatureReuseGraphs(modelBytes, policy, { ...options, ort });
    return FeatureReuseSession.fromGraphs(ort, graphs, options.session);
  }

  /** Load already built graphs. */
  static async fromGraphs(ort: OrtModuleLike, graphs: FeatureReuseGraphs, session?: OrtSessionOptionsLike): Promise<FeatureReuseSession> {
    const [k, r] = await Promise.all([ort.InferenceSession.create(graphs.keyframe, session), ort.InferenceSession.create(graphs.reuse, session)]);
    return new FeatureReuseSession(ort, k, r, graphs);
  }

  /** The reuse points (cache layout). */
  get points(): readonly ReusePoint[] {
    return this.graphs.points;
  }

  /** The model's inputs (as the keyframe session reports them) and its own outputs (without the cache). */
  get io(): OnnxSessionIo {
    return { inputNames: this.keyframe.inputNames, inputMetadata: this.keyframe.inputMetadata, outputNames: this.graphs.outputNames };
  }

  /** Full pass: model outputs plus the features to cache. */
  async runKeyframe(feeds: Record<string, OrtTensorLike>): Promise<KeyframeResult> {
    const result = await this.keyframe.run(feeds);
    const outputs: Record<string, OrtTensorLike> = {};
    const cache: FeatureCache = {};
    for (const name of this.graphs.outputNames) outputs[name] = result[name];
    for (const p of this.graphs.points) cache[p.name] = result[p.name];
    return { outputs, cache };
  }

  /** Cheap pass: the same feeds plus a cache from a keyframe call on the same batch. */
  async runReuse(feeds: Record<string, OrtTensorLike>, cache: FeatureCache): Promise<Record<string, OrtTensorLike>> {
    const batch = feedBatch(feeds);
    const all: Record<string, OrtTensorLike> = { ...feeds };
    for (const p of this.graphs.points) {
      const t = cache[p.name];
      if (!t) throw new Error(`feature cache lacks '${p.name}'; pass the cache returned by runKeyframe of this session`);
      const b = batchAxis(p);
      if (b >= 0 && batch !== undefined && t.dims[b] !== batch) {
        throw new Error(
          `feature cache was computed for batch ${t.dims[b]} but this call has batch ${batch}; run a keyframe for this batch, or keep matching rows with selectCacheRows`,
        );
      }
      all[p.name] = t;
    }
    const result = await this.reuse.run(all);
    const outputs: Record<string, OrtTensorLike> = {};
    for (const name of this.graphs.outputNames) outputs[name] = result[name];
    return outputs;
  }

  /** Keep rows `rows` (in that order) of every cached tensor, e.g. when part of a batch is done. */
  selectCacheRows(cache: FeatureCache, rows: readonly number[]): FeatureCache {
    return selectCacheRows(this.ort, this.graphs.points, cache, rows);
  }

  /** Release both sessions. */
  async release(): Promise<void> {
    await Promise.all([this.keyframe.release?.(), this.reuse.release?.()]);
  }
}

/** Index of the batch axis of a reuse point, or -1 when its shape does not follow the batch. */
function batchAxis(p: ReusePoint): number {
  return p.symbolic.indexOf('batch');
}

/** Leading dimension of the first fed tensor of rank ≥ 1 (the batch, for diffusion models). */
function feedBatch(feeds: Record<string, OrtTensorLike>): number | undefined {
  for (const t of Object.values(feeds)) if (t.dims.length) return t.dims[0];
  return undefined;
}

/** Rows `rows` of each cached tensor along its batch axis (tensors without one are kept as they are). */
export function selectCacheRows(ort: OrtModuleLike, points: readonly ReusePoint[], cache: FeatureCache, rows: readonly number[]): FeatureCache {
  const out: FeatureCache = {};
  for (const p of points) {
    const t = cache[p.name];
    const axis = batchAxis(p);
    if (axis < 0) {
      out[p.name] = t;
      continue;
    }
    const dims = [...t.dims];
    const outer = dims.slice(0, axis).reduce((a, d) => a * d, 1);
    const inner = dims.slice(axis + 1).reduce((a, d) => a * d, 1);
    const src = t.data as OrtTensorData;
    const Ctor = src.constructor as new (n: number) => OrtTensorData;
    const dst = new Ctor(outer * rows.length * inner);
    for (let o = 0; o < outer; o++) {
      rows.forEach((r, k) => {
        if (r < 0 || r >= dims[axis]) throw new Error(`cache row ${r} is out of range for batch ${dims[axis]}`);
        const from = (o * dims[axis] + r) * inner;
        (dst as Float32Array).set((src as Float32Array).subarray(from, from + inner), (o * rows.length + k) * inner);
      });
    }
    dims[axis] = rows.length;
    out[p.name] = new ort.Tensor(t.type as 'float32', dst, dims);
  }
  return out;
}
