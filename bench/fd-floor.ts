/**
 * The FD-classifier floor at a given sample count: real Fashion-MNIST test images (not generated)
 * against the shipped test-set statistics, so a model's FD-classifier at N samples can be read
 * against what N real images score (the estimator is biased upward at small N).
 *
 *   npx tsx bench/fd-floor.ts [--counts 128,1000,5000]   (needs Debian's dataset-fashion-mnist)
 */
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { loadClassifier, pixelsToUnitRange, featureStatistics, frechetDistance } from '../src/metrics/index.js';
import { loadFashionMnist, loadReferenceStatistics, packageRoot } from '../src/node/index.js';

const i = process.argv.indexOf('--counts');
const counts = (i >= 0 ? process.argv[i + 1]! : '128,1000,5000').split(',').map(Number);
const test = await loadFashionMnist('t10k');
const ref = await loadReferenceStatistics();
const clf = await loadClassifier(ort, join(packageRoot(), 'models', 'fashion-classifier.onnx'));
console.log('| real test images | FD-classifier vs test-set statistics |\n|---|---|');
for (const n of counts) {
  // The last n test images, so the 5000-image row matches the shipped half-vs-half floor's data.
  const images = pixelsToUnitRange(test.pixels.subarray((10000 - n) * 784));
  const out = await clf.classify(images);
  console.log(`| ${n} (images ${10000 - n}…9999) | ${frechetDistance(featureStatistics(out.features, out.featureDim), ref).toFixed(3)} |`);
}
clf.release();
