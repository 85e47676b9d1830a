/**
 * Class accuracy of class-conditional samples: the share of samples whose classifier prediction
 * argmax_c logits[n, c] equals the label they were generated for (ties go to the lowest class).
 * @packageDocumentation
 */

/** Accuracy of one class. */
export interface ClassAccuracy {
  /** The intended label. */
  label: number;
  /** Samples generated for this label. */
  total: number;
  /** Of those, classified as this label. */
  correct: number;
  /** correct / total (NaN when no sample had this label). */
  accuracy: number;
}

/** Overall and per-class accuracy. */
export interface AccuracyResult {
  /** Share of all samples classified as their intended label. */
  accuracy: number;
  correct: number;
  total: number;
  /** One entry per class 0..C−1. */
  perClass: ClassAccuracy[];
  /** The predicted class of each sample. */
  predictions: Int32Array;
}

/** argmax over each row of `[N, C]` logits (first maximum wins). */
export function argmaxRows(logits: ArrayLike<number>, numClasses: number): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`argmaxRows: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (logits.length % numClasses !== 0) {
    throw new RangeError(`argmaxRows: ${logits.length} logits are not a whole number of rows of ${numClasses} classes; pass [N, C] row-major logits`);
  }
  const n = logits.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      const v = logits[i * numClasses + c]!;
      if (Number.isNaN(v)) throw new RangeError(`argmaxRows: logit [${i}, ${c}] is NaN; check the classifier input`);
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/**
 * Accuracy of `[N, C]` classifier logits against the labels the samples were generated for.
 * @param labels N intended labels in 0..C−1 (numbers, an integer typed array or a BigInt64Array).
 */
export function classAccuracy(logits: ArrayLike<number>, labels: ArrayLike<number> | BigInt64Array, numClasses: number): AccuracyResult {
  const predictions = argmaxRows(logits, numClasses);
  const n = predictions.length;
  if (n === 0) throw new RangeError('classAccuracy: no samples; pass at least one row of logits');
  if (labels.length !== n) {
    throw new RangeError(`classAccuracy: ${n} rows of logits but ${labels.length} labels; pass one label per sample`);
  }
  const totals = new Array<number>(numClasses).fill(0);
  const hits = new Array<number>(numClasses).fill(0);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const label = Number(labels[i]!);
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new RangeError(
        `classAccuracy: label ${labels[i]} of sample ${i} is not a class in 0..${numClasses - 1}; ` +
          'unconditional samples (null label) have no intended class and cannot be scored',
      );
    }
    totals[label]!++;
    if (predictions[i] === label) {
      hits[label]!++;
      correct++;
    }
  }
  const perClass = totals.map((total, label) => ({
    label,
    total,
    correct: hits[label]!,
    accuracy: total > 0 ? hits[label]! / total : NaN,
  }));
  return { accuracy: correct / n, correct, total: n, perClass, predictions };
}
