/**
 * The project's quality meter: the shipped Fashion-MNIST classifier (models/fashion-classifier.onnx)
 * run through an injected onnxruntime module. Its ONNX signature is
 *
 *   images [B, 1, 28, 28] float32 in [−1, 1]  →  logits [B, C] (C = 10),  features [B, D]
 *
 * where `features` is the penultimate layer: the space in which FD-classifier, KID and k-NN
 * precision/recall are measured, and `logits` give the class accuracy of conditional samples.
 * @packageDocumentation
 */
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from '../model/ort-types.js';

/** Numbers per image: 1 × 28 × 28. */
export const CLASSIFIER_IMAGE_SIZE = 28 * 28;

/** Options of {@link loadClassifier}. */
export interface ClassifierOptions {
  /** Images per onnxruntime call. Default 256. */
  batchSize?: number;
  /** onnxruntime intra-op threads (default: onnxruntime's choice). */
  threads?: number;
}

/** Options of {@link FeatureClassifier.classify}. */
export interface ClassifyOptions {
  /**
   * Clamp pixels to [−1, 1] first, as a sample is clamped before it becomes an image. Default true;
   * with false, out-of-range pixels are passed on unchanged.
   */
  clamp?: boolean;
}

/** Classifier outputs for N images. */
export interface ClassifierOutput {
  /** Number of images N. */
  count: number;
  /** Number of classes C. */
  numClasses: number;
  /** Feature dimension D. */
  featureDim: number;
  /** `[N, C]` row-major. */
  logits: Float32Array;
  /** `[N, D]` row-major. */
  features: Float32Array;
}

function float32Output(outputs: Record<string, OrtTensorLike>, name: string, batch: number): { data: Float32Array; width: number } {
  const t = outputs[name];
  if (!t) throw new Error(`classifier: the model returned no '${name}' output; use the shipped fashion-classifier.onnx`);
  if (!(t.data instanceof Float32Array) || t.dims.length !== 2 || t.dims[0] !== batch) {
    throw new Error(
      `classifier: output '${name}' should be float32 [${batch}, W], got ${t.type} [${t.dims.join(', ')}]; ` +
        'the classifier must be exported with outputs logits [B, C] and features [B, D]',
    );
  }
  return { data: t.data, width: t.dims[1]! };
}

/** A loaded classifier; create with {@link loadClassifier}. */
export class FeatureClassifier {
  /** Number of classes C (from the model's `logits`). */
  readonly numClasses: number;
  /** Feature dimension D (from the model's `features`). */
  readonly featureDim: number;

  /** @internal use {@link loadClassifier}. */
  constructor(
    private readonly ort: OrtModuleLike,
    private readonly session: OrtSessionLike,
    private readonly batchSize: number,
    numClasses: number,
    featureDim: number,
  ) {
    this.numClasses = numClasses;
    this.featureDim = featureDim;
  }

  /** Run one batch (already clamped / converted to float32). */
  private async runBatch(images: Float32Array, batch: number): Promise<{ logits: Float32Array; features: Float32Array }> {
    const input = new this.ort.Tensor('float32', images, [batch, 1, 28, 28]);
    const outputs = await this.session.run({ images: input });
    const logits = float32Output(outputs, 'logits', batch);
    const features = float32Output(outputs, 'features', batch);
    return { logits: logits.data, features: features.data };
  }

  /**
   * Logits and features of `[N, 1, 28, 28]` images in [−1, 1] (flat, float32 or float64), run in
   * batches of the configured size.
   */
  async classify(images: ArrayLike<number>, options: ClassifyOptions = {}): Promise<ClassifierOutput> {
    const { clamp = true } = options;
    if (images.length === 0 || images.length % CLASSIFIER_IMAGE_SIZE !== 0) {
      throw new RangeError(
        `classifier: ${images.length} numbers are not a whole, non-zero number of 1×28×28 images; ` +
          'pass images laid out [N, 1, 28, 28] with pixels in [-1, 1]',
      );
    }
    const count = images.length / CLASSIFIER_IMAGE_SIZE;
    const logits = new Float32Array(count * this.numClasses);
    const features = new Float32Array(count * this.featureDim);
    for (let start = 0; start < count; start += this.batchSize) {
      const batch = Math.min(this.batchSize, count - start);
      const chunk = new Float32Array(batch * CLASSIFIER_IMAGE_SIZE);
      const offset = start * CLASSIFIER_IMAGE_SIZE;
      for (let i = 0; i < chunk.length; i++) {
        const v = images[offset + i]!;
        if (!Number.isFinite(v)) {
          throw new RangeError(`classifier: pixel ${offset + i} is ${v}; the images must be finite (did the sampler diverge?)`);
        }
        chunk[i] = clamp ? Math.min(1, Math.max(-1, v)) : v;
      }
      const out = await this.runBatch(chunk, batch);
      logits.set(out.logits, start * this.numClasses);
      features.set(out.features, start * this.featureDim);
    }
    return { count, numClasses: this.numClasses, featureDim: this.featureDim, logits, features };
  }

  /** Free the onnxruntime session. */
  async release(): Promise<void> {
    await this.session.release?.();
  }
}

/**
 * Load the feature classifier from a path or the ONNX bytes with the injected onnxruntime module
 * (`import * as ort from 'onnxruntime-node'`), check its signature and read C and D off one probe run.
 */
export async function loadClassifier(ort: OrtModuleLike, model: string | Uint8Array, options: ClassifierOptions = {}): Promise<FeatureClassifier> {
  const { batchSize = 256, threads } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`loadClassifier: batchSize must be a positive integer, got ${batchSize}`);
  }
  const sessionOptions = threads === undefined ? {} : { intraOpNumThreads: threads };
  const session = await ort.InferenceSession.create(model, sessionOptions);
  const missing = [
    ...['images'].filter((n) => !session.inputNames.includes(n)).map((n) => `input '${n}'`),
    ...['logits', 'features'].filter((n) => !session.outputNames.includes(n)).map((n) => `output '${n}'`),
  ];
  if (missing.length > 0) {
    throw new Error(
      `loadClassifier: the model lacks ${missing.join(', ')} (it has inputs [${session.inputNames.join(', ')}], ` +
        `outputs [${session.outputNames.join(', ')}]); pass the shipped models/fashion-classifier.onnx`,
    );
  }
  const probe = await session.run({ images: new ort.Tensor('float32', new Float32Array(CLASSIFIER_IMAGE_SIZE), [1, 1, 28, 28]) });
  const numClasses = float32Output(probe, 'logits', 1).width;
  const featureDim = float32Output(probe, 'features', 1).width;
  return new FeatureClassifier(ort, session, batchSize, numClasses, featureDim);
}
