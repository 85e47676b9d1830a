/**
 * `rediffuse autofr`: search a feature-reuse policy (keyframes, mixing bias, reuse points) for a
 * model, solver, step count and guidance under a cost budget measured on this machine, write it as
 * a policy JSON that `sample --fr-policy` and `bench` read, and evaluate it on held-out seeds.
 *
 * Objective (FRDiff §4.3): the final-sample MSE against the full-compute run from the same noise
 * and labels. Budget: cost(π) = (K·t_key + R·t_reuse)/(N·t_full) ≤ budget with t_* the measured
 * median ms of each kind of call on the run's batch (`--budget-kind time`), or the graph's MAC
 * counts (`--budget-kind cost`). Search: src/core/frdiff/autofr.ts.
 * @packageDocumentation
 */
import { Option, type Command } from 'commander';
import {
  intervalBudget,
  measureCallCost,
  searchReusePolicy,
  policyCost,
  type MeasuredCallCost,
  type PointsCost,
  plannedCalls,
  createPolicyObjective,
  fullComputeSamples,
  pointsKey,
  countCalls,
  uniformPolicy,
  type ReusePolicy,
  DEFAULT_SCORE_MIXING,
  type SampleOptions,
  type Conditioning,
  concatConditioning,
  type DiffusionModel,
  type NoiseSchedule,
} from '../../core/index.js';
import { writeFileAtomic, bundledModelPath, cardPathFor, loadModelCard, readModelBytes, checkOutputPath, nodePipelineReader } from '../../node/index.js';
import {
  sampleOptionsFromCard,
  SampleRequestError,
  createFeatureReuseNets,
  cardSamplingSetup,
  OnnxDiffusionModel,
  StableDiffusionPipeline,
  type FeatureReuseOnnxModel,
  type OrtModuleLike,
  type PipelineSampleRun,
} from '../../model/index.js';
import { CliError, intArg, numberArg, threadsArg } from '../cli-error.js';

/** Model calls of an Auto-FR run when neither --steps nor --nfe is given. */
export const AUTOFR_DEFAULT_NFE = 50;

/** The label of the comparison row of the uniform interval-3 policy: the mixing and the points it ran. */
export function uniformRowLabel(policy: ReusePolicy): string {
  return `uniform-3 (${policy.mixing ? `b=${policy.mixing.bias}` : 'no mixing'}, ${pointsKey(policy.points)})`;
}

/** Parsed options of `rediffuse autofr`. */
export interface AutofrCommandOptions {
  model?: string;
  /** A Stable-Diffusion pipeline folder: search on its UNet with `prompt`'s embeddings instead of `model`. */
  pipeline?: string;
  prompt?: string;
  negativePrompt?: string;
  /** Image size in pixels with `pipeline` (default: the UNet's sample_size × 8). */
  height?: number;
  width?: number;
  card?: string;
  solver: string;
  steps?: number;
  nfe?: number;
  guidance: number;
  budget: string;
  budgetKind: 'time' | 'cost';
  samples: number;
  seed: number;
  heldoutSeed: number;
  points: string;
  biases: string;
  maxEvals: number;
  timeLimit: number;
  repeats: number;
  costBatch?: number;
  threads?: number;
  out: string;
  json?: boolean;
  quiet?: boolean;
}

/** One row of the held-out comparison. */
export interface AutofrComparisonRow {
  policy: string;
  keyframes: number;
  reuse: number;
  skip: number;
  cost: number;
  trainMse: number;
  heldoutMse: number;
}

/** What `autofr` returns (and prints with --json). */
export interface AutofrReport {
  output: string;
  policy: ReusePolicy;
  budget: number;
  budgetKind: 'time' | 'cost';
  measured: Record<string, MeasuredCallCost & { macsRatio: number }>;
  comparison: AutofrComparisonRow[];
  evaluations: number;
  stopped: string;
  searchMs: number;
}

function parseBiases(text: string): (number | null)[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (s === 'none' || s === 'null') return null;
      const v = Number(s);
      if (!Number.isFinite(v) || v < -1 || v > 2) throw new CliError(`--biases: "${s}" is not a bias in [-1, 2] or "none"`);
      return v;
    });
}

