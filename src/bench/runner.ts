/**
 * The bench runner: expands a grid into cells, computes (or loads) the reference runs, runs every
 * unfinished cell on the fixed seed set, measures it, and stores it — resumable at cell granularity.
 *
 * Per cell: FD-classifier of the samples against the shipped test-set statistics, class accuracy
 * (conditional runs), KID (optional), trajectory MSE/PSNR against the high-accuracy reference run
 * from the same noise and labels, for feature-reuse cells the error against the same sampler with
 * full computation, the model calls by kind, wall time, and the overhead
 *   overhead = wall time / (full calls × t_full + reuse calls × t_reuse)
 * with t_full, t_reuse the measured time of one network call at the cell's batch (how close the
 * sampler runs to the cost of the network alone; 1 = no cost besides the network).
 * @packageDocumentation
 */
import { cpus, platform, arch, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import {
  type AdaptiveReuseStats,
  type FeatureReuseCapable,
  type FeatureReuseModel,
  plannedCalls,
  layoutReusePolicy,
  countCalls,
  type ReusePolicy,
  modelCallAt,
  type Conditioning,
  type DiffusionModel,
  gaussianBatch,
  sample,
  planSample,
  type SampleOptions,
  getSolver,
  now,
  median,
  timeInterleaved,
} from '../core/index.js';
import { packageVersion } from '../node/index.js';
import { sampleOptionsFromCard, SampleRequestError, featureReuseFor, type FeatureReuseChoice, type FeatureReuseOnnxModel } from '../model/index.js';
import { alignReferenceGrid, classAccuracy, featureStatistics, frechetDistance, kid, trajectoryError } from '../metrics/index.js';
import { classOfSample } from './class-prompts.js';
import { fdBootstrap, type FdSpread } from './fd-bootstrap.js';
import { cellKey, referenceKey, type KeyContext } from './cell-key.js';
import { bestGroups, cellLabel, expandCells, methodLabel, settingsId, type BenchGrid, type CellSpec, type FrSpec } from './grid.js';
import type { BenchSetup } from './setup.js';
import { BenchStore } from './store.js';

/** Figures of one cell (null where a metric does not apply or was not asked for). */
export interface CellMetrics {
  /** FD-classifier vs the test-set statistics. */
  fd: number | null;
  /** Class accuracy (conditional runs). */
  accuracy: number | null;
  /** KID (mean ± std over subsets). */
  kid: { mean: number; std: number } | null;
  /**
   * Trajectory error vs the reference run from the same noise and labels and the same start time
   * `start` (the first time of the cell's grid; the reference grid is moved to start there).
   */
  trajectory: { mse: number; psnr: number; start?: number } | null;
  /** Bootstrap spread of `fd` (absent in cells measured before it was recorded). */
  fdSpread?: FdSpread | null;
  /** Feature-reuse cells: error vs the same sampler with full computation. */
  vsFull: { mse: number; psnr: number } | null;
}

/** Model calls of one cell (totals over all sampling runs, and per run). */
export interface CellCalls {
  /** Calls per sampling run (NFE as the solver counts them). */
  perRun: number;
  /** Total calls over all runs. */
  total: number;
  /** Full network passes (keyframes; every call without FR). */
  full: number;
  /** Cheap feature-reuse passes. */
  reuse: number;
  /** Calls answered from the keyframe without any network pass. */
  skip: number;
  /** Probe passes of adaptive recompute (absent in cells without it). */
  probe?: number;
}

/** Timings of one cell. */
export interface CellTiming {
  /** Total sampling wall time, ms (all runs). */
  wallMs: number;
  /** Time inside model calls, ms. */
  callMs: number;
  /** callMs / calls. */
  msPerCall: number;
  /** wallMs / calls. */
  wallPerCallMs: number;
  /** Measured time of one full network call at this cell's batch, ms. */
  oneCallMs: number;
  /** Measured time of one reuse call at this batch, ms (FR cells). */
  oneReuseCallMs: number | null;
  /** wallMs / (full × oneCallMs + reuse × oneReuseCallMs + probeMs). */
  overhead: number;
  /** Time in the probe passes of adaptive recompute, ms (absent without). */
  probeMs?: number;
  /** Time of the feature-forecast arithmetic (part of the reuse calls), ms (absent without a forecast). */
  forecastMs?: number;
  /**
   * Latent setups (a pipeline bench on class prompts): time of the VAE decode of all the cell's
   * samples, ms, in runs of the cell's batch. Not part of `wallMs` (the sampling loop alone, the
   * same quantity for every cell and model, which the headline's Pareto fronts compare); the
   * end-to-end time of the cell is wallMs + decodeMs.
   */
  decodeMs?: number;
  /** decodeMs / (wallMs + decodeMs): the decode's share of the end-to-end time. */
  decodeShare?: number;
}

/** One measured cell as stored in cells/<key>.json and results.json. */
export interface CellResult {
  format: 'rediffuse-bench-cell/1';
  key: string;
  label: string;
  method: string;
  settings: CellSpec;
  status: 'ok' | 'error';
  error?: string;
  /** The machine that computed this cell (its timings belong to it). */
  machine?: BenchResults['machine'];
  samples: number;
  batch: number;
  runs: number;
  steps?: number;
  timesteps?: number[];
  /** Policy actually used by an FR cell. */
  frPolicy?: { keyframes: number[]; mixing: unknown; points: unknown; calls: number };
  metrics?: CellMetrics;
  calls?: CellCalls;
  timing?: CellTiming;
  computedAt: string;
  /** Time spent on the cell including metrics, ms. */
  durationMs: number;
}

/** A `pfdiff: best` row: the winning k_h of a group. */
export interface BestRow {
  settings: Omit<CellSpec, 'pfdiff'>;
  metric: string;
  /** Winning k_h, or null when no candidate finished. */
  winner: string | null;
  /** The winner's cell key. */
  key: string | null;
  /** Each candidate's metric value. */
  candidates: Record<string, number | null>;
}

/** Progress events of a run. */
export type BenchEvent =
  | { type: 'plan'; cells: number; cached: number; pending: number; references: number; estimatedCalls: number; estimatedMs: number | null }
  | { type: 'reference'; guidance: number; cached: boolean }
  | { type: 'cell-start'; index: number; total: number; label: string; chunks: number }
  | { type: 'chunk'; index: number; chunk: number; chunks: number }
  | { type: 'cell-done'; index: number; total: number; label: string; cached: boolean; result: CellResult };

/** Options of {@link runBench}. */
export interface RunBenchOptions {
  grid: BenchGrid;
  setup: BenchSetup;
  /** Output folder (cells/, refs/, samples/ live here). */
  outDir: string;
  onEvent?: (e: BenchEvent) => void;
  signal?: AbortSignal;
  /** Only plan (estimate) and return without running. */
  dryRun?: boolean;
  /** The store to use (default: one on `outDir`; a dry run passes a dry-run store holding its imports). */
  store?: BenchStore;
  /** Timing repeats for the one-call measurement. Default 3. */
  timingRepeats?: number;
  /**
   * Report from the finished cells on disk only: nothing is sampled, and cells (or reference runs)
   * that are not on disk are listed as "not run" instead of being computed.
   */
  cachedOnly?: boolean;
  /**
   * Keys of full-compute cells whose samples to store for feature-reuse cells outside this grid
   * (a worker running one cell of a larger grid; see scale/jobs.ts). The grid's own are always kept.
   */
  keepSamplesOf?: ReadonlySet<string>;
}

/** Everything `results.json` holds. */
export interface BenchResults {
  format: 'rediffuse-bench-results/1';
  grid: BenchGrid;
  model: { name: string; kind: string; path: string | null; sha256: string; meter: string | null };
  machine: { cpu: string; cores: number; platform: string; arch: string; memoryGiB: number };
  versions: Record<string, string>;
  generatedAt: string;
  /** The reference runs: one per guidance and start time (the reference grid starts where the cells' grids start). */
  reference: { solver: string; nfe: number; runs: { guidance: number; start?: number; key: string; wallMs: number | null }[] };
  /** Measured one-call times by batch label (e.g. `full@32`, `full@64`). */
  callTiming: Record<string, number>;
  cells: CellResult[];
  best: BestRow[];
  /** Cells that were loaded from the store instead of computed. */
  cachedCells: number;
}

/**
 * Class labels of samples [offset, offset + n) at guidance g: cycling through the classes
 * ({@link classOfSample}, the rule a pipeline's class prompts follow too); none at guidance 0 or on a
 * label-free model.
 */
function cellLabels(setup: BenchSetup, guidance: number, offset: number, n: number): number[] | undefined {
  if (!setup.conditional || guidance === 0) return undefined;
  return Array.from({ length: n }, (_, i) => classOfSample(offset + i, setup.numClasses));
}

/** What one sampling run of a cell depends on (its feature reuse aside). */
export type CellRun = Pick<CellSpec, 'solver' | 'nfe' | 'pfdiff' | 'guidance' | 'spacing' | 'options'>;

/** `sample()` options (all but the model) of samples [offset, offset + n) of a cell: the card's path, as every client takes it. */
export function cellOptions(setup: BenchSetup, cell: CellRun, offset: number, n: number, seed: number): Omit<SampleOptions, 'model'> {
  if (setup.promptConditioning) {
    // A pipeline's denoiser: the card path without guidance, then the prompts' cond and guidance (per sample with class prompts).
    const base = sampleOptionsFromCard(setup.sampling, {
      solver: cell.solver,
      nfe: cell.nfe,
      ...(cell.pfdiff ? { pfdiff: cell.pfdiff } : {}),
      ...(cell.spacing ? { spacing: cell.spacing } : {}),
      ...(cell.options ? { solverOptions: cell.options } : {}),
      guidance: 1,
      classConditional: false,
      batch: n,
      seed,
    });
    return { ...base, ...setup.promptConditioning(cell.guidance, n, offset) };
  }
  const labels = cellLabels(setup, cell.guidance, offset, n);
  try {
    return sampleOptionsFromCard(setup.sampling, {
      solver: cell.solver,
      nfe: cell.nfe,
      ...(cell.pfdiff ? { pfdiff: cell.pfdiff } : {}),
      ...(cell.spacing ? { spacing: cell.spacing } : {}),
      ...(cell.options ? { solverOptions: cell.options } : {}),
      guidance: cell.guidance,
      ...(labels ? { classLabels: labels } : {}),
      classConditional: setup.conditional,
      batch: n,
      seed,
    });
  } catch (err) {
    if (err instanceof SampleRequestError && err.field === 'guidance' && !setup.conditional) {
      throw new Error(`guidance ${cell.guidance}: ${err.message}; in a grid: use guidance: [0]`, { cause: err });
    }
    throw err;
  }
}

/** Conditioning of the timing calls of a network batch of n (labels when the model takes them). */
function timingCond(setup: BenchSetup, n: number): Conditioning | undefined {
  if (setup.promptConditioning) return setup.promptConditioning(1, n).cond;
  const labels = cellLabels(setup, 1, 0, n);
  return labels ? { classLabels: labels } : undefined;
}

/** Run one sampling job over the whole seed set in chunks of `batch` (`adjust` edits each chunk's options, e.g. an aligned reference grid). */
export async function sampleAll(
  setup: BenchSetup,
  grid: Pick<BenchGrid, 'seeds'>,
  model: DiffusionModel,
  cell: CellRun,
  onChunk: (i: number, n: number) => void,
  signal: AbortSignal | undefined,
  beforeChunk?: () => void,
  adjust: (o: Omit<SampleOptions, 'model'>) => Omit<SampleOptions, 'model'> = (o) => o,
): Promise<{ samples: Float32Array; calls: number; perRun: number; wallMs: number; callMs: number; steps: number; timesteps: number[] }> {
  const { seed, count, batch } = grid.seeds;
  const d = setup.model.sampleShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count * d);
  const chunks = Math.ceil(count / batch);
  let calls = 0;
  let perRun = 0;
  let wallMs = 0;
  let callMs = 0;
  let steps = 0;
  let timesteps: number[] = [];
  for (let c = 0; c < chunks; c++) {
    const offset = c * batch;
    const n = Math.min(batch, count - offset);
    const noise = gaussianBatch(seed, n, d, 'float32', offset);
    beforeChunk?.();
    const r = await sample({
      ...adjust(cellOptions(setup, cell, offset, n, seed + offset)),
      model,
      initialNoise: noise,
      ...(signal ? { signal } : {}),
    });
    out.set(r.samples, offset * d);
    calls += r.calls;
    perRun = Math.max(perRun, r.calls);
    wallMs += r.wallMs;
    callMs += r.callMs;
    steps = r.steps;
    timesteps = r.timesteps;
    onChunk(c, chunks);
  }
  return { samples: out, calls, perRun, wallMs, callMs, steps, timesteps };
}

