/**
 * SDXL's extra conditioning through the pipeline, on graphs built from bytes: two tiny text encoders
 * (h0 = id·w, h1 = 2·h0 + b, h2 = h1 + 0.1; outputs hidden_states.0…2, last_hidden_state = 3·h2, and
 * for the second text_embeds = mean_tokens(h2)) and a UNet out = sample + a·mean(text_embeds) +
 * b·time_ids[0] + m·mean(encoder_hidden_states), per sample. Asserts the values fed to the UNet
 * (penultimate states concatenated, pooled embeds, time_ids, zeros for the empty negative prompt)
 * and the guided output, to 1e-6.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { classifierFreeGuidance, concatConditioning, unconditionalFor } from '../src/core/guidance.js';
import { modelCallAt } from '../src/core/model.js';
import { encodeModel, type OnnxAttribute } from '../src/model/onnx-graph/onnx-proto.js';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from '../src/model/ort-types.js';
import { memoryPipelineReader } from '../src/model/pipeline/pipeline-files.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { filesOf, io } from './helpers/pipeline-fixtures.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';
const D1 = 12;
const D2 = 20;
const [A, B, M] = [0.5, 0.001, 0.25];

const f32 = (name: string, dims: number[], values: number[]) => ({ name, dims, dataType: 1, floatData: values });
const i64 = (name: string, values: number[]) => ({ name, dims: [values.length], dataType: 7, int64Data: values });
const node = (opType: string, input: string[], output: string, attribute: OnnxAttribute[] = []) => ({
  opType,
  input,
  output: [output],
  name: output,
  attribute,
});

const wOf = (D: number, s: number) => Array.from({ length: D }, (_, j) => (j + 1) * s);
const bOf = (D: number) => Array.from({ length: D }, (_, j) => 0.01 * j);

function encoderOnnx(D: number, s: number, pooled: boolean): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'enc',
      node: [
        node('Cast', ['input_ids'], 'idf', [{ name: 'to', type: 2, i: 1 }]),
        node('Reshape', ['idf', 'shape3'], 'id3'),
        node('Mul', ['id3', 'w'], 'hidden_states.0'),
        node('Mul', ['hidden_states.0', 'two'], 'h1a'),
        node('Add', ['h1a', 'b'], 'hidden_states.1'),
        node('Add', ['hidden_states.1', 'tenth'], 'hidden_states.2'),
        node('Mul', ['hidden_states.2', 'three'], 'last_hidden_state'),
        ...(pooled
          ? [
              node('ReduceMean', ['hidden_states.2'], 'text_embeds', [
                { name: 'axes', type: 7, ints: [1] },
                { name: 'keepdims', type: 2, i: 0 },
              ]),
            ]
          : []),
      ],
      initializer: [
        i64('shape3', [0, 0, 1]),
        f32('w', [D], wOf(D, s)),
        f32('b', [D], bOf(D)),
        f32('two', [], [2]),
        f32('tenth', [], [0.1]),
        f32('three', [], [3]),
      ],
      input: [io('input_ids', 7, ['batch', 'sequence'])],
      output: [
        io('last_hidden_state', 1, ['batch', 'sequence', D]),
        ...(pooled ? [io('text_embeds', 1, ['batch', D])] : []),
        io('hidden_states.0', 1, ['batch', 'sequence', D]),
        io('hidden_states.1', 1, ['batch', 'sequence', D]),
        io('hidden_states.2', 1, ['batch', 'sequence', D]),
      ],
    },
  });
}

function unetOnnx(): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'sdxl-unet',
      node: [
        node('ReduceMean', ['text_embeds'], 'te', [
          { name: 'axes', type: 7, ints: [1] },
          { name: 'keepdims', type: 2, i: 1 },
        ]),
        node('Gather', ['time_ids', 'zero'], 'ti', [{ name: 'axis', type: 2, i: 1 }]),
        node('ReduceMean', ['encoder_hidden_states'], 'eh3', [
          { name: 'axes', type: 7, ints: [1, 2] },
          { name: 'keepdims', type: 2, i: 0 },
        ]),
        node('Reshape', ['eh3', 'col'], 'eh'),
        node('Mul', ['te', 'a'], 'te2'),
        node('Mul', ['ti', 'bb'], 'ti2'),
        node('Mul', ['eh', 'm'], 'eh2'),
        node('Add', ['te2', 'ti2'], 'c1'),
        node('Add', ['c1', 'eh2'], 'c2'),
        node('Reshape', ['c2', 'shape4'], 'c4'),
        node('Add', ['sample', 'c4'], 'out_sample'),
      ],
      initializer: [i64('zero', [0]), i64('col', [-1, 1]), i64('shape4', [-1, 1, 1, 1]), f32('a', [], [A]), f32('bb', [], [B]), f32('m', [], [M])],
      input: [
        io('sample', 1, ['batch', 4, 8, 8]),
        io('timestep', 1, []),
        io('encoder_hidden_states', 1, ['batch', 'sequence', D1 + D2]),
        io('text_embeds', 1, ['batch', D2]),
        io('time_ids', 1, ['batch', 6]),
      ],
      output: [io('out_sample', 1, ['batch', 4, 8, 8])],
    },
  });
}

/** onnxruntime whose UNet session records its feeds. */
function recordingOrt(): { ort: OrtModuleLike; feeds: Record<string, OrtTensorLike>[] } {
  const feeds: Record<string, OrtTensorLike>[] = [];
  const real = ort as unknown as OrtModuleLike;
  return {
    feeds,
    ort: {
      Tensor: real.Tensor,
      InferenceSession: {
        create: async (m, o) => {
          const s: OrtSessionLike = await real.InferenceSession.create(m, o);
          return {
            inputNames: s.inputNames,
            outputNames: s.outputNames,
            inputMetadata: s.inputMetadata,
            outputMetadata: s.outputMetadata,
            run: (f: Record<string, OrtTensorLike>, ...rest: unknown[]) => {
              if (s.inputNames.includes('time_ids')) feeds.push(f);
              return (s.run as (...a: unknown[]) => ReturnType<OrtSessionLike['run']>)(f, ...rest);
            },
            release: () => s.release?.(),
          } as OrtSessionLike;
        },
      },
    },
  };
}

