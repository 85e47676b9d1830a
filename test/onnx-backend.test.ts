/**
 * The ONNX backend on tiny random-weight exports (test/fixtures), on the bundled Fashion-MNIST
 * U-Net, and on a scripted stand-in for onnxruntime (the module is injected, so signatures, dtypes
 * and failures can be staged exactly). REDIFFUSE_FIXTURES / REDIFFUSE_BUNDLED_MODEL point the tests
 * at other files during development.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { modelCallAt } from '../src/core/model.js';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { float16Bits, float16Value, fromFloat16Bits } from '../src/model/float16.js';
import { bundledModelPath, cardPathFor, loadOnnxModel, readModelBytes } from '../src/node/load-model.js';
import { parseModelCard, resolveClassLabel } from '../src/model/model-card.js';
import { sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { OnnxDiffusionModel } from '../src/model/onnx-backend.js';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike, OrtValueMetadataLike } from '../src/model/ort-types.js';
import { concatOutputOnnx } from './helpers/tiny-fr-onnx.js';
import { maxAbsDiff } from './helpers/arrays.js';

const FIXTURES = process.env['REDIFFUSE_FIXTURES'] ?? join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => join(FIXTURES, name);
const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-onnx-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A VP schedule whose network time is 1000·t, so calls reach every model time the tests use (0…1000). */
const vp = continuousVpSchedule({ timeInputScale: 1000 });
/** The descriptor of a call at network time `modelTime` on `batch` samples (the backend reads `modelTime` and `batch`). */
const at = (modelTime: number, batch: number) => modelCallAt(vp, modelTime / 1000, batch);

/** Deterministic pseudo-random values in [−1, 1). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function open(name: string, extra: Partial<Parameters<typeof OnnxDiffusionModel.create>[0]> = {}) {
  return OnnxDiffusionModel.create({ ort, model: readModelBytes(fixture(name)), label: name, threads: 1, ...extra });
}

/** Labels for a batch when the model is class-conditional. */
function condFor(model: OnnxDiffusionModel, batch: number, label = 1) {
  return model.signature.classLabels ? { classLabels: new Array<number>(batch).fill(label) } : undefined;
}

