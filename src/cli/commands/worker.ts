/**
 * `rediffuse worker --queue redis://HOST:PORT`: take bench cells and sample batches from the
 * BullMQ queue that `rediffuse bench --queue` and `rediffuse sample --queue` fill, on any machine
 * that has the model, and hand the results back through the queue. Runs until Ctrl-C or SIGTERM
 * (the running jobs finish first; a second Ctrl-C exits at once).
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { onnxSetup } from '../../bench/setup.js';
import { bundledModelPath } from '../../node/index.js';
import { defaultWorkerStore } from '../../scale/jobs.js';
import { runQueueWorker } from '../../scale/queue.js';
import { parseRedisUrl, QueueUrlError } from '../../scale/redis.js';
import { CliError, intArg, threadsArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';

/** Parsed options of `rediffuse worker`. */
export interface WorkerCommandOptions {
  queue: string;
  model?: string;
  card?: string;
  threads?: number;
  concurrency: number;
  lockDuration: number;
  store?: string;
  quiet?: boolean;
}

/** Add `worker` to a commander program. */
export function registerWorker(program: Command): Command {
  return program
    .command('worker')
    .description('Process bench cells and sample batches from a Redis queue (filled by bench --queue and sample --queue) until stopped.')
    .addOption(new Option('--queue <url>', 'the Redis holding the queue, redis://HOST:PORT').makeOptionMandatory())
    .addOption(new Option('-m, --model <path>', 'the diffusion model (.onnx) jobs are computed with (default: the bundled fashion-unet)'))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(new Option('-t, --threads <n>', 'onnxruntime intra-op threads per job').argParser(threadsArg()))
    .addOption(new Option('--concurrency <n>', 'jobs at once, each in its own child process').argParser(intArg(1, 256)).default(1))
    .addOption(
      new Option('--lock-duration <ms>', "a dead worker's job is handed out again this long after its last lock renewal")
        .argParser(intArg(500, 3_600_000))
        .default(30_000),
    )
    .addOption(new Option('--store <dir>', 'local folder for reference runs and baseline samples (default: under the temp folder)'))
    .addOption(new Option('-q, --quiet', 'print nothing but errors'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  redis-server --port 6379 --appendonly yes             # on one machine',
        '  rediffuse worker --queue redis://queue-host:6379      # on every machine with the model',
        '  rediffuse bench --grid bench/full.json --queue redis://queue-host:6379   # on one of them',
      ].join('\n'),
    )
    .action(async (opts: WorkerCommandOptions) => {
      await runWorkerCommand(opts);
    });
}

/** Run `rediffuse worker` (exported for tests). */
export async function runWorkerCommand(opts: WorkerCommandOptions): Promise<void> {
  let target;
  try {
    target = parseRedisUrl(opts.queue);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const say = (s: string) => {
    if (!opts.quiet) process.stderr.write(`${s}\n`);
  };
  const modelPath = resolve(opts.model === undefined ? bundledModelPath() : opts.model.endsWith('.onnx') ? opts.model : bundledModelPath(opts.model));
  if (!existsSync(modelPath)) {
    throw new CliError(
      `worker: no model at ${modelPath}: pass --model FILE.onnx (the model the client measures, with its .json card), or a bundled name`,
    );
  }
  // Load it once here, so a model or card that cannot run is an error now, not in every job.
  let name: string;
  try {
    const setup = await onnxSetup({
      modelPath,
      ...(opts.card !== undefined ? { cardPath: opts.card } : {}),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
    name = `${setup.name} (sha256 ${setup.modelHash.slice(0, 12)}…)`;
    await setup.release();
  } catch (e) {
    throw new CliError(`worker: cannot load model ${modelPath} (${(e as Error).message}); pass --model FILE.onnx and --card FILE.json`);
  }
  const signal = interruptSignal();
  try {
    await runQueueWorker({
      target,
      env: {
        modelPath,
        ...(opts.card !== undefined ? { cardPath: resolve(opts.card) } : {}),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        storeDir: resolve(opts.store ?? defaultWorkerStore()),
      },
      concurrency: opts.concurrency,
      lockDurationMs: opts.lockDuration,
      signal,
      onEvent: (e) => {
        if (e.type === 'ready')
          say(
            `worker ${process.pid} ready on ${target.url}: model ${name}, ${opts.concurrency} job(s) at once, threads ${opts.threads ?? "onnxruntime's choice"}`,
          );
        else say(`${e.type} ${e.id}${e.detail ? `: ${e.detail}` : ''}`);
      },
    });
  } catch (e) {
    if (e instanceof QueueUrlError) throw new CliError(e.message);
    throw e;
  }
  say('worker stopped');
}
