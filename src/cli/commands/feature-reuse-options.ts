/**
 * FRDiff feature reuse for the command line: the `--fr-*` flags of `rediffuse sample`, reading
 * policy files, and the per-kind report every feature-reuse run prints. The setup itself is the
 * model layer's `createFeatureReuseSetup`.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  type FeatureReuseModel,
  countCalls,
  layoutReusePolicy,
  validateReusePolicy,
  type KeyframeChoice,
  type ReuseChoice,
  type ReusePolicy,
  DEFAULT_SCORE_MIXING,
  type ScoreMixing,
  type SampleOptions,
  type AdaptiveRecompute,
  type AdaptiveReuseStats,
  type FeatureForecastConfig,
  type ForecastOrder,
  type ForecastTime,
} from '../../core/index.js';
import {
  type FeatureReuseChoice,
  type FeatureReuseOnnxModel,
  type FeatureReuseRunSetup,
  createFeatureReuseSetup,
  normalizeReusePoints,
  type ModelCard,
  type OrtModuleLike,
} from '../../model/index.js';
import { readModelBytes } from '../../node/index.js';
import { CliError, intArg, numberArg } from '../cli-error.js';

/** The `--fr-*` flags as commander parses them. */
export interface FeatureReuseFlags {
  /** `--fr-interval M`: a keyframe every M calls. */
  frInterval?: number;
  /** `--fr-policy FILE`: a policy JSON (e.g. written by `rediffuse autofr`). */
  frPolicy?: string;
  /** `--fr-points NAME`: reuse points (`frdiff`, `residual`, `deepcache[:N]`, or tensor names). */
  frPoints?: string;
  /** `--no-mixing` sets this to false. */
  mixing?: boolean;
  /** `--mix-bias b`. */
  mixBias?: number;
  /** `--mix-temperature T`. */
  mixTemperature?: number;
  /** `--fr-forecast K`: forecast the cached features with order K (0 = FRDiff's stale features). */
  frForecast?: ForecastOrder;
  /** `--fr-forecast-time lambda|t`. */
  frForecastTime?: ForecastTime;
  /** `--fr-forecast-points NAME=K,…`: per reuse point (tensor name or point kind) orders. */
  frForecastPoints?: Record<string, ForecastOrder>;
  /** `--fr-adaptive δ`: adaptive recompute with threshold δ instead of fixed keyframes. */
  frAdaptive?: number;
  /** `--fr-adaptive-mode plain|accumulated`. */
  frAdaptiveMode?: 'plain' | 'accumulated';
  /** `--fr-probe TENSOR`: the adaptive probe's signal tensor. */
  frProbe?: string;
}

function forecastOrderArg(value: string): ForecastOrder {
  if (!['0', '1', '2'].includes(value.trim())) throw new InvalidArgumentError(`expected 0, 1 or 2 (the forecast order), got "${value}".`);
  return Number(value) as ForecastOrder;
}

