/**
 * Throughput of the bundled U-Net (images per second, DDIM, unconditional, batches of 64) on this
 * machine: one process with one onnxruntime session of every core, the local pool (N processes ×
 * T threads), and N local `rediffuse worker` processes through a Redis queue on loopback, with the
 * queue's overhead per job. Every configuration samples the same seeds, and its samples are checked
 * bit for bit against the single-process run.
 *
 *   npx tsx bench/throughput.ts [--images 256] [--nfe 20] [--batch 64] [--queue-workers 1,2,4] [--pools 2x1,1x2]
 *
 * The queue part starts its own redis-server (Debian's) on a free loopback port and is skipped
 * without it. Prints a Markdown table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { gaussianBatch, sample, sampleSize } from '../src/core/index.js';
import { cardSamplingSetup, sampleOptionsFromCard } from '../src/model/index.js';
import { bundledModelPath, loadOnnxModel } from '../src/node/index.js';
import { fileSha256 } from '../src/bench/cell-key.js';
import { distributeSamples } from '../src/scale/distribute.js';
import type { JobExecutor } from '../src/scale/executor.js';
import { PoolExecutor } from '../src/scale/pool.js';
import { QUEUE_NAME, QueueExecutor } from '../src/scale/queue.js';
import { parseRedisUrl } from '../src/scale/redis.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const images = Number(opt('images', '256'));
const nfe = Number(opt('nfe', '20'));
const batch = Number(opt('batch', '64'));
const queueWorkers = opt('queue-workers', '1,2,4').split(',').filter(Boolean).map(Number);
const pools = opt('pools', '2x1,1x2')
  .split(',')
  .filter(Boolean)
  .map((s) => s.split('x').map(Number) as [number, number]);
const cores = availableParallelism();
const modelPath = bundledModelPath();
const request = { solver: 'ddim', nfe, guidance: 0, classConditional: true } as const;
const seed = 0;

interface Row {
  setup: string;
  wallS: number;
  imagesPerS: number;
  identical: boolean | null;
  overheadMs: string;
}
const rows: Row[] = [];
let reference: Float32Array | undefined;
/** Empties the queue between the warm-up and the timed run (so the overhead is of the timed jobs). */
let clear: (() => Promise<void>) | undefined;

function same(a: Float32Array): boolean {
  return reference !== undefined && a.length === reference.length && a.every((v, i) => Object.is(v, reference![i]));
}

async function singleProcess(): Promise<void> {
  const loaded = await loadOnnxModel({ path: modelPath, maxBatch: batch, threads: cores });
  const setup = cardSamplingSetup(loaded.card!);
  const out = new Float32Array(images * 784);
  const t0 = performance.now();
  for (let offset = 0; offset < images; offset += batch) {
    const n = Math.min(batch, images - offset);
    const base = sampleOptionsFromCard(setup, { ...request, batch: n, seed });
    const r = await sample({
      ...base,
      model: loaded.model,
      initialNoise: gaussianBatch(seed, n, sampleSize(loaded.model.sampleShape), 'float32', offset),
    });
    out.set(r.samples, offset * 784);
  }
  const wall = (performance.now() - t0) / 1000;
  await loaded.model.release();
  reference = out;
  rows.push({
    setup: `1 process × ${cores} threads (in-process, model loaded before the clock)`,
    wallS: wall,
    imagesPerS: images / wall,
    identical: true,
    overheadMs: '—',
  });
}

async function viaExecutor(label: string, executor: JobExecutor, workers: number, overhead?: () => Promise<string>): Promise<void> {
  // Warm-up outside the clock: one small job per worker, so every process has loaded its session.
  await distributeSamples({ request, seed: seed + 1, total: workers, batch: 1, modelHash: fileSha256(modelPath), sampleSize: 784, executor });
  await clear?.();
  const t0 = performance.now();
  const d = await distributeSamples({ request, seed, total: images, batch, modelHash: fileSha256(modelPath), sampleSize: 784, executor });
  const wall = (performance.now() - t0) / 1000;
  rows.push({ setup: label, wallS: wall, imagesPerS: images / wall, identical: same(d.samples), overheadMs: overhead ? await overhead() : '—' });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function startWorker(url: string, threads: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--queue', url, '--threads', String(threads)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (/ready on redis:/.test(log)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
  });
}

async function main(): Promise<void> {
  process.stderr.write(`throughput: ${images} images, DDIM ${nfe}, batch ${batch}, ${cores} cores (${cpus()[0]?.model})\n`);
  await singleProcess();
  for (const [w, t] of pools) {
    if (w * t > cores) continue;
    const pool = new PoolExecutor({ workers: w, threadsPerWorker: t, env: { modelPath } });
    await viaExecutor(`pool: ${w} process${w > 1 ? 'es' : ''} × ${t} thread${t > 1 ? 's' : ''} (sessions loaded before the clock)`, pool, w);
    await pool.close();
  }
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    process.stderr.write('redis-server not installed: queue rows skipped\n');
  } else {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'rediffuse-throughput-'));
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 500));
    const target = parseRedisUrl(`redis://127.0.0.1:${port}`);
    try {
      for (const n of queueWorkers) {
        const threads = Math.max(1, Math.floor(cores / n));
        const workers = await Promise.all(Array.from({ length: n }, () => startWorker(target.url, threads)));
        const queue = new Queue(QUEUE_NAME, { connection: { host: target.host, port: target.port } });
        await queue.obliterate({ force: true }); // a fresh queue: every configuration computes its jobs
        const executor = await QueueExecutor.open(target);
        // Overhead per job: the time a worker held the job beyond the sampling itself (child
        // process hand-off, (de)serialisation), mean over the timed jobs.
        const overhead = async () => {
          const jobs = await queue.getJobs(['completed']);
          const per = jobs.map((j) => j.finishedOn! - j.processedOn! - (j.returnvalue as { wallMs: number }).wallMs);
          const sorted = [...per].sort((a, b) => a - b);
          return `${(per.reduce((a, b) => a + b, 0) / per.length).toFixed(0)} (median ${sorted[sorted.length >> 1]!.toFixed(0)})`;
        };
        clear = async () => {
          await queue.obliterate({ force: true });
        };
        await viaExecutor(
          `queue: ${n} worker${n > 1 ? 's' : ''} × ${threads} thread${threads > 1 ? 's' : ''}, loopback Redis (sessions loaded before the clock)`,
          executor,
          n,
          overhead,
        );
        clear = undefined;
        await executor.close();
        await queue.close();
        for (const w of workers) {
          const gone = new Promise((r) => w.once('exit', r));
          w.kill('SIGTERM');
          await gone;
        }
      }
    } finally {
      redis.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const lines = [
    `| setup | wall s | images/s | samples bit-identical to 1 process | queue overhead per job, ms |`,
    `|---|---:|---:|---|---:|`,
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${r.wallS.toFixed(1)} | ${r.imagesPerS.toFixed(1)} | ${r.identical === null ? '—' : r.identical ? 'yes' : 'NO'} | ${r.overheadMs} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
