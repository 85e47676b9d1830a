/**
 * The benchmark grid: what `rediffuse bench` measures, declared as JSON or YAML.
 *
 * ```yaml
 * format: rediffuse-bench-grid/1
 * name: quick
 * model: fashion-unet          # a bundled model name, a path to an .onnx file, or "reference"
 * seeds: { seed: 0, count: 64, batch: 32 }
 * reference: { solver: ddim, nfe: 200 }     # high-accuracy run from the same noise and labels
 * metrics: { fd: true, accuracy: true, kid: false, trajectory: true, best: trajectory_mse }
 * guidance: [0, 2]             # 0 = unconditional, 1 = conditional, other = classifier-free guidance
 * runs:                        # sub-grids; each is the cross product of its lists
 *   - solvers: [ddim, dpmpp_2m]
 *     nfe: [4, 8]
 *     pfdiff: [none, 2_1, best]   # best = the best of the six k_h by metrics.best
 *     fr: [none]
 *   - solvers: [ddim]
 *     nfe: [12]
 *     fr: [none, { interval: 3 }, { interval: 3, mixing: true }, { policy: policies/auto.json }]
 *   - solvers: [dpmpp_2m]
 *     nfe: [20]
 *     fr: [{ interval: 2, forecast: 1 }, { interval: 3, forecast: { order: 2, time: lambda } }, { adaptive: 0.1, forecast: 1 }]
 *   - solvers: [dpmpp_2m, unipc]
 *     nfe: [6, 10]
 *     spacing: [card, flow_sigmas]  # the timestep spacing: the card's scheduler config (card), or a named one
 *   - solvers: [ipndm_v]
 *     nfe: [8, 10]
 *     pfdiff: [none, 2_1]
 *     options: { order: 2 }        # solver options, checked by each solver of the sub-grid
 * ```
 * A sub-grid may override `guidance`. A cell without solver options has no `options` field, so
 * stored cells keep their keys. The cells of all sub-grids are pooled and deduplicated. A cell
 * on the card's spacing has no `spacing` field, so adding spacings to a grid keeps its stored cells.
 * The reference run stays on the card's spacing, its grid moved to start where each cell starts.
 *
 * A pipeline folder (diffusers / Optimum ONNX layout) is benched with `pipeline` instead of `model`:
 * `pipeline: { dir: ../models/latent-unet, classPrompts: ../models/latent-captions.json }` (each
 * sample conditioned on its class's caption, the decoded images scored by the classifier; see
 * bench/latent-unet.json) or `pipeline: { dir, prompt: "a photo of a cat" }` (one prompt, trajectory
 * error only); `negativePrompt` (default "") is the guidance branch's prompt. Paths resolve against
 * the grid file's folder.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  DEFAULT_SCORE_MIXING,
  type ScoreMixing,
  formatKH,
  parseKH,
  PFDIFF_CONFIGS,
  validateForecastConfig,
  validateAdaptiveRecompute,
  type FeatureForecastConfig,
  type RecomputeAccumulation,
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
  getSolver,
} from '../core/index.js';

/** Grid file format tag. */
export const GRID_FORMAT = 'rediffuse-bench-grid/1';

/** All six PFDiff k_h settings (1 ≤ h ≤ k ≤ 3). */
export const ALL_KH: readonly string[] = PFDIFF_CONFIGS.map(formatKH);

/** Metrics by which `pfdiff: best` picks the winning k_h (lower is better). */
export const BEST_METRICS = ['trajectory_mse', 'fd'] as const;
/** One of {@link BEST_METRICS}. */
export type BestMetric = (typeof BEST_METRICS)[number];