/** The machine description stored with the results. */
export function machineInfo(): BenchResults['machine'] {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, platform: platform(), arch: arch(), memoryGiB: Math.round(totalmem() / 2 ** 30) };
}

/** Read a reuse-policy file of a grid (validated against the run's calls by {@link layoutReusePolicy}). */
function readPolicyFile(file: string): ReusePolicy {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ReusePolicy;
  } catch (e) {
    throw new Error(`reuse policy ${file} cannot be read (${(e as Error).message}); write it with rediffuse autofr or fix the path`, { cause: e });
  }
}

/** The feature-reuse choice of an FR cell. */
export function reuseChoiceOf(fr: FrSpec): FeatureReuseChoice {
  if (fr.kind === 'interval')
    return {
      keyframes: { interval: fr.interval },
      mixing: fr.mixing,
      points: fr.points,
      ...(fr.space ? { mixSpace: fr.space } : {}),
      ...(fr.forecast ? { forecast: fr.forecast } : {}),
    };
  if (fr.kind === 'adaptive')
    return {
      keyframes: {
        adaptive: {
          threshold: fr.threshold,
          ...(fr.accumulate ? { accumulate: fr.accumulate } : {}),
          ...(fr.warmup ? { warmup: fr.warmup } : {}),
          ...(fr.maxInterval ? { maxInterval: fr.maxInterval } : {}),
        },
      },
      points: fr.points,
      ...(fr.forecast ? { forecast: fr.forecast } : {}),
      ...(fr.probe ? { probe: fr.probe } : {}),
    };
  if (fr.kind === 'policy') return { keyframes: { policy: readPolicyFile(fr.file) } };
  throw new Error('the cell has no feature reuse');
}

