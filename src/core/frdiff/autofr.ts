/**
 * Auto-FR under an explicit cost budget, without autograd.
 *
 * FRDiff §4.3 learns one keyframe gate per step by back-propagating through the whole sampling run
 * the loss ‖x_FR − x_full‖² + w·(soft keyframe count). Here the same objective, the final-sample
 * MSE against the full-compute run from the same noise, is minimised by a derivative-free local
 * search, and the penalty weight is replaced by a hard, measured budget:
 *   cost(π) = (K·c_key + R·c_reuse) / N  ≤  budget,
 * with K keyframes, R reuse calls and N calls of the run (skipped calls cost nothing), and c_key,
 * c_reuse the measured cost of a keyframe and of a reuse call as fractions of one full call (wall
 * time on this machine, or MACs). The search space is π = (keyframe set, mixing bias b or no
 * mixing, reuse points):
 *  1. start: for every reuse-points option and bias in the grid, the smallest uniform interval M
 *     whose policy fits the budget; evaluate them all, keep the best;
 *  2. keyframe moves, first improvement in a seeded random order: add a keyframe (while the budget
 *     allows), shift one by ±1/±2, remove one, or remove one and add another elsewhere;
 *  3. with the keyframes fixed, try every other bias and reuse-points option that fits;
 *  repeat 2–3 until no move improves, or the evaluation/time limit is reached.
 * Evaluations are memoised on (points, mixing, keyframes).
 * @packageDocumentation
 */
import { modelCallAt, type Conditioning, type DiffusionModel } from '../model.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { Rng } from '../rng.js';
import { timeInterleaved, TIMING_WARMUP_ROUNDS } from '../timing.js';
import type { FeatureReuseCapable } from './feature-reuse-model.js';
import { countCalls, uniformPolicy, type ReusePolicy } from './reuse-policy.js';
import { DEFAULT_SCORE_MIXING, type ScoreMixing } from './score-mixing.js';

/** A reuse-points option with its measured cost per call, as fractions of one full call. */
export interface PointsCost {
  /** Reuse-points name, e.g. `frdiff`, `residual`, `deepcache`. */
  points: string;
  /** Cost of a keyframe call (≈ 1; a little more when writing the cache is measurable). */
  keyframe: number;
  /** Cost of a reuse call. */
  reuse: number;
}

/** cost(π) = (K·c_key + R·c_reuse)/N for a policy (see the module comment). */
export function policyCost(policy: ReusePolicy, cost: Pick<PointsCost, 'keyframe' | 'reuse'>): number {
  const c = countCalls(policy);
  return (c.keyframe * cost.keyframe + c.reuse * cost.reuse) / policy.calls;
}

/**
 * The budget "as dear as the uniform interval-M policy": cost(uniform M) with the default mixing,
 * capped at 1 (full computation). Interval 1 (every call a keyframe) is exactly 1: a keyframe is
 * the full graph plus its cache outputs, so a measured keyframe cost above one full call is
 * timing noise, and a budget above 1 is no budget.
 */
export function intervalBudget(calls: number, interval: number, cost: Pick<PointsCost, 'keyframe' | 'reuse'>): number {
  if (interval === 1) return 1;
  return Math.min(1, policyCost(uniformPolicy(calls, interval, { ...DEFAULT_SCORE_MIXING }), cost));
}

/** Measured ms of a full, a keyframe and a reuse call on the same batch (medians). */
export interface MeasuredCallCost {
  /** Samples in the network batch (2B for a guided call of B). */
  batch: number;
  /** Median ms of a plain full call (the unmodified model), when a plain model was given. */
  fullMs: number | null;
  /** Median ms of a keyframe call (full pass that also writes the cache). */
  keyframeMs: number;
  /** Median ms of a reuse call. */
  reuseMs: number;
  /** keyframeMs / fullMs (or 1 without a plain model) and reuseMs / fullMs (or / keyframeMs). */
  keyframeFraction: number;
  reuseFraction: number;
  /** Timed repeats per kind (after the harness's warm-up rounds). */
  repeats: number;
  /** Untimed warm-up rounds (the harness's rule). */
  warmup: number;
}

