import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { canonicalJson, cellKey, referenceKey } from '../src/bench/cell-key.js';
import { checkClaims } from '../src/bench/claims.js';
import { cellLabel, expandCells, loadGridFile, parseFrEntry, parseGridText, validateGrid, GridError, type CellSpec } from '../src/bench/grid.js';
import { paretoFront, renderBenchPlots } from '../src/bench/plots.js';
import { assertQuickClaims, QUICK_GRID } from '../src/bench/quick.js';
import { markdownReport, upsertSection, writeReport } from '../src/bench/report.js';
import { runBench, type BenchEvent, type BenchResults, type CellResult } from '../src/bench/runner.js';
import { referenceSetup } from '../src/bench/setup.js';
import { BenchStore } from '../src/bench/store.js';
import { benchFailure, runBenchCommand } from '../src/cli/commands/bench.js';
import { main } from '../src/cli/main.js';
import { plannedCalls } from '../src/core/frdiff/planned-calls.js';
import { releaseInterrupt } from '../src/cli/interrupt.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-bench-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TINY = {
  name: 'tiny',
  model: 'reference',
  seeds: { seed: 3, count: 12, batch: 6 },
  reference: { solver: 'ddim', nfe: 200 },
  runs: [
    { solvers: ['ddim'], nfe: [4, 8], pfdiff: ['none', 'best'] },
    { solvers: ['dpmpp_2m'], nfe: [4, 8] },
    { solvers: ['ddim'], nfe: [8], fr: [{ interval: 3 }, { interval: 2, mixing: true }] },
  ],
};

/** Asserts that validating `raw` throws a GridError whose message matches `pattern`. */
const badGrid = (raw: unknown, pattern: RegExp) =>
  assert.throws(
    () => validateGrid(raw),
    (e: Error) => e instanceof GridError && pattern.test(e.message),
  );

describe('grid files', () => {
  test('validation errors name the field and the fix', () => {
    badGrid(null, /grid: expected an object/);
    badGrid({ ...TINY, colour: 1 }, /unknown key "colour"/);
    badGrid({ ...TINY, seeds: { count: 0 } }, /grid\.seeds\.count: must be an integer ≥ 1/);
    badGrid({ ...TINY, seeds: { count: 4, batch: 8 } }, /batch ≤ count/);
    badGrid({ ...TINY, runs: [] }, /grid\.runs: must be a non-empty list/);
    badGrid({ ...TINY, runs: [{ solvers: ['ddim'], nfe: [4], pfdiff: ['2_3'] }] }, /runs\[0\]\.pfdiff\[0\]: expected "none", "best" or k_h/);
    badGrid({ ...TINY, runs: [{ solvers: ['ddim'], nfe: [4], fr: [{ interval: 0 }] }] }, /fr\[0\]\.interval: must be an integer ≥ 1/);
    badGrid(
      { ...TINY, runs: [{ solvers: ['ddim'], nfe: [4], fr: [{ interval: 2, mixing: { bias: 7 } }] }] },
      /mixing\.bias: must be a number in \[-1, 2\]/,
    );
    badGrid({ ...TINY, guidance: [-1] }, /grid\.guidance\[0\]: must be a number ≥ 0/);
    badGrid({ ...TINY, metrics: { trajectory: false } }, /"trajectory_mse" needs metrics\.trajectory/);
    badGrid({ ...TINY, format: 'other/1' }, /grid\.format: must be "rediffuse-bench-grid\/1"/);
  });

  test('JSON and YAML give the same grid; syntax errors name the file', () => {
    const yaml = [
      'name: tiny',
      'model: reference',
      'seeds: { seed: 3, count: 12, batch: 6 }',
      'reference: { solver: ddim, nfe: 200 }',
      'runs:',
      '  - { solvers: [ddim], nfe: [4, 8], pfdiff: [none, best] }',
      '  - { solvers: [dpmpp_2m], nfe: [4, 8] }',
      '  - solvers: [ddim]',
      '    nfe: [8]',
      '    fr: [{ interval: 3 }, { interval: 2, mixing: true }]',
    ].join('\n');
    assert.deepEqual(parseGridText(yaml, 'g.yaml'), validateGrid(TINY));
    assert.throws(() => parseGridText('{"name": ', 'g.json'), /g\.json: not valid JSON/);
  });

  test('expansion: best → all six k_h, mixing defaults, deduplication', () => {
    const cells = expandCells(validateGrid(TINY));
    // ddim: 2 NFE × (none + 6 k_h) = 14, dpmpp_2m: 2, FR: 2.
    assert.equal(cells.length, 18);
    const mix = cells.find((c) => c.fr.kind === 'interval' && c.fr.interval === 2)!;
    assert.deepEqual(mix.fr, { kind: 'interval', interval: 2, mixing: { temperature: 30, bias: 0.5 }, points: 'frdiff' });
    const twice = validateGrid({ ...TINY, runs: [...TINY.runs, TINY.runs[1]] });
    assert.equal(expandCells(twice).length, 18);
  });

  test('the shipped grids validate, and bench/quick.json is the --quick grid', () => {
    for (const f of readdirSync('bench').filter((n) => /\.(json|ya?ml)$/.test(n))) {
      const g = loadGridFile(join('bench', f));
      assert.ok(expandCells(g).length > 0, f);
    }
    assert.deepEqual(JSON.parse(readFileSync('bench/quick.json', 'utf8')), JSON.parse(JSON.stringify(QUICK_GRID)));
  });
});

