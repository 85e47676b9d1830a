/**
 * Bench report writers: `results.json` (every figure with its settings), a Markdown report (tables
 * per guidance setting, the PFDiff best-k_h table, the claims with their numbers, the plots), and a
 * generated section of BENCHMARKS.md between markers, so the committed benchmark page is written by
 * the tool and never by hand.
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../node/index.js';
import type { ClaimCheck } from './claims.js';
import { headlineMarkdown } from './pareto.js';
import { frLabel, settingsId } from './grid.js';
import type { RenderedPlot } from './plots.js';
import type { BenchResults, CellResult } from './runner.js';

function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v !== 0 && (Math.abs(v) < 10 ** -digits || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}

function gTitle(g: number): string {
  return g === 0 ? 'Unconditional' : g === 1 ? 'Conditional (no guidance)' : `Classifier-free guidance ${g}`;
}

/** Full-compute baseline of a cell (same solver, options, NFE, PFDiff, guidance, spacing; no FR). */
function baselineOf(results: BenchResults, c: CellResult): CellResult | undefined {
  const run = settingsId(c.settings, 'fr');
  return results.cells.find((b) => b.status === 'ok' && b.settings.fr.kind === 'none' && settingsId(b.settings, 'fr') === run);
}

/** A total over all sampling runs of a cell, per run. */
function perRun(total: number, c: CellResult): string {
  const v = total / c.runs;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** The Markdown table of a set of cells. */
export function cellsTable(results: BenchResults, cells: CellResult[]): string {
  const anyFr = cells.some((c) => c.settings.fr.kind !== 'none');
  const anyAcc = cells.some((c) => c.metrics?.accuracy !== null && c.metrics?.accuracy !== undefined);
  const anyKid = cells.some((c) => c.metrics?.kid);
  // adaptive recompute and feature forecasts: their probes and arithmetic, when any cell has them
  const anyProbe = cells.some((c) => (c.calls?.probe ?? 0) > 0);
  const anyForecast = cells.some((c) => c.timing?.forecastMs !== undefined);
  const anyStart = cells.some((c) => c.metrics?.trajectory?.start !== undefined);
  // latent cells: the VAE decode, timed apart from the sampling wall time
  const anyDecode = cells.some((c) => c.timing?.decodeMs !== undefined);
  const header = [
    'method',
    'NFE',
    'FD-classifier',
    ...(anyAcc ? ['accuracy'] : []),
    ...(anyKid ? ['KID ×10³'] : []),
    'traj. MSE',
    'traj. PSNR (dB)',
    ...(anyStart ? ['start t'] : []),
    ...(anyFr ? ['PSNR vs full (dB)', 'calls per run full/reuse/skip', 'speed-up'] : ['calls per run']),
    ...(anyProbe ? ['probes per run'] : []),
    ...(anyForecast ? ['forecast (ms)'] : []),
    'wall (s)',
    ...(anyDecode ? ['decode (s)', 'decode share'] : []),
    'ms/call',
    'overhead',
  ];
  const rows = cells.map((c) => {
    if (c.status !== 'ok') return [c.method, String(c.settings.nfe), `error: ${c.error?.replace(/\|/g, '/')}`, ...header.slice(3).map(() => '')];
    const m = c.metrics!;
    const base = anyFr && c.settings.fr.kind !== 'none' ? baselineOf(results, c) : undefined;
    return [
      c.method,
      String(c.settings.nfe),
      m.fdSpread ? `${num(m.fd, 3)} ± ${num(m.fdSpread.std, 3)}` : num(m.fd, 2),
      ...(anyAcc ? [m.accuracy === null ? '—' : `${(m.accuracy * 100).toFixed(1)}%`] : []),
      ...(anyKid ? [m.kid ? `${num(m.kid.mean * 1e3, 2)} ± ${num(m.kid.std * 1e3, 2)}` : '—'] : []),
      num(m.trajectory?.mse, 5),
      num(m.trajectory?.psnr, 2),
      ...(anyStart ? [m.trajectory?.start !== undefined ? String(m.trajectory.start) : '—'] : []),
      ...(anyFr
        ? [
            num(m.vsFull?.psnr, 2),
            `${perRun(c.calls!.full, c)}/${perRun(c.calls!.reuse, c)}/${perRun(c.calls!.skip, c)}`,
            base && sameMachine(base, c)
              ? `${(base.timing!.wallMs / c.timing!.wallMs).toFixed(2)}×`
              : c.settings.fr.kind === 'none'
                ? '1.00×'
                : base
                  ? '— (other machine)'
                  : '—',
          ]
        : [String(c.calls!.perRun)]),
      ...(anyProbe ? [c.calls!.probe ? perRun(c.calls!.probe, c) : '—'] : []),
      ...(anyForecast ? [c.timing!.forecastMs !== undefined ? c.timing!.forecastMs.toFixed(0) : '—'] : []),
      num(c.timing!.wallMs / 1000, 2),
      ...(anyDecode
        ? c.timing!.decodeMs !== undefined
          ? [num(c.timing!.decodeMs / 1000, 2), `${((c.timing!.decodeShare ?? 0) * 100).toFixed(1)}%`]
          : ['—', '—']
        : []),
      c.timing!.msPerCall.toFixed(1),
      num(c.timing!.overhead, 2),
    ];
  });
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The Markdown of the `best` k_h rows. */
function bestTable(results: BenchResults): string {
  if (results.best.length === 0) return '';
  const metric = results.grid.metrics.best === 'fd' ? 'FD-classifier' : 'trajectory MSE';
  const kh = ['1_1', '2_1', '2_2', '3_1', '3_2', '3_3'];
  const header = ['solver', 'NFE', 'guidance', 'FR', 'best k_h', ...kh.map((k) => `${k}`)];
  const rows = results.best.map((b) => [
    b.settings.solver,
    String(b.settings.nfe),
    String(b.settings.guidance),
    frLabel(b.settings.fr) || '—',
    b.winner ?? '—',
    ...kh.map((k) => (k === b.winner ? `**${num(b.candidates[k] ?? null, 5)}**` : num(b.candidates[k] ?? null, 5))),
  ]);
  return [
    `PFDiff k_h by ${metric} (lower is better; "best" is chosen on the evaluation seeds themselves, an oracle choice):`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Options of {@link markdownReport}. */
export interface MarkdownOptions {
  /** Heading level of the report's title (default 2). */
  level?: number;
  /** Plot files, as paths relative to the Markdown file. */
  plots?: { title: string; path: string }[];
  claims?: ClaimCheck[];
}

/** The Markdown report of a bench run. */
export function markdownReport(results: BenchResults, opts: MarkdownOptions = {}): string {
  const h = '#'.repeat(opts.level ?? 2);
  const g = results.grid;
  const lines: string[] = [];
  lines.push(`${h} ${g.title ?? `Bench: ${g.name}`}`, '');
  if (g.description) lines.push(g.description, '');
  const refRuns = results.reference.runs.map((r) => `guidance ${r.guidance}${r.start !== undefined ? ` from t = ${r.start}` : ''}`).join(', ');
  lines.push(
    `Model \`${results.model.name}\` (sha256 ${results.model.sha256.slice(0, 12)}…), ${g.seeds.count} samples per cell ` +
      `(seed ${g.seeds.seed}, batch ${g.seeds.batch}); quality meter: ${results.model.meter ?? 'none'}. ` +
      (g.metrics.trajectory
        ? `Trajectory error is measured against ${results.reference.solver} with ${results.reference.nfe} calls from the same noise, labels and start time ` +
          `(the reference grid moved to start where each cell's grid starts; column "start t"): ${refRuns || 'no reference run in this report'}. `
        : '') +
      `Cells computed on: ${cellMachines(results)}; report written on ${results.machine.cpu} × ${results.machine.cores}; ` +
      `${Object.entries(results.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}. Generated by \`rediffuse bench\` on ${results.generatedAt.slice(0, 10)}.`,
    '',
    "FD-classifier is the Fréchet distance in the shipped Fashion-MNIST classifier's feature space against the test-set " +
      'statistics (not FID: not comparable with published FID numbers), ± its bootstrap standard deviation where recorded. Overhead = sampling wall time / (network calls × ' +
      'measured time of one call); 1.00 means the sampler costs nothing besides the network. Speed-up is the wall time of ' +
      "full computation divided by the cell's.",
    '',
  );
  if (results.cells.some((c) => c.timing?.decodeMs !== undefined)) {
    lines.push(
      "The samples are the denoiser's latents: trajectory error is measured on the latents; FD-classifier and accuracy on their VAE decodes " +
        '(each sample conditioned on its class caption, class i mod C for sample i). Wall time is the sampling loop alone, without the decode, as ' +
        "for every other model (the headline's Pareto fronts compare it); decode is the VAE decode of all the cell's samples at the cell's batch, " +
        'and its share is decode / (wall + decode), of the end-to-end time.',
      '',
    );
  }
  const head = headlineMarkdown(results, (opts.level ?? 2) + 1);
  if (head) lines.splice(g.description ? 4 : 2, 0, head, '');
  for (const gv of [...new Set(results.cells.map((c) => c.settings.guidance))]) {
    const cells = results.cells.filter((c) => c.settings.guidance === gv);
    lines.push(`${h}# ${gTitle(gv)}`, '', cellsTable(results, cells), '');
  }
  const bt = bestTable(results);
  if (bt) lines.push(`${h}# PFDiff: best k_h`, '', bt, '');
  if (opts.claims && opts.claims.length > 0) {
    lines.push(`${h}# Claims checked on these results`, '');
    for (const c of opts.claims) lines.push(`- ${c.holds ? '✅ holds' : '❌ does not hold'}: ${c.statement} — ${c.detail}`);
    lines.push('');
  }
  for (const p of opts.plots ?? []) lines.push(`![${p.title}](${p.path})`, '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Files written by {@link writeReport}. */
export interface WrittenReport {
  resultsJson: string;
  markdown: string;
  plots: string[];
  benchmarksMd?: string;
}

/** Options of {@link writeReport}. */
export interface WriteReportOptions {
  outDir: string;
  plots: RenderedPlot[];
  claims: ClaimCheck[];
  /** Also write/update this BENCHMARKS.md section (between `<!-- bench:NAME -->` markers). */
  benchmarksMd?: string;
  /** Folder for the plot images the BENCHMARKS.md section links (default: `<outDir>/plots`). */
  assetsDir?: string;
}

/** Write results.json, results.md, plots/*.svg|png and optionally the BENCHMARKS.md section. */
export function writeReport(results: BenchResults, opts: WriteReportOptions): WrittenReport {
  const outDir = resolve(opts.outDir);
  const resultsJson = writeFileAtomic(join(outDir, 'results.json'), `${JSON.stringify({ ...results, claims: opts.claims }, null, 2)}\n`);
  const plotDir = join(outDir, 'plots');
  const plots: string[] = [];
  for (const p of opts.plots) {
    plots.push(writeFileAtomic(join(plotDir, `${p.name}.svg`), p.svg));
    plots.push(writeFileAtomic(join(plotDir, `${p.name}.png`), p.png));
  }
  const markdown = writeFileAtomic(
    join(outDir, 'results.md'),
    markdownReport(results, { level: 1, claims: opts.claims, plots: opts.plots.map((p) => ({ title: p.title, path: `plots/${p.name}.png` })) }),
  );
  const written: WrittenReport = { resultsJson, markdown, plots };
  if (opts.benchmarksMd) {
    const md = resolve(opts.benchmarksMd);
    const assets = resolve(opts.assetsDir ?? plotDir);
    const links: { title: string; path: string }[] = [];
    for (const p of opts.plots) {
      const file = join(assets, `${results.grid.name}-${p.name}.png`);
      if (assets !== plotDir) writeFileAtomic(file, p.png);
      links.push({
        title: p.title,
        path: relative(dirname(md), assets !== plotDir ? file : join(plotDir, `${p.name}.png`))
          .split('\\')
          .join('/'),
      });
    }
    const section = markdownReport(results, { level: 2, claims: opts.claims, plots: links });
    written.benchmarksMd = writeFileAtomic(md, upsertSection(existsSync(md) ? readFileSync(md, 'utf8') : '', results.grid.name, section));
  }
  return written;
}

/** Title of a generated BENCHMARKS.md. */
const BENCHMARKS_HEADER =
  '# Benchmarks\n\nEvery section below is generated by `rediffuse bench` (see `bench/*.json` for the grids); do not edit by hand.\n';

/** Replace (or append) the section between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`. */
export function upsertSection(doc: string, name: string, section: string): string {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${section.trimEnd()}\n${end}`;
  const base = doc.trim() === '' ? BENCHMARKS_HEADER : doc;
  const i = base.indexOf(start);
  const j = base.indexOf(end);
  if (i >= 0 && j > i) return `${base.slice(0, i)}${block}${base.slice(j + end.length)}`;
  return `${base.trimEnd()}\n\n${block}\n`;
}

/** The machines the cells were computed on (timings and speed-ups are only comparable within one). */
function cellMachines(results: BenchResults): string {
  const seen = new Map<string, number>();
  for (const c of results.cells) {
    if (c.status !== 'ok') continue;
    const m = c.machine ? `${c.machine.cpu} × ${c.machine.cores} (${c.machine.platform}/${c.machine.arch})` : 'not recorded';
    seen.set(m, (seen.get(m) ?? 0) + 1);
  }
  return [...seen].map(([m, n]) => (seen.size > 1 ? `${m}: ${n} cells` : m)).join('; ') || 'none';
}

/** Whether two cells were timed on the same machine (cells from before machines were recorded count as one). */
export function sameMachine(a: CellResult, b: CellResult): boolean {
  return JSON.stringify(a.machine ?? null) === JSON.stringify(b.machine ?? null);
}
