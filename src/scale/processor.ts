/**
 * BullMQ's sandboxed processor (run in a child process of `rediffuse worker`, as BullMQ recommends
 * for CPU-bound jobs, so the worker's own event loop keeps renewing job locks while a job samples).
 * The model is loaded once per child and kept for its later jobs. The worker passes its settings in
 * the environment variable {@link WORKER_ENV_VARIABLE} (a JSON {@link ComputeEnv}).
 * @packageDocumentation
 */
import type { SandboxedJob } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import { computeJob, JobRefusedError, WORKER_ENV_VARIABLE, type ComputeEnv, type ScaleJob } from './jobs.js';

// A child whose worker died (SIGKILL, a lost machine) stops at once instead of finishing a job
// whose result nobody can store; the job's lock then expires and another worker takes it.
if (process.channel) process.on('disconnect', () => process.exit(1));

const env = JSON.parse(process.env[WORKER_ENV_VARIABLE] ?? '{}') as ComputeEnv;

/** Compute one job; a job the worker cannot run (another model, another version) fails without retry. */
export default async function processJob(job: SandboxedJob<ScaleJob>, _token?: string, signal?: AbortSignal): Promise<unknown> {
  try {
    return await computeJob(job.data, env, signal);
  } catch (e) {
    if (e instanceof JobRefusedError) throw new UnrecoverableError(e.message);
    throw e;
  }
}