test('FR entries: space "sample" is kept and labelled, "epsilon" is the default and keeps old keys, others are refused', () => {
  const ctx = {
    modelHash: 'm',
    seeds: { seed: 0, count: 4, batch: 4 },
    reference: { solver: 'ddim', nfe: 10 },
    metrics: { fd: false, accuracy: false, kid: false, trajectory: true, best: 'trajectory_mse' as const },
  };
  const cell = (fr: unknown): CellSpec => ({ solver: 'dpmpp_2m', nfe: 10, pfdiff: null, guidance: 0, fr: parseFrEntry(fr) });
  assert.deepEqual(parseFrEntry({ interval: 2, space: 'sample' }), { kind: 'interval', interval: 2, mixing: null, points: 'frdiff', space: 'sample' });
  assert.equal(cellKey(cell({ interval: 2, space: 'epsilon' }), ctx), cellKey(cell({ interval: 2 }), ctx));
  assert.notEqual(cellKey(cell({ interval: 2, space: 'sample' }), ctx), cellKey(cell({ interval: 2 }), ctx));
  assert.equal(cellLabel(cell({ interval: 2, mixing: true, space: 'sample' })), 'dpmpp_2m + FR/2 mix x̂0-held @10');
  assert.throws(() => parseFrEntry({ interval: 2, space: 'v' }, 'runs[0].fr[1]'), /runs\[0\]\.fr\[1\]\.space.*"epsilon".*"sample"/);
});

