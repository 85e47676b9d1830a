/**
 * `rediffuse bench`: measure a grid of samplers (solvers × NFE × PFDiff k_h × feature reuse ×
 * guidance) on one model against a fixed seed set, resumably, and write results.json, a Markdown
 * report, plots, and optionally a generated BENCHMARKS.md section. `--quick` runs the CI grid and
 * exits non-zero when one of its asserted claims does not hold.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkClaims, type ClaimCheck } from '../../bench/claims.js';
import { GridError, loadGridFile, parsePfdiffEntry, parseSpacingEntry, validateGrid, type BenchGrid } from '../../bench/grid.js';
import { renderBenchPlots } from '../../bench/plots.js';
import { acceleratedBeatsPlainClaims, assertQuickClaims, pairedWallTimeClaim, QUICK_GRID } from '../../bench/quick.js';
import { writeReport } from '../../bench/report.js';
import { pairedWallTime, runBench, type BenchEvent, type BenchResults } from '../../bench/runner.js';
import { onnxSetup, pipelineSetup, referenceSetup, type BenchSetup } from '../../bench/setup.js';
import { BenchStore } from '../../bench/store.js';
import { bundledModelPath, checkOutputPath } from '../../node/index.js';
import { CliError, EXIT_INTERRUPTED, intArg, threadsArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';
import { distributeBench } from '../../scale/distribute.js';
import { addScaleOptions, openExecutor, probeQueue, progressLine, scalePlan, statsLine, type ScaleFlags } from './scale-options.js';

/** Parsed options of `rediffuse bench`. */
export interface BenchCommandOptions extends ScaleFlags {
  grid?: string;
  quick?: boolean;
  out?: string;
  model?: string;
  card?: string;
  solvers?: string[];
  nfe?: number[];
  pfdiff?: string[];
  fr?: string[];
  /** Grid from flags: timestep spacings (`card` = the card's scheduler config). */
  spacing?: string[];
  guidance?: number[];
  reference?: string;
  count?: number;
  batch?: number;
  seed?: number;
  threads?: number;
  benchmarksMd?: string;
  assets?: string;
  plots?: boolean;
  dryRun?: boolean;
  cachedOnly?: boolean;
  import?: string[];
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  /** A pipeline ONNX folder: bench its denoiser on `prompt`'s embeddings (trajectory error only) or on `classPrompts`. */
  pipeline?: string;
  prompt?: string;
  /** With `pipeline`: a class-prompts file (sample i gets class i mod C's caption; decoded images are scored). */
  classPrompts?: string;
  negativePrompt?: string;
}

/** What {@link runBenchCommand} returns. */
export interface BenchCommandResult {
  results: BenchResults;
  outDir: string;
  /** Quick mode: whether every asserted claim held. */
  quickOk?: boolean;
  failures?: string[];
  /** Cells computed in this run that failed: their labels and errors (the command then exits 1). */
  failedCells: string[];
}

const splitList = (v: string, prev: string[] | undefined): string[] => [
  ...(prev ?? []),
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

function intList(v: string, prev: number[] | undefined): number[] {
  return [
    ...(prev ?? []),
    ...v.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected integers ≥ 1 separated by commas, got "${v}".`);
      return n;
    }),
  ];
}

function numList(v: string, prev: number[] | undefined): number[] {
  return [
    ...(prev ?? []),
    ...v.split(',').map((s) => {
      const n = Number(s.trim());
      if (s.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected numbers ≥ 0 separated by commas, got "${v}".`);
      return n;
    }),
  ];
}

/** `--fr` entries: `none`, `M` (interval), `Mmix` (interval with score mixing), `policy:FILE`. */
export function parseFrFlag(v: string): unknown {
  const s = v.trim();
  if (s === 'none') return 'none';
  if (s.startsWith('policy:')) return { policy: s.slice(7) };
  const m = /^(\d+)(\+?mix)?$/.exec(s);
  if (!m) throw new CliError(`--fr "${v}": use none, an interval M (e.g. 3), M with mixing (3mix) or policy:FILE`);
  return { interval: Number(m[1]), ...(m[2] ? { mixing: true } : {}) };
}

