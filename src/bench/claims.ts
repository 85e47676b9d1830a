/**
 * The papers' qualitative claims, checked on measured bench results. Each check compares two cells
 * measured on the same seeds and reports whether the claim holds with the numbers; `--quick` asserts
 * the robust ones, the full report lists them all ("where the claims hold on our models").
 *
 * Claims (PFDiff: Wang et al. 2024; FRDiff: So et al. 2024; DPM-Solver++: Lu et al. 2022):
 *  - PFDiff (best k_h) has a lower trajectory error than its base solver at equal NFE; so has PFDiff
 *    with a fixed k_h (cells outside a `best` group);
 *  - DPM-Solver++ 2M has a lower trajectory error than DDIM at equal NFE;
 *  - feature reuse with keyframe interval M makes fewer full network calls and takes less wall time
 *    than full computation of the same sampler;
 *  - our FRDiff bar: ≥ 2× wall-time speed-up over full computation at an FD-classifier no worse
 *    than the same sampler run with as many calls as the FR cell makes full calls;
 *  - Auto-FR at interval 3's cost has a lower error vs full computation than the interval-3 policies.
 * @packageDocumentation
 */
import { sameMachine } from './report.js';
import type { BenchResults, CellResult } from './runner.js';
import type { CellSpec } from './grid.js';

/** The outcome of one claim on one setting. */
export interface ClaimCheck {
  /** Claim id, e.g. `pfdiff-beats-base`. */
  id: string;
  /** The statement, with its setting. */
  statement: string;
  holds: boolean;
  /** The numbers behind the verdict. */
  detail: string;
}

function same(a: CellSpec, b: Partial<CellSpec>): boolean {
  return Object.entries(b).every(([k, v]) => JSON.stringify(a[k as keyof CellSpec]) === JSON.stringify(v));
}

function find(results: BenchResults, want: Partial<CellSpec>): CellResult | undefined {
  return results.cells.find((c) => c.status === 'ok' && same(c.settings, want));
}

function mse(c: CellResult): number | null {
  return c.metrics?.trajectory?.mse ?? null;
}

const fmt = (v: number): string => (Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(4) : v.toExponential(3));

function gTxt(g: number): string {
  return g === 0 ? 'unconditional' : g === 1 ? 'conditional' : `guidance ${g}`;
}

