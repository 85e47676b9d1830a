/**
 * Bench plots: Vega-Lite specs compiled to Vega, rendered headless to SVG, rasterised to PNG with
 * resvg. Three figures: quality vs NFE per solver ± PFDiff, quality vs wall time for feature-reuse
 * policies (with their full-compute baselines), and every cell on quality vs wall time with the
 * Pareto front (the cells no other cell beats on both axes), and the headline figure: the plain
 * solvers' front against the front of everything rediffuse adds (FD-classifier and trajectory error
 * vs wall time; pareto.ts).
 * @packageDocumentation
 */
import type { TopLevelSpec } from 'vega-lite';
import { frontsOf, paretoFront, type FrontMetric } from './pareto.js';
import type { BenchResults, CellResult } from './runner.js';
import { settingsId } from './grid.js';

/** One rendered figure. */
export interface RenderedPlot {
  /** File stem, e.g. `quality-vs-nfe`. */
  name: string;
  title: string;
  svg: string;
  png: Uint8Array;
}

/** A plotted point. */
interface Point {
  method: string;
  nfe: number;
  guidance: string;
  wallS: number;
  value: number;
  [k: string]: unknown;
}

/** Render a Vega-Lite spec to SVG and a 2× PNG. */
export async function renderVegaLite(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  // Loaded on first use: vega takes about a second to import, which every CLI start would pay.
  const [vega, { compile }, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  const vg = compile(spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true }, background: 'white' }).render().asPng();
  return { svg, png: new Uint8Array(png) };
}

/** The sampling run an FR cell shares with its full-compute baseline (everything but the FR setting). */
function runGroup(s: CellResult['settings']): string {
  return settingsId(s, 'fr');
}

function gLabel(g: number): string {
  return g === 0 ? 'unconditional' : g === 1 ? 'conditional' : `guidance ${g}`;
}

/** The quality axis: trajectory MSE when measured, else FD-classifier. */
function quality(results: BenchResults): { field: 'mse' | 'fd'; title: string; get: (c: CellResult) => number | null } {
  if (results.grid.metrics.trajectory) {
    return { field: 'mse', title: 'trajectory MSE vs reference (log)', get: (c) => c.metrics?.trajectory?.mse ?? null };
  }
  return { field: 'fd', title: 'FD-classifier (log)', get: (c) => c.metrics?.fd ?? null };
}

/** The cells of a results object after folding PFDiff k_h candidates into their `best` rows. */
function nfeSeries(results: BenchResults, get: (c: CellResult) => number | null): Point[] {
  const pts: Point[] = [];
  const bestKeys = new Set(results.best.map((b) => b.key));
  const groupOf = (g: BenchResults['best'][number]['settings']) => settingsId(g, 'pfdiff');
  const bestGroups = new Set(results.best.map((b) => groupOf(b.settings)));
  for (const c of results.cells) {
    const s = c.settings;
    if (c.status !== 'ok' || s.fr.kind !== 'none') continue;
    const v = get(c);
    if (v === null || !(v > 0)) continue;
    const group = groupOf(s);
    let method = c.method;
    if (s.pfdiff && bestGroups.has(group)) {
      if (!bestKeys.has(c.key)) continue;
      method = `${s.solver} + PFDiff (best k_h)`;
    }
    pts.push({ method, nfe: s.nfe, guidance: gLabel(s.guidance), wallS: c.timing!.wallMs / 1000, value: v, kh: s.pfdiff ?? '' });
  }
  return pts;
}

export { paretoFront } from './pareto.js';

