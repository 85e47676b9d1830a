/**
 * Bench cells and sample batches on BullMQ with a real Debian redis-server (started here on a free
 * loopback port, append-only persistence with fsync on every write) and real `rediffuse worker`
 * processes: a worker SIGKILLed in the middle of a job, a Redis killed and restarted in the middle
 * of a run, and the sharded results compared with the single-process run of the same grid and seeds.
 * Skips (saying why) where redis-server is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Job, Queue } from 'bullmq';
import { QUEUE_NAME } from '../src/scale/queue.js';
import { spawnCli } from './helpers/cli.js';

const HAVE_REDIS = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).status === 0;
const SKIP = HAVE_REDIS ? false : 'redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-queue-test-'));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A redis-server on a loopback port with its data in `dir`; restartable on the same port and data. */
class TestRedis {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  /** `persist`: the append-only file, fsynced on every write; else nothing survives a restart. */
  async start(persist = true): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', persist ? 'yes' : 'no'];
    if (persist) args.push('--appendfsync', 'always');
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 15_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    });
  }
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
}

/** A `rediffuse worker` in its own process group (so SIGKILL reaches its sandboxed children too). */
interface WorkerProc {
  child: ChildProcess;
  name: string;
  log: () => string;
  kill: (signal: NodeJS.Signals) => Promise<void>;
}

