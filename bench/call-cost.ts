/**
 * One network call's cost: onnxruntime-node (rediffuse's backend) vs the same network in PyTorch on
 * the CPU, measured in the same run on this machine, at batch 1, 16 and 64.
 *
 *   npx tsx bench/call-cost.ts [--threads 2] [--models fashion-unet,fashion-dit]
 *
 * The PyTorch column needs Debian's python3-torch and the training checkpoints
 * (models/checkpoints/<arch>/ema.pt, written by the recipe in models/README.md); without them it is
 * reported as missing. Prints a Markdown table and the ratio PyTorch / onnxruntime.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { discreteSchedule, gaussianBatch, modelCallAt } from '../src/core/index.js';
import { bundledModelPath, loadOnnxModel, packageRoot } from '../src/node/index.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const threads = Number(opt('threads', '2'));
const models = opt('models', 'fashion-unet,fashion-dit').split(',');
const batches = [1, 16, 64];
const schedule = discreteSchedule();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function onnxMsPerCall(name: string, batch: number): Promise<number> {
  const { model } = await loadOnnxModel({ path: bundledModelPath(name), threads, maxBatch: 64 });
  const size = model.sampleShape.reduce((a, b) => a * b, 1);
  const x = gaussianBatch(1, batch, size);
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  await model.predict(x, modelCallAt(schedule, 500, batch), { classLabels: labels });
  const times: number[] = [];
  const reps = Math.max(5, Math.ceil(64 / batch));
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await model.predict(x, modelCallAt(schedule, 500 + r, batch, r), { classLabels: labels });
    times.push(performance.now() - t0);
  }
  return median(times);
}

function torchMsPerCall(arch: string): Map<number, number> | string {
  const ckpt = join(packageRoot(), 'models', 'checkpoints', arch, 'ema.pt');
  if (!existsSync(ckpt)) return `no ${ckpt} (train with models/README.md)`;
  const r = spawnSync('/usr/bin/python3', [join(packageRoot(), 'models', 'bench_cpu.py'), '--threads', String(threads), '--archs', arch], {
    encoding: 'utf8',
  });
  if (r.status !== 0) return `PyTorch run failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  const out = new Map<number, number>();
  for (const m of r.stdout.matchAll(/batch (\d+): ([\d.]+) ms\/call/g)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

console.log(`# One call's cost, ${threads} threads, ${process.arch} (${(await import('node:os')).cpus()[0]?.model ?? '?'})\n`);
console.log('| model | batch | onnxruntime-node ms/call | ms/image | PyTorch CPU ms/call | ms/image | PyTorch / onnxruntime |');
console.log('|---|---|---|---|---|---|---|');
for (const name of models) {
  const arch = name.replace('fashion-', '');
  const onnx = new Map<number, number>();
  for (const b of batches) onnx.set(b, await onnxMsPerCall(name, b));
  const torch = torchMsPerCall(arch);
  for (const b of batches) {
    const o = onnx.get(b)!;
    const t = typeof torch === 'string' ? undefined : torch.get(b);
    const tcol = t === undefined ? `— (${typeof torch === 'string' ? torch : 'missing'})` : `${t.toFixed(1)} | ${(t / b).toFixed(2)}`;
    console.log(`| ${name} | ${b} | ${o.toFixed(1)} | ${(o / b).toFixed(2)} | ${tcol} | ${t === undefined ? '—' : (t / o).toFixed(2) + '×'} |`);
  }
}
