/**
 * `rediffuse bench --quick`: a grid small enough for CI on two cores (32 samples at guidance 2, NFE
 * 8–12) whose claims are asserted — the run fails when one does not hold:
 *  - the headline claim: the best accelerated cell beats the best plain cell at equal quality. The
 *    level is the best plain solver's trajectory MSE at NFE 12 (against the 100-call reference from
 *    the same start, t = 999); the cheapest accelerated cell reaching it needs fewer model-call
 *    equivalents (full calls + reuse calls × the measured reuse/full cost ratio; PFDiff and plain cells
 *    count their calls exactly) than the cheapest plain cell reaching it. Call counts, not wall times,
 *    so timing noise on a shared machine cannot flip it; measured (32 samples, seed 0): DDIM + PFDiff
 *    2_1 at 10 calls, MSE 1.73e-3, against UniPC at 12 calls, 2.03e-3 (DPM-Solver++ 2M-12: 2.06e-3);
 *  - DDIM + PFDiff 2_1 and DPM-Solver++ 2M + PFDiff 3_3 have a lower trajectory error than their base
 *    solver at NFE 8 and 10 (measured: 3.66e-3 vs 1.75e-2 and 1.73e-3 vs 1.28e-2; 3.47e-3 vs 5.21e-3
 *    and 2.09e-3 vs 3.15e-3);
 *  - DPM-Solver++ 2M has a lower trajectory error than DDIM at NFE 8, 10 and 12;
 *  - DDIM with feature reuse (deepcache points, a keyframe every 4th call, score mixing) makes fewer
 *    full network calls and takes less wall time than DDIM with full computation at NFE 8 (wall time from runs of the two alternated, so that
 *    load drifting on a shared CI machine hits both alike).
 * Guidance 2 and NFE ≥ 8: on trailing grids (every run starts at t = 999) PFDiff at NFE 4–5 diverges
 * on the bundled U-Net (trajectory MSE 0.82 for DDIM + PFDiff 2_1 at NFE 4, unconditional, against
 * DDIM's 0.090), so the old NFE-4 claims are gone. The grid is also in bench/quick.json (a test keeps
 * the two equal).
 * @packageDocumentation
 */
import { checkClaims, type ClaimCheck } from './claims.js';
import { cellFamily } from './pareto.js';
import type { BenchResults, CellResult, PairedTiming } from './runner.js';

/** The quick grid (also bench/quick.json). */
export const QUICK_GRID = {
  format: 'rediffuse-bench-grid/1',
  name: 'quick',
  title: 'Quick check (CI)',
  description:
    'The CI bench at guidance 2 on the bundled U-Net: plain DDIM, DPM-Solver++ 2M and UniPC at NFE 8, 10 and 12 against DDIM + PFDiff 2_1 and DPM-Solver++ 2M + PFDiff 3_3 at NFE 8 and 10, ' +
    'and DDIM with DeepCache-style feature reuse (keyframe every 4th call, score mixing) at NFE 8. Its claims, among them that the best accelerated cell beats the best plain cell at equal ' +
    'trajectory error in model-call equivalents, are asserted by `rediffuse bench --quick`.',
  model: 'fashion-unet',
  seeds: { seed: 0, count: 32, batch: 32 },
  reference: { solver: 'dpmpp_2m', nfe: 100 },
  metrics: { fd: true, accuracy: true, kid: false, trajectory: true, best: 'trajectory_mse' },
  guidance: [2],
  runs: [
    { solvers: ['ddim', 'dpmpp_2m', 'unipc'], nfe: [8, 10, 12] },
    { solvers: ['ddim'], nfe: [8, 10], pfdiff: ['2_1'] },
    { solvers: ['dpmpp_2m'], nfe: [8, 10], pfdiff: ['3_3'] },
    { solvers: ['ddim'], nfe: [8], fr: [{ interval: 4, mixing: true, points: 'deepcache' }] },
  ],
} as const;

/** The NFE whose best plain trajectory error is the quick mode's equal-quality level. */
export const QUICK_LEVEL_NFE = 12;

/** Model-call equivalents per run: full calls + reuse calls × (one reuse call's measured time / one full call's); skipped calls are free. */
export function callEquivalents(c: CellResult): number {
  const k = c.calls!;
  const t = c.timing!;
  const ratio = k.reuse > 0 && t.oneReuseCallMs !== null && t.oneCallMs > 0 ? t.oneReuseCallMs / t.oneCallMs : 0;
  return (k.full + k.reuse * ratio) / c.runs;
}

/**
 * The headline claim on trajectory error: at the level q = the best plain cell's trajectory MSE at
 * `levelNfe` (per guidance setting), the cheapest accelerated cell with MSE ≤ q costs fewer model-call
 * equivalents ({@link callEquivalents}) than the cheapest plain cell with MSE ≤ q.
 */
export function acceleratedBeatsPlainClaims(results: BenchResults, levelNfe = QUICK_LEVEL_NFE): ClaimCheck[] {
  const out: ClaimCheck[] = [];
  const ok = results.cells.filter((c) => c.status === 'ok' && c.metrics?.trajectory && c.calls && c.timing);
  for (const g of [...new Set(ok.map((c) => c.settings.guidance))]) {
    const here = ok.filter((c) => c.settings.guidance === g);
    const mseOf = (c: CellResult) => c.metrics!.trajectory!.mse;
    const atLevel = here.filter((c) => cellFamily(c) === 'plain' && c.settings.nfe === levelNfe);
    if (atLevel.length === 0) continue;
    const level = atLevel.reduce((a, b) => (mseOf(b) < mseOf(a) ? b : a));
    const q = mseOf(level);
    const cheapest = (family: 'plain' | 'accelerated') =>
      here
        .filter((c) => cellFamily(c) === family && mseOf(c) <= q)
        .reduce<CellResult | null>((a, b) => (a === null || callEquivalents(b) < callEquivalents(a) ? b : a), null);
    const plain = cheapest('plain')!;
    const acc = cheapest('accelerated');
    const where = g === 0 ? 'unconditional' : g === 1 ? 'conditional' : `guidance ${g}`;
    out.push({
      id: 'accelerated-beats-plain',
      statement:
        `the best accelerated cell reaches the trajectory error of the best plain solver at NFE ${levelNfe} (${level.method}, MSE ${q.toExponential(3)}, ${where}) ` +
        'with fewer model-call equivalents than the best plain cell',
      holds: acc !== null && callEquivalents(acc) < callEquivalents(plain),
      detail: acc
        ? `${acc.label}: ${callEquivalents(acc).toFixed(2)} call equivalents at MSE ${mseOf(acc).toExponential(3)} vs ${plain.label}: ` +
          `${callEquivalents(plain).toFixed(2)} at ${mseOf(plain).toExponential(3)} (${(callEquivalents(plain) / callEquivalents(acc)).toFixed(2)}×)`
        : `no accelerated cell reaches MSE ${q.toExponential(3)}; ${plain.label} does with ${callEquivalents(plain).toFixed(2)} calls`,
    });
  }
  return out;
}

/** Claim ids the quick mode asserts, with how many settings each must cover. */
export const QUICK_ASSERTED: Record<string, number> = {
  'accelerated-beats-plain': 1,
  'pfdiff-kh-beats-base': 4,
  'dpmpp2m-beats-ddim': 3,
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
  const checks = [...checkClaims(results), ...acceleratedBeatsPlainClaims(results), ...extra];
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