/** Add `bench` to a commander program. */
export function registerBench(program: Command): Command {
  const cmd = program
    .command('bench')
    .description(
      'Measure quality (FD-classifier, class accuracy, trajectory error vs a high-accuracy reference) and cost (model calls, wall time, overhead) ' +
        'of a grid of samplers on one model; resumable; writes results.json, results.md and plots.',
    )
    .addOption(new Option('--grid <file>', 'grid file (.json, .yaml); see bench/*.json'))
    .addOption(new Option('--quick', 'run the CI grid (bench/quick.json) and assert its claims (exit 1 if one fails)'))
    .addOption(new Option('-o, --out <dir>', 'output folder; finished cells there are reused (default bench/out/<grid name>)'))
    .addOption(new Option('-m, --model <path>', "model: an .onnx file, a bundled name (fashion-unet, fashion-dit) or 'reference' (overrides the grid's)"))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(
      new Option('--pipeline <dir>', "bench a pipeline ONNX folder's denoiser on --prompt (trajectory error, calls, wall time) or on --class-prompts"),
    )
    .addOption(new Option('--prompt <text>', 'with --pipeline: the prompt whose embeddings condition every cell'))
    .addOption(
      new Option(
        '--class-prompts <file>',
        'with --pipeline: a caption per class (e.g. models/latent-captions.json); sample i gets class i mod C, and the VAE-decoded images get FD-classifier and accuracy',
      ),
    )
    .addOption(new Option('--negative-prompt <text>', 'with --pipeline: the guidance branch\'s prompt (default "")'))
    .addOption(new Option('--solvers <list>', 'grid from flags: solvers, comma-separated').argParser(splitList))
    .addOption(new Option('--nfe <list>', 'grid from flags: NFE values, comma-separated').argParser(intList))
    .addOption(new Option('--pfdiff <list>', 'grid from flags: none, k_h or best, comma-separated (default none)').argParser(splitList))
    .addOption(new Option('--fr <list>', 'grid from flags: none, M, Mmix or policy:FILE, comma-separated (default none)').argParser(splitList))
    .addOption(
      new Option('--spacing <list>', "grid from flags: timestep spacings, comma-separated, card = the card's (default card)").argParser(splitList),
    )
    .addOption(
      new Option(
        '-g, --guidance <list>',
        "guidance scales: 0 = unconditional, 1 = conditional, others = classifier-free guidance (default: the grid's, else 0)",
      ).argParser(numList),
    )
    .addOption(new Option('--reference <solver:nfe>', 'reference run for trajectory error (default ddim:200)'))
    .addOption(new Option('--count <n>', 'samples per cell (overrides the grid)').argParser(intArg(2, 1_000_000)))
    .addOption(new Option('--batch <n>', 'samples per sampling run (overrides the grid)').argParser(intArg(1, 4096)))
    .addOption(new Option('--seed <n>', 'seed of the seed set (overrides the grid)').argParser(intArg(0, 2 ** 32 - 1)))
    .addOption(new Option('-t, --threads <n>', 'onnxruntime intra-op threads').argParser(threadsArg()))
    .addOption(new Option('--benchmarks-md <file>', "also write this grid's generated section into a BENCHMARKS.md"))
    .addOption(new Option('--assets <dir>', 'folder for the plot PNGs linked from --benchmarks-md (default: <out>/plots)'))
    .addOption(new Option('--no-plots', 'skip the plots'))
    .addOption(new Option('--dry-run', 'print the plan (cells, cached cells, estimated model calls) and stop'))
    .addOption(new Option('--cached-only', 'write the reports from the finished cells on disk only; list the others as not run'))
    .addOption(
      new Option(
        '--import <files>',
        'seed the output folder with the finished cells of earlier results.json files (comma-separated) (e.g. bench/results/<grid>.json), then run only what is missing',
      ).argParser(splitList),
    )
    .addOption(new Option('--json', 'print results.json on stdout'))
    .addOption(new Option('-q, --quiet', 'print nothing but errors'))
    .addOption(new Option('--no-progress', 'no progress bar'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  rediffuse bench --quick',
        '  rediffuse bench --grid bench/full.json --out bench/out/full --benchmarks-md BENCHMARKS.md --assets docs/bench',
        '  rediffuse bench --solvers ddim,dpmpp_2m --nfe 4,8 --pfdiff none,best --guidance 2 --count 64',
        '  rediffuse bench --grid bench/full.json --import bench/results/full.json   # resume from committed cells',
        '  rediffuse bench --grid bench/latent-unet.json                              # a latent pipeline on class prompts',
        '  rediffuse bench --pipeline models/latent-unet --class-prompts models/latent-captions.json --solvers dpmpp_2m --nfe 10 --count 64',
        '',
        'An interrupted run (Ctrl-C) keeps every finished cell; run the same command again to continue.',
      ].join('\n'),
    )
    .action(async (opts: BenchCommandOptions) => {
      const problem = benchFailure(await runBenchCommand(opts));
      if (problem) throw new CliError(problem);
    });
  return addScaleOptions(cmd, "grid's unfinished cells");
}

