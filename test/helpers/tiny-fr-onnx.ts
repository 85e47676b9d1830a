/**
 * Tiny ONNX diffusion networks built in code (no binary fixture), for the feature-reuse adapter tests.
 *
 * `tinyUnetOnnx()` — sample [batch,1,4,4] float32, timestep [batch] int64, class_labels [batch] int64
 * → out_sample [batch,1,4,4]:
 *   h0 = Conv3x3(sample)                                      (conv_in)
 *   e  = sin(0.01·t)·u + E[y]                                 (time + class embedding, [B,C,1,1])
 *   h1 = h0 + Conv3x3(relu(Conv3x3(h0) + e))                  (ResNet block: conv1, +emb, conv2, residual)
 *   h2 = h1 + Wo·softmax(Q Kᵀ)·V  over the 16 pixels           (attention block, residual)
 *   out = Conv3x3(concat(h2, h0))                             (U-Net skip concatenation)
 * so `frdiff` finds the ResNet conv1 output and the attention branch, `residual` both branches, and
 * `deepcache` the deep input h2 of the skip concatenation.
 *
 * `plainConvOnnx()` — two stacked convs, no residual block: no reuse point for any policy.
 * `concatOutputOnnx()` — a malformed export whose out_sample is [batch,2,4,4] (the sample concatenated
 * with itself): twice the values of the sample it predicts.
 * Weights are seeded pseudo-random; the models are deterministic.
 * @packageDocumentation
 */
import { encodeModel, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../src/model/onnx-graph/onnx-proto.js';

const C = 4;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

function floatInit(name: string, dims: number[], rnd: () => number, scale = 0.4): OnnxTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => rnd() * scale);
  return { name, dims, dataType: 1, rawData: new Uint8Array(data.buffer) };
}

function int64Init(name: string, values: number[]): OnnxTensor {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: 7, rawData: new Uint8Array(data.buffer) };
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}): OnnxNode {
  const attribute = Object.entries(attrs).map(([name, v]) =>
    Array.isArray(v) ? { name, type: 7, ints: v } : Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v },
  );
  return { opType, input, output, name: `${opType}_${output[0]}`, attribute };
}

const conv = (x: string, w: string, out: string) => node('Conv', [x, w], [out], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });

function io(name: string, elemType: number, dims: (number | string)[]) {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** Graph options: class labels or not, the timestep's element type (7 int64, 1 float32), the output's dims. */
interface GraphIo {
  withLabels: boolean;
  timestepType?: number;
  outDims?: (number | string)[];
}

function model(nodes: OnnxNode[], initializer: OnnxTensor[], { withLabels, timestepType = 7, outDims = ['batch', 1, 4, 4] }: GraphIo): Uint8Array {
  const m: OnnxModel = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'tiny',
      node: nodes,
      initializer,
      input: [io('sample', 1, ['batch', 1, 4, 4]), io('timestep', timestepType, ['batch']), ...(withLabels ? [io('class_labels', 7, ['batch'])] : [])],
      output: [io('out_sample', 1, outDims)],
    },
  };
  return encodeModel(m);
}

