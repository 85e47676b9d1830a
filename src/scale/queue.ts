/**
 * Jobs on BullMQ (Redis): the client side ({@link QueueExecutor}: enqueue with the job id = the
 * job's stable id, poll until every job has ended) and the worker side ({@link runQueueWorker}: a
 * BullMQ worker whose jobs run in sandboxed child processes, `processor.ts`).
 *
 * Nothing lost: a job whose worker dies keeps its lock until `lockDuration` runs out; the stalled-job
 * check of any live worker (every `stalledInterval`) then puts it back on the queue, and another
 * worker runs it from the start (a job's result is its return value, so a half-done job has no
 * result). Nothing twice: the same id enqueued twice is one job, and results are stored under the
 * cell key by atomic rename, so a cell finished twice is one file. A Redis restart is waited out
 * (the connections reconnect); with `--appendonly yes` the jobs survive it, and a job that Redis has
 * lost (no persistence) is enqueued again by the client, which says so.
 * @packageDocumentation
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Job, Queue, Worker } from 'bullmq';
import type { ExecutorProgress, JobExecutor, JobOutcome, JobSpec } from './executor.js';
import { connectionOptions, probeRedis, type RedisTarget } from './redis.js';
import { WORKER_ENV_VARIABLE, type ComputeEnv } from './jobs.js';

/** The BullMQ queue every rediffuse client and worker uses. */
export const QUEUE_NAME = 'rediffuse';

/** Attempts of a job that throws (a stalled job is handed out again without using one). */
const ATTEMPTS = 3;
/** Finished jobs stay in Redis a week, so a rerun of the same grid finds them (same id = same job). */
const KEEP_FINISHED_S = 7 * 24 * 3600;

/** The client side: enqueue jobs and wait for their outcomes. */
export class QueueExecutor implements JobExecutor {
  readonly description: string;
  private readonly queue: Queue;

  private constructor(
    readonly target: RedisTarget,
    private readonly pollMs: number,
  ) {
    this.description = `queue ${target.url}`;
    this.queue = new Queue(QUEUE_NAME, { connection: connectionOptions(target) });
    this.queue.on('error', () => {}); // connection errors during a Redis restart: retried
  }

  /** Probe Redis (a clear error within seconds when it is unreachable), then open the queue. */
  static async open(target: RedisTarget, opts: { pollMs?: number } = {}): Promise<QueueExecutor> {
    await probeRedis(target);
    return new QueueExecutor(target, opts.pollMs ?? 250);
  }

  private async enqueue(jobs: JobSpec[]): Promise<void> {
    await this.queue.addBulk(
      jobs.map((j) => ({
        name: j.data.kind,
        data: j.data,
        opts: {
          jobId: j.id,
          attempts: ATTEMPTS,
          backoff: { type: 'fixed', delay: 1000 },
          removeOnComplete: { age: KEEP_FINISHED_S },
          removeOnFail: { age: KEEP_FINISHED_S },
        },
      })),
    );
  }

  async run(
    jobs: JobSpec[],
    opts: { onProgress?: (p: ExecutorProgress) => void; onOutcome?: (o: JobOutcome) => void; signal?: AbortSignal } = {},
  ): Promise<JobOutcome[]> {
    const byId = new Map(jobs.map((j) => [j.id, j]));
    // A job that failed for good in an earlier run is run again: remove it before enqueueing.
    for (const id of byId.keys()) {
      const old = await this.queue.getJob(id);
      if (old && (await old.getState()) === 'failed') await old.remove();
    }
    await this.enqueue([...byId.values()]);
    const pending = new Set(byId.keys());
    const outcomes: JobOutcome[] = [];
    let reenqueued = 0;
    let failed = 0;
    while (pending.size > 0) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
      let active = 0;
      let waiting = 0;
      const lost: JobSpec[] = [];
      const ids = [...pending];
      const states = await Promise.all(ids.map((id) => this.queue.getJobState(id)));
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        const state = states[i]!;
        if (state === 'completed' || state === 'failed') {
          const job = await Job.fromId(this.queue, id);
          if (!job) continue; // removed between the two reads: seen as lost next round
          const o: JobOutcome = {
            id,
            failedAttempts: state === 'failed' ? job.attemptsMade : Math.max(0, job.attemptsMade - 1),
            stalled: job.stalledCounter ?? 0,
            ...(job.processedBy ? { processedBy: job.processedBy } : {}),
            ...(state === 'completed' ? { result: job.returnvalue } : { error: job.failedReason || 'failed' }),
          };
          if (state === 'failed') failed++;
          pending.delete(id);
          outcomes.push(o);
          opts.onOutcome?.(o);
        } else if (state === 'active') active++;
        else if (state === 'unknown') lost.push(byId.get(id)!);
        else waiting++;
      }
      if (lost.length > 0) {
        reenqueued += lost.length;
        await this.enqueue(lost);
      }
      opts.onProgress?.({ total: byId.size, done: byId.size - pending.size, failed, active, waiting: waiting + lost.length, reenqueued });
      if (pending.size > 0) await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return outcomes;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** Options of {@link runQueueWorker}. */
export interface QueueWorkerOptions {
  target: RedisTarget;
  env: ComputeEnv;
  /** Jobs at once (each in its own child process with its own model session). Default 1. */
  concurrency?: number;
  /** How long a job's lock lives without renewal, ms (the stalled check runs as often). Default 30 000. */
  lockDurationMs?: number;
  /** Name recorded as a job's `processedBy`. Default `HOST:PID`. */
  name?: string;
  signal?: AbortSignal;
  onEvent?: (e: { type: 'ready' } | { type: 'completed' | 'failed' | 'stalled'; id: string; detail?: string }) => void;
}

/** The sandboxed processor's file (the .ts source under tsx, the built .js otherwise). */
function processorFile(): string {
  const here = fileURLToPath(import.meta.url);
  return here.replace(/queue\.(ts|js)$/, 'processor.$1');
}

/** Process jobs until `signal` aborts; resolves after the running jobs have finished. */
export async function runQueueWorker(opts: QueueWorkerOptions): Promise<void> {
  await probeRedis(opts.target);
  process.env[WORKER_ENV_VARIABLE] = JSON.stringify(opts.env); // read by the children
  const lock = opts.lockDurationMs ?? 30_000;
  const worker = new Worker(QUEUE_NAME, processorFile(), {
    connection: connectionOptions(opts.target),
    concurrency: opts.concurrency ?? 1,
    lockDuration: lock,
    stalledInterval: lock,
    maxStalledCount: 5,
    name: opts.name ?? `${hostname()}:${process.pid}`,
  });
  const emit = opts.onEvent ?? (() => {});
  worker.on('error', () => {}); // connection errors during a Redis restart: retried
  worker.on('completed', (job) => emit({ type: 'completed', id: job.id ?? '?' }));
  worker.on('failed', (job, err) => emit({ type: 'failed', id: job?.id ?? '?', detail: err.message }));
  worker.on('stalled', (id) => emit({ type: 'stalled', id }));
  await worker.waitUntilReady();
  emit({ type: 'ready' });
  await new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await worker.close();
}
