/**
 * The autotuner's search space: a list of typed candidate configurations (solver × NFE × spacing ×
 * PFDiff k_h × feature-reuse setting). A candidate's `fr` is a bench {@link FrSpec}, so every reuse
 * policy the bench knows (FRDiff's order-0 interval policies, policy files, and any kind added to
 * the grid's `fr` entries) is a candidate without changes here.
 * @packageDocumentation
 */
import { DEFAULT_SCORE_MIXING, type TimestepSpacing } from '../core/index.js';
import { methodLabel } from './grid.js';
import type { TunedSampling } from './tune-config.js';

/** One configuration the tune evaluates. */
export type TuneCandidate = TunedSampling;

/** A short label, e.g. `dpmpp_2m + PFDiff-3_3 @8 karras`. */
export function candidateLabel(c: TuneCandidate, cardSpacing?: string): string {
  return `${methodLabel(c)} @${c.nfe}${c.spacing !== cardSpacing ? ` ${c.spacing}` : ''}`;
}

/** Options of {@link defaultSearchSpace}. */
export interface SearchSpaceOptions {
  /** The card's spacing (every candidate uses it unless it names another). */
  spacing: TimestepSpacing;
  /** Whether the model offers feature reuse (an ONNX model: graph surgery). Default true. */
  featureReuse?: boolean;
  /** Keep only these solvers. */
  solvers?: readonly string[];
  /** Keep only candidates with at most this many model calls. */
  maxNfe?: number;
}

/**
 * The default space (41 candidates): plain DDIM, DPM-Solver++ 2M, UniPC and iPNDM-v over NFE 4…20 on
 * the card's spacing and DPM-Solver++ 2M on Karras σ; DDIM + PFDiff 2_1 / 3_1, DPM-Solver++ 2M + the
 * multistep PFDiff 3_3 and iPNDM-v + the Adams PFDiff 2_1 (order 2) at NFE 4…10; FRDiff (order 0, DeepCache points, score mixing) on DDIM-20
 * and DPM-Solver++ 2M-10/15 at keyframe intervals 2 and 3.
 */
export function defaultSearchSpace(o: SearchSpaceOptions): TuneCandidate[] {
  const none = { kind: 'none' } as const;
  const out: TuneCandidate[] = [];
  const add = (solver: string, nfes: number[], rest: Partial<TuneCandidate> = {}) => {
    for (const nfe of nfes) out.push({ solver, nfe, spacing: o.spacing, pfdiff: null, fr: none, ...rest });
  };
  add('ddim', [5, 8, 10, 15, 20]);
  add('dpmpp_2m', [4, 5, 6, 8, 10, 15, 20]);
  add('unipc', [4, 5, 6, 8, 10, 15]);
  add('ipndm_v', [6, 8, 10, 15]);
  add('dpmpp_2m', [5, 8, 10], { spacing: 'karras' });
  add('ddim', [4, 6, 8, 10], { pfdiff: '2_1' });
  add('ddim', [6, 8], { pfdiff: '3_1' });
  add('dpmpp_2m', [4, 6, 8], { pfdiff: '3_3' });
  add('ipndm_v', [6, 8, 10], { pfdiff: '2_1' });
  if (o.featureReuse !== false) {
    const fr = (interval: number) => ({ kind: 'interval' as const, interval, mixing: { ...DEFAULT_SCORE_MIXING }, points: 'deepcache' });
    add('ddim', [20], { fr: fr(2) });
    add('ddim', [20], { fr: fr(3) });
    add('dpmpp_2m', [10, 15], { fr: fr(2) });
  }
  return out.filter((c) => (!o.solvers || o.solvers.includes(c.solver)) && (o.maxNfe === undefined || c.nfe <= o.maxNfe));
}