/** The tiny U-Net described in the module comment (class-conditional, null label 10). */
export function tinyUnetOnnx(seed = 7): Uint8Array {
  const r = prng(seed);
  const init = [
    floatInit('w_in', [C, 1, 3, 3], r),
    floatInit('w_c1', [C, C, 3, 3], r, 0.3),
    floatInit('w_c2', [C, C, 3, 3], r, 0.3),
    floatInit('w_out', [1, 2 * C, 3, 3], r, 0.3),
    floatInit('temb_u', [1, C, 1, 1], r, 1),
    floatInit('class_table', [11, C], r, 0.5),
    floatInit('wq', [C, C], r, 0.8),
    floatInit('wk', [C, C], r, 0.8),
    floatInit('wv', [C, C], r, 0.8),
    floatInit('wo', [C, C], r, 0.5),
    { name: 'tscale', dims: [], dataType: 1, rawData: new Uint8Array(Float32Array.of(0.01).buffer) },
    int64Init('shape_b111', [-1, 1, 1, 1]),
    int64Init('shape_bc11', [-1, C, 1, 1]),
    int64Init('shape_bc16', [0, C, 16]),
    int64Init('shape_bc44', [0, C, 4, 4]),
  ];
  const nodes: OnnxNode[] = [
    conv('sample', 'w_in', 'h0'),
    node('Cast', ['timestep'], ['t_f'], { to: 1 }),
    node('Mul', ['t_f', 'tscale'], ['t_s']),
    node('Sin', ['t_s'], ['t_sin']),
    node('Reshape', ['t_sin', 'shape_b111'], ['t_b111']),
    node('Mul', ['t_b111', 'temb_u'], ['temb']),
    node('Gather', ['class_table', 'class_labels'], ['cemb'], { axis: 0 }),
    node('Reshape', ['cemb', 'shape_bc11'], ['cemb4']),
    node('Add', ['temb', 'cemb4'], ['emb']),
    // ResNet block
    conv('h0', 'w_c1', 'r_c1'),
    node('Add', ['r_c1', 'emb'], ['r_e']),
    node('Relu', ['r_e'], ['r_a']),
    conv('r_a', 'w_c2', 'r_c2'),
    node('Add', ['h0', 'r_c2'], ['h1']),
    // attention block over the 16 pixels
    node('Reshape', ['h1', 'shape_bc16'], ['a_flat']),
    node('Transpose', ['a_flat'], ['a_seq'], { perm: [0, 2, 1] }),
    node('MatMul', ['a_seq', 'wq'], ['a_q']),
    node('MatMul', ['a_seq', 'wk'], ['a_k']),
    node('MatMul', ['a_seq', 'wv'], ['a_v']),
    node('Transpose', ['a_k'], ['a_kt'], { perm: [0, 2, 1] }),
    node('MatMul', ['a_q', 'a_kt'], ['a_s']),
    node('Softmax', ['a_s'], ['a_p'], { axis: -1 }),
    node('MatMul', ['a_p', 'a_v'], ['a_o']),
    node('MatMul', ['a_o', 'wo'], ['a_oo']),
    node('Transpose', ['a_oo'], ['a_ot'], { perm: [0, 2, 1] }),
    node('Reshape', ['a_ot', 'shape_bc44'], ['a_branch']),
    node('Add', ['h1', 'a_branch'], ['h2']),
    // skip concatenation + conv_out
    node('Concat', ['h2', 'h0'], ['cat'], { axis: 1 }),
    conv('cat', 'w_out', 'out_sample'),
  ];
  return model(nodes, init, { withLabels: true });
}

/** Two stacked convs and no residual block (no reuse point under any policy). */
export function plainConvOnnx(seed = 3): Uint8Array {
  const r = prng(seed);
  const init = [floatInit('w1', [C, 1, 3, 3], r), floatInit('w2', [1, C, 3, 3], r)];
  const nodes = [
    conv('sample', 'w1', 'h'),
    node('Cast', ['timestep'], ['t_f'], { to: 1 }),
    node('Relu', ['h'], ['h_r']),
    conv('h_r', 'w2', 'y'),
    node('Add', ['y', 't_f_b'], ['out_sample']),
    node('Reshape', ['t_f', 'shape_b111'], ['t_f_b']),
  ];
  // keep the graph topologically sorted
  const sorted = [nodes[0]!, nodes[1]!, nodes[5]!, nodes[2]!, nodes[3]!, nodes[4]!];
  return model(sorted, [...init, int64Init('shape_b111', [-1, 1, 1, 1])], { withLabels: false });
}

/**
 * out_sample = Concat(sample + t, sample + t, axis=1): [batch,2,4,4] for a [batch,1,4,4] sample
 * (timestep [batch] float32 is used, so onnxruntime keeps it as an input).
 */
export function concatOutputOnnx(): Uint8Array {
  const nodes = [
    node('Reshape', ['timestep', 'shape_b111'], ['t4']),
    node('Add', ['sample', 't4'], ['s']),
    node('Concat', ['s', 's'], ['out_sample'], { axis: 1 }),
  ];
  return model(nodes, [int64Init('shape_b111', [-1, 1, 1, 1])], { withLabels: false, timestepType: 1, outDims: ['batch', 2, 4, 4] });
}
