/**
 * Feature-reuse policies: which model calls of a sampling run are keyframes (full network), and how
 * the others are treated (FRDiff §4.1–4.3).
 *
 * Calls are indexed 0…N−1 in the order the solver makes them. Call 0 is always a keyframe (there is
 * nothing to reuse before it). A policy is plain JSON so `autofr` can write it and `sample`/`bench`
 * read it:
 * ```json
 * { "format": "rediffuse-reuse-policy/1", "calls": 50, "keyframes": [0, 3, 6],
 *   "mixing": { "temperature": 30, "bias": 0.5 }, "points": "frdiff" }
 * ```
 * `mixing: null` means pure feature reuse (every non-keyframe call is a reuse call).
 * @packageDocumentation
 */
import { validateAdaptiveRecompute, type AdaptiveRecompute } from './adaptive-policy.js';
import { DEFAULT_SCORE_MIXING, mixingWeight, validateScoreMixing, type ScoreMixing } from './score-mixing.js';

/** What happens at one model call under a policy. */
export type CallKind = 'keyframe' | 'reuse' | 'skip';

/** A complete feature-reuse policy for a run of `calls` model calls. */
export interface ReusePolicy {
  format: 'rediffuse-reuse-policy/1';
  /** Number of model calls of the run this policy was made for. */
  calls: number;
  /** Sorted call indices that run the full network; must contain 0. */
  keyframes: number[];
  /** Score mixing, or null for pure feature reuse. */
  mixing: ScoreMixing | null;
  /**
   * Which tensors are cached: a reuse-point preset of the graph layer (`frdiff`, `residual`,
   * `deepcache`) or an explicit list of tensor names. Default `frdiff`.
   */
  points?: string | string[];
  /** Free-form provenance (e.g. how Auto-FR found it). */
  meta?: Record<string, unknown>;
}

/** Keyframes every `interval` calls: 0, M, 2M, … (the paper's uniform policy). */
export function uniformKeyframes(calls: number, interval: number): number[] {
  if (!Number.isInteger(interval) || interval < 1) {
    throw new RangeError(`keyframe interval must be an integer ≥ 1, got ${interval}`);
  }
  const out: number[] = [];
  for (let i = 0; i < calls; i += interval) out.push(i);
  return out;
}

/** A uniform-interval policy (with the default score mixing unless `mixing` is given or null). */
export function uniformPolicy(
  calls: number,
  interval: number,
  mixing: ScoreMixing | null = { ...DEFAULT_SCORE_MIXING },
  points: string | string[] = 'frdiff',
): ReusePolicy {
  return { format: 'rediffuse-reuse-policy/1', calls, keyframes: uniformKeyframes(calls, interval), mixing, points };
}

/** The kind of call `index` under `policy` (r = index/calls drives the mixing weight). */
export function callKind(policy: ReusePolicy, index: number): { kind: CallKind; weight: number } {
  if (policy.keyframes.includes(index)) return { kind: 'keyframe', weight: 1 };
  if (policy.mixing === null) return { kind: 'reuse', weight: 1 };
  const w = mixingWeight(index / policy.calls, policy.mixing);
  return w === 0 ? { kind: 'skip', weight: 0 } : { kind: 'reuse', weight: w };
}

/** Count keyframe, reuse and skipped calls of a policy. */
export function countCalls(policy: ReusePolicy): Record<CallKind, number> {
  const c: Record<CallKind, number> = { keyframe: 0, reuse: 0, skip: 0 };
  for (let i = 0; i < policy.calls; i++) c[callKind(policy, i).kind]++;
  return c;
}

/**
 * Validate a policy object (e.g. parsed from a file), throwing an error that names the field and
 * the fix. Returns it typed.
 */
