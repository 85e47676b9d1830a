/**
 * Loading an ONNX model into an onnxruntime session: the session options rediffuse sets (threads,
 * execution providers, sequential execution, full graph optimisation) and the error that says what
 * to do with a file onnxruntime cannot load. Shared by the plain backend and the feature-reuse model.
 * @packageDocumentation
 */
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptionsLike } from './ort-types.js';

/** The session settings a caller may choose (a subset of the backend options). */
export interface OnnxSessionSettings {
  /** onnxruntime intra-op threads (default, or 0: onnxruntime's choice, usually all cores). */
  threads?: number;
  /** onnxruntime execution providers, e.g. `['cpu']` or `['webgpu', 'wasm']` (default: onnxruntime's). */
  executionProviders?: readonly unknown[];
}

/** onnxruntime session options for `settings`; throws a RangeError naming the fix for a bad thread count. */
export function onnxSessionOptions(settings: OnnxSessionSettings): OrtSessionOptionsLike {
  const { threads, executionProviders } = settings;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 0)) {
    throw new RangeError(`threads must be a non-negative integer (0 = onnxruntime's default), got ${threads}`);
  }
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(threads ? { intraOpNumThreads: threads } : {}),
    ...(executionProviders ? { executionProviders } : {}),
  };
}

/**
 * Create a session for `model` (bytes, or a path/URL onnxruntime opens itself). A file onnxruntime
 * rejects becomes an error that names `label` and says to re-export or check the file.
 */
export async function createOnnxSession(
  ort: OrtModuleLike,
  model: string | Uint8Array,
  options: OrtSessionOptionsLike,
  label: string,
): Promise<OrtSessionLike> {
  try {
    return await ort.InferenceSession.create(model, options);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${label} is not a valid ONNX model or could not be loaded (onnxruntime: ${msg.trim()}); ` +
        're-export it (torch.onnx.export, opset ≥ 14) or check that the file is complete',
      { cause: err },
    );
  }
}
