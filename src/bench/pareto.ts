/**
 * The headline figure: wall-time speed-up at equal quality of everything rediffuse adds over the best
 * plain solver, from one grid's results.
 *
 * Each finished cell is either **plain** (a solver at some NFE and spacing, nothing else) or
 * **accelerated** (PFDiff, feature reuse of any kind, forecasting, adaptive recompute, a tuned
 * configuration: anything in its description besides the solver). Per guidance setting and family,
 * the Pareto front is the set of cells no other cell of the family beats on both wall time and
 * quality (lower is better on both).
 *
 * Quality levels: the best plain solver's FD-classifier at NFE 10, 20 and 50 (the lowest FD among
 * plain cells at that NFE). At a level q, each family's time is the wall time of its **first cell at
 * least as good**: the fastest cell with FD ≤ q (no interpolation along the front). The ratio is
 * plain time / accelerated time (> 1: rediffuse is faster).
 *
 * The spread rule: FD-classifier is a statistic of a finite sample, with bootstrap standard deviation
 * σ per cell (fd-bootstrap.ts). A cell is "within the spread" of q when FD ≤ q + 2·√(σ_cell² + σ_q²).
 * A speed-up is a result only if it survives giving the slower side the benefit of the doubt: the
 * accelerated side is **faster** when even the fastest plain cell within the spread is slower than the
 * fastest accelerated cell with FD ≤ q, **slower** in the mirror case, and otherwise the gap is
 * **inside the spread** (not a result). Without recorded spreads the verdict says so.
 *
 * Timing noise: wall time on a shared machine varies between identical computations. Cells of one
 * guidance setting whose samples are bit-identical (e.g. DPM-Solver++ 3M where its span limit makes
 * every step second order, i.e. DPM-Solver++ 2M) are replicates; detected by equal FD-classifier,
 * accuracy and trajectory MSE (all finite, compared exactly) and equal network calls. The largest
 * wall-time ratio between replicates is the run's timing noise ν. A verdict of faster/slower whose
 * speed-up S has max(S, 1/S) ≤ ν is downgraded to **inside timing noise**. Beside the wall-time
 * ratio the table gives the ratio in network-call equivalents (full calls + reuse calls × the measured
 * reuse/full call-time ratio + probe time / one call), a cost proxy that load on the machine does not move.
 * @packageDocumentation
 */
import type { BenchResults, CellResult } from './runner.js';

/** Which side of the headline comparison a cell is on. */
export type CellFamily = 'plain' | 'accelerated';

/** NFE whose best plain FD-classifier sets the headline's quality levels. */
export const HEADLINE_NFE: readonly number[] = [10, 20, 50];

/** Indices of the Pareto-optimal points (minimising both x and y). */
export function paretoFront(points: readonly { x: number; y: number }[]): number[] {
  const order = points.map((_, i) => i).sort((a, b) => points[a]!.x - points[b]!.x || points[a]!.y - points[b]!.y);
  const front: number[] = [];
  let bestY = Infinity;
  for (const i of order) {
    if (points[i]!.y < bestY) {
      front.push(i);
      bestY = points[i]!.y;
    }
  }
  return front;
}

/** Words in a method description that name something rediffuse adds on top of a solver. */
const ACCELERATION_WORDS = /pfdiff|\bfr\b|fr\/|feature reuse|forecast|taylor|adaptive|tuned|auto-?fr|cache/i;

/**
 * Plain or accelerated, from a cell's settings and description: plain when it has no PFDiff, no
 * feature reuse of any kind (`fr.kind` other than `none`), no other setting beyond solver, NFE,
 * guidance, spacing and solver options, and its method label names nothing of rediffuse's (PFDiff, FR, forecast,
 * adaptive, tuned, cache).
 */
export function cellFamily(cell: Pick<CellResult, 'settings' | 'method'>): CellFamily {
  const s = cell.settings as unknown as Record<string, unknown> & { pfdiff: string | null; fr?: { kind?: string } };
  if (s.pfdiff) return 'accelerated';
  if ((s.fr?.kind ?? 'none') !== 'none') return 'accelerated';
  const plainKeys = new Set(['solver', 'nfe', 'pfdiff', 'fr', 'guidance', 'spacing', 'options']);
  for (const [k, v] of Object.entries(s)) if (!plainKeys.has(k) && v !== undefined && v !== null && v !== false) return 'accelerated';
  return ACCELERATION_WORDS.test(cell.method) ? 'accelerated' : 'plain';
}

