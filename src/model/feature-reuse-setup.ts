/**
 * FRDiff feature reuse for one sampling run, as a library function: model bytes + card + the run's
 * options + a keyframe choice (interval or policy), reuse points and mixing → a model that
 * `sample()` takes as it is. The steps, in order:
 *  1. the run's real call count N (`plannedCalls`: heun and plms make more calls than steps, PFDiff
 *     fewer), over which the keyframes are laid out (FRDiff §4.1: call 0 is a keyframe);
 *  2. the keyframe/reuse graphs cut from the ONNX file for the reuse points (`FeatureReuseOnnxModel`);
 *  3. `withFeatureReuse` over it (under guidance the keyframe caches the guided 2B batch), or, for
 *     adaptive recompute (`keyframes: {adaptive}`), `withAdaptiveReuse` over the network with its
 *     probe graph; a `forecast` is set on the network (its reuse calls forecast the cached features).
 * The command line, the bench, Auto-FR and the web page set feature reuse up here.
 * @packageDocumentation
 */
import { withAdaptiveReuse, type AdaptiveReuseCapable } from '../core/frdiff/adaptive-policy.js';
import { maxForecastOrder, type FeatureForecastConfig } from '../core/frdiff/feature-forecast.js';
import { withFeatureReuse, type FeatureReuseCapable, type FeatureReuseModel } from '../core/frdiff/feature-reuse-model.js';
import { plannedCalls } from '../core/frdiff/planned-calls.js';
import { layoutReusePolicy, type ReuseChoice, type ReusePolicy } from '../core/frdiff/reuse-policy.js';
import type { PredictionType } from '../core/model.js';
import type { SampleOptions } from '../core/sample.js';
import { getSolver } from '../core/solvers/registry.js';
import { FeatureReuseOnnxModel, type FeatureReuseOnnxOptions, type ReusePointsSpec } from './feature-reuse-onnx-model.js';
import { analyzeOnnxModel } from './onnx-graph/feature-reuse-graphs.js';
import { REUSE_POINT_PRESETS } from './onnx-graph/reuse-points.js';

/**
 * Reuse points as a user writes them: a policy name (`frdiff`, `residual`, `deepcache`,
 * `deepcache:N`), or tensor names — one name as `rediffuse inspect` prints it, or several separated
 * by commas (empty entries dropped).
 */
export function normalizeReusePoints(spec: string | readonly string[]): string | string[] {
  if (typeof spec !== 'string') return [...spec];
  const s = spec.trim();
  if ((REUSE_POINT_PRESETS as readonly string[]).includes(s) || /^deepcache:\d+$/.test(s)) return s;
  const names = s
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0)
    throw new Error(
      `reuse points "${spec}" name nothing: use ${REUSE_POINT_PRESETS.join(', ')}, deepcache:N, or tensor names as rediffuse inspect prints them`,
    );
  return names;
}

/** What {@link featureReuseFor} and {@link createFeatureReuseSetup} return. */
export interface FeatureReuseRunSetup<Net extends FeatureReuseCapable = FeatureReuseCapable> {
  /** The model to pass to `sample()` (call `model.reset()` before each further run). */
  model: FeatureReuseModel;
  /** The network under it (its keyframe and reuse calls). */
  net: Net;
  /** The policy laid out over the run's calls. */
  policy: ReusePolicy;
  /** The run's model calls N. */
  calls: number;
  /** What a user should know before the run (e.g. a policy searched for another solver). */
  notes: string[];
}

/**
 * Options of {@link featureReuseFor}: the reuse choice, the space outputs are held and mixed in, the
 * forecast of the cached features and (adaptive recompute) the probe's signal tensor.
 */
export interface FeatureReuseChoice extends ReuseChoice {
  mixSpace?: PredictionType;
  /** Forecast the cached features at reuse calls (default none: FRDiff's stale features). */
  forecast?: FeatureForecastConfig;
  /** Adaptive recompute: the probe's signal tensor (default the first block's residual). */
  probe?: string;
}

/** A network that can take a feature forecast (the ONNX adapter). */
interface ForecastingNet {
  setForecast(config: FeatureForecastConfig | undefined): void;
}

const canForecast = (net: unknown): net is ForecastingNet => typeof (net as ForecastingNet).setForecast === 'function';
const canProbe = (net: unknown): net is AdaptiveReuseCapable => typeof (net as AdaptiveReuseCapable).predictProbe === 'function';

/** Notes on a policy made for another run (Auto-FR records its solver and budget in `meta`). */
function policyNotes(policy: ReusePolicy, run: Omit<SampleOptions, 'model'>): string[] {
  const made = policy.meta?.['solver'];
  if (typeof made !== 'string') return [];
  let madeName = made;
  try {
    madeName = getSolver(made).name;
  } catch {
    /* keep as written */
  }
  const runName = getSolver(run.solver ?? 'ddim').name;
  if (madeName === runName) return [];
  return [
    `the reuse policy was searched for solver ${madeName}, and this run uses ${runName}: its keyframes and mixing may not suit it ` +
      `(run with solver ${madeName}, or search a policy for ${runName} with rediffuse autofr --solver ${runName})`,
  ];
}

/**
 * Feature reuse over a network that is already built (one network serves every policy with the same
 * reuse points): count the run's calls, lay the choice out over them, and wrap the network.
 */
