/**
 * The autotuner: search a list of candidate configurations ({@link TuneCandidate}: solver × NFE ×
 * spacing × PFDiff k_h × feature-reuse policy) for the best one under a latency budget (ms per
 * image on this machine: lowest FD-classifier within it) or a quality target (FD-classifier: fastest
 * reaching it), measured on calibration seeds, and check the pick on held-out seeds it never saw.
 *
 * The search is successive halving in two rounds (Jamieson & Talwalkar 2016): every candidate is
 * screened on the first `screenCount` calibration samples; the cells on the first two Pareto layers
 * of (wall time per image, FD) — at most `finalists` of them — are measured on the whole calibration
 * set (several batches, `count` samples; Auto-FR's single 8-sample batch overfits), and the pick is
 * made there. FD-classifier falls with the sample count (its bias ∝ 1/N), so a target is met at the
 * calibration count, and the held-out set has the same count by default.
 *
 * Calibration and held-out sets draw sample i's noise from the stream seedForSample(seed, i); the
 * two seeds are checked to give disjoint streams before anything runs.
 * @packageDocumentation
 */
import { cpus } from 'node:os';
import { countCalls, type DiffusionModel, type FeatureReuseCapable, type FeatureReuseModel, planSample, seedForSample } from '../core/index.js';
import { featureReuseFor } from '../model/index.js';
import { featureStatistics, frechetDistance } from '../metrics/index.js';
import { fdBootstrap } from './fd-bootstrap.js';
import { paretoFront } from './pareto.js';
import { cellOptions, policyFor, reuseChoiceOf, sampleAll } from './runner.js';
import { onnxSetup, type BenchSetup } from './setup.js';
import { TUNED_CONFIG_FORMAT, type TuneFigures, type TunedConfig, type TuneObjective } from './tune-config.js';
import { candidateLabel, defaultSearchSpace, type TuneCandidate } from './tune-space.js';

/** A seed set: `count` samples, sample i from stream seedForSample(seed, i), run in batches of `batch`. */
export interface TuneSeeds {
  seed: number;
  count: number;
  batch: number;
}

/** Default calibration set: 4 batches of 64. */
export const DEFAULT_CALIBRATION: TuneSeeds = { seed: 1000, count: 256, batch: 64 };
/** Default held-out seed (its count and batch default to the calibration's). */
export const DEFAULT_HELD_OUT_SEED = 2000;

/** Options of {@link tune}. */
export interface TuneOptions {
  /** The model under test with its quality meter (e.g. from the bench's `onnxSetup`). */
  setup: BenchSetup;
  /** Guidance scale of every run. */
  guidance: number;
  /** Latency budget, ms per image on this machine (give this or `targetFd`). */
  budgetMs?: number;
  /** Quality target, FD-classifier at the calibration count (give this or `budgetMs`). */
  targetFd?: number;
  /** The search space (default {@link defaultSearchSpace} on the card's spacing). */
  candidates?: TuneCandidate[];
  calibration?: TuneSeeds;
  /** Held-out seeds (default seed 2000, the calibration's count and batch). */
  heldOut?: TuneSeeds;
  /** Samples of the screening round (default one calibration batch). */
  screenCount?: number;
  /** Candidates measured on the whole calibration set (default 8). */
  finalists?: number;
  onEvent?: (e: TuneEvent) => void;
  signal?: AbortSignal;
}

/** One evaluated candidate. */
export interface TuneEvaluation {
  candidate: TuneCandidate;
  label: string;
  figures: TuneFigures;
  /** Model calls per run by kind. */
  calls: { perRun: number; full: number; reuse: number; skip: number };
  timesteps: number[];
}

/** Progress of a tune. */
export type TuneEvent =
  | { type: 'plan'; candidates: number; dropped: string[] }
  | { type: 'evaluated'; round: 'screen' | 'calibration' | 'held-out'; index: number; total: number; evaluation: TuneEvaluation };