/** A feature-reuse setting of a cell. */
export type FrSpec =
  | { kind: 'none' }
  /**
   * Keyframe every `interval` calls; `mixing` null = pure feature reuse. `space` is the quantity a
   * reuse or skipped call holds and mixes (and so what a multistep solver's history receives):
   * ε (the paper's, the default when absent) or the data prediction x̂0.
   */
  | {
      kind: 'interval';
      interval: number;
      mixing: ScoreMixing | null;
      points: string | string[];
      space?: 'epsilon' | 'sample';
      /** Forecast of the cached features (absent: stale, as FRDiff; order 0 is written as absent). */
      forecast?: FeatureForecastConfig;
    }
  /** A reuse-policy JSON file (e.g. written by `rediffuse autofr`), resolved to an absolute path. */
  | { kind: 'policy'; file: string }
  /**
   * Adaptive recompute (src/core/frdiff/adaptive-policy.ts): a probe at every call, a full call when
   * its signal moved by `threshold` δ (finite) since the last full call, a reuse call otherwise.
   */
  | {
      kind: 'adaptive';
      threshold: number;
      accumulate?: RecomputeAccumulation;
      warmup?: number;
      /** At most this many calls from one full call to the next. */
      maxInterval?: number;
      points: string | string[];
      /** The probe's signal tensor (absent: the first block's residual). */
      probe?: string;
      forecast?: FeatureForecastConfig;
    };

/** The seed set every cell samples from. */
export interface SeedSet {
  /** Seed of the initial noise: sample i uses the stream seedForSample(seed, i). */
  seed: number;
  /** Number of samples. */
  count: number;
  /** Samples per sampling run (the model batch). */
  batch: number;
}

/** The high-accuracy run that trajectory errors are measured against. */
export interface ReferenceRunSpec {
  solver: string;
  nfe: number;
}

/** Which metrics to compute. */
export interface MetricSpec {
  /** FD-classifier against the shipped test-set statistics. */
  fd: boolean;
  /** Class accuracy of conditional runs (guidance ≠ 0). */
  accuracy: boolean;
  /** KID against real test images (needs the Fashion-MNIST files). */
  kid: boolean;
  /** Trajectory MSE/PSNR against the reference run. */
  trajectory: boolean;
  /** The metric `pfdiff: best` minimises. */
  best: BestMetric;
}

/** One fully specified measurement. */
export interface CellSpec {
  solver: string;
  nfe: number;
  /** PFDiff k_h (e.g. `2_1`), or null for none. */
  pfdiff: string | null;
  fr: FrSpec;
  /** 0 = unconditional, 1 = conditional, other scales = classifier-free guidance (the 2B batch). */
  guidance: number;
  /** Timestep spacing instead of the card's scheduler config's (absent: the card's). */
  spacing?: TimestepSpacing;
  /** Solver options (e.g. `{ order: 2 }`); absent: the card's / the solver's defaults. */
  options?: SolverOptionValues;
}

/** Solver options of a sub-grid: option name → number, string or boolean. */
export type SolverOptionValues = Readonly<Record<string, number | string | boolean>>;

/** A sub-grid as declared (lists crossed). */
export interface RunSpec {
  solvers: string[];
  nfe: number[];
  /** `none`, a k_h, or `best`. */
  pfdiff: string[];
  fr: FrSpec[];
  guidance: number[];
  /** Timestep spacings; null = the card's. */
  spacing: (TimestepSpacing | null)[];
  /** Solver options for every solver of the sub-grid (absent: none). */
  options?: SolverOptionValues;
}

/** A pipeline folder to bench (instead of a model file), with its prompts. */
export interface PipelineSpec {
  /** The pipeline folder (absolute after validation). */
  dir: string;
  /** One prompt for every sample. Exactly one of `prompt` and `classPrompts`. */
  prompt?: string;
  /** A class-prompts file (absolute after validation; see src/bench/class-prompts.ts). */
  classPrompts?: string;
  /** The guidance branch's prompt (absent: ""). */
  negativePrompt?: string;
}

/** A validated grid. */
export interface BenchGrid {
  format: typeof GRID_FORMAT;
  name: string;
  title?: string;
  description?: string;
  /** `reference`, a bundled model name, or a path (resolved against the grid file's folder); a pipeline grid's folder. */
  model: string;
  /** A pipeline folder and its prompts, when the grid benches one (then `model` is its folder). */
  pipeline?: PipelineSpec;
  /** Threads for onnxruntime (default: its choice). */
  threads?: number;
  seeds: SeedSet;
  reference: ReferenceRunSpec;
  metrics: MetricSpec;
  runs: RunSpec[];
}

