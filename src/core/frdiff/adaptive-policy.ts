/**
 * Adaptive recompute for feature reuse (First-Block-Cache, ParaAttention / diffusers
 * `FirstBlockCacheConfig`; TeaCache, Liu et al., CVPR 2025): at every model call a cheap PROBE
 * computes a signal s_i (the first block's residual output), and the call is a full (keyframe) call
 * only when the signal has moved since the last full call f:
 *   plain (FBCache):        d_i = ‖s_i − s_f‖₁ / ‖s_f‖₁
 *   accumulated (TeaCache): d_i = Σ_{j=f+1..i} ‖s_j − s_{j−1}‖₁ / ‖s_{j−1}‖₁
 *   call i is full  ⇔  i < warmup  or  d_i ≥ δ  or  i − f ≥ maxInterval     (δ = ∞: never after the warm-up)
 * otherwise it is a reuse call (the reuse graph with the cached, or forecast, features). TeaCache
 * also rescales the change with a per-model polynomial fitted offline; that fit is not done here.
 * The probe runs at every call (its signal is the reference of the next decisions), so a run of N
 * calls costs N probes + F full + (N − F) reuse calls; all four are counted.
 * @packageDocumentation
 */
import { now as clockNow } from '../clock.js';
import type { Conditioning, ModelCall, ModelCallOptions, PredictionType } from '../model.js';
import type { NumArray } from '../tensor.js';
import type { FeatureReuseCapable, FeatureReuseModel, ReuseStats } from './feature-reuse-model.js';

/** How the signal change is measured since the last full call. */
export type RecomputeAccumulation = 'plain' | 'accumulated';

/** The adaptive recompute policy (plain JSON, so a tuner can enumerate it). */
export interface AdaptiveRecompute {
  /** Threshold δ ≥ 0 on the relative L1 change (`Infinity` = recompute only in the warm-up). */
  threshold: number;
  /** `plain` (FBCache, the default): change against the last full call's signal; `accumulated` (TeaCache): sum of per-call changes. */
  accumulate?: RecomputeAccumulation;
  /** Calls forced full at the start of the run (≥ 1; default 1). */
  warmup?: number;
  /** At most this many calls from one full call to the next (a cap on consecutive reuse; default none). */
  maxInterval?: number;
}

/** Validate an adaptive policy, naming the field and the fix. Returns it typed. */
export function validateAdaptiveRecompute(a: unknown): AdaptiveRecompute {
  const bad = (msg: string): never => {
    throw new RangeError(`adaptive recompute: ${msg}`);
  };
  if (typeof a !== 'object' || a === null) bad('expected {threshold: δ, accumulate?: "plain"|"accumulated", warmup?: n}');
  const o = a as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['threshold', 'accumulate', 'warmup', 'maxInterval'].includes(k))
      bad(`unknown field "${k}"; allowed: threshold, accumulate, warmup, maxInterval`);
  if (typeof o.threshold !== 'number' || Number.isNaN(o.threshold) || o.threshold < 0) {
    bad(`"threshold" δ must be a number ≥ 0 (0 = every call full, Infinity = only the warm-up), got ${JSON.stringify(o.threshold)}`);
  }
  if (o.accumulate !== undefined && o.accumulate !== 'plain' && o.accumulate !== 'accumulated') {
    bad(`"accumulate" must be "plain" (FBCache) or "accumulated" (TeaCache), got ${JSON.stringify(o.accumulate)}`);
  }
  if (o.warmup !== undefined && (!Number.isInteger(o.warmup) || (o.warmup as number) < 1))
    bad(`"warmup" must be an integer ≥ 1, got ${JSON.stringify(o.warmup)}`);
  if (o.maxInterval !== undefined && (!Number.isInteger(o.maxInterval) || (o.maxInterval as number) < 1)) {
    bad(`"maxInterval" must be an integer ≥ 1 (calls from one full call to the next at most), got ${JSON.stringify(o.maxInterval)}`);
  }
  return o as unknown as AdaptiveRecompute;
}