/** Why a finished bench run must exit non-zero (failed cells, failed --quick claims), or undefined. */
export function benchFailure(r: BenchCommandResult): string | undefined {
  const problems: string[] = [];
  if (r.failedCells.length > 0)
    problems.push(`${r.failedCells.length} cell(s) failed (see ${join(r.outDir, 'results.md')}):\n  ${r.failedCells.join('\n  ')}`);
  if (r.quickOk === false) problems.push(`bench --quick: ${r.failures!.length} claim(s) failed:\n  ${r.failures!.join('\n  ')}`);
  return problems.length ? problems.join('\n') : undefined;
}

/** The grid a command line asks for (file, quick, or flags), with overrides applied. */
export function gridFromOptions(opts: BenchCommandOptions): BenchGrid {
  let raw: Record<string, unknown>;
  let baseDir = process.cwd();
  const fromFlags = opts.solvers !== undefined || opts.nfe !== undefined;
  if ([opts.quick, opts.grid !== undefined, fromFlags].filter(Boolean).length > 1) {
    throw new CliError('give one of --quick, --grid FILE, or --solvers/--nfe flags');
  }
  const flagOnly = (['pfdiff', 'fr', 'spacing'] as const).filter((k) => opts[k] !== undefined);
  if (!fromFlags && flagOnly.length > 0) {
    throw new CliError(
      `${flagOnly.map((k) => `--${k}`).join(', ')} build a grid from flags with --solvers and --nfe; with --grid FILE or --quick put them in the grid's runs`,
    );
  }
  try {
    if (opts.quick) raw = JSON.parse(JSON.stringify(QUICK_GRID)) as Record<string, unknown>;
    else if (opts.grid !== undefined) {
      const g = loadGridFile(opts.grid);
      if (!hasOverrides(opts)) return g;
      raw = JSON.parse(JSON.stringify(g)) as Record<string, unknown>;
      // a pipeline grid's model is its folder (validation sets it)
      if (g.pipeline) delete raw.model;
      baseDir = resolve(opts.grid, '..');
      // FR entries are already parsed; turn them back into their declared form.
      raw.runs = (g.runs as BenchGrid['runs']).map((r) => ({ ...r, fr: r.fr.map(frBack) }));
    } else if (fromFlags) {
      if (!opts.solvers || !opts.nfe) throw new CliError('a grid from flags needs both --solvers and --nfe (or pass --grid FILE / --quick)');
      raw = {
        name: 'cli',
        model: opts.model ?? 'fashion-unet',
        seeds: { seed: opts.seed ?? 0, count: opts.count ?? 64, batch: opts.batch ?? Math.min(opts.count ?? 64, 64) },
        // A pipeline on one prompt has no quality meter (no classifier for SD images): trajectory error only, CFG at 7.5 by
        // default; on class prompts, the meter scores the decoded images, at guidance 2 by default (models/eval_latent.py's).
        ...(opts.pipeline !== undefined
          ? opts.classPrompts !== undefined
            ? { guidance: [2] }
            : { metrics: { fd: false, accuracy: false, kid: false, trajectory: true }, guidance: [7.5] }
          : {}),
        runs: [
          {
            solvers: opts.solvers,
            nfe: opts.nfe,
            pfdiff: (opts.pfdiff ?? ['none']).map((p) => parsePfdiffEntry(p, '--pfdiff')),
            fr: (opts.fr ?? ['none']).map(parseFrFlag),
            ...(opts.spacing ? { spacing: opts.spacing.map((v) => parseSpacingEntry(v, '--spacing')) } : {}),
          },
        ],
      };
    } else throw new CliError('nothing to measure: pass --quick, --grid FILE, or --solvers and --nfe');
    if (raw.pipeline !== undefined && (opts.model !== undefined || opts.card !== undefined))
      throw new CliError(`the grid benches the pipeline ${(raw.pipeline as { dir: string }).dir}: drop --model/--card`);
    if (opts.model !== undefined) raw.model = opts.model;
    if (opts.pipeline !== undefined) {
      if (raw.pipeline !== undefined) {
        throw new CliError(
          `the grid names its pipeline (${(raw.pipeline as { dir: string }).dir}): drop --pipeline, --prompt, --class-prompts and --negative-prompt, or the grid's pipeline entry`,
        );
      }
      // the flag names the model; its paths are the command line's (relative to the working folder)
      delete raw.model;
      raw.pipeline = {
        dir: resolve(opts.pipeline),
        ...(opts.prompt !== undefined ? { prompt: opts.prompt } : {}),
        ...(opts.classPrompts !== undefined ? { classPrompts: resolve(opts.classPrompts) } : {}),
        ...(opts.negativePrompt !== undefined ? { negativePrompt: opts.negativePrompt } : {}),
      };
    }
    if (opts.guidance !== undefined) {
      raw.guidance = opts.guidance;
      raw.runs = (raw.runs as Record<string, unknown>[]).map(({ guidance: _g, ...r }) => r);
    }
    if (opts.reference !== undefined) {
      const m = /^([A-Za-z0-9_+-]+):(\d+)$/.exec(opts.reference);
      if (!m) throw new CliError(`--reference "${opts.reference}": use SOLVER:NFE, e.g. ddim:1000 or dpmpp_2m:200`);
      raw.reference = { solver: m[1], nfe: Number(m[2]) };
    }
    const seeds = { ...(raw.seeds as Record<string, number>) };
    if (opts.count !== undefined) {
      seeds.count = opts.count;
      if (opts.batch === undefined) seeds.batch = Math.min(seeds.batch ?? 64, opts.count);
    }
    if (opts.batch !== undefined) seeds.batch = opts.batch;
    if (opts.seed !== undefined) seeds.seed = opts.seed;
    raw.seeds = seeds;
    if (opts.threads !== undefined) raw.threads = opts.threads;
    return validateGrid(raw, baseDir);
  } catch (e) {
    if (e instanceof GridError) throw new CliError(e.message);
    throw e;
  }
}