/** The reuse points of an FR choice (the choice's, else its policy's, else `frdiff`). */
function pointsOf(choice: FeatureReuseChoice): string | string[] {
  return choice.points ?? ('policy' in choice.keyframes ? choice.keyframes.policy.points : undefined) ?? 'frdiff';
}

/** The reuse policy of an FR cell for a run of `calls` calls (the run's real count: `plannedCalls`). */
export function policyFor(fr: FrSpec, calls: number): ReusePolicy {
  const choice = reuseChoiceOf(fr);
  try {
    return layoutReusePolicy(choice, calls);
  } catch (e) {
    throw new Error(fr.kind === 'policy' ? `${fr.file}: ${(e as Error).message}` : (e as Error).message, { cause: e });
  }
}

/** The time a cell's run starts at (its grid's first time: where x_T sits). */
export function startOf(setup: BenchSetup, cell: CellRun, seed: number): number {
  return planSample(cellOptions(setup, cell, 0, 1, seed)).timesteps[0]!;
}

/**
 * The options of the reference run for cells that start at `start`: the grid's reference solver and
 * NFE on the card's spacing, its grid moved to start at `start` when it starts elsewhere
 * ({@link alignReferenceGrid}), so trajectory error compares runs from the same start time.
 */
export function referenceAdjust(
  setup: BenchSetup,
  grid: BenchGrid,
  guidance: number,
  start: number,
): (o: Omit<SampleOptions, 'model'>) => Omit<SampleOptions, 'model'> {
  const refCell = { solver: grid.reference.solver, nfe: grid.reference.nfe, pfdiff: null, guidance };
  const planned = planSample(cellOptions(setup, refCell, 0, 1, grid.seeds.seed)).timesteps;
  if (planned[0] === start) return (o) => o;
  const times = alignReferenceGrid(planned, start);
  return (o) => ({ ...o, timesteps: { ...o.timesteps, timesteps: times } });
}