/** What the search runs on: the reuse networks, the run of a seed, the plain model for timing. */
interface AutofrSource {
  /** Where the model came from (the policy's `meta.model`). */
  label: string;
  /** More `meta` fields (the pipeline's prompts and size). */
  meta: Record<string, unknown>;
  schedule: NoiseSchedule;
  nets: Map<string, FeatureReuseOnnxModel>;
  skipped: { points: string; reason: string }[];
  /** The `sample()` options of the run from noise seed `seed`. */
  baseRun(seed: number): Omit<SampleOptions, 'model'>;
  /** Guidance 0 means "the unconditional branch alone" (class labels or a negative prompt). */
  conditional: boolean;
  labels: number[] | null;
  plain(netBatch: number): Promise<Pick<DiffusionModel, 'predict'> & { release(): Promise<void> }>;
  /** The conditioning of a timed network batch. */
  measureCond(netBatch: number): Conditioning | undefined;
  release(): Promise<void>;
}

/** A model file and its card (the default: the bundled U-Net). */
async function modelSource(opts: AutofrCommandOptions, ort: OrtModuleLike, pointsList: string[]): Promise<AutofrSource> {
  if (opts.prompt !== undefined || opts.negativePrompt !== undefined) throw new CliError('--prompt/--negative-prompt need --pipeline DIR');
  const modelPath = opts.model ?? bundledModelPath();
  const card = loadModelCard(opts.card ?? cardPathFor(modelPath));
  const setup = cardSamplingSetup(card);
  const labelsFor = (n: number) => Array.from({ length: n }, (_, i) => i % Math.max(1, setup.numClasses));
  const budgetSteps = opts.steps !== undefined ? { steps: opts.steps } : { nfe: opts.nfe ?? AUTOFR_DEFAULT_NFE };
  // Every run of the search: the card's settings for the solver, the guidance/label rule of `sample`.
  const runFor = (seed: number, classConditional: boolean): Omit<SampleOptions, 'model'> => {
    try {
      return sampleOptionsFromCard(setup, {
        solver: opts.solver,
        ...budgetSteps,
        guidance: opts.guidance,
        ...(classConditional && opts.guidance !== 0 ? { classLabels: labelsFor(opts.samples) } : {}),
        classConditional,
        batch: opts.samples,
        seed,
      });
    } catch (err) {
      throw new CliError(err instanceof SampleRequestError ? `${err.message} (--guidance)` : (err as Error).message);
    }
  };
  runFor(opts.seed, setup.numClasses > 0); // refuse a bad request before the graphs are cut
  let loadedNets: Awaited<ReturnType<typeof createFeatureReuseNets>>;
  try {
    loadedNets = await createFeatureReuseNets({
      ort,
      model: readModelBytes(modelPath),
      card,
      label: modelPath,
      points: pointsList,
      skipInapplicable: true,
      // A guided call of the measured batch runs as one network batch, as `bench` runs it.
      maxBatch: Math.max(64, 2 * (opts.costBatch ?? opts.samples)),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const first = [...loadedNets.nets.values()][0]!;
  const conditional = first.signature.classLabels !== undefined && setup.numClasses > 0;
  return {
    label: modelPath,
    meta: {},
    schedule: setup.schedule,
    ...loadedNets,
    baseRun: (seed) => runFor(seed, conditional),
    conditional,
    labels: conditional ? labelsFor(opts.samples) : null,
    plain: (netBatch) =>
      OnnxDiffusionModel.create({
        ort,
        model: readModelBytes(modelPath),
        card,
        maxBatch: Math.max(64, netBatch),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      }),
    measureCond: (netBatch) => (conditional ? { classLabels: labelsFor(netBatch) } : undefined),
    release: async () => {},
  };
}

/**
 * A Stable-Diffusion pipeline folder: the UNet with the prompt's and the negative prompt's
 * embeddings, the run `txt2img` makes with the same prompt, size, solver and budget, from the
 * search's noise seeds.
 */
async function pipelineSource(opts: AutofrCommandOptions, ort: OrtModuleLike, pointsList: string[]): Promise<AutofrSource> {
  if (opts.model !== undefined || opts.card !== undefined) throw new CliError("--pipeline runs the folder's UNet: drop --model/--card");
  if (opts.prompt === undefined) throw new CliError('--pipeline needs --prompt "…" (the policy is searched on that prompt\'s embeddings)');
  let pipe: StableDiffusionPipeline;
  try {
    pipe = await StableDiffusionPipeline.load({
      ort,
      reader: nodePipelineReader(opts.pipeline!),
      maxBatch: Math.max(64, 2 * (opts.costBatch ?? opts.samples)),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const request = (seed: number) => ({
    prompt: opts.prompt!,
    negativePrompt: opts.negativePrompt ?? '',
    guidanceScale: opts.guidance,
    batch: opts.samples,
    seed,
    solver: opts.solver,
    ...(opts.steps !== undefined ? { steps: opts.steps } : { nfe: opts.nfe ?? AUTOFR_DEFAULT_NFE }),
    ...(opts.height !== undefined ? { height: opts.height } : {}),
    ...(opts.width !== undefined ? { width: opts.width } : {}),
  });
  let prepared: PipelineSampleRun;
  try {
    prepared = await pipe.sampleRun(request(opts.seed));
  } catch (err) {
    await pipe.release();
    throw new CliError((err as Error).message);
  }
  const { latentHeight: h, latentWidth: w, prompt, negativePrompt } = prepared;
  const card = pipe.unetCard(h, w);
  let loadedNets: Awaited<ReturnType<typeof createFeatureReuseNets>>;
  try {
    loadedNets = await createFeatureReuseNets({
      ort,
      model: await pipe.unetBytes(),
      card,
      label: `${pipe.label}/${pipe.denoiser}/model.onnx`,
      points: pointsList,
      skipInapplicable: true,
      maxBatch: Math.max(64, 2 * (opts.costBatch ?? opts.samples)),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
  } catch (err) {
    await pipe.release();
    throw new CliError((err as Error).message);
  }
  // The run of another seed: the same conditioning, other initial latents (sample() draws them from the seed).
  const baseRun = (seed: number): Omit<SampleOptions, 'model'> => ({ ...prepared.run, seed });
  const guided = prepared.run.guidance !== undefined;
  return {
    label: opts.pipeline!,
    meta: { prompt: opts.prompt, negativePrompt: opts.negativePrompt ?? '', size: [prepared.height, prepared.width] },
    schedule: pipe.setup.schedule,
    ...loadedNets,
    baseRun,
    conditional: true,
    labels: null,
    plain: async (netBatch) => {
      const unet = await pipe.unet(h, w);
      return { predict: (x, call, cond) => unet.predict(x, call, cond), release: async () => void netBatch };
    },
    // A guided network batch is [negative; prompt] rows, stacked as guidance stacks them (SDXL's
    // pooled embeds and time ids included).
    measureCond: (netBatch) => {
      const timeIds = pipe.sdxl ? pipe.sdxlTimeIds(prepared.height, prepared.width) : undefined;
      if (!guided) return pipe.promptRows(opts.guidance === 0 ? negativePrompt : prompt, netBatch, timeIds);
      const half = netBatch / 2;
      return concatConditioning(pipe.promptRows(negativePrompt, half, timeIds), pipe.promptRows(prompt, half, timeIds), half);
    },
    release: () => pipe.release(),
  };
}

/** Register `autofr` on a commander program. */
export function registerAutofr(program: Command): Command {
  return program
    .command('autofr')
    .description(
      'Auto-FR: search a feature-reuse policy (keyframes, mixing bias, reuse points) under a measured cost budget and write it as JSON for sample --fr-policy / bench',
    )
    .addOption(new Option('-m, --model <path>', 'ONNX diffusion model (default: the bundled models/fashion-unet.onnx)'))
    .addOption(new Option('--card <path>', "the model's JSON card (default: the .json next to the model)"))
    .addOption(
      new Option(
        '--pipeline <dir>',
        'a Stable-Diffusion ONNX pipeline folder: search on its UNet with --prompt (the policy is for txt2img --fr-policy)',
      ).conflicts('model'),
    )
    .addOption(new Option('-p, --prompt <text>', 'with --pipeline: the prompt whose embeddings the UNet is run with'))
    .addOption(new Option('--negative-prompt <text>', 'with --pipeline: the guidance branch\'s prompt (default "")'))
    .addOption(new Option('--height <px>', 'with --pipeline: image height (multiple of 8)').argParser(intArg(8, 4096)))
    .addOption(new Option('--width <px>', 'with --pipeline: image width (multiple of 8)').argParser(intArg(8, 4096)))
    .addOption(new Option('-s, --solver <name>', 'solver').default('ddim'))
    .addOption(new Option('--steps <n>', 'grid intervals').argParser(intArg(1)))
    .addOption(
      new Option('-n, --nfe <n>', `model-call budget instead of --steps (default ${AUTOFR_DEFAULT_NFE} calls)`).argParser(intArg(1)).conflicts('steps'),
    )
    .addOption(new Option('-g, --guidance <scale>', 'classifier-free guidance scale (1 = off)').argParser(numberArg(0)).default(2))
    .addOption(
      new Option(
        '--budget <fraction>',
        'largest cost as a fraction of full computation, e.g. 0.5, or interval:M for the cost of the uniform interval-M policy',
      ).default('interval:3'),
    )
    .addOption(
      new Option('--budget-kind <kind>', 'time: measured ms per call kind on this machine; cost: MACs from the graph')
        .choices(['time', 'cost'])
        .default('time'),
    )
    .addOption(new Option('--samples <n>', 'samples per seed (the batch the objective is measured on)').argParser(intArg(1, 4096)).default(8))
    .addOption(new Option('--seed <n>', 'seed of the training noise').argParser(intArg(0)).default(1))
    .addOption(new Option('--heldout-seed <n>', 'seed of the held-out evaluation noise').argParser(intArg(0)).default(1001))
    .addOption(new Option('--points <list>', 'reuse-points options to search over').default('frdiff,residual,deepcache'))
    .addOption(new Option('--biases <list>', 'mixing biases to search over ("none" = no mixing)').default('0.3,0.4,0.5,0.6,0.7,none'))
    .addOption(new Option('--max-evals <n>', 'stop after this many policy evaluations').argParser(intArg(1)).default(150))
    .addOption(new Option('--time-limit <seconds>', 'stop the search after this long').argParser(numberArg(1)).default(600))
    .addOption(new Option('--repeats <n>', 'timed calls per kind when measuring costs').argParser(intArg(1)).default(7))
    .addOption(
      new Option(
        '--cost-batch <n>',
        'samples per sampling run at which call costs are measured: the batch the policy will run at (default: --samples); the cost of a reuse call relative to a full one depends on it',
      ).argParser(intArg(1, 4096)),
    )
    .addOption(new Option('-t, --threads <n>', 'onnxruntime intra-op threads').argParser(threadsArg()))
    .addOption(new Option('-o, --out <path>', 'policy JSON to write').default('policy.json'))
    .addOption(new Option('--json', 'print the report as JSON'))
    .addOption(new Option('-q, --quiet', 'no progress lines on stderr'))
    .addHelpText(
      'after',
      [
        '',
        `Without --steps/--nfe a run makes ${AUTOFR_DEFAULT_NFE} model calls. Time: the search evaluates up to --max-evals policies, each a`,
        'full sampling run of --samples images (plus two reference runs and the held-out comparison); on the bundled U-Net with',
        '2 CPU cores the README example (--steps 50 --guidance 2) takes about 6 minutes. --time-limit caps the search.',
      ].join('\n'),
    )
    .action(async (opts: AutofrCommandOptions) => {
      await runAutofrCommand(opts);
    });
}

/** Run `rediffuse autofr` (exported for in-process tests). */
export async function runAutofrCommand(opts: AutofrCommandOptions): Promise<AutofrReport> {
  const log = (s: string) => {
    if (!opts.quiet) process.stderr.write(`${s}\n`);
  };
  checkOutputPath(opts.out); // before the search: a bad --out must not cost it
  const pointsList = opts.points
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const biases = parseBiases(opts.biases);
  const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
  const source = opts.pipeline !== undefined ? await pipelineSource(opts, ort, pointsList) : await modelSource(opts, ort, pointsList);
  const { nets, skipped, baseRun, conditional, schedule } = source;
  for (const s of skipped) log(`autofr: reuse points ${s.points} do not apply: ${s.reason}`);
  const first = [...nets.values()][0]!;
  const guided = baseRun(opts.seed).guidance !== undefined;
  const solver = baseRun(opts.seed).solver!;
  const calls = await plannedCalls({ ...baseRun(opts.seed), model: first });
  const budgetSteps = opts.steps !== undefined ? { steps: opts.steps } : { nfe: opts.nfe ?? AUTOFR_DEFAULT_NFE };

  // Measure the cost of each kind of call on the network batch the policy will run at.
  const costSamples = opts.costBatch ?? opts.samples;
  const netBatch = guided ? 2 * costSamples : costSamples;
  const plain = await source.plain(netBatch);
  const cond = source.measureCond(netBatch);
  const measured: AutofrReport['measured'] = {};
  const costs: PointsCost[] = [];
  for (const [name, net] of nets) {
    const m = await measureCallCost(net, { batch: netBatch, schedule, t: 500, ...(cond ? { cond } : {}), plain, repeats: opts.repeats });
    measured[name] = { ...m, macsRatio: net.graphs.flops.ratio };
    // A keyframe pass is the full graph plus cache outputs: it cannot cost less than a full call, so a
    // measured fraction below 1 is timing noise and is raised to 1.
    costs.push(
      opts.budgetKind === 'time'
        ? { points: name, keyframe: Math.max(1, m.keyframeFraction), reuse: m.reuseFraction }
        : { points: name, keyframe: 1, reuse: net.graphs.flops.ratio },
    );
    log(
      `autofr: ${name}: full ${m.fullMs!.toFixed(2)} ms, keyframe ${m.keyframeMs.toFixed(2)} ms, reuse ${m.reuseMs.toFixed(2)} ms (batch ${netBatch}; reuse runs ${(100 * net.graphs.flops.ratio).toFixed(1)}% of the MACs)`,
    );
  }
  await plain.release();
  const costOf = (p: ReusePolicy) => policyCost(p, costs.find((c) => c.points === pointsKey(p.points)) ?? costs[0]!);

  const uniform3 = uniformPolicy(calls, 3, { ...DEFAULT_SCORE_MIXING }, nets.has('frdiff') ? 'frdiff' : [...nets.keys()][0]!);
  let budget: number;
  const im = /^interval:(\d+)$/.exec(opts.budget.trim());
  if (im) {
    if (Number(im[1]) < 1) throw new CliError(`--budget interval:${im[1]}: the interval is an integer ≥ 1`);
    budget = intervalBudget(
      calls,
      Number(im[1]),
      costs.find((c) => c.points === pointsKey(uniform3.points))!,
    );
  } else {
    budget = Number(opts.budget);
    if (!(budget > 0 && budget <= 1)) throw new CliError(`--budget must be a fraction in (0, 1] or interval:M, got "${opts.budget}"`);
  }
  log(
    `autofr: ${calls} calls, budget ${budget.toFixed(3)} of full computation (${opts.budgetKind}); uniform interval 3 costs ${costOf(uniform3).toFixed(3)}`,
  );

  // Objective on the training seed.
  const trainRun = baseRun(opts.seed);
  const reference = await fullComputeSamples(first, trainRun);
  const trainObjective = createPolicyObjective({ nets, run: trainRun, reference });
  const started = performance.now();
  const result = await searchReusePolicy({
    calls,
    budget,
    points: costs,
    biases,
    maxEvaluations: opts.maxEvals,
    timeLimitMs: opts.timeLimit * 1000,
    evaluate: async (p) => (await trainObjective(p)).mse,
    onEvaluation: (e) =>
      log(
        `autofr: #${e.evaluation} ${e.move.padEnd(16)} ${e.points.padEnd(10)} b=${String(e.bias).padEnd(4)} K=${e.keyframes.length} cost ${e.cost.toFixed(3)} mse ${e.objective.toExponential(3)}`,
      ),
  });
  const searchMs = performance.now() - started;

  // Held-out evaluation.
  const heldRun = baseRun(opts.heldoutSeed);
  const heldReference = await fullComputeSamples(first, heldRun);
  const heldObjective = createPolicyObjective({ nets, run: heldRun, reference: heldReference });
  const rows: AutofrComparisonRow[] = [];
  const addRow = async (label: string, p: ReusePolicy, trainMse?: number) => {
    const c = countCalls(p);
    rows.push({
      policy: label,
      keyframes: c.keyframe,
      reuse: c.reuse,
      skip: c.skip,
      cost: costOf(p),
      trainMse: trainMse ?? (await trainObjective(p)).mse,
      heldoutMse: (await heldObjective(p)).mse,
    });
  };
  await addRow('Auto-FR', result.policy, result.objective);
  await addRow(uniformRowLabel(uniform3), uniform3);
  await addRow(`best uniform (M=${result.bestUniform.interval})`, result.bestUniform.policy, result.bestUniform.objective);
  const skipOnly: ReusePolicy = { ...uniform3, mixing: { temperature: DEFAULT_SCORE_MIXING.temperature, bias: 2 } }; // λ ≡ 0: DDIM on the keyframes' grid
  await addRow('same keyframes, all skipped', skipOnly);

  const policy: ReusePolicy = {
    ...result.policy,
    meta: {
      tool: 'rediffuse autofr',
      model: source.label,
      ...source.meta,
      solver,
      ...budgetSteps,
      guidance: baseRun(opts.seed).guidance?.scale ?? (conditional && opts.guidance === 0 ? 0 : 1),
      budget,
      budgetKind: opts.budgetKind,
      cost: result.cost,
      objective: { train: rows[0]!.trainMse, heldout: rows[0]!.heldoutMse, metric: 'final-sample MSE vs full computation, same noise and labels' },
      seeds: { train: opts.seed, heldout: opts.heldoutSeed, samples: opts.samples, labels: source.labels },
      measured,
      comparison: rows,
      evaluations: result.evaluations,
      stopped: result.stopped,
      searchMs,
      searchLog: result.log,
    },
  };
  const output = writeFileAtomic(opts.out, `${JSON.stringify(policy, null, 2)}\n`);
  for (const net of nets.values()) await net.release();
  await source.release();
  const report: AutofrReport = {
    output,
    policy,
    budget,
    budgetKind: opts.budgetKind,
    measured,
    comparison: rows,
    evaluations: result.evaluations,
    stopped: result.stopped,
    searchMs,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatComparison(report)}\n`);
  return report;
}

/** The held-out comparison table. */
export function formatComparison(r: AutofrReport): string {
  const p = r.policy;
  const head =
    `wrote ${r.output}: ${p.keyframes.length} keyframes, mixing ${p.mixing ? `b=${p.mixing.bias}` : 'off'}, points ${Array.isArray(p.points) ? p.points.join(',') : p.points}; ` +
    `budget ${r.budget.toFixed(3)} (${r.budgetKind}), ${r.evaluations} evaluations in ${(r.searchMs / 1000).toFixed(1)} s (${r.stopped})`;
  const lines = [
    head,
    '',
    `${'policy'.padEnd(30)} ${'full'.padStart(4)} ${'reuse'.padStart(5)} ${'skip'.padStart(4)} ${'cost'.padStart(6)} ${'train MSE'.padStart(10)} ${'held-out MSE'.padStart(12)}`,
  ];
  for (const row of r.comparison) {
    lines.push(
      `${row.policy.padEnd(30)} ${String(row.keyframes).padStart(4)} ${String(row.reuse).padStart(5)} ${String(row.skip).padStart(4)} ${row.cost.toFixed(3).padStart(6)} ${row.trainMse.toExponential(2).padStart(10)} ${row.heldoutMse.toExponential(2).padStart(12)}`,
    );
  }
  return lines.join('\n');
}
