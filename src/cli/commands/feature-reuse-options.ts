/**
 * FRDiff feature reuse for the command line: the `--fr-*` flags of `rediffuse sample` (and `bench`),
 * loading a {@link FeatureReuseOnnxModel} per reuse-points option, reading policy files, and the
 * per-kind report every feature-reuse run prints.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  withFeatureReuse,
  type FeatureReuseModel,
  plannedCalls,
  countCalls,
  uniformPolicy,
  validateReusePolicy,
  type ReusePolicy,
  DEFAULT_SCORE_MIXING,
  validateScoreMixing,
  type ScoreMixing,
  type SampleOptions,
} from '../../core/index.js';
import {
  FeatureReuseOnnxModel,
  reusePointsName,
  type ReusePointsSpec,
  type ModelCard,
  analyzeOnnxModel,
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
    .addOption(new Option('--fr-interval <M>', 'FRDiff feature reuse: a keyframe (full call) every M model calls, the others reuse cached features').argParser(intArg(1)))
    .addOption(new Option('--fr-policy <file>', 'FRDiff feature reuse: a reuse-policy JSON (rediffuse-reuse-policy/1, e.g. from rediffuse autofr)').conflicts('frInterval'))
    .addOption(new Option('--fr-points <name>', "reuse points: frdiff (default), residual, deepcache, deepcache:N, or comma-separated tensor names"))
    .addOption(new Option('--no-mixing', 'FRDiff: no score mixing (every non-keyframe call is a reuse call)'))
    .addOption(new Option('--mix-bias <b>', `score mixing: centre b of the hard sigmoid (default ${DEFAULT_SCORE_MIXING.bias})`).argParser(numberArg(-1, 2)))
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
    throw new CliError(code === 'ENOENT' ? `reuse policy ${path} does not exist; pass --fr-policy with a policy JSON written by rediffuse autofr` : `cannot read reuse policy ${path}: ${(err as Error).message}`);
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

/** The mixing the flags ask for, on top of `base` (a policy file's, else the defaults). */
function mixingFrom(f: FeatureReuseFlags, base: ScoreMixing | null): ScoreMixing | null {
  const tuned = f.mixBias !== undefined || f.mixTemperature !== undefined;
  if (f.mixing === false) {
    if (tuned) throw new CliError('--no-mixing turns score mixing off: drop --mix-bias/--mix-temperature, or drop --no-mixing');
    return null;
  }
  if (!tuned) return base;
  const m = { ...(base ?? DEFAULT_SCORE_MIXING), ...(f.mixBias !== undefined ? { bias: f.mixBias } : {}), ...(f.mixTemperature !== undefined ? { temperature: f.mixTemperature } : {}) };
  try {
    validateScoreMixing(m);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  return m;
}

/** The policy of a run from the flags; `calls` is the run's number of model calls. */
export function policyFromFlags(f: FeatureReuseFlags, calls: number): ReusePolicy {
  if (f.frPolicy !== undefined) {
    const p = readReusePolicyFile(f.frPolicy, calls);
    return { ...p, mixing: mixingFrom(f, p.mixing), points: f.frPoints ?? p.points ?? 'frdiff' };
  }
  if (f.frInterval === undefined) throw new CliError('feature reuse needs --fr-interval M or --fr-policy FILE');
  return uniformPolicy(calls, f.frInterval, mixingFrom(f, { ...DEFAULT_SCORE_MIXING }), f.frPoints ?? 'frdiff');
}

/** Options of {@link loadFeatureReuseNets}. */
export interface LoadFeatureReuseOptions {
  /** Path of the .onnx model. */
  modelPath: string;
  card?: ModelCard;
  /** Reuse-points options to build. */
  points: readonly ReusePointsSpec[];
  /** Skip options the model has no reuse points for (else throw). Default false. */
  skipInapplicable?: boolean;
  maxBatch?: number;
  threads?: number;
  ort?: OrtModuleLike;
}

/** Networks by reuse-points name, from one parse of the model. */
export interface LoadedFeatureReuseNets {
  nets: Map<string, FeatureReuseOnnxModel>;
  /** Options that did not apply, with the reason. */
  skipped: { points: string; reason: string }[];
  ort: OrtModuleLike;
}

/** Build a {@link FeatureReuseOnnxModel} for each reuse-points option (the model is parsed and probed once). */
export async function loadFeatureReuseNets(opts: LoadFeatureReuseOptions): Promise<LoadedFeatureReuseNets> {
  const ort: OrtModuleLike = opts.ort ?? ((await import('onnxruntime-node')) as unknown as OrtModuleLike);
  const bytes = readModelBytes(opts.modelPath);
  const analyzed = await analyzeOnnxModel(bytes, { ort });
  const nets = new Map<string, FeatureReuseOnnxModel>();
  const skipped: { points: string; reason: string }[] = [];
  for (const points of opts.points) {
    const name = reusePointsName(points);
    const key = Array.isArray(name) ? name.join(',') : (name as string);
    try {
      nets.set(
        key,
        await FeatureReuseOnnxModel.create({
          ort,
          model: analyzed,
          points,
          label: opts.modelPath,
          ...(opts.card ? { card: opts.card } : {}),
          ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        }),
      );
    } catch (err) {
      if (!opts.skipInapplicable) throw new CliError((err as Error).message);
      skipped.push({ points: key, reason: (err as Error).message });
    }
  }
  if (nets.size === 0) {
    throw new CliError(`${opts.modelPath} has no reuse points for ${opts.points.map((p) => String(reusePointsName(p))).join(', ')}: ${skipped.map((s) => s.reason).join('; ')}`);
  }
  return { nets, skipped, ort };
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
  report(): FeatureReuseReport;
  release(): Promise<void>;
}

/**
 * Set up feature reuse for a `sample` run from the flags: count the run's calls, build the policy,
 * load the network for its reuse points, and wrap it (under guidance, so a keyframe caches the
 * guided 2B batch).
 */
export async function setupFeatureReuse(
  f: FeatureReuseFlags,
  run: SampleOptions,
  load: Omit<LoadFeatureReuseOptions, 'points' | 'skipInapplicable'>,
): Promise<FeatureReuseRun> {
  const calls = await plannedCalls(run);
  const policy = policyFromFlags(f, calls);
  const { nets } = await loadFeatureReuseNets({ ...load, points: [policy.points as ReusePointsSpec] });
  const net = [...nets.values()][0]!;
  const model = withFeatureReuse(net, { policy });
  model.reset();
  net.resetStats();
  const planned = countCalls(policy);
  return {
    model,
    net,
    policy,
    report() {
      const s = model.stats;
      const ns = net.stats;
      return {
        policy: {
          calls: policy.calls,
          keyframes: policy.keyframes,
          mixing: policy.mixing,
          points: net.pointsName,
          source: f.frPolicy ?? `uniform interval ${f.frInterval}`,
        },
        fullCalls: s.keyframe,
        reuseCalls: s.reuse,
        skippedSteps: s.skip,
        planned,
        points: net.points.map((p) => ({ name: p.name, kind: p.kind, shape: p.shape })),
        cacheBytes: ns.peakCacheBytes,
        cacheBytesPerSample: ns.cacheBytesPerSample,
        reuseMacsRatio: ns.reuseMacsRatio,
        keyframeMs: s.keyframeMs,
        reuseMs: s.reuseMs,
        msPerKeyframe: s.keyframe ? s.keyframeMs / s.keyframe : 0,
        msPerReuse: s.reuse ? s.reuseMs / s.reuse : 0,
      };
    },
    release: () => net.release(),
  };
}

/** One line for humans: `FRDiff: 17 full + 19 reuse calls, 14 skipped; cache 1.2 MiB; 9.1 / 3.2 ms per full / reuse call`. */
export function formatFeatureReuseLine(r: FeatureReuseReport): string {
  const mib = (r.cacheBytes / (1 << 20)).toFixed(2);
  return `FRDiff (${Array.isArray(r.policy.points) ? 'tensors' : r.policy.points}): ${r.fullCalls} full + ${r.reuseCalls} reuse calls, ${r.skippedSteps} skipped; ` +
    `cache ${mib} MiB; ${r.msPerKeyframe.toFixed(1)} / ${r.msPerReuse.toFixed(1)} ms per full / reuse call`;
}