/** A cell on a front. */
export interface FrontPoint {
  label: string;
  method: string;
  nfe: number;
  family: CellFamily;
  wallMs: number;
  /** The quality value (FD-classifier or trajectory MSE). */
  value: number;
  /** Bootstrap standard deviation of FD-classifier (null when not recorded or for trajectory MSE). */
  spread: number | null;
  /** Start time of the cell's grid (trajectory error is against a reference from the same start). */
  start: number | null;
  /** Network-call equivalents of the whole cell (see {@link callEquivalents}); null without call records. */
  callEquivalents: number | null;
}

/**
 * Cost of a cell in full network calls: full + reuse × (one reuse call / one full call) + probe
 * time / one full call, over all runs, from the cell's call counts and its own one-call timings.
 */
export function callEquivalents(c: Pick<CellResult, 'calls' | 'timing'>): number | null {
  const calls = c.calls;
  const t = c.timing;
  if (!calls || !t || !(t.oneCallMs > 0)) return null;
  const reuseRatio = calls.reuse > 0 ? (t.oneReuseCallMs ?? NaN) / t.oneCallMs : 0;
  const v = calls.full + calls.reuse * reuseRatio + (t.probeMs ?? 0) / t.oneCallMs;
  return Number.isFinite(v) ? v : null;
}

/** The quality metrics a front can be drawn on. */
export type FrontMetric = 'fd' | 'trajectory_mse';

function pointOf(c: CellResult, metric: FrontMetric): FrontPoint | null {
  if (c.status !== 'ok' || !c.timing || !c.metrics) return null;
  const value = metric === 'fd' ? c.metrics.fd : (c.metrics.trajectory?.mse ?? null);
  if (value === null || value === undefined || !Number.isFinite(value) || !(c.timing.wallMs > 0)) return null;
  return {
    label: c.label,
    method: c.method,
    nfe: c.settings.nfe,
    family: cellFamily(c),
    wallMs: c.timing.wallMs,
    value,
    spread: metric === 'fd' ? (c.metrics.fdSpread?.std ?? null) : null,
    start: c.metrics.trajectory?.start ?? null,
    callEquivalents: callEquivalents(c),
  };
}

/** Two cells with bit-identical samples and their wall times (see the module notes). */
export interface TimingReplicate {
  a: string;
  b: string;
  /** Slower wall time / faster wall time. */
  ratio: number;
}

