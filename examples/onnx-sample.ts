// Runnable: `npx tsx examples/onnx-sample.ts`. Samples four "Sneaker" images from the bundled U-Net
// with DDIM + PFDiff-2_1 at 8 model calls and classifier-free guidance 2, through onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { sample } from 'rediffuse/core';
import { OnnxDiffusionModel, parseModelCard, cardSamplingSetup } from 'rediffuse';
import { readFileSync } from 'node:fs';

const card = parseModelCard(readFileSync('models/fashion-unet.json', 'utf8'), 'fashion-unet.json');
const { schedule, nullLabel } = cardSamplingSetup(card);
const model = await OnnxDiffusionModel.create({ ort, model: readFileSync('models/fashion-unet.onnx'), card, threads: 2 });
const run = await sample({
  model,
  schedule,
  solver: 'ddim',
  nfe: 8,
  pfdiff: { k: 2, h: 1 },
  guidance: { scale: 2, nullLabel },
  cond: { classLabels: [7, 7, 7, 7] },
  batch: 4,
  seed: 42,
});
console.log(
  `${run.calls} model calls, ${run.wallMs.toFixed(0)} ms, first pixels:`,
  Array.from(run.samples.slice(0, 4), (v) => v.toFixed(3)),
);