/** Expected hidden states of one encoder for token ids, in float64: h_k[t, j]. */
function hidden(ids: readonly number[], D: number, s: number, k: 1 | 2): number[][] {
  const w = wOf(D, s);
  const b = bOf(D);
  return ids.map((id) => w.map((wj, j) => 2 * id * wj + b[j]! + (k === 2 ? 0.1 : 0)));
}
const mean = (v: number[]) => v.reduce((p, q) => p + q, 0) / v.length;
/** |got − want| relative to max(1, |want|): float32 holds ~7 digits. */
const relErr = (got: number, want: number) => Math.abs(got - want) / Math.max(1, Math.abs(want));

describe('SDXL conditioning (graphs from bytes)', () => {
  const files = filesOf(DIR);
  files.set('unet/model.onnx', unetOnnx());
  files.set('text_encoder/model.onnx', encoderOnnx(D1, 1e-5, false));
  files.set('text_encoder_2/model.onnx', encoderOnnx(D2, -2e-5, true));
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'])
    files.set(`tokenizer_2/${f}`, files.get(`tokenizer/${f}`)!);

  it('feeds [enc1; enc2] penultimate states, pooled text_embeds, time_ids; zeros for the empty negative prompt; guided output', async () => {
    const rec = recordingOrt();
    const pipe = await StableDiffusionPipeline.load({ ort: rec.ort, reader: memoryPipelineReader(files, 'sdxl') });
    assert.equal(pipe.sdxl, true);
    const prep = await pipe.sampleRun({ prompt: 'a red fox', height: 64, width: 64, guidanceScale: 5, sdxl: { originalSize: [1024, 768] } });
    const ids = pipe.tokenizer.encode('a red fox');
    const T = ids.length;
    const h1 = hidden(ids, D1, 1e-5, 1);
    const h2 = hidden(ids, D2, -2e-5, 1);
    const pooled = hidden(ids, D2, -2e-5, 2)[0]!.map((_, j) => mean(hidden(ids, D2, -2e-5, 2).map((r) => r[j]!)));
    const cond = prep.run.cond!;
    assert.deepEqual(cond.encoderHiddenShape, [T, D1 + D2]);
    let maxErr = 0;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < D1 + D2; j++) {
        const want = j < D1 ? h1[t]![j]! : h2[t]![j - D1]!;
        maxErr = Math.max(maxErr, relErr(cond.encoderHiddenStates![t * (D1 + D2) + j]!, want));
      }
    }
    assert.ok(maxErr < 1e-6, `prompt embeds err ${maxErr}`);
    const te = cond.extra!['text_embeds']!;
    assert.deepEqual(te.shape, [D2]);
    for (let j = 0; j < D2; j++) assert.ok(relErr(te.data[j]!, pooled[j]!) < 1e-6);
    assert.deepEqual([...cond.extra!['time_ids']!.data], [1024, 768, 0, 0, 64, 64]);
    const uncond = prep.run.guidance!.uncond!;
    assert.ok(uncond.encoderHiddenStates!.every((v) => v === 0));
    assert.ok(uncond.extra!['text_embeds']!.data.every((v) => v === 0));
    assert.deepEqual([...uncond.extra!['time_ids']!.data], [1024, 768, 0, 0, 64, 64]);

    // one guided call: ε_u = x + B·1024 (zeros), ε_c = x + A·mean(pooled) + B·1024 + M·mean(embeds)
    const unet = await pipe.unet(8, 8);
    const guided = classifierFreeGuidance(unet, prep.run.guidance!);
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i));
    const y = await guided.predict(x, modelCallAt(pipe.setup.schedule, 500, 1), cond);
    const meanEmb = mean([...h1.flat(), ...h2.flat()]);
    const shiftU = B * 1024;
    const shiftC = A * mean(pooled) + B * 1024 + M * meanEmb;
    const want = shiftU + 5 * (shiftC - shiftU);
    let err = 0;
    for (let i = 0; i < 256; i++) err = Math.max(err, relErr(y[i]!, x[i]! + want));
    assert.ok(err < 1e-6, `guided err ${err} (shift ${want})`);
    // the fed tensors: one batch of 2 ([uncond; cond]), time_ids rows as given
    const f = rec.feeds[rec.feeds.length - 1]!;
    assert.deepEqual(f['time_ids']!.dims, [2, 6]);
    assert.deepEqual([...(f['time_ids']!.data as Float32Array)], [1024, 768, 0, 0, 64, 64, 1024, 768, 0, 0, 64, 64]);
    assert.deepEqual(f['text_embeds']!.dims, [2, D2]);
    assert.deepEqual(f['encoder_hidden_states']!.dims, [2, T, D1 + D2]);

    // a non-empty negative prompt is encoded (pooled = its text_embeds)
    const prep2 = await pipe.sampleRun({ prompt: 'a red fox', negativePrompt: 'blurry', height: 64, width: 64, guidanceScale: 5 });
    const nids = pipe.tokenizer.encode('blurry'); // tokenizer_2 is a copy of tokenizer here;
    const np = hidden(nids, D2, -2e-5, 2);
    const npooled = np[0]!.map((_, j) => mean(np.map((r) => r[j]!)));
    const nte = prep2.run.guidance!.uncond!.extra!['text_embeds']!.data;
    for (let j = 0; j < D2; j++) assert.ok(relErr(nte[j]!, npooled[j]!) < 1e-6);
    assert.deepEqual([...prep2.run.cond!.extra!['time_ids']!.data], [64, 64, 0, 0, 64, 64]);

    // end to end: 2 model calls, finite latents
    const r = await pipe.textToImage({ prompt: 'a red fox', height: 64, width: 64, nfe: 2, solver: 'ddim', seed: 1 });
    assert.equal(r.run.calls, 2);
    assert.ok(r.latents.every(Number.isFinite));
    await pipe.release();
  });

  it('a wrong extra input is refused by the feed builder with its name', async () => {
    const pipe = await StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader: memoryPipelineReader(files, 'sdxl') });
    const prep = await pipe.sampleRun({ prompt: 'x', height: 64, width: 64, guidanceScale: 1 });
    const unet = await pipe.unet(8, 8);
    const x = new Float32Array(256);
    const call = modelCallAt(pipe.setup.schedule, 500, 1);
    const cond = prep.run.cond!;
    await assert.rejects(
      unet.predict(x, call, { ...cond, extra: { ...cond.extra, time_ids: { data: new Float32Array(5), shape: [5] } } }),
      /time_ids is declared \[batch,6\], got per-sample shape \[5\]/,
    );
    await assert.rejects(unet.predict(x, call, { ...cond, extra: { text_embeds: cond.extra!['text_embeds']! } }), /needs input time_ids \[batch,6\]/);
    await pipe.release();
  });
});

