/**
 * Graph surgery for adaptive recompute: the PROBE graph, which computes only the recompute signal.
 *
 * The signal is the First-Block-Cache one: the residual branch output `v` of the first residual
 * block `x + v` of the graph (the first residual Add in topological order, as `findResidualAdds`
 * finds it — the first ResNet block of a U-Net, the first gated attention branch of a DiT), or a
 * tensor named by the caller. The probe keeps only the nodes that tensor needs (dead-code
 * elimination from it), the initializers they read and every runtime input of the model (so the
 * same feeds serve the probe, the full and the reuse graph); its one output is the signal. It
 * computes the same ops on the same values as the full graph, so its signal equals that tensor of a
 * full call exactly.
 * @packageDocumentation
 */
import type { AnalyzedOnnxModel } from './feature-reuse-graphs.js';
import { totalOpCount, type OpCount } from './flops.js';
import { dtypeCode, encodeModel, withFields, type OnnxValueInfo } from './onnx-proto.js';
import { findResidualAdds } from './reuse-points.js';

/** Result of {@link buildProbeGraph}. */
export interface ProbeGraph {
  /** The probe model (ONNX bytes for `InferenceSession.create`). */
  bytes: Uint8Array;
  /** Name of the signal tensor (the probe's only output). */
  signal: string;
  /** Where the signal came from. */
  source: 'first-residual-branch' | 'explicit';
  /** Shape of the signal at batch 1 and its symbolic dimensions. */
  shape: number[];
  symbolic: (string | null)[];
  /** Work of the probe (batch 1) and its share of the full model's MACs. */
  flops: OpCount;
  macsRatio: number;
  /** Nodes kept. */
  nodeCount: number;
}

/** The first residual block's branch output (the FBCache signal), or an error naming the fix. */
export function firstBlockSignal(analyzed: AnalyzedOnnxModel): string {
  const adds = findResidualAdds(analyzed.index, analyzed.shapes);
  if (adds.length === 0) {
    throw new Error('adaptive recompute: the graph has no residual block to probe; name a signal tensor (rediffuse inspect lists the candidates)');
  }
  return adds[0]!.branch;
}

/** Derive the probe graph of `analyzed` for `signal` (default {@link firstBlockSignal}). */
export function buildProbeGraph(analyzed: AnalyzedOnnxModel, signal?: string): ProbeGraph {
  const { model, index, shapes, weightShape, fullFlops } = analyzed;
  const name = signal ?? firstBlockSignal(analyzed);
  const info = shapes.get(name);
  if (!info || !index.producer.has(name)) {
    throw new Error(
      `adaptive recompute: the graph computes no tensor "${name}"; name a tensor rediffuse inspect lists, or omit it for the first block's residual`,
    );
  }
  const live = index.liveNodes([name], new Set());
  const read = new Set<string>();
  for (const i of live) for (const n of index.nodeInputs[i]!) read.add(n);
  const produced = new Set(live.flatMap((i) => index.nodes[i]!.output ?? []));
  const g = model.graph!;
  const out: OnnxValueInfo = {
    name,
    type: {
      tensorType: {
        elemType: dtypeCode(info.dtype),
        shape: { dim: info.shape.map((d, k) => (info.symbolic[k] ? { dimParam: info.symbolic[k]! } : { dimValue: d })) },
      },
    },
  };
  const probe = withFields(model, {
    graph: withFields(g, {
      node: live.map((i) => index.nodes[i]!),
      initializer: (g.initializer ?? []).filter((t) => read.has(t.name ?? '')),
      input: (g.input ?? []).filter((v) => !index.initializerNames.has(v.name ?? '') || read.has(v.name ?? '')),
      output: [out],
      valueInfo: (g.valueInfo ?? []).filter((v) => v.name !== name && produced.has(v.name ?? '')),
    }),
  });
  const flops = totalOpCount(index, live, shapes, weightShape);
  return {
    bytes: encodeModel(probe),
    signal: name,
    source: signal === undefined ? 'first-residual-branch' : 'explicit',
    shape: info.shape,
    symbolic: info.symbolic,
    flops,
    macsRatio: fullFlops.macs ? flops.macs / fullFlops.macs : 1,
    nodeCount: live.length,
  };
}