/**
 * Time keyframe and reuse calls of `net` (and full calls of `plain`, the unmodified model) on one
 * batch of `batch` samples at schedule time `t` of `schedule`, interleaved (core/timing.ts: the warm-up rounds, then
 * medians of `repeats` rounds, default 5). Leaves `net`'s cache cleared.
 */
export async function measureCallCost(
  net: FeatureReuseCapable,
  opts: { batch: number; schedule: NoiseSchedule; t: number; cond?: Conditioning; plain?: Pick<DiffusionModel, 'predict'>; repeats?: number },
): Promise<MeasuredCallCost> {
  const repeats = opts.repeats ?? 5;
  const d = net.sampleShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: opts.batch * d }, (_, i) => Math.sin(0.7 * i) * 0.8);
  const call = modelCallAt(opts.schedule, opts.t, opts.batch);
  const tasks: (() => Promise<unknown>)[] = [() => net.predictKeyframe(x, call, opts.cond), () => net.predictReuse(x, call, opts.cond)];
  if (opts.plain) tasks.unshift(() => opts.plain!.predict(x, call, opts.cond));
  const timing = await timeInterleaved(tasks, repeats);
  net.clearCache();
  const [fullMs, keyframeMs, reuseMs] = opts.plain ? timing.medianMs : [null, ...timing.medianMs];
  const base = fullMs ?? keyframeMs!;
  return {
    batch: opts.batch,
    fullMs: fullMs ?? null,
    keyframeMs: keyframeMs!,
    reuseMs: reuseMs!,
    keyframeFraction: keyframeMs! / base,
    reuseFraction: reuseMs! / base,
    repeats,
    warmup: TIMING_WARMUP_ROUNDS,
  };
}

/** One line of the search log. */
export interface AutoFrLogEntry {
  /** Evaluation number (1-based), or 0 for a memoised repeat that was not re-run. */
  evaluation: number;
  /** What produced the candidate: `uniform M=3`, `add 17`, `shift 12→13`, `bias 0.4`, … */
  move: string;
  points: string;
  bias: number | null;
  keyframes: number[];
  cost: number;
  objective: number;
  /** Whether the candidate became the incumbent. */
  accepted: boolean;
}

/** Options of {@link searchReusePolicy}. */
export interface AutoFrOptions {
  /** Model calls of the run (the policy's `calls`). */
  calls: number;
  /** Largest allowed cost fraction, in (0, 1]. */
  budget: number;
  /** The reuse-points options and their measured costs (at least one). */
  points: readonly PointsCost[];
  /** The objective to minimise (final-sample MSE); called once per distinct policy. */
  evaluate: (policy: ReusePolicy) => Promise<number>;
  /** Mixing biases to try; `null` = no mixing (pure feature reuse). Default [0.3, 0.4, 0.5, 0.6, 0.7, null]. */
  biases?: readonly (number | null)[];
  /** Mixing temperature T. Default 30 (the paper's). */
  temperature?: number;
  /** Stop after this many distinct evaluations. Default 150. */
  maxEvaluations?: number;
  /** Stop after this many ms (checked between evaluations). Default: none. */
  timeLimitMs?: number;
  /** Seed of the move order. Default 0. */
  seed?: number;
  /** Clock (injectable for tests). Default `performance.now`. */
  now?: () => number;
  /** Called after each evaluation. */
  onEvaluation?: (entry: AutoFrLogEntry) => void;
}

/** What {@link searchReusePolicy} returns. */
export interface AutoFrResult {
  /** The best policy found (format `rediffuse-reuse-policy/1`, without `meta`). */
  policy: ReusePolicy;
  /** Its objective and cost. */
  objective: number;
  cost: number;
  /** The best uniform-interval policy of step 1, for comparison. */
  bestUniform: { policy: ReusePolicy; objective: number; cost: number; interval: number };
  /** Every evaluation, in order. */
  log: AutoFrLogEntry[];
  /** Distinct policies evaluated. */
  evaluations: number;
  /** Why the search stopped: `converged`, `evaluations` or `time`. */
  stopped: 'converged' | 'evaluations' | 'time';
}

