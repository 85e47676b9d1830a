/**
 * The shipped Fashion-MNIST classifier's verdict on images, for tests that check a sampler drew the
 * class it was asked for.
 */
import * as ortNode from 'onnxruntime-node';
import { argmaxRows } from '../../src/metrics/accuracy.js';
import { loadClassifier } from '../../src/metrics/classifier.js';
import type { OrtModuleLike } from '../../src/model/ort-types.js';

/** The class (argmax of the logits) of each [1, 28, 28] image in [−1, 1] (clamped first, as a sample is). */
export async function classifyFashion(images: Float32Array): Promise<number[]> {
  const c = await loadClassifier(ortNode as unknown as OrtModuleLike, 'models/fashion-classifier.onnx');
  const out = await c.classify(images);
  await c.release();
  return Array.from(argmaxRows(out.logits, out.numClasses));
}
