/**
 * The headline report on hand-made result records: plain/accelerated classification, each family's
 * Pareto front, the speed-up at the best plain solver's FD at 10/20/50 NFE (first cell at least as
 * good), and the spread rule.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FrSpec } from '../src/bench/grid.js';
import { callEquivalents, cellFamily, frontsOf, headline, headlineLevels, headlineMarkdown, paretoFront, timingReplicates } from '../src/bench/pareto.js';
import { markdownReport } from '../src/bench/report.js';
import type { BenchResults, CellResult } from '../src/bench/runner.js';

function cell(
  method: string,
  nfe: number,
  fd: number,
  wallS: number,
  o: { pfdiff?: string; fr?: FrSpec; spread?: number | null; guidance?: number; mse?: number } = {},
): CellResult {
  const solver = method.split(' ')[0]!;
  return {
    format: 'rediffuse-bench-cell/1',
    key: `${method}-${nfe}`.replace(/[^a-z0-9]/gi, ''),
    label: `${method} @${nfe}`,
    method,
    settings: { solver, nfe, pfdiff: o.pfdiff ?? null, fr: o.fr ?? { kind: 'none' }, guidance: o.guidance ?? 2 },
    status: 'ok',
    samples: 2000,
    batch: 64,
    runs: 32,
    metrics: {
      fd,
      accuracy: null,
      kid: null,
      trajectory: { mse: o.mse ?? fd / 10, psnr: 0, start: 999 },
      vsFull: null,
      fdSpread: o.spread === null ? null : { std: o.spread ?? 0.002, lo: fd - 0.004, hi: fd + 0.004, resamples: 50 },
    },
    calls: { perRun: nfe, total: nfe * 32, full: nfe * 32, reuse: 0, skip: 0 },
    timing: { wallMs: wallS * 1000, callMs: 0, msPerCall: 0, wallPerCallMs: 0, oneCallMs: 1, oneReuseCallMs: null, overhead: 1 },
    computedAt: '2026-12-02T00:00:00Z',
    durationMs: 0,
  };
}

function results(cells: CellResult[]): BenchResults {
  return {
    format: 'rediffuse-bench-results/1',
    grid: {
      format: 'rediffuse-bench-grid/1',
      name: 'hand',
      model: 'fashion-unet',
      seeds: { seed: 0, count: 2000, batch: 64 },
      reference: { solver: 'dpmpp_2m', nfe: 200 },
      metrics: { fd: true, accuracy: false, kid: false, trajectory: true, best: 'fd' },
      runs: [],
    },
    model: { name: 'fashion-unet', kind: 'onnx', path: null, sha256: 'ab'.repeat(32), meter: 'classifier' },
    machine: { cpu: 'cpu', cores: 2, platform: 'linux', arch: 'x64', memoryGiB: 8 },
    versions: {},
    generatedAt: '2026-12-02T00:00:00Z',
    reference: { solver: 'dpmpp_2m', nfe: 200, runs: [{ guidance: 2, start: 999, key: 'k', wallMs: 1 }] },
    callTiming: {},
    cells,
    best: [],
    cachedCells: 0,
  };
}

// The measured U-Net figures (guidance 2, 2000 samples) as records, plus a DDIM ladder.
const CELLS = [
  cell('ddim', 10, 0.25, 70),
  cell('ddim', 20, 0.2, 140),
  cell('ddim', 50, 0.16, 350),
  cell('dpmpp_2m', 8, 0.2, 56),
  cell('dpmpp_2m', 10, 0.18, 70),
  cell('dpmpp_2m', 12, 0.191, 83),
  cell('dpmpp_2m', 20, 0.165, 140),
  cell('unipc', 20, 0.164, 138),
  cell('dpmpp_2m', 50, 0.158, 352),
  cell('ddim + PFDiff-2_1', 8, 0.167, 58, { pfdiff: '2_1' }),
  cell('dpmpp_2m + PFDiff-3_3', 8, 0.149, 51, { pfdiff: '3_3' }),
  cell('ddim + FR/3 mix deepcache', 50, 0.171, 163, {
    fr: { kind: 'interval', interval: 3, mixing: { temperature: 1, bias: 0.5 }, points: 'deepcache' },
  }),
  cell('ddim + PFDiff-2_1 + FR/2', 10, 0.45, 40, { pfdiff: '2_1', fr: { kind: 'interval', interval: 2, mixing: null, points: 'frdiff' } }),
];

test('cells are plain or accelerated by their settings and description', () => {
  assert.equal(cellFamily(CELLS[0]!), 'plain');
  assert.equal(cellFamily(CELLS[9]!), 'accelerated'); // PFDiff
  assert.equal(cellFamily(CELLS[11]!), 'accelerated'); // FR
  // A setting besides solver/NFE/guidance/spacing (e.g. a forecast or a tuned flag) is accelerated; spacing alone is not.
  const forecast = { ...CELLS[0]!, settings: { ...CELLS[0]!.settings, forecast: { order: 1 } } } as unknown as CellResult;
  assert.equal(cellFamily(forecast), 'accelerated');
  const spaced = { ...CELLS[0]!, settings: { ...CELLS[0]!.settings, spacing: 'karras' } } as unknown as CellResult;
  assert.equal(cellFamily(spaced), 'plain');
  assert.equal(cellFamily({ ...CELLS[0]!, method: 'ddim (tuned)' }), 'accelerated');
});

test('each family has its own Pareto front, sorted by wall time', () => {
  const f = frontsOf(CELLS, 2, 'fd');
  assert.equal(f.points.length, 13);
  assert.deepEqual(
    f.plain.map((p) => p.label),
    ['dpmpp_2m @8', 'dpmpp_2m @10', 'unipc @20', 'ddim @50', 'dpmpp_2m @50'],
  );
  assert.deepEqual(
    f.accelerated.map((p) => p.label),
    ['ddim + PFDiff-2_1 + FR/2 @10', 'dpmpp_2m + PFDiff-3_3 @8'],
  );
  assert.deepEqual(
    paretoFront([
      { x: 1, y: 3 },
      { x: 2, y: 2 },
      { x: 3, y: 2.5 },
      { x: 0.5, y: 4 },
    ]).sort(),
    [0, 1, 3],
  );
});

test('the speed-up at the best plain FD at 10, 20, 50 NFE: first cell at least as good', () => {
  const rows = headlineLevels(results(CELLS), 2);
  assert.deepEqual(
    rows.map((r) => [r.nfe, r.target]),
    [
      [10, 0.18],
      [20, 0.164],
      [50, 0.158],
    ],
  );
  // NFE 10 level 0.18: plain dpmpp_2m @10 70 s; accelerated dpmpp_2m + PFDiff-3_3 @8 51 s → 70/51.
  assert.equal(rows[0]!.plain!.label, 'dpmpp_2m @10');
  assert.equal(rows[0]!.accelerated!.label, 'dpmpp_2m + PFDiff-3_3 @8');
  assert.ok(Math.abs(rows[0]!.ratio! - 70 / 51) < 1e-12);
  assert.equal(rows[0]!.verdict, 'faster');
  // NFE 20 level 0.164 (UniPC): 138 s against 51 s.
  assert.ok(Math.abs(rows[1]!.ratio! - 138 / 51) < 1e-12);
  assert.equal(rows[1]!.verdict, 'faster');
  // NFE 50 level 0.158: 352 s against 51 s (PFDiff-3_3 is at 0.149).
  assert.ok(Math.abs(rows[2]!.ratio! - 352 / 51) < 1e-12);
});

test('the spread rule: a gap inside the bootstrap spread is marked, not reported as a result', () => {
  // Plain dpmpp_2m @8 is at 0.182, just above the level 0.18 (σ 0.002 each: within 2·√2·0.002 = 0.0057), and faster (56 s)
  // than the accelerated cell (60 s): strictly, plain needs 70 s and accelerated is 1.17× faster; within the spread it is not.
  const cells = [cell('dpmpp_2m', 8, 0.182, 56), cell('dpmpp_2m', 10, 0.18, 70), cell('ddim + PFDiff-2_1', 8, 0.179, 60, { pfdiff: '2_1' })];
  const [r] = headlineLevels(results(cells), 2, [10]);
  assert.ok(Math.abs(r!.ratio! - 70 / 60) < 1e-12);
  assert.equal(r!.plainWithinSpread!.label, 'dpmpp_2m @8');
  assert.ok(Math.abs(r!.spreadRatio! - 56 / 60) < 1e-12);
  assert.equal(r!.verdict, 'inside spread');
  // With a spread ten times smaller (σ 0.0002: 0.182 > 0.18 + 0.00057), the plain @8 cell no longer counts: a result.
  const tight = cells.map((c) => ({ ...c, metrics: { ...c.metrics!, fdSpread: { std: 0.0002, lo: 0, hi: 0, resamples: 50 } } }));
  assert.equal(headlineLevels(results(tight), 2, [10])[0]!.verdict, 'faster');
  // Accelerated slower beyond the spread.
  const slow = [cell('dpmpp_2m', 10, 0.18, 70), cell('ddim + PFDiff-2_1', 8, 0.17, 90, { pfdiff: '2_1' })];
  const s = headlineLevels(results(slow), 2, [10])[0]!;
  assert.ok(Math.abs(s.ratio! - 70 / 90) < 1e-12);
  assert.equal(s.verdict, 'slower');
  // Cells without a recorded spread: no verdict beyond the ratio.
  const unknown = [cell('dpmpp_2m', 10, 0.18, 70, { spread: null }), cell('ddim + PFDiff-2_1', 8, 0.17, 50, { pfdiff: '2_1', spread: null })];
  assert.equal(headlineLevels(results(unknown), 2, [10])[0]!.verdict, 'spread not measured');
  // No accelerated cell reaches the level.
  const none = [cell('dpmpp_2m', 10, 0.18, 70), cell('ddim + PFDiff-2_1', 8, 0.3, 50, { pfdiff: '2_1' })];
  const n = headlineLevels(results(none), 2, [10])[0]!;
  assert.equal(n.verdict, 'no accelerated cell');
  assert.equal(n.ratio, null);
});

test('the report opens with the headline table and names the start time and the rule', () => {
  const r = results([...CELLS, cell('ddim', 10, 1.9, 35, { guidance: 0 }), cell('ddim + PFDiff-2_1', 10, 1.5, 35, { guidance: 0, pfdiff: '2_1' })]);
  assert.equal(headline(r).length, 4); // guidance 2 at 10/20/50, unconditional at 10
  const md = headlineMarkdown(r);
  assert.match(md, /first cell at least as good/);
  assert.match(md, /t = 999/);
  assert.match(
    md,
    /\| guidance 2 \| dpmpp_2m @10 \| 0\.180 ± 0\.002 \| dpmpp_2m @10: 0\.180 ± 0\.002, 70\.00 s \| dpmpp_2m \+ PFDiff-3_3 @8: 0\.149 ± 0\.002, 51\.00 s \| 1\.37× \| 1\.37× \(dpmpp_2m @10\) \| 1\.25× \| faster \|/,
  );
  assert.match(md, /\| unconditional \| ddim @10 \| 1\.900/);
  const report = markdownReport(r);
  assert.ok(report.indexOf('Headline') < report.indexOf('Classifier-free guidance 2'), 'headline before the tables');
  assert.match(report, /\| start t \|/);
  assert.match(report, /guidance 2 from t = 999/);
});

test('timing noise: replicate cells (bit-identical samples) set ν, and a speed-up within ν is not a result', () => {
  // DPM-Solver++ 3M below its span limit is DPM-Solver++ 2M: same figures, same calls, timed twice (10 s and 14 s) → ν = 1.4.
  const base = [cell('dpmpp_2m', 4, 0.5, 10, { mse: 0.02 }), cell('dpmpp_3m', 4, 0.5, 14, { mse: 0.02 }), cell('dpmpp_2m', 10, 0.18, 70)];
  const reps = timingReplicates(base, 2);
  assert.equal(reps.length, 1);
  assert.ok(Math.abs(reps[0]!.ratio - 1.4) < 1e-12);
  assert.deepEqual([reps[0]!.a, reps[0]!.b].sort(), ['dpmpp_2m @4', 'dpmpp_3m @4']);
  // 70 s / 54 s = 1.30× ≤ 1.4: inside timing noise; 70 / 45 = 1.56× > 1.4: faster.
  const near = headlineLevels(results([...base, cell('ddim + PFDiff-2_1', 8, 0.17, 54, { pfdiff: '2_1', spread: 0.0002 })]), 2, [10])[0]!;
  assert.equal(near.timingNoise, 1.4);
  assert.equal(near.verdict, 'inside timing noise');
  const far = headlineLevels(results([...base, cell('ddim + PFDiff-2_1', 8, 0.17, 45, { pfdiff: '2_1', spread: 0.0002 })]), 2, [10])[0]!;
  assert.equal(far.verdict, 'faster');
  // The call ratio of the same two cells: 10 × 32 full calls against 8 × 32.
  assert.ok(Math.abs(far.callRatio! - 10 / 8) < 1e-12);
  assert.match(headlineMarkdown(results([...base])), /guidance 2: timing noise ν = 1\.40× \(dpmpp_2m @4 vs dpmpp_3m @4; 1 replicate pair\)/);
  // Different figures or calls are not replicates; a cell of another guidance setting is not either.
  assert.equal(timingReplicates([cell('dpmpp_2m', 4, 0.5, 10), cell('dpmpp_3m', 4, 0.5001, 14)], 2).length, 0);
  assert.equal(timingReplicates([cell('dpmpp_2m', 4, 0.5, 10), cell('dpmpp_3m', 4, 0.5, 14, { guidance: 0 })], 2).length, 0);
});

test('network-call equivalents: full calls plus reuse calls at their measured cost ratio plus probe time', () => {
  const fr = cell('dpmpp_2m + FR/2', 20, 0.17, 50, { fr: { kind: 'interval', interval: 2, mixing: null, points: 'deepcache' } });
  fr.calls = { perRun: 20, total: 640, full: 320, reuse: 320, skip: 0 };
  fr.timing = { ...fr.timing!, oneCallMs: 100, oneReuseCallMs: 40, probeMs: 1000 };
  assert.ok(Math.abs(callEquivalents(fr)! - (320 + 320 * 0.4 + 10)) < 1e-9);
  // Reuse calls without a measured reuse time have no call equivalent.
  fr.timing = { ...fr.timing, oneReuseCallMs: null };
  assert.equal(callEquivalents(fr), null);
});
