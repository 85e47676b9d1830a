/**
 * Per-call cost of the Stable-Diffusion UNet fixture (test/fixtures/tiny-sd-pipeline/unet, a diffusers
 * UNet2DConditionModel in Optimum's signature) with and without FRDiff feature reuse: the plain call,
 * and per reuse-point preset the keyframe call (full graph + caching the reuse points) and the reuse
 * call (the part after the reuse points), on the guided batch of 2 (CFG's [uncond; cond]) and 8,
 * latents 8×8 and 32×32. Prints a Markdown table of median wall times and the share of MACs a reuse
 * call runs.
 *
 *   npx tsx bench/sd-unet-fr.ts [--threads 2] [--reps 30] [--pipeline DIR]
 */
import { readFileSync } from 'node:fs';
import * as ortNode from 'onnxruntime-node';
import { modelCallAt } from '../src/core/index.js';
import { FeatureReuseOnnxModel, type OrtModuleLike, StableDiffusionPipeline } from '../src/model/index.js';
import { nodePipelineReader } from '../src/node/index.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const threads = Number(opt('threads', '2'));
const reps = Number(opt('reps', '30'));
const dir = opt('pipeline', 'test/fixtures/tiny-sd-pipeline');
const ort = ortNode as unknown as OrtModuleLike;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function timeIt(f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await f(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

const pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(dir), threads });
const bytes = new Uint8Array(readFileSync(`${dir}/unet/model.onnx`));
const e = await pipe.encodePrompt('a photo of a cat');
const rows: string[] = [];
rows.push(`UNet fixture ${dir}/unet/model.onnx, onnxruntime-node CPU, ${threads} threads, median of ${reps} calls`);
rows.push('');
rows.push('| latents | batch | call | ms per call | vs plain | share of MACs run (graph analysis) |');
rows.push('|---|---|---|---|---|---|');
for (const side of [8, 32]) {
  const plain = await pipe.unet(side, side);
  for (const batch of [2, 8]) {
    const cond = { encoderHiddenStates: new Float32Array(batch * e.hiddenStates.length), encoderHiddenShape: e.shape };
    for (let b = 0; b < batch; b++) cond.encoderHiddenStates.set(e.hiddenStates, b * e.hiddenStates.length);
    const x = Float32Array.from({ length: batch * 4 * side * side }, (_, i) => Math.sin(0.37 * i));
    const call = modelCallAt(pipe.setup.schedule, 501, batch);
    const base = await timeIt(() => plain.predict(x, call, cond));
    rows.push(`| ${side}×${side} | ${batch} | plain | ${base.toFixed(2)} | 1.00 | 100% |`);
    for (const points of ['frdiff', 'residual', 'deepcache']) {
      const net = await FeatureReuseOnnxModel.create({ ort, model: bytes, points, card: pipe.unetCard(side, side), threads });
      const key = await timeIt(() => net.predictKeyframe(x, call, cond));
      await net.predictKeyframe(x, call, cond);
      const reuse = await timeIt(() => net.predictReuse(x, call, cond));
      const macs = `${(100 * net.graphs.flops.ratio).toFixed(1)}%`;
      rows.push(`| ${side}×${side} | ${batch} | ${points} keyframe | ${key.toFixed(2)} | ${(key / base).toFixed(2)} | 100% |`);
      rows.push(`| ${side}×${side} | ${batch} | ${points} reuse | ${reuse.toFixed(2)} | ${(reuse / base).toFixed(2)} | ${macs} |`);
      await net.release();
    }
  }
}
process.stdout.write(rows.join('\n') + '\n');
await pipe.release();
