/**
 * Everything rediffuse has on the Stable-Diffusion UNet fixture (diffusers UNet2DConditionModel,
 * Optimum signature), run through the pipeline with CFG 7.5: every registry solver, PFDiff and FRDiff
 * feature reuse. Deterministic solvers converge to the probability-flow ODE solution (a 200-call
 * DPM-Solver++ 2M run, trailing spacing so every budget starts at t = 999), PFDiff-2_1 on DDIM beats
 * DDIM at the same 10 calls, and the feature-reuse graphs found on the UNet reproduce the full output
 * at equal inputs.
 */
import { readFileSync } from 'node:fs';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import { modelCallAt } from '../src/core/model.js';
import { getSolver, listSolvers } from '../src/core/solvers/registry.js';
import { FeatureReuseOnnxModel } from '../src/model/feature-reuse-onnx-model.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline, type TextToImageRequest } from '../src/model/pipeline/sd-pipeline.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;
const DIR = 'test/fixtures/tiny-sd-pipeline';

/** ‖a − b‖ / ‖b‖. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    n += b[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

describe('the SD UNet fixture under every solver, PFDiff and feature reuse', () => {
  let pipe: StableDiffusionPipeline;
  let ode: Float32Array;
  const base: TextToImageRequest = { prompt: 'a photo of a cat', guidanceScale: 7.5, seed: 3, spacing: 'trailing' };
  before(async () => {
    pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(DIR) });
    ode = (await pipe.textToImage({ ...base, solver: 'dpmpp_2m', nfe: 200 })).latents;
  });

  it('every solver runs; the deterministic ones converge to the ODE solution (error at 20 calls < 0.03 and below that at 10)', async () => {
    const names = listSolvers().map((s) => s.name);
    assert.ok(names.length >= 17);
    for (const solver of names) {
      const r10 = await pipe.textToImage({ ...base, solver, nfe: 10 });
      const r20 = await pipe.textToImage({ ...base, solver, nfe: 20 });
      assert.ok(r20.run.calls <= 20 && r20.run.calls >= 19, `${solver}: ${r20.run.calls} calls`);
      assert.ok(
        r20.decoded.every((v) => Number.isFinite(v)),
        `${solver}: finite image`,
      );
      const [e10, e20] = [relErr(r10.latents, ode), relErr(r20.latents, ode)];
      if (getSolver(solver).stochastic()) {
        const again = await pipe.textToImage({ ...base, solver, nfe: 20 });
        assert.equal(maxAbsDiff(again.latents, r20.latents), 0, `${solver}: same seed, same noise`);
        assert.ok(e20 > 0.1, `${solver} is stochastic: it does not follow the ODE (${e20})`);
      } else {
        assert.ok(e20 < 0.03, `${solver}: error ${e20} at 20 calls`);
        assert.ok(e20 < e10, `${solver}: error ${e20} at 20 calls ≥ ${e10} at 10`);
      }
    }
  });

  it('PFDiff-2_1 on DDIM at 10 calls is closer to the ODE solution than DDIM at 10 calls', async () => {
    const ddim = await pipe.textToImage({ ...base, solver: 'ddim', nfe: 10 });
    const pf = await pipe.textToImage({ ...base, solver: 'ddim', nfe: 10, pfdiff: '2_1' });
    assert.equal(pf.run.calls, 10);
    assert.equal(pf.run.pfdiff?.k, 2);
    const [eD, eP] = [relErr(ddim.latents, ode), relErr(pf.latents, ode)];
    assert.ok(eP < 0.6 * eD, `PFDiff ${eP} vs DDIM ${eD}`);
  });

  it('feature reuse finds its reuse points on the UNet, and the reuse graph reproduces the full output at equal inputs', async () => {
    const bytes = new Uint8Array(readFileSync(`${DIR}/unet/model.onnx`));
    const plain = await pipe.unet(8, 8);
    const e = await pipe.encodePrompt('a photo of a cat');
    const u = await pipe.encodePrompt('');
    const cond = { encoderHiddenStates: Float32Array.from([...u.hiddenStates, ...e.hiddenStates]), encoderHiddenShape: e.shape };
    const x = Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(0.31 * i) * 1.2);
    const call = modelCallAt(pipe.setup.schedule, 601, 2);
    const full = await plain.predict(x, call, cond);
    const expected = { frdiff: 12, residual: 12, deepcache: 1 };
    for (const [points, count] of Object.entries(expected)) {
      const net = await FeatureReuseOnnxModel.create({ ort, model: bytes, points, card: pipe.unetCard(8, 8) });
      assert.equal(net.points.length, count, `${points}: reuse points`);
      assert.ok(net.graphs.flops.ratio < 0.5, `${points}: a reuse call runs ${net.graphs.flops.ratio} of the MACs`);
      const key = await net.predictKeyframe(x, call, cond);
      assert.ok(maxAbsDiff(key, full) <= 1e-6, `${points}: keyframe ${maxAbsDiff(key, full)}`);
      const reuse = await net.predictReuse(x, call, cond);
      assert.ok(maxAbsDiff(reuse, full) <= 1e-6, `${points}: reuse at equal inputs ${maxAbsDiff(reuse, full)}`);
      const stale = await net.predictReuse(x, modelCallAt(pipe.setup.schedule, 501, 2), cond);
      assert.ok(maxAbsDiff(stale, await plain.predict(x, modelCallAt(pipe.setup.schedule, 501, 2), cond)) > 1e-4, `${points}: reuse uses the cache`);
      await net.release();
    }
  });

  it('txt2img with feature reuse (interval 2 over 20 DDIM calls): 10 keyframe calls, close to the full run', async () => {
    const full = await pipe.textToImage({ ...base, solver: 'ddim', nfe: 20 });
    const fr = await pipe.textToImage({ ...base, solver: 'ddim', nfe: 20, featureReuse: { keyframes: { interval: 2 } } });
    assert.equal(fr.run.calls, 20);
    assert.equal(fr.featureReuse!.keyframe.calls, 10);
    assert.ok(fr.featureReuse!.reuse.calls > 0 && fr.featureReuse!.keyframe.calls + fr.featureReuse!.reuse.calls <= 20);
    const d = relErr(fr.latents, full.latents);
    assert.ok(d > 0 && d < 0.1, `FR vs full: ${d}`);
  });
});
