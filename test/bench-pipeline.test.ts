/**
 * `rediffuse bench --pipeline`: a 2-cell grid (DDIM at 2 and 4 calls, CFG 7.5) on the tiny SD
 * fixture's UNet conditioned on a prompt. Each cell's trajectory MSE equals the MSE between a direct
 * `sample()` run of the pipeline's UNet and the DDIM 20-call reference from the same noise; calls
 * and wall time are reported; fd/accuracy/kid are refused with the reason.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { gaussianBatch } from '../src/core/rng.js';
import { planSample, sample } from '../src/core/sample.js';
import { alignReferenceGrid } from '../src/metrics/trajectory.js';
import { runBenchCommand } from '../src/cli/commands/bench.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';
const tmp = mkdtempSync(join(tmpdir(), 'bench-pipe-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('bench --pipeline', () => {
  it('2 cells on the fixture: trajectory MSE vs a direct run, calls and wall time in the report', async () => {
    const out = join(tmp, 'run');
    const r = await runBenchCommand({
      pipeline: DIR,
      prompt: 'a photo of a cat',
      solvers: ['ddim'],
      nfe: [2, 4],
      reference: 'ddim:20',
      count: 2,
      batch: 2,
      seed: 3,
      out,
      quiet: true,
      plots: false,
    });
    assert.deepEqual(r.failedCells, []);
    assert.equal(r.results.cells.length, 2);
    assert.equal(r.results.model.kind, 'pipeline');
    // the direct computation: the pipeline's UNet, the same noise, CFG 7.5 against ""
    const pipe = await StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader: nodePipelineReader(DIR) });
    const prep = await pipe.sampleRun({ prompt: 'a photo of a cat', batch: 2, guidanceScale: 7.5 });
    const unet = await pipe.unet(prep.latentHeight, prep.latentWidth);
    const d = unet.sampleShape.reduce((a, b) => a * b, 1);
    const noise = gaussianBatch(3, 2, d, 'float32', 0);
    const runAt = async (nfe: number) => {
      const { steps: _s, ...base } = prep.run;
      return sample({ ...base, solver: 'ddim', nfe, model: unet, initialNoise: noise, seed: 3 });
    };
    // The reference starts where the cell starts: the fixture's leading grid puts DDIM-2 at t = 501 and DDIM-20 at 951, and the
    // 20-step reference moved to the cell's start (alignReferenceGrid) is what the bench compares with (against DDIM-20 from
    // its own start, the nfe 2 cell's "error" was 101, the start-time mismatch; from the same start it is 0.039).
    const refFrom = async (start: number) => {
      const { steps: _s, ...base } = prep.run;
      const times = alignReferenceGrid(planSample({ ...base, solver: 'ddim', nfe: 20 }).timesteps, start);
      return sample({ ...base, solver: 'ddim', nfe: 20, timesteps: { ...base.timesteps, timesteps: times }, model: unet, initialNoise: noise, seed: 3 });
    };
    for (const cell of r.results.cells) {
      assert.equal(cell.status, 'ok', cell.error ?? '');
      assert.equal(cell.calls!.perRun, cell.settings.nfe);
      assert.equal(cell.calls!.total, cell.settings.nfe);
      assert.ok(cell.timing!.wallMs > 0);
      assert.equal(cell.metrics!.fd, null);
      const run = await runAt(cell.settings.nfe);
      const mine = run.samples;
      assert.equal(cell.metrics!.trajectory!.start, run.timesteps[0]);
      const ref = (await refFrom(run.timesteps[0]!)).samples;
      let s = 0;
      for (let i = 0; i < mine.length; i++) s += (mine[i]! - ref[i]!) ** 2;
      const mse = s / mine.length;
      assert.ok(mse > 0);
      assert.ok(Math.abs(cell.metrics!.trajectory!.mse - mse) <= 1e-6 * mse, `nfe ${cell.settings.nfe}: ${cell.metrics!.trajectory!.mse} vs ${mse}`);
    }
    await pipe.release();
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /ddim/);
  });

  it('refuses fd/accuracy/kid metrics, a missing prompt and --model, before loading', async () => {
    const base = { pipeline: DIR, solvers: ['ddim'], nfe: [2], out: join(tmp, 'x'), quiet: true, plots: false };
    await assert.rejects(runBenchCommand({ ...base }), /--pipeline DIR needs --prompt TEXT/);
    await assert.rejects(runBenchCommand({ ...base, prompt: 'x', model: 'reference' }), /drop --model\/--card/);
    const grid = join(tmp, 'grid.json');
    writeFileSync(grid, JSON.stringify({ name: 'g', model: DIR, seeds: { seed: 0, count: 2, batch: 2 }, runs: [{ solvers: ['ddim'], nfe: [2] }] }));
    await assert.rejects(
      runBenchCommand({ pipeline: DIR, prompt: 'x', grid, out: join(tmp, 'y'), quiet: true, plots: false }),
      /metrics fd, accuracy need a classifier of the images, and there is none for Stable-Diffusion images/,
    );
    await assert.rejects(runBenchCommand({ prompt: 'x', solvers: ['ddim'], nfe: [2], quiet: true }), /--prompt\/--negative-prompt need --pipeline DIR/);
  });
});