/** ‖a − b‖₁ / ‖b‖₁ (∞ when b = 0 and a ≠ b, 0 when both are 0). */
export function relativeL1Change(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`relative L1 change of signals of different sizes (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += Math.abs(a[i]! - b[i]!);
    den += Math.abs(b[i]!);
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return num / den;
}

/** The decision rule of the module docs, one call at a time. */
export class RecomputeDecider {
  private readonly threshold: number;
  private readonly mode: RecomputeAccumulation;
  private readonly warmup: number;
  private readonly maxInterval: number;
  private lastFull = -1;
  private ref: Float32Array | null = null;
  private prev: Float32Array | null = null;
  private acc = 0;
  private calls = 0;
  /** d_i of each call (0 at full calls), for reports. */
  readonly changes: number[] = [];

  constructor(policy: AdaptiveRecompute) {
    validateAdaptiveRecompute(policy);
    this.threshold = policy.threshold;
    this.mode = policy.accumulate ?? 'plain';
    this.warmup = policy.warmup ?? 1;
    this.maxInterval = policy.maxInterval ?? Infinity;
  }

  /** Whether call with probe signal `s` is full; the signal is kept as the reference when it is. */
  decide(s: ArrayLike<number>, forceFull = false): boolean {
    const sig = Float32Array.from(s);
    const i = this.calls++;
    let d = 0;
    if (this.ref !== null && this.ref.length === sig.length) {
      if (this.mode === 'plain') d = relativeL1Change(sig, this.ref);
      else d = this.acc + relativeL1Change(sig, this.prev!);
    }
    const full =
      forceFull ||
      i < this.warmup ||
      this.ref === null ||
      this.ref.length !== sig.length ||
      i - this.lastFull >= this.maxInterval ||
      (this.threshold !== Infinity && d >= this.threshold);
    this.changes.push(full ? 0 : d);
    if (full) {
      this.lastFull = i;
      this.ref = sig;
      this.acc = 0;
    } else this.acc = d;
    this.prev = sig;
    return full;
  }

  /** Forget the run (next call is call 0). */
  reset(): void {
    this.ref = this.prev = null;
    this.acc = 0;
    this.calls = 0;
    this.lastFull = -1;
    this.changes.length = 0;
  }
}

/** A feature-reuse network that also runs a cheap probe returning the recompute signal of a batch. */
export interface AdaptiveReuseCapable extends FeatureReuseCapable {
  /** The probe's signal for this call (e.g. the first block's residual), batch-major. */
  predictProbe(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<ArrayLike<number>>;
}

/** Per-kind accounting of an adaptive run: the {@link ReuseStats} plus the probes. */
export interface AdaptiveReuseStats extends ReuseStats {
  /** Probe calls (one per model call). */
  probe: number;
  /** Milliseconds in probe calls. */
  probeMs: number;
  /** Call indices that ran full, in order. */
  keyframes: number[];
  /** Signal change d_i of every call (0 at full calls). */
  changes: number[];
}

/** Options of {@link withAdaptiveReuse}. */
export interface AdaptiveReuseOptions {
  adaptive: AdaptiveRecompute;
  /** Clock for the per-kind timings. Default the library clock. */
  now?: () => number;
}

/** A model whose calls follow the adaptive rule; `reset()` before each run. */
export interface AdaptiveReuseModel extends FeatureReuseModel {
  readonly stats: AdaptiveReuseStats;
}

/**
 * Wrap a probe-capable network so each call runs the probe, then the full or the reuse graph as the
 * rule of the module docs says. No call is skipped (there is no score mixing under adaptive recompute).
 */
export function withAdaptiveReuse(net: AdaptiveReuseCapable, opts: AdaptiveReuseOptions): AdaptiveReuseModel {
  const decider = new RecomputeDecider(opts.adaptive);
  const now = opts.now ?? clockNow;
  const zero = (): AdaptiveReuseStats => ({
    keyframe: 0,
    reuse: 0,
    skip: 0,
    keyframeMs: 0,
    reuseMs: 0,
    probe: 0,
    probeMs: 0,
    keyframes: [],
    changes: decider.changes,
  });
  const stats = zero();
  let cachedLength = -1;
  return {
    predictionType: net.predictionType as PredictionType,
    sampleShape: net.sampleShape,
    stats,
    reset() {
      decider.reset();
      net.clearCache();
      cachedLength = -1;
      Object.assign(stats, zero());
    },
    async predict(x, call, cond, options) {
      const t0 = now();
      const signal = await net.predictProbe(x, call, cond, options);
      stats.probeMs += now() - t0;
      stats.probe++;
      const full = decider.decide(signal, cachedLength !== x.length);
      const t1 = now();
      if (full) {
        const out = await net.predictKeyframe(x, call, cond, options);
        stats.keyframeMs += now() - t1;
        stats.keyframe++;
        stats.keyframes.push(call.index);
        cachedLength = x.length;
        return out;
      }
      const out = await net.predictReuse(x, call, cond, options);
      stats.reuseMs += now() - t1;
      stats.reuse++;
      return out;
    },
  };
}
