/**
 * Operation counts per node, from the measured tensor shapes (batch 1).
 *
 * MACs (multiply-accumulates) for the linear ops, from output size × reduction length:
 *   Conv:          |Y| · (C_in/groups) · ∏k          (weight W: [C_out, C_in/groups, k…])
 *   ConvTranspose: |X| · (C_out/groups) · ∏k         (weight W: [C_in, C_out/groups, k…])
 *   MatMul:        |Y| · K                            (A: […, N, K])
 *   Gemm:          |Y| · K                            (K from A and transA)
 * Every other op counts one elementwise operation per output element (softmax, normalisations,
 * activations, adds, …) and is reported separately; reshapes and other data movement count 0.
 * @packageDocumentation
 */
import type { GraphIndex } from './graph-index.js';
import type { TensorInfo } from './shape-probe.js';

/** Work of a set of nodes. */
export interface OpCount {
  /** Multiply-accumulates of Conv/ConvTranspose/MatMul/Gemm. */
  macs: number;
  /** Elementwise operations (one per output element of every other compute op). */
  elementwise: number;
}

const LINEAR_OPS = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);
/** Ops that only move or describe data. */
const DATA_MOVEMENT_OPS = new Set([
  'Reshape',
  'Transpose',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Shape',
  'Size',
  'Gather',
  'Slice',
  'Concat',
  'Split',
  'Constant',
  'ConstantOfShape',
  'Cast',
  'Expand',
  'Tile',
  'Range',
  'Dropout',
]);

const numel = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** The work of node `i` at batch 1 (zero for nodes whose shapes are unknown). */
export function nodeOpCount(
  index: GraphIndex,
  i: number,
  shapes: ReadonlyMap<string, TensorInfo>,
  weightShape: (name: string) => number[] | undefined,
): OpCount {
  const node = index.nodes[i];
  const op = index.op(i);
  const out = shapes.get(node.output?.[0] ?? '')?.shape;
  if (!out) return { macs: 0, elementwise: 0 };
  const shapeOf = (name: string | undefined) => (name ? (shapes.get(name)?.shape ?? weightShape(name)) : undefined);
  if (LINEAR_OPS.has(op)) {
    const inputs = node.input ?? [];
    if (op === 'Conv') {
      const w = shapeOf(inputs[1]);
      return { macs: w ? numel(out) * numel(w.slice(1)) : 0, elementwise: 0 };
    }
    if (op === 'ConvTranspose') {
      const w = shapeOf(inputs[1]);
      const x = shapeOf(inputs[0]);
      return { macs: w && x ? numel(x) * numel(w.slice(1)) : 0, elementwise: 0 };
    }
    if (op === 'MatMul') {
      const a = shapeOf(inputs[0]);
      return { macs: a ? numel(out) * a[a.length - 1] : 0, elementwise: 0 };
    }
    const a = shapeOf(inputs[0]);
    const transA = index.intAttr(i, 'transA', 0);
    const k = a ? (transA ? a[0] : a[a.length - 1]) : 0;
    return { macs: numel(out) * k, elementwise: inputs[2] ? numel(out) : 0 };
  }
  if (DATA_MOVEMENT_OPS.has(op)) return { macs: 0, elementwise: 0 };
  return { macs: 0, elementwise: numel(out) };
}

/** Sum of {@link nodeOpCount} over `nodes`. */
export function totalOpCount(
  index: GraphIndex,
  nodes: Iterable<number>,
  shapes: ReadonlyMap<string, TensorInfo>,
  weightShape: (name: string) => number[] | undefined,
): OpCount {
  const total = { macs: 0, elementwise: 0 };
  for (const i of nodes) {
    const c = nodeOpCount(index, i, shapes, weightShape);
    total.macs += c.macs;
    total.elementwise += c.elementwise;
  }
  return total;
}