/** What {@link tune} returns. */
export interface TuneResult {
  /** The configuration to write (`writeTunedConfig`). */
  config: TunedConfig;
  pick: TuneEvaluation;
  heldOut: TuneEvaluation;
  /** Screening round (every candidate) and calibration round (the finalists). */
  screened: TuneEvaluation[];
  finalists: TuneEvaluation[];
  /** The calibration round's Pareto front (wall time per image vs FD). */
  front: TuneEvaluation[];
  /** Candidates refused by planning (with the reason). */
  dropped: string[];
}

/** A tune that cannot pick (bad options, or no candidate meets the objective). */
export class TuneError extends Error {
  constructor(
    message: string,
    readonly evaluations: TuneEvaluation[] = [],
  ) {
    super(message);
    this.name = 'TuneError';
  }
}

/** The noise streams of a seed set (sample i → seedForSample(seed, i)). */
export function seedStreams(s: Pick<TuneSeeds, 'seed' | 'count'>): Set<number> {
  return new Set(Array.from({ length: s.count }, (_, i) => seedForSample(s.seed, i)));
}

/** Throw unless the two seed sets draw from disjoint noise streams. */
export function checkDisjointSeeds(a: Pick<TuneSeeds, 'seed' | 'count'>, b: Pick<TuneSeeds, 'seed' | 'count'>): void {
  const sa = seedStreams(a);
  const shared = [...seedStreams(b)].filter((s) => sa.has(s)).length;
  if (a.seed === b.seed || shared > 0) {
    throw new TuneError(
      `the held-out seeds (seed ${b.seed}) share ${a.seed === b.seed ? 'every' : shared} noise stream(s) with the calibration seeds (seed ${a.seed}); ` +
        'pick another --held-out-seed',
    );
  }
}

