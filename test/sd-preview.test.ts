/**
 * Per-step previews of the SD pipeline: the linear latent → RGB map is a least-squares fit (it
 * recovers a known linear "decoder" exactly), the pipeline fits it to the fixture's VAE decoder, the
 * `onPreview` callback fires once per step with one H/8 × W/8 RGBA image per sample, and
 * `txt2img --preview-dir` writes one PNG per step.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { gaussianBatch } from '../src/core/rng.js';
import { fitLatentRgbProjection, previewLatents } from '../src/model/pipeline/latent-preview.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { runTxt2Img } from '../src/cli/commands/txt2img.js';
import { decodePng } from '../src/io/png.js';
import { fixtureRequest } from './helpers/txt2img.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';

describe('latent → RGB preview map', () => {
  it('recovers a linear decoder (W, b) to 1e-6 with R² = 1', () => {
    const [B, C, h, w, f] = [1, 4, 5, 6, 8];
    const W = [0.3, 0.2, -0.3, -0.2, 0.2, 0.5, 0.2, -0.3, 0.3, 0.2, 0.3, -0.7];
    const bias = [0.1, -0.05, 0.02];
    const z = gaussianBatch(3, B, C * h * w);
    const img = new Float32Array(B * 3 * h * f * w * f);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h * f; y++) {
        for (let x = 0; x < w * f; x++) {
          const p = Math.floor(y / f) * w + Math.floor(x / f);
          let v = bias[c]!;
          for (let k = 0; k < C; k++) v += W[c * C + k]! * z[k * h * w + p]!;
          img[(c * h * f + y) * w * f + x] = v;
        }
      }
    }
    const proj = fitLatentRgbProjection(z, img, { batch: B, channels: C, height: h, width: w, factor: f });
    assert.equal(proj.samples, 30);
    for (let i = 0; i < 12; i++) assert.ok(Math.abs(proj.weights[i]! - W[i]!) < 1e-6, `W[${i}] ${proj.weights[i]} vs ${W[i]}`);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(proj.bias[c]! - bias[c]!) < 1e-6 && Math.abs(proj.r2[c]! - 1) < 1e-9);
    const [im] = previewLatents(z, 1, h, w, proj);
    assert.deepEqual([im!.width, im!.height, im!.data.length], [6, 5, 120]);
    // pixel 0 as the map gives it: round(clamp(v/2 + 0.5)·255)
    const v0 = bias[0]! + [0, 1, 2, 3].reduce((a, k) => a + W[k]! * z[k * h * w]!, 0);
    assert.equal(im!.data[0], Math.round(Math.min(1, Math.max(0, v0 / 2 + 0.5)) * 255));
    assert.throws(() => fitLatentRgbProjection(z.subarray(1), img, { batch: B, channels: C, height: h, width: w, factor: f }), /latent values/);
  });
});

describe('pipeline previews', () => {
  let pipe: StableDiffusionPipeline;
  before(async () => {
    pipe = await StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader: nodePipelineReader(DIR) });
  });
  after(() => pipe.release());
  it("fits the map on the fixture's VAE (512 latent pixels; random weights: R² 0.011, 0.218, 0.012)", async () => {
    const p = await pipe.latentRgbProjection();
    assert.equal(p.samples, 512);
    assert.equal(p.weights.length, 12);
    const want = [0.0111, 0.2176, 0.0124];
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(p.r2[c]! - want[c]!) < 2e-3, `R²[${c}] = ${p.r2[c]}`);
    assert.equal(await pipe.latentRgbProjection(), p, 'fitted once, then cached');
  });
  it('onPreview fires once per step with an 8×8 RGBA image per sample; the last one is the final latents’ preview', async () => {
    const seen: { step: number; n: number; w: number; h: number; len: number }[] = [];
    let last: Uint8Array | undefined;
    const r = await pipe.textToImage({
      prompt: 'a photo of a cat',
      solver: 'ddim',
      steps: 4,
      batch: 2,
      onPreview: (info, ims) => {
        seen.push({ step: info.step, n: ims.length, w: ims[0]!.width, h: ims[0]!.height, len: ims[0]!.data.length });
        last = ims[1]!.data;
      },
    });
    assert.deepEqual(
      seen.map((s) => s.step),
      [0, 1, 2, 3],
    );
    for (const s of seen) assert.deepEqual([s.n, s.w, s.h, s.len], [2, 8, 8, 256]);
    // DDIM's last step lands on its x̂0: the last preview is the final latents' preview
    const fin = pipe.preview(r.latents, 2, 8, 8)[1]!.data;
    let worst = 0;
    for (let i = 0; i < fin.length; i++) worst = Math.max(worst, Math.abs(fin[i]! - last![i]!));
    assert.ok(worst <= 1, `max level difference ${worst}`);
  });
  it('txt2img --preview-dir writes step-001.png … step-004.png, 8×8 each', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-preview-'));
    const dir = join(tmp, 'steps');
    await runTxt2Img(fixtureRequest(join(tmp, 'out.png'), { solver: 'ddim', steps: 4, previewDir: dir }));
    assert.deepEqual(readdirSync(dir).sort(), ['step-001.png', 'step-002.png', 'step-003.png', 'step-004.png']);
    const png = decodePng(new Uint8Array(readFileSync(join(dir, 'step-004.png'))));
    assert.deepEqual([png.width, png.height], [8, 8]);
  });
});
