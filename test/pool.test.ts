/**
 * The local pool (`--workers N --threads-per-worker T`): worker processes with their own model
 * sessions give the bytes and figures of the single-process run, and its flags are checked before
 * any model loads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnCli } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-pool-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cwd = process.cwd();

/** The pool's summary line: `N of M job(s) done, F failed, …; by worker: HOST:PID: n, …`. */
function summary(stderr: string): { done: number; jobs: number; failed: number; workers: number } {
  const m = /(\d+) of (\d+) job\(s\) done, (\d+) failed.*?(?:; by worker: (.*))?$/m.exec(stderr);
  assert.ok(m, `no summary in: ${stderr}`);
  return { done: Number(m[1]), jobs: Number(m[2]), failed: Number(m[3]), workers: m[4] ? m[4].split(', ').length : 0 };
}

test('pool: sample batches on 2 worker processes are bit-identical to one process (guided, stochastic solver)', async () => {
  const args = ['sample', '--solver', 'euler_a', '--nfe', '5', '--count', '2', '--batch-size', '4', '--seed', '3'];
  const [pooled, single] = await Promise.all([
    spawnCli([...args, '--workers', '2', '--threads-per-worker', '1', '-o', join(tmp, 'p.png'), '--samples-out', join(tmp, 'p.bin')], { cwd }),
    spawnCli([...args, '--threads', '1', '-o', join(tmp, 's.png'), '--samples-out', join(tmp, 's.bin'), '-q'], { cwd }),
  ]);
  assert.equal(pooled.code, 0, pooled.stderr);
  assert.equal(single.code, 0, single.stderr);
  // 10 classes × 2 = 20 samples in batches of 4: 5 jobs, spread over both workers.
  assert.deepEqual(summary(pooled.stderr), { done: 5, jobs: 5, failed: 0, workers: 2 });
  const p = readFileSync(join(tmp, 'p.bin'));
  assert.equal(p.length, 20 * 784 * 4);
  assert.ok(p.equals(readFileSync(join(tmp, 's.bin'))), 'pooled samples are bit-identical');
  assert.ok(readFileSync(join(tmp, 'p.png')).equals(readFileSync(join(tmp, 's.png'))));
});

test('pool: a bench grid (with a feature-reuse cell) gives the figures of one process', async () => {
  const grid = {
    name: 'pool-test',
    model: 'reference',
    seeds: { seed: 3, count: 12, batch: 6 },
    reference: { solver: 'ddim', nfe: 100 },
    runs: [
      { solvers: ['ddim', 'euler_a'], nfe: [4, 8] },
      { solvers: ['ddim'], nfe: [8], fr: [{ interval: 3 }] },
    ],
  };
  const file = join(tmp, 'grid.json');
  writeFileSync(file, JSON.stringify(grid));
  const [pooled, single] = await Promise.all([
    spawnCli(['bench', '--grid', file, '--workers', '2', '-o', join(tmp, 'bp'), '--no-plots'], { cwd }),
    spawnCli(['bench', '--grid', file, '-o', join(tmp, 'bs'), '--no-plots', '-q'], { cwd }),
  ]);
  assert.equal(pooled.code, 0, pooled.stderr);
  assert.equal(single.code, 0, single.stderr);
  assert.equal(summary(pooled.stderr).done, 5);
  const read = (d: string) => JSON.parse(readFileSync(join(tmp, d, 'results.json'), 'utf8')) as { cells: Record<string, unknown>[] };
  const [a, b] = [read('bs'), read('bp')];
  assert.equal(b.cells.length, 5);
  for (const c of a.cells) {
    const d = b.cells.find((x) => x['key'] === c['key'])!;
    assert.equal(d['status'], 'ok', String(d['error']));
    for (const field of ['metrics', 'calls', 'steps', 'timesteps', 'frPolicy']) assert.deepEqual(d[field], c[field], `${String(c['label'])}: ${field}`);
  }
  const fr = b.cells.find((c) => (c['settings'] as { fr: { kind: string } }).fr.kind !== 'none')!;
  assert.ok((fr['metrics'] as { vsFull: { mse: number } }).vsFull.mse > 0, 'the FR cell measured its error against full computation');
});

test('pool flags are checked before the model loads', async () => {
  const cores = availableParallelism();
  const cases: [string[], RegExp][] = [
    [['sample', '--threads-per-worker', '1'], /--threads-per-worker needs --workers N/],
    [
      ['sample', '--workers', String(cores + 1)],
      new RegExp(`--workers ${cores + 1} × --threads-per-worker 1 = ${cores + 1} threads exceeds this machine's ${cores} cores`),
    ],
    [['bench', '--quick', '--workers', '1', '--threads', '1'], /with --workers give --threads-per-worker instead/],
    [['bench', '--quick', '--workers', '1', '--queue', 'redis://127.0.0.1:1'], /give one of --queue URL .* and --workers N/],
    [['bench', '--quick', '--workers', '1', '--dry-run'], /--workers runs cells elsewhere: not with --dry-run/],
  ];
  const runs = await Promise.all(
    cases.map(([args]) => spawnCli([...args, '-o', join(tmp, args[0] === 'sample' ? 'x.png' : 'x')], { cwd, timeoutMs: 60_000 })),
  );
  for (const [i, [args, pattern]] of cases.entries()) {
    assert.equal(runs[i]!.code, 1, `${args.join(' ')}: ${runs[i]!.stderr}`);
    assert.match(runs[i]!.stderr, pattern);
  }
});
