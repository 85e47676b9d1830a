/**
 * `rediffuse serve --port P`: an HTTP endpoint for sampling (`GET /sample?…` → PNG, or progress as
 * server-sent events), run on a local pool (`--workers`, default 1) or on the Redis queue
 * (`--queue`), with bounded in-flight requests and per-request limits. See src/scale/serve.ts.
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { fileSha256 } from '../../bench/cell-key.js';
import { cardSamplingSetup } from '../../model/index.js';
import { bundledModelPath, cardPathFor, loadModelCard } from '../../node/index.js';
import { createSampleServer } from '../../scale/serve.js';
import { CliError, intArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';
import { addScaleOptions, openExecutor, probeQueue, scalePlan, type ScaleFlags } from './scale-options.js';

/** Parsed options of `rediffuse serve`. */
export interface ServeCommandOptions extends ScaleFlags {
  port: number;
  host: string;
  model?: string;
  card?: string;
  maxCount: number;
  maxNfe: number;
  maxQueue: number;
  batchSize: number;
  quiet?: boolean;
}

/** Add `serve` to a commander program. */
export function registerServe(program: Command): Command {
  const cmd = program
    .command('serve')
    .description('Serve sampling over HTTP: GET /sample?class=…&count=…&nfe=…&solver=…&seed=…&guidance=… returns the PNG (stream=1: progress events).')
    .addOption(new Option('--port <n>', 'TCP port (0: any free port, printed)').argParser(intArg(0, 65535)).default(8090))
    .addOption(new Option('--host <addr>', 'address to listen on').default('127.0.0.1'))
    .addOption(new Option('-m, --model <path>', 'the diffusion model (.onnx) (default: the bundled fashion-unet)'))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(new Option('--max-count <n>', 'most images per request (more: HTTP 400)').argParser(intArg(1, 4096)).default(64))
    .addOption(new Option('--max-nfe <n>', 'most model calls per request (more: HTTP 400)').argParser(intArg(1, 10_000)).default(100))
    .addOption(new Option('--max-queue <n>', 'most requests in flight (more: HTTP 503)').argParser(intArg(1, 10_000)).default(8))
    .addOption(new Option('-b, --batch-size <n>', 'samples per job').argParser(intArg(1, 4096)).default(64))
    .addOption(new Option('-q, --quiet', 'print nothing but errors'))
    .action(async (opts: ServeCommandOptions) => {
      await runServeCommand(opts);
    });
  return addScaleOptions(cmd, 'requests');
}

/** Run `rediffuse serve` until Ctrl-C / SIGTERM. */
export async function runServeCommand(opts: ServeCommandOptions): Promise<void> {
  const plan0 = scalePlan(opts);
  const plan = plan0.kind === 'none' ? scalePlan({ ...opts, workers: 1 }) : plan0;
  await probeQueue(plan);
  const modelPath = resolve(opts.model === undefined ? bundledModelPath() : opts.model);
  if (!existsSync(modelPath)) throw new CliError(`serve: no model at ${modelPath}: pass --model FILE.onnx (with its .json card)`);
  let card;
  try {
    card = loadModelCard(opts.card ?? cardPathFor(modelPath));
  } catch (e) {
    throw new CliError(`serve: ${(e as Error).message}`);
  }
  const executor = (await openExecutor(plan, { modelPath, ...(opts.card !== undefined ? { cardPath: resolve(opts.card) } : {}) }))!;
  const server = createSampleServer({
    executor,
    card,
    sampling: cardSamplingSetup(card),
    modelHash: fileSha256(modelPath),
    limits: { maxCount: opts.maxCount, maxNfe: opts.maxNfe, maxQueue: opts.maxQueue },
    batch: opts.batchSize,
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(opts.port, opts.host, () => ok());
    });
  } catch (e) {
    await executor.close();
    throw new CliError(`serve: cannot listen on ${opts.host}:${opts.port} (${(e as Error).message}); pick another --port`);
  }
  const addr = server.address() as { port: number };
  if (!opts.quiet)
    process.stderr.write(
      `serving ${card.name} on http://${opts.host}:${addr.port}/sample (${executor.description}; limits: count ${opts.maxCount}, nfe ${opts.maxNfe}, ${opts.maxQueue} in flight)\n`,
    );
  const signal = interruptSignal();
  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await executor.close();
}
