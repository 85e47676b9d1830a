/**
 * Any export's own signature: a card that names the roles makes a network with inputs `(x, t, c) → eps`,
 * one with `t: int64 [N,1]`, one with a 0-d float `t` trained on t/1000 and one with extra constant and
 * derived inputs sample exactly as the same network under the standard names. The graphs are the tiny
 * U-Net of test/helpers/tiny-fr-onnx.ts with their inputs renamed/reshaped in the ONNX bytes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import { sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { parseModelCard, type ModelCard } from '../src/model/model-card.js';
import { OnnxDiffusionModel } from '../src/model/onnx-backend.js';
import { decodeModel, encodeModel, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from '../src/model/onnx-graph/onnx-proto.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { runCardInit } from '../src/cli/commands/card.js';
import { runSampleCommand, type SampleCommandOptions } from '../src/cli/commands/sample.js';
import { decodePng } from '../src/io/png.js';
import { parseSchedulerConfigText } from '../src/model/card-init.js';
import { tinyUnetOnnx } from './helpers/tiny-fr-onnx.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;
const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });

function io(name: string, elemType: number, dims: (number | string)[]) {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}
const node = (opType: string, input: string[], output: string[], attribute: OnnxNode['attribute'] = []): OnnxNode => ({
  opType,
  input,
  output,
  name: `${opType}_${output[0]}`,
  attribute,
});
const f32 = (name: string, values: number[], dims: number[]): OnnxTensor => ({
  name,
  dims,
  dataType: 1,
  rawData: new Uint8Array(Float32Array.from(values).buffer),
});
const i64 = (name: string, values: number[]): OnnxTensor => ({
  name,
  dims: [values.length],
  dataType: 7,
  rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
});

/** The tiny U-Net with its graph edited: inputs/outputs renamed, and nodes put in front. */
type Graphed = OnnxModel & { graph: OnnxGraph };
function edited(edit: (m: Graphed) => void): Uint8Array {
  const m = decodeModel(tinyUnetOnnx()) as Graphed;
  edit(m);
  return encodeModel(m);
}

function rename(m: Graphed, from: string, to: string): void {
  for (const n of m.graph.node ?? []) {
    n.input = (n.input ?? []).map((s) => (s === from ? to : s));
    n.output = (n.output ?? []).map((s) => (s === from ? to : s));
  }
  for (const v of [...(m.graph.input ?? []), ...(m.graph.output ?? [])]) if (v.name === from) v.name = to;
}

/** `(x, t, c) → eps`: the same network, renamed. */
const xtcOnnx = () =>
  edited((m) => {
    rename(m, 'sample', 'x');
    rename(m, 'timestep', 't');
    rename(m, 'class_labels', 'c');
    rename(m, 'out_sample', 'eps');
  });

/** `t: int64 [N,1]`, reshaped to the network's [N] inside the graph. */
const nx1Onnx = () =>
  edited((m) => {
    m.graph.node = [node('Reshape', ['t', 'shape_flat'], ['timestep']), ...(m.graph.node ?? [])];
    m.graph.initializer = [...(m.graph.initializer ?? []), i64('shape_flat', [-1])];
    m.graph.input = [io('sample', 1, ['N', 1, 4, 4]), io('t', 7, ['N', 1]), io('class_labels', 7, ['N'])];
  });

/** A 0-d float `t` trained on t/1000 (scaled back up inside), a constant `gain` [N] = 1 and the derived `width` [] = 4. */
const scaledExtrasOnnx = () =>
  edited((m) => {
    rename(m, 'out_sample', 'raw');
    rename(m, 'sample', 'latent_in');
    m.graph.node = [
      node('Mul', ['t_in', 'k1000'], ['timestep']),
      ...(m.graph.node ?? []),
      node('Reshape', ['gain', 'shape_b111'], ['gain4']),
      node('Cast', ['width'], ['width_f'], [{ name: 'to', type: 2, i: 1 }]),
      node('Div', ['width_f', 'k4'], ['width_1']),
      node('Mul', ['raw', 'gain4'], ['raw_g']),
      node('Mul', ['raw_g', 'width_1'], ['eps']),
    ];
    m.graph.initializer = [...(m.graph.initializer ?? []), f32('k1000', [1000], []), f32('k4', [4], [])];
    m.graph.input = [io('latent_in', 1, ['N', 1, 4, 4]), io('t_in', 1, []), io('class_labels', 7, ['N']), io('gain', 1, ['N']), io('width', 7, [])];
    m.graph.output = [io('eps', 1, ['N', 1, 4, 4])];
  });

const card = (inputs: Record<string, unknown>, extra: Record<string, unknown> = {}): ModelCard =>
  parseModelCard({ name: 'tiny', scheduler_config: { num_train_timesteps: 1000 }, sample_size: [1, 4, 4], null_label: 10, inputs, ...extra });

