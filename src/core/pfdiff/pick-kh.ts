/**
 * Pick PFDiff's (k, h) by measurement. The paper reports no universal best configuration (it picks
 * the best of six per NFE, Wang et al. 2024 §4), so this helper runs each candidate at the budget
 * on a few samples, measures the error against a reference (e.g. the same noise sampled with a high
 * NFE), and ranks them — plain sampling without PFDiff included as the baseline.
 *
 * It is generic over the sampling function, so it works with any model (closed-form or ONNX).
 * @packageDocumentation
 */
import { meanSquaredError, type NumArray } from '../tensor.js';
import { checkPfdiffKH, PFDIFF_CONFIGS, type PfdiffKH } from './pfdiff.js';

/** One measured configuration; `kh` is `null` for the baseline without PFDiff. */
export interface KHScore {
  kh: PfdiffKH | null;
  /** The error (lower is better). */
  error: number;
}

/** Options of {@link pickBestKH}. */
export interface PickKHOptions {
  /** The model-call budget every candidate gets. */
  nfe: number;
  /** Configurations to try. Default: the six of the paper (1_1, 2_1, 2_2, 3_1, 3_2, 3_3). */
  candidates?: readonly PfdiffKH[];
  /**
   * Samples at `nfe` calls with PFDiff `kh` (or without PFDiff for `null`), from the same noise
   * every time, e.g. `(kh, nfe) => sample({ ..., nfe, pfdiff: kh ?? undefined }).then(r => r.samples)`.
   */
  sampleWith: (kh: PfdiffKH | null, nfe: number) => Promise<NumArray>;
  /** The reference samples from the same noise (e.g. the same solver at a high NFE). */
  reference: NumArray;
  /** Error of samples vs the reference. Default: root-mean-square difference. */
  error?: (samples: NumArray, reference: NumArray) => number;
  /** Also measure the solver without PFDiff. Default true. */
  includeBaseline?: boolean;
}

/** What {@link pickBestKH} found. */
export interface PickKHResult {
  /** The best (k, h), or `null` if plain sampling was better than every candidate. */
  best: PfdiffKH | null;
  /** Every measured configuration, best first. */
  ranking: KHScore[];
  /** The baseline's error, when measured. */
  baselineError?: number;
}

/** Root-mean-square difference of two arrays. */
export function rmsError(samples: NumArray, reference: NumArray): number {
  return Math.sqrt(meanSquaredError(samples, reference));
}

/** Run every candidate (and the baseline) and rank them by error; see {@link PickKHOptions}. */
export async function pickBestKH(options: PickKHOptions): Promise<PickKHResult> {
  const { nfe, sampleWith, reference } = options;
  if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`pickBestKH: nfe must be an integer ≥ 1, got ${nfe}`);
  const candidates = options.candidates ?? PFDIFF_CONFIGS;
  if (candidates.length === 0) throw new RangeError('pickBestKH: no candidates; leave candidates out to try all six (k, h)');
  for (const c of candidates) checkPfdiffKH(c.k, c.h);
  const err = options.error ?? rmsError;
  const ranking: KHScore[] = [];
  let baselineError: number | undefined;
  if (options.includeBaseline ?? true) {
    baselineError = err(await sampleWith(null, nfe), reference);
    ranking.push({ kh: null, error: baselineError });
  }
  for (const kh of candidates) {
    const e = err(await sampleWith({ k: kh.k, h: kh.h }, nfe), reference);
    ranking.push({ kh: { k: kh.k, h: kh.h }, error: Number.isFinite(e) ? e : Infinity });
  }
  ranking.sort((a, b) => a.error - b.error);
  return { best: ranking[0]!.kh, ranking, ...(baselineError !== undefined ? { baselineError } : {}) };
}
