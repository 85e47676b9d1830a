/**
 * The pipeline page in a real browser (Debian's chromium, playwright-core): it loads the tiny SD
 * pipeline folder from its own server with onnxruntime-web and reproduces reference.json's final
 * latents and decoded image (DDIM and PNDM, 4 steps, CFG 7.5, from initial_latents.npy) within 1e-4;
 * and the SD3-style flow transformer folder from its reference conditioning (Euler flow, 4 steps, CFG 7);
 * and the two latent pipelines trained here (models/latent-unet, models/latent-dit) from a prompt.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWeb } from '../web/build.js';
import type { PipelineRunResult, PipelineRunSettings } from '../web/pipeline-app.js';
import { serveStatic } from '../web/serve.js';
import * as ortNode from 'onnxruntime-node';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { maxAbsDiff } from './helpers/arrays.js';
import { classifyFashion } from './helpers/classifier.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const skip = CHROMIUM ? false : 'no chromium here: apt-get install chromium (or set CHROMIUM_PATH)';
const ref = JSON.parse(readFileSync('test/fixtures/tiny-sd-pipeline/reference.json', 'utf8')) as {
  runs: Record<'ddim' | 'pndm', { final_latents: { values: number[] }; decoded_image: { values: number[] }; timesteps: number[] }>;
};

describe('the pipeline page in chromium', { skip }, () => {
  let browser: Browser;
  let page: Page;
  let close: () => void;
  before(async () => {
    const dir = await buildWeb(join(mkdtempSync(join(tmpdir(), 'rediffuse-web-pipeline-')), 'dist'));
    const { server, url } = await serveStatic(dir);
    close = () => server.close();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await browser.newPage();
    await page.goto(`${url}pipeline.html`);
    await page.waitForFunction(() => window.rediffusePipeline?.ready === true, undefined, { timeout: 30_000 });
  });
  after(async () => {
    await browser?.close();
    close?.();
  });

  for (const [run, solver] of [
    ['ddim', 'ddim'],
    ['pndm', undefined],
  ] as const) {
    test(`${run}: the page's latents and image equal reference.json within 1e-4`, async () => {
      const settings: PipelineRunSettings = {
        source: 'pipelines/tiny-sd/',
        prompt: 'a photo of a cat',
        steps: 4,
        guidance: 7.5,
        initialLatents: true,
        ...(solver ? { solver } : {}),
      };
      const r = await page.evaluate((s) => window.rediffusePipeline.run(s), settings as PipelineRunSettings);
      const res = r as PipelineRunResult;
      assert.equal(res.calls, ref.runs[run].timesteps.length);
      assert.deepEqual([res.width, res.height], [64, 64]);
      const dl = maxAbsDiff(Float32Array.from(res.latents), Float32Array.from(ref.runs[run].final_latents.values));
      const di = maxAbsDiff(Float32Array.from(res.decoded), Float32Array.from(ref.runs[run].decoded_image.values));
      assert.ok(dl <= 1e-4 && di <= 1e-4, `latents ${dl}, image ${di}`);
      assert.match((await page.textContent('#status')) ?? '', new RegExp(`^${res.solver}, ${res.calls} UNet calls, wall time`));
    });
  }

  // The latent pipelines trained here, from a prompt: the page's images are the Node library's for the
  // same request and seed (onnxruntime-web's WebAssembly kernels against onnxruntime-node's), and the
  // shipped classifier sees the class asked for.
  for (const [folder, settings, calls] of [
    ['latent-unet', { solver: 'dpmpp_2m', steps: 20, guidance: 4 }, 20],
    ['latent-dit', { steps: 20, guidance: 3 }, 20],
  ] as const) {
    test(`${folder}: "a photo of a sneaker", 8 images from seed 1 — the Node library's images, and ≥ 5 of 8 sneakers`, async (t) => {
      const request = { prompt: 'a photo of a sneaker', batch: 8, seed: 1, ...settings };
      const r = (await page.evaluate((s) => window.rediffusePipeline.run(s), {
        source: `pipelines/${folder}/`,
        ...request,
      } as PipelineRunSettings)) as PipelineRunResult;
      assert.equal(r.batch, 8);
      assert.equal(r.calls, calls);
      assert.deepEqual([r.width, r.height], [28, 28]);
      const pipe = await StableDiffusionPipeline.load({
        ort: ortNode as unknown as OrtModuleLike,
        reader: nodePipelineReader(`models/${folder}`),
        threads: 1,
      });
      const { guidance, ...rest } = request;
      const node = await pipe.textToImage({ ...rest, guidanceScale: guidance });
      await pipe.release();
      assert.equal(node.run.solver, r.solver);
      const d = maxAbsDiff(Float32Array.from(r.decoded), node.decoded);
      assert.ok(d <= 1e-4, `page vs Node decoded images: max |Δ| ${d}`);
      const pred = await classifyFashion(Float32Array.from(r.decoded));
      t.diagnostic(`page vs Node: max |Δ| ${d.toExponential(2)}; classes ${pred.join(',')}`);
      assert.ok(pred.filter((k) => k === 7).length >= 5, `classifier on the page's 8 sneaker prompts: ${pred.join(',')}`);
    });
  }

  test('SD3-style transformer folder: the Euler flow run from the reference conditioning equals reference.json within 1e-4; a prompt is refused', async () => {
    const sd3 = JSON.parse(readFileSync('test/fixtures/tiny-sd3-flow/reference.json', 'utf8')) as {
      conditioning: { encoder_hidden_states: { values: number[] }; pooled_projections: { values: number[] } };
      runs: { flow_euler: { final_latents: { values: number[] }; decoded_image: { values: number[] } } };
    };
    const e = sd3.conditioning.encoder_hidden_states.values;
    const p = sd3.conditioning.pooled_projections.values;
    const row = (b: number) => ({
      hiddenStates: e.slice(b * 640, (b + 1) * 640),
      shape: [20, 32] as [number, number],
      pooled: p.slice(b * 32, (b + 1) * 32),
    });
    const settings: PipelineRunSettings = {
      source: 'pipelines/tiny-sd3-flow/',
      embeddings: { prompt: row(1), negative: row(0) },
      steps: 4,
      guidance: 7,
      initialLatents: true,
    };
    const res = (await page.evaluate((s) => window.rediffusePipeline.run(s), settings)) as PipelineRunResult;
    assert.equal(res.denoiser, 'transformer');
    assert.equal(res.calls, 4);
    const dl = maxAbsDiff(Float32Array.from(res.latents), Float32Array.from(sd3.runs.flow_euler.final_latents.values));
    const di = maxAbsDiff(Float32Array.from(res.decoded), Float32Array.from(sd3.runs.flow_euler.decoded_image.values));
    assert.ok(dl <= 1e-4 && di <= 1e-4, `latents ${dl}, image ${di}`);
    assert.match((await page.textContent('#status')) ?? '', /, 4 transformer calls, wall time/);
    const refused = await page.evaluate(
      (s) =>
        window.rediffusePipeline.run(s).then(
          () => 'ran',
          (err: Error) => err.message,
        ),
      { source: 'pipelines/tiny-sd3-flow/', prompt: 'a photo of a cat', steps: 2 } as PipelineRunSettings,
    );
    assert.match(refused, /cannot encode a prompt: it has no text_encoder\/model\.onnx, tokenizer\//);
  });
});
