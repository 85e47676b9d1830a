/**
 * FRDiff as a model wrapper: keyframe / reuse / skip decided per model call, with score mixing.
 *
 * Because it wraps the model (not a solver), it works under every solver and composes with PFDiff:
 * PFDiff decides where calls happen, this wrapper makes each call cheaper. Call `i` of a run (the
 * descriptor's `call.index`) is treated per {@link callKind}:
 *   keyframe → full network (refreshes the feature cache);  Q_key ← Q
 *   reuse    → Q = w·Q_FR(x_i, t_i) + (1 − w)·Q_key    (w = 1 without mixing)
 *   skip     → Q = Q_key, no network call
 * Q is the model output expressed in `mixSpace` (ε by default, as in the paper) at the call's own
 * (x, α_t, σ_t) (the descriptor's), then converted back to the model's prediction type, so a stale
 * ε̂ is reinterpreted at the current point exactly as a coarser DDIM step would.
 *
 * What a skipped call feeds a multistep solver's history: the mixed output at the current (x, t),
 * i.e. a stale ε̂ (or x̂0 with `mixSpace: 'sample'`) — the solver then extrapolates with it as if it
 * were fresh. Measured in BENCHMARKS.md.
 * @packageDocumentation
 */
import { now as clockNow } from '../clock.js';
import type { Conditioning, DiffusionModel, ModelCall, ModelCallOptions, PredictionType } from '../model.js';
import { convertPrediction } from '../prediction.js';
import { axpby, type NumArray } from '../tensor.js';
import { callKind, type CallKind, type ReusePolicy } from './reuse-policy.js';

/** A network that can run a full (keyframe) pass that refreshes its feature cache, or a cheap pass reusing it. */
export interface FeatureReuseCapable extends DiffusionModel {
  /** Full pass; stores the features of this batch (`call.batch` samples) for later reuse. */
  predictKeyframe(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray>;
  /** Cheap pass with the cached features (throws if there is no cache for this batch size). */
  predictReuse(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray>;
  /** Drop the cache. */
  clearCache(): void;
}

/** Per-kind accounting of one run. */
export interface ReuseStats {
  keyframe: number;
  reuse: number;
  skip: number;
  /** Milliseconds spent in keyframe and reuse calls. */
  keyframeMs: number;
  reuseMs: number;
}

/** Options of {@link withFeatureReuse}. */
export interface FeatureReuseOptions {
  /** Which call of the run is a keyframe, a reuse or a skip, and the mixing weights; laid out over `call.index`. */
  policy: ReusePolicy;
  /** Space in which outputs are held and mixed. Default `epsilon`. */
  mixSpace?: PredictionType;
  /** Clock for the per-kind timings (injectable for tests). Default the library clock (`performance.now`). */
  now?: () => number;
}

/** A model whose calls follow a reuse policy; `reset()` before each run. */
export interface FeatureReuseModel extends DiffusionModel {
  readonly stats: ReuseStats;
  /** Start a new run (empty cache, zeroed stats). */
  reset(): void;
}

/** Wrap a feature-reuse-capable network so its calls follow `policy` (see the module docs). */
export function withFeatureReuse(net: FeatureReuseCapable, opts: FeatureReuseOptions): FeatureReuseModel {
  const { policy } = opts;
  const space = opts.mixSpace ?? 'epsilon';
  const now = opts.now ?? clockNow;
  let key: NumArray | null = null;
  const stats: ReuseStats = { keyframe: 0, reuse: 0, skip: 0, keyframeMs: 0, reuseMs: 0 };
  const toSpace = (out: NumArray, x: NumArray, c: ModelCall) => convertPrediction(net.predictionType, space, out, x, c.alpha, c.sigma);
  const fromSpace = (q: NumArray, x: NumArray, c: ModelCall) => convertPrediction(space, net.predictionType, q, x, c.alpha, c.sigma);
  return {
    predictionType: net.predictionType,
    sampleShape: net.sampleShape,
    stats,
    reset() {
      key = null;
      net.clearCache();
      Object.assign(stats, { keyframe: 0, reuse: 0, skip: 0, keyframeMs: 0, reuseMs: 0 });
    },
    async predict(x, call, cond, options) {
      if (!Number.isInteger(call.index) || call.index < 0) {
        throw new RangeError(`feature reuse needs the call's index in the run (a non-negative integer), got ${call.index}`);
      }
      if (call.index >= policy.calls) {
        throw new RangeError(
          `the run made more than the ${policy.calls} model calls its reuse policy was made for: build the policy for this solver and step count`,
        );
      }
      const planned = callKind(policy, call.index);
      const weight = planned.weight;
      let kind = planned.kind;
      if (key === null || key.length !== x.length) kind = 'keyframe' as CallKind;
      if (kind === 'keyframe') {
        const t0 = now();
        const out = await net.predictKeyframe(x, call, cond, options);
        stats.keyframeMs += now() - t0;
        stats.keyframe++;
        key = toSpace(out, x, call);
        return out;
      }
      if (kind === 'skip') {
        stats.skip++;
        return fromSpace(key!, x, call);
      }
      const t0 = now();
      const fr = await net.predictReuse(x, call, cond, options);
      stats.reuseMs += now() - t0;
      stats.reuse++;
      if (weight === 1) return fr;
      return fromSpace(axpby(weight, toSpace(fr, x, call), 1 - weight, key!), x, call);
    },
  };
}