function forecastPointsArg(value: string): Record<string, ForecastOrder> {
  const out: Record<string, ForecastOrder> = {};
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(.+)=([012])$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected NAME=K entries (a tensor name or point kind, K = 0, 1 or 2), got "${part}".`);
    out[m[1]!.trim()] = Number(m[2]) as ForecastOrder;
  }
  if (Object.keys(out).length === 0) throw new InvalidArgumentError('expected one or more NAME=K entries.');
  return out;
}

function thresholdArg(value: string): number {
  const v = /^(inf|infinity)$/i.test(value.trim()) ? Infinity : Number(value);
  if (value.trim() === '' || Number.isNaN(v) || v < 0) throw new InvalidArgumentError(`expected a threshold δ ≥ 0 (or inf), got "${value}".`);
  return v;
}

/** Add the `--fr-*` flags to a command. */
export function addFeatureReuseOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--fr-interval <M>', 'FRDiff feature reuse: a keyframe (full call) every M model calls, the others reuse cached features').argParser(
        intArg(1),
      ),
    )
    .addOption(
      new Option('--fr-policy <file>', 'FRDiff feature reuse: a reuse-policy JSON (rediffuse-reuse-policy/1, e.g. from rediffuse autofr)').conflicts(
        'frInterval',
      ),
    )
    .addOption(
      new Option(
        '--fr-points <name>',
        'reuse points: frdiff (default), residual, deepcache, deepcache:N, dit (transformers: attention + MLP branches, SD3), or tensor names as rediffuse inspect prints them (comma-separated)',
      ),
    )
    .addOption(new Option('--no-mixing', 'FRDiff: no score mixing (every non-keyframe call is a reuse call)'))
    .addOption(
      new Option('--mix-bias <b>', `score mixing: centre b of the hard sigmoid (default ${DEFAULT_SCORE_MIXING.bias})`).argParser(numberArg(-1, 2)),
    )
    .addOption(new Option('--mix-temperature <T>', `score mixing: temperature T (default ${DEFAULT_SCORE_MIXING.temperature})`).argParser(numberArg(0)))
    .addOption(
      new Option(
        '--fr-forecast <K>',
        'feature reuse: forecast cached features at reuse calls with order K over the last keyframes (0 = stale, as FRDiff)',
      ).argParser(forecastOrderArg),
    )
    .addOption(new Option('--fr-forecast-time <time>', 'time of the forecast: t (schedule time, default) or lambda (log α/σ)').choices(['t', 'lambda']))
    .addOption(
      new Option('--fr-forecast-points <list>', 'per reuse point forecast orders NAME=K,… (tensor names or kinds, e.g. gated-attention=2)').argParser(
        forecastPointsArg,
      ),
    )
    .addOption(
      new Option(
        '--fr-adaptive <delta>',
        'feature reuse with adaptive recompute: a full call when the probe signal moved by δ (relative L1) since the last one (with --fr-interval M: also at least every M calls)',
      )
        .argParser(thresholdArg)
        .conflicts('frPolicy'),
    )
    .addOption(
      new Option(
        '--fr-adaptive-mode <mode>',
        'adaptive recompute: plain (change since the last full call, FBCache; default) or accumulated (TeaCache)',
      ).choices(['plain', 'accumulated']),
    )
    .addOption(new Option('--fr-probe <tensor>', "adaptive recompute: the probe's signal tensor (default the first block's residual)"));
}

/** Whether any flag asks for feature reuse. */
export function wantsFeatureReuse(f: FeatureReuseFlags): boolean {
  return f.frInterval !== undefined || f.frPolicy !== undefined || f.frAdaptive !== undefined;
}

/** Read and validate a policy file; errors name the file and the fix. */
export function readReusePolicyFile(path: string, expectedCalls?: number): ReusePolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT'
        ? `reuse policy ${path} does not exist; pass --fr-policy with a policy JSON written by rediffuse autofr`
        : `cannot read reuse policy ${path}: ${(err as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`reuse policy ${path} is not valid JSON (${(err as Error).message}); pass a file written by rediffuse autofr`);
  }
  try {
    return validateReusePolicy(json, expectedCalls);
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
}

/** Refuse FR flags that would be ignored: reuse points or mixing without a keyframe choice. */
export function checkFeatureReuseFlags(f: FeatureReuseFlags): void {
  const forecastOnly = [
    f.frForecastTime !== undefined ? '--fr-forecast-time' : '',
    f.frForecastPoints !== undefined ? '--fr-forecast-points' : '',
  ].filter(Boolean);
  if (forecastOnly.length && f.frForecast === undefined) {
    throw new CliError(
      `${forecastOnly.join(', ')} ${forecastOnly.length === 1 ? 'sets' : 'set'} up a feature forecast: add --fr-forecast K, or drop ${forecastOnly.join(', ')}`,
    );
  }
  const adaptiveOnly = [f.frAdaptiveMode !== undefined ? '--fr-adaptive-mode' : '', f.frProbe !== undefined ? '--fr-probe' : ''].filter(Boolean);
  if (adaptiveOnly.length && f.frAdaptive === undefined) {
    throw new CliError(
      `${adaptiveOnly.join(', ')} ${adaptiveOnly.length === 1 ? 'applies' : 'apply'} to adaptive recompute only: add --fr-adaptive δ, or drop ${adaptiveOnly.join(', ')}`,
    );
  }
  if (f.frAdaptive !== undefined) {
    if (f.frPolicy !== undefined) {
      throw new CliError('--fr-adaptive decides the keyframes during the run: drop --fr-policy, or drop --fr-adaptive');
    }
    const mix = [
      f.mixing === false ? '--no-mixing' : '',
      f.mixBias !== undefined ? '--mix-bias' : '',
      f.mixTemperature !== undefined ? '--mix-temperature' : '',
    ].filter(Boolean);
    if (mix.length) throw new CliError(`--fr-adaptive has no score mixing (every call runs the full or the reuse graph): drop ${mix.join(', ')}`);
  }
  if (wantsFeatureReuse(f)) return;
  const stray = [
    f.frPoints !== undefined ? '--fr-points' : '',
    f.mixing === false ? '--no-mixing' : '',
    f.mixBias !== undefined ? '--mix-bias' : '',
    f.mixTemperature !== undefined ? '--mix-temperature' : '',
    f.frForecast !== undefined ? '--fr-forecast' : '',
  ].filter(Boolean);
  if (stray.length) {
    throw new CliError(
      `${stray.join(', ')} ${stray.length === 1 ? 'applies' : 'apply'} to feature reuse only: add --fr-interval M (a keyframe every M calls), --fr-policy FILE or --fr-adaptive δ, or drop ${stray.join(', ')}`,
    );
  }
}

/** The forecast the flags ask for, or undefined without `--fr-forecast`. */
export function forecastFromFlags(f: FeatureReuseFlags): FeatureForecastConfig | undefined {
  if (f.frForecast === undefined) return undefined;
  return {
    order: f.frForecast,
    ...(f.frForecastTime !== undefined ? { time: f.frForecastTime } : {}),
    ...(f.frForecastPoints !== undefined ? { points: { ...f.frForecastPoints } } : {}),
  };
}

/** The adaptive recompute the flags ask for, or undefined without `--fr-adaptive`. */
export function adaptiveFromFlags(f: FeatureReuseFlags): AdaptiveRecompute | undefined {
  if (f.frAdaptive === undefined) return undefined;
  return {
    threshold: f.frAdaptive,
    ...(f.frAdaptiveMode !== undefined ? { accumulate: f.frAdaptiveMode } : {}),
    ...(f.frInterval !== undefined ? { maxInterval: f.frInterval } : {}),
  };
}

/**
 * The feature-reuse choice the flags ask for (the policy file read and validated, points
 * normalised), with the forecast and the adaptive probe signal when asked for.
 */
export function reuseChoiceFromFlags(f: FeatureReuseFlags): FeatureReuseChoice {
  checkFeatureReuseFlags(f);
  const tuned = f.mixBias !== undefined || f.mixTemperature !== undefined;
  if (f.mixing === false && tuned) throw new CliError('--no-mixing turns score mixing off: drop --mix-bias/--mix-temperature, or drop --no-mixing');
  const mixing: ReuseChoice['mixing'] =
    f.mixing === false
      ? null
      : tuned
        ? { ...(f.mixBias !== undefined ? { bias: f.mixBias } : {}), ...(f.mixTemperature !== undefined ? { temperature: f.mixTemperature } : {}) }
        : undefined;
  let keyframes: KeyframeChoice;
  const adaptive = adaptiveFromFlags(f);
  if (f.frPolicy !== undefined) keyframes = { policy: readReusePolicyFile(f.frPolicy) };
  else if (adaptive) keyframes = { adaptive };
  else if (f.frInterval !== undefined) keyframes = { interval: f.frInterval };
  else throw new CliError('feature reuse needs --fr-interval M, --fr-policy FILE or --fr-adaptive δ');
  const forecast = forecastFromFlags(f);
  let points: string | string[] | undefined;
  try {
    points = f.frPoints !== undefined ? normalizeReusePoints(f.frPoints) : undefined;
  } catch (err) {
    throw new CliError(`--fr-points: ${(err as Error).message}`);
  }
  return {
    keyframes,
    ...(mixing !== undefined ? { mixing } : {}),
    ...(points !== undefined ? { points } : {}),
    ...(forecast ? { forecast } : {}),
    ...(f.frProbe !== undefined ? { probe: f.frProbe } : {}),
  };
}

/** Where a run's keyframes came from, for reports: the policy file, `uniform interval M` or `adaptive δ=…`. */
export function reuseSourceOf(f: FeatureReuseFlags): string {
  if (f.frPolicy !== undefined) return f.frPolicy;
  if (f.frAdaptive !== undefined)
    return `adaptive δ=${f.frAdaptive} (${f.frAdaptiveMode ?? 'plain'}${f.frInterval !== undefined ? `, at most ${f.frInterval} calls apart` : ''})`;
  return `uniform interval ${f.frInterval}`;
}

/** The policy of a run from the flags; `calls` is the run's number of model calls. */
export function policyFromFlags(f: FeatureReuseFlags, calls: number): ReusePolicy {
  const choice = reuseChoiceFromFlags(f);
  try {
    return layoutReusePolicy(choice, calls);
  } catch (err) {
    throw new CliError(`${f.frPolicy ?? '--fr-interval'}: ${(err as Error).message}`);
  }
}

/** The feature-reuse part of a run's JSON report. */
export interface FeatureReuseReport {
  policy: { calls: number; keyframes: number[]; mixing: ScoreMixing | null; points: string | string[]; source: string };
  /** Full (keyframe) calls, reuse calls, and skipped calls (no network call). */
  fullCalls: number;
  reuseCalls: number;
  skippedSteps: number;
  /** The policy's counts, as planned. */
  planned: { keyframe: number; reuse: number; skip: number };
  /** The cached tensors. */
  points: { name: string; kind: string; shape: number[] }[];
  /** Peak bytes of the feature cache during the run, and per network sample. */
  cacheBytes: number;
  cacheBytesPerSample: number;
  /** Share of the full model's MACs a reuse call still runs (graph count). */
  reuseMacsRatio: number;
  /** Wall time per kind, ms (total and mean per call). */
  keyframeMs: number;
  reuseMs: number;
  msPerKeyframe: number;
  msPerReuse: number;
  /** Probe calls of adaptive recompute and their time, ms (0 without). */
  probeCalls: number;
  probeMs: number;
  /** Call indices that ran full (adaptive recompute decides them during the run). */
  fullCallIndices: number[];
  /** The forecast of the cached features (null: stale, as FRDiff), tensors forecast and the time of that arithmetic, ms. */
  forecast: FeatureForecastConfig | null;
  forecastTensors: number;
  forecastMs: number;
  /** The adaptive policy, or null. */
  adaptive: AdaptiveRecompute | null;
}

/** A feature-reuse model for one `sample` run, with its report. */
export interface FeatureReuseRun {
  model: FeatureReuseModel;
  net: FeatureReuseOnnxModel;
  policy: ReusePolicy;
  /** Warnings for stderr (e.g. a policy searched for another solver). */
  notes: string[];
  report(): FeatureReuseReport;
  release(): Promise<void>;
}

/**
 * Set up feature reuse for a `sample` run from the flags (through `createFeatureReuseSetup`: the
 * run's calls, the policy over them, the graphs for its reuse points, the wrapper).
 */
export async function setupFeatureReuse(
  f: FeatureReuseFlags,
  run: Omit<SampleOptions, 'model'>,
  load: { modelPath: string; card?: ModelCard; maxBatch?: number; threads?: number; ort?: OrtModuleLike },
): Promise<FeatureReuseRun> {
  const choice = reuseChoiceFromFlags(f);
  const ort: OrtModuleLike = load.ort ?? ((await import('onnxruntime-node')) as unknown as OrtModuleLike);
  let setup: Awaited<ReturnType<typeof createFeatureReuseSetup>>;
  try {
    setup = await createFeatureReuseSetup({
      ort,
      model: readModelBytes(load.modelPath),
      label: load.modelPath,
      ...(load.card ? { card: load.card } : {}),
      ...(load.maxBatch !== undefined ? { maxBatch: load.maxBatch } : {}),
      ...(load.threads !== undefined ? { threads: load.threads } : {}),
      run,
      ...choice,
    });
  } catch (err) {
    throw new CliError(
      f.frPolicy !== undefined && /reuse policy/.test((err as Error).message) ? `${f.frPolicy}: ${(err as Error).message}` : (err as Error).message,
    );
  }
  const { model, net, policy } = setup;
  return {
    model,
    net,
    policy,
    notes: setup.notes,
    report: () => featureReuseReport(setup, reuseSourceOf(f)),
    release: () => net.release(),
  };
}

/**
 * The report of a feature-reuse run (after `sample()`): calls by kind from the wrapper's stats
 * (full, reuse, skipped), the policy as planned, the cached tensors and their memory, ms per kind.
 * `source` says where the keyframes came from (the policy file, or `uniform interval M`).
 */
export function featureReuseReport(
  setup: Pick<FeatureReuseRunSetup<FeatureReuseOnnxModel>, 'model' | 'net' | 'policy'>,
  source: string,
): FeatureReuseReport {
  const { model, net, policy } = setup;
  const s = model.stats;
  const ns = net.stats;
  const ad = 'probe' in s ? (s as AdaptiveReuseStats) : null;
  return {
    policy: { calls: policy.calls, keyframes: policy.keyframes, mixing: policy.mixing, points: net.pointsName, source },
    fullCalls: s.keyframe,
    reuseCalls: s.reuse,
    skippedSteps: s.skip,
    planned: countCalls(policy),
    points: net.points.map((p) => ({ name: p.name, kind: p.kind, shape: p.shape })),
    cacheBytes: ns.peakCacheBytes,
    cacheBytesPerSample: ns.cacheBytesPerSample,
    reuseMacsRatio: ns.reuseMacsRatio,
    keyframeMs: s.keyframeMs,
    reuseMs: s.reuseMs,
    msPerKeyframe: s.keyframe ? s.keyframeMs / s.keyframe : 0,
    msPerReuse: s.reuse ? s.reuseMs / s.reuse : 0,
    probeCalls: ad ? ad.probe : 0,
    probeMs: ad ? ad.probeMs : 0,
    fullCallIndices: ad ? [...ad.keyframes] : policy.keyframes.filter((k) => k < policy.calls),
    forecast: net.forecast ?? null,
    forecastTensors: ns.forecast.tensors,
    forecastMs: ns.forecast.ms,
    adaptive: (policy.meta?.['adaptive'] as AdaptiveRecompute | undefined) ?? null,
  };
}

/** One line for humans: `FRDiff: 17 full + 19 reuse calls, 14 skipped; cache 1.2 MiB; 9.1 / 3.2 ms per full / reuse call`. */
export function formatFeatureReuseLine(r: FeatureReuseReport): string {
  const mib = (r.cacheBytes / (1 << 20)).toFixed(2);
  return (
    `FRDiff (${Array.isArray(r.policy.points) ? r.policy.points.join(',') : r.policy.points}): ${r.fullCalls} full + ${r.reuseCalls} reuse calls, ${r.skippedSteps} skipped; ` +
    `cache ${mib} MiB; ${r.msPerKeyframe.toFixed(1)} / ${r.msPerReuse.toFixed(1)} ms per full / reuse call` +
    (r.probeCalls ? `; ${r.probeCalls} probes (${r.probeMs.toFixed(0)} ms)` : '') +
    (r.forecast ? `; forecast order ${r.forecast.order} in ${r.forecast.time ?? 't'} (${r.forecastMs.toFixed(1)} ms)` : '')
  );
}