function hasOverrides(o: BenchCommandOptions): boolean {
  return [o.model, o.guidance, o.reference, o.count, o.batch, o.seed, o.threads, o.pipeline].some((v) => v !== undefined);
}

function frBack(fr: BenchGrid['runs'][number]['fr'][number]): unknown {
  if (fr.kind === 'none') return 'none';
  if (fr.kind === 'policy') return { policy: fr.file };
  if (fr.kind === 'adaptive') {
    const { kind: _kind, threshold, ...rest } = fr;
    return { adaptive: threshold, ...rest };
  }
  return {
    interval: fr.interval,
    mixing: fr.mixing ?? false,
    points: fr.points,
    ...(fr.space ? { space: fr.space } : {}),
    ...(fr.forecast ? { forecast: fr.forecast } : {}),
  };
}

/** Load the model setup a grid names (a pipeline folder with its prompts, a model file, or the reference model). */
export async function setupForGrid(grid: BenchGrid, warn: (m: string) => void, cardPath?: string): Promise<BenchSetup> {
  if (grid.pipeline) {
    const p = grid.pipeline;
    if (cardPath !== undefined) throw new CliError(`--card applies to an ONNX model; the pipeline ${p.dir} has its scheduler config: drop --card`);
    return pipelineSetup({
      dir: p.dir,
      ...(p.prompt !== undefined ? { prompt: p.prompt } : {}),
      ...(p.classPrompts !== undefined ? { classPrompts: p.classPrompts } : {}),
      ...(p.negativePrompt !== undefined ? { negativePrompt: p.negativePrompt } : {}),
      ...(grid.threads !== undefined ? { threads: grid.threads } : {}),
      warn,
    }).catch((e: unknown) => {
      throw new CliError(`cannot load pipeline ${p.dir} (${(e as Error).message})`);
    });
  }
  if (grid.model === 'reference') {
    if (cardPath !== undefined) throw new CliError('--card applies to an ONNX model; the reference model has its own card: drop --card');
    return referenceSetup();
  }
  const bundled = !grid.model.endsWith('.onnx');
  const path = bundled ? bundledModelPath(grid.model) : grid.model;
  try {
    return await onnxSetup({
      modelPath: path,
      ...(cardPath !== undefined ? { cardPath } : {}),
      ...(grid.threads !== undefined ? { threads: grid.threads } : {}),
      warn,
    });
  } catch (e) {
    const fix = bundled
      ? 'check models/STATUS.txt (the bundled models), pass --model FILE.onnx, or --model reference'
      : 'check the path, pass --card FILE for its JSON card, or --model reference';
    throw new CliError(`cannot load model "${grid.model}" (${(e as Error).message}); ${fix}`);
  }
}

