/**
 * `rediffuse bench --quick`: a grid small enough for CI on two cores (tens of samples, NFE 4 and 8)
 * whose qualitative claims are asserted — the run fails when one does not hold:
 *  - DDIM + PFDiff (best k_h) has a lower trajectory error than DDIM at NFE 4 and 8;
 *  - DPM-Solver++ 2M has a lower trajectory error than DDIM at NFE 4 and 8;
 *  - DDIM with feature reuse (deepcache points, a keyframe every 4th call, score mixing) makes fewer
 *    full network calls and takes less wall time than DDIM with full computation at NFE 8 (wall time from runs of the two alternated, so that
 *    load drifting on a shared CI machine hits both alike).
 * Sampling is unconditional: on the bundled U-Net, PFDiff's gain at NFE 4 is robust there but not
 * under guidance 2, where DDIM's trajectory error at 4 calls is already lower than any k_h's (the
 * full grid reports it). The grid is also in bench/quick.json (a test keeps the two equal).
 * @packageDocumentation
 */
import { checkClaims, type ClaimCheck } from './claims.js';
import type { BenchResults, PairedTiming } from './runner.js';

/** The quick grid (also bench/quick.json). */
export const QUICK_GRID = {
  format: 'rediffuse-bench-grid/1',
  name: 'quick',
  title: 'Quick check (CI)',
  description:
    'The CI bench: DDIM vs DDIM + PFDiff (all k_h and the best) vs DPM-Solver++ 2M at NFE 4 and 8, and DDIM with DeepCache-style feature reuse (keyframe every 4th call, score mixing), ' +
    'unconditional, on the bundled U-Net. Its claims are asserted by `rediffuse bench --quick`.',
  model: 'fashion-unet',
  seeds: { seed: 0, count: 32, batch: 32 },
  reference: { solver: 'dpmpp_2m', nfe: 100 },
  metrics: { fd: true, accuracy: true, kid: false, trajectory: true, best: 'trajectory_mse' },
  guidance: [0],
  runs: [
    { solvers: ['ddim'], nfe: [4, 8], pfdiff: ['none', 'best'] },
    { solvers: ['dpmpp_2m'], nfe: [4, 8] },
    { solvers: ['ddim'], nfe: [8], fr: [{ interval: 4, mixing: true, points: 'deepcache' }] },
  ],
} as const;

/** Claim ids the quick mode asserts, with how many settings each must cover. */
export const QUICK_ASSERTED: Record<string, number> = {
  'pfdiff-beats-base': 2,
  'dpmpp2m-beats-ddim': 2,
  'fr-fewer-full-calls': 1,
  'fr-less-wall-time-paired': 1,
};

/** The claim that feature reuse takes less wall time, from {@link pairedWallTime} (cells [full, FR]). */
export function pairedWallTimeClaim(t: PairedTiming): ClaimCheck {
  const [full, fr] = t.medianMs;
  return {
    id: 'fr-less-wall-time-paired',
    statement: `${t.labels[1]} takes less wall time than ${t.labels[0]} (runs alternated, median of ${t.wallMs[0].length})`,
    holds: fr < full,
    detail: `${(fr / 1000).toFixed(2)} s vs ${(full / 1000).toFixed(2)} s per run (speed-up ${(full / fr).toFixed(2)}×)`,
  };
}

/** The outcome of the quick mode's assertions. */
export interface QuickVerdict {
  ok: boolean;
  checks: ClaimCheck[];
  /** One line per failed or missing claim. */
  failures: string[];
}

/**
 * Check the asserted claims on quick-mode results: every listed claim must be measured on as many
 * settings as {@link QUICK_ASSERTED} says (a cell that errored counts as a failure) and must hold.
 */
export function assertQuickClaims(results: BenchResults, extra: ClaimCheck[] = [], asserted: Record<string, number> = QUICK_ASSERTED): QuickVerdict {
  const checks = [...checkClaims(results), ...extra];
  const failures: string[] = [];
  for (const c of results.cells) if (c.status === 'error') failures.push(`cell ${c.label} failed: ${c.error}`);
  for (const [id, n] of Object.entries(asserted)) {
    const mine = checks.filter((c) => c.id === id);
    if (mine.length < n) failures.push(`claim ${id}: measured on ${mine.length} setting(s), expected ${n} (cells missing or failed)`);
    for (const c of mine) if (!c.holds) failures.push(`claim failed: ${c.statement} — ${c.detail}`);
  }
  return { ok: failures.length === 0, checks: checks.filter((c) => id(c) in asserted), failures };
}

function id(c: ClaimCheck): string {
  return c.id;
}