/** Check every claim the results allow (settings for which both sides were measured). */
export function checkClaims(results: BenchResults): ClaimCheck[] {
  const out: ClaimCheck[] = [];
  const none = { kind: 'none' } as const;
  // PFDiff best vs its base solver.
  for (const b of results.best) {
    const s = b.settings;
    if (s.fr.kind !== 'none' || !b.key) continue;
    const base = find(results, { solver: s.solver, nfe: s.nfe, guidance: s.guidance, pfdiff: null, fr: none });
    const win = results.cells.find((c) => c.key === b.key);
    if (!base || !win || mse(base) === null || mse(win) === null) continue;
    out.push({
      id: 'pfdiff-beats-base',
      statement: `${s.solver} + PFDiff (best k_h = ${b.winner}) has a lower trajectory error than ${s.solver} at NFE ${s.nfe} (${gTxt(s.guidance)})`,
      holds: mse(win)! < mse(base)!,
      detail: `MSE ${fmt(mse(win)!)} vs ${fmt(mse(base)!)}`,
    });
  }
  // PFDiff with a fixed k_h (not part of a `best` group) vs its base solver.
  const bestGroups = new Set(results.best.map((b) => JSON.stringify([b.settings.solver, b.settings.nfe, b.settings.guidance, b.settings.fr])));
  for (const c of results.cells) {
    const s = c.settings;
    if (c.status !== 'ok' || !s.pfdiff || s.fr.kind !== 'none' || bestGroups.has(JSON.stringify([s.solver, s.nfe, s.guidance, s.fr]))) continue;
    const base = find(results, { solver: s.solver, nfe: s.nfe, guidance: s.guidance, pfdiff: null, fr: none });
    if (!base || mse(base) === null || mse(c) === null) continue;
    out.push({
      id: 'pfdiff-kh-beats-base',
      statement: `${s.solver} + PFDiff ${s.pfdiff} has a lower trajectory error than ${s.solver} at NFE ${s.nfe} (${gTxt(s.guidance)})`,
      holds: mse(c)! < mse(base)!,
      detail: `MSE ${fmt(mse(c)!)} vs ${fmt(mse(base)!)}`,
    });
  }
  // DPM-Solver++ 2M vs DDIM.
  for (const c of results.cells) {
    const s = c.settings;
    if (c.status !== 'ok' || s.solver !== 'dpmpp_2m' || s.pfdiff !== null || s.fr.kind !== 'none') continue;
    const ddim = find(results, { solver: 'ddim', nfe: s.nfe, guidance: s.guidance, pfdiff: null, fr: none });
    if (!ddim || mse(c) === null || mse(ddim) === null) continue;
    out.push({
      id: 'dpmpp2m-beats-ddim',
      statement: `DPM-Solver++ 2M has a lower trajectory error than DDIM at NFE ${s.nfe} (${gTxt(s.guidance)})`,
      holds: mse(c)! < mse(ddim)!,
      detail: `MSE ${fmt(mse(c)!)} vs ${fmt(mse(ddim)!)}`,
    });
  }
  // Feature reuse vs full computation.
  for (const c of results.cells) {
    const s = c.settings;
    if (c.status !== 'ok' || s.fr.kind === 'none') continue;
    const full = find(results, { solver: s.solver, nfe: s.nfe, guidance: s.guidance, pfdiff: s.pfdiff, fr: none });
    if (!full) continue;
    const what = `${c.method} vs full computation at NFE ${s.nfe} (${gTxt(s.guidance)})`;
    out.push({
      id: 'fr-fewer-full-calls',
      statement: `${what}: fewer full network calls`,
      holds: c.calls!.full < full.calls!.full,
      detail: `${c.calls!.full} full + ${c.calls!.reuse} reuse + ${c.calls!.skip} skipped vs ${full.calls!.full} full`,
    });
    if (!sameMachine(full, c)) continue; // wall times from two machines do not compare
    out.push({
      id: 'fr-less-wall-time',
      statement: `${what}: less wall time`,
      holds: c.timing!.wallMs < full.timing!.wallMs,
      detail: `${(c.timing!.wallMs / 1000).toFixed(2)} s vs ${(full.timing!.wallMs / 1000).toFixed(2)} s (speed-up ${(full.timing!.wallMs / c.timing!.wallMs).toFixed(2)}×)`,
    });
  }
  // Our FRDiff bar, and Auto-FR vs interval 3.
  for (const c of results.cells) {
    const s = c.settings;
    if (c.status !== 'ok' || s.fr.kind === 'none' || s.pfdiff !== null) continue;
    const full = find(results, { solver: s.solver, nfe: s.nfe, guidance: s.guidance, pfdiff: null, fr: none });
    const fullPerRun = c.calls!.full / c.runs;
    const fewer = find(results, { solver: s.solver, nfe: fullPerRun, guidance: s.guidance, pfdiff: null, fr: none });
    if (full && fewer && fewer !== full && sameMachine(full, c) && c.metrics?.fd != null && fewer.metrics?.fd != null) {
      const speedUp = full.timing!.wallMs / c.timing!.wallMs;
      out.push({
        id: 'fr-2x-bar',
        statement: `${c.method} (${fullPerRun} full calls per run, ${gTxt(s.guidance)}): ≥ 2× wall-time speed-up over full computation at an FD-classifier no worse than ${s.solver} with ${fullPerRun} calls`,
        holds: speedUp >= 2 && c.metrics.fd <= fewer.metrics.fd,
        detail: `speed-up ${speedUp.toFixed(2)}×; FD-classifier ${c.metrics.fd.toFixed(3)} vs ${fewer.metrics.fd.toFixed(3)}`,
      });
    }
    if (s.fr.kind !== 'policy' || !c.metrics?.vsFull) continue;
    for (const i3 of results.cells) {
      const t = i3.settings;
      if (
        i3.status !== 'ok' ||
        t.fr.kind !== 'interval' ||
        t.fr.interval !== 3 ||
        t.pfdiff !== null ||
        t.solver !== s.solver ||
        t.nfe !== s.nfe ||
        t.guidance !== s.guidance ||
        !i3.metrics?.vsFull
      )
        continue;
      const wall = sameMachine(i3, c) ? `; wall time ${(c.timing!.wallMs / 1000).toFixed(2)} s vs ${(i3.timing!.wallMs / 1000).toFixed(2)} s` : '';
      out.push({
        id: 'autofr-beats-interval-3',
        statement: `${c.method} has a lower error vs full computation than ${i3.method} at NFE ${s.nfe} (${gTxt(s.guidance)})`,
        holds: c.metrics.vsFull.mse < i3.metrics.vsFull.mse,
        detail: `MSE ${fmt(c.metrics.vsFull.mse)} vs ${fmt(i3.metrics.vsFull.mse)} (PSNR ${c.metrics.vsFull.psnr.toFixed(2)} vs ${i3.metrics.vsFull.psnr.toFixed(2)} dB)${wall}`,
      });
    }
  }
  return out;
}
