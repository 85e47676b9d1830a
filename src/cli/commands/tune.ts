/**
 * `rediffuse tune`: search solver × NFE × spacing × PFDiff k_h × feature-reuse policy for the best
 * configuration under a latency budget (`--budget-ms`, ms per image on this machine) or a quality
 * target (`--target-fd`), on calibration seeds; check the pick on held-out seeds; print the front and
 * the pick; write `tuned.json` for `rediffuse sample --config`.
 * @packageDocumentation
 */
import { Command, Option } from 'commander';
import { onnxSetup, type BenchSetup } from '../../bench/setup.js';
import { writeTunedConfig } from '../../bench/tune-config.js';
import { defaultSearchSpace } from '../../bench/tune-space.js';
import { DEFAULT_CALIBRATION, DEFAULT_HELD_OUT_SEED, objectiveOf, tune, TuneError, type TuneEvaluation, type TuneResult } from '../../bench/tune.js';
import { bundledModelPath, checkOutputPath } from '../../node/index.js';
import { CliError, EXIT_INTERRUPTED, intArg, numberArg, threadsArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';

/** Parsed options of `rediffuse tune`. */
export interface TuneCommandOptions {
  model?: string;
  card?: string;
  guidance: number;
  budgetMs?: number;
  targetFd?: number;
  solvers?: string;
  maxNfe?: number;
  calibrationCount: number;
  calibrationBatch: number;
  seed: number;
  heldOutSeed: number;
  screenCount?: number;
  finalists: number;
  threads?: number;
  out: string;
  json?: boolean;
  quiet?: boolean;
}

/** Add `tune` to a commander program. */
export function registerTune(program: Command): Command {
  return program
    .command('tune')
    .description(
      'Find the best sampling configuration (solver, NFE, spacing, PFDiff k_h, feature reuse) for a latency budget or a quality target ' +
        'on calibration seeds, check it on held-out seeds, and write it for rediffuse sample --config.',
    )
    .addOption(new Option('-m, --model <path>', 'an ONNX diffusion model or a bundled name (default: fashion-unet)'))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(new Option('-g, --guidance <scale>', 'guidance scale of every run (0 = unconditional)').argParser(numberArg(0)).default(2))
    .addOption(
      new Option('--budget-ms <ms>', 'latency budget: sampling wall time per image on this machine, ms (lowest FD-classifier within it)').argParser(
        numberArg(0),
      ),
    )
    .addOption(
      new Option('--target-fd <fd>', 'quality target: FD-classifier at the calibration count (fastest configuration reaching it)').argParser(
        numberArg(0),
      ),
    )
    .addOption(new Option('--solvers <names>', 'search only these solvers (comma-separated)'))
    .addOption(new Option('--max-nfe <n>', 'search only configurations with at most n model calls').argParser(intArg(1)))
    .addOption(new Option('--calibration-count <n>', 'calibration samples').argParser(intArg(2)).default(DEFAULT_CALIBRATION.count))
    .addOption(new Option('--calibration-batch <n>', 'samples per sampling run').argParser(intArg(1, 4096)).default(DEFAULT_CALIBRATION.batch))
    .addOption(new Option('--seed <n>', 'seed of the calibration noise').argParser(intArg(0, 2 ** 32 - 1)).default(DEFAULT_CALIBRATION.seed))
    .addOption(
      new Option('--held-out-seed <n>', 'seed of the held-out noise (must differ)').argParser(intArg(0, 2 ** 32 - 1)).default(DEFAULT_HELD_OUT_SEED),
    )
    .addOption(new Option('--screen-count <n>', 'samples of the screening round (default: one calibration batch)').argParser(intArg(2)))
    .addOption(new Option('--finalists <n>', 'candidates measured on the whole calibration set').argParser(intArg(1)).default(8))
    .addOption(new Option('-t, --threads <n>', "onnxruntime intra-op threads (default: onnxruntime's choice)").argParser(threadsArg()))
    .addOption(new Option('-o, --out <path>', 'the tuned configuration to write').default('tuned.json'))
    .addOption(new Option('--json', 'print the tuned configuration on stdout'))
    .addOption(new Option('-q, --quiet', 'print nothing but errors'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  rediffuse tune --guidance 2 --budget-ms 15 --out tuned.json && rediffuse sample --config tuned.json',
        '  rediffuse tune --guidance 0 --target-fd 1.5 --solvers ddim,dpmpp_2m --max-nfe 10',
        '',
        'Give exactly one of --budget-ms and --target-fd. FD-classifier falls with the sample count: a target holds at the calibration count.',
      ].join('\n'),
    )
    .action(async (opts: TuneCommandOptions) => {
      await runTuneCommand(opts);
    });
}

function line(e: TuneEvaluation): string {
  const k = e.calls;
  const calls = k.reuse + k.skip > 0 ? `${k.full}/${k.reuse}/${k.skip} full/reuse/skip` : `${k.perRun} calls`;
  return `${e.label.padEnd(40)} FD ${e.figures.fd.toFixed(3)} ± ${e.figures.fdStd.toFixed(3)}  ${e.figures.msPerImage.toFixed(2).padStart(7)} ms/image  (${calls})`;
}

/** Run `rediffuse tune` with parsed options (exported for in-process use and tests). */
export async function runTuneCommand(opts: TuneCommandOptions, setupOverride?: BenchSetup): Promise<TuneResult> {
  try {
    objectiveOf(opts);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  if (opts.heldOutSeed === opts.seed)
    throw new CliError(`--held-out-seed (${opts.heldOutSeed}) equals --seed: held-out seeds must be ones the tune never saw`);
  if (opts.calibrationBatch > opts.calibrationCount) {
    throw new CliError(`--calibration-batch (${opts.calibrationBatch}) exceeds --calibration-count (${opts.calibrationCount})`);
  }
  checkOutputPath(opts.out);
  const say = (s: string) => {
    if (!opts.quiet) process.stderr.write(`${s}\n`);
  };
  const signal = interruptSignal();
  let setup: BenchSetup;
  if (setupOverride) setup = setupOverride;
  else {
    const path = opts.model === undefined || !opts.model.endsWith('.onnx') ? bundledModelPath(opts.model) : opts.model;
    try {
      setup = await onnxSetup({
        modelPath: path,
        ...(opts.card !== undefined ? { cardPath: opts.card } : {}),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        warn: (m) => say(`warning: ${m}`),
      });
    } catch (e) {
      throw new CliError(`cannot load model "${opts.model ?? 'fashion-unet'}" (${(e as Error).message}); pass --model FILE.onnx (and --card)`);
    }
  }
  const spacing = setup.sampling.scheduler.timestepOptions.spacing ?? 'linspace';
  const solvers = opts.solvers
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const candidates = defaultSearchSpace({
    spacing,
    featureReuse: setup.featureReuse !== undefined,
    ...(solvers ? { solvers } : {}),
    ...(opts.maxNfe !== undefined ? { maxNfe: opts.maxNfe } : {}),
  });
  if (candidates.length === 0) throw new CliError(`--solvers/--max-nfe leave no candidate in the search space; widen them`);
  let result: TuneResult;
  try {
    result = await tune({
      setup,
      guidance: opts.guidance,
      ...(opts.budgetMs !== undefined ? { budgetMs: opts.budgetMs } : {}),
      ...(opts.targetFd !== undefined ? { targetFd: opts.targetFd } : {}),
      candidates,
      calibration: { seed: opts.seed, count: opts.calibrationCount, batch: opts.calibrationBatch },
      heldOut: { seed: opts.heldOutSeed, count: opts.calibrationCount, batch: opts.calibrationBatch },
      ...(opts.screenCount !== undefined ? { screenCount: opts.screenCount } : {}),
      finalists: opts.finalists,
      signal,
      onEvent: (e) => {
        if (e.type === 'plan') {
          say(
            `tune ${setup.name}, guidance ${opts.guidance}: ${e.candidates} candidates${e.dropped.length ? ` (${e.dropped.length} cannot run: ${e.dropped.join('; ')})` : ''}`,
          );
        } else say(`[${e.round} ${e.index + 1}/${e.total}] ${line(e.evaluation)}`);
      },
    });
  } catch (e) {
    await setup.release();
    if (signal.aborted) throw new CliError('interrupted: nothing was written', EXIT_INTERRUPTED);
    if (e instanceof TuneError) {
      for (const ev of e.evaluations) say(`  ${line(ev)}`);
      throw new CliError(e.message);
    }
    throw new CliError((e as Error).message);
  }
  await setup.release();
  const written = writeTunedConfig(opts.out, result.config);
  say(`front on the calibration set (${opts.calibrationCount} samples, seed ${opts.seed}):`);
  for (const e of result.front) say(`  ${line(e)}`);
  const obj = result.config.objective;
  say(`pick: ${line(result.pick)}`);
  say(
    `held-out (${result.heldOut.figures.count} samples, seed ${opts.heldOutSeed}, never seen): FD ${result.heldOut.figures.fd.toFixed(3)} ± ${result.heldOut.figures.fdStd.toFixed(3)}, ` +
      `${result.heldOut.figures.msPerImage.toFixed(2)} ms/image — ${result.config.heldOut.meetsObjective ? 'meets' : 'DOES NOT meet'} ` +
      `${obj.kind === 'budget' ? `the budget of ${obj.budgetMs} ms per image` : `the target FD-classifier ${obj.targetFd}`}`,
  );
  say(`wrote ${written}; sample with: rediffuse sample --config ${opts.out}`);
  if (opts.json) process.stdout.write(`${JSON.stringify(result.config, null, 2)}\n`);
  return result;
}
