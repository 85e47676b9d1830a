/**
 * `rediffuse inspect MODEL.onnx`: the feature-reuse points each preset finds in an ONNX model, the
 * share of the model's MACs a reuse step still runs (and so skips), and the cache memory per sample.
 * A pipeline folder stands for its denoiser (`unet/model.onnx`, or SD3's `transformer/model.onnx`).
 * @packageDocumentation
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  type OrtModuleLike,
  analyzeOnnxModel,
  buildFeatureReuseGraphs,
  findSkipConcats,
  REUSE_POINT_PRESETS,
  type ReusePointSelection,
} from '../../model/index.js';

/** One preset's line of the report. */
export interface InspectPointsReport {
  preset: string;
  /** Why the preset does not apply, when it does not. */
  error?: string;
  points?: { name: string; kind: string; block: string; shape: number[]; symbolic: (string | null)[]; dtype: string }[];
  /** Share of the full model's MACs a reuse step skips (1 − reuse/full). */
  macsSkipped?: number;
  /** Same for elementwise ops. */
  elementwiseSkipped?: number;
  cacheBytesPerSample?: number;
  nodes?: { full: number; reuse: number };
}

/** Full report of {@link inspectModel}. */
export interface InspectReport {
  model: string;
  /** MACs and elementwise ops of one full call at batch 1. */
  full: { macs: number; elementwise: number; nodes: number };
  /** Number of U-Net skip branches (valid `--branch` values are 0 … n−1). */
  skipBranches: number;
  presets: InspectPointsReport[];
}

/** The ONNX file `path` names: itself, or the denoiser of a pipeline folder (`unet/` or `transformer/`). */
export function resolveModelPath(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  for (const part of ['unet', 'transformer']) {
    const p = join(path, part, 'model.onnx');
    if (existsSync(p)) return p;
  }
  throw new Error(`${path} is a folder without unet/model.onnx or transformer/model.onnx; pass an .onnx file or a pipeline folder`);
}

/** Analyse `path` (an .onnx file or a pipeline folder) under the given presets (`all` = every preset). */
export async function inspectModel(
  modelPath: string,
  presets: string[],
  opts: { branch?: number; dimValues?: Record<string, number> } = {},
): Promise<InspectReport> {
  const path = resolveModelPath(modelPath);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new Error(`cannot read model '${path}' (${(err as Error).message}); pass the path of an .onnx file`, { cause: err });
  }
  const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
  const analyzed = await analyzeOnnxModel(bytes, { ort, dimValues: opts.dimValues });
  const list = presets.includes('all') ? [...REUSE_POINT_PRESETS] : presets;
  const reports: InspectPointsReport[] = [];
  for (const name of list) {
    const selection: ReusePointSelection = name === 'deepcache' ? { preset: 'deepcache', branch: opts.branch ?? 0 } : (name as ReusePointSelection);
    try {
      const g = await buildFeatureReuseGraphs(analyzed, selection);
      reports.push({
        preset: name,
        points: g.points.map((p) => ({ name: p.name, kind: p.kind, block: p.block, shape: p.shape, symbolic: p.symbolic, dtype: p.dtype })),
        macsSkipped: 1 - g.flops.ratio,
        elementwiseSkipped: 1 - g.flops.elementwiseRatio,
        cacheBytesPerSample: g.cacheBytesPerSample,
        nodes: g.nodeCount,
      });
    } catch (err) {
      reports.push({ preset: name, error: (err as Error).message });
    }
  }
  return {
    model: path,
    full: { ...analyzed.fullFlops, nodes: analyzed.index.nodes.length },
    skipBranches: findSkipConcats(analyzed.index, analyzed.shapes).length,
    presets: reports,
  };
}

const fmtCount = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`;
const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** Human-readable rendering of an {@link InspectReport}. */
export function formatInspectReport(r: InspectReport): string {
  const lines = [
    `${r.model}: ${r.full.nodes} nodes, ${fmtCount(r.full.macs)}MACs + ${fmtCount(r.full.elementwise)} elementwise ops per sample, ${r.skipBranches} U-Net skip branches`,
  ];
  for (const p of r.presets) {
    lines.push('');
    if (p.error) {
      lines.push(`${p.preset}: not applicable — ${p.error}`);
      continue;
    }
    lines.push(
      `${p.preset}: ${p.points!.length} reuse points; a reuse step skips ${(100 * p.macsSkipped!).toFixed(1)}% of MACs ` +
        `(${(100 * p.elementwiseSkipped!).toFixed(1)}% of elementwise ops), ${p.nodes!.reuse}/${p.nodes!.full} nodes run; cache ${fmtBytes(p.cacheBytesPerSample!)} per sample`,
    );
    for (const q of p.points!)
      lines.push(
        `  ${q.kind.padEnd(16)} ${q.name}  [${q.shape.map((d, k) => (q.symbolic[k] === 'batch' ? 'B' : d)).join('×')}] ${q.dtype}  (block ${q.block})`,
      );
  }
  return lines.join('\n');
}

/** Register `inspect` on a commander program. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(
      'list the feature-reuse points of an ONNX diffusion model per preset, with the share of MACs a reuse step skips and the cache memory per sample',
    )
    .argument('<model>', 'path of the .onnx model, or a pipeline folder (its unet/ or transformer/ model)')
    .option('--points <name>', `reuse-point presets to list: ${REUSE_POINT_PRESETS.join('|')}|all (comma-separated)`, 'all')
    .option('--branch <n>', 'deepcache: skip branch index (0 = shallowest)', (v) => Number.parseInt(v, 10))
    .option('--dim <name=value...>', 'size of a symbolic input dimension other than the batch (repeatable), e.g. --dim seq=77')
    .option('--json', 'print the report as JSON')
    .action(async (model: string, opts: { points: string; branch?: number; dim?: string[]; json?: boolean }) => {
      const presets = opts.points.split(',').map((s) => s.trim());
      for (const p of presets) {
        if (p !== 'all' && !(REUSE_POINT_PRESETS as readonly string[]).includes(p)) {
          throw new Error(`unknown --points '${p}'; use one of ${[...REUSE_POINT_PRESETS, 'all'].join(', ')}`);
        }
      }
      const dimValues: Record<string, number> = {};
      for (const d of opts.dim ?? []) {
        const m = /^([^=]+)=(\d+)$/.exec(d);
        if (!m) throw new Error(`malformed --dim '${d}'; write name=value, e.g. --dim seq=77`);
        dimValues[m[1]] = Number(m[2]);
      }
      const report = await inspectModel(model, presets, { branch: opts.branch, dimValues });
      process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatInspectReport(report)) + '\n');
    });
}
