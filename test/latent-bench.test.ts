/**
 * `rediffuse bench --pipeline DIR --class-prompts FILE` on the shipped latent U-Net: 3 cells
 * (DPM-Solver++ 2M at 6 calls with guidance 2 and unconditionally, DDIM at 4 calls with guidance 2),
 * 32 samples in chunks of 16 (so the second chunk starts mid-cycle, at class 6). The guided cell's
 * FD-classifier and accuracy are recomputed independently — each class's samples drawn from the
 * same noise rows by the pipeline's own `textToImage` on that class's caption, decoded by its VAE,
 * scored by the classifier — and must equal the bench's; the per-sample conditioning follows
 * class i mod 10 across chunks; the decode is timed apart; a rerun comes from the store; bad input
 * is refused before sampling.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import { classOfSample, readClassPrompts } from '../src/bench/class-prompts.js';
import { pipelineSetup, type BenchSetup } from '../src/bench/setup.js';
import { runBenchCommand, type BenchCommandOptions, type BenchCommandResult } from '../src/cli/commands/bench.js';
import { gaussianBatch } from '../src/core/rng.js';
import { classAccuracy, featureStatistics, frechetDistance, loadClassifier } from '../src/metrics/index.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { loadReferenceStatistics } from '../src/node/index.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';

const ort = ortNode as unknown as OrtModuleLike;
const DIR = 'models/latent-unet';
const CAPTIONS = 'models/latent-captions.json';
const tmp = mkdtempSync(join(tmpdir(), 'latent-bench-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const base = (out: string): BenchCommandOptions => ({
  pipeline: DIR,
  classPrompts: CAPTIONS,
  solvers: ['dpmpp_2m'],
  nfe: [6],
  guidance: [2, 0],
  reference: 'dpmpp_2m:12',
  count: 32,
  batch: 16,
  seed: 0,
  threads: 1,
  out,
  quiet: true,
  plots: false,
});

describe('bench --pipeline --class-prompts on models/latent-unet', () => {
  const out = join(tmp, 'run');
  let first: BenchCommandResult;
  before(async () => {
    // the grid from flags is one sub-grid; DDIM at 4 calls is added through a grid file below, so run both
    const grid = join(tmp, 'grid.json');
    writeFileSync(
      grid,
      JSON.stringify({
        name: 'latent-test',
        pipeline: { dir: `${process.cwd()}/${DIR}`, classPrompts: `${process.cwd()}/${CAPTIONS}` },
        seeds: { seed: 0, count: 32, batch: 16 },
        reference: { solver: 'dpmpp_2m', nfe: 12 },
        threads: 1,
        guidance: [2],
        runs: [
          { solvers: ['dpmpp_2m'], nfe: [6], guidance: [2, 0] },
          { solvers: ['ddim'], nfe: [4] },
        ],
      }),
    );
    first = await runBenchCommand({ grid, out, quiet: true, plots: false });
  });

  it('scores the decoded images: FD-classifier with its spread, accuracy above chance at guidance 2 and none at guidance 0', () => {
    assert.deepEqual(first.failedCells, []);
    const cells = first.results.cells;
    assert.equal(cells.length, 3);
    assert.equal(first.results.model.kind, 'pipeline');
    assert.match(first.results.model.meter ?? '', /fashion-classifier features \(128-d\)/);
    for (const c of cells) {
      const m = c.metrics!;
      // 32 samples: FD-classifier is biased up (the README's 1000-sample figure at 20 steps is 1.40); measured 2.7 (guided) and 6.0 (unconditional) for DPM-Solver++ 2M at 6 calls
      assert.ok(Number.isFinite(m.fd) && m.fd! > 0.5 && m.fd! < 10, `${c.label}: FD ${m.fd}`);
      assert.ok(m.fdSpread && m.fdSpread.std > 0 && m.fdSpread.std < m.fd!, `${c.label}: spread ${JSON.stringify(m.fdSpread)}`);
      assert.ok(m.trajectory && m.trajectory.mse > 0 && m.trajectory.mse < 0.1, `${c.label}: trajectory ${JSON.stringify(m.trajectory)}`);
      assert.equal(m.trajectory.start, 999);
      if (c.settings.guidance === 0) assert.equal(m.accuracy, null);
      else assert.ok(m.accuracy !== null && m.accuracy >= 0.5, `${c.label}: accuracy ${m.accuracy} (chance 0.1)`);
      const t = c.timing!;
      assert.ok(t.decodeMs! > 0 && t.wallMs > 0, `${c.label}: decode ${t.decodeMs} ms`);
      assert.ok(Math.abs(t.decodeShare! - t.decodeMs! / (t.wallMs + t.decodeMs!)) < 1e-12);
      assert.equal(c.calls!.perRun, c.settings.nfe);
      assert.equal(c.runs, 2);
    }
  });

  it("the guided cell's FD-classifier and accuracy equal an independent textToImage run per class caption", async () => {
    const cell = first.results.cells.find((c) => c.settings.solver === 'dpmpp_2m' && c.settings.guidance === 2)!;
    const prompts = readClassPrompts(CAPTIONS, 10);
    const pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(DIR), threads: 1 });
    const d = 4 * 7 * 7;
    const noise = gaussianBatch(0, 32, d, 'float32', 0);
    const images = new Float32Array(32 * 784);
    for (let k = 0; k < 10; k++) {
      const rows = Array.from({ length: 32 }, (_, i) => i).filter((i) => classOfSample(i, 10) === k);
      const init = new Float32Array(rows.length * d);
      rows.forEach((i, j) => init.set(noise.subarray(i * d, (i + 1) * d), j * d));
      const r = await pipe.textToImage({
        prompt: prompts.captions[k]!,
        batch: rows.length,
        guidanceScale: 2,
        solver: 'dpmpp_2m',
        nfe: 6,
        initialLatents: init,
      });
      rows.forEach((i, j) => images.set(r.decoded.subarray(j * 784, (j + 1) * 784), i * 784));
    }
    await pipe.release();
    const classifier = await loadClassifier(ort, 'models/fashion-classifier.onnx', { threads: 1 });
    const measured = await classifier.classify(images);
    await classifier.release();
    const stats = await loadReferenceStatistics('models/fashion-test-stats.json', { expectedDim: 128 });
    const fd = frechetDistance(featureStatistics(measured.features, 128), stats);
    const labels = Array.from({ length: 32 }, (_, i) => i % 10);
    const acc = classAccuracy(measured.logits, labels, 10).accuracy;
    assert.ok(Math.abs(cell.metrics!.fd! - fd) <= 1e-6 * fd, `bench FD ${cell.metrics!.fd} vs direct ${fd}`);
    assert.equal(cell.metrics!.accuracy, acc);
  });

  it('a rerun of the same grid comes from the store with the same keys and figures', async () => {
    const again = await runBenchCommand({ ...base(out), solvers: ['dpmpp_2m'], nfe: [6], guidance: [2, 0] });
    assert.equal(again.results.cachedCells, 2);
    for (const c of again.results.cells) {
      const prior = first.results.cells.find((p) => p.key === c.key);
      assert.ok(prior, `cell ${c.label} has the key of the first run`);
      assert.deepEqual(c.metrics, prior.metrics);
      assert.deepEqual(c.timing, prior.timing);
    }
  });
});

describe('class-prompt conditioning', () => {
  let setup: BenchSetup;
  before(async () => {
    setup = await pipelineSetup({ dir: DIR, classPrompts: CAPTIONS, threads: 1 });
  });
  after(() => setup.release());

  it('reads the eval captions ("a photo of …") per class', () => {
    const p = readClassPrompts(CAPTIONS);
    assert.equal(p.captions.length, 10);
    assert.equal(p.captions[0], 'a photo of a t-shirt');
    assert.equal(p.captions[9], 'a photo of an ankle boot');
    assert.equal(setup.numClasses, 10);
    assert.ok(setup.conditional && setup.decode);
  });

  it('sample i gets class i mod 10, per chunk offset; the guidance branch is the empty prompt', () => {
    const rowsOf = (g: number, n: number, offset: number) => {
      const o = setup.promptConditioning!(g, n, offset);
      const e = o.cond!.encoderHiddenStates!;
      const per = e.length / n;
      return { row: (i: number) => Array.from(e.subarray(i * per, (i + 1) * per)), o, per };
    };
    const all = rowsOf(2, 24, 0);
    assert.notDeepEqual(all.row(0), all.row(1));
    assert.deepEqual(all.row(0), all.row(10));
    assert.deepEqual(all.row(3), all.row(23));
    // a chunk from offset 16 starts at class 6
    const chunk = rowsOf(2, 8, 16);
    for (let j = 0; j < 8; j++) assert.deepEqual(chunk.row(j), all.row(16 + j));
    assert.equal(chunk.o.guidance!.scale, 2);
    const u = chunk.o.guidance!.uncond!.encoderHiddenStates!;
    assert.deepEqual(Array.from(u.subarray(0, chunk.per)), Array.from(u.subarray(7 * chunk.per, 8 * chunk.per)));
    assert.notDeepEqual(Array.from(u.subarray(0, chunk.per)), chunk.row(0));
    // g = 1: the captions alone; g = 0: the empty prompt alone
    assert.equal(setup.promptConditioning!(1, 8, 16).guidance, undefined);
    assert.deepEqual(Array.from(setup.promptConditioning!(1, 8, 16).cond!.encoderHiddenStates!), Array.from(chunk.o.cond!.encoderHiddenStates!));
    const g0 = setup.promptConditioning!(0, 8, 16);
    assert.equal(g0.guidance, undefined);
    assert.deepEqual(Array.from(g0.cond!.encoderHiddenStates!.subarray(0, chunk.per)), Array.from(u.subarray(0, chunk.per)));
  });

  it("the captions file's content is part of the model hash (same captions in the array form: same rows, another hash)", async () => {
    const file = join(tmp, 'captions-array.json');
    writeFileSync(file, JSON.stringify(readClassPrompts(CAPTIONS).captions));
    const other = await pipelineSetup({ dir: DIR, classPrompts: file, threads: 1 });
    try {
      assert.notEqual(other.modelHash, setup.modelHash);
      assert.deepEqual(
        Array.from(other.promptConditioning!(2, 12, 5).cond!.encoderHiddenStates!),
        Array.from(setup.promptConditioning!(2, 12, 5).cond!.encoderHiddenStates!),
      );
    } finally {
      await other.release();
    }
  });
});

describe('bench --class-prompts: bad input is refused before sampling', () => {
  const out = join(tmp, 'bad');
  it('a missing captions file, captions without every class, --prompt with --class-prompts, --class-prompts without --pipeline', async () => {
    await assert.rejects(runBenchCommand({ ...base(out), classPrompts: join(tmp, 'nope.json') }), /class prompts .*nope\.json cannot be read \(ENOENT\)/);
    const nine = join(tmp, 'nine.json');
    writeFileSync(nine, JSON.stringify({ captions: Array.from({ length: 9 }, (_, k) => ({ text: `class ${k}`, label: k })) }));
    await assert.rejects(runBenchCommand({ ...base(out), classPrompts: nine }), /no caption for class 9 of 0…9 \(the classifier has 10 classes\)/);
    const eleven = join(tmp, 'eleven.json');
    writeFileSync(eleven, JSON.stringify(Array.from({ length: 11 }, (_, k) => `class ${k}`)));
    await assert.rejects(runBenchCommand({ ...base(out), classPrompts: eleven }), /captions for class 10, but the classifier knows classes 0…9 only/);
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ captions: [{ text: 'x' }] }));
    await assert.rejects(runBenchCommand({ ...base(out), classPrompts: bad }), /captions\[0\] is .*needs a text and an integer label/);
    await assert.rejects(runBenchCommand({ ...base(out), prompt: 'a photo of a bag' }), /give --prompt TEXT or --class-prompts FILE, not both/);
    const { pipeline: _p, ...noPipe } = base(out);
    await assert.rejects(runBenchCommand(noPipe), /--class-prompts needs --pipeline DIR/);
  });

  it('grid files: a pipeline entry with both prompts, with model, or next to --pipeline', async () => {
    const grid = (g: Record<string, unknown>) => {
      const f = join(tmp, `g${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(f, JSON.stringify({ name: 'g', seeds: { seed: 0, count: 2, batch: 2 }, runs: [{ solvers: ['ddim'], nfe: [2] }], ...g }));
      return f;
    };
    const opts = { out, quiet: true, plots: false };
    await assert.rejects(
      runBenchCommand({ ...opts, grid: grid({ pipeline: { dir: DIR, prompt: 'x', classPrompts: CAPTIONS } }) }),
      /grid\.pipeline: give prompt or classPrompts, not both/,
    );
    await assert.rejects(
      runBenchCommand({ ...opts, grid: grid({ model: 'fashion-unet', pipeline: { dir: DIR, classPrompts: CAPTIONS } }) }),
      /grid\.model: a pipeline grid names its model in pipeline\.dir: drop model/,
    );
    await assert.rejects(
      runBenchCommand({ ...opts, grid: grid({ pipeline: { dir: DIR, classPrompts: CAPTIONS, steps: 3 } }) }),
      /grid\.pipeline: unknown key "steps"/,
    );
    await assert.rejects(
      runBenchCommand({ ...opts, grid: grid({ pipeline: { dir: DIR, classPrompts: CAPTIONS } }), pipeline: DIR, prompt: 'x' }),
      /the grid names its pipeline .*: drop --pipeline, --prompt, --class-prompts and --negative-prompt/,
    );
  });
});

describe('bench on the latent flow DiT: DPM-Solver++ and UniPC on the use_flow_sigmas grid', () => {
  const out = join(tmp, 'flow');
  const dit = (o: Partial<BenchCommandOptions>): BenchCommandOptions => ({
    ...base(out),
    pipeline: 'models/latent-dit',
    reference: 'heun:10',
    count: 8,
    batch: 8,
    guidance: [2],
    ...o,
  });
  it("the card's FlowMatch grid (σ from 1) is refused before sampling, with the spacing that fixes it", async () => {
    await assert.rejects(runBenchCommand(dit({ solvers: ['dpmpp_2m'], nfe: [4] })), /cannot be made.*use_flow_sigmas/s);
  });
  it('spacing flow_sigmas: the cells start at σ = 0.999 (t = 999) and get a reference moved there from the FlowMatch grid σ = 1', async () => {
    const r = await runBenchCommand(dit({ solvers: ['dpmpp_2m', 'unipc'], nfe: [4], spacing: ['flow_sigmas'] }));
    assert.deepEqual(r.failedCells, []);
    for (const c of r.results.cells) {
      assert.equal(c.settings.spacing, 'flow_sigmas');
      assert.equal(c.timesteps![0], Math.fround(0.999));
      assert.equal(c.metrics!.trajectory!.start, Math.fround(0.999));
      assert.ok(Number.isFinite(c.metrics!.fd) && c.metrics!.fd! > 0, `${c.label}: FD ${c.metrics!.fd}`);
    }
    assert.deepEqual(
      r.results.reference.runs.map((x) => x.start),
      [Math.fround(0.999)],
    );
  });
});