/** The full-compute cell a feature-reuse cell is compared against (same solver, NFE, PFDiff, guidance). */
function baselineOf(cell: CellSpec): CellSpec {
  return { ...cell, fr: { kind: 'none' } };
}

/** Keys of the full-compute cells that the feature-reuse cells among `cells` are compared against. */
export function reuseBaselineKeys(cells: readonly CellSpec[], ctx: KeyContext): Set<string> {
  return new Set(cells.filter((c) => c.fr.kind !== 'none').map((c) => cellKey(baselineOf(c), ctx)));
}

/** Run (or resume) a grid; see the module notes. */
export async function runBench(opts: RunBenchOptions): Promise<BenchResults> {
  const { grid, setup, signal } = opts;
  const emit = opts.onEvent ?? (() => {});
  const store = opts.store ?? new BenchStore(opts.outDir, opts.dryRun ? { dryRun: true } : {});
  const ctx: KeyContext = { modelHash: setup.modelHash, seeds: grid.seeds, reference: grid.reference, metrics: grid.metrics };
  const cells = expandCells(grid);
  // Full-compute cells first, so feature-reuse cells find their baseline's samples.
  const ordered = [...cells.filter((c) => c.fr.kind === 'none'), ...cells.filter((c) => c.fr.kind !== 'none')];
  const keys = new Map(ordered.map((c) => [c, cellKey(c, ctx)]));
  const baselineKeysNeeded = new Set([...reuseBaselineKeys(ordered, ctx), ...(opts.keepSamplesOf ?? [])]);
  // The reference runs: one per guidance and start time of the cells' grids.
  const refNeeds = new Map<string, { guidance: number; start: number }>();
  const refIdOf = new Map<CellSpec, string>();
  const startProblems: string[] = [];
  if (grid.metrics.trajectory) {
    for (const c of ordered) {
      let start: number;
      try {
        start = startOf(setup, c, grid.seeds.seed);
      } catch {
        continue; // the plan below reports the cell's problem
      }
      const id = `${c.guidance}@${start}`;
      refIdOf.set(c, id);
      if (!refNeeds.has(id)) {
        refNeeds.set(id, { guidance: c.guidance, start });
        try {
          referenceAdjust(setup, grid, c.guidance, start);
        } catch (e) {
          startProblems.push(`reference run for cells starting at t = ${start}: ${(e as Error).message}`);
        }
      }
    }
  }

  // Cost of one network call at the batch the cells use (guided calls run 2B).
  const callTiming: Record<string, number> = {};
  const d = setup.model.sampleShape.reduce((a, b) => a * b, 1);
  const timeCall = async (guided: boolean): Promise<number> => {
    const label = `full@${grid.seeds.batch * (guided ? 2 : 1)}`;
    if (callTiming[label] !== undefined) return callTiming[label]!;
    const n = grid.seeds.batch * (guided ? 2 : 1);
    const x = gaussianBatch(grid.seeds.seed + 7919, n, d);
    const cond = timingCond(setup, n);
    const call = modelCallAt(setup.schedule, setup.schedule.tMax * 0.5, n);
    const timing = await timeInterleaved([() => setup.model.predict(x, call, cond)], opts.timingRepeats ?? 3);
    return (callTiming[label] = timing.medianMs[0]!);
  };
  const frNets = new Map<string, FeatureReuseCapable>();
  const frNet = async (points: string | string[], probe?: true | string): Promise<FeatureReuseCapable> => {
    const id = JSON.stringify([points, probe ?? null]);
    if (!frNets.has(id)) {
      if (!setup.featureReuse)
        throw new Error(`model ${setup.name} offers no feature reuse here (no ONNX feature-reuse adapter): drop the fr entries from the grid`);
      frNets.set(id, await setup.featureReuse(points, probe !== undefined ? { probe } : undefined));
    }
    return frNets.get(id)!;
  };
  /** The network of an FR choice: by its points, with the probe graph for adaptive recompute. */
  const frNetOf = (choice: FeatureReuseChoice) => frNet(pointsOf(choice), 'adaptive' in choice.keyframes ? (choice.probe ?? true) : undefined);
  const timeReuseCall = async (points: string | string[], guided: boolean): Promise<number> => {
    const label = `reuse[${JSON.stringify(points)}]@${grid.seeds.batch * (guided ? 2 : 1)}`;
    if (callTiming[label] !== undefined) return callTiming[label]!;
    const net = await frNet(points);
    const n = grid.seeds.batch * (guided ? 2 : 1);
    const x = gaussianBatch(grid.seeds.seed + 7919, n, d);
    const cond = timingCond(setup, n);
    const call = modelCallAt(setup.schedule, setup.schedule.tMax * 0.5, n);
    const timing = await timeInterleaved([() => net.predictKeyframe(x, call, cond), () => net.predictReuse(x, call, cond)], opts.timingRepeats ?? 3);
    net.clearCache();
    return (callTiming[label] = timing.medianMs[1]!);
  };

  // Plan.
  const cached = ordered.filter((c) => store.readCell<CellResult>(keys.get(c)!) !== undefined);
  const pending = ordered.filter((c) => !cached.includes(c));
  const refKeys = new Map([...refNeeds].map(([id, n]) => [id, referenceKey(n.guidance, ctx, n.start)]));
  const refsToRun = grid.metrics.trajectory ? [...refNeeds.keys()].filter((id) => store.readArray('refs', refKeys.get(id)!) === undefined) : [];
  const runs = Math.ceil(grid.seeds.count / grid.seeds.batch);
  // Every run still to compute is checked (solver names and options, k_h, guidance, reuse points and
  // policy files) and its model calls counted on a free stand-in, before anything expensive.
  const planned = new Map<CellSpec, { calls: number; guided: boolean }>();
  const invalid: string[] = [];
  const planRun = async (cell: CellRun & { fr?: FrSpec }) => {
    const run = cellOptions(setup, cell, 0, 1, grid.seeds.seed);
    const calls = await plannedCalls({ ...run, model: setup.model });
    if (cell.fr && cell.fr.kind !== 'none') {
      const choice = reuseChoiceOf(cell.fr);
      policyFor(cell.fr, calls);
      await frNetOf(choice);
    }
    return { calls, guided: run.guidance !== undefined };
  };
  const refPlan = new Map<string, { calls: number; guided: boolean }>();
  if (!opts.cachedOnly) {
    for (const cell of pending) {
      try {
        planned.set(cell, await planRun(cell));
      } catch (e) {
        invalid.push(`${cellLabel(cell)}: ${(e as Error).message}`);
      }
    }
    for (const id of refsToRun) {
      const g = refNeeds.get(id)!.guidance;
      try {
        refPlan.set(id, await planRun({ solver: grid.reference.solver, nfe: grid.reference.nfe, pfdiff: null, guidance: g }));
      } catch (e) {
        invalid.push(`reference run (${grid.reference.solver}, ${grid.reference.nfe} calls, guidance ${g}): ${(e as Error).message}`);
      }
    }
    invalid.push(...startProblems);
  }
  if (invalid.length > 0) {
    const shown = invalid.slice(0, 20);
    if (invalid.length > shown.length) shown.push(`… and ${invalid.length - shown.length} more`);
    throw new Error(`${invalid.length} run(s) of the grid cannot be made, so nothing was computed; fix the grid:\n  ${shown.join('\n  ')}`);
  }
  const weight = (p: { calls: number; guided: boolean } | undefined) => (p ? p.calls * (p.guided ? 2 : 1) : 0);
  const estimatedCalls = runs * ([...planned.values()].reduce((a, p) => a + weight(p), 0) + [...refPlan.values()].reduce((a, p) => a + weight(p), 0));
  let estimatedMs: number | null = null;
  if (pending.length + refsToRun.length > 0 && !opts.dryRun) {
    estimatedMs = estimatedCalls * (await timeCall(false));
  }
  emit({
    type: 'plan',
    cells: ordered.length,
    cached: cached.length,
    pending: pending.length,
    references: refsToRun.length,
    estimatedCalls,
    estimatedMs,
  });

  const results: BenchResults = {
    format: 'rediffuse-bench-results/1',
    grid,
    model: { name: setup.name, kind: setup.kind, path: setup.modelPath, sha256: setup.modelHash, meter: setup.meter?.name ?? null },
    machine: machineInfo(),
    versions: { node: process.version, rediffuse: packageVersion(), ...setup.versions },
    generatedAt: new Date().toISOString(),
    reference: { solver: getSolver(grid.reference.solver).name, nfe: grid.reference.nfe, runs: [] },
    callTiming,
    cells: [],
    best: [],
    cachedCells: cached.length,
  };
  if (opts.dryRun) return results;

  // Reference runs, once per guidance setting and start time (and reused from disk afterwards).
  const refs = new Map<string, Float32Array>();
  if (grid.metrics.trajectory) {
    for (const [id, { guidance: g, start }] of refNeeds) {
      const key = refKeys.get(id)!;
      const stored = store.readArray('refs', key);
      if (!stored && opts.cachedOnly) continue;
      if (stored) {
        refs.set(id, stored.data);
        results.reference.runs.push({ guidance: g, start, key, wallMs: (stored.meta['wallMs'] as number) ?? null });
        emit({ type: 'reference', guidance: g, cached: true });
        continue;
      }
      emit({ type: 'reference', guidance: g, cached: false });
      const r = await sampleAll(
        setup,
        grid,
        setup.model,
        { solver: grid.reference.solver, nfe: grid.reference.nfe, pfdiff: null, guidance: g },
        () => {},
        signal,
        undefined,
        referenceAdjust(setup, grid, g, start),
      );
      if (r.timesteps[0] !== start) throw new Error(`reference run for t = ${start} started at t = ${r.timesteps[0]}: the aligned grid was not used`);
      store.writeArray('refs', key, r.samples, {
        shape: [grid.seeds.count, ...setup.model.sampleShape],
        solver: grid.reference.solver,
        nfe: grid.reference.nfe,
        guidance: g,
        start,
        seeds: grid.seeds,
        model: setup.modelHash,
        wallMs: r.wallMs,
      });
      refs.set(id, r.samples);
      results.reference.runs.push({ guidance: g, start, key, wallMs: r.wallMs });
    }
  }

  let realFeatures: ArrayLike<number> | undefined;
  const total = ordered.length;
  for (let index = 0; index < total; index++) {
    const cell = ordered[index]!;
    const key = keys.get(cell)!;
    const label = cellLabel(cell);
    const prior = store.readCell<CellResult>(key);
    if (prior) {
      results.cells.push(prior);
      emit({ type: 'cell-done', index, total, label, cached: true, result: prior });
      continue;
    }
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    const t0 = now();
    const chunks = Math.ceil(grid.seeds.count / grid.seeds.batch);
    emit({ type: 'cell-start', index, total, label, chunks });
    const base: Omit<CellResult, 'status' | 'computedAt' | 'durationMs'> = {
      format: 'rediffuse-bench-cell/1',
      key,
      label,
      method: methodLabel(cell),
      settings: cell,
      samples: grid.seeds.count,
      batch: grid.seeds.batch,
      runs: chunks,
    };
    if (opts.cachedOnly) {
      results.cells.push({
        ...base,
        status: 'error',
        error: 'not run (report made from finished cells only)',
        computedAt: new Date().toISOString(),
        durationMs: 0,
      });
      continue;
    }
    let result: CellResult;
    try {
      const guided = planned.get(cell)?.guided ?? cell.guidance > 1;
      let model: DiffusionModel = setup.model;
      let frModel: FeatureReuseModel | undefined;
      let policy: ReusePolicy | undefined;
      if (cell.fr.kind !== 'none') {
        const choice = reuseChoiceOf(cell.fr);
        const fr = await featureReuseFor(await frNetOf(choice), cellOptions(setup, cell, 0, grid.seeds.batch, grid.seeds.seed), choice);
        policy = fr.policy;
        frModel = fr.model;
        model = frModel;
      }
      const oneCallMs = await timeCall(guided);
      const oneReuseCallMs = policy && countCalls(policy).reuse > 0 ? await timeReuseCall(policy.points ?? 'frdiff', guided) : policy ? 0 : null;
      let full = 0;
      let reuse = 0;
      let skip = 0;
      let probe = 0;
      let probeMs = 0;
      const frNetStats = frModel ? ((await frNetOf(reuseChoiceOf(cell.fr))) as Partial<FeatureReuseOnnxModel>) : undefined;
      frNetStats?.resetStats?.();
      const r = await sampleAll(
        setup,
        grid,
        model,
        cell,
        (c, n) => {
          if (frModel) {
            full += frModel.stats.keyframe;
            reuse += frModel.stats.reuse;
            skip += frModel.stats.skip;
            const st = frModel.stats as Partial<AdaptiveReuseStats>;
            probe += st.probe ?? 0;
            probeMs += st.probeMs ?? 0;
          }
          emit({ type: 'chunk', index, chunk: c, chunks: n });
        },
        signal,
        () => frModel?.reset(),
      );
      if (!frModel) full = r.calls;
      if (cell.fr.kind === 'none' && baselineKeysNeeded.has(key)) {
        store.writeArray('samples', key, r.samples, { shape: [grid.seeds.count, ...setup.model.sampleShape], cell });
      }
      // Metrics.
      const metrics: CellMetrics = { fd: null, accuracy: null, kid: null, trajectory: null, vsFull: null, fdSpread: null };
      const m = grid.metrics;
      const meter = setup.meter;
      // A latent setup's samples are latents: the meter scores their VAE decodes, timed apart from sampling.
      let images: Float32Array = r.samples;
      let decodeMs: number | undefined;
      if (setup.decode) {
        const td = now();
        images = await setup.decode(r.samples, grid.seeds.count, grid.seeds.batch);
        decodeMs = now() - td;
      }
      if (meter && (m.fd || m.accuracy || m.kid)) {
        const measured = await meter.measure(images, grid.seeds.count);
        if (m.fd && meter.hasReferenceStats !== false) {
          metrics.fd = frechetDistance(featureStatistics(measured.features, meter.featureDim), meter.referenceStats);
          metrics.fdSpread = fdBootstrap(measured.features, grid.seeds.count, meter.featureDim, meter.referenceStats);
        }
        if (m.accuracy && cell.guidance > 0 && setup.conditional && measured.logits && meter.numClasses) {
          const labels = cellLabels(setup, cell.guidance, 0, grid.seeds.count)!;
          metrics.accuracy = classAccuracy(measured.logits, labels, meter.numClasses).accuracy;
        }
        if (m.kid && meter.realFeatures) {
          realFeatures ??= await meter.realFeatures(10000);
          const k = kid(measured.features, realFeatures, meter.featureDim, { subsetSize: Math.min(1000, grid.seeds.count), subsets: 20, seed: 0 });
          metrics.kid = { mean: k.mean, std: k.std };
        }
      }
      if (m.trajectory) {
        const start = r.timesteps[0]!;
        const ref = refs.get(refIdOf.get(cell) ?? '');
        if (!ref) throw new Error(`no reference run starts at t = ${start} (guidance ${cell.guidance})`);
        // The reference of this cell's (guidance, start): the check is the metric's own.
        const te = trajectoryError(r.samples, ref, grid.seeds.count, undefined, { sample: start, reference: refNeeds.get(refIdOf.get(cell)!)!.start });
        metrics.trajectory = { mse: te.mse, psnr: te.psnr, start };
      }
      if (cell.fr.kind !== 'none') {
        const bKey = cellKey(baselineOf(cell), ctx);
        let baseSamples = store.readArray('samples', bKey)?.data;
        if (!baseSamples) {
          baseSamples = (await sampleAll(setup, grid, setup.model, cell, () => {}, signal)).samples;
          store.writeArray('samples', bKey, baseSamples, { shape: [grid.seeds.count, ...setup.model.sampleShape], cell: baselineOf(cell) });
        }
        const te = trajectoryError(r.samples, baseSamples, grid.seeds.count);
        metrics.vsFull = { mse: te.mse, psnr: te.psnr };
      }
      const networkMs = full * oneCallMs + reuse * (oneReuseCallMs ?? 0) + probeMs;
      const forecastMs = cell.fr.kind !== 'none' && cell.fr.kind !== 'policy' && cell.fr.forecast ? frNetStats?.stats?.forecast.ms : undefined;
      result = {
        ...base,
        status: 'ok',
        steps: r.steps,
        timesteps: r.timesteps,
        ...(policy ? { frPolicy: { keyframes: policy.keyframes, mixing: policy.mixing, points: policy.points ?? 'frdiff', calls: policy.calls } } : {}),
        metrics,
        calls: { perRun: r.perRun, total: r.calls, full, reuse, skip, ...(probe > 0 ? { probe } : {}) },
        timing: {
          wallMs: r.wallMs,
          callMs: r.callMs,
          msPerCall: r.calls > 0 ? r.callMs / r.calls : 0,
          wallPerCallMs: r.calls > 0 ? r.wallMs / r.calls : 0,
          oneCallMs,
          oneReuseCallMs,
          overhead: networkMs > 0 ? r.wallMs / networkMs : 0,
          ...(probe > 0 ? { probeMs } : {}),
          ...(forecastMs !== undefined ? { forecastMs } : {}),
          ...(decodeMs !== undefined ? { decodeMs, decodeShare: decodeMs / (r.wallMs + decodeMs) } : {}),
        },
        machine: machineInfo(),
        computedAt: new Date().toISOString(),
        durationMs: now() - t0,
      };
    } catch (err) {
      if (signal?.aborted) throw err;
      result = { ...base, status: 'error', error: (err as Error).message, computedAt: new Date().toISOString(), durationMs: now() - t0 };
    }
    store.writeCell(key, result);
    results.cells.push(result);
    emit({ type: 'cell-done', index, total, label, cached: false, result });
  }

  // `best` rows: the winning k_h by the chosen metric.
  for (const g of bestGroups(grid)) {
    const candidates: Record<string, number | null> = {};
    let winner: string | null = null;
    let winnerKey: string | null = null;
    let bestValue = Infinity;
    for (const cell of results.cells) {
      const s = cell.settings;
      if (!s.pfdiff || settingsId(s, 'pfdiff') !== settingsId(g, 'pfdiff')) continue;
      const v = cell.status === 'ok' ? (grid.metrics.best === 'fd' ? cell.metrics!.fd : (cell.metrics!.trajectory?.mse ?? null)) : null;
      candidates[s.pfdiff] = v;
      if (v !== null && Number.isFinite(v) && v < bestValue) {
        bestValue = v;
        winner = s.pfdiff;
        winnerKey = cell.key;
      }
    }
    results.best.push({ settings: g, metric: grid.metrics.best, winner, key: winnerKey, candidates });
  }
  for (const net of frNets.values()) net.clearCache();
  return results;
}