test('grid spacings: card cells keep their keys, a named spacing plans its own grid and its own reference start', async () => {
  badGrid({ ...TINY, runs: [{ solvers: ['ddim'], nfe: [4], spacing: ['sideways'] }] }, /runs\[0\]\.spacing\[0\]: expected "card".*leading, trailing/);
  badGrid({ ...TINY, runs: [{ solvers: ['ddim'], nfe: [4], spacing: [] }] }, /runs\[0\]\.spacing: must not be empty/);
  const grid = validateGrid({
    ...TINY,
    seeds: { seed: 1, count: 8, batch: 4 },
    runs: [{ solvers: ['ddim'], nfe: [6], spacing: ['card', 'leading', 'linspace'] }],
  });
  const cells = expandCells(grid);
  assert.equal(cells.length, 3);
  assert.equal('spacing' in cells[0]!, false);
  assert.deepEqual(
    cells.map((c) => cellLabel(c)),
    ['ddim @6', 'ddim (leading) @6', 'ddim (linspace) @6'],
  );
  const ctx = { modelHash: 'm', seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  assert.equal(cellKey(cells[0]!, ctx), cellKey({ solver: 'ddim', nfe: 6, pfdiff: null, fr: { kind: 'none' }, guidance: 0 }, ctx));
  assert.notEqual(cellKey(cells[1]!, ctx), cellKey(cells[0]!, ctx));
  const r = await runBench({ grid, setup: referenceSetup(), outDir: join(tmp, 'spacing') });
  assert.ok(
    r.cells.every((c) => c.status === 'ok'),
    JSON.stringify(r.cells.map((c) => c.error)),
  );
  const [card, leading, linspace] = r.cells;
  // The reference card's spacing is linspace: naming it is the same computation (a bit-identical replicate).
  assert.deepEqual(linspace!.timesteps, card!.timesteps);
  assert.deepEqual(linspace!.metrics, card!.metrics);
  // leading with 6 steps: t = 0, 166, …, 830 (DDIMScheduler), so it starts below the linspace grid's 999.
  assert.equal(card!.timesteps![0], 999);
  assert.equal(leading!.timesteps![0], 830);
  assert.equal(leading!.metrics!.trajectory!.start, 830);
  assert.deepEqual(
    r.reference.runs.map((x) => x.start).sort((a, b) => a! - b!),
    [830, 999],
  );
  assert.ok(leading!.metrics!.trajectory!.mse !== card!.metrics!.trajectory!.mse);
});

test('grid solver options: checked by each solver, in the key and label, passed to the solver; cells without them keep their keys', async () => {
  badGrid({ ...TINY, runs: [{ solvers: ['ipndm_v'], nfe: [4], options: { order: 5 } }] }, /runs\[0\]\.options: ipndm_v: .*order.*\[1, 4\]/);
  badGrid({ ...TINY, runs: [{ solvers: ['ipndm_v', 'ddim'], nfe: [4], options: { order: 2 } }] }, /runs\[0\]\.options: ddim: .*order/);
  badGrid(
    { ...TINY, runs: [{ solvers: ['ipndm_v'], nfe: [4], options: { order: [2] } }] },
    /runs\[0\]\.options\.order: must be a number, string or boolean/,
  );
  badGrid({ ...TINY, runs: [{ solvers: ['ipndm_v'], nfe: [4], options: 2 }] }, /runs\[0\]\.options: must be an object of solver options/);
  const grid = validateGrid({
    ...TINY,
    runs: [
      { solvers: ['ipndm_v'], nfe: [6], pfdiff: ['none', '2_1'] },
      { solvers: ['ipndm_v'], nfe: [6], pfdiff: ['none', '2_1'], options: { order: 1 } },
      { solvers: ['euler'], nfe: [6], pfdiff: ['none', '2_1'], options: {} },
    ],
  });
  const cells = expandCells(grid);
  assert.deepEqual(
    cells.map((c) => cellLabel(c)),
    ['ipndm_v @6', 'ipndm_v + PFDiff-2_1 @6', 'ipndm_v [order=1] @6', 'ipndm_v [order=1] + PFDiff-2_1 @6', 'euler @6', 'euler + PFDiff-2_1 @6'],
  );
  assert.equal('options' in cells[0]!, false);
  assert.equal('options' in cells[4]!, false);
  const ctx = { modelHash: 'm', seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  assert.equal(cellKey(cells[0]!, ctx), cellKey({ solver: 'ipndm_v', nfe: 6, pfdiff: null, fr: { kind: 'none' }, guidance: 0 }, ctx));
  assert.notEqual(cellKey(cells[2]!, ctx), cellKey(cells[0]!, ctx));
  const r = await runBench({ grid, setup: referenceSetup(), outDir: join(tmp, 'solver-options') });
  assert.ok(
    r.cells.every((c) => c.status === 'ok'),
    JSON.stringify(r.cells.map((c) => c.error)),
  );
  const [v4, pf4, v1, pf1, euler, pfEuler] = r.cells;
  // ipndm_v at order 1 is Euler, and PFDiff around it is PFDiff on Euler (ε stored): equal up to float32 rounding
  // (measured: relative 4e-8 and 4e-6).
  const rel = (a: CellResult, b: CellResult) => Math.abs(a.metrics!.trajectory!.mse / b.metrics!.trajectory!.mse - 1);
  assert.ok(rel(v1!, euler!) < 1e-6, `${rel(v1!, euler!)}`);
  assert.ok(rel(pf1!, pfEuler!) < 1e-4, `${rel(pf1!, pfEuler!)}`);
  assert.notEqual(v4!.metrics!.trajectory!.mse, v1!.metrics!.trajectory!.mse);
  assert.notEqual(pf4!.metrics!.trajectory!.mse, pf1!.metrics!.trajectory!.mse);
  assert.deepEqual(pf1!.settings.options, { order: 1 });
});

test('bench flags: --spacing builds the grid from flags, and the flag-grid options are refused with a grid file', async () => {
  const r = await runBenchCommand({
    solvers: ['ddim'],
    nfe: [4],
    spacing: ['card', 'trailing'],
    model: 'reference',
    count: 4,
    out: join(tmp, 'flag-spacing'),
    quiet: true,
    plots: false,
  });
  assert.deepEqual(
    r.results.cells.map((c) => c.settings.spacing ?? 'card'),
    ['card', 'trailing'],
  );
  await assert.rejects(
    runBenchCommand({ solvers: ['ddim'], nfe: [4], spacing: ['diagonal'], model: 'reference', count: 4, out: join(tmp, 'flag-spacing2'), quiet: true }),
    /--spacing: expected "card"/,
  );
  await assert.rejects(
    runBenchCommand({ grid: 'bench/quick.json', pfdiff: ['2_1'], spacing: ['leading'], out: join(tmp, 'flag-spacing3'), quiet: true }),
    /--pfdiff, --spacing build a grid from flags with --solvers and --nfe/,
  );
});

test('FR claims: the 2× bar against the sampler with as many calls, and Auto-FR against interval 3', () => {
  const machine = { cpu: 'x', cores: 2, platform: 'linux', arch: 'x64', memoryGiB: 24 };
  const cell = (fr: unknown, nfe: number, full: number, wallMs: number, fd: number, vsFull: number | null): CellResult => {
    const settings: CellSpec = { solver: 'ddim', nfe, pfdiff: null, guidance: 2, fr: parseFrEntry(fr, 'fr', '/p') };
    return {
      format: 'rediffuse-bench-cell/1',
      key: Math.random().toString(16).slice(2),
      label: cellLabel(settings),
      method: cellLabel(settings).split(' @')[0]!,
      settings,
      status: 'ok',
      machine,
      samples: 4,
      batch: 2,
      runs: 2,
      metrics: { fd, accuracy: null, kid: null, trajectory: null, vsFull: vsFull === null ? null : { mse: vsFull, psnr: -10 * Math.log10(vsFull) } },
      calls: { perRun: nfe, total: 2 * nfe, full: 2 * full, reuse: 0, skip: 0 },
      timing: { wallMs, callMs: 0, msPerCall: 0, wallPerCallMs: 0, oneCallMs: 1, oneReuseCallMs: null, overhead: 1 },
      computedAt: '',
      durationMs: 0,
    };
  };
  const cells = [
    cell('none', 50, 50, 1000, 0.5, null),
    cell('none', 13, 13, 260, 0.6, null),
    cell('none', 17, 17, 340, 0.55, null),
    cell({ interval: 4, mixing: true }, 50, 13, 450, 0.58, 1e-3), // 2.22×, FD 0.58 ≤ 0.60: holds
    cell({ interval: 3, mixing: true }, 50, 17, 520, 0.56, 2e-3), // 1.92×: fails on speed
    cell({ interval: 4, points: 'residual' }, 50, 13, 400, 0.7, 3e-3), // 2.5× but FD worse: fails
    cell({ policy: 'autofr.json' }, 50, 30, 560, 0.52, 5e-4),
  ];
  const results = { cells, best: [] } as unknown as BenchResults;
  const bar = checkClaims(results).filter((c) => c.id === 'fr-2x-bar');
  assert.deepEqual(
    bar.map((c) => c.holds),
    [true, false, false],
  );
  assert.match(bar[0]!.statement, /FR\/4 mix \(13 full calls per run, guidance 2\).*no worse than ddim with 13 calls/);
  assert.match(bar[0]!.detail, /speed-up 2\.22×; FD-classifier 0\.580 vs 0\.600/);
  const auto = checkClaims(results).filter((c) => c.id === 'autofr-beats-interval-3');
  assert.equal(auto.length, 1);
  assert.ok(auto[0]!.holds);
  assert.match(auto[0]!.detail, /MSE 5\.000e-4 vs 2\.000e-3.*wall time 0\.56 s vs 0\.52 s/);
});

describe('cell keys', () => {
  const grid = validateGrid(TINY);
  const ctx = { modelHash: 'abc', seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  const cell: CellSpec = { solver: 'ddim', nfe: 8, pfdiff: '2_1', fr: { kind: 'none' }, guidance: 0 };

  test('canonical JSON sorts keys at every level', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":0,"z":1}]},"b":1}');
  });

  test('keys are stable (a pinned value) and independent of key order', () => {
    const k = cellKey(cell, ctx);
    assert.match(k, /^[0-9a-f]{24}$/);
    assert.equal(k, cellKey({ guidance: 0, fr: { kind: 'none' }, pfdiff: '2_1', nfe: 8, solver: 'ddim' }, ctx));
    // Pinned: a change of this value invalidates every stored cell (bump CELL_KEY_VERSION on purpose).
    assert.equal(k, 'f8144a7b17a3db0a6882eeb9'); // v2: start-aligned references, trailing cards
  });

  test('every input that changes a result changes the key', () => {
    const k = cellKey(cell, ctx);
    assert.notEqual(cellKey({ ...cell, nfe: 9 }, ctx), k);
    assert.notEqual(cellKey({ ...cell, pfdiff: '3_1' }, ctx), k);
    assert.notEqual(cellKey({ ...cell, guidance: 2 }, ctx), k);
    assert.notEqual(cellKey(cell, { ...ctx, modelHash: 'abd' }), k);
    assert.notEqual(cellKey(cell, { ...ctx, seeds: { ...ctx.seeds, seed: 4 } }), k);
    assert.notEqual(cellKey(cell, { ...ctx, reference: { solver: 'ddim', nfe: 1000 } }), k);
    assert.notEqual(referenceKey(0, ctx), referenceKey(2, ctx));
    assert.notEqual(referenceKey(0, ctx, 999), referenceKey(0, ctx, 900));
  });
});

describe('runner on the closed-form Gaussian model', () => {
  const grid = validateGrid(TINY);
  const out = join(tmp, 'tiny');

  test('runs every cell, then resumes without redoing finished cells or the reference', async () => {
    const events: BenchEvent[] = [];
    const first = await runBench({ grid, setup: referenceSetup(), outDir: out, onEvent: (e) => events.push(e) });
    assert.equal(first.cells.length, 18);
    assert.ok(
      first.cells.every((c) => c.status === 'ok'),
      JSON.stringify(first.cells.filter((c) => c.status !== 'ok')),
    );
    assert.equal(first.cachedCells, 0);
    assert.equal(events.filter((e) => e.type === 'cell-start').length, 18);
    assert.deepEqual(
      events.find((e) => e.type === 'reference'),
      { type: 'reference', guidance: 0, cached: false },
    );
    const cellFiles = readdirSync(join(out, 'cells'));
    assert.equal(cellFiles.length, 18);
    const mtimes = cellFiles.map((f) => statSync(join(out, 'cells', f)).mtimeMs);

    // "Kill" one cell (as if the run stopped before it finished) and restart.
    rmSync(join(out, 'cells', `${first.cells[3]!.key}.json`));
    const again: BenchEvent[] = [];
    const second = await runBench({ grid, setup: referenceSetup(), outDir: out, onEvent: (e) => again.push(e) });
    assert.equal(second.cachedCells, 17);
    assert.deepEqual(
      again.filter((e) => e.type === 'cell-start').map((e) => (e as { label: string }).label),
      [first.cells[3]!.label],
    );
    assert.deepEqual(
      again.find((e) => e.type === 'reference'),
      { type: 'reference', guidance: 0, cached: true },
    );
    cellFiles.forEach((f, i) => {
      if (f !== `${first.cells[3]!.key}.json`) assert.equal(statSync(join(out, 'cells', f)).mtimeMs, mtimes[i]);
    });
    // Deterministic: the recomputed cell has the same figures.
    assert.deepEqual(second.cells[3]!.metrics, first.cells[3]!.metrics);
    assert.equal(readdirSync(join(out, 'cells')).filter((f) => f.endsWith('.tmp')).length, 0);
  });

  test('a committed results.json seeds a fresh store: only ok cells of the same model are imported', async () => {
    const first = await runBench({ grid, setup: referenceSetup(), outDir: out });
    const results = JSON.parse(JSON.stringify(first)) as typeof first;
    // One cell as a cached-only report lists an unfinished one.
    results.cells[5] = { ...results.cells[5]!, status: 'error', error: 'not run' };
    const fresh = join(tmp, 'imported');
    const store = new BenchStore(fresh);
    assert.deepEqual(store.importCells(results, referenceSetup().modelHash), { imported: 17, present: 0, skipped: 1 });
    assert.deepEqual(store.importCells(results, referenceSetup().modelHash), { imported: 0, present: 17, skipped: 1 });
    const events: BenchEvent[] = [];
    const resumed = await runBench({ grid, setup: referenceSetup(), outDir: fresh, onEvent: (e) => events.push(e) });
    assert.equal(resumed.cachedCells, 17);
    assert.deepEqual(
      events.filter((e) => e.type === 'cell-start').map((e) => (e as { label: string }).label),
      [first.cells[5]!.label],
    );
    assert.deepEqual(resumed.cells[5]!.metrics, first.cells[5]!.metrics);
    assert.throws(() => store.importCells(results, 'f'.repeat(64)), /another model file.*same model/);
    assert.throws(() => store.importCells({ cells: [] }, referenceSetup().modelHash), /not a rediffuse results\.json/);
  });

  test('figures: exact-model trajectory errors, call accounting, best k_h, claims', async () => {
    const r = await runBench({ grid, setup: referenceSetup(), outDir: out });
    const get = (p: Partial<CellSpec>) =>
      r.cells.find((c) => Object.entries(p).every(([k, v]) => JSON.stringify(c.settings[k as keyof CellSpec]) === JSON.stringify(v)))!;
    const ddim8 = get({ solver: 'ddim', nfe: 8, pfdiff: null, fr: { kind: 'none' } });
    assert.deepEqual(ddim8.calls, { perRun: 8, total: 16, full: 16, reuse: 0, skip: 0 });
    assert.ok(ddim8.metrics!.trajectory!.mse > 1e-3 && ddim8.metrics!.trajectory!.mse < 0.1);
    assert.ok(Number.isFinite(ddim8.metrics!.fd!) && ddim8.metrics!.fd! > 0);
    assert.equal(ddim8.metrics!.accuracy, null);
    const fr3 = r.cells.find((c) => c.settings.fr.kind === 'interval' && c.settings.fr.interval === 3)!;
    // Keyframes 0, 3, 6 of 8 calls, two runs.
    assert.deepEqual(fr3.calls, { perRun: 8, total: 16, full: 6, reuse: 10, skip: 0 });
    assert.ok(fr3.metrics!.vsFull!.mse > 0);
    const mix = r.cells.find((c) => c.settings.fr.kind === 'interval' && c.settings.fr.interval === 2)!;
    assert.equal(mix.calls!.full + mix.calls!.reuse + mix.calls!.skip, 16);
    assert.ok(mix.calls!.skip > 0);
    // best = argmin over the six k_h.
    for (const b of r.best) {
      const vals = Object.values(b.candidates).filter((v): v is number => v !== null);
      assert.equal(b.candidates[b.winner!], Math.min(...vals));
    }
    const claims = checkClaims(r);
    assert.equal(claims.filter((c) => c.id === 'pfdiff-beats-base' && c.holds).length, 2);
    assert.equal(claims.filter((c) => c.id === 'dpmpp2m-beats-ddim' && c.holds).length, 2);
    const verdict = assertQuickClaims(r, [], { 'pfdiff-beats-base': 2, 'dpmpp2m-beats-ddim': 2, 'fr-fewer-full-calls': 2 });
    assert.ok(verdict.ok, verdict.failures.join('\n'));
    assert.ok(!assertQuickClaims(r, [], { 'pfdiff-beats-base': 3 }).ok);
  });

  test('report writers: Markdown table, results.json, SVG and PNG plots, BENCHMARKS.md section', async () => {
    const r = await runBench({ grid, setup: referenceSetup(), outDir: out });
    const md = markdownReport(r, { claims: checkClaims(r) });
    assert.match(md, /\| method \| NFE \| FD-classifier \|/);
    assert.match(md, /\| ddim \+ PFDiff-2_1 \| 8 \|/);
    assert.match(md, /\| ddim \+ FR\/3 \| 8 \|.*\| 3\/5\/0 \|/);
    assert.match(md, /PFDiff: best k_h/);
    const plots = await renderBenchPlots(r);
    assert.deepEqual(
      plots.map((p) => p.name),
      ['quality-vs-nfe', 'fr-quality-vs-wall-time', 'headline-fd', 'headline-trajectory', 'pareto-front'],
    );
    for (const p of plots) {
      assert.match(p.svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.deepEqual([...p.png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      assert.ok(p.png.length > 5000);
    }
    const bm = join(tmp, 'BENCHMARKS.md');
    const written = writeReport(r, { outDir: out, plots, claims: checkClaims(r), benchmarksMd: bm, assetsDir: join(tmp, 'docs') });
    const json = JSON.parse(readFileSync(written.resultsJson, 'utf8'));
    assert.equal(json.format, 'rediffuse-bench-results/1');
    assert.equal(json.cells.length, 18);
    assert.ok(json.machine.cores >= 1 && typeof json.machine.cpu === 'string');
    assert.equal(json.versions.node, process.version);
    const doc = readFileSync(bm, 'utf8');
    assert.match(doc, /<!-- bench:tiny:start -->/);
    assert.match(doc, /!\[.*\]\(docs\/tiny-pareto-front\.png\)/);
    assert.ok(existsSync(join(tmp, 'docs', 'tiny-pareto-front.png')));
  });

  test('upsertSection replaces its own section and keeps the others', () => {
    let doc = upsertSection('', 'a', 'A1');
    doc = upsertSection(doc, 'b', 'B1');
    doc = upsertSection(doc, 'a', 'A2');
    assert.match(doc, /^# Benchmarks/);
    assert.ok(doc.includes('<!-- bench:a:start -->\nA2\n<!-- bench:a:end -->'));
    assert.ok(doc.includes('B1') && !doc.includes('A1'));
    assert.ok(doc.indexOf('A2') < doc.indexOf('B1'));
  });

  test('Pareto front minimises both axes', () => {
    const pts = [
      { x: 1, y: 5 },
      { x: 2, y: 3 },
      { x: 3, y: 4 },
      { x: 4, y: 1 },
      { x: 0.5, y: 9 },
    ];
    assert.deepEqual(paretoFront(pts).sort(), [0, 1, 3, 4]);
  });

  test('the whole grid is checked before the reference run: every bad cell is named and nothing is computed', async () => {
    const dir = join(tmp, 'invalid');
    const g = validateGrid({
      ...TINY,
      runs: [
        { solvers: ['ddim', 'warp9'], nfe: [4] },
        { solvers: ['heun'], nfe: [4], pfdiff: ['2_1'] },
      ],
    });
    await assert.rejects(
      runBench({ grid: g, setup: referenceSetup(), outDir: dir }),
      (e: Error) =>
        /^2 run\(s\) of the grid cannot be made, so nothing was computed; fix the grid:/.test(e.message) &&
        /warp9 .*: unknown solver "warp9": valid names are/.test(e.message) &&
        /heun .*PFDiff has no variant for solver "heun"/.test(e.message),
    );
    assert.equal(existsSync(dir), false); // no reference run, no cell
    // The command line exits 1 on it, and names the cell.
    let err = '';
    const code = await main(
      ['node', 'rediffuse', 'bench', '--model', 'reference', '--solvers', 'ddim,warp9', '--nfe', '4', '--count', '4', '--out', dir, '--quiet'],
      { out: () => {}, err: (m) => void (err += m) },
    );
    releaseInterrupt();
    assert.equal(code, 1);
    assert.match(err, /1 run\(s\) of the grid cannot be made.*\n.*warp9/);
    assert.equal(existsSync(dir), false);
  });

  test('a cell that fails while running makes the command fail, naming the cell', async () => {
    const setup = referenceSetup();
    const inner = setup.model;
    // A network that breaks on the second chunk (batch 5 of 11): a divergent model, as a user's may be.
    setup.model = {
      ...inner,
      predict: (x, call, cond) => (call.batch === 5 ? Promise.reject(new Error('model returned NaN')) : inner.predict(x, call, cond)),
    };
    const file = join(tmp, 'failing.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'failing',
        model: 'reference',
        seeds: { seed: 0, count: 11, batch: 6 },
        metrics: { fd: true, accuracy: false, kid: false, trajectory: false, best: 'fd' },
        runs: [{ solvers: ['ddim'], nfe: [3] }],
      }),
    );
    const r = await runBenchCommand({ grid: file, out: join(tmp, 'failing'), quiet: true, plots: false }, setup);
    releaseInterrupt();
    assert.equal(r.failedCells.length, 1);
    assert.match(r.failedCells[0]!, /ddim.*model returned NaN/);
    assert.match(benchFailure(r)!, /^1 cell\(s\) failed \(see .*results\.md\):\n {2}ddim.*model returned NaN/);
    assert.equal(benchFailure({ ...r, failedCells: [] }), undefined);
  });

  test('bench --dry-run --import writes nothing', async () => {
    const first = await runBench({ grid, setup: referenceSetup(), outDir: out });
    const results = join(tmp, 'results-for-import.json');
    writeFileSync(results, JSON.stringify(first));
    const dir = join(tmp, 'dry');
    let err = '';
    const code = await main(
      [
        'node',
        'rediffuse',
        'bench',
        '--model',
        'reference',
        '--solvers',
        'ddim',
        '--nfe',
        '4,8',
        '--count',
        '12',
        '--batch',
        '6',
        '--seed',
        '3',
        '--dry-run',
        '--import',
        results,
        '--out',
        dir,
        '--quiet',
      ],
      { out: () => {}, err: (m) => void (err += m) },
    );
    releaseInterrupt();
    assert.equal(code, 0, err);
    assert.equal(existsSync(dir), false);
  });

  test("feature-reuse policies are laid out over the run's real calls (heun: 5 calls for an NFE budget of 6)", async () => {
    const g = validateGrid({ ...TINY, runs: [{ solvers: ['heun'], nfe: [6], fr: [{ interval: 2 }] }] });
    const setup = referenceSetup();
    const calls = await plannedCalls({ model: setup.model, schedule: setup.schedule, solver: 'heun', nfe: 6 });
    assert.equal(calls, 5);
    const r = await runBench({ grid: g, setup, outDir: join(tmp, 'heun') });
    const fr = r.cells.find((c) => c.settings.fr.kind === 'interval')!;
    assert.equal(fr.status, 'ok', fr.error ?? '');
    assert.equal(fr.frPolicy!.calls, 5);
    assert.deepEqual(fr.frPolicy!.keyframes, [0, 2, 4]);
    assert.deepEqual(fr.calls, { perRun: 5, total: 10, full: 6, reuse: 4, skip: 0 });
  });

  test('guidance on a model without classes is refused with the fix', async () => {
    const g = validateGrid({ ...TINY, guidance: [2] });
    await assert.rejects(runBench({ grid: g, setup: referenceSetup(), outDir: join(tmp, 'g2') }), /needs a class-conditional model.*use guidance: \[0\]/);
  });
});

// The CI check on the bundled model: the --quick grid (32 samples in one batch at guidance 2; the FR cell uses deepcache points with a keyframe every 4th call, whose reuse calls run
// ~1/8 of the MACs, so its wall-time margin is wide) with its own 100-call reference: the equal-quality claim's margin is 1.73e-3 vs 2.03e-3 there (6 % only against a 50-call
// reference: 1.71e-3 vs 1.83e-3); skipped when the bundled models are absent.
const haveModels = existsSync('models/fashion-unet.onnx') && existsSync('models/fashion-unet.json');
test('bench --quick asserts its claims on the bundled U-Net', { skip: !haveModels && 'models/fashion-unet.onnx is not here' }, async () => {
  try {
    const r = await runBenchCommand({ quick: true, out: join(tmp, 'quick'), quiet: true, plots: false });
    assert.ok(r.quickOk, (r.failures ?? []).join('\n'));
    assert.equal(r.results.cells.length, 14);
    assert.equal(r.results.reference.runs.length, 1);
    assert.equal(r.results.reference.runs[0]!.start, 999);
  } finally {
    releaseInterrupt();
  }
});
