/**
 * The clients' side of scaling out: a bench grid's unfinished cells, or a sampling request's seed
 * ranges, as jobs for a {@link JobExecutor} (the BullMQ queue or the local pool), with the results
 * put where the single-process run puts them — cells into the bench store (one file per cell key,
 * atomic rename: a cell that arrives twice is stored once and counted as a duplicate), samples into
 * one array in global index order.
 * @packageDocumentation
 */
import { cellKey, canonicalJson, sha256Hex, type KeyContext } from '../bench/cell-key.js';
import { expandCells, type BenchGrid } from '../bench/grid.js';
import type { CellResult } from '../bench/runner.js';
import type { BenchStore } from '../bench/store.js';
import type { ExecutorProgress, JobExecutor, JobOutcome, JobSpec } from './executor.js';
import { batchSamples, JOB_FORMAT, type SampleBatchJob, type SampleBatchResult } from './jobs.js';

/** What a distributed run did (the fault tests assert these counts). */
export interface DistributedRunStats {
  /** Jobs handed to the executor. */
  jobs: number;
  /** Jobs that ended with a result. */
  completed: number;
  /** Jobs that failed for good: `id: reason`. */
  failed: string[];
  /** Failed attempts that were retried. */
  retriedAttempts: number;
  /** Times a job was found stalled (worker died mid-job) and handed out again. */
  stalled: number;
  /** Results that arrived for a key already stored (kept once). */
  duplicates: number;
  /** Jobs Redis had lost and the client enqueued again. */
  reenqueued: number;
  /** Jobs finished per worker. */
  byWorker: Record<string, number>;
}

function newStats(jobs: number): DistributedRunStats {
  return { jobs, completed: 0, failed: [], retriedAttempts: 0, stalled: 0, duplicates: 0, reenqueued: 0, byWorker: {} };
}

function account(stats: DistributedRunStats, o: JobOutcome): void {
  stats.retriedAttempts += o.failedAttempts;
  stats.stalled += o.stalled;
  if (o.error !== undefined) stats.failed.push(`${o.id}: ${o.error}`);
  else {
    stats.completed++;
    const w = o.processedBy ?? 'unknown';
    stats.byWorker[w] = (stats.byWorker[w] ?? 0) + 1;
  }
}

/** The executor's progress and abort hooks of a distributed run: re-enqueued jobs are counted into `stats`. */
function progressHooks(
  stats: DistributedRunStats,
  opts: { onProgress?: (p: ExecutorProgress) => void; signal?: AbortSignal },
): { onProgress: (p: ExecutorProgress) => void; signal?: AbortSignal } {
  return {
    onProgress: (p) => {
      stats.reenqueued = p.reenqueued;
      opts.onProgress?.(p);
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/** Options of {@link distributeBench}. */
export interface DistributeBenchOptions {
  grid: BenchGrid;
  modelHash: string;
  store: BenchStore;
  executor: JobExecutor;
  onProgress?: (p: ExecutorProgress) => void;
  signal?: AbortSignal;
}

/** Run every cell of the grid that is not in the store as a job and store what comes back. */
export async function distributeBench(opts: DistributeBenchOptions): Promise<DistributedRunStats & { alreadyStored: number }> {
  const { grid, store } = opts;
  const ctx: KeyContext = { modelHash: opts.modelHash, seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  const specs = new Map<string, JobSpec>();
  let alreadyStored = 0;
  for (const cell of expandCells(grid)) {
    const key = cellKey(cell, ctx);
    if (store.readCell(key) !== undefined) {
      alreadyStored++;
      continue;
    }
    specs.set(key, { id: key, data: { format: JOB_FORMAT, kind: 'bench-cell', grid, cell, key, modelHash: opts.modelHash } });
  }
  const stats = newStats(specs.size);
  if (specs.size === 0) return { ...stats, alreadyStored };
  const outcomes = await opts.executor.run([...specs.values()], {
    ...progressHooks(stats, opts),
    onOutcome: (o) => {
      if (o.result === undefined) return;
      const cell = o.result as CellResult;
      if (cell?.format !== 'rediffuse-bench-cell/1' || cell.key !== o.id) {
        o.error = `the worker returned no cell ${o.id}`;
        delete o.result;
        return;
      }
      if (store.readCell(o.id) !== undefined) stats.duplicates++;
      else store.writeCell(o.id, cell);
    },
  });
  for (const o of outcomes) account(stats, o);
  return { ...stats, alreadyStored };
}

/** Options of {@link distributeSamples}. */
export interface DistributeSamplesOptions {
  request: SampleBatchJob['request'];
  /** One label per sample of the whole request, or undefined (unconditional). */
  classLabels?: number[];
  seed: number;
  total: number;
  /** Samples per job. */
  batch: number;
  modelHash: string;
  /** Values per sample. */
  sampleSize: number;
  executor: JobExecutor;
  onProgress?: (p: ExecutorProgress) => void;
  signal?: AbortSignal;
}

/** Sample a request as jobs of `batch` consecutive samples; the samples in global index order. */
export async function distributeSamples(
  opts: DistributeSamplesOptions,
): Promise<{ samples: Float32Array; stats: DistributedRunStats; first: SampleBatchResult; computeMs: number }> {
  const id = sha256Hex(canonicalJson({ request: opts.request, labels: opts.classLabels ?? null, seed: opts.seed, model: opts.modelHash })).slice(0, 20);
  const specs: JobSpec[] = [];
  for (let offset = 0; offset < opts.total; offset += opts.batch) {
    const count = Math.min(opts.batch, opts.total - offset);
    const data: SampleBatchJob = {
      format: JOB_FORMAT,
      kind: 'sample-batch',
      request: opts.request,
      ...(opts.classLabels ? { classLabels: opts.classLabels } : {}),
      seed: opts.seed,
      offset,
      count,
      modelHash: opts.modelHash,
    };
    specs.push({ id: `sample-${id}-${offset}-${count}`, data });
  }
  const stats = newStats(specs.length);
  const samples = new Float32Array(opts.total * opts.sampleSize);
  const filled = new Set<number>();
  let first: SampleBatchResult | undefined;
  let computeMs = 0;
  const outcomes = await opts.executor.run(specs, {
    ...progressHooks(stats, opts),
    onOutcome: (o) => {
      if (o.result === undefined) return;
      const r = o.result as SampleBatchResult;
      const x = batchSamples(r);
      if (x.length !== r.count * opts.sampleSize) {
        o.error = `batch ${o.id} came back with ${x.length} values, expected ${r.count} × ${opts.sampleSize}`;
        delete o.result;
        return;
      }
      if (filled.has(r.offset)) stats.duplicates++;
      filled.add(r.offset);
      samples.set(x, r.offset * opts.sampleSize);
      computeMs += r.wallMs;
      if (r.offset === 0) first = r;
    },
  });
  for (const o of outcomes) account(stats, o);
  if (stats.failed.length > 0 || !first) {
    throw new Error(`${stats.failed.length} of ${specs.length} sample batch(es) failed:\n  ${stats.failed.slice(0, 10).join('\n  ')}`);
  }
  return { samples, stats, first, computeMs };
}
