/**
 * FRDiff feature reuse for the command line: the `--fr-*` flags of `rediffuse sample`, reading
 * policy files, and the per-kind report every feature-reuse run prints. The setup itself is the
 * model layer's `createFeatureReuseSetup`.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
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
} from '../../core/index.js';
import {
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
    .addOption(new Option('--mix-temperature <T>', `score mixing: temperature T (default ${DEFAULT_SCORE_MIXING.temperature})`).argParser(numberArg(0)));
}

/** Whether any flag asks for feature reuse. */
export function wantsFeatureReuse(f: FeatureReuseFlags): boolean {
  return f.frInterval !== undefined || f.frPolicy !== undefined;
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
  if (wantsFeatureReuse(f)) return;
  const stray = [
    f.frPoints !== undefined ? '--fr-points' : '',
    f.mixing === false ? '--no-mixing' : '',
    f.mixBias !== undefined ? '--mix-bias' : '',
    f.mixTemperature !== undefined ? '--mix-temperature' : '',
  ].filter(Boolean);
  if (stray.length) {
    throw new CliError(
      `${stray.join(', ')} ${stray.length === 1 ? 'applies' : 'apply'} to feature reuse only: add --fr-interval M (a keyframe every M calls) or --fr-policy FILE, or drop ${stray.join(', ')}`,
    );
  }
}

/** The feature-reuse choice the flags ask for (the policy file read and validated, points normalised). */
export function reuseChoiceFromFlags(f: FeatureReuseFlags): ReuseChoice {
  const tuned = f.mixBias !== undefined || f.mixTemperature !== undefined;
  if (f.mixing === false && tuned) throw new CliError('--no-mixing turns score mixing off: drop --mix-bias/--mix-temperature, or drop --no-mixing');
  const mixing: ReuseChoice['mixing'] =
    f.mixing === false
      ? null
      : tuned
        ? { ...(f.mixBias !== undefined ? { bias: f.mixBias } : {}), ...(f.mixTemperature !== undefined ? { temperature: f.mixTemperature } : {}) }
        : undefined;
  let keyframes: KeyframeChoice;
  if (f.frPolicy !== undefined) keyframes = { policy: readReusePolicyFile(f.frPolicy) };
  else if (f.frInterval !== undefined) keyframes = { interval: f.frInterval };
  else throw new CliError('feature reuse needs --fr-interval M or --fr-policy FILE');
  let points: string | string[] | undefined;
  try {
    points = f.frPoints !== undefined ? normalizeReusePoints(f.frPoints) : undefined;
  } catch (err) {
    throw new CliError(`--fr-points: ${(err as Error).message}`);
  }
  return { keyframes, ...(mixing !== undefined ? { mixing } : {}), ...(points !== undefined ? { points } : {}) };
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
    report: () => featureReuseReport(setup, f.frPolicy ?? `uniform interval ${f.frInterval}`),
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
  };
}

/** One line for humans: `FRDiff: 17 full + 19 reuse calls, 14 skipped; cache 1.2 MiB; 9.1 / 3.2 ms per full / reuse call`. */
export function formatFeatureReuseLine(r: FeatureReuseReport): string {
  const mib = (r.cacheBytes / (1 << 20)).toFixed(2);
  return (
    `FRDiff (${Array.isArray(r.policy.points) ? r.policy.points.join(',') : r.policy.points}): ${r.fullCalls} full + ${r.reuseCalls} reuse calls, ${r.skippedSteps} skipped; ` +
    `cache ${mib} MiB; ${r.msPerKeyframe.toFixed(1)} / ${r.msPerReuse.toFixed(1)} ms per full / reuse call`
  );
}
