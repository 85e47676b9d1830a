/**
 * Running the chunks of an ONNX model call and reading the prediction out of the results: the
 * output of the signature, checked to be a float tensor of exactly `[rows fed, ...sampleShape]`
 * (a larger output — e.g. the sample concatenated with something along the channels — would be
 * read with elements of different samples mixed) and finite, copied into one array of the state's
 * precision. How a chunk runs is the caller's: one session (the plain backend), or the keyframe /
 * reuse sessions of feature reuse with their caches.
 * @packageDocumentation
 */
import type { NumArray } from '../core/tensor.js';
import { firstNonFinite } from '../core/tensor.js';
import { fromFloat16Bits } from './float16.js';
import type { OnnxChunk, OnnxFeedRequest } from './onnx-feeds.js';
import type { OnnxSignature } from './onnx-signature.js';
import type { OrtTensorLike } from './ort-types.js';

/** Runs one chunk and returns the model's outputs by name (the runner disposes them after reading). */
export type OnnxChunkRun = (chunk: OnnxChunk) => Promise<Record<string, OrtTensorLike>>;

/** What {@link OnnxRunner} needs to know of its model. */
export interface OnnxRunnerOptions {
  signature: OnnxSignature;
  sampleShape: readonly number[];
  /** Name used in error messages. */
  label: string;
}

/** Runs requests chunk by chunk and assembles the prediction (see the module documentation). */
export class OnnxRunner {
  private readonly opts: OnnxRunnerOptions;
  private readonly sampleSize: number;

  constructor(opts: OnnxRunnerOptions) {
    this.opts = opts;
    this.sampleSize = opts.sampleShape.reduce((a, b) => a * b, 1);
  }

  /**
   * Run every chunk of `request` through `run`, in order, and return the prediction laid out
   * `[batch, ...sampleShape]` in the state's precision. Checks `signal` before each chunk.
   */
  async run(request: OnnxFeedRequest, run: OnnxChunkRun, signal?: AbortSignal): Promise<NumArray> {
    const n = request.batch * this.sampleSize;
    const out = request.float64 ? new Float64Array(n) : new Float32Array(n);
    for (let k = 0; k < request.chunkCount; k++) {
      signal?.throwIfAborted();
      const chunk = request.chunk(k);
      const results = await run(chunk);
      try {
        out.set(this.read(results, chunk, request.modelTime), chunk.start * this.sampleSize);
      } finally {
        for (const v of Object.values(results)) v.dispose?.();
      }
    }
    return out;
  }

  /** The chunk's prediction rows: the signature's output, checked for element type, shape and finiteness. */
  private read(results: Record<string, OrtTensorLike>, chunk: OnnxChunk, modelTime: number): ArrayLike<number> {
    const { label, signature, sampleShape } = this.opts;
    const name = signature.output;
    const y = results[name];
    if (!y) throw new Error(`${label}: onnxruntime returned no "${name}" output`);
    const expected = [chunk.feedRows, ...sampleShape];
    if (y.dims.length !== expected.length || y.dims.some((d, i) => d !== expected[i])) {
      throw new Error(
        `${label}: output "${name}" has shape [${y.dims.join(',')}] but the model must return one prediction per sample, ` +
          `shaped like its ${signature.sample.name} input: expected [${expected.join(',')}]. ` +
          `Re-export the model so that ${name} has the shape of ${signature.sample.name} (return the prediction alone, not concatenated or reshaped)`,
      );
    }
    const values = readFloats(y, label);
    const used = chunk.rows * this.sampleSize;
    if (values.length < used) {
      throw new Error(
        `${label}: output "${name}" holds ${values.length} values but declares shape [${y.dims.join(',')}]; the runtime returned a truncated tensor`,
      );
    }
    const bad = firstNonFinite(values, 0, used);
    if (bad >= 0) {
      throw new Error(
        `${label}: the model returned ${values[bad]} at timestep ${modelTime} (sample ${chunk.start + Math.floor(bad / this.sampleSize)}); ` +
          'the export or its weights are broken, or its timestep/label inputs are out of range',
      );
    }
    return values.length === used ? values : (values as Float32Array).subarray(0, used);
  }
}

/** The float values of an output tensor (float32, float64, or float16 as bits or Float16Array). */
function readFloats(y: OrtTensorLike, label: string): ArrayLike<number> {
  const d = y.data;
  if (y.type === 'float16' && d instanceof Uint16Array) return fromFloat16Bits(d);
  if (y.type === 'float32' || y.type === 'float64' || y.type === 'float16') return d as ArrayLike<number>;
  throw new Error(`${label}: output has element type ${y.type}; rediffuse needs a float output`);
}
