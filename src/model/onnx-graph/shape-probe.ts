/**
 * Shapes and element types of every tensor of a graph, measured by running the model once in
 * onnxruntime with all intermediate tensors exposed as outputs (robust to any op, unlike a
 * hand-written shape inference). Two probes, at batch 1 and batch 2, tell which dimension of each
 * tensor follows the batch; a third, with the other symbolic input dims doubled, tells which follow
 * those (when the doubled shape is valid for the model).
 * @packageDocumentation
 */
import type { OrtModuleLike, OrtTensorData, OrtTensorLike } from '../ort-types.js';
import { GraphIndex } from './graph-index.js';
import { dtypeInfo, encodeModel, int64ToNumber, withFields, type OnnxModel, type OnnxValueInfo } from './onnx-proto.js';

/** Shape and type of one tensor. */
export interface TensorInfo {
  /** Shape at batch 1. */
  shape: number[];
  /** Per dimension: a symbolic name (`batch`, or the input dim it follows) or `null` when fixed. */
  symbolic: (string | null)[];
  /** onnxruntime element type name, e.g. `float32`. */
  dtype: string;
}

/** Options of {@link probeTensorShapes}. */
export interface ShapeProbeOptions {
  /** Values for symbolic input dimensions other than the leading batch dimension (default 8 each). */
  dimValues?: Record<string, number>;
}

/** A symbolic or fixed input dimension. */
interface InputDim {
  value: number;
  param: string | null;
}

/** Shapes of every runtime input and computed tensor of `model` (keyed by tensor name), measured with `ort`. */
export async function probeTensorShapes(model: OnnxModel, ort: OrtModuleLike, options: ShapeProbeOptions = {}): Promise<Map<string, TensorInfo>> {
  const index = new GraphIndex(model.graph!);
  const inputs = (model.graph!.input ?? []).filter((v) => index.inputNames.includes(v.name ?? ''));
  const dimsOf = (v: OnnxValueInfo): InputDim[] =>
    (v.type?.tensorType?.shape?.dim ?? []).map((d) => ({
      value: d.dimValue !== null && d.dimValue !== undefined ? int64ToNumber(d.dimValue) : 0,
      param: d.dimValue !== null && d.dimValue !== undefined && int64ToNumber(d.dimValue) > 0 ? null : d.dimParam || 'unnamed',
    }));
  const otherParams = new Set<string>();
  for (const v of inputs)
    dimsOf(v).forEach((d, k) => {
      if (d.param && k > 0) otherParams.add(d.param);
    });

  const probeBytes = encodeModel(exposeAll(model, index));
  const session = await ort.InferenceSession.create(probeBytes, { graphOptimizationLevel: 'disabled' });
  /** Feeds and all computed tensors of one run. */
  const run = async (batch: number, otherScale: number): Promise<Record<string, OrtTensorLike>> => {
    const feeds: Record<string, OrtTensorLike> = {};
    for (const v of inputs) {
      const shape = dimsOf(v).map((d, k) => {
        if (!d.param) return d.value;
        if (k === 0) return batch;
        return (options.dimValues?.[d.param] ?? 8) * otherScale;
      });
      const elem = v.type?.tensorType?.elemType ?? 1;
      feeds[v.name!] = dummyTensor(ort, dtypeInfo(elem).name, shape);
    }
    try {
      return { ...feeds, ...(await session.run(feeds)) };
    } catch (err) {
      const dims = [...otherParams].map((p) => `${p}=${options.dimValues?.[p] ?? 8}`).join(', ');
      throw new Error(
        `running the model to measure tensor shapes failed (${(err as Error).message.split('\n')[0]})` +
          (dims
            ? `; symbolic input dims were set to ${dims}: pass the sizes the model expects (dimValues / --dim name=value)`
            : '; check that the model runs in onnxruntime'),
        { cause: err },
      );
    }
  };
  let a: Record<string, OrtTensorLike>;
  let b: Record<string, OrtTensorLike>;
  let c: Record<string, OrtTensorLike> | null = null;
  try {
    a = await run(1, 1);
    b = await run(2, 1);
    if (otherParams.size) c = await run(1, 2).catch(() => null);
  } finally {
    await session.release?.();
  }
  const result = new Map<string, TensorInfo>();
  for (const [name, t] of Object.entries(a)) {
    const shape = [...t.dims];
    const tb = b[name]?.dims ?? shape;
    const tc = c?.[name]?.dims ?? shape;
    const symbolic = shape.map((d, k) => (tb[k] !== d ? 'batch' : tc[k] !== d ? `dim_${name}_${k}` : null));
    result.set(name, { shape, symbolic, dtype: t.type });
  }
  return result;
}

/** A copy of `model` whose outputs are every computed tensor. */
function exposeAll(model: OnnxModel, index: GraphIndex): OnnxModel {
  const names = new Set<string>();
  for (const node of index.nodes) for (const o of node.output ?? []) if (o) names.add(o);
  return withFields(model, { graph: withFields(model.graph!, { output: [...names].map((name) => ({ name })), valueInfo: [] }) });
}

/** A deterministic tensor of the given type: small pseudo-random floats, ones for integers. */
function dummyTensor(ort: OrtModuleLike, type: string, shape: number[]): OrtTensorLike {
  const size = shape.reduce((p, d) => p * d, 1);
  let data: OrtTensorData;
  switch (type) {
    case 'float32':
    case 'float64': {
      const arr = type === 'float32' ? new Float32Array(size) : new Float64Array(size);
      for (let i = 0; i < size; i++) arr[i] = Math.sin(i * 12.9898 + 1.234) * 0.9;
      data = arr;
      break;
    }
    case 'float16':
      data = new Uint16Array(size).fill(0x3c00);
      break;
    case 'int64':
      data = new BigInt64Array(size).fill(1n);
      break;
    case 'int32':
      data = new Int32Array(size).fill(1);
      break;
    default:
      throw new Error(
        `graph input of element type ${type} is not supported by the shape probe; rediffuse handles float32/float16/float64/int64/int32 inputs`,
      );
  }
  return new ort.Tensor(type as 'float32', data, shape);
}
