/**
 * `rediffuse/metrics`: FD-classifier (Fréchet distance in the shipped classifier's feature space),
 * KID, k-NN precision/recall, class accuracy, trajectory error, and the classifier and reference
 * statistics they use. Browser-safe (ml-matrix for the symmetric eigenproblems; the classifier runs
 * on an injected onnxruntime module); the Node-only file loaders `loadFashionMnist` and
 * `loadReferenceStatistics` live in the Node entry (`src/node/`).
 *
 * The list below is the public surface (docs/api.md); the rest of `src/metrics/` is internal.
 * @packageDocumentation
 */
export { featureStatistics, FeatureStatisticsAccumulator, type FeatureStatistics } from './feature-statistics.js';
export { FD_CLASSIFIER, frechetDistance, frechetDistanceTerms, type FrechetDistanceTerms, type GaussianStatistics } from './frechet.js';
export { kid, type KidOptions, type KidResult } from './kid.js';
export { precisionRecall, type PrecisionRecallOptions, type PrecisionRecallResult } from './precision-recall.js';
export { classAccuracy, type AccuracyResult, type ClassAccuracy } from './accuracy.js';
export {
  DATA_RANGE,
  psnrFromMse,
  trajectoryError,
  checkSameStart,
  alignReferenceGrid,
  TrajectoryStartError,
  START_TOLERANCE,
  type TrajectoryError,
  type TrajectoryStarts,
} from './trajectory.js';
export { parseReferenceStatistics, REFERENCE_STATISTICS_FILE, type ReferenceStatistics, type ReferenceStatisticsOptions } from './reference-stats.js';
export {
  loadClassifier,
  FeatureClassifier,
  CLASSIFIER_IMAGE_SIZE,
  type ClassifierOptions,
  type ClassifierOutput,
  type ClassifyOptions,
} from './classifier.js';
export { FASHION_MNIST_CLASSES, parseIdx, pixelsToUnitRange, type FashionMnistSplit, type IdxArray } from './fashion-mnist.js';
