/**
 * `rediffuse serve` as a user runs it (a child process with a pool worker): per-request limits and
 * bad parameters answered 400 with the limit named, a burst beyond --max-queue answered 503, the
 * progress stream, the PNG byte-identical to `rediffuse sample`'s, and a bounded load test
 * (requests/s, p50/p99 latency, every request answered).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnCli } from './helpers/cli.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-serve-test-'));
const MAX_QUEUE = 3;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
}

function fetchRaw(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('rediffuse serve', () => {
  let server: ChildProcess;
  let base = '';

  before(async () => {
    server = spawn(
      process.execPath,
      ['--import', TSX, MAIN, 'serve', '--port', '0', '--workers', '1', '--max-queue', String(MAX_QUEUE), '--max-count', '16', '--max-nfe', '10'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
    );
    let log = '';
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${log}`)), 90_000);
      server.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /on (http:\/\/127\.0\.0\.1:\d+)\/sample/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      server.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${log}`)));
    });
  });
  after(async () => {
    if (server.exitCode === null) {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('limits and bad parameters: HTTP 400 naming the limit or the parameter, before any sampling', async () => {
    const cases: [string, RegExp][] = [
      ['count=17', /count 17 exceeds the server's limit --max-count 16/],
      ['nfe=11', /nfe 11 exceeds the server's limit --max-nfe 10/],
      ['count=0', /count must be an integer ≥ 1/],
      ['colour=red', /unknown parameter "colour": use class, count, nfe/],
      ['solver=nope', /unknown solver "nope"/],
      ['class=hat', /class: unknown class "hat"/],
      ['guidance=-1', /guidance must be a number ≥ 0/],
    ];
    for (const [q, pattern] of cases) {
      const r = await fetchRaw(`${base}/sample?${q}`);
      assert.equal(r.status, 400, q);
      assert.match((JSON.parse(r.body.toString()) as { error: string }).error, pattern);
    }
    assert.equal((await fetchRaw(`${base}/nothing`)).status, 404);
  });

  test('progress stream, and the PNG byte-identical to rediffuse sample', async () => {
    const q = 'class=sneaker&count=4&nfe=4&seed=9';
    const [stream, plain, cli] = await Promise.all([
      fetchRaw(`${base}/sample?${q}`, { accept: 'text/event-stream' }),
      fetchRaw(`${base}/sample?${q}`),
      spawnCli(['sample', '--class', 'sneaker', '--count', '4', '--nfe', '4', '--seed', '9', '-o', join(tmp, 'cli.png'), '-q'], { cwd: process.cwd() }),
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream');
    const events = stream.body
      .toString()
      .trim()
      .split('\n\n')
      .map((e) => ({ type: /^event: (\w+)/.exec(e)![1], data: JSON.parse(/\ndata: (.*)$/.exec(e)![1]!) as Record<string, unknown> }));
    assert.deepEqual(
      events.filter((e) => e.type === 'progress').map((e) => e.data['done']),
      [0, 1],
    );
    const done = events.at(-1)!;
    assert.equal(done.type, 'done');
    assert.equal(done.data['calls'], 4);
    const png = Buffer.from(done.data['png'] as string, 'base64');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-type'], 'image/png');
    assert.ok(png.equals(plain.body), 'stream and plain answers carry the same PNG');
    assert.ok(png.equals(readFileSync(join(tmp, 'cli.png'))), 'the served PNG is the CLI’s, byte for byte');
  });

  test('bounded load test: requests/s held, p50/p99 latency, nothing dropped; a burst beyond --max-queue gets 503', async (t) => {
    // MAX_QUEUE clients, each sending its requests one after another: never more in flight than admitted.
    const perClient = 6;
    const t0 = performance.now();
    const replies = (
      await Promise.all(
        Array.from({ length: MAX_QUEUE }, async (_, c) => {
          const out: Reply[] = [];
          for (let i = 0; i < perClient; i++) out.push(await fetchRaw(`${base}/sample?class=bag&count=2&nfe=2&seed=${100 + c * perClient + i}`));
          return out;
        }),
      )
    ).flat();
    const seconds = (performance.now() - t0) / 1000;
    const ms = replies.map((r) => r.ms).sort((a, b) => a - b);
    const pct = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
    t.diagnostic(
      `load: ${replies.length} requests from ${MAX_QUEUE} clients in ${seconds.toFixed(1)} s = ${(replies.length / seconds).toFixed(2)} requests/s; p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms`,
    );
    assert.equal(replies.length, MAX_QUEUE * perClient);
    assert.deepEqual(
      replies.map((r) => r.status),
      Array(MAX_QUEUE * perClient).fill(200),
      'every request answered 200: none dropped or refused',
    );
    for (const r of replies) assert.equal(r.body.subarray(1, 4).toString(), 'PNG');

    // A burst of 10 at once: MAX_QUEUE are admitted, the rest are refused at once with 503 — all answered.
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => fetchRaw(`${base}/sample?count=2&nfe=2&seed=${500 + i}`)));
    const ok = burst.filter((r) => r.status === 200);
    const busy = burst.filter((r) => r.status === 503);
    t.diagnostic(`burst of 10: ${ok.length} served, ${busy.length} refused with 503`);
    assert.equal(ok.length + busy.length, 10);
    assert.ok(ok.length >= 1 && ok.length <= 10 - 1, `served ${ok.length}`);
    assert.ok(busy.length >= 10 - MAX_QUEUE - 1, `refused ${busy.length}`);
    for (const r of busy) {
      assert.match((JSON.parse(r.body.toString()) as { error: string }).error, /busy: \d+ request\(s\) in flight, its limit --max-queue is 3/);
      assert.equal(r.headers['retry-after'], '1');
    }
    assert.equal((await fetchRaw(`${base}/sample?count=1&nfe=1`)).status, 200, 'served again after the burst');
  });
});
