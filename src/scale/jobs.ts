/**
 * The two kinds of independent work that scale out — one bench cell, one range of samples — as plain
 * JSON job descriptions, and the code that computes one in whatever process holds the model: a
 * BullMQ sandboxed processor (`processor.ts`) on any machine, or a pool thread (`pool-task.ts`).
 *
 * Determinism. A bench cell is computed by the same `runBench` on a grid of that one cell, so its
 * figures are those of the single-process run (cell keys do not depend on the grid's other cells).
 * Sample `i` of a request with seed s starts from the noise stream `seedForSample(s, i)` and a
 * stochastic solver draws its step noise from `seedForSample(s ⊕ SOLVER_NOISE_SALT, i)` (core/rng.ts,
 * core/solver-context.ts): a batch [offset, offset + n) is given exactly those streams, so every
 * sample depends on its global index only and a sharded request is bit-identical to one process
 * (onnxruntime's CPU kernels give each sample the same bits whatever the batch it runs in; the tests
 * compare bytes).
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { gaussianBatch, Rng, sample, seedForSample, SOLVER_NOISE_SALT, sampleSize, type NumArray } from '../core/index.js';
import { sampleOptionsFromCard, type CardSampleRequest } from '../model/index.js';
import { bundledModelPath } from '../node/index.js';
import { expandCells, type BenchGrid, type CellSpec } from '../bench/grid.js';
import { cellKey } from '../bench/cell-key.js';
import { reuseBaselineKeys, runBench, type CellResult } from '../bench/runner.js';
import { onnxSetup, referenceSetup, type BenchSetup } from '../bench/setup.js';

/** Version of the job format; a worker refuses jobs of another version. */
export const JOB_FORMAT = 'rediffuse-job/1';

/** One bench cell to compute (job id = the cell key). */
export interface BenchCellJob {
  format: typeof JOB_FORMAT;
  kind: 'bench-cell';
  /** The whole grid (its seeds, reference run and metrics are part of the key). */
  grid: BenchGrid;
  cell: CellSpec;
  /** The cell key the client computed; the worker checks it computes the same. */
  key: string;
  /** SHA-256 of the model file the client measures (the worker's must be the same). */
  modelHash: string;
}

/** Samples [offset, offset + count) of one sampling request. */
export interface SampleBatchJob {
  format: typeof JOB_FORMAT;
  kind: 'sample-batch';
  /** The card request without `batch`, `seed` and `classLabels` (those are per batch). */
  request: Omit<CardSampleRequest, 'batch' | 'seed' | 'classLabels'>;
  /** Labels of the whole request (one per sample), absent when unconditional. */
  classLabels?: number[];
  seed: number;
  offset: number;
  count: number;
  modelHash: string;
}

export type ScaleJob = BenchCellJob | SampleBatchJob;

/** What a sample batch returns: the samples as little-endian float32 bytes, base64 (JSON-safe). */
export interface SampleBatchResult {
  offset: number;
  count: number;
  samplesBase64: string;
  calls: number;
  steps: number;
  timesteps: number[];
  solver: string;
  pfdiff: { k: number; h: number; variant: string; quantity?: string } | null;
  wallMs: number;
  /** The machine (hostname) and process that computed it. */
  computedBy: string;
}

/** Where and with what a worker process computes jobs. */
export interface ComputeEnv {
  /** The diffusion model (.onnx); default the bundled U-Net. */
  modelPath?: string;
  cardPath?: string;
  /** onnxruntime intra-op threads of this process's session. */
  threads?: number;
  /** Local bench store for reference runs and baseline samples (default: a folder under the temp dir). */
  storeDir?: string;
}

/** The environment variable that carries a queue worker's {@link ComputeEnv} to its sandboxed children. */
export const WORKER_ENV_VARIABLE = 'REDIFFUSE_WORKER_ENV';

/** The default local store of a worker (reference runs are cached there between jobs). */
export function defaultWorkerStore(): string {
  return join(tmpdir(), `rediffuse-worker-store-${userInfo().uid}`);
}

/** A job the client and the worker disagree on (no retry can help). */
export class JobRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobRefusedError';
  }
}

const setups = new Map<string, Promise<BenchSetup>>();

/** This process's model setup (loaded once per process and kept). */
export function setupFor(env: ComputeEnv, model: 'reference' | 'onnx'): Promise<BenchSetup> {
  const id = model === 'reference' ? 'reference' : JSON.stringify([env.modelPath, env.cardPath, env.threads]);
  let s = setups.get(id);
  if (!s) {
    s =
      model === 'reference'
        ? Promise.resolve(referenceSetup())
        : onnxSetup({
            modelPath: env.modelPath ?? bundledModelPath(),
            ...(env.cardPath !== undefined ? { cardPath: env.cardPath } : {}),
            ...(env.threads !== undefined ? { threads: env.threads } : {}),
          });
    setups.set(id, s);
    s.catch(() => setups.delete(id));
  }
  return s;
}

/** Release every model this process loaded. */
export async function releaseSetups(): Promise<void> {
  const all = [...setups.values()];
  setups.clear();
  for (const s of all) await (await s.catch(() => undefined))?.release();
}