async function run(model: OnnxDiffusionModel, solver: string) {
  const r = await sample({ model, schedule, solver, nfe: 6, batch: 3, seed: 11, cond: { classLabels: [1, 4, 7] } });
  return r.samples;
}

describe('model card roles', () => {
  it('samples (x, t, c) → eps, t: int64 [N,1], 0-d t/1000 with extras exactly as the standard names', async () => {
    const standard = await OnnxDiffusionModel.create({ ort, model: tinyUnetOnnx(), card: card({}) });
    const variants = {
      xtc: await OnnxDiffusionModel.create({
        ort,
        model: xtcOnnx(),
        card: card({ x: { role: 'sample' }, t: { role: 'timestep' }, c: { role: 'class_labels' } }, { output: 'eps' }),
      }),
      nx1: await OnnxDiffusionModel.create({ ort, model: nx1Onnx(), card: card({ t: { role: 'timestep' } }) }),
      scaled: await OnnxDiffusionModel.create({
        ort,
        model: scaledExtrasOnnx(),
        card: card(
          {
            latent_in: { role: 'sample' },
            t_in: { role: 'timestep', scale: 0.001 },
            gain: { role: 'constant', value: 1 },
            width: { role: 'image_width' },
          },
          { output: 'eps' },
        ),
      }),
    };
    assert.deepEqual(variants.nx1.signature.timestep.shape, ['N', 1]);
    assert.equal(variants.nx1.signature.timestep.dtype, 'int64');
    assert.deepEqual(variants.scaled.signature.timestep.shape, []);
    for (const solver of ['ddim', 'dpmpp_2m']) {
      const ref = await run(standard, solver);
      assert.ok(Math.max(...Array.from(ref, Math.abs)) > 0.1, 'the reference run is not trivial');
      for (const [id, m] of Object.entries(variants)) {
        const got = await run(m, solver);
        const d = maxAbsDiff(got, ref);
        // integer timesteps are exact; t/1000·1000 in float32 differs from t by < 1 ulp of t
        assert.ok(d <= 1e-6, `${id} ${solver}: max |Δ| = ${d}`);
      }
    }
  });

  it('the timestep scale and sigma encodings feed scale·t and σ_t/α_t', async () => {
    const fed: Record<string, { dims: readonly number[]; data: unknown }>[] = [];
    const fake: OrtModuleLike = {
      ...ort,
      InferenceSession: {
        create: async () => ({
          inputNames: ['z', 'tau'],
          outputNames: ['y'],
          inputMetadata: [
            { name: 'z', isTensor: true, type: 'float32', shape: ['B', 1, 2, 2] },
            { name: 'tau', isTensor: true, type: 'float32', shape: ['B', 1] },
          ],
          run: async (feeds: Record<string, { dims: readonly number[]; data: unknown }>) => {
            fed.push(feeds);
            return { y: new ort.Tensor('float32', new Float32Array(feeds['z']!.dims[0]! * 4), [feeds['z']!.dims[0]!, 1, 2, 2]) };
          },
        }),
      },
    } as unknown as OrtModuleLike;
    const sigmaModel = await OnnxDiffusionModel.create({
      ort: fake,
      model: new Uint8Array(1),
      card: card({ z: { role: 'sample' }, tau: { role: 'timestep', time: 'sigma' } }, { sample_size: [1, 2, 2] }),
    });
    const call = { t: 500, modelTime: 500, alpha: 0.6, sigma: 0.8, index: 0, batch: 2 };
    await sigmaModel.predict(new Float32Array(8), call);
    assert.deepEqual(fed[0]!['tau']!.dims, [2, 1]);
    assert.deepEqual(Array.from(fed[0]!['tau']!.data as Float32Array), [Math.fround(0.8 / 0.6), Math.fround(0.8 / 0.6)]);
    const scaled = await OnnxDiffusionModel.create({
      ort: fake,
      model: new Uint8Array(1),
      card: card({ z: { role: 'sample' }, tau: { role: 'timestep', scale: 0.001 } }, { sample_size: [1, 2, 2] }),
    });
    await scaled.predict(new Float32Array(8), call);
    assert.deepEqual(Array.from(fed[1]!['tau']!.data as Float32Array), [0.5, 0.5]);
  });

  it('without a card, (x, t, c) is refused naming the input and the card page; a card naming a missing input is refused', async () => {
    await assert.rejects(
      OnnxDiffusionModel.create({ ort, model: xtcOnnx(), sampleShape: [1, 4, 4] }),
      /input\(s\) c are not understood.*docs\/model-card\.md/s,
    );
    await assert.rejects(
      OnnxDiffusionModel.create({ ort, model: tinyUnetOnnx(), card: card({ labels_in: { role: 'class_labels' } }) }),
      /gives a role to input "labels_in".*docs\/model-card\.md/,
    );
    await assert.rejects(
      OnnxDiffusionModel.create({
        ort,
        model: xtcOnnx(),
        card: card({ x: { role: 'sample' }, t: { role: 'timestep' }, c: { role: 'class_labels' } }, { output: 'noise' }),
      }),
      /names output "noise".*outputs eps/,
    );
  });

  it('card fields are validated with errors pointing to docs/model-card.md', () => {
    assert.throws(() => card({ t: { role: 'time' } }), /inputs\.t\.role.*use one of sample, timestep.*docs\/model-card\.md/);
    assert.throws(() => card({ t: { role: 'timestep', scale: -1 } }), /inputs\.t\.scale/);
    assert.throws(() => card({ g: { role: 'constant' } }), /inputs\.g\.value.*missing/);
    assert.throws(() => card({ a: { role: 'sample' }, b: { role: 'sample' } }), /role "sample" to more than one input/);
    assert.throws(() => card({}, { image_range: '0..1' }), /image_range/);
    assert.equal(card({}, { image_range: '[0,1]' }).imageRange, '[0,1]');
  });

  it('card init writes a starter card for (x, t, c) → eps with its guesses marked, and that card samples like the standard names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rediffuse-card-'));
    const path = join(dir, 'xtc.onnx');
    writeFileSync(path, xtcOnnx());
    const sched = join(dir, 'scheduler_config.json');
    writeFileSync(sched, '{"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "linear", "lambda_min_clipped": -Infinity}');
    const r = await runCardInit(path, { schedulerConfig: sched });
    assert.equal(r.path, join(dir, 'xtc.json'));
    const written = JSON.parse(readFileSync(r.path, 'utf8'));
    assert.deepEqual(Object.fromEntries(Object.entries(written.inputs as Record<string, { role: string }>).map(([k, v]) => [k, v.role])), {
      x: 'sample',
      t: 'timestep',
      c: 'class_labels',
    });
    assert.deepEqual(written.sample_size, [1, 4, 4]);
    assert.equal(written.output, 'eps');
    assert.equal(written.scheduler_config.lambda_min_clipped, null); // JSON has no -Infinity; the parsed config held it
    assert.deepEqual(r.guessed, ['inputs.c.role', 'prediction_type', 'image_range', 'num_classes', 'null_label']);
    assert.deepEqual(written._guessed, r.guessed);
    await assert.rejects(runCardInit(path, { schedulerConfig: sched }), /exists; pass --force/);
    const m = await OnnxDiffusionModel.create({ ort, model: path, card: parseModelCard(readFileSync(r.path, 'utf8'), r.path) });
    const standard = await OnnxDiffusionModel.create({ ort, model: tinyUnetOnnx(), card: card({}) });
    assert.equal(maxAbsDiff(await run(m, 'ddim'), await run(standard, 'ddim')), 0);
    assert.equal(parseSchedulerConfigText('{"a": -Infinity, "b": 1}', 'x')['a'], -Infinity);
  });

  it('rediffuse sample draws a card\'s image_range "[0,1]" as x ↦ 2x − 1 of the same samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rediffuse-range-'));
    const model = join(dir, 'tiny.onnx');
    writeFileSync(model, tinyUnetOnnx());
    const pngs: Uint8Array[] = [];
    for (const range of ['[-1,1]', '[0,1]']) {
      const cardPath = join(dir, `card${pngs.length}.json`);
      writeFileSync(
        cardPath,
        JSON.stringify({
          name: 'tiny',
          scheduler_config: { _class_name: 'DDIMScheduler', num_train_timesteps: 1000 },
          sample_size: [1, 4, 4],
          null_label: 10,
          image_range: range,
        }),
      );
      const out = join(dir, `${pngs.length}.png`);
      const opts = {
        model,
        card: cardPath,
        out,
        solver: 'ddim',
        nfe: 4,
        class: 'none',
        count: 8,
        seed: 2,
        batchSize: 64,
        guidanceRescale: 0,
        quiet: true,
      };
      await runSampleCommand(opts as unknown as SampleCommandOptions);
      pngs.push(decodePng(new Uint8Array(readFileSync(out))).data);
    }
    const [a, b] = pngs as [Uint8Array, Uint8Array];
    assert.equal(a.length, b.length);
    // a = round((v+1)/2·255), b = round(v·255) = 2a − 255 ± 1 where neither is clipped
    let inside = 0;
    for (let i = 0; i < a.length; i++) {
      if (i % 4 === 3 || a[i]! <= 128 || a[i]! >= 250) continue;
      inside++;
      assert.ok(Math.abs(b[i]! - (2 * a[i]! - 255)) <= 2, `pixel byte ${i}: ${a[i]} → ${b[i]}`);
    }
    assert.ok(inside > 20, `${inside} comparable pixel bytes`);
  });
});