const DEFAULT_BIASES: readonly (number | null)[] = [0.3, 0.4, 0.5, 0.6, 0.7, null];

interface Candidate {
  keyframes: number[];
  bias: number | null;
  points: string;
}

class StopSearch extends Error {
  constructor(readonly why: 'evaluations' | 'time') {
    super(why);
  }
}

function uniformSet(calls: number, interval: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < calls; i += interval) out.push(i);
  return out;
}

/**
 * Search a reuse policy under a cost budget (see the module comment). Throws when no policy fits
 * the budget (even one keyframe and reuse/skip elsewhere), naming the smallest feasible budget.
 */
export async function searchReusePolicy(opts: AutoFrOptions): Promise<AutoFrResult> {
  const { calls, budget } = opts;
  if (!Number.isInteger(calls) || calls < 1) throw new RangeError(`Auto-FR: calls must be an integer ≥ 1, got ${calls}`);
  if (!(budget > 0 && budget <= 1))
    throw new RangeError(`Auto-FR: the budget is a cost fraction in (0, 1], got ${budget}: e.g. 0.5 for half the cost of full computation`);
  if (opts.points.length === 0) throw new Error('Auto-FR needs at least one reuse-points option with its measured cost');
  for (const p of opts.points) {
    if (!(p.keyframe > 0) || !(p.reuse >= 0))
      throw new RangeError(`Auto-FR: costs of "${p.points}" must be positive fractions of a full call, got keyframe ${p.keyframe}, reuse ${p.reuse}`);
  }
  const temperature = opts.temperature ?? DEFAULT_SCORE_MIXING.temperature;
  const biases = opts.biases ?? DEFAULT_BIASES;
  if (biases.length === 0) throw new Error('Auto-FR: give at least one mixing bias (or null for no mixing)');
  const maxEvals = opts.maxEvaluations ?? 150;
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const rng = new Rng(opts.seed ?? 0);
  const costOf = new Map(opts.points.map((p) => [p.points, p]));

  const toPolicy = (c: Candidate): ReusePolicy => ({
    format: 'rediffuse-reuse-policy/1',
    calls,
    keyframes: [...c.keyframes].sort((a, b) => a - b),
    mixing: c.bias === null ? null : ({ temperature, bias: c.bias } satisfies ScoreMixing),
    points: c.points,
  });
  const cost = (c: Candidate) => policyCost(toPolicy(c), costOf.get(c.points)!);
  const fits = (c: Candidate) => cost(c) <= budget + 1e-12;
  const keyOf = (c: Candidate) => `${c.points}|${c.bias}|${[...c.keyframes].sort((a, b) => a - b).join(',')}`;

  const memo = new Map<string, number>();
  const log: AutoFrLogEntry[] = [];
  let evaluations = 0;
  const score = async (c: Candidate, move: string): Promise<number> => {
    const k = keyOf(c);
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    if (evaluations >= maxEvals) throw new StopSearch('evaluations');
    if (opts.timeLimitMs !== undefined && now() - started >= opts.timeLimitMs) throw new StopSearch('time');
    const value = await opts.evaluate(toPolicy(c));
    if (!Number.isFinite(value)) throw new Error(`Auto-FR: the objective returned ${value} for ${move}; the model run diverged`);
    evaluations++;
    memo.set(k, value);
    const entry: AutoFrLogEntry = {
      evaluation: evaluations,
      move,
      points: c.points,
      bias: c.bias,
      keyframes: toPolicy(c).keyframes,
      cost: cost(c),
      objective: value,
      accepted: false,
    };
    log.push(entry);
    opts.onEvaluation?.(entry);
    return value;
  };

  // 1. Uniform starts: per points option and bias, the smallest interval that fits.
  const starts: { c: Candidate; interval: number }[] = [];
  for (const p of opts.points) {
    for (const bias of biases) {
      for (let m = 1; m <= calls; m++) {
        const c: Candidate = { keyframes: uniformSet(calls, m), bias, points: p.points };
        if (fits(c)) {
          starts.push({ c, interval: m });
          break;
        }
      }
    }
  }
  if (starts.length === 0) {
    let cheapest = Infinity;
    for (const p of opts.points) for (const bias of biases) cheapest = Math.min(cheapest, cost({ keyframes: [0], bias, points: p.points }));
    throw new RangeError(
      `Auto-FR: no policy fits the budget ${budget.toFixed(3)}; the cheapest (one keyframe) costs ${cheapest.toFixed(3)}: raise the budget to at least that`,
    );
  }
  let best: Candidate | null = null;
  let bestValue = Infinity;
  let bestUniform: AutoFrResult['bestUniform'] | null = null;
  let stopped: AutoFrResult['stopped'] = 'converged';
  const accept = (c: Candidate, v: number) => {
    best = c;
    bestValue = v;
    const last = log[log.length - 1];
    if (last && keyOf(c) === `${last.points}|${last.bias}|${last.keyframes.join(',')}`) last.accepted = true;
  };
  try {
    for (const s of starts) {
      const v = await score(s.c, `uniform M=${s.interval}`);
      if (v < bestValue) {
        accept(s.c, v);
        bestUniform = { policy: toPolicy(s.c), objective: v, cost: cost(s.c), interval: s.interval };
      }
    }
    // 2–3. Local search.
    let improved = true;
    while (improved) {
      improved = false;
      const cur: Candidate = best!;
      const kf = new Set(cur.keyframes);
      const inner = cur.keyframes.filter((k) => k !== 0);
      const free: number[] = [];
      for (let j = 1; j < calls; j++) if (!kf.has(j)) free.push(j);
      const with_ = (keyframes: number[]): Candidate => ({ ...cur, keyframes });
      const moves: { c: Candidate; move: string; group: number }[] = [];
      for (const j of free) moves.push({ c: with_([...cur.keyframes, j]), move: `add ${j}`, group: 0 });
      for (const k of inner) {
        for (const d of [-2, -1, 1, 2]) {
          const j = k + d;
          if (j > 0 && j < calls && !kf.has(j)) moves.push({ c: with_(cur.keyframes.map((x) => (x === k ? j : x))), move: `shift ${k}→${j}`, group: 1 });
        }
        moves.push({ c: with_(cur.keyframes.filter((x) => x !== k)), move: `remove ${k}`, group: 2 });
      }
      // remove + add elsewhere: a bounded random sample (the full set is |K|·|free|).
      const pairs: { c: Candidate; move: string; group: number }[] = [];
      for (const k of inner)
        for (const j of free)
          if (Math.abs(j - k) > 2) pairs.push({ c: with_([...cur.keyframes.filter((x) => x !== k), j]), move: `move ${k}→${j}`, group: 3 });
      shuffle(pairs, rng);
      moves.push(...pairs.slice(0, 3 * Math.max(1, inner.length)));
      // settings with the keyframes fixed
      for (const bias of biases) if (bias !== cur.bias) moves.push({ c: { ...cur, bias }, move: bias === null ? 'no mixing' : `bias ${bias}`, group: 4 });
      for (const p of opts.points) if (p.points !== cur.points) moves.push({ c: { ...cur, points: p.points }, move: `points ${p.points}`, group: 4 });
      const feasible = moves.filter((m) => fits(m.c) && !memo.has(keyOf(m.c)));
      // Adds first (more computation within the budget), then the rest in a seeded random order.
      const adds = feasible.filter((m) => m.group === 0);
      const rest = feasible.filter((m) => m.group !== 0);
      shuffle(adds, rng);
      shuffle(rest, rng);
      for (const m of [...adds, ...rest]) {
        const v = await score(m.c, m.move);
        if (v < bestValue) {
          accept(m.c, v);
          improved = true;
          break;
        }
      }
    }
  } catch (err) {
    if (!(err instanceof StopSearch)) throw err;
    stopped = err.why;
  }
  const winner: Candidate = best!;
  return {
    policy: toPolicy(winner),
    objective: bestValue,
    cost: cost(winner),
    bestUniform: bestUniform!,
    log,
    evaluations,
    stopped,
  };
}

function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