function checkJob(job: ScaleJob, setup: BenchSetup): void {
  if (job?.format !== JOB_FORMAT)
    throw new JobRefusedError(`job format ${String(job?.format)} is not ${JOB_FORMAT}: run the same rediffuse version on client and workers`);
  if (job.modelHash !== setup.modelHash) {
    throw new JobRefusedError(
      `this worker's model ${setup.modelPath ?? setup.name} (sha256 ${setup.modelHash.slice(0, 12)}…) is not the job's (sha256 ${job.modelHash.slice(0, 12)}…): ` +
        'start the worker with --model pointing at the same model file as the client',
    );
  }
}

/** The grid of one cell, with the seeds, reference and metrics (hence the key) of the whole grid. */
export function oneCellGrid(grid: BenchGrid, cell: CellSpec): BenchGrid {
  return {
    ...grid,
    runs: [
      {
        solvers: [cell.solver],
        nfe: [cell.nfe],
        pfdiff: [cell.pfdiff ?? 'none'],
        fr: [cell.fr],
        guidance: [cell.guidance],
        spacing: [cell.spacing ?? null],
        ...(cell.options ? { options: cell.options } : {}),
      },
    ],
  };
}

/** Compute one bench cell (see the module notes). */
export async function computeBenchCell(job: BenchCellJob, env: ComputeEnv, signal?: AbortSignal): Promise<CellResult> {
  const setup = await setupFor(env, job.grid.model === 'reference' ? 'reference' : 'onnx');
  checkJob(job, setup);
  const grid = oneCellGrid(job.grid, job.cell);
  const cells = expandCells(grid);
  const ctx = { modelHash: setup.modelHash, seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  const key = cells.length === 1 ? cellKey(cells[0]!, ctx) : '';
  if (key !== job.key)
    throw new JobRefusedError(
      `the worker computes key ${key || '(none)'} for cell ${JSON.stringify(job.cell)}, the client ${job.key}: run the same rediffuse version on client and workers`,
    );
  const storeDir = env.storeDir ?? defaultWorkerStore();
  mkdirSync(storeDir, { recursive: true });
  // The whole grid's feature-reuse baselines: a full-compute cell they need keeps its samples for them.
  const keepSamplesOf = reuseBaselineKeys(expandCells(job.grid), ctx);
  const results = await runBench({ grid, setup, outDir: storeDir, keepSamplesOf, ...(signal ? { signal } : {}) });
  const cell = results.cells.find((c) => c.key === job.key);
  if (!cell) throw new Error(`runBench returned no cell ${job.key}`);
  return cell;
}

/** The step noise of samples [offset, offset + n): the streams solver-context.ts gives samples offset … offset + n − 1 of one run. */
function shardedSolverNoise(seed: number, offset: number, n: number, d: number): (index: number) => NumArray {
  const rngs = Array.from({ length: n }, (_, b) => new Rng(seedForSample((seed ^ SOLVER_NOISE_SALT) >>> 0, offset + b)));
  return () => {
    const out = new Float32Array(n * d);
    for (let b = 0; b < n; b++) rngs[b]!.fillNormal(out.subarray(b * d, (b + 1) * d));
    return out;
  };
}

/** Little-endian float32 bytes of an array. */
export function float32Bytes(data: ArrayLike<number>): Buffer {
  const buf = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i]!, i * 4);
  return buf;
}

/** The float32 samples of a {@link SampleBatchResult}. */
export function batchSamples(r: SampleBatchResult): Float32Array {
  const buf = Buffer.from(r.samplesBase64, 'base64');
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** Compute one batch of a sampling request (see the module notes). */
export async function computeSampleBatch(job: SampleBatchJob, env: ComputeEnv, signal?: AbortSignal): Promise<SampleBatchResult> {
  const setup = await setupFor(env, 'onnx');
  checkJob(job, setup);
  const { offset, count: n, seed } = job;
  const labels = job.classLabels?.slice(offset, offset + n);
  const base = sampleOptionsFromCard(setup.sampling, { ...job.request, ...(labels ? { classLabels: labels } : {}), batch: n, seed });
  const d = sampleSize(setup.model.sampleShape);
  const r = await sample({
    ...base,
    model: setup.model,
    initialNoise: gaussianBatch(seed, n, d, 'float32', offset),
    noise: shardedSolverNoise(seed, offset, n, d),
    ...(signal ? { signal } : {}),
  });
  return {
    offset,
    count: n,
    samplesBase64: float32Bytes(r.samples).toString('base64'),
    calls: r.calls,
    steps: r.steps,
    timesteps: r.timesteps,
    solver: r.solver,
    pfdiff: r.pfdiff ? { ...r.pfdiff } : null,
    wallMs: r.wallMs,
    computedBy: `${hostname()}:${process.pid}`,
  };
}

/** Compute any job. */
export function computeJob(job: ScaleJob, env: ComputeEnv, signal?: AbortSignal): Promise<CellResult | SampleBatchResult> {
  if (job?.kind === 'bench-cell') return computeBenchCell(job, env, signal);
  if (job?.kind === 'sample-batch') return computeSampleBatch(job, env, signal);
  return Promise.reject(
    new JobRefusedError(`unknown job kind ${String((job as { kind?: unknown })?.kind)}: run the same rediffuse version on client and workers`),
  );
}
