/**
 * The task of a {@link PoolExecutor} worker process: compute one job with this process's own model
 * session (loaded on its first job with the pool's thread budget and kept). The settings come in
 * the environment variable `WORKER_ENV_VARIABLE` (a JSON `ComputeEnv`).
 * @packageDocumentation
 */
import { computeJob, WORKER_ENV_VARIABLE, type ComputeEnv, type ScaleJob } from './jobs.js';

const env = JSON.parse(process.env[WORKER_ENV_VARIABLE] ?? '{}') as ComputeEnv;

/** Compute one job; the result with the process that computed it. */
export default async function poolTask(job: ScaleJob): Promise<{ result: unknown; pid: number }> {
  return { result: await computeJob(job, env), pid: process.pid };
}