export async function featureReuseFor<Net extends FeatureReuseCapable>(
  net: Net,
  run: Omit<SampleOptions, 'model'>,
  choice: FeatureReuseChoice,
): Promise<FeatureReuseRunSetup<Net>> {
  const calls = await plannedCalls({ ...run, model: net });
  const policy = layoutReusePolicy(choice, calls);
  // One network serves several runs (the bench, Auto-FR): its forecast is this choice's, or none.
  if (canForecast(net)) net.setForecast(choice.forecast);
  else if (choice.forecast && maxForecastOrder(choice.forecast) > 0) {
    throw new Error('this network cannot forecast its cached features (only the ONNX feature-reuse adapter can): drop the forecast');
  }
  let model: FeatureReuseModel;
  if ('adaptive' in choice.keyframes) {
    if (!canProbe(net)) throw new Error('adaptive recompute needs a network with a probe graph: create it with { probe: true }');
    if (choice.mixSpace) throw new Error('adaptive recompute has no score mixing, so no mixing space: drop mixSpace');
    model = withAdaptiveReuse(net, { adaptive: choice.keyframes.adaptive });
  } else {
    if (choice.probe !== undefined)
      throw new Error('a probe signal applies to adaptive recompute only: choose keyframes {adaptive: {threshold}} or drop probe');
    model = withFeatureReuse(net, { policy, ...(choice.mixSpace ? { mixSpace: choice.mixSpace } : {}) });
  }
  model.reset();
  return { model, net, policy, calls, notes: 'policy' in choice.keyframes ? policyNotes(choice.keyframes.policy, run) : [] };
}

/** Options of {@link createFeatureReuseSetup}: the ONNX model (bytes), its card and session options, the run, and the choice. */
export interface FeatureReuseSetupOptions extends Omit<FeatureReuseOnnxOptions, 'points' | 'probe' | 'forecast'>, FeatureReuseChoice {
  /** The run's `sample()` options without the model (e.g. from `sampleOptionsFromCard`). */
  run: Omit<SampleOptions, 'model'>;
}

/**
 * Build the feature-reuse model of one run from an ONNX file (see the module notes). The reuse
 * points are the choice's, else the policy's own, else `frdiff`; a model without such points throws
 * the graph layer's error, naming the fix.
 */
export async function createFeatureReuseSetup(opts: FeatureReuseSetupOptions): Promise<FeatureReuseRunSetup<FeatureReuseOnnxModel>> {
  const { run, keyframes, mixing, points, mixSpace, forecast, probe, ...onnx } = opts;
  const given = points ?? ('policy' in keyframes ? keyframes.policy.points : undefined) ?? 'frdiff';
  const normalized = normalizeReusePoints(given);
  if (onnx.card) {
    // Refuse a policy made for another call count before the graphs are cut (the count needs only
    // the card's prediction type and sample shape).
    const stand = { predictionType: onnx.card.predictionType, sampleShape: onnx.card.sampleShape, predict: () => Promise.reject(new Error('unused')) };
    layoutReusePolicy({ keyframes, points: normalized }, await plannedCalls({ ...run, model: stand }));
  }
  const adaptive = 'adaptive' in keyframes;
  const net = await FeatureReuseOnnxModel.create({ ...onnx, points: normalized as ReusePointsSpec, ...(adaptive ? { probe: probe ?? true } : {}) });
  try {
    const setup = await featureReuseFor(net, run, {
      keyframes,
      points: normalized,
      ...(mixing !== undefined ? { mixing } : {}),
      ...(mixSpace ? { mixSpace } : {}),
      ...(forecast ? { forecast } : {}),
      ...(probe !== undefined && !adaptive ? { probe } : {}),
    });
    net.resetStats();
    return setup;
  } catch (err) {
    await net.release();
    throw err;
  }
}

/** Options of {@link createFeatureReuseNets}. */
export interface FeatureReuseNetsOptions extends Omit<FeatureReuseOnnxOptions, 'points' | 'model'> {
  /** The ONNX model's bytes (parsed and probed once for all points). */
  model: Uint8Array;
  /** Reuse-points options to build (policy names or tensor names, as {@link normalizeReusePoints} reads them). */
  points: readonly (string | readonly string[])[];
  /** Skip options the model has no reuse points for (else throw). Default false. */
  skipInapplicable?: boolean;
}

/** Networks by reuse-points name (tensor lists joined by commas), and the options that did not apply. */
export interface FeatureReuseNets {
  nets: Map<string, FeatureReuseOnnxModel>;
  skipped: { points: string; reason: string }[];
}

/**
 * One {@link FeatureReuseOnnxModel} per reuse-points option from one parse of the model (Auto-FR
 * searches over several). Throws when none applies, with each option's reason.
 */
export async function createFeatureReuseNets(opts: FeatureReuseNetsOptions): Promise<FeatureReuseNets> {
  const { model, points, skipInapplicable, ...onnx } = opts;
  const analyzed = await analyzeOnnxModel(model, { ort: opts.ort });
  const nets = new Map<string, FeatureReuseOnnxModel>();
  const skipped: { points: string; reason: string }[] = [];
  for (const p of points) {
    const normalized = normalizeReusePoints(p);
    const key = Array.isArray(normalized) ? normalized.join(',') : (normalized as string);
    try {
      nets.set(key, await FeatureReuseOnnxModel.create({ ...onnx, model: analyzed, points: normalized }));
    } catch (err) {
      if (!skipInapplicable) throw err;
      skipped.push({ points: key, reason: (err as Error).message });
    }
  }
  if (nets.size === 0) {
    throw new Error(
      `${opts.label ?? opts.card?.name ?? 'the model'} has no reuse points for ${points.map(String).join(', ')}: ${skipped.map((s) => s.reason).join('; ')}`,
    );
  }
  return { nets, skipped };
}