/** Result of {@link pairedWallTime}. */
export interface PairedTiming {
  /** Labels of the two cells. */
  labels: [string, string];
  /** Wall time of each round, ms, per cell. */
  wallMs: [number[], number[]];
  /** Median wall time per cell, ms. */
  medianMs: [number, number];
}

/**
 * Time one sampling run (the first batch of the seed set) of two cells alternately, `rounds` times
 * each after the timing harness's untimed warm-up rounds (core/timing.ts), so that machine load
 * drifting during a bench hits both alike. Used to compare the wall time of feature reuse with full computation robustly.
 */
export async function pairedWallTime(
  setup: BenchSetup,
  grid: BenchGrid,
  cells: [CellSpec, CellSpec],
  rounds = 3,
  signal?: AbortSignal,
): Promise<PairedTiming> {
  const one: BenchGrid = { ...grid, seeds: { ...grid.seeds, count: grid.seeds.batch } };
  const models: { model: DiffusionModel; reset?: () => void }[] = [];
  for (const cell of cells) {
    if (cell.fr.kind === 'none') {
      models.push({ model: setup.model });
      continue;
    }
    if (!setup.featureReuse) throw new Error(`model ${setup.name} offers no feature reuse here: cannot time ${cellLabel(cell)}`);
    const choice = reuseChoiceOf(cell.fr);
    const { model: fr } = await featureReuseFor(
      await setup.featureReuse(pointsOf(choice), 'adaptive' in choice.keyframes ? { probe: choice.probe ?? true } : undefined),
      cellOptions(setup, cell, 0, grid.seeds.batch, grid.seeds.seed),
      choice,
    );
    models.push({ model: fr, reset: () => fr.reset() });
  }
  const timing = await timeInterleaved(
    models.map((m, i) => () => sampleAll(setup, one, m.model, cells[i]!, () => {}, signal, m.reset)),
    rounds,
  );
  const wallMs: [number[], number[]] = [timing.ms[0]!, timing.ms[1]!];
  return { labels: [cellLabel(cells[0]), cellLabel(cells[1])], wallMs, medianMs: [median(wallMs[0]), median(wallMs[1])] };
}
