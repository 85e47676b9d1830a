/**
 * Quality metrics: FD-classifier (Fréchet distance in the shipped classifier's feature space), KID,
 * k-NN precision/recall, class accuracy, trajectory error, and the classifier and reference
 * statistics they use. Depends on ml-matrix for the symmetric eigenproblems.
 * @packageDocumentation
 */
export * from './feature-statistics.js';
export * from './symmetric-matrix.js';
export * from './frechet.js';
export * from './kid.js';
export * from './precision-recall.js';
export * from './accuracy.js';
export * from './trajectory.js';
export * from './reference-stats.js';
export * from './classifier.js';
export * from './fashion-mnist.js';
