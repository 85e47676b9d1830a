/**
 * The scale-out flags `bench` and `sample` share: `--queue redis://HOST:PORT` (jobs on BullMQ for
 * `rediffuse worker` processes on any machine) and `--workers N --threads-per-worker T` (a local
 * pool of worker threads), checked before any model loads, and the progress line while jobs run.
 * @packageDocumentation
 */
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import type { ExecutorProgress, JobExecutor } from '../../scale/executor.js';
import type { DistributedRunStats } from '../../scale/distribute.js';
import { PoolExecutor } from '../../scale/pool.js';
import { QueueExecutor } from '../../scale/queue.js';
import { parseRedisUrl, probeRedis, type RedisTarget } from '../../scale/redis.js';
import { CliError, intArg } from '../cli-error.js';

/** The flags. */
export interface ScaleFlags {
  queue?: string;
  workers?: number;
  threadsPerWorker?: number;
}

/** Add the flags to a command. */
export function addScaleOptions(cmd: Command, what: string): Command {
  return cmd
    .addOption(new Option('--queue <url>', `run the ${what} as jobs on a Redis queue (redis://HOST:PORT) for rediffuse worker processes`))
    .addOption(
      new Option('--workers <n>', `run the ${what} on a local pool of n worker threads, each with its own model session`).argParser(intArg(1, 1024)),
    )
    .addOption(new Option('--threads-per-worker <n>', 'with --workers: onnxruntime threads of each worker (default 1)').argParser(intArg(1, 1024)));
}

/** What the flags ask for, checked (no model loaded, no connection made yet). */
export type ScalePlan = { kind: 'none' } | { kind: 'queue'; target: RedisTarget } | { kind: 'pool'; workers: number; threadsPerWorker: number };

/** Check the flags against each other and the machine. */
export function scalePlan(opts: ScaleFlags & { threads?: number }): ScalePlan {
  if (opts.threadsPerWorker !== undefined && opts.workers === undefined) throw new CliError('--threads-per-worker needs --workers N (the local pool)');
  if (opts.queue !== undefined) {
    if (opts.workers !== undefined) throw new CliError('give one of --queue URL (workers anywhere) and --workers N (a local pool)');
    try {
      return { kind: 'queue', target: parseRedisUrl(opts.queue) };
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  if (opts.workers !== undefined) {
    if (opts.threads !== undefined) throw new CliError('--threads sets one session; with --workers give --threads-per-worker instead');
    const tpw = opts.threadsPerWorker ?? 1;
    const cores = availableParallelism();
    if (opts.workers * tpw > cores) {
      throw new CliError(
        `--workers ${opts.workers} × --threads-per-worker ${tpw} = ${opts.workers * tpw} threads exceeds this machine's ${cores} cores: lower one of them`,
      );
    }
    return { kind: 'pool', workers: opts.workers, threadsPerWorker: tpw };
  }
  return { kind: 'none' };
}

/** Probe a plan's Redis (no connection is kept): an unreachable Redis is an error before the model loads. */
export async function probeQueue(plan: ScalePlan): Promise<void> {
  if (plan.kind !== 'queue') return;
  try {
    await probeRedis(plan.target);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** Open the executor of a plan (a queue is probed first: an unreachable Redis is an error within seconds). */
export async function openExecutor(plan: ScalePlan, env: { modelPath?: string; cardPath?: string; storeDir?: string }): Promise<JobExecutor | undefined> {
  if (plan.kind === 'none') return undefined;
  if (plan.kind === 'queue') {
    try {
      return await QueueExecutor.open(plan.target);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  return new PoolExecutor({
    workers: plan.workers,
    threadsPerWorker: plan.threadsPerWorker,
    env: {
      ...(env.modelPath !== undefined ? { modelPath: env.modelPath } : {}),
      ...(env.cardPath !== undefined ? { cardPath: env.cardPath } : {}),
      ...(env.storeDir !== undefined ? { storeDir: env.storeDir } : {}),
    },
  });
}

/** A progress reporter that prints a line when the counts change (at most every 2 s, and the last one). */
export function progressLine(what: string, say: (s: string) => void): (p: ExecutorProgress) => void {
  let last = '';
  let at = 0;
  return (p) => {
    const line = `${what}: ${p.done}/${p.total} done (${p.active} running, ${p.waiting} waiting${p.failed ? `, ${p.failed} failed` : ''}${p.reenqueued ? `, ${p.reenqueued} re-enqueued after Redis lost them` : ''})`;
    const now = Date.now();
    if (line !== last && (now - at > 2000 || p.done === p.total)) {
      say(line);
      last = line;
      at = now;
    }
  };
}

/** One line of what a distributed run did. */
export function statsLine(s: DistributedRunStats): string {
  const workers = Object.entries(s.byWorker)
    .map(([w, n]) => `${w}: ${n}`)
    .join(', ');
  return (
    `${s.completed} of ${s.jobs} job(s) done, ${s.failed.length} failed, ${s.stalled} handed out again after a worker stopped, ` +
    `${s.retriedAttempts} failed attempt(s) retried, ${s.duplicates} duplicate result(s) dropped, ${s.reenqueued} re-enqueued${workers ? `; by worker: ${workers}` : ''}`
  );
}