/** An error in a grid file: the message names the field and the fix. */
export class GridError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GridError';
  }
}

function fail(where: string, msg: string): never {
  throw new GridError(`${where}: ${msg}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posInt(v: unknown, where: string, fix: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(where, `must be an integer ≥ 1, got ${JSON.stringify(v)}; ${fix}`);
  return v;
}

function list<T>(v: unknown, where: string, item: (x: unknown, w: string) => T, fallback?: T[]): T[] {
  if (v === undefined && fallback) return fallback;
  const arr = Array.isArray(v) ? v : [v];
  if (arr.length === 0) fail(where, 'must not be empty; give at least one value');
  return arr.map((x, i) => item(x, `${where}[${i}]`));
}

function unknownKeys(o: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(where, `unknown key "${k}"; allowed keys are ${allowed.join(', ')}`);
  }
}

/** Parse a PFDiff entry: `none`, `best`, or k_h (1 ≤ h ≤ k ≤ 3). */
export function parsePfdiffEntry(v: unknown, where = 'pfdiff'): string {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : v === null ? 'none' : '';
  if (s === 'none' || s === 'best') return s;
  try {
    return formatKH(parseKH(s));
  } catch {
    return fail(where, `expected "none", "best" or k_h with 1 ≤ h ≤ k ≤ 3 (${ALL_KH.join(', ')}), got ${JSON.stringify(v)}`);
  }
}

/**
 * Parse a forecast entry: an order (0, 1, 2) or {order, time?, points?}. Order 0 without per-point
 * orders is FRDiff itself and returns undefined, so such cells keep the keys of cells without it.
 */
function parseForecastEntry(v: unknown, where: string): FeatureForecastConfig | undefined {
  if (v === undefined) return undefined;
  let config: FeatureForecastConfig;
  try {
    config = validateForecastConfig(typeof v === 'number' ? { order: v } : v);
  } catch (e) {
    return fail(where, `${(e as Error).message} (e.g. forecast: 1, or {order: 2, time: lambda, points: {gated-attention: 1}})`);
  }
  if (config.order === 0 && (!config.points || Object.values(config.points).every((o) => o === 0))) return undefined;
  return { order: config.order, ...(config.time ? { time: config.time } : {}), ...(config.points ? { points: { ...config.points } } : {}) };
}

function parsePoints(v: unknown, where: string): string | string[] {
  if (v === undefined) return 'frdiff';
  if (typeof v === 'string' && v !== '') return v;
  if (Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string')) return v as string[];
  return fail(where, 'must be a reuse-point preset (frdiff, residual, deepcache, dit) or a list of tensor names');
}

/** Parse a feature-reuse entry (`none`, `{interval, mixing?, points?, space?, forecast?}`, `{policy}`, `{adaptive: δ, …}`). */
export function parseFrEntry(v: unknown, where = 'fr', baseDir = process.cwd()): FrSpec {
  if (v === 'none' || v === null) return { kind: 'none' };
  if (typeof v === 'string') fail(where, `expected "none", {interval: M}, {adaptive: δ} or {policy: file}, got ${JSON.stringify(v)}`);
  if (!isObject(v)) fail(where, `expected "none", {interval: M, mixing?, points?, forecast?}, {adaptive: δ} or {policy: file}, got ${JSON.stringify(v)}`);
  if ('policy' in v) {
    unknownKeys(v, ['policy'], where);
    if (typeof v.policy !== 'string' || v.policy === '') fail(`${where}.policy`, 'must be the path of a reuse-policy JSON file');
    return { kind: 'policy', file: resolve(baseDir, v.policy) };
  }
  if ('adaptive' in v) {
    if ('interval' in v || 'mixing' in v) fail(where, 'adaptive recompute decides the keyframes and has no mixing: drop interval/mixing');
    unknownKeys(v, ['adaptive', 'accumulate', 'warmup', 'maxInterval', 'points', 'probe', 'forecast'], where);
    if (typeof v.adaptive !== 'number' || !Number.isFinite(v.adaptive) || v.adaptive < 0) {
      fail(`${where}.adaptive`, `must be a finite threshold δ ≥ 0 (the relative L1 change of the probe signal), got ${JSON.stringify(v.adaptive)}`);
    }
    try {
      validateAdaptiveRecompute({
        threshold: v.adaptive,
        ...(v.accumulate !== undefined ? { accumulate: v.accumulate } : {}),
        ...(v.warmup !== undefined ? { warmup: v.warmup } : {}),
        ...(v.maxInterval !== undefined ? { maxInterval: v.maxInterval } : {}),
      });
    } catch (e) {
      fail(where, (e as Error).message);
    }
    if (v.probe !== undefined && (typeof v.probe !== 'string' || v.probe === '')) fail(`${where}.probe`, 'must be the name of the signal tensor');
    const forecast = parseForecastEntry(v.forecast, `${where}.forecast`);
    return {
      kind: 'adaptive',
      threshold: v.adaptive,
      ...(v.accumulate === 'accumulated' ? { accumulate: 'accumulated' as const } : {}),
      ...(v.warmup !== undefined && v.warmup !== 1 ? { warmup: v.warmup as number } : {}),
      ...(v.maxInterval !== undefined ? { maxInterval: v.maxInterval as number } : {}),
      points: parsePoints(v.points, `${where}.points`),
      ...(typeof v.probe === 'string' ? { probe: v.probe } : {}),
      ...(forecast ? { forecast } : {}),
    };
  }
  unknownKeys(v, ['interval', 'mixing', 'points', 'space', 'forecast'], where);
  const interval = posInt(v.interval, `${where}.interval`, 'the keyframe interval M (1 = every call is a keyframe)');
  let mixing: ScoreMixing | null = null;
  if (v.mixing === true) mixing = { ...DEFAULT_SCORE_MIXING };
  else if (v.mixing === false || v.mixing === undefined || v.mixing === null) mixing = null;
  else if (isObject(v.mixing)) {
    unknownKeys(v.mixing, ['temperature', 'bias'], `${where}.mixing`);
    const t = v.mixing.temperature ?? DEFAULT_SCORE_MIXING.temperature;
    const b = v.mixing.bias ?? DEFAULT_SCORE_MIXING.bias;
    if (typeof t !== 'number' || !(t > 0)) fail(`${where}.mixing.temperature`, `must be a positive number, got ${JSON.stringify(t)}`);
    if (typeof b !== 'number' || !(b >= -1 && b <= 2)) fail(`${where}.mixing.bias`, `must be a number in [-1, 2], got ${JSON.stringify(b)}`);
    mixing = { temperature: t, bias: b };
  } else fail(`${where}.mixing`, `must be true, false or {temperature, bias}, got ${JSON.stringify(v.mixing)}`);
  const points = parsePoints(v.points, `${where}.points`);
  const forecast = parseForecastEntry(v.forecast, `${where}.forecast`);
  // ε is the default and is left out of the spec, so cells declared before `space` existed keep their keys.
  if (v.space !== undefined && v.space !== 'epsilon' && v.space !== 'sample') {
    fail(`${where}.space`, `must be "epsilon" (hold and mix ε̂, the paper's) or "sample" (hold and mix x̂0), got ${JSON.stringify(v.space)}`);
  }
  return { kind: 'interval', interval, mixing, points, ...(v.space === 'sample' ? { space: 'sample' as const } : {}), ...(forecast ? { forecast } : {}) };
}

/** Validate `grid.pipeline`: {dir, prompt | classPrompts, negativePrompt?}, paths resolved against `baseDir`. */
function pipelineSpec(v: unknown, baseDir: string): PipelineSpec {
  const w = 'grid.pipeline';
  if (!isObject(v))
    fail(w, 'must be {dir, classPrompts} or {dir, prompt}, e.g. {dir: ../models/latent-unet, classPrompts: ../models/latent-captions.json}');
  unknownKeys(v, ['dir', 'prompt', 'classPrompts', 'negativePrompt'], w);
  if (typeof v.dir !== 'string' || v.dir === '') fail(`${w}.dir`, 'must be the path of a pipeline folder (diffusers / Optimum ONNX layout)');
  if ((v.prompt === undefined) === (v.classPrompts === undefined)) {
    fail(
      w,
      v.prompt === undefined
        ? 'needs prompt (one prompt for every sample) or classPrompts (a caption per class, e.g. ../models/latent-captions.json)'
        : 'give prompt or classPrompts, not both',
    );
  }
  if (v.prompt !== undefined && (typeof v.prompt !== 'string' || v.prompt === '')) fail(`${w}.prompt`, 'must be a non-empty prompt');
  if (v.classPrompts !== undefined && (typeof v.classPrompts !== 'string' || v.classPrompts === ''))
    fail(`${w}.classPrompts`, 'must be the path of a class-prompts JSON file');
  if (v.negativePrompt !== undefined && typeof v.negativePrompt !== 'string') fail(`${w}.negativePrompt`, 'must be a string ("" for none)');
  return {
    dir: resolve(baseDir, v.dir),
    ...(typeof v.prompt === 'string' ? { prompt: v.prompt } : {}),
    ...(typeof v.classPrompts === 'string' ? { classPrompts: resolve(baseDir, v.classPrompts) } : {}),
    ...(typeof v.negativePrompt === 'string' ? { negativePrompt: v.negativePrompt } : {}),
  };
}

/**
 * Parse a sub-grid's solver options: an object of numbers, strings and booleans that every solver of
 * the sub-grid accepts (its own option rules; a solver name the registry does not know is left to
 * the runner's message). An empty object is no options.
 */
export function parseSolverOptions(v: unknown, solvers: readonly string[], where = 'options'): SolverOptionValues | undefined {
  if (!isObject(v)) fail(where, `must be an object of solver options, e.g. { "order": 2 }, got ${JSON.stringify(v)}`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'number' && typeof x !== 'string' && typeof x !== 'boolean')
      fail(`${where}.${k}`, `must be a number, string or boolean, got ${JSON.stringify(x)}`);
  }
  for (const name of solvers) {
    let spec;
    try {
      spec = getSolver(name);
    } catch {
      continue;
    }
    try {
      spec.resolveOptions(v);
    } catch (e) {
      fail(where, `${name}: ${(e as Error).message}`);
    }
  }
  return Object.keys(v).length > 0 ? (v as SolverOptionValues) : undefined;
}

