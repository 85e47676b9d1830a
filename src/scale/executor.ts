/**
 * What runs a set of independent jobs — the BullMQ queue (`queue.ts`) or the local pool (`pool.ts`)
 * — seen by the bench and sample clients: hand over jobs with stable ids, wait, get one outcome per
 * id. An id given twice is one job.
 * @packageDocumentation
 */
import type { ScaleJob } from './jobs.js';

/** One job and its stable id (a bench cell's key; a sample batch's request hash and offset). */
export interface JobSpec {
  id: string;
  data: ScaleJob;
}

/** How one job ended. */
export interface JobOutcome {
  id: string;
  /** The job's return value (absent when it failed). */
  result?: unknown;
  /** Why it failed for good. */
  error?: string;
  /** Attempts that threw (retried while attempts were left). */
  failedAttempts: number;
  /** Times the job was found stalled (its worker died or stopped renewing its lock) and handed out again. */
  stalled: number;
  /** The worker that finished it. */
  processedBy?: string;
}

/** Progress while jobs run. */
export interface ExecutorProgress {
  total: number;
  done: number;
  failed: number;
  active: number;
  waiting: number;
  /** Jobs put back on the queue because Redis had lost them. */
  reenqueued: number;
}

/** Runs jobs somewhere and waits for them. */
export interface JobExecutor {
  /** A word for the messages (`queue redis://…`, `pool of 2 workers × 1 thread`). */
  readonly description: string;
  /** Run the jobs; resolves with one outcome per distinct id once every job has ended. */
  run(
    jobs: JobSpec[],
    opts?: { onProgress?: (p: ExecutorProgress) => void; onOutcome?: (o: JobOutcome) => void; signal?: AbortSignal },
  ): Promise<JobOutcome[]>;
  close(): Promise<void>;
}