function checkSeeds(s: TuneSeeds, what: string): void {
  for (const [k, v, min] of [
    ['seed', s.seed, 0],
    ['count', s.count, 2],
    ['batch', s.batch, 1],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new TuneError(`${what} ${k} must be an integer ≥ ${min}, got ${v}`);
  }
  if (s.batch > s.count) throw new TuneError(`${what} batch (${s.batch}) exceeds its count (${s.count}); use batch ≤ count`);
}

/** The objective of a tune's options (exactly one of budget and target). */
export function objectiveOf(o: Pick<TuneOptions, 'budgetMs' | 'targetFd'>): TuneObjective {
  const hasBudget = o.budgetMs !== undefined;
  const hasTarget = o.targetFd !== undefined;
  if (hasBudget === hasTarget) {
    throw new TuneError(
      hasBudget
        ? 'give a latency budget or a quality target, not both: drop --budget-ms or --target-fd'
        : 'nothing to tune for: give --budget-ms MS (ms per image on this machine) or --target-fd FD (FD-classifier to reach)',
    );
  }
  if (hasBudget && !(o.budgetMs! > 0 && Number.isFinite(o.budgetMs!)))
    throw new TuneError(`--budget-ms must be a positive number of ms per image, got ${o.budgetMs}`);
  if (hasTarget && !(o.targetFd! > 0 && Number.isFinite(o.targetFd!)))
    throw new TuneError(`--target-fd must be a positive FD-classifier value, got ${o.targetFd}`);
  return hasBudget ? { kind: 'budget', budgetMs: o.budgetMs! } : { kind: 'target-fd', targetFd: o.targetFd! };
}

/** Whether figures meet the objective. */
export function meetsObjective(f: Pick<TuneFigures, 'fd' | 'msPerImage'>, o: TuneObjective): boolean {
  return o.kind === 'budget' ? f.msPerImage <= o.budgetMs : f.fd <= o.targetFd;
}

/** The pick among evaluations: lowest FD within the budget, or the fastest reaching the target (null when none meets it). */
export function pickBest(evals: readonly TuneEvaluation[], o: TuneObjective): TuneEvaluation | null {
  const ok = evals.filter((e) => meetsObjective(e.figures, o));
  if (ok.length === 0) return null;
  const key = (e: TuneEvaluation) => (o.kind === 'budget' ? [e.figures.fd, e.figures.msPerImage] : [e.figures.msPerImage, e.figures.fd]);
  return ok.reduce((a, b) => {
    const [a0, a1] = key(a);
    const [b0, b1] = key(b);
    return b0! < a0! || (b0 === a0 && b1! < a1!) ? b : a;
  });
}

/** Indices of the first `layers` Pareto layers of (msPerImage, fd), best layer first. */
export function paretoLayers(evals: readonly TuneEvaluation[], layers: number): number[] {
  let left = evals.map((_, i) => i);
  const out: number[] = [];
  for (let l = 0; l < layers && left.length > 0; l++) {
    const front = paretoFront(left.map((i) => ({ x: evals[i]!.figures.msPerImage, y: evals[i]!.figures.fd }))).map((j) => left[j]!);
    out.push(...front);
    left = left.filter((i) => !front.includes(i));
  }
  return out;
}

/** Run options of a candidate: the card's path (as the bench and `sample --config` take it) with the candidate's spacing. */
function adjustSpacing(c: TuneCandidate) {
  return <T extends { timesteps?: object }>(o: T): T => ({ ...o, timesteps: { ...(o.timesteps ?? {}), spacing: c.spacing } });
}

/** The plan of a candidate at one sample: grid and calls per run by kind (refuses what cannot run). */
export function candidatePlan(
  setup: BenchSetup,
  c: TuneCandidate,
  guidance: number,
): { timesteps: number[]; calls: number; full: number; reuse: number; skip: number } {
  const run = adjustSpacing(c)(cellOptions(setup, { ...c, guidance }, 0, 1, 0));
  const plan = planSample(run);
  if (c.fr.kind === 'none') return { timesteps: plan.timesteps, calls: plan.calls, full: plan.calls, reuse: 0, skip: 0 };
  const k = countCalls(policyFor(c.fr, plan.calls));
  return { timesteps: plan.timesteps, calls: plan.calls, full: k.keyframe, reuse: k.reuse, skip: k.skip };
}

/** Sample a candidate on a seed set and measure FD-classifier (± bootstrap) and wall time per image. */
async function evaluate(
  setup: BenchSetup,
  c: TuneCandidate,
  guidance: number,
  seeds: TuneSeeds,
  frNet: (points: string | string[]) => Promise<FeatureReuseCapable>,
  signal?: AbortSignal,
): Promise<TuneEvaluation> {
  const meter = setup.meter;
  if (!meter || meter.hasReferenceStats === false)
    throw new TuneError(`model ${setup.name} has no quality meter with reference statistics: tune needs FD-classifier`);
  const adjust = adjustSpacing(c);
  const cell = { solver: c.solver, nfe: c.nfe, pfdiff: c.pfdiff, guidance };
  let model: DiffusionModel = setup.model;
  let frModel: FeatureReuseModel | undefined;
  if (c.fr.kind !== 'none') {
    const choice = reuseChoiceOf(c.fr);
    const points = choice.points ?? ('policy' in choice.keyframes ? choice.keyframes.policy.points : undefined) ?? 'frdiff';
    const fr = await featureReuseFor(await frNet(points), adjust(cellOptions(setup, cell, 0, seeds.batch, seeds.seed)), choice);
    frModel = fr.model;
    model = frModel;
  }
  let full = 0;
  let reuse = 0;
  let skip = 0;
  const r = await sampleAll(
    setup,
    { seeds },
    model,
    cell,
    () => {
      if (frModel) {
        full += frModel.stats.keyframe;
        reuse += frModel.stats.reuse;
        skip += frModel.stats.skip;
      }
    },
    signal,
    () => frModel?.reset(),
    adjust,
  );
  const runs = Math.ceil(seeds.count / seeds.batch);
  if (!frModel) full = r.calls;
  const measured = await meter.measure(r.samples, seeds.count);
  const fd = frechetDistance(featureStatistics(measured.features, meter.featureDim), meter.referenceStats);
  const spread = fdBootstrap(measured.features, seeds.count, meter.featureDim, meter.referenceStats);
  return {
    candidate: c,
    label: candidateLabel(c),
    figures: { seed: seeds.seed, count: seeds.count, fd, fdStd: spread.std, msPerImage: r.wallMs / seeds.count },
    calls: { perRun: r.perRun, full: full / runs, reuse: reuse / runs, skip: skip / runs },
    timesteps: r.timesteps,
  };
}

/** Tune (see the module notes). */
export async function tune(o: TuneOptions): Promise<TuneResult> {
  const { setup, guidance, signal } = o;
  const emit = o.onEvent ?? (() => {});
  const objective = objectiveOf(o);
  if (!(guidance >= 0 && Number.isFinite(guidance))) throw new TuneError(`guidance must be a number ≥ 0, got ${guidance}`);
  const calibration = o.calibration ?? DEFAULT_CALIBRATION;
  checkSeeds(calibration, 'calibration');
  const heldOutSeeds = o.heldOut ?? { seed: DEFAULT_HELD_OUT_SEED, count: calibration.count, batch: calibration.batch };
  checkSeeds(heldOutSeeds, 'held-out');
  checkDisjointSeeds(calibration, heldOutSeeds);
  const screenCount = o.screenCount ?? calibration.batch;
  if (!Number.isInteger(screenCount) || screenCount < 2 || screenCount > calibration.count) {
    throw new TuneError(`screenCount must be an integer in [2, ${calibration.count}] (the calibration count), got ${screenCount}`);
  }
  const finalistCount = o.finalists ?? 8;
  if (!Number.isInteger(finalistCount) || finalistCount < 1) throw new TuneError(`finalists must be an integer ≥ 1, got ${finalistCount}`);
  if (!setup.meter || setup.meter.hasReferenceStats === false) {
    throw new TuneError(`model ${setup.name} has no quality meter with reference statistics: tune needs FD-classifier`);
  }
  const cardSpacing = (setup.sampling.scheduler.timestepOptions.spacing ?? 'linspace') as TuneCandidate['spacing'];
  const all = o.candidates ?? defaultSearchSpace({ spacing: cardSpacing, featureReuse: setup.featureReuse !== undefined });
  if (all.length === 0) throw new TuneError('the search space is empty: give at least one candidate');

  // Plan every candidate before any sampling: what cannot run is dropped with its reason.
  const dropped: string[] = [];
  const candidates: TuneCandidate[] = [];
  const frNets = new Map<string, FeatureReuseCapable>();
  const frNet = async (points: string | string[]): Promise<FeatureReuseCapable> => {
    const id = JSON.stringify(points);
    if (!frNets.has(id)) {
      if (!setup.featureReuse) throw new Error(`model ${setup.name} offers no feature reuse here`);
      frNets.set(id, await setup.featureReuse(points));
    }
    return frNets.get(id)!;
  };
  for (const c of all) {
    try {
      candidatePlan(setup, c, guidance);
      if (c.fr.kind !== 'none') {
        const choice = reuseChoiceOf(c.fr);
        await frNet(choice.points ?? ('policy' in choice.keyframes ? choice.keyframes.policy.points : undefined) ?? 'frdiff');
      }
      candidates.push(c);
    } catch (e) {
      dropped.push(`${candidateLabel(c, cardSpacing)}: ${(e as Error).message}`);
    }
  }
  emit({ type: 'plan', candidates: candidates.length, dropped });
  if (candidates.length === 0) throw new TuneError(`no candidate can run:\n  ${dropped.join('\n  ')}`);

  const label = (e: TuneEvaluation): TuneEvaluation => ({ ...e, label: candidateLabel(e.candidate, cardSpacing) });
  // Round 1: screen every candidate on the first screenCount calibration samples.
  const screenSeeds: TuneSeeds = { seed: calibration.seed, count: screenCount, batch: Math.min(calibration.batch, screenCount) };
  const screened: TuneEvaluation[] = [];
  for (const [i, c] of candidates.entries()) {
    const e = label(await evaluate(setup, c, guidance, screenSeeds, frNet, signal));
    screened.push(e);
    emit({ type: 'evaluated', round: 'screen', index: i, total: candidates.length, evaluation: e });
  }
  // Round 2: the first two Pareto layers (at most `finalists`) on the whole calibration set.
  let finalists: TuneEvaluation[];
  if (screenCount === calibration.count) finalists = screened;
  else {
    const chosen = paretoLayers(screened, 2).slice(0, finalistCount);
    finalists = [];
    for (const [n, i] of chosen.entries()) {
      const e = label(await evaluate(setup, screened[i]!.candidate, guidance, calibration, frNet, signal));
      finalists.push(e);
      emit({ type: 'evaluated', round: 'calibration', index: n, total: chosen.length, evaluation: e });
    }
  }
  const front = paretoLayers(finalists, 1)
    .map((i) => finalists[i]!)
    .sort((a, b) => a.figures.msPerImage - b.figures.msPerImage);
  const pick = pickBest(finalists, objective);
  if (!pick) {
    const closest =
      objective.kind === 'budget'
        ? `the cheapest finalist costs ${Math.min(...finalists.map((e) => e.figures.msPerImage)).toFixed(2)} ms per image: raise --budget-ms`
        : `the best finalist reaches FD-classifier ${Math.min(...finalists.map((e) => e.figures.fd)).toFixed(3)}: raise --target-fd`;
    throw new TuneError(
      `no candidate meets ${objective.kind === 'budget' ? `the budget of ${objective.budgetMs} ms per image` : `FD-classifier ${objective.targetFd}`} on the calibration set; ${closest}`,
      finalists,
    );
  }
  // The held-out check: the pick on seeds it never saw.
  const heldOut = label(await evaluate(setup, pick.candidate, guidance, heldOutSeeds, frNet, signal));
  emit({ type: 'evaluated', round: 'held-out', index: 0, total: 1, evaluation: heldOut });
  for (const net of frNets.values()) net.clearCache();

  const plan = candidatePlan(setup, pick.candidate, guidance);
  const c = cpus();
  const config: TunedConfig = {
    format: TUNED_CONFIG_FORMAT,
    model: { name: setup.name, sha256: setup.modelHash },
    guidance,
    sampling: pick.candidate,
    objective,
    plan,
    calibration: pick.figures,
    heldOut: { ...heldOut.figures, meetsObjective: meetsObjective(heldOut.figures, objective) },
    front: front.map((e) => ({ label: e.label, fd: e.figures.fd, msPerImage: e.figures.msPerImage })),
    machine: { cpu: c[0]?.model ?? 'unknown', cores: c.length },
    generatedAt: new Date().toISOString(),
  };
  return { config, pick, heldOut, screened, finalists, front, dropped };
}

/** Options of {@link tuneOnnxModel}: {@link TuneOptions} with an ONNX model file (and its card) instead of a setup. */
export interface TuneOnnxModelOptions extends Omit<TuneOptions, 'setup'> {
  /** The ONNX diffusion model (its card is the .json next to it unless `cardPath` is given). */
  modelPath: string;
  cardPath?: string;
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/** {@link tune} on an ONNX model file with the shipped Fashion-MNIST classifier as the quality meter (loaded and released here). */
export async function tuneOnnxModel(o: TuneOnnxModelOptions): Promise<TuneResult> {
  objectiveOf(o); // before the model loads
  const { modelPath, cardPath, threads, ...rest } = o;
  const setup = await onnxSetup({ modelPath, ...(cardPath !== undefined ? { cardPath } : {}), ...(threads !== undefined ? { threads } : {}) });
  try {
    return await tune({ ...rest, setup });
  } finally {
    await setup.release();
  }
}