describe('guidance batches extra inputs [uncond; cond]', () => {
  const te = (v: number[]) => ({ data: Float32Array.from(v), shape: [2] });
  it('concatenates by name, uncond rows first; a 1-row uncond is repeated per sample', () => {
    const cond = { extra: { te: te([1, 2, 3, 4]) } };
    const u = unconditionalFor(cond, 2, { scale: 3, uncond: { extra: { te: te([-1, -2]) } } });
    assert.deepEqual([...u.extra!['te']!.data], [-1, -2, -1, -2]);
    const both = concatConditioning(u, cond, 2);
    assert.deepEqual([...both.extra!['te']!.data], [-1, -2, -1, -2, 1, 2, 3, 4]);
    assert.deepEqual(both.extra!['te']!.shape, [2]);
  });
  it('refuses halves with different inputs or sizes, and guidance without uncond extra rows', () => {
    assert.throws(() => concatConditioning({}, { extra: { te: te([1, 2]) } }, 1), /uncond has \[\], cond has \[te\]/);
    assert.throws(
      () => concatConditioning({ extra: { te: te([1, 2]) } }, { extra: { te: te([1, 2, 3, 4]) } }, 1),
      /extra input te: expected 1 rows of \[2\]/,
    );
    assert.throws(() => unconditionalFor({ extra: { te: te([1, 2]) } }, 1, { scale: 3 }), /extra inputs \(te\) needs their unconditional rows/);
  });
});
