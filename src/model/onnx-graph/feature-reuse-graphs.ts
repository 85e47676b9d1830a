/**
 * Graph surgery for feature reuse: from one ONNX model derive
 * - the KEYFRAME graph: the full model, also returning the cached tensors as outputs;
 * - the REUSE graph: the cached tensors become inputs, every node that only fed them is pruned
 *   (dead-code elimination from the outputs), unused initializers and value_info are dropped.
 * At equal inputs, the reuse graph fed with the keyframe's cache computes the same ops on the same
 * values as the full graph, so its outputs are identical.
 * @packageDocumentation
 */
import type { OrtModuleLike } from '../ort-types.js';
import { totalOpCount, type OpCount } from './flops.js';
import { GraphIndex } from './graph-index.js';
import { decodeModel, dtypeCode, encodeModel, int64ToNumber, withFields, type OnnxModel, type OnnxNode, type OnnxValueInfo } from './onnx-proto.js';
import { normalizePointSelection, selectReusePoints, type ReusePointSelection, type ReusePoint } from './reuse-points.js';
import { probeTensorShapes, type ShapeProbeOptions, type TensorInfo } from './shape-probe.js';

/** Work of one full and one reuse call (batch 1). */
export interface ReuseFlops {
  /** Full model. */
  full: OpCount;
  /** Reuse graph. */
  reuse: OpCount;
  /** reuse.macs / full.macs: the share of the model's MACs a reuse step still runs. */
  ratio: number;
  /** Same ratio on elementwise operations. */
  elementwiseRatio: number;
}

/** Result of {@link buildFeatureReuseGraphs}. */
export interface FeatureReuseGraphs {
  /** Full model that also outputs the cached tensors (ONNX bytes for `InferenceSession.create`). */
  keyframe: Uint8Array;
  /** Pruned model taking the cached tensors as extra inputs. */
  reuse: Uint8Array;
  /** The cached tensors, in the order of the extra outputs/inputs. */
  points: ReusePoint[];
  flops: ReuseFlops;
  /** Bytes of cache per sample (sum over points of the batch-1 tensor size; symbolic non-batch dims at the probed sizes). */
  cacheBytesPerSample: number;
  /** Names of the model's own outputs. */
  outputNames: string[];
  /** Node counts of the full and reuse graphs. */
  nodeCount: { full: number; reuse: number };
}

/** Options of {@link buildFeatureReuseGraphs} and {@link analyzeOnnxModel}. */
export interface FeatureReuseBuildOptions extends ShapeProbeOptions {
  /**
   * onnxruntime module used to measure shapes (`onnxruntime-node` or `onnxruntime-web`); needed
   * whenever bytes are analysed, not when an {@link AnalyzedOnnxModel} is passed.
   */
  ort?: OrtModuleLike;
}

/** A parsed model with measured shapes, reusable across policies. */
export interface AnalyzedOnnxModel {
  model: OnnxModel;
  index: GraphIndex;
  shapes: Map<string, TensorInfo>;
  /** Shapes of initializers, by name. */
  weightShape: (name: string) => number[] | undefined;
  /** Work of the full model at batch 1. */
  fullFlops: OpCount;
}

/** Parse `modelBytes` and measure its tensor shapes (one onnxruntime session, three small runs). */
export async function analyzeOnnxModel(modelBytes: Uint8Array, options: FeatureReuseBuildOptions = {}): Promise<AnalyzedOnnxModel> {
  const model = decodeModel(modelBytes);
  const ort = options.ort;
  if (!ort)
    throw new TypeError(
      "analyzing an ONNX model measures its tensor shapes with onnxruntime: pass { ort } (import * as ort from 'onnxruntime-node', or 'onnxruntime-web' in a browser)",
    );
  const shapes = await probeTensorShapes(model, ort, options);
  const index = new GraphIndex(model.graph!);
  const weights = new Map<string, number[]>();
  for (const t of model.graph!.initializer ?? []) weights.set(t.name ?? '', (t.dims ?? []).map(int64ToNumber));
  const weightShape = (name: string) => weights.get(name);
  const fullFlops = totalOpCount(index, index.nodes.keys(), shapes, weightShape);
  return { model, index, shapes, weightShape, fullFlops };
}

/**
 * Derive the keyframe and reuse graphs of `modelBytes` for `policy` (see {@link ReusePointSelection}).
 * Throws when the policy finds no reuse point or names a tensor the graph does not compute.
 */