/** Parse a spacing entry: `card` (or null: the card's scheduler config) or one of {@link TIMESTEP_SPACINGS}. */
export function parseSpacingEntry(v: unknown, where = 'spacing'): TimestepSpacing | null {
  if (v === null || v === 'card') return null;
  if (typeof v === 'string' && (TIMESTEP_SPACINGS as readonly string[]).includes(v)) return v as TimestepSpacing;
  return fail(where, `expected "card" (the card's scheduler config) or a timestep spacing (${TIMESTEP_SPACINGS.join(', ')}), got ${JSON.stringify(v)}`);
}

function guidanceValue(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    fail(where, `must be a number ≥ 0 (0 = unconditional, 1 = conditional, other = classifier-free guidance), got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Validate a parsed grid object. `baseDir` resolves relative model and policy paths (the grid
 * file's folder). Throws a {@link GridError} naming the field and the fix.
 */
export function validateGrid(raw: unknown, baseDir = process.cwd()): BenchGrid {
  if (!isObject(raw)) fail('grid', 'expected an object (see bench/quick.json for an example)');
  unknownKeys(
    raw,
    ['format', 'name', 'title', 'description', 'model', 'pipeline', 'threads', 'seeds', 'reference', 'metrics', 'guidance', 'runs'],
    'grid',
  );
  if (raw.format !== undefined && raw.format !== GRID_FORMAT) fail('grid.format', `must be "${GRID_FORMAT}", got ${JSON.stringify(raw.format)}`);
  const name = raw.name ?? 'bench';
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name))
    fail('grid.name', `must be a simple name (letters, digits, . _ -), got ${JSON.stringify(name)}`);
  const pipeline = raw.pipeline !== undefined ? pipelineSpec(raw.pipeline, baseDir) : undefined;
  if (pipeline && raw.model !== undefined) fail('grid.model', 'a pipeline grid names its model in pipeline.dir: drop model');
  const model = pipeline?.dir ?? raw.model ?? 'fashion-unet';
  if (typeof model !== 'string' || model === '')
    fail('grid.model', 'must be "reference", a bundled model name (fashion-unet, fashion-dit) or an .onnx path');
  const modelResolved = model.endsWith('.onnx') ? resolve(baseDir, model) : model;
  let threads: number | undefined;
  if (raw.threads !== undefined) threads = posInt(raw.threads, 'grid.threads', 'onnxruntime intra-op threads');

  if (!isObject(raw.seeds)) fail('grid.seeds', 'must be {seed, count, batch}');
  unknownKeys(raw.seeds, ['seed', 'count', 'batch'], 'grid.seeds');
  const seed = raw.seeds.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) fail('grid.seeds.seed', `must be an integer ≥ 0, got ${JSON.stringify(seed)}`);
  const count = posInt(raw.seeds.count, 'grid.seeds.count', 'the number of samples per cell');
  const batch = posInt(raw.seeds.batch ?? Math.min(count, 64), 'grid.seeds.batch', 'samples per sampling run');
  if (batch > count) fail('grid.seeds.batch', `(${batch}) exceeds count (${count}); use batch ≤ count`);

  const refRaw = raw.reference ?? { solver: 'ddim', nfe: 200 };
  if (!isObject(refRaw)) fail('grid.reference', 'must be {solver, nfe}, e.g. {solver: ddim, nfe: 1000}');
  unknownKeys(refRaw, ['solver', 'nfe'], 'grid.reference');
  if (typeof refRaw.solver !== 'string') fail('grid.reference.solver', 'must be a solver name, e.g. ddim or dpmpp_2m');
  const reference = { solver: refRaw.solver, nfe: posInt(refRaw.nfe, 'grid.reference.nfe', 'use a high NFE, e.g. 200 or 1000') };

  const mRaw = raw.metrics ?? {};
  if (!isObject(mRaw)) fail('grid.metrics', 'must be an object {fd, accuracy, kid, trajectory, best}');
  unknownKeys(mRaw, ['fd', 'accuracy', 'kid', 'trajectory', 'best'], 'grid.metrics');
  const flag = (k: string, d: boolean): boolean => {
    const v = mRaw[k] ?? d;
    if (typeof v !== 'boolean') fail(`grid.metrics.${k}`, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const best = mRaw.best ?? 'trajectory_mse';
  if (!(BEST_METRICS as readonly unknown[]).includes(best))
    fail('grid.metrics.best', `must be one of ${BEST_METRICS.join(', ')}, got ${JSON.stringify(best)}`);
  const metrics: MetricSpec = {
    fd: flag('fd', true),
    accuracy: flag('accuracy', true),
    kid: flag('kid', false),
    trajectory: flag('trajectory', true),
    best: best as BestMetric,
  };
  if (metrics.best === 'trajectory_mse' && !metrics.trajectory)
    fail('grid.metrics.best', '"trajectory_mse" needs metrics.trajectory: true; enable it or pick best: fd');
  if (metrics.best === 'fd' && !metrics.fd) fail('grid.metrics.best', '"fd" needs metrics.fd: true; enable it or pick best: trajectory_mse');

  const topGuidance = list(raw.guidance, 'grid.guidance', guidanceValue, [0]);
  if (!Array.isArray(raw.runs) || raw.runs.length === 0)
    fail('grid.runs', 'must be a non-empty list of sub-grids {solvers, nfe, pfdiff?, fr?, guidance?, spacing?, options?}');
  const runs = raw.runs.map((r, i): RunSpec => {
    const w = `grid.runs[${i}]`;
    if (!isObject(r)) fail(w, 'must be an object {solvers, nfe, pfdiff?, fr?, guidance?, spacing?, options?}');
    unknownKeys(r, ['solvers', 'nfe', 'pfdiff', 'fr', 'guidance', 'spacing', 'options'], w);
    const solvers = list(r.solvers, `${w}.solvers`, (x, ww) => {
      if (typeof x !== 'string' || x === '') fail(ww, 'must be a solver name');
      return x;
    });
    const nfe = list(r.nfe, `${w}.nfe`, (x, ww) => posInt(x, ww, 'the model-call budget'));
    const pfdiff = list(r.pfdiff, `${w}.pfdiff`, parsePfdiffEntry, ['none']);
    const fr = list(r.fr, `${w}.fr`, (x, ww) => parseFrEntry(x, ww, baseDir), [{ kind: 'none' }]);
    const guidance = list(r.guidance, `${w}.guidance`, guidanceValue, topGuidance);
    const spacing = list(r.spacing, `${w}.spacing`, parseSpacingEntry, [null]);
    const options = r.options === undefined ? undefined : parseSolverOptions(r.options, solvers, `${w}.options`);
    return { solvers, nfe, pfdiff, fr, guidance, spacing, ...(options ? { options } : {}) };
  });
  return {
    format: GRID_FORMAT,
    name,
    ...(typeof raw.title === 'string' ? { title: raw.title } : {}),
    ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    model: modelResolved,
    ...(pipeline ? { pipeline } : {}),
    ...(threads !== undefined ? { threads } : {}),
    seeds: { seed, count, batch },
    reference,
    metrics,
    runs,
  };
}

/** Parse grid text (JSON, or YAML when `path` ends in .yaml/.yml or the text is not JSON). */
export function parseGridText(text: string, path = '(inline)', baseDir = process.cwd()): BenchGrid {
  let raw: unknown;
  const yamlFile = /\.ya?ml$/i.test(path);
  try {
    raw = yamlFile ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    if (yamlFile) throw new GridError(`${path}: not valid YAML (${(e as Error).message}); fix the syntax`);
    try {
      raw = parseYaml(text);
    } catch {
      throw new GridError(`${path}: not valid JSON (${(e as Error).message}); fix the syntax`);
    }
  }
  try {
    return validateGrid(raw, baseDir);
  } catch (e) {
    if (e instanceof GridError) throw new GridError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Read and validate a grid file (.json, .yaml or .yml); relative paths inside resolve against its folder. */
export function loadGridFile(path: string): BenchGrid {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new GridError(`grid file ${path} cannot be read; pass an existing file (e.g. bench/quick.json)`);
  }
  return parseGridText(text, path, dirname(resolve(path)));
}

/** The concrete k_h list of a PFDiff entry (`best` → all six, `none` → [null]). */
export function expandPfdiff(entry: string): (string | null)[] {
  if (entry === 'none') return [null];
  if (entry === 'best') return [...ALL_KH];
  return [entry];
}

/** All concrete cells of a grid (deduplicated, in declaration order). */
export function expandCells(grid: BenchGrid): CellSpec[] {
  const out: CellSpec[] = [];
  const seen = new Set<string>();
  for (const r of grid.runs) {
    for (const guidance of r.guidance)
      for (const spacing of r.spacing)
        for (const solver of r.solvers)
          for (const nfe of r.nfe)
            for (const entry of r.pfdiff)
              for (const pfdiff of expandPfdiff(entry))
                for (const fr of r.fr) {
                  const cell: CellSpec = {
                    solver,
                    nfe,
                    pfdiff,
                    fr,
                    guidance,
                    ...(spacing ? { spacing } : {}),
                    ...(r.options ? { options: r.options } : {}),
                  };
                  const id = JSON.stringify(cell);
                  if (seen.has(id)) continue;
                  seen.add(id);
                  out.push(cell);
                }
  }
  return out;
}

/** The `best` rows a grid asks for: (solver, options, nfe, fr, guidance, spacing) groups whose k_h winner is reported. */
export function bestGroups(grid: BenchGrid): Omit<CellSpec, 'pfdiff'>[] {
  const out: Omit<CellSpec, 'pfdiff'>[] = [];
  const seen = new Set<string>();
  for (const r of grid.runs) {
    if (!r.pfdiff.includes('best')) continue;
    for (const guidance of r.guidance)
      for (const spacing of r.spacing)
        for (const solver of r.solvers)
          for (const nfe of r.nfe)
            for (const fr of r.fr) {
              const g = { solver, nfe, fr, guidance, ...(spacing ? { spacing } : {}), ...(r.options ? { options: r.options } : {}) };
              const id = JSON.stringify(g);
              if (!seen.has(id)) {
                seen.add(id);
                out.push(g);
              }
            }
  }
  return out;
}

/** An identity of solver options for comparisons (key order does not matter; '' for none). */
export function optionsId(o: SolverOptionValues | undefined): string {
  return o ? JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : '';
}

/**
 * The identity of a cell's settings without one of them, for matching cells: without `fr`, the sampling
 * run an FR cell shares with its full-compute baseline; without `pfdiff`, the group whose k_h winner a
 * `best` row reports.
 */
export function settingsId(s: Omit<CellSpec, 'pfdiff'> & { pfdiff?: string | null }, without: 'fr' | 'pfdiff'): string {
  const rest = without === 'fr' ? { pfdiff: s.pfdiff ?? null } : { fr: s.fr };
  return JSON.stringify({ solver: s.solver, nfe: s.nfe, guidance: s.guidance, spacing: s.spacing ?? null, options: optionsId(s.options), ...rest });
}

/** A short human label of a cell, e.g. `ddim+PFDiff-2_1 @8 FR/3+mix g2`. */
export function cellLabel(c: CellSpec): string {
  return `${methodLabel(c)} @${c.nfe}${c.guidance === 0 ? '' : ` g${c.guidance}`}`;
}

/**
 * The method part of a label (solver, its options and spacing, PFDiff, FR), e.g. `ddim + PFDiff-2_1 + FR/3 mix`,
 * `unipc (flow_sigmas)`, `ipndm_v [order=2] + PFDiff-2_1`.
 */
export function methodLabel(c: Pick<CellSpec, 'solver' | 'pfdiff' | 'fr' | 'spacing' | 'options'>): string {
  const opts = c.options
    ? ` [${Object.entries(c.options)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')}]`
    : '';
  const solver = `${c.solver}${opts}${c.spacing ? ` (${c.spacing})` : ''}`;
  return [solver, c.pfdiff ? `PFDiff-${c.pfdiff}` : '', frLabel(c.fr)].filter((s) => s !== '').join(' + ');
}

/** A short label of a feature-reuse setting ('' for none). */
export function frLabel(fr: FrSpec): string {
  if (fr.kind === 'none') return '';
  if (fr.kind === 'policy') return `FR policy ${fr.file.split(/[\\/]/).pop()}`;
  const pts = typeof fr.points === 'string' ? (fr.points === 'frdiff' ? '' : ` ${fr.points}`) : ` [${fr.points.length} tensors]`;
  const fc = fr.forecast ? ` fc${fr.forecast.order}${fr.forecast.time === 'lambda' ? 'λ' : ''}${fr.forecast.points ? '*' : ''}` : '';
  if (fr.kind === 'adaptive')
    return `FR adaptive δ=${fr.threshold}${fr.accumulate === 'accumulated' ? ' acc' : ''}${fr.maxInterval ? ` ≤${fr.maxInterval}` : ''}${pts}${fc}`;
  return `FR/${fr.interval}${fr.mixing ? ' mix' : ''}${pts}${fr.space === 'sample' ? ' x̂0-held' : ''}${fc}`;
}
