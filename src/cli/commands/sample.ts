/**
 * `rediffuse sample`: sample a grid of images from an ONNX diffusion model (by default the bundled
 * Fashion-MNIST U-Net) and write it as a labelled PNG, one row per class.
 * @packageDocumentation
 */
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import {
  type DiffusionModel,
  gaussianModel,
  REFERENCE_SCHEDULER_CONFIG,
  sample,
  type SampleOptions,
  type SampleResult,
  MULTISTEP_BASES,
  ADAMS_BASES,
  listSolvers,
  TIMESTEP_SPACINGS,
  resolveSamplerName,
  type TimestepSpacing,
} from '../../core/index.js';
import { writeFileAtomic, checkOutputPath, imageGridPng, bundledModelPath, loadOnnxModel } from '../../node/index.js';
import {
  sampleOptionsFromCard,
  SampleRequestError,
  cardSamplingSetup,
  parseModelCard,
  resolveClassLabel,
  type CardSamplingSetup,
  type CardSampleRequest,
  type ModelCard,
  type OnnxDiffusionModel,
} from '../../model/index.js';
import { fileSha256 } from '../../bench/cell-key.js';
import { readTunedConfig, type TunedConfig } from '../../bench/tune-config.js';
import { CliError, EXIT_INTERRUPTED, intArg, numberArg, parsePfdiff, parseSolverOption, threadsArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';
import { distributeSamples, type DistributedRunStats } from '../../scale/distribute.js';
import { float32Bytes } from '../../scale/jobs.js';
import { addScaleOptions, openExecutor, probeQueue, progressLine, scalePlan, statsLine, type ScaleFlags } from './scale-options.js';
import { createProgress } from '../progress.js';
import {
  addFeatureReuseOptions,
  checkFeatureReuseFlags,
  formatFeatureReuseLine,
  setupFeatureReuse,
  wantsFeatureReuse,
  type FeatureReuseFlags,
  type FeatureReuseReport,
} from './feature-reuse-options.js';

/** The solver, budget and PFDiff flags `sample` and `txt2img` share (commander's camel-cased names). */
export interface SolverFlags {
  solver?: string;
  /** An A1111/ComfyUI sampler name instead of `solver`. */
  sampler?: string;
  eta?: number;
  order?: number;
  variant?: string;
  solverType?: string;
  lowerOrderFinal?: boolean;
  solverOpt?: Record<string, unknown>;
  nfe?: number;
  steps?: number;
  spacing?: string;
  pfdiff?: { k: number; h: number };
  pfdiffQuantity?: 'epsilon' | 'x0' | 'v';
}

/** Parsed options of `rediffuse sample`. */
export interface SampleCommandOptions extends FeatureReuseFlags, SolverFlags, ScaleFlags {
  /** Also write the samples as little-endian float32 [count, ...sampleShape]. */
  samplesOut?: string;
  /** Refused with a pointer to `txt2img` (a pipeline folder is not one model). */
  pipeline?: string;
  prompt?: string;
  guidance?: number;
  guidanceRescale?: number;
  class: string;
  count?: number;
  seed: number;
  batchSize: number;
  threads?: number;
  model?: string;
  card?: string;
  out: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  reference?: boolean;
  /** `--config FILE`: a tuned configuration (`rediffuse tune`); see {@link applyTunedConfig}. */
  config?: string;
}

/** The machine-readable report `--json` prints. */
export interface SampleReport {
  output: string;
  model: { path: string; card: string | null; name: string; sampleShape: readonly number[]; predictionType: string; timestepDtype?: string };
  settings: {
    solver: string;
    solverOptions: Record<string, unknown>;
    nfe: number | null;
    steps: number | null;
    spacing: string;
    pfdiff: { k: number; h: number; variant: string; quantity?: string } | null;
    guidance: { scale: number; rescale: number } | null;
    classes: { label: number; name: string }[] | null;
    countPerRow: number;
    samples: number;
    seed: number;
    batchSize: number;
    threads: number | null;
  };
  /** Model calls (NFE); a guided call of cond + uncond counts once. */
  calls: number;
  /** Grid intervals the solver ran on (the base grid with PFDiff). */
  steps: number;
  timesteps: number[];
  /** `session.run` invocations (calls split into chunks of --batch-size). */
  modelRuns: number | null;
  /** Whole sampling run, ms. */
  wallMs: number;
  /** Time inside model calls, ms. */
  modelMs: number;
  /** Mean wall time of one model call, ms. */
  msPerCall: number;
  /** Wall time of each model call, ms. */
  callMs: number[];
  /** Loading the model, ms. */
  loadMs: number;
  /** Encoding and writing the PNG, ms. */
  writeMs: number;
  /** FRDiff feature reuse (--fr-interval / --fr-policy): calls per kind, cache memory, ms per kind. */
  featureReuse: FeatureReuseReport | null;
  /** With --queue or --workers: where the batches ran and what happened to the jobs. */
  scale?: { executor: string; stats: DistributedRunStats };
  /** The tuned configuration file the settings came from (`--config`). */
  config?: string;
}

/** Flags a tuned configuration sets, with their command-line names (given together with --config they are refused). */
const CONFIG_SET_FLAGS: [keyof SampleCommandOptions, string][] = [
  ['solver', '--solver'],
  ['sampler', '--sampler'],
  ['nfe', '--nfe'],
  ['steps', '--steps'],
  ['spacing', '--spacing'],
  ['pfdiff', '--pfdiff'],
  ['pfdiffQuantity', '--pfdiff-quantity'],
  ['eta', '--eta'],
  ['order', '--order'],
  ['variant', '--variant'],
  ['solverType', '--solver-type'],
  ['lowerOrderFinal', '--lower-order-final'],
  ['solverOpt', '--solver-opt'],
  ['frInterval', '--fr-interval'],
  ['frPolicy', '--fr-policy'],
  ['frPoints', '--fr-points'],
  ['mixBias', '--mix-bias'],
  ['mixTemperature', '--mix-temperature'],
  ['frForecast', '--fr-forecast'],
  ['frForecastTime', '--fr-forecast-time'],
  ['frForecastPoints', '--fr-forecast-points'],
  ['frAdaptive', '--fr-adaptive'],
  ['frAdaptiveMode', '--fr-adaptive-mode'],
  ['frProbe', '--fr-probe'],
  ['guidance', '--guidance'],
  ['reference', '--reference'],
];

/**
 * The options of a `sample --config FILE` run: the tuned configuration sets the solver, NFE,
 * spacing, PFDiff k_h, feature reuse (interval, points, score mixing, or a policy file) and the
 * guidance. A flag that sets one of those, given together with --config, is refused (the rule:
 * the file is the whole sampler, so nothing silently overrides a tuned choice); the other flags
 * (--class, --count, --seed, --out, --batch-size, --threads, --model, --card, --json, …) apply.
 */
export function applyTunedConfig(opts: SampleCommandOptions, config: TunedConfig, file: string): SampleCommandOptions {
  const given = CONFIG_SET_FLAGS.filter(([k]) => opts[k] !== undefined).map(([, f]) => f);
  if (opts.mixing === false) given.push('--no-mixing');
  if (given.length > 0) {
    throw new CliError(
      `--config ${file} sets the solver, NFE, spacing, PFDiff, feature reuse and guidance: drop ${given.join(', ')} ` +
        '(or edit the config, or sample without --config)',
    );
  }
  const s = config.sampling;
  const out: SampleCommandOptions = { ...opts, solver: s.solver, nfe: s.nfe, spacing: s.spacing, guidance: config.guidance };
  if (s.pfdiff) out.pfdiff = parsePfdiff(s.pfdiff);
  const fr = s.fr;
  if (fr.kind === 'interval') {
    if (fr.space === 'sample')
      throw new CliError(`${file}: sampling.fr.space "sample" (hold x̂0) has no command-line form yet; sample it with the library`);
    out.frInterval = fr.interval;
    out.frPoints = typeof fr.points === 'string' ? fr.points : fr.points.join(',');
    if (fr.mixing === null) out.mixing = false;
    else {
      out.mixing = true;
      out.mixBias = fr.mixing.bias;
      out.mixTemperature = fr.mixing.temperature;
    }
  } else if (fr.kind === 'policy') out.frPolicy = fr.file;
  else if (fr.kind === 'adaptive') {
    if (fr.warmup !== undefined) throw new CliError(`${file}: sampling.fr.warmup has no command-line form yet; sample it with the library`);
    out.frAdaptive = fr.threshold;
    if (fr.accumulate !== undefined) out.frAdaptiveMode = fr.accumulate;
    if (fr.maxInterval !== undefined) out.frInterval = fr.maxInterval;
    out.frPoints = typeof fr.points === 'string' ? fr.points : fr.points.join(',');
    if (fr.probe !== undefined) out.frProbe = fr.probe;
  }
  if ((fr.kind === 'interval' || fr.kind === 'adaptive') && fr.forecast) {
    out.frForecast = fr.forecast.order;
    if (fr.forecast.time !== undefined) out.frForecastTime = fr.forecast.time;
    if (fr.forecast.points !== undefined) out.frForecastPoints = { ...fr.forecast.points };
  }
  return out;
}

const SOLVER_OPTION_FLAGS = ['eta', 'order', 'variant', 'solverType', 'lowerOrderFinal'] as const;

function solverHelp(): string {
  return listSolvers()
    .map((s) => s.name)
    .join(', ');
}

/** Add `sample` to a commander program. */
export function registerSampleCommand(program: Command): Command {
  const head = program
    .command('sample')
    .description(
      'Sample images from a diffusion model and write a labelled PNG grid (one row per class). ' +
        'With no options: the bundled Fashion-MNIST U-Net, 8 images per class, DPM-Solver++ 2M, 20 model calls, guidance 2.',
    )
    .addOption(new Option('-s, --solver <name>', `solver: ${solverHelp()} (default: the model card's, else dpmpp_2m)`));
  const cmd = addSolverOptionFlags(head)
    .addOption(new Option('-n, --nfe <n>', "model-call budget (default 20, or the card's default_nfe)").argParser(intArg(1)).conflicts('steps'))
    .addOption(
      new Option('--steps <n>', 'grid intervals instead of an NFE budget (with --pfdiff: base-grid intervals M = N(k+1)−k)').argParser(intArg(1)),
    )
    .addOption(new Option('--spacing <name>', `timestep spacing: ${TIMESTEP_SPACINGS.join(', ')} (default: the scheduler config's)`))
    .addOption(new Option('--pfdiff <k_h>', 'PFDiff timestep skipping, e.g. 2_1 (1 ≤ h ≤ k ≤ 3)').argParser(parsePfdiff))
    .addOption(
      new Option('--pfdiff-quantity <quantity>', 'PFDiff with a first-order solver: the stored, reused model output').choices(['epsilon', 'x0', 'v']),
    )
    .addOption(
      new Option(
        '-g, --guidance <scale>',
        'classifier-free guidance scale w (1 = off, 0 = unconditional); default 2 for class-conditional models',
      ).argParser(numberArg(0)),
    )
    .addOption(new Option('--guidance-rescale <phi>', 'guidance rescale φ in [0, 1] (Lin et al. 2023; 0 = off)').argParser(numberArg(0, 1)).default(0))
    .addOption(
      new Option('-c, --class <names>', "classes: 'all' (one row each), 'none' (unconditional), or names/indices separated by commas").default('all'),
    )
    .addOption(new Option('--count <n>', 'images per row (per class); unconditional: images in total (default 8, resp. 64)').argParser(intArg(1, 4096)))
    .addOption(new Option('--seed <n>', 'seed of the initial noise').argParser(intArg(0, 2 ** 32 - 1)).default(0))
    .addOption(
      new Option('-b, --batch-size <n>', 'largest batch per network run (a guided call runs cond + uncond together)')
        .argParser(intArg(1, 4096))
        .default(64),
    )
    .addOption(new Option('-t, --threads <n>', "onnxruntime intra-op threads (default: onnxruntime's choice)").argParser(threadsArg()))
    .addOption(new Option('-m, --model <path>', 'an ONNX diffusion model (default: the bundled models/fashion-unet.onnx)'))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(new Option('-o, --out <path>', 'PNG to write').default('rediffuse-samples.png'))
    .addOption(new Option('--samples-out <file>', 'also write the samples as raw little-endian float32 [count, ...sampleShape]'))
    .addOption(new Option('--json', 'print a JSON report (settings, model calls, wall time per call and in total) and nothing else on stdout'))
    .addOption(new Option('-q, --quiet', 'print nothing on success, no progress bar'))
    .addOption(new Option('--no-progress', 'no progress bar (there is none when stderr is not a terminal anyway)'))
    .addOption(new Option('--reference', 'use the closed-form Gaussian reference model (development)').hideHelp())
    .addOption(new Option('--pipeline <dir>', 'a Stable-Diffusion pipeline folder: refused, run rediffuse txt2img').hideHelp())
    .addOption(new Option('--prompt <text>', 'a prompt: refused, run rediffuse txt2img').hideHelp())
    .addOption(
      new Option(
        '--config <file>',
        'a tuned configuration (rediffuse tune): sets solver, NFE, spacing, PFDiff, feature reuse and guidance; flags that set those are refused with it',
      ),
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  rediffuse sample                                   # bundled model, all classes, 8 per class',
        '  rediffuse sample --solver ddim --nfe 10 --pfdiff 2_1 --out ddim-pfdiff.png',
        "  rediffuse sample --class 'ankle boot' --count 16 --guidance 3 --seed 7",
        '  rediffuse sample --json --nfe 4 --count 2 > report.json',
        '  rediffuse sample --config tuned.json --class bag --count 16      # the configuration rediffuse tune picked',
        '',
        'Exit codes: 0 done, 1 wrong input or failed run, 130 interrupted (Ctrl-C; no file is left half-written).',
      ].join('\n'),
    )
    .action(async (opts: SampleCommandOptions) => {
      await runSampleCommand(opts);
    });
  addFeatureReuseOptions(cmd);
  addScaleOptions(cmd, 'batches (--batch-size samples each)');
  return cmd;
}