export async function buildFeatureReuseGraphs(
  modelBytes: Uint8Array | AnalyzedOnnxModel,
  policy: ReusePointSelection | string[],
  options: FeatureReuseBuildOptions = {},
): Promise<FeatureReuseGraphs> {
  const analyzed = modelBytes instanceof Uint8Array ? await analyzeOnnxModel(modelBytes, options) : modelBytes;
  const { model, index, shapes, weightShape, fullFlops } = analyzed;
  const selected = selectReusePoints(index, shapes, normalizePointSelection(policy));
  const seen = new Set<string>();
  const points: ReusePoint[] = [];
  for (const p of selected) {
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    const info = shapes.get(p.name)!;
    points.push({ ...p, shape: info.shape, symbolic: info.symbolic, dtype: info.dtype });
  }
  const outputNames = [...index.outputNames];
  const cacheNames = new Set(points.map((p) => p.name));
  const live = index.liveNodes(outputNames, cacheNames);
  const reuseFlops = totalOpCount(index, live, shapes, weightShape);
  const keyframe = keyframeModel(model, points);
  const reuse = reuseModel(model, index, live, points);
  const cacheBytesPerSample = points.reduce((sum, p) => sum + p.shape.reduce((a, d) => a * d, 1) * bytesOf(p.dtype), 0);
  return {
    keyframe: encodeModel(keyframe),
    reuse: encodeModel(reuse),
    points,
    flops: {
      full: fullFlops,
      reuse: reuseFlops,
      ratio: fullFlops.macs ? reuseFlops.macs / fullFlops.macs : 1,
      elementwiseRatio: fullFlops.elementwise ? reuseFlops.elementwise / fullFlops.elementwise : 1,
    },
    cacheBytesPerSample,
    outputNames,
    nodeCount: { full: index.nodes.length, reuse: live.length },
  };
}

function bytesOf(dtype: string): number {
  return ({ float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, uint8: 1, int8: 1, bool: 1 } as Record<string, number>)[dtype] ?? 4;
}

/** A ValueInfoProto for a cached tensor: element type and shape with symbolic dims named. */
function valueInfo(p: ReusePoint): OnnxValueInfo {
  return {
    name: p.name,
    type: {
      tensorType: {
        elemType: dtypeCode(p.dtype),
        shape: { dim: p.shape.map((d, k) => (p.symbolic[k] ? { dimParam: p.symbolic[k]! } : { dimValue: d })) },
      },
    },
  };
}

/** Full model + cached tensors as extra outputs. */
function keyframeModel(model: OnnxModel, points: ReusePoint[]): OnnxModel {
  const g = model.graph!;
  const existing = new Set((g.output ?? []).map((o) => o.name));
  const extra = points.filter((p) => !existing.has(p.name)).map(valueInfo);
  const valueInfoKept = (g.valueInfo ?? []).filter((v) => !points.some((p) => p.name === v.name));
  return withFields(model, { graph: withFields(g, { output: [...(g.output ?? []), ...extra], valueInfo: valueInfoKept }) });
}

/** Pruned model with cached tensors as inputs. */
function reuseModel(model: OnnxModel, index: GraphIndex, live: number[], points: ReusePoint[]): OnnxModel {
  const g = model.graph!;
  const cache = new Set(points.map((p) => p.name));
  const nodes: OnnxNode[] = live.map((i) => {
    const node = index.nodes[i];
    // a kept multi-output node that also produced a cached tensor: rename that output away
    if (!(node.output ?? []).some((o) => cache.has(o))) return node;
    return withFields(node, { output: node.output!.map((o) => (cache.has(o) ? `${o}__unused_in_reuse` : o)) });
  });
  const read = new Set<string>();
  for (const i of live) for (const n of index.nodeInputs[i]) read.add(n);
  for (const o of g.output ?? []) read.add(o.name ?? '');
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const initializer = (g.initializer ?? []).filter((t) => read.has(t.name ?? ''));
  const runtimeInputs = (g.input ?? []).filter((v) => !index.initializerNames.has(v.name ?? '') || read.has(v.name ?? ''));
  const valueInfoKept = (g.valueInfo ?? []).filter((v) => produced.has(v.name ?? '') && !cache.has(v.name ?? ''));
  return withFields(model, {
    graph: withFields(g, {
      node: nodes,
      initializer,
      input: [...runtimeInputs, ...points.map(valueInfo)],
      valueInfo: valueInfoKept,
    }),
  });
}
