/**
 * The slice of the onnxruntime JavaScript API rediffuse uses, written structurally so that both
 * `onnxruntime-node` and `onnxruntime-web` (which share `onnxruntime-common`) can be injected
 * without this package importing either: `InferenceSession.create`, `session.run`, the
 * `inputNames`/`inputMetadata` introspection of ort ≥ 1.20, and the `Tensor` constructor.
 * @packageDocumentation
 */

/** Element types rediffuse feeds or reads (onnxruntime's `Tensor.Type` names). */
export type OrtElementType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32';

/** Typed arrays rediffuse builds tensors from (float16 travels as raw bits in a Uint16Array). */
export type OrtTensorData = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array;

/** A tensor as onnxruntime returns it. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}

/** Introspected metadata of one model input or output (onnxruntime ≥ 1.20). */
export interface OrtValueMetadataLike {
  readonly name: string;
  readonly isTensor: boolean;
  /** Element type, e.g. `float32`; present when `isTensor`. */
  readonly type?: string;
  /** Dimensions: numbers, or strings for symbolic ones (e.g. `batch`); empty when unknown. */
  readonly shape?: ReadonlyArray<number | string>;
}

/** Session options rediffuse sets (a subset of onnxruntime's `SessionOptions`). */
export interface OrtSessionOptionsLike {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  executionProviders?: readonly unknown[];
}

/** A loaded model. */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadataLike[];
  readonly outputMetadata?: readonly OrtValueMetadataLike[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}

/** The onnxruntime module (`import * as ort from 'onnxruntime-node'` or `'onnxruntime-web'`). */
export interface OrtModuleLike {
  readonly InferenceSession: {
    /** A model from its bytes, or from a path/URL that onnxruntime opens itself. */
    create(model: Uint8Array | string, options?: OrtSessionOptionsLike): Promise<OrtSessionLike>;
  };
  readonly Tensor: new (type: OrtElementType, data: OrtTensorData, dims?: readonly number[]) => OrtTensorLike;
}
