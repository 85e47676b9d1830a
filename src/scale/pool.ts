/**
 * Every core of one machine: a tinypool pool of worker processes (its `child_process` runtime), each
 * with its own onnxruntime session of `threadsPerWorker` intra-op threads (`pool-task.ts`), running
 * the same jobs as the BullMQ workers. Processes rather than threads: a session's native threads and
 * memory are the worker's own, and the TypeScript loader the tests run under reaches child processes
 * (Node 20 does not hand module hooks to worker threads). `workers × threadsPerWorker` should not
 * exceed the cores.
 * @packageDocumentation
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Tinypool } from 'tinypool';
import type { ExecutorProgress, JobExecutor, JobOutcome, JobSpec } from './executor.js';
import { WORKER_ENV_VARIABLE, type ComputeEnv } from './jobs.js';

/** Options of {@link PoolExecutor}. */
export interface PoolOptions {
  workers: number;
  threadsPerWorker: number;
  /** The model and the local bench store (the pool's threads share it). */
  env: Omit<ComputeEnv, 'threads'>;
}

/** The pool task's file (the .ts source under tsx, the built .js otherwise). */
function taskFile(): string {
  return fileURLToPath(import.meta.url).replace(/pool\.(ts|js)$/, 'pool-task.$1');
}

/** Runs jobs on a local pool of worker processes. */
export class PoolExecutor implements JobExecutor {
  readonly description: string;
  private readonly pool: Tinypool;

  constructor(readonly options: PoolOptions) {
    const { workers, threadsPerWorker } = options;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`--workers must be an integer ≥ 1, got ${workers}`);
    if (!Number.isInteger(threadsPerWorker) || threadsPerWorker < 1)
      throw new RangeError(`--threads-per-worker must be an integer ≥ 1, got ${threadsPerWorker}`);
    this.description = `pool of ${workers} worker${workers === 1 ? '' : 's'} × ${threadsPerWorker} thread${threadsPerWorker === 1 ? '' : 's'}`;
    const env: ComputeEnv = { ...options.env, threads: threadsPerWorker };
    this.pool = new Tinypool({
      filename: taskFile(),
      runtime: 'child_process',
      minThreads: workers,
      maxThreads: workers,
      isolateWorkers: false,
      env: { ...(process.env as Record<string, string>), [WORKER_ENV_VARIABLE]: JSON.stringify(env) },
    });
  }

  async run(
    jobs: JobSpec[],
    opts: { onProgress?: (p: ExecutorProgress) => void; onOutcome?: (o: JobOutcome) => void; signal?: AbortSignal } = {},
  ): Promise<JobOutcome[]> {
    const distinct = [...new Map(jobs.map((j) => [j.id, j])).values()];
    const total = distinct.length;
    let done = 0;
    let failed = 0;
    const progress = () =>
      opts.onProgress?.({
        total,
        done,
        failed,
        active: Math.min(this.options.workers, total - done),
        waiting: Math.max(0, total - done - this.options.workers),
        reenqueued: 0,
      });
    progress();
    return Promise.all(
      distinct.map(async (j): Promise<JobOutcome> => {
        let o: JobOutcome;
        try {
          const r = (await this.pool.run(j.data, opts.signal ? { signal: opts.signal } : {})) as { result: unknown; pid: number };
          o = { id: j.id, result: r.result, failedAttempts: 0, stalled: 0, processedBy: `${hostname()}:${r.pid}` };
        } catch (e) {
          if (opts.signal?.aborted) throw e;
          failed++;
          o = { id: j.id, error: (e as Error).message, failedAttempts: 0, stalled: 0 };
        }
        done++;
        opts.onOutcome?.(o);
        progress();
        return o;
      }),
    );
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
