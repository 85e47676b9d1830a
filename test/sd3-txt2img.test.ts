/**
 * The command line on SD3-style flow-transformer folders: `rediffuse txt2img` on the fixture with a
 * CLIP-style text encoder writes the image the library computes for the same prompt and seed (the
 * FlowMatch Euler grid of the folder's scheduler, 4 transformer calls), and on the fixture without
 * text encoders refuses the prompt naming the missing parts before any model call; `inspect` takes the
 * folder (its transformer) and lists the `dit` reuse points; `bench --pipeline` benches the transformer;
 * a 1-channel decoded image is written as a greyscale PNG.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { runTxt2Img, type Txt2ImgOptions } from '../src/cli/commands/txt2img.js';
import { inspectModel } from '../src/cli/commands/inspect.js';
import { runBenchCommand } from '../src/cli/commands/bench.js';
import { decodePng, encodePng } from '../src/io/png.js';
import { encodeModel } from '../src/model/onnx-graph/onnx-proto.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline, toImages } from '../src/model/pipeline/sd-pipeline.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { io } from './helpers/pipeline-fixtures.js';
import { SD3_FIXTURE, writeSd3WithTextEncoder } from './helpers/sd3.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-sd3-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const withEncoder = writeSd3WithTextEncoder(join(tmp, 'sd3-clip'));
const request = (pipeline: string, out: string, rest: Partial<Txt2ImgOptions> = {}): Txt2ImgOptions => ({
  pipeline,
  prompt: 'a photo of a sneaker',
  guidance: 4,
  guidanceRescale: 0,
  count: 1,
  seed: 5,
  steps: 4,
  out,
  quiet: true,
  ...rest,
});

describe('rediffuse txt2img on SD3-style folders', () => {
  it('with a CLIP-style text encoder: the image of the library run for the same prompt and seed, the FlowMatch grid', async () => {
    const out = join(tmp, 'sd3.png');
    const report = await runTxt2Img(request(withEncoder, out));
    assert.equal(report.solver, 'euler');
    assert.equal(report.calls, 4);
    assert.deepEqual(report.size, [64, 64]);
    // SD3-medium's shift 3 on 4 steps: σ = 1, 0.8577, 0.6022, 0.0089, then 0
    assert.deepEqual(
      report.timesteps.map((t) => Math.round(t * 1e4) / 1e4),
      [1, 0.8577, 0.6022, 0.0089, -1],
    );
    const pipe = await StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader: nodePipelineReader(withEncoder) });
    try {
      const lib = await pipe.textToImage({ prompt: 'a photo of a sneaker', negativePrompt: '', guidanceScale: 4, steps: 4, seed: 5 });
      const png = decodePng(new Uint8Array(readFileSync(out)));
      assert.deepEqual([png.width, png.height], [64, 64]);
      assert.deepEqual(Array.from(png.data), Array.from(lib.images[0]!.data));
    } finally {
      await pipe.release();
    }
  });

  it('without text encoders: the prompt is refused naming the missing parts, nothing is written', async () => {
    const out = join(tmp, 'refused.png');
    await assert.rejects(
      runTxt2Img(request(SD3_FIXTURE, out)),
      /tiny-sd3-flow cannot encode a prompt: it has no text_encoder\/model\.onnx, tokenizer\/ \(model_index\.json lists text_encoder as \[null, null\]\)/,
    );
    assert.equal(existsSync(out), false);
  });

  it('inspect takes the folder and lists the dit reuse points of its transformer', async () => {
    const r = await inspectModel(SD3_FIXTURE, ['dit', 'deepcache']);
    assert.match(r.model, /tiny-sd3-flow\/transformer\/model\.onnx$/);
    assert.equal(r.full.nodes, 626);
    const dit = r.presets[0]!;
    assert.deepEqual(
      dit.points!.map((p) => p.kind),
      ['gated-attention', 'gated-mlp', 'gated-attention', 'gated-mlp', 'gated-attention', 'gated-mlp'],
    );
    assert.ok(Math.abs(dit.macsSkipped! - 0.806) < 0.005, `MACs skipped ${dit.macsSkipped}`);
    assert.match(r.presets[1]!.error!, /deepcache: needs a U-Net/);
  });

  it('bench --pipeline benches the transformer on the prompt: 2 Euler cells, trajectory error vs the reference', async () => {
    const r = await runBenchCommand({
      pipeline: withEncoder,
      prompt: 'a photo of a sneaker',
      solvers: ['euler'],
      nfe: [2, 4],
      reference: 'euler:16',
      count: 2,
      batch: 2,
      seed: 3,
      out: join(tmp, 'bench'),
      quiet: true,
      plots: false,
    });
    assert.deepEqual(r.failedCells, []);
    const mse = r.results.cells.map((c) => c.metrics!.trajectory!.mse);
    assert.equal(mse.length, 2);
    assert.ok(mse[0]! > mse[1]! && mse[1]! > 0, `trajectory MSE at 2 and 4 calls: ${mse.join(', ')}`);
  });
});

/**
 * A grey VAE decoder built from bytes: latent_sample [B, C, h, w] → tanh(mean over channels),
 * upsampled ×f (nearest) → sample [B, 1, f·h, f·w].
 */