async function startWorker(url: string, store: string): Promise<WorkerProc> {
  const child = spawn(
    process.execPath,
    ['--import', TSX, MAIN, 'worker', '--queue', url, '--lock-duration', '1500', '--threads', '1', '--store', store],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
      detached: true,
    },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not become ready: ${log}`)), 90_000);
    const check = () => {
      if (/ready on redis:/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.on('exit', (code) => reject(new Error(`worker exited with ${code}: ${log}`)));
  });
  return {
    child,
    name: `${hostname()}:${child.pid}`,
    log: () => log,
    kill: async (signal) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      process.kill(-child.pid!, signal);
      await gone;
    },
  };
}

/** The client's summary line: `N of M job(s) done, F failed, S handed out again …, D duplicate …, R re-enqueued`. */
function runStats(stderr: string): { done: number; jobs: number; failed: number; stalled: number; duplicates: number; reenqueued: number } {
  const m =
    /(\d+) of (\d+) job\(s\) done, (\d+) failed, (\d+) handed out again after a worker stopped, \d+ failed attempt\(s\) retried, (\d+) duplicate result\(s\) dropped, (\d+) re-enqueued/.exec(
      stderr,
    );
  assert.ok(m, `no run summary in: ${stderr}`);
  const [done, jobs, failed, stalled, duplicates, reenqueued] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return { done, jobs, failed, stalled, duplicates, reenqueued };
}

const GRID = {
  name: 'queue-test',
  model: 'fashion-unet',
  seeds: { seed: 5, count: 8, batch: 8 },
  reference: { solver: 'ddim', nfe: 12 },
  metrics: { fd: false, accuracy: false, kid: false, trajectory: true, best: 'trajectory_mse' },
  guidance: [0],
  runs: [{ solvers: ['ddim', 'dpmpp_2m'], nfe: [4, 8] }],
};

describe('BullMQ on a real redis-server', { skip: SKIP }, () => {
  let redis: TestRedis;
  const workers: WorkerProc[] = [];
  const gridFile = join(tmp, 'grid.json');

  before(async () => {
    redis = new TestRedis(await freePort(), mkdtempSync(join(tmp, 'redis-')));
    await redis.start();
    writeFileSync(gridFile, JSON.stringify(GRID));
    // Three workers at once (their start-up is the slow part): A is killed in the first test.
    workers.push(...(await Promise.all([0, 1, 2].map((i) => startWorker(redis.url, join(tmp, `store-${i}`))))));
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGTERM').catch(() => {});
    await redis?.kill();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('bad input: a bad or unreachable --queue, a worker without its model — a clear error, exit 1, fast', async () => {
    const closed = await freePort();
    const cases: [string[], RegExp][] = [
      [['bench', '--grid', gridFile, '--queue', 'not a url', '-o', join(tmp, 'bad1')], /--queue "not a url" is not a URL: use redis:\/\/HOST:PORT/],
      [['bench', '--grid', gridFile, '--queue', 'http://127.0.0.1:80', '-o', join(tmp, 'bad2')], /scheme must be redis:\/\/ or rediss:\/\//],
      [
        ['sample', '--queue', `redis://127.0.0.1:${closed}`, '-o', join(tmp, 'bad.png')],
        new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${closed} .*start redis-server`),
      ],
      [['worker', '--queue', redis.url, '--model', join(tmp, 'missing.onnx')], /worker: no model at .*missing\.onnx: pass --model FILE\.onnx/],
      [['worker', '--model', 'models/fashion-unet.onnx'], /required option '--queue <url>' not specified/],
      [['sample', '--queue', redis.url, '--fr-interval', '2', '-o', join(tmp, 'bad.png')], /--queue runs batches of an ONNX model without feature reuse/],
    ];
    // One after another: on a loaded 2-core machine six CLI start-ups at once take longer than the refusals themselves.
    for (const [args, pattern] of cases) {
      const r = await spawnCli(args, { cwd: process.cwd(), timeoutMs: 120_000 });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.ok(r.ms < 60_000, `${args.join(' ')} took ${r.ms} ms`);
    }
  });

  test('a worker SIGKILLed mid-job: the job is handed to another worker, no cell lost or stored twice, figures equal one process', async () => {
    const out = join(tmp, 'bench-queue');
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port } });
    const victim = workers[0]!;
    let killedJob: string | undefined;
    const client = spawnCli(['bench', '--grid', gridFile, '--queue', redis.url, '-o', out, '--no-plots'], { cwd: process.cwd(), timeoutMs: 180_000 });
    // Kill worker A (and its sandboxed child) while it holds a job.
    for (let i = 0; i < 1200 && !killedJob; i++) {
      const active = await queue.getActive();
      const mine = active.find((j) => j.processedBy === victim.name);
      if (mine) {
        await victim.kill('SIGKILL');
        killedJob = mine.id;
      } else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(killedJob, 'worker A never held a job');
    assert.equal(await queue.getJobState(killedJob), 'active', 'the killed job was still running when its worker died');
    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    const stats = runStats(r.stderr);
    assert.deepEqual({ ...stats, stalled: Math.min(stats.stalled, 1) }, { done: 4, jobs: 4, failed: 0, stalled: 1, duplicates: 0, reenqueued: 0 });
    const job = await Job.fromId(queue, killedJob);
    assert.ok(job!.stalledCounter >= 1, 'the killed job was found stalled');
    assert.notEqual(job!.processedBy, victim.name, 'another worker finished it');
    assert.ok([workers[1]!.name, workers[2]!.name].includes(job!.processedBy!));
    // Cells lost 0, stored twice 0: one file per cell key, no temporary file left.
    const files = readdirSync(join(out, 'cells'));
    assert.equal(files.filter((f) => f.endsWith('.json')).length, 4);
    assert.equal(files.length, 4, files.join(', '));
    await queue.close();

    // The same grid in one process: identical figures (all but wall times).
    const single = await spawnCli(['bench', '--grid', gridFile, '-o', join(tmp, 'bench-single'), '--no-plots', '-q'], {
      cwd: process.cwd(),
      timeoutMs: 180_000,
    });
    assert.equal(single.code, 0, single.stderr);
    const a = JSON.parse(readFileSync(join(tmp, 'bench-single', 'results.json'), 'utf8')) as { cells: Record<string, unknown>[] };
    const b = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: Record<string, unknown>[] };
    assert.equal(a.cells.length, 4);
    for (const c of a.cells) {
      const d = b.cells.find((x) => x['key'] === c['key'])!;
      assert.ok(d, `cell ${String(c['label'])} is in the sharded results`);
      assert.equal(d['status'], 'ok');
      for (const field of ['metrics', 'calls', 'steps', 'timesteps', 'settings', 'samples', 'runs'])
        assert.deepEqual(d[field], c[field], `${String(c['label'])}: ${field}`);
      assert.equal((d['machine'] as { cores: number }).cores, (c['machine'] as { cores: number }).cores);
    }
  });

  test('Redis killed and restarted mid-run: the jobs survive (append-only file), the samples are bit-identical to one process', async () => {
    const args = ['sample', '--nfe', '8', '--count', '4', '--batch-size', '8', '--solver', 'euler_a', '--seed', '11'];
    const client = spawnCli([...args, '--queue', redis.url, '-o', join(tmp, 'q.png'), '--samples-out', join(tmp, 'q.bin')], {
      cwd: process.cwd(),
      timeoutMs: 180_000,
    });
    // Kill Redis once a few of the 5 batches are done, and start it again on the same port and data.
    const doneAtKill = await firstSampleBatchesDone(redis.port);
    await redis.kill();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    const r = await client;
    assert.ok(doneAtKill >= 1 && doneAtKill < 5, `Redis was killed with ${doneAtKill} of 5 batches done`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(runStats(r.stderr), { ...runStats(r.stderr), done: 5, jobs: 5, failed: 0, duplicates: 0, reenqueued: 0 });
    const single = await spawnCli([...args, '-o', join(tmp, 's.png'), '--samples-out', join(tmp, 's.bin'), '-q'], {
      cwd: process.cwd(),
      timeoutMs: 180_000,
    });
    assert.equal(single.code, 0, single.stderr);
    const [q, s] = [readFileSync(join(tmp, 'q.bin')), readFileSync(join(tmp, 's.bin'))];
    assert.equal(q.length, 40 * 784 * 4);
    assert.ok(q.equals(s), 'sharded samples are bit-identical');
    assert.ok(readFileSync(join(tmp, 'q.png')).equals(readFileSync(join(tmp, 's.png'))), 'and so is the PNG');
  });

  test('Redis restarted without persistence mid-run: the client enqueues the lost jobs again and says so; same bytes', async () => {
    // Start from an empty, non-persistent Redis (the workers reconnect by themselves).
    await redis.kill();
    for (const f of readdirSync(redis.dir)) rmSync(join(redis.dir, f), { recursive: true, force: true });
    await redis.start(false);
    const args = ['sample', '--nfe', '8', '--count', '4', '--batch-size', '8', '--solver', 'euler_a', '--seed', '11'];
    const client = spawnCli([...args, '--queue', redis.url, '-o', join(tmp, 'l.png'), '--samples-out', join(tmp, 'l.bin')], {
      cwd: process.cwd(),
      timeoutMs: 180_000,
    });
    const doneAtKill = await firstSampleBatchesDone(redis.port);
    await redis.kill();
    await redis.start(false);
    const r = await client;
    assert.ok(doneAtKill >= 1 && doneAtKill < 5, `Redis was killed with ${doneAtKill} of 5 batches done`);
    assert.equal(r.code, 0, r.stderr);
    const stats = runStats(r.stderr);
    assert.equal(stats.done, 5);
    assert.equal(stats.failed, 0);
    assert.ok(stats.reenqueued >= 1 && stats.reenqueued <= 5, `re-enqueued ${stats.reenqueued}`);
    assert.match(r.stderr, /re-enqueued after Redis lost them/);
    assert.ok(readFileSync(join(tmp, 'l.bin')).equals(readFileSync(join(tmp, 's.bin'))), 'the samples equal the single-process run');
  });
});

/** Wait (up to 120 s) until at least one sample batch job has completed; the number completed then, or -1. */
async function firstSampleBatchesDone(port: number): Promise<number> {
  const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port } });
  queue.on('error', () => {});
  try {
    for (let i = 0; i < 1200; i++) {
      const done = (await queue.getJobs(['completed'])).filter((j) => j.id?.startsWith('sample-')).length;
      if (done >= 1) return done;
      await new Promise((r) => setTimeout(r, 100));
    }
    return -1;
  } finally {
    await queue.close();
  }
}