describe('float16 conversion', () => {
  it('encodes exact values, rounds half to even, and handles subnormals and overflow', () => {
    assert.equal(float16Bits(1), 0x3c00);
    assert.equal(float16Bits(-2), 0xc000);
    assert.equal(float16Bits(65504), 0x7bff);
    assert.equal(float16Bits(65520), 0x7c00); // rounds up past the largest finite half
    assert.equal(float16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(float16Bits(2 ** -25), 0x0000); // tie → even (0)
    assert.equal(float16Bits(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2⁻¹⁰ → even
    assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    assert.equal(float16Value(float16Bits(500.4)), 500.5); // spacing 0.25 at 500
    assert.ok(Number.isNaN(float16Value(float16Bits(NaN))));
    const xs = [0.1, -3.75, 999, 1e-5, 12345.6];
    const back = fromFloat16Bits(xs.map(float16Bits));
    xs.forEach((x, i) => assert.ok(Math.abs(back[i]! - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `${x} → ${back[i]}`));
  });
});

describe('OnnxDiffusionModel on real exports', () => {
  it('introspects names, dtypes and shapes of each fixture', async () => {
    const f16 = await open('tiny-unet-f16t.onnx');
    assert.equal(f16.signature.timestep.dtype, 'float16');
    assert.equal(f16.signature.sample.name, 'sample');
    assert.equal(f16.signature.output, 'out_sample');
    const i64 = await open('tiny-unet-i64t.onnx');
    assert.equal(i64.signature.timestep.dtype, 'int64');
    const sd = await open('tiny-sd-unet.onnx');
    assert.deepEqual(sd.sampleShape, [4, 8, 8]);
    assert.equal(sd.signature.timestep.dtype, 'int64');
    assert.equal(sd.signature.encoderHiddenStates?.name, 'encoder_hidden_states');
    assert.deepEqual(sd.signature.encoderHiddenStates?.shape.slice(1), [7, 32]);
    assert.equal(sd.signature.classLabels, undefined);
  });

  it('loads the bundled model with its card: float32 timestep gets the exact fractional time', async () => {
    const { model, card } = await loadOnnxModel({ path: process.env['REDIFFUSE_BUNDLED_MODEL'] ?? bundledModelPath(), ort, threads: 1 });
    assert.ok(card, 'the bundled model ships a card');
    assert.deepEqual(model.sampleShape, [1, 28, 28]);
    assert.equal(model.signature.timestep.dtype, 'float32');
    assert.equal(model.signature.classLabels?.dtype, 'int64');
    assert.equal(model.nullLabel, card.nullLabel);
    const x = noise(2 * 784, 4);
    const cond = { classLabels: [0, card.nullLabel!] };
    const a = await model.predict(x, at(500.4, 2), cond);
    const b = await model.predict(x, at(500, 2), cond);
    assert.ok(maxAbsDiff(a, b) > 0, 'a float timestep is not rounded');
    assert.ok(maxAbsDiff(a, b) < 0.05, 'a 0.4 step of time changes ε̂ only a little');
    await model.release();
  });

  it('rounds fractional time for an int64 timestep and feeds float16 as the nearest half', async () => {
    const i64 = await open('tiny-unet-i64t.onnx');
    const n = i64.sampleShape.reduce((a, b) => a * b, 1);
    const x = noise(2 * n, 7);
    const atTime = (m: OnnxDiffusionModel, t: number) => m.predict(x, at(t, 2), condFor(m, 2));
    assert.equal(maxAbsDiff(await atTime(i64, 500.4), await atTime(i64, 500)), 0);
    assert.equal(maxAbsDiff(await atTime(i64, 499.6), await atTime(i64, 500)), 0);
    assert.ok(maxAbsDiff(await atTime(i64, 501), await atTime(i64, 500)) > 1e-6, 'the int64 model must see the time');

    const f16 = await open('tiny-unet-f16t.onnx');
    assert.equal(maxAbsDiff(await atTime(f16, 500.4), await atTime(f16, 500.5)), 0); // both encode as 500.5
    assert.ok(maxAbsDiff(await atTime(f16, 500.4), await atTime(f16, 500)) > 1e-7, 'the float16 model must see the time');
  });

  it('splits a big batch into chunks with the same result as one run', async () => {
    const m1 = await open('tiny-unet-i64t.onnx', { maxBatch: 64 });
    const m2 = await open('tiny-unet-i64t.onnx', { maxBatch: 3 });
    const n = m1.sampleShape.reduce((a, b) => a * b, 1);
    const x = noise(7 * n, 11);
    const cond = m1.signature.classLabels ? { classLabels: [0, 1, 2, 3, 4, 5, 6] } : undefined;
    const whole = await m1.predict(x, at(321, 7), cond);
    const split = await m2.predict(x, at(321, 7), cond);
    assert.ok(maxAbsDiff(whole, split) < 1e-5);
    assert.equal(m1.stats.runs, 1);
    assert.equal(m2.stats.runs, 3); // 3 + 3 + 1
    assert.equal(m2.stats.calls, 1);
    assert.equal(m2.stats.images, 7);
    assert.ok(m2.stats.totalMs > 0);
  });

  it('runs a guided 2B batch (cond half, null-label half) as one call equal to two separate calls', async () => {
    const m = await open('tiny-unet-f16t.onnx', { nullLabel: 10 });
    if (!m.signature.classLabels) return;
    const n = m.sampleShape.reduce((a, b) => a * b, 1);
    const x = noise(3 * n, 5);
    const xx = new Float32Array(6 * n);
    xx.set(x);
    xx.set(x, 3 * n);
    const both = await m.predict(xx, at(700, 6), { classLabels: [2, 5, 7, 10, 10, 10] });
    const cond = await m.predict(x, at(700, 3), { classLabels: [2, 5, 7] });
    const uncond = await m.predict(x, at(700, 3)); // no labels → the null label
    assert.ok(maxAbsDiff(both.subarray(0, 3 * n), cond) < 1e-5);
    assert.ok(maxAbsDiff(both.subarray(3 * n), uncond) < 1e-5);
    assert.ok(maxAbsDiff(cond, uncond) > 1e-4, 'labels must change the output');
    assert.equal(m.stats.calls, 3);
    assert.equal(m.stats.runs, 3);
  });

  it('keeps float64 input precision in its result type', async () => {
    const m = await open('tiny-unet-i64t.onnx');
    const n = m.sampleShape.reduce((a, b) => a * b, 1);
    const out = await m.predict(Float64Array.from(noise(n, 3)), at(10, 1), condFor(m, 1));
    assert.ok(out instanceof Float64Array);
  });

  it('feeds encoder_hidden_states to a Stable-Diffusion-style UNet', async () => {
    const sd = await open('tiny-sd-unet.onnx');
    const n = 4 * 8 * 8;
    const x = noise(2 * n, 1);
    const e1 = noise(2 * 7 * 32, 2);
    const e2 = noise(2 * 7 * 32, 3);
    const y1 = await sd.predict(x, at(900, 2), { encoderHiddenStates: e1 });
    const y1b = await sd.predict(x, at(900, 2), { encoderHiddenStates: e1, encoderHiddenShape: [7, 32] });
    const y2 = await sd.predict(x, at(900, 2), { encoderHiddenStates: e2 });
    assert.equal(y1.length, 2 * n);
    assert.equal(maxAbsDiff(y1, y1b), 0);
    assert.ok(maxAbsDiff(y1, y2) > 1e-5, 'the text states must change the output');
    await assert.rejects(sd.predict(x, at(900, 2)), /needs encoder_hidden_states/);
    await assert.rejects(sd.predict(x, at(900, 2), { encoderHiddenStates: noise(7 * 32, 1) }), /expected batch 2/);
    await assert.rejects(sd.predict(x, at(900, 2), { classLabels: [1, 2] }), /not class-conditional/);
  });

  it('rejects a corrupt file with a message that says to re-export', async () => {
    const bad = join(tmp, 'corrupt.onnx');
    writeFileSync(
      bad,
      noise(4096, 99).map((v) => v * 1e6),
    );
    await assert.rejects(
      OnnxDiffusionModel.create({ ort, model: readModelBytes(bad), label: bad }),
      (err: Error) => /not a valid ONNX model/.test(err.message) && /re-export/.test(err.message) && err.message.includes(bad),
    );
    const truncated = join(tmp, 'truncated.onnx');
    writeFileSync(truncated, readModelBytes(fixture('tiny-sd-unet.onnx')).subarray(0, 300));
    await assert.rejects(loadOnnxModel({ path: truncated, cardPath: null, ort }), /not a valid ONNX model/);
  });

  it('rejects a missing file and a model whose sample shape contradicts the card', async () => {
    assert.throws(() => readModelBytes(join(tmp, 'nope.onnx')), /does not exist; pass --model/);
    await assert.rejects(
      open('tiny-sd-unet.onnx', { sampleShape: [1, 28, 28] }),
      (err: Error) => /\[B,4,8,8\]|\[.*4,8,8\]/.test(err.message) && /\[1,28,28\]/.test(err.message),
    );
    const sd = await open('tiny-sd-unet.onnx');
    await assert.rejects(sd.predict(new Float32Array(10), at(5, 1), { encoderHiddenStates: noise(224, 1) }), /expected batch 1 × \[4,8,8\] = 256/);
  });

  it('refuses an output that is not shaped like the sample, naming the output, both shapes and the fix', async () => {
    // out_sample = Concat(sample + t, sample + t, axis=1) is [B,2,4,4]: twice the values of the sample.
    const m = await OnnxDiffusionModel.create({ ort, model: concatOutputOnnx(), sampleShape: [1, 4, 4], label: 'concat.onnx', threads: 1 });
    const x = noise(2 * 16, 8);
    const refusal = (err: Error) =>
      /^concat\.onnx: output "out_sample" has shape \[2,2,4,4\]/.test(err.message) &&
      /expected \[2,1,4,4\]/.test(err.message) &&
      /Re-export the model so that out_sample has the shape of sample/.test(err.message);
    await assert.rejects(m.predict(x, at(500, 2)), refusal);
    // a whole run stops at its first call instead of sampling "successfully" with mixed elements
    const schedule = discreteSchedule();
    await assert.rejects(sample({ model: m, schedule, solver: 'ddim', steps: 4, batch: 2, seed: 1 }), refusal);
    assert.equal(m.stats.calls, 0, 'no call completes');
    await m.release();
  });

  it('loads a model with the card next to it', async () => {
    const dir = mkdtempSync(join(tmp, 'card-'));
    const path = join(dir, 'm.onnx');
    writeFileSync(path, readModelBytes(fixture('tiny-sd-unet.onnx')));
    writeFileSync(
      cardPathFor(path),
      JSON.stringify({ name: 'tiny', scheduler_config: { num_train_timesteps: 1000 }, prediction_type: 'v_prediction', sample_size: [4, 8, 8] }),
    );
    const { model, card } = await loadOnnxModel({ path, ort });
    assert.equal(card?.name, 'tiny');
    assert.equal(model.predictionType, 'v_prediction');
  });
});

/** A scripted onnxruntime: given inputs, metadata and an output function. */
function fakeOrt(spec: {
  inputs: readonly OrtValueMetadataLike[];
  outputs?: readonly string[];
  noMetadata?: boolean;
  run?: (feeds: Record<string, OrtTensorLike>) => Float32Array;
  /** Dims of the output tensor (default: those of the sample feed). */
  outDims?: (sampleDims: readonly number[]) => number[];
}): OrtModuleLike & { feeds: Record<string, OrtTensorLike>[] } {
  const feedsSeen: Record<string, OrtTensorLike>[] = [];
  class Tensor implements OrtTensorLike {
    constructor(
      readonly type: string,
      readonly data: unknown,
      readonly dims: readonly number[] = [],
    ) {}
  }
  const session: OrtSessionLike = {
    inputNames: spec.inputs.map((m) => m.name),
    outputNames: spec.outputs ?? ['out_sample'],
    ...(spec.noMetadata ? {} : { inputMetadata: spec.inputs }),
    async run(feeds) {
      feedsSeen.push(feeds);
      const x = Object.values(feeds).find((f) => f.dims.length >= 3)!;
      const out = spec.run ? spec.run(feeds) : Float32Array.from(x.data as Float32Array);
      return { [session.outputNames[0]!]: new Tensor('float32', out, spec.outDims ? spec.outDims(x.dims) : x.dims) };
    },
  };
  return {
    InferenceSession: { create: async () => session },
    Tensor: Tensor as unknown as OrtModuleLike['Tensor'],
    feeds: feedsSeen,
  };
}

const meta = (name: string, type: string, shape: (number | string)[]): OrtValueMetadataLike => ({ name, isTensor: true, type, shape });

describe('OnnxDiffusionModel signature handling (scripted onnxruntime)', () => {
  it('accepts the x/t/y alternates and an unnamed first output', async () => {
    const fake = fakeOrt({ inputs: [meta('x', 'float32', ['N', 1, 2, 2]), meta('t', 'int32', ['N']), meta('y', 'int32', ['N'])], outputs: ['output_0'] });
    const m = await OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1), nullLabel: 3 });
    assert.deepEqual(m.sampleShape, [1, 2, 2]);
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const y = await m.predict(x, at(12.7, 2));
    assert.deepEqual(Array.from(y), Array.from(x));
    const f = fake.feeds[0]!;
    assert.equal(f['t']!.type, 'int32');
    assert.deepEqual(Array.from(f['t']!.data as Int32Array), [13, 13]);
    assert.deepEqual(Array.from(f['y']!.data as Int32Array), [3, 3]);
  });

  it('lists what the model has and what is needed when inputs are not recognised', async () => {
    const fake = fakeOrt({ inputs: [meta('pixels', 'float32', ['B', 1, 28, 28]), meta('noise_level', 'float32', ['B'])] });
    await assert.rejects(
      OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1) }),
      (err: Error) =>
        /cannot find the sample and timestep input/.test(err.message) &&
        /pixels: float32\[B,1,28,28\]/.test(err.message) &&
        /rediffuse needs sample/.test(err.message),
    );
    const extra = fakeOrt({
      inputs: [meta('sample', 'float32', ['B', 1, 4, 4]), meta('timestep', 'float32', ['B']), meta('time_ids', 'float32', ['B', 6])],
    });
    await assert.rejects(OnnxDiffusionModel.create({ ort: extra, model: new Uint8Array(1) }), /time_ids are not understood/);
  });

  it('takes dtypes from the card when the runtime has no input metadata', async () => {
    const fake = fakeOrt({
      inputs: [meta('sample', 'float32', []), meta('timestep', 'float16', []), meta('class_labels', 'int64', [])],
      noMetadata: true,
    });
    const card = parseModelCard({
      name: 'c',
      scheduler_config: {},
      sample_size: [1, 2, 2],
      num_classes: 2,
      null_label: 2,
      inputs: { timestep: { dtype: 'float16', shape: ['B'] }, class_labels: 'int64' },
    });
    const m = await OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1), card });
    await m.predict(new Float32Array(4), at(999.9, 1), { classLabels: [1] });
    const f = fake.feeds[0]!;
    assert.equal(f['timestep']!.type, 'float16');
    assert.equal((f['timestep']!.data as Uint16Array)[0], float16Bits(999.9));
    assert.equal(f['class_labels']!.type, 'int64');
    assert.deepEqual(Array.from(f['class_labels']!.data as BigInt64Array), [1n]);
  });

  it('pads chunks for a model exported with a fixed batch', async () => {
    const fake = fakeOrt({ inputs: [meta('sample', 'float32', [2, 1, 1, 1]), meta('timestep', 'float32', [1])] });
    const m = await OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1) });
    assert.equal(m.maxBatch, 2);
    const y = await m.predict(Float32Array.from([1, 2, 3]), at(5, 3));
    assert.deepEqual(Array.from(y), [1, 2, 3]);
    assert.deepEqual(
      fake.feeds.map((f) => f['sample']!.dims[0]),
      [2, 2],
    );
    assert.deepEqual(fake.feeds[0]!['timestep']!.dims, [1]);
  });

  it('refuses an output of the right size but another shape (a flat [B,4] for samples [B,1,2,2])', async () => {
    const fake = fakeOrt({ inputs: [meta('sample', 'float32', ['B', 1, 2, 2]), meta('timestep', 'float32', ['B'])], outDims: (d) => [d[0]!, 4] });
    const m = await OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1), label: 'flat' });
    await assert.rejects(m.predict(new Float32Array(8), at(5, 2)), /^Error: flat: output "out_sample" has shape \[2,4\] .*expected \[2,1,2,2\]/);
    const same = fakeOrt({ inputs: [meta('sample', 'float32', ['B', 1, 2, 2]), meta('timestep', 'float32', ['B'])] });
    const ok = await OnnxDiffusionModel.create({ ort: same, model: new Uint8Array(1) });
    assert.deepEqual(Array.from(await ok.predict(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), at(5, 2))), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('reports NaN outputs, wrong labels and aborts clearly', async () => {
    const fake = fakeOrt({
      inputs: [meta('sample', 'float32', ['B', 1, 1, 2]), meta('timestep', 'float32', ['B']), meta('class_labels', 'int64', ['B'])],
      run: () => Float32Array.from([0, NaN]),
    });
    const m = await OnnxDiffusionModel.create({ ort: fake, model: new Uint8Array(1) });
    await assert.rejects(m.predict(new Float32Array(2), at(3, 1), { classLabels: [0] }), /returned NaN at timestep 3/);
    await assert.rejects(m.predict(new Float32Array(2), at(3, 1)), /no null label is known/);
    await assert.rejects(m.predict(new Float32Array(2), at(3, 1), { classLabels: [0, 1] }), /2 class labels for a batch of 1/);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(m.predict(new Float32Array(2), at(3, 1), { classLabels: [0] }, { signal: ac.signal }), { name: 'AbortError' });
  });
});

