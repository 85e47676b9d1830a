/**
 * The shipped reference statistics: mean and covariance of the shipped classifier's `features` on
 * the Fashion-MNIST test set, so FD-classifier can be measured without the data set or Python.
 *
 * Expected format of models/fashion-test-stats.json (keys other than these are kept as metadata):
 *
 * ```json
 * {
 *   "dim": 128,                      // feature dimension D
 *   "count": 10000,                  // images the statistics come from
 *   "mean": [ ...D numbers ],
 *   "covariance": [ ...D·D numbers ] // row-major, or D rows of D numbers; unbiased (N−1)
 * }
 * ```
 *
 * or, for the numbers in a sibling binary file, `"mean"`/`"covariance"` omitted and
 * `"binary": { "file": "fashion-test-stats.bin", "dtype": "float64" | "float32" }`, the file holding
 * the D mean values then the D·D covariance values, little-endian, nothing else.
 * @packageDocumentation
 */
import type { FeatureStatistics } from './feature-statistics.js';
import { psdEigenvalues, symmetricEigen } from './symmetric-matrix.js';

/** Reference statistics with the metadata of their file. */
export interface ReferenceStatistics extends FeatureStatistics {
  /** Every other key of the JSON file (classifier, dataset, split, …). */
  metadata: Record<string, unknown>;
}

/** Options of {@link parseReferenceStatistics}. */
export interface ReferenceStatisticsOptions {
  /** The feature dimension the caller's classifier produces; a mismatch throws. */
  expectedDim?: number;
  /** Where the statistics came from, for error messages. */
  source?: string;
  /** Check that the covariance is positive semi-definite (one eigendecomposition). Default true. */
  checkPsd?: boolean;
}

function flatNumbers(value: unknown, what: string, source: string): Float64Array {
  const rows = Array.isArray(value) && value.length > 0 && Array.isArray(value[0]) ? (value as unknown[]).flat() : value;
  if (!Array.isArray(rows)) throw new Error(`${source}: '${what}' must be an array of numbers; regenerate the statistics file`);
  const out = new Float64Array(rows.length);
  rows.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${source}: '${what}'[${i}] is ${JSON.stringify(v)}, not a finite number; regenerate the statistics file`);
    }
    out[i] = v;
  });
  return out;
}

function fromBinary(bytes: Uint8Array, dtype: unknown, dim: number, source: string): { mean: Float64Array; covariance: Float64Array } {
  const width = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 0;
  if (width === 0) throw new Error(`${source}: binary dtype ${JSON.stringify(dtype)} is not 'float64' or 'float32'`);
  const expected = (dim + dim * dim) * width;
  if (bytes.byteLength !== expected) {
    throw new Error(
      `${source}: the binary file holds ${bytes.byteLength} bytes, but D = ${dim} needs ${expected} ` +
        `(mean + covariance in ${dtype}); the .bin and .json files do not belong together`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const all = new Float64Array(dim + dim * dim);
  for (let i = 0; i < all.length; i++) all[i] = width === 8 ? view.getFloat64(i * 8, true) : view.getFloat32(i * 4, true);
  return { mean: all.slice(0, dim), covariance: all.slice(dim) };
}

/**
 * Validate parsed reference statistics (the JSON object, plus the bytes of its binary file when the
 * JSON names one).
 */
export function parseReferenceStatistics(json: unknown, binary?: Uint8Array, options: ReferenceStatisticsOptions = {}): ReferenceStatistics {
  const { expectedDim, source = 'reference statistics', checkPsd = true } = options;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: expected a JSON object with 'mean' and 'covariance'`);
  }
  const { mean: rawMean, covariance: rawCov, dim: rawDim, count: rawCount, ...metadata } = json as Record<string, unknown>;
  let mean: Float64Array;
  let covariance: Float64Array;
  if (rawMean === undefined && typeof metadata['binary'] === 'object' && metadata['binary'] !== null) {
    if (!binary) throw new Error(`${source}: the statistics are in a binary file; pass its bytes (or use loadReferenceStatistics)`);
    if (typeof rawDim !== 'number') throw new Error(`${source}: a binary statistics file needs 'dim' in the JSON`);
    ({ mean, covariance } = fromBinary(binary, (metadata['binary'] as Record<string, unknown>)['dtype'], rawDim, source));
  } else {
    mean = flatNumbers(rawMean, 'mean', source);
    covariance = flatNumbers(rawCov, 'covariance', source);
  }
  const dim = mean.length;
  if (rawDim !== undefined && rawDim !== dim) {
    throw new Error(`${source}: 'dim' says ${String(rawDim)} but the mean has ${dim} values; regenerate the statistics file`);
  }
  if (covariance.length !== dim * dim) {
    throw new Error(
      `${source}: the covariance has ${covariance.length} values, but a ${dim}-dimensional mean needs ${dim}×${dim} = ${dim * dim}; ` +
        'regenerate the statistics file',
    );
  }
  if (expectedDim !== undefined && expectedDim !== dim) {
    throw new Error(
      `${source}: the statistics are ${dim}-dimensional but the classifier's features are ${expectedDim}-dimensional; ` +
        'use the statistics that ship with the same classifier (models/fashion-test-stats.json with models/fashion-classifier.onnx)',
    );
  }
  if (checkPsd) psdEigenvalues(symmetricEigen(covariance, dim).values, `${source}: covariance`);
  const count = typeof rawCount === 'number' ? rawCount : 0;
  return { dim, count, mean, covariance, metadata };
}

/** The shipped statistics' file name in the package's models/ folder. */
export const REFERENCE_STATISTICS_FILE = 'fashion-test-stats.json';