function fmtMs(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The pipeline flags among themselves, checked before the grid is built. */
function checkPipelineFlags(opts: BenchCommandOptions): void {
  if (opts.pipeline === undefined) {
    if (opts.prompt !== undefined || opts.negativePrompt !== undefined) throw new CliError('--prompt/--negative-prompt need --pipeline DIR');
    if (opts.classPrompts !== undefined) throw new CliError('--class-prompts needs --pipeline DIR (a grid file names them in its pipeline entry)');
    return;
  }
  if (opts.quick) throw new CliError('--quick runs the bundled fashion models; drop --quick and give --solvers/--nfe or --grid FILE with --pipeline');
  if (opts.model !== undefined || opts.card !== undefined) throw new CliError('--pipeline DIR names the model: drop --model/--card');
  if (opts.prompt !== undefined && opts.classPrompts !== undefined) {
    throw new CliError('give --prompt TEXT or --class-prompts FILE, not both: class prompts condition each sample on its class caption');
  }
  if (opts.classPrompts === undefined && (opts.prompt === undefined || opts.prompt === '')) {
    throw new CliError(
      '--pipeline DIR needs --prompt TEXT (the embeddings every cell is conditioned on) or --class-prompts FILE (a caption per class, e.g. models/latent-captions.json)',
    );
  }
}

/** A pipeline grid's metrics: one prompt has no classifier for its images (trajectory error only). */
function checkPipelineGrid(grid: BenchGrid): void {
  const p = grid.pipeline;
  if (!p) return;
  if (p.classPrompts !== undefined) {
    if (!grid.metrics.fd && !grid.metrics.accuracy && !grid.metrics.kid && !grid.metrics.trajectory) {
      throw new CliError('the grid measures nothing: enable metrics fd, accuracy or trajectory');
    }
    return;
  }
  const asked = (['fd', 'accuracy', 'kid'] as const).filter((k) => grid.metrics[k]);
  if (asked.length > 0) {
    throw new CliError(
      `metrics ${asked.join(', ')} need a classifier of the images, and there is none for Stable-Diffusion images: ` +
        'a pipeline bench on one prompt reports trajectory error vs the reference run, calls and wall time — set metrics: {fd: false, accuracy: false, kid: false} ' +
        'in the grid (or give class prompts on one of our latent Fashion-MNIST pipelines: --class-prompts FILE)',
    );
  }
  if (!grid.metrics.trajectory) throw new CliError('a pipeline bench on one prompt measures trajectory error: set metrics.trajectory: true in the grid');
}

/** Run `rediffuse bench` with parsed options (exported for in-process use and tests). */
export async function runBenchCommand(opts: BenchCommandOptions, setupOverride?: BenchSetup): Promise<BenchCommandResult> {
  checkPipelineFlags(opts);
  const grid = gridFromOptions(opts);
  checkPipelineGrid(grid);
  const outDir = resolve(opts.out ?? `bench/out/${grid.name}`);
  // Every output is checked before the model loads: a bad path must not cost a run.
  checkOutputPath(outDir, { kind: 'folder' });
  if (opts.benchmarksMd) checkOutputPath(opts.benchmarksMd, { flag: '--benchmarks-md' });
  if (opts.assets) checkOutputPath(opts.assets, { kind: 'folder', flag: '--assets' });
  const scale = scalePlan(opts);
  if (scale.kind !== 'none' && (opts.dryRun || opts.cachedOnly || grid.pipeline !== undefined)) {
    throw new CliError(`--${scale.kind === 'queue' ? 'queue' : 'workers'} runs cells elsewhere: not with --dry-run, --cached-only or --pipeline`);
  }
  // A queue is probed now: an unreachable Redis must not cost a model load.
  await probeQueue(scale);
  const say = (s: string) => {
    if (!opts.quiet) process.stderr.write(`${s}\n`);
  };
  const signal = interruptSignal();
  const warn = (m: string) => say(`warning: ${m}`);
  const setup = setupOverride ?? (await setupForGrid(grid, warn, opts.card));
  const tty = !opts.quiet && opts.progress !== false && process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'bench [{bar}] {value}/{total} runs | {label} | {duration_formatted} elapsed, eta {eta_formatted}',
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  // A dry run writes nothing: imported cells are held in memory for the plan.
  const store = new BenchStore(outDir, opts.dryRun ? { dryRun: true } : {});
  for (const file of opts.import ?? []) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new CliError(`--import ${file}: cannot read it as JSON (${(e as Error).message}); pass a results.json written by rediffuse bench`);
    }
    try {
      const n = store.importCells(json, setup.modelHash);
      say(
        `${opts.dryRun ? 'would import' : 'imported'} ${n.imported} finished cell(s) from ${file} (${n.present} already present, ${n.skipped} not finished or not ok)`,
      );
    } catch (e) {
      throw new CliError(`--import ${file}: ${(e as Error).message}`);
    }
  }
  let done = 0;
  const onEvent = (e: BenchEvent) => {
    if (e.type === 'plan') {
      say(
        `bench ${grid.name}: model ${setup.name}, ${e.cells} cells (${e.cached} already in ${outDir}, ${e.pending} to run), ` +
          `${e.references} reference run(s); about ${e.estimatedCalls} network calls at batch ${grid.seeds.batch}` +
          (e.estimatedMs !== null ? `, estimated ${fmtMs(e.estimatedMs)} of network time` : ''),
      );
      bar?.start(Math.max(1, e.pending * Math.ceil(grid.seeds.count / grid.seeds.batch)), 0, { label: 'starting' });
    } else if (e.type === 'reference') {
      if (e.cached) {
        // a reference run already in the store: nothing to show
      } else if (bar) bar.update(done, { label: `reference run, guidance ${e.guidance}` });
      else say(`reference run (guidance ${e.guidance}): ${grid.reference.solver} ${grid.reference.nfe} calls`);
    } else if (e.type === 'cell-start') {
      bar?.update(done, { label: e.label });
      if (!bar) say(`[${e.index + 1}/${e.total}] ${e.label}`);
    } else if (e.type === 'chunk') {
      done++;
      bar?.update(done);
    } else if (e.type === 'cell-done' && !e.cached && e.result.status === 'error') {
      if (!bar) say(`  error: ${e.result.error}`);
    }
  };
  let distributed = false;
  if (scale.kind !== 'none') {
    const exec = await openExecutor(scale, {
      ...(setup.modelPath ? { modelPath: setup.modelPath } : {}),
      ...(opts.card ? { cardPath: resolve(opts.card) } : {}),
      storeDir: outDir,
    });
    try {
      // Every cell is checked (and nothing run) before a job is made.
      await runBench({ grid, setup, outDir, store: new BenchStore(outDir, { dryRun: true }), dryRun: true });
      say(`bench ${grid.name}: running the unfinished cells on the ${exec!.description}`);
      const stats = await distributeBench({ grid, modelHash: setup.modelHash, store, executor: exec!, onProgress: progressLine('cells', say), signal });
      say(`${stats.alreadyStored} cell(s) already in ${outDir}; ${statsLine(stats)}`);
      if (stats.failed.length > 0) throw new CliError(`${stats.failed.length} cell job(s) failed:\n  ${stats.failed.slice(0, 20).join('\n  ')}`);
    } catch (err) {
      if (signal.aborted)
        throw new CliError(`interrupted: finished cells are kept in ${outDir}; run the same command again to continue`, EXIT_INTERRUPTED);
      throw err instanceof CliError ? err : new CliError((err as Error).message);
    } finally {
      await exec!.close();
    }
    distributed = true;
  }
  let results: BenchResults;
  try {
    results = await runBench({
      grid,
      setup,
      outDir,
      store,
      onEvent,
      signal,
      ...(opts.dryRun ? { dryRun: true } : {}),
      ...(opts.cachedOnly || distributed ? { cachedOnly: true } : {}),
    });
  } catch (err) {
    if (signal.aborted) throw new CliError(`interrupted: finished cells are kept in ${outDir}; run the same command again to continue`, EXIT_INTERRUPTED);
    throw new CliError((err as Error).message);
  } finally {
    bar?.stop();
  }
  if (opts.dryRun) {
    await setup.release();
    return { results, outDir, failedCells: [] };
  }
  const claims = checkClaims(results);
  let quickExtra: ClaimCheck[] = [];
  if (opts.quick) {
    // Wall time of feature reuse vs full computation, from alternated runs (robust to load drift).
    const frCell = results.cells.find((c) => c.status === 'ok' && c.settings.fr.kind !== 'none');
    if (frCell) {
      say('timing feature reuse against full computation (alternated runs) …');
      try {
        const full = { ...frCell.settings, fr: { kind: 'none' as const } };
        quickExtra = [pairedWallTimeClaim(await pairedWallTime(setup, grid, [full, frCell.settings], 3, signal))];
      } catch (err) {
        if (signal.aborted) throw new CliError('interrupted: finished cells are kept; run the same command again to continue', EXIT_INTERRUPTED);
        throw err;
      }
    }
    claims.push(...acceleratedBeatsPlainClaims(results), ...quickExtra);
  }
  const plots = opts.plots === false ? [] : await renderBenchPlots(results);
  const written = writeReport(results, {
    outDir,
    plots,
    claims,
    ...(opts.benchmarksMd ? { benchmarksMd: opts.benchmarksMd } : {}),
    ...(opts.assets ? { assetsDir: opts.assets } : {}),
  });
  await setup.release();
  // Cells of a --cached-only report that are not on disk are "not run", not failed.
  const failedCells = opts.cachedOnly && !distributed ? [] : results.cells.filter((c) => c.status === 'error').map((c) => `${c.label}: ${c.error}`);
  say(
    `wrote ${written.resultsJson}, ${written.markdown}${written.plots.length ? `, ${written.plots.length} plot files` : ''}${written.benchmarksMd ? `, ${written.benchmarksMd}` : ''}`,
  );
  if (failedCells.length > 0) say(`${failedCells.length} cell(s) failed; see results.md`);
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (opts.quick) {
    const verdict = assertQuickClaims(results, quickExtra);
    for (const c of verdict.checks) say(`${c.holds ? 'ok  ' : 'FAIL'} ${c.statement} (${c.detail})`);
    return { results, outDir, quickOk: verdict.ok, failures: verdict.failures, failedCells };
  }
  return { results, outDir, failedCells };
}