function greyDecoderOnnx(C: number, f: number): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'grey-vae-decoder',
      node: [
        { opType: 'ReduceMean', input: ['latent_sample'], output: ['m'], name: 'm', attribute: [{ name: 'axes', type: 7, ints: [1] }] },
        {
          opType: 'Resize',
          input: ['m', '', 'scales'],
          output: ['up'],
          name: 'up',
          attribute: [{ name: 'mode', type: 3, s: new TextEncoder().encode('nearest') }],
        },
        { opType: 'Tanh', input: ['up'], output: ['sample'], name: 'sample' },
      ],
      initializer: [{ name: 'scales', dims: [4], dataType: 1, floatData: [1, 1, f, f] }],
      input: [io('latent_sample', 1, ['batch', C, 'h', 'w'])],
      output: [io('sample', 1, ['batch', 1, 'H', 'W'])],
    },
  });
}

describe('grey images', () => {
  it('a 1-channel VAE at factor 4 (3 blocks, as our latent models): txt2img writes a 32×32 greyscale PNG of the library image; previews fit the grey map', async () => {
    const dir = writeSd3WithTextEncoder(join(tmp, 'sd3-grey'));
    rmSync(join(dir, 'vae_encoder'), { recursive: true });
    writeFileSync(join(dir, 'vae_decoder', 'model.onnx'), greyDecoderOnnx(16, 4));
    const vae = JSON.parse(readFileSync(join(dir, 'vae_decoder', 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'vae_decoder', 'config.json'), JSON.stringify({ ...vae, out_channels: 1, block_out_channels: [16, 32, 32] }));
    const out = join(tmp, 'grey.png');
    const previews = join(tmp, 'grey-steps');
    const report = await runTxt2Img(request(dir, out, { steps: 2, previewDir: previews }));
    assert.equal(report.calls, 2);
    assert.deepEqual(report.size, [32, 32]);
    const bytes = new Uint8Array(readFileSync(out));
    assert.equal(bytes[25], 0, 'IHDR colour type: greyscale');
    const pipe = await StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader: nodePipelineReader(dir) });
    try {
      assert.deepEqual([pipe.imageChannels, pipe.vaeFactor], [1, 4]);
      const lib = await pipe.textToImage({ prompt: 'a photo of a sneaker', negativePrompt: '', guidanceScale: 4, steps: 2, seed: 5 });
      assert.equal(lib.decoded.length, 32 * 32);
      const want = lib.images[0]!;
      for (let p = 0; p < 32 * 32; p++) assert.equal(want.data[p * 4], want.data[p * 4 + 1]);
      assert.deepEqual(Array.from(decodePng(bytes).data), Array.from(want.data));
      const proj = await pipe.latentRgbProjection();
      assert.ok(
        Math.abs(proj.r2[0] - proj.r2[1]) < 1e-12 && Math.abs(proj.r2[1] - proj.r2[2]) < 1e-12,
        `R², G², B² of a grey fit: ${proj.r2.join(', ')}`,
      );
    } finally {
      await pipe.release();
    }
    assert.deepEqual(readdirSync(previews).sort(), ['step-001.png', 'step-002.png']);
  });

  it('a 1-channel decoded image becomes a grey raster and a greyscale PNG (colour type 0) that reads back equal', () => {
    const decoded = Float32Array.from({ length: 2 * 4 * 3 }, (_, i) => (i % 7) / 3 - 1);
    const images = toImages(decoded, 2, 4, 3);
    assert.equal(images.length, 2);
    const im = images[1]!;
    for (let p = 0; p < 12; p++) {
      const want = Math.round(Math.min(1, Math.max(0, decoded[12 + p]! / 2 + 0.5)) * 255);
      assert.deepEqual(Array.from(im.data.subarray(p * 4, p * 4 + 4)), [want, want, want, 255]);
    }
    const png = encodePng(im, { grey: true });
    assert.equal(png[25], 0, 'IHDR colour type');
    assert.deepEqual(Array.from(decodePng(png).data), Array.from(im.data));
    assert.throws(() => toImages(new Float32Array(2 * 2 * 12), 2, 4, 3), /2 channels .* images have 1 \(grey\) or 3 \(RGB\)/);
  });
});