describe('model card', () => {
  const good = {
    name: 'fashion-unet',
    scheduler_config: { _class_name: 'DDPMScheduler', beta_schedule: 'linear', num_train_timesteps: 1000 },
    prediction_type: 'epsilon',
    sample_size: [1, 28, 28],
    num_classes: 3,
    null_label: 3,
    class_names: ['T-shirt/top', 'Trouser', 'Ankle boot'],
  };

  it('parses a valid card and resolves class names and indices', () => {
    const c = parseModelCard(JSON.stringify(good), 'x.json');
    assert.deepEqual(c.sampleShape, [1, 28, 28]);
    assert.equal(c.nullLabel, 3);
    assert.equal(resolveClassLabel(c, 'ankle boot'), 2);
    assert.equal(resolveClassLabel(c, 'T-SHIRT/TOP'), 0);
    assert.equal(resolveClassLabel(c, '1'), 1);
    assert.throws(() => resolveClassLabel(c, 'hat'), /unknown class "hat".*0=T-shirt\/top, 1=Trouser, 2=Ankle boot/);
    assert.throws(() => resolveClassLabel(c, '3'), /class 3 is out of range/);
  });

  it('names the bad field in every error', () => {
    assert.throws(() => parseModelCard('{', 'a.json'), /a\.json is not valid JSON/);
    assert.throws(() => parseModelCard({ ...good, scheduler_config: 3 }), /field "scheduler_config"/);
    assert.throws(
      () => parseModelCard({ ...good, prediction_type: 'noise' }),
      /field "prediction_type" is "noise"; use one of epsilon, sample, v_prediction/,
    );
    assert.throws(() => parseModelCard({ ...good, sample_size: 28 }), /field "sample_size"/);
    assert.throws(() => parseModelCard({ ...good, class_names: ['a'] }), /field "class_names" has 1 names but num_classes is 3/);
    assert.throws(() => parseModelCard({ ...good, null_label: 1 }), /field "null_label" \(1\) is one of the real classes/);
    assert.throws(() => parseModelCard({ ...good, inputs: { timestep: { dtype: 5 } } }), /field "inputs\.timestep\.dtype"/);
  });
});