/** The replicate pairs of one guidance setting, largest wall-time ratio first. */
export function timingReplicates(cells: readonly CellResult[], guidance: number): TimingReplicate[] {
  const ok = cells.filter((c) => c.status === 'ok' && c.settings.guidance === guidance && c.metrics && c.timing && c.calls && c.timing.wallMs > 0);
  const id = (c: CellResult) => {
    const m = c.metrics!;
    const v = [m.fd, m.accuracy, m.trajectory?.mse ?? null];
    if (v.some((x) => x !== null && !Number.isFinite(x)) || m.fd === null || m.trajectory === null) return null;
    return JSON.stringify([...v, c.calls!.full, c.calls!.reuse, c.calls!.skip, c.samples]);
  };
  const groups = new Map<string, CellResult[]>();
  for (const c of ok) {
    const k = id(c);
    if (k === null) continue;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const out: TimingReplicate[] = [];
  for (const g of groups.values())
    for (let i = 0; i < g.length; i++)
      for (let j = i + 1; j < g.length; j++) {
        const [x, y] = [g[i]!, g[j]!];
        out.push({ a: x.label, b: y.label, ratio: Math.max(x.timing!.wallMs, y.timing!.wallMs) / Math.min(x.timing!.wallMs, y.timing!.wallMs) });
      }
  return out.sort((p, q) => q.ratio - p.ratio);
}

/** Every measured point of one guidance setting, and each family's front (sorted by wall time). */
export interface Fronts {
  guidance: number;
  metric: FrontMetric;
  points: FrontPoint[];
  plain: FrontPoint[];
  accelerated: FrontPoint[];
}

/** The plain and accelerated fronts of `cells` (one guidance setting) on `metric`. */
export function frontsOf(cells: readonly CellResult[], guidance: number, metric: FrontMetric): Fronts {
  const points = cells
    .filter((c) => c.settings.guidance === guidance)
    .map((c) => pointOf(c, metric))
    .filter((p): p is FrontPoint => p !== null);
  const front = (family: CellFamily) => {
    const mine = points.filter((p) => p.family === family);
    return paretoFront(mine.map((p) => ({ x: p.wallMs, y: p.value }))).map((i) => mine[i]!);
  };
  return { guidance, metric, points, plain: front('plain'), accelerated: front('accelerated') };
}

/** The verdict of one quality level. */
export type HeadlineVerdict =
  'faster' | 'slower' | 'inside spread' | 'inside timing noise' | 'spread not measured' | 'no plain cell' | 'no accelerated cell';

/** One quality level of the headline. */
export interface HeadlineLevel {
  guidance: number;
  /** The NFE whose best plain cell sets the level. */
  nfe: number;
  /** The cell that sets the level (the best plain cell at that NFE). */
  levelCell: FrontPoint;
  /** The level q (FD-classifier). */
  target: number;
  /** Fastest plain / accelerated cell with FD ≤ q. */
  plain: FrontPoint | null;
  accelerated: FrontPoint | null;
  /** plain.wallMs / accelerated.wallMs. */
  ratio: number | null;
  /** The same two cells' ratio in network-call equivalents (plain / accelerated). */
  callRatio: number | null;
  /** The run's timing noise ν (largest wall-time ratio of replicate cells), null without replicates. */
  timingNoise: number | null;
  /** Fastest cell of each family within the spread of q (see the module notes). */
  plainWithinSpread: FrontPoint | null;
  acceleratedWithinSpread: FrontPoint | null;
  /**
   * The speed-up that survives the spread: plainWithinSpread.wallMs / accelerated.wallMs, the plain side
   * given the benefit of the doubt (≤ `ratio`; > 1 exactly when the verdict before the timing-noise rule is faster).
   */
  spreadRatio: number | null;
  verdict: HeadlineVerdict;
}

/** How a cell reaches a level (written into every report). */
export const HEADLINE_RULE = 'first cell at least as good: the fastest cell with FD-classifier ≤ the level (no interpolation along the front)';

/** Whether `p` is within the spread of level `q` (spread σ_q): FD ≤ q + 2·√(σ_p² + σ_q²). */
function withinSpread(p: FrontPoint, q: number, sq: number): boolean {
  return p.value <= q + 2 * Math.sqrt((p.spread ?? 0) ** 2 + sq ** 2);
}

function fastest(points: readonly FrontPoint[], ok: (p: FrontPoint) => boolean): FrontPoint | null {
  let best: FrontPoint | null = null;
  for (const p of points) if (ok(p) && (best === null || p.wallMs < best.wallMs)) best = p;
  return best;
}

/** The headline levels of one guidance setting (FD-classifier), at the plain solvers' best FD at each of `nfes`. */
export function headlineLevels(results: BenchResults, guidance: number, nfes: readonly number[] = HEADLINE_NFE): HeadlineLevel[] {
  const { points } = frontsOf(results.cells, guidance, 'fd');
  const noise = timingReplicates(results.cells, guidance)[0]?.ratio ?? null;
  const out: HeadlineLevel[] = [];
  for (const nfe of nfes) {
    const atNfe = points.filter((p) => p.family === 'plain' && p.nfe === nfe);
    if (atNfe.length === 0) continue;
    const levelCell = atNfe.reduce((a, b) => (b.value < a.value ? b : a));
    const q = levelCell.value;
    const plainPts = points.filter((p) => p.family === 'plain');
    const accPts = points.filter((p) => p.family === 'accelerated');
    const plain = fastest(plainPts, (p) => p.value <= q);
    const accelerated = fastest(accPts, (p) => p.value <= q);
    const spreadKnown = levelCell.spread !== null && points.every((p) => p.spread !== null);
    const sq = levelCell.spread ?? 0;
    const plainWithinSpread = spreadKnown ? fastest(plainPts, (p) => withinSpread(p, q, sq)) : null;
    const acceleratedWithinSpread = spreadKnown ? fastest(accPts, (p) => withinSpread(p, q, sq)) : null;
    let verdict: HeadlineVerdict;
    if (!plain) verdict = 'no plain cell';
    else if (!accelerated) verdict = 'no accelerated cell';
    else if (!spreadKnown) verdict = 'spread not measured';
    else if (plainWithinSpread!.wallMs > accelerated.wallMs) verdict = 'faster';
    else if (acceleratedWithinSpread!.wallMs > plain.wallMs) verdict = 'slower';
    else verdict = 'inside spread';
    const ratio = plain && accelerated ? plain.wallMs / accelerated.wallMs : null;
    if ((verdict === 'faster' || verdict === 'slower') && noise !== null && ratio !== null && Math.max(ratio, 1 / ratio) <= noise) {
      verdict = 'inside timing noise';
    }
    out.push({
      guidance,
      nfe,
      levelCell,
      target: q,
      plain,
      accelerated,
      ratio,
      callRatio: plain?.callEquivalents && accelerated?.callEquivalents ? plain.callEquivalents / accelerated.callEquivalents : null,
      timingNoise: noise,
      plainWithinSpread,
      acceleratedWithinSpread,
      spreadRatio: plainWithinSpread && accelerated ? plainWithinSpread.wallMs / accelerated.wallMs : null,
      verdict,
    });
  }
  return out;
}

/** Every guidance setting's headline levels. */
export function headline(results: BenchResults, nfes: readonly number[] = HEADLINE_NFE): HeadlineLevel[] {
  return [...new Set(results.cells.map((c) => c.settings.guidance))].flatMap((g) => headlineLevels(results, g, nfes));
}

function gText(g: number): string {
  return g === 0 ? 'unconditional' : g === 1 ? 'conditional' : `guidance ${g}`;
}

function cellText(p: FrontPoint | null): string {
  if (!p) return '—';
  return `${p.method} @${p.nfe}: ${p.value.toFixed(3)}${p.spread !== null ? ` ± ${p.spread.toFixed(3)}` : ''}, ${(p.wallMs / 1000).toFixed(2)} s`;
}

/** One line per guidance setting naming its timing noise and the replicate pair that sets it. */
function noiseLines(results: BenchResults, guidances: readonly number[]): string[] {
  const lines = guidances.map((g) => {
    const reps = timingReplicates(results.cells, g);
    if (reps.length === 0) return `- ${gText(g)}: no replicate cells, timing noise not measured.`;
    const top = reps[0]!;
    return `- ${gText(g)}: timing noise ν = ${top.ratio.toFixed(2)}× (${top.a} vs ${top.b}; ${reps.length} replicate pair${reps.length === 1 ? '' : 's'}).`;
  });
  return [...lines, ''];
}

/** The headline section in Markdown (empty when the results hold no level). */
export function headlineMarkdown(results: BenchResults, level = 2, nfes: readonly number[] = HEADLINE_NFE): string {
  const rows = headline(results, nfes);
  if (rows.length === 0) return '';
  const h = '#'.repeat(level);
  const starts = [...new Set(results.cells.map((c) => c.metrics?.trajectory?.start).filter((s): s is number => s !== undefined))];
  const lines = [
    `${h} Headline: wall time of the best plain solver over the best of rediffuse at equal quality`,
    '',
    `Quality levels: the best plain solver's FD-classifier at NFE ${nfes.join(', ')}. A family reaches a level by the ${HEADLINE_RULE}. ` +
      'Speed-up = plain wall time / accelerated wall time, both measured in this run. "inside spread": the gap does not survive ' +
      'the FD-classifier bootstrap spread (a cell within 2·√(σ² + σ_level²) of the level counts for the slower side), so it is not a result. ' +
      "Within spread = the wall time of the fastest plain cell within the spread of the level over the accelerated cell's: the " +
      'speed-up once the plain side gets the benefit of the doubt (a result only when it exceeds 1). ' +
      "Speed-up in calls = the same two cells' ratio in network-call equivalents (full calls + reuse calls × the measured reuse/full " +
      'call-time ratio), which load on the machine does not move. "inside timing noise": the wall-time speed-up is no larger than the ' +
      'largest wall-time ratio between cells of this run with bit-identical samples (same computation, timed twice). ' +
      (starts.length > 0 ? `Trajectory errors in this report are against a reference from each cell's own start time (t = ${starts.join(', ')}).` : ''),
    '',
    ...noiseLines(results, [...new Set(rows.map((r) => r.guidance))]),
    '| setting | level (best plain @NFE) | FD level | fastest plain reaching it | fastest rediffuse reaching it | speed-up | within spread | speed-up in calls | verdict |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${gText(r.guidance)} | ${r.levelCell.method} @${r.nfe} | ${r.target.toFixed(3)}${r.levelCell.spread !== null ? ` ± ${r.levelCell.spread.toFixed(3)}` : ''} | ` +
        `${cellText(r.plain)} | ${cellText(r.accelerated)} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ` +
        `${r.spreadRatio === null ? '—' : `${r.spreadRatio.toFixed(2)}× (${r.plainWithinSpread!.method} @${r.plainWithinSpread!.nfe})`} | ` +
        `${r.callRatio === null ? '—' : `${r.callRatio.toFixed(2)}×`} | ${r.verdict} |`,
    ),
  ];
  return lines.join('\n');
}