export function validateReusePolicy(p: unknown, expectedCalls?: number): ReusePolicy {
  const bad = (msg: string): never => {
    throw new Error(`invalid reuse policy: ${msg}`);
  };
  if (typeof p !== 'object' || p === null) bad('expected a JSON object');
  const o = p as Record<string, unknown>;
  if (o.format !== 'rediffuse-reuse-policy/1') bad(`"format" must be "rediffuse-reuse-policy/1", got ${JSON.stringify(o.format)}`);
  if (!Number.isInteger(o.calls) || (o.calls as number) < 1) bad('"calls" must be a positive integer (the run\'s model calls)');
  const calls = o.calls as number;
  if (expectedCalls !== undefined && calls !== expectedCalls) {
    bad(`it was made for ${calls} model calls but this run makes ${expectedCalls}: re-run autofr for this solver/step count`);
  }
  if (!Array.isArray(o.keyframes) || o.keyframes.length === 0) bad('"keyframes" must be a non-empty array of call indices');
  const kf = o.keyframes as unknown[];
  let prev = -1;
  for (const k of kf) {
    if (!Number.isInteger(k) || (k as number) < 0 || (k as number) >= calls) {
      bad(`keyframe ${JSON.stringify(k)} is not a call index in 0…${calls - 1}`);
    }
    if ((k as number) <= prev) bad('"keyframes" must be strictly increasing');
    prev = k as number;
  }
  if (kf[0] !== 0) bad('"keyframes" must start with 0 (the first call has nothing to reuse)');
  if (o.mixing !== null) {
    if (typeof o.mixing !== 'object' || o.mixing === undefined) bad('"mixing" must be {temperature, bias} or null');
    const m = o.mixing as Record<string, unknown>;
    if (typeof m.temperature !== 'number' || typeof m.bias !== 'number') bad('"mixing" needs numeric temperature and bias');
    validateScoreMixing(m as unknown as ScoreMixing);
  }
  if (o.points !== undefined && typeof o.points !== 'string' && !(Array.isArray(o.points) && o.points.every((s) => typeof s === 'string'))) {
    bad('"points" must be a policy name or a list of tensor names');
  }
  return o as unknown as ReusePolicy;
}

/**
 * Where a run's keyframes come from: every `interval`-th call, a policy (e.g. a file written by
 * Auto-FR), or decided during the run by adaptive recompute (src/core/frdiff/adaptive-policy.ts).
 */
export type KeyframeChoice = { interval: number } | { policy: ReusePolicy } | { adaptive: AdaptiveRecompute };

/** The feature-reuse choice of a run, before its call count is known. */
export interface ReuseChoice {
  keyframes: KeyframeChoice;
  /**
   * Score mixing: `undefined` keeps the policy's own (the default mixing for an interval), `null`
   * turns it off, and fields given replace those of the policy's own (or of the default).
   */
  mixing?: Partial<ScoreMixing> | null;
  /** Reuse points instead of the policy's own (default `frdiff`). */
  points?: string | string[];
}

/**
 * Lay a reuse choice out over a run of `calls` model calls (the run's real count, e.g. from
 * `plannedCalls`): a uniform interval becomes its keyframes 0, M, 2M, …; a policy must have been made
 * for `calls` calls. Mixing and points are resolved as {@link ReuseChoice} says. Throws naming the fix.
 */
export function layoutReusePolicy(choice: ReuseChoice, calls: number): ReusePolicy {
  const k = choice.keyframes;
  if ('adaptive' in k) {
    // Only the warm-up is known before the run: the policy lists it, the run records the rest.
    const adaptive = validateAdaptiveRecompute(k.adaptive);
    if (choice.mixing !== undefined && choice.mixing !== null) {
      throw new Error('adaptive recompute has no score mixing (every call runs the full or the reuse graph): drop the mixing settings');
    }
    const warm = Math.min(calls, adaptive.warmup ?? 1);
    return {
      format: 'rediffuse-reuse-policy/1',
      calls,
      keyframes: Array.from({ length: warm }, (_, i) => i),
      mixing: null,
      points: choice.points ?? 'frdiff',
      meta: { adaptive: { ...adaptive } },
    };
  }
  const base = 'policy' in k ? validateReusePolicy(k.policy, calls) : undefined;
  const own: ScoreMixing | null = base ? base.mixing : { ...DEFAULT_SCORE_MIXING };
  let mixing: ScoreMixing | null;
  if (choice.mixing === null) mixing = null;
  else if (choice.mixing === undefined) mixing = own;
  else {
    mixing = { ...(own ?? DEFAULT_SCORE_MIXING), ...choice.mixing };
    validateScoreMixing(mixing);
  }
  const points = choice.points ?? base?.points ?? 'frdiff';
  if (base) return { ...base, mixing, points };
  if (!('interval' in k)) throw new Error('a keyframe choice is {interval: M} or {policy}');
  return uniformPolicy(calls, k.interval, mixing, points);
}