const WIDTH = 360;
const HEIGHT = 260;
const schema = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Build and render the bench's figures (those for which the results hold data). */
export async function renderBenchPlots(results: BenchResults): Promise<RenderedPlot[]> {
  const q = quality(results);
  const out: RenderedPlot[] = [];

  const nfePts = nfeSeries(results, q.get);
  const nfeValues = [...new Set(nfePts.map((p) => p.nfe))];
  if (nfePts.length > 0 && nfeValues.length > 1) {
    const title = `Quality vs NFE per solver ± PFDiff (${results.model.name})`;
    const spec: TopLevelSpec = {
      $schema: schema,
      title,
      data: { values: nfePts },
      facet: { column: { field: 'guidance', type: 'nominal', title: null } },
      spec: {
        width: WIDTH,
        height: HEIGHT,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'nfe', type: 'quantitative', title: 'NFE (model calls)', scale: { zero: false }, axis: { values: nfeValues } },
          y: { field: 'value', type: 'quantitative', title: q.title, scale: { type: 'log' } },
          color: { field: 'method', type: 'nominal', title: 'method', legend: { labelLimit: 400 } },
        },
      },
    } as TopLevelSpec;
    out.push({ name: 'quality-vs-nfe', title, ...(await renderVegaLite(spec)) });
  }

  // FR policies vs wall time, with the full-compute baselines they are compared with.
  const frCells = results.cells.filter((c) => c.status === 'ok' && c.settings.fr.kind !== 'none');
  if (frCells.length > 0) {
    const groups = new Set(frCells.map((c) => runGroup(c.settings)));
    const pts: Point[] = [];
    for (const c of results.cells) {
      const s = c.settings;
      if (c.status !== 'ok' || !groups.has(runGroup(s))) continue;
      const v = q.get(c);
      if (v === null || !(v > 0)) continue;
      pts.push({ method: c.method, nfe: s.nfe, guidance: gLabel(s.guidance), wallS: c.timing!.wallMs / 1000, value: v, label: c.method });
    }
    const title = `Feature reuse: quality vs wall time (${results.model.name})`;
    const spec: TopLevelSpec = {
      $schema: schema,
      title,
      data: { values: pts },
      facet: { column: { field: 'guidance', type: 'nominal', title: null } },
      spec: {
        width: WIDTH,
        height: HEIGHT,
        layer: [
          {
            mark: { type: 'point', filled: true, size: 70 },
            encoding: {
              x: { field: 'wallS', type: 'quantitative', title: 'sampling wall time (s)', scale: { zero: false } },
              y: { field: 'value', type: 'quantitative', title: q.title, scale: { type: 'log' } },
              color: { field: 'method', type: 'nominal', title: 'method', legend: { labelLimit: 400 } },
              shape: { field: 'nfe', type: 'nominal', title: 'NFE' },
            },
          },
        ],
      },
    } as TopLevelSpec;
    out.push({ name: 'fr-quality-vs-wall-time', title, ...(await renderVegaLite(spec)) });
  }

  // The headline: the plain front against the accelerated front, on each quality metric measured.
  for (const metric of ['fd', 'trajectory_mse'] as FrontMetric[]) {
    const pts: Record<string, unknown>[] = [];
    for (const g of [...new Set(results.cells.map((c) => c.settings.guidance))]) {
      const f = frontsOf(results.cells, g, metric);
      const onFront = new Set([...f.plain, ...f.accelerated]);
      for (const p of f.points) {
        if (!(p.value > 0)) continue;
        pts.push({ wallS: p.wallMs / 1000, value: p.value, guidance: gLabel(g), family: p.family, label: p.label, front: onFront.has(p) });
      }
    }
    const families = new Set(pts.map((p) => p.family));
    if (pts.length < 2 || families.size < 2) continue;
    const yTitle = metric === 'fd' ? 'FD-classifier (log)' : 'trajectory MSE vs same-start reference (log)';
    const title = `Headline: plain solvers vs rediffuse, ${metric === 'fd' ? 'FD-classifier' : 'trajectory error'} vs wall time (${results.model.name})`;
    const spec = frontPlotSpec(title, pts, yTitle, { opacity: 0.5, frontField: 'front', frontLine: { color: { field: 'family', type: 'nominal' } } });
    out.push({ name: metric === 'fd' ? 'headline-fd' : 'headline-trajectory', title, ...(await renderVegaLite(spec)) });
  }

  // Pareto front of everything.
  const all = results.cells
    .filter((c) => c.status === 'ok' && q.get(c) !== null && q.get(c)! > 0)
    .map((c) => ({ c, x: c.timing!.wallMs / 1000, y: q.get(c)! }));
  if (all.length > 1) {
    const pts: Record<string, unknown>[] = [];
    for (const g of [...new Set(all.map((p) => p.c.settings.guidance))]) {
      const sub = all.filter((p) => p.c.settings.guidance === g);
      const front = new Set(paretoFront(sub));
      sub.forEach((p, i) =>
        pts.push({
          wallS: p.x,
          value: p.y,
          guidance: gLabel(g),
          family: p.c.settings.fr.kind !== 'none' ? (p.c.settings.pfdiff ? 'PFDiff + FR' : 'FR') : p.c.settings.pfdiff ? 'PFDiff' : 'solver',
          label: p.c.label,
          pareto: front.has(i),
        }),
      );
    }
    const title = `Every cell: quality vs wall time, Pareto front (${results.model.name})`;
    const spec = frontPlotSpec(title, pts, q.title, { opacity: 0.6, frontField: 'pareto', frontMark: { color: 'black', point: { color: 'black' } } });
    out.push({ name: 'pareto-front', title, ...(await renderVegaLite(spec)) });
  }
  return out;
}

/**
 * Quality vs wall time, one facet per guidance setting, every point coloured by its family and the
 * Pareto front (points whose `frontField` is true) drawn as a step line.
 */
function frontPlotSpec(
  title: string,
  pts: Record<string, unknown>[],
  yTitle: string,
  o: { opacity: number; frontField: string; frontMark?: Record<string, unknown>; frontLine?: Record<string, unknown> },
): TopLevelSpec {
  return {
    $schema: schema,
    title,
    data: { values: pts },
    facet: { column: { field: 'guidance', type: 'nominal', title: null } },
    spec: {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          mark: { type: 'point', opacity: o.opacity },
          encoding: {
            x: { field: 'wallS', type: 'quantitative', title: 'sampling wall time (s, log)', scale: { type: 'log' } },
            y: { field: 'value', type: 'quantitative', title: yTitle, scale: { type: 'log' } },
            color: { field: 'family', type: 'nominal', title: 'kind' },
          },
        },
        {
          transform: [{ filter: `datum.${o.frontField}` }],
          mark: { type: 'line', interpolate: 'step-after', point: true, ...o.frontMark },
          encoding: {
            x: { field: 'wallS', type: 'quantitative', sort: 'ascending' },
            y: { field: 'value', type: 'quantitative' },
            ...o.frontLine,
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  } as TopLevelSpec;
}