interface LoadedForCli {
  model: DiffusionModel;
  onnx: OnnxDiffusionModel | undefined;
  card: ModelCard | undefined;
  /** The card's sampling setup (for --reference: DDPM's linear schedule with the grid defaults). */
  sampling: CardSamplingSetup;
  modelPath: string;
  cardPath: string | undefined;
}

/** The card of the closed-form reference model (development): DDPM's linear betas, diffusers' default linspace grid. */
const REFERENCE_CARD = {
  name: 'reference',
  scheduler_config: REFERENCE_SCHEDULER_CONFIG,
  sample_size: [1, 28, 28],
};

async function loadForCli(opts: SampleCommandOptions): Promise<LoadedForCli> {
  if (opts.reference) {
    const sampling = cardSamplingSetup(parseModelCard(REFERENCE_CARD, '(reference model)'));
    return {
      model: gaussianModel({ schedule: sampling.schedule, mean: 0, std: 0.5, sampleShape: [1, 28, 28] }),
      onnx: undefined,
      card: undefined,
      sampling,
      modelPath: '(reference: closed-form Gaussian)',
      cardPath: undefined,
    };
  }
  const path = opts.model ?? bundledModelPath();
  const loaded = await loadOnnxModel({
    path,
    ...(opts.card !== undefined ? { cardPath: opts.card } : {}),
    maxBatch: opts.batchSize,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  if (!loaded.card) {
    throw new CliError(`no model card for ${loaded.modelPath}: pass --card with its JSON card (scheduler_config, sample_size, …)`);
  }
  return {
    model: loaded.model,
    onnx: loaded.model,
    card: loaded.card,
    sampling: cardSamplingSetup(loaded.card),
    modelPath: loaded.modelPath,
    cardPath: loaded.cardPath,
  };
}

/** Rows of the grid: which class each row samples (undefined = unconditional). */
function resolveRows(opts: SampleCommandOptions, card: ModelCard | undefined, conditional: boolean): { label: number | undefined; name: string }[] {
  const choice = opts.class.trim();
  const lower = choice.toLowerCase();
  if (!conditional || lower === 'none' || lower === 'uncond' || lower === 'unconditional') {
    if (!conditional && lower !== 'all' && lower !== 'none') {
      throw new CliError(`the model is not class-conditional: leave out --class (got "${opts.class}")`);
    }
    return [{ label: undefined, name: '' }];
  }
  const c = card!;
  const n = c.numClasses ?? c.classNames?.length ?? 0;
  if (lower === 'all') return Array.from({ length: n }, (_, k) => ({ label: k, name: c.classNames?.[k] ?? `class ${k}` }));
  const parts = choice
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0) throw new CliError(`--class is empty: use 'all', 'none', or class names/indices`);
  return parts.map((p) => {
    try {
      const k = resolveClassLabel(c, p);
      return { label: k, name: c.classNames?.[k] ?? `class ${k}` };
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  });
}

/** The solver-option flags of {@link SolverFlags} (`--sampler` … `-O`), shared by `sample` and `txt2img`. */
export function addSolverOptionFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--sampler <name>', 'an A1111/ComfyUI sampler name instead of --solver, e.g. "DPM++ 2M Karras", "Euler a", "dpmpp_2m karras"').conflicts(
        'solver',
      ),
    )
    .addOption(new Option('--eta <number>', 'solver option: DDIM/DDPM stochasticity η in [0, 1]').argParser(numberArg(0, 1)))
    .addOption(new Option('--order <n>', 'solver option: order (unipc and dpm_solver 1–3, lms 1–4)').argParser(intArg(1, 4)))
    .addOption(new Option('--variant <name>', "solver option: UniPC variant 'bh1' or 'bh2'"))
    .addOption(new Option('--solver-type <name>', "solver option: DPM-Solver++ second-order form 'midpoint' or 'heun'"))
    .addOption(new Option('--lower-order-final', 'solver option: use lower order in the final steps (multistep solvers)'))
    .addOption(new Option('--no-lower-order-final', 'solver option: keep the full order to the end'))
    .addOption(
      new Option('-O, --solver-opt <key=value>', 'any other solver option, repeatable (value read as JSON when it parses)').argParser(
        (v: string, prev: Record<string, unknown> | undefined) => parseSolverOption(v, prev ?? {}),
      ),
    );
}

/**
 * The solver options the flags give (--eta, --order, --variant, --solver-type, --lower-order-final,
 * then -O pairs); `sampleOptionsFromCard` puts them on top of the scheduler config's. `txt2img` shares it.
 */
export function solverOptionsFrom(
  opts: Pick<SolverFlags, 'eta' | 'order' | 'variant' | 'solverType' | 'lowerOrderFinal' | 'solverOpt'>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SOLVER_OPTION_FLAGS) {
    const v = opts[key];
    if (v !== undefined) out[key] = v;
  }
  return Object.assign(out, opts.solverOpt ?? {});
}

/** The CLI's solver when neither --solver nor the card's default_solver names one. */
const CLI_DEFAULT_SOLVER = 'dpmpp_2m';

/** A request error in the words of the command line's flags. */
function requestError(err: unknown): CliError {
  if (!(err instanceof SampleRequestError)) return new CliError((err as Error).message);
  const flag = ({ guidance: '--guidance', classLabels: '--class', steps: '--steps' } as Record<string, string>)[err.field];
  return new CliError(flag ? `${err.message} (${flag})` : err.message);
}

/** Run `rediffuse sample` with parsed options (exported for in-process tests). */
export async function runSampleCommand(opts: SampleCommandOptions): Promise<SampleReport> {
  let tuned: TunedConfig | undefined;
  if (opts.config !== undefined) {
    try {
      tuned = readTunedConfig(opts.config);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    opts = applyTunedConfig(opts, tuned, opts.config);
  }
  if (opts.pipeline !== undefined || opts.prompt !== undefined) {
    throw new CliError(
      `sample runs one ONNX diffusion model; a Stable-Diffusion pipeline folder with a prompt runs with rediffuse txt2img --pipeline DIR --prompt "…" ` +
        '(the same solver, PFDiff and --fr-* flags)',
    );
  }
  if (opts.spacing !== undefined && !(TIMESTEP_SPACINGS as readonly string[]).includes(opts.spacing)) {
    throw new CliError(`unknown spacing "${opts.spacing}": use one of ${TIMESTEP_SPACINGS.join(', ')}`);
  }
  if (opts.solver !== undefined) {
    const names = listSolvers().flatMap((s) => [s.name, ...(s.aliases ?? [])].map((n) => n.toLowerCase()));
    if (!names.includes(opts.solver.toLowerCase())) throw new CliError(`unknown solver "${opts.solver}": valid names are ${solverHelp()}`);
  }
  if (opts.sampler !== undefined) {
    try {
      resolveSamplerName(opts.sampler);
    } catch (err) {
      throw new CliError(`--sampler: ${(err as Error).message}`);
    }
  }
  if (opts.pfdiffQuantity !== undefined && !opts.pfdiff) throw new CliError('--pfdiff-quantity needs --pfdiff k_h');
  checkFeatureReuseFlags(opts);
  checkOutputPath(opts.out); // before the model loads: a bad --out must not cost a run
  if (opts.samplesOut !== undefined) checkOutputPath(opts.samplesOut, { flag: '--samples-out' });
  const scale = scalePlan(opts);
  if (scale.kind !== 'none' && (opts.reference || wantsFeatureReuse(opts))) {
    throw new CliError(
      `--${scale.kind === 'queue' ? 'queue' : 'workers'} runs batches of an ONNX model without feature reuse: drop --reference and the --fr-* flags`,
    );
  }
  // A queue is probed now: an unreachable Redis must not cost a model load.
  await probeQueue(scale);

  const signal = interruptSignal();
  const progress = createProgress(!opts.quiet && opts.progress !== false);
  progress.phase('loading model');
  try {
    const t0 = performance.now();
    const loaded = await loadForCli(opts);
    const loadMs = performance.now() - t0;
    if (tuned && fileSha256(loaded.modelPath) !== tuned.model.sha256) {
      throw new CliError(
        `${opts.config} was tuned on ${tuned.model.name} (sha256 ${tuned.model.sha256.slice(0, 12)}…), not on ${loaded.modelPath}: ` +
          `tune this model (rediffuse tune --model ${loaded.modelPath}) or pass the model it was tuned on`,
      );
    }
    const conditional =
      loaded.onnx?.signature.classLabels !== undefined &&
      loaded.card !== undefined &&
      (loaded.card.numClasses ?? loaded.card.classNames?.length ?? 0) > 0;
    const rows = resolveRows(opts, loaded.card, conditional);
    const unconditional = rows.length === 1 && rows[0]!.label === undefined;
    const perRow = opts.count ?? (unconditional ? 64 : 8);
    const columns = unconditional ? Math.min(perRow, 8) : perRow;
    const total = unconditional ? perRow : rows.length * perRow;

    const labels: number[] = [];
    if (!unconditional) for (const r of rows) for (let i = 0; i < perRow; i++) labels.push(r.label!);
    let base: Omit<SampleOptions, 'model'>;
    let request: Omit<CardSampleRequest, 'batch' | 'seed' | 'classLabels'>;
    try {
      request = {
        ...(opts.sampler !== undefined
          ? { sampler: opts.sampler }
          : opts.solver !== undefined
            ? { solver: opts.solver }
            : loaded.card?.defaultSolver === undefined
              ? { solver: CLI_DEFAULT_SOLVER }
              : {}),
        solverOptions: solverOptionsFrom(opts),
        ...(opts.steps !== undefined ? { steps: opts.steps } : opts.nfe !== undefined ? { nfe: opts.nfe } : {}),
        ...(opts.spacing !== undefined ? { spacing: opts.spacing as TimestepSpacing } : {}),
        ...(opts.guidance !== undefined ? { guidance: opts.guidance } : {}),
        guidanceRescale: opts.guidanceRescale ?? 0,
        classConditional: conditional,
        ...(opts.pfdiff ? { pfdiff: { ...opts.pfdiff, ...(opts.pfdiffQuantity ? { quantity: opts.pfdiffQuantity } : {}) } } : {}),
      };
      base = sampleOptionsFromCard(loaded.sampling, { ...request, classLabels: labels, batch: total, seed: opts.seed });
    } catch (err) {
      throw requestError(err);
    }
    const solverName = base.solver!;
    const timesteps = base.timesteps ?? {};
    const solverOptions = base.solverOptions ?? {};
    const nfe = base.nfe;
    const experimental = (MULTISTEP_BASES as readonly string[]).includes(solverName)
      ? 'multistep'
      : (ADAMS_BASES as readonly string[]).includes(solverName)
        ? 'Adams'
        : null;
    if (opts.pfdiff && experimental && !opts.quiet) {
      process.stderr.write(
        `rediffuse: warning: PFDiff around ${solverName} uses our experimental ${experimental} variant, not the paper's; ` +
          `for the paper's PFDiff choose a first-order solver (--solver ddim)\n`,
      );
    }

    const sampleOptions: SampleOptions = {
      ...base,
      model: loaded.model,
      onStep: (info) => {
        if (info.step === 0) progress.start(info.steps, 'sampling');
        progress.update(info.step + 1);
      },
      signal,
    };

    if (wantsFeatureReuse(opts) && !loaded.onnx) throw new CliError('feature reuse (--fr-interval/--fr-policy) needs an ONNX model: drop --reference');
    const fr = wantsFeatureReuse(opts)
      ? await setupFeatureReuse(opts, base, {
          modelPath: loaded.modelPath,
          ...(loaded.card ? { card: loaded.card } : {}),
          maxBatch: opts.batchSize,
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        })
      : undefined;
    if (fr) sampleOptions.model = fr.model;
    if (fr && !opts.quiet) for (const note of fr.notes) process.stderr.write(`rediffuse: warning: ${note}\n`);
    let result: SampleResult;
    let scaled: SampleReport['scale'];
    progress.phase('sampling');
    try {
      if (scale.kind !== 'none') {
        progress.stop();
        const executor = (await openExecutor(scale, {
          modelPath: loaded.modelPath,
          ...(opts.card !== undefined ? { cardPath: resolve(opts.card) } : {}),
        }))!;
        const say = (m: string) => {
          if (!opts.quiet && !opts.json) process.stderr.write(`rediffuse: ${m}\n`);
        };
        try {
          const t0 = performance.now();
          const d = await distributeSamples({
            request,
            ...(unconditional ? {} : { classLabels: labels }),
            seed: opts.seed,
            total,
            batch: opts.batchSize,
            modelHash: fileSha256(loaded.modelPath),
            sampleSize: loaded.model.sampleShape.reduce((a, b) => a * b, 1),
            executor,
            onProgress: progressLine(`sample batches on the ${executor.description}`, say),
            signal,
          });
          say(statsLine(d.stats));
          scaled = { executor: executor.description, stats: d.stats };
          const wallMs = performance.now() - t0;
          result = { ...d.first, samples: d.samples, wallMs, callMs: d.computeMs } as unknown as SampleResult;
        } finally {
          await executor.close();
        }
      } else result = await sample(sampleOptions);
    } catch (err) {
      if (signal.aborted) throw new CliError('interrupted: no image was written', EXIT_INTERRUPTED);
      throw new CliError((err as Error).message);
    } finally {
      progress.stop();
    }
    if (signal.aborted) throw new CliError('interrupted: no image was written', EXIT_INTERRUPTED);

    const t1 = performance.now();
    // the grid draws [-1, 1]; a card's "[0,1]" data range is mapped onto it (x ↦ 2x − 1)
    const shown = loaded.card?.imageRange === '[0,1]' ? Float32Array.from(result.samples, (v) => 2 * v - 1) : result.samples;
    const png = imageGridPng(shown, {
      sampleShape: loaded.model.sampleShape,
      columns,
      ...(unconditional ? {} : { rowLabels: rows.map((r) => r.name) }),
    });
    const output = writeFileAtomic(opts.out, png);
    if (opts.samplesOut !== undefined) writeFileAtomic(opts.samplesOut, float32Bytes(result.samples));
    const writeMs = performance.now() - t1;

    const stats = scaled ? undefined : fr ? fr.net.stats : loaded.onnx?.stats;
    const callMs = stats ? [...stats.callMs] : [];
    const modelMs = stats ? stats.totalMs : result.callMs;
    const report: SampleReport = {
      output,
      model: {
        path: loaded.modelPath,
        card: loaded.cardPath ?? null,
        name: loaded.card?.name ?? 'reference',
        sampleShape: loaded.model.sampleShape,
        predictionType: loaded.model.predictionType,
        ...(loaded.onnx ? { timestepDtype: loaded.onnx.signature.timestep.dtype } : {}),
      },
      settings: {
        solver: result.solver,
        solverOptions,
        nfe: nfe ?? null,
        steps: opts.steps ?? null,
        spacing: timesteps.spacing ?? 'linspace',
        pfdiff: result.pfdiff ? { ...result.pfdiff } : null,
        guidance: sampleOptions.guidance ? { scale: sampleOptions.guidance.scale, rescale: sampleOptions.guidance.rescale ?? 0 } : null,
        classes: unconditional ? null : rows.map((r) => ({ label: r.label!, name: r.name })),
        countPerRow: perRow,
        samples: total,
        seed: opts.seed,
        batchSize: opts.batchSize,
        threads: opts.threads ?? null,
      },
      calls: result.calls,
      steps: result.steps,
      timesteps: result.timesteps,
      modelRuns: stats ? stats.runs : null,
      wallMs: result.wallMs,
      modelMs,
      msPerCall: result.calls > 0 ? modelMs / result.calls : 0,
      callMs,
      loadMs,
      writeMs,
      featureReuse: fr ? fr.report() : null,
      ...(scaled ? { scale: scaled } : {}),
      ...(opts.config !== undefined ? { config: opts.config } : {}),
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else if (!opts.quiet) {
      const what = unconditional ? `${total} samples` : `${rows.length} ${rows.length === 1 ? 'class' : 'classes'} × ${perRow}`;
      const pf = result.pfdiff ? ` + PFDiff-${result.pfdiff.k}_${result.pfdiff.h}` : '';
      process.stdout.write(
        `wrote ${output} (${what}; ${result.solver}${pf}, ${result.calls} model ${result.calls === 1 ? 'call' : 'calls'}, ${(result.wallMs / 1000).toFixed(2)} s, ${report.msPerCall.toFixed(1)} ms per call)\n`,
      );
      if (report.featureReuse) process.stdout.write(`${formatFeatureReuseLine(report.featureReuse)}\n`);
    }
    await loaded.onnx?.release();
    await fr?.release();
    return report;
  } finally {
    progress.stop();
  }
}
