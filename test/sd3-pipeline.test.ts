/**
 * SD3-style flow-matching folders on test/fixtures/tiny-sd3-flow (a random-weight diffusers
 * SD3Transformer2DModel with Optimum's signature, a 16-channel VAE with shift_factor, SD3-medium's
 * FlowMatchEulerDiscreteScheduler config, no text encoders) against its reference.json, a PyTorch run
 * recorded call by call: the 4 single transformer calls, and the 4-step Euler flow run with CFG 7.0
 * from initial_latents (every call's input, timestep and output, the guided velocity, the latents per
 * step, the VAE input and the decoded image), each within 1e-4. Also: the roles, the refusals (a prompt
 * on a folder without text encoders, a transformer without SD3's signature, a text encoder that does not
 * fit), a CLIP-style text encoder's last_hidden_state / pooler_output as the transformer's context and
 * pooled input, and feature reuse with the `dit` reuse points (keyframes exact, reuse calls close).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import type { Conditioning, DiffusionModel, ModelCall } from '../src/core/model.js';
import type { NumArray } from '../src/core/tensor.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { buildFeatureReuseGraphs } from '../src/model/onnx-graph/feature-reuse-graphs.js';
import { StableDiffusionPipeline, type PromptEmbedding } from '../src/model/pipeline/sd-pipeline.js';
import { memoryPipelineReader } from '../src/model/pipeline/pipeline-files.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;
const DIR = 'test/fixtures/tiny-sd3-flow';
const SD = 'test/fixtures/tiny-sd-pipeline';
interface T {
  shape: number[];
  values: number[];
}
interface FlowCall {
  index: number;
  timestep: number;
  hidden_states_in: T;
  timestep_in: T;
  out_hidden_states: T;
  guided_model_output: T;
  latents_after_step: T;
}
const ref = JSON.parse(readFileSync(`${DIR}/reference.json`, 'utf8')) as {
  initial_latents: T;
  conditioning: { encoder_hidden_states: T; pooled_projections: T };
  single_calls: { x: T; timestep: number[]; out_hidden_states: T }[];
  runs: {
    flow_euler: {
      guidance_scale: number;
      num_inference_steps: number;
      timesteps: number[];
      sigmas: number[];
      transformer_calls: FlowCall[];
      final_latents: T;
      vae_decoder_input: T;
      decoded_image: T;
    };
  };
};
const f32 = (t: T | ArrayLike<number>) => Float32Array.from('values' in t ? t.values : t);
const TOL = 1e-4;

/** Row `b` of the reference conditioning (0 = negative, 1 = prompt) as an embedding. */
function refEmbedding(b: number): PromptEmbedding {
  const e = f32(ref.conditioning.encoder_hidden_states);
  const p = f32(ref.conditioning.pooled_projections);
  return { hiddenStates: e.slice(b * 640, (b + 1) * 640), shape: [20, 32], pooled: p.slice(b * 32, (b + 1) * 32) };
}
/** The reference conditioning of a batch of 2 ([negative; prompt]), as the transformer takes it. */
const refCond = (): Conditioning => ({
  encoderHiddenStates: f32(ref.conditioning.encoder_hidden_states),
  encoderHiddenShape: [20, 32],
  extra: { pooled_projections: { data: f32(ref.conditioning.pooled_projections), shape: [32] } },
});

interface Recorded {
  x: Float32Array;
  call: ModelCall;
  cond: Conditioning;
  out: Float32Array;
}
/** A model wrapper recording every call's inputs and output. */
function recorder(inner: DiffusionModel, log: Recorded[]): DiffusionModel {
  return {
    predictionType: inner.predictionType,
    sampleShape: inner.sampleShape,
    async predict(x: NumArray, call: ModelCall, cond?: Conditioning) {
      const out = await inner.predict(x, call, cond);
      log.push({ x: Float32Array.from(x), call: { ...call }, cond: cond!, out: Float32Array.from(out) });
      return out;
    },
  };
}

/** Every file of a folder, in memory, keyed by relative path (reference.json left out). */
function folderFiles(dir: string, prefix = ''): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else if (name !== 'reference.json' && name !== 'README.md') m.set(prefix + r, new Uint8Array(readFileSync(join(dir, r))));
    }
  };
  walk('');
  return m;
}
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** The fixture with the tiny SD pipeline's CLIP text encoder and tokenizer (hidden and pooled width 32, as the transformer takes). */
function withTextEncoder(): Map<string, Uint8Array> {
  const m = folderFiles(DIR);
  for (const [k, v] of folderFiles(SD)) if (k.startsWith('text_encoder/') || k.startsWith('tokenizer/')) m.set(k, v);
  const index = JSON.parse(new TextDecoder().decode(m.get('model_index.json')!)) as Record<string, unknown>;
  m.set('model_index.json', json({ ...index, text_encoder: ['transformers', 'CLIPTextModel'], tokenizer: ['transformers', 'CLIPTokenizer'] }));
  return m;
}

describe('SD3-style flow transformer folder vs reference.json (diffusers, PyTorch)', () => {
  let pipe: StableDiffusionPipeline;
  before(async () => {
    pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(DIR) });
  });
  after(async () => pipe.release());

  it('loads transformer/ with SD3 roles, the 16-channel VAE with its shift, the flow schedule of the folder', () => {
    assert.equal(pipe.denoiser, 'transformer');
    assert.equal(pipe.configs.hasTextEncoder, false);
    assert.deepEqual([pipe.latentChannels, pipe.vaeFactor, pipe.imageChannels, pipe.hiddenSize], [16, 8, 3, 32]);
    assert.deepEqual([pipe.scalingFactor, pipe.shiftFactor], [1.5305, 0.0609]);
    assert.equal(pipe.setup.predictionType, 'flow');
    const card = pipe.unetCard(8, 8);
    assert.deepEqual(Object.fromEntries(Object.entries(card.inputs!).map(([k, v]) => [k, v.role])), {
      hidden_states: 'sample',
      encoder_hidden_states: 'encoder_hidden_states',
      pooled_projections: 'extra',
      timestep: 'timestep',
    });
    assert.equal(card.output, 'out_hidden_states');
  });

  it('the 4 single calls (t = 999, 750, 500, 1) through the ONNX model path', async () => {
    const net = await pipe.unet(8, 8);
    assert.equal(net.predictionType, 'flow');
    for (const c of ref.single_calls) {
      const t = c.timestep[0]!;
      const out = await net.predict(f32(c.x), { t: t / 1000, modelTime: t, alpha: 1 - t / 1000, sigma: t / 1000, index: 0, batch: 2 }, refCond());
      const d = maxAbsDiff(Float32Array.from(out), f32(c.out_hidden_states));
      assert.ok(d <= TOL, `t = ${t}: out_hidden_states max |Δ| ${d}`);
    }
  });

  it('Euler flow, 4 steps, CFG 7.0 through sample(): every call, the guided velocity, the latents per step, the VAE input, the image', async () => {
    const r = ref.runs.flow_euler;
    const log: Recorded[] = [];
    const steps: Float32Array[] = [];
    const result = await pipe.textToImage({
      embeddings: { prompt: refEmbedding(1), negative: refEmbedding(0) },
      guidanceScale: r.guidance_scale,
      steps: r.num_inference_steps,
      initialLatents: f32(ref.initial_latents),
      wrapModel: (u) => recorder(u, log),
      onStep: (info) => {
        steps.push(Float32Array.from(info.x));
      },
    });
    assert.equal(result.run.calls, 4);
    assert.equal(log.length, r.transformer_calls.length);
    const worst: Record<string, number> = {};
    const check = (what: string, got: ArrayLike<number>, want: Float32Array) => {
      assert.equal(got.length, want.length, what);
      const d = maxAbsDiff(Float32Array.from(got), want);
      worst[what] = Math.max(worst[what] ?? 0, d);
      assert.ok(d <= TOL, `${what}: max |Δ| ${d}`);
    };
    const cond = refCond();
    r.transformer_calls.forEach((c, i) => {
      const got = log[i]!;
      check('timestep_in', [got.call.modelTime, got.call.modelTime], f32(c.timestep_in));
      check('hidden_states_in', got.x, f32(c.hidden_states_in));
      check('encoder_hidden_states', got.cond.encoderHiddenStates!, cond.encoderHiddenStates!);
      check('pooled_projections', got.cond.extra!['pooled_projections']!.data, cond.extra!['pooled_projections']!.data);
      check('out_hidden_states', got.out, f32(c.out_hidden_states));
      const o = got.out;
      const half = o.length / 2;
      const w = r.guidance_scale;
      check(
        'guided_model_output',
        Array.from({ length: half }, (_, k) => o[k]! + w * (o[half + k]! - o[k]!)),
        f32(c.guided_model_output),
      );
    });
    assert.equal(steps.length, 4);
    steps.forEach((x, i) => check(`latents after step ${i}`, x, f32(r.transformer_calls[i]!.latents_after_step)));
    check('final_latents', result.latents, f32(r.final_latents));
    check(
      'vae_decoder_input',
      Array.from(result.latents, (v) => v / pipe.scalingFactor + pipe.shiftFactor),
      f32(r.vae_decoder_input),
    );
    check('decoded_image', result.decoded, f32(r.decoded_image));
    assert.deepEqual([result.images[0]!.width, result.images[0]!.height], [64, 64]);
    console.log('flow_euler: max |Δ| per tensor kind', worst);
  });

  it('image to image: z0 = (mean − shift_factor)·scaling_factor, x_σ0 = (1 − σ0)·z0 + σ0·ε on the tail of the FlowMatch grid', async () => {
    const img = Float32Array.from(ref.runs.flow_euler.decoded_image.values, (v) => Math.min(1, Math.max(-1, v)));
    const params = await pipe.encodeImage(img, 1, 64, 64);
    assert.equal(params.channels, 32);
    const noise = Float32Array.from({ length: 1024 }, (_, i) => Math.sin(0.37 * i));
    const log: Recorded[] = [];
    await pipe.imageToImage({
      embeddings: { prompt: refEmbedding(1), negative: refEmbedding(0) },
      guidanceScale: 7,
      image: { data: img, batch: 1, height: 64, width: 64 },
      strength: 0.5,
      latentMode: 'mean',
      noise,
      steps: 4,
      wrapModel: (u) => recorder(u, log),
    });
    // the last 2 of the 4 σ of the full run
    const sig = ref.runs.flow_euler.sigmas;
    assert.deepEqual(
      log.map((c) => c.call.t),
      [sig[2], sig[3]].map((v) => Math.fround(v!)),
    );
    const s0 = log[0]!.call.t;
    const x0 = Float32Array.from({ length: 1024 }, (_, i) => (1 - s0) * (params.data[i]! - 0.0609) * 1.5305 + s0 * noise[i]!);
    const d = maxAbsDiff(log[0]!.x.subarray(0, 1024), x0);
    assert.ok(d <= 1e-5, `x_σ0 max |Δ| ${d}`);
  });

  it('a prompt on a folder without text encoders is refused naming the missing parts, before any model call', async () => {
    const log: Recorded[] = [];
    await assert.rejects(
      pipe.textToImage({ prompt: 'a photo of a cat', wrapModel: (u) => recorder(u, log) }),
      /cannot encode a prompt: it has no text_encoder\/model\.onnx, tokenizer\/ \(model_index\.json lists text_encoder as \[null, null\]\)\. Give the conditioning instead/,
    );
    assert.equal(log.length, 0);
    assert.throws(() => pipe.tokenizer, /cannot encode a prompt/);
    await assert.rejects(pipe.textToImage({ embeddings: { prompt: refEmbedding(1) }, guidanceScale: 7 }), /give embeddings\.negative/);
    await assert.rejects(
      pipe.textToImage({ embeddings: { prompt: { hiddenStates: new Float32Array(20 * 16), shape: [20, 16] } }, guidanceScale: 1 }),
      /hidden states of shape \[20,16\] .* takes \[tokens, 32\]/,
    );
    const noPooled = { ...refEmbedding(1) };
    delete (noPooled as { pooled?: Float32Array }).pooled;
    await assert.rejects(pipe.textToImage({ embeddings: { prompt: noPooled }, guidanceScale: 1 }), /also takes the pooled embedding/);
  });
});

describe('SD3-style folders that do not fit are refused before any model call', () => {
  it('a transformer/ without SD3 signature (here: an SD UNet)', async () => {
    const m = folderFiles(DIR);
    m.set('transformer/model.onnx', new Uint8Array(readFileSync(`${SD}/unet/model.onnx`)));
    await assert.rejects(
      StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(m, 'sd3-with-unet') }),
      /transformer\/model\.onnx has inputs sample, timestep, encoder_hidden_states; .* lacks hidden_states, pooled_projections/,
    );
  });
  it('a folder without unet/ and transformer/', async () => {
    const m = folderFiles(DIR);
    m.delete('transformer/model.onnx');
    await assert.rejects(
      StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(m, 'x') }),
      /missing unet\/model\.onnx \(or transformer\/model\.onnx\)/,
    );
  });
  it("a text encoder whose hidden size is not the transformer's joint_attention_dim", async () => {
    const m = withTextEncoder();
    const cfg = JSON.parse(new TextDecoder().decode(m.get('transformer/config.json')!)) as Record<string, unknown>;
    m.set('transformer/config.json', json({ ...cfg, joint_attention_dim: 48 }));
    await assert.rejects(
      StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(m, 'x') }),
      /the text encoder's hidden size is 32 \(text_encoder\/model\.onnx last_hidden_state\) but the transformer's context width is 48 \(transformer\/config\.json joint_attention_dim\)/,
    );
    const m2 = withTextEncoder();
    m2.set('transformer/config.json', json({ ...cfg, pooled_projection_dim: 64 }));
    await assert.rejects(
      StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(m2, 'x') }),
      /the text encoder's pooled width is 32 \(text_encoder\/model\.onnx pooler_output\) but the transformer's pooled-projection width is 64/,
    );
  });
});

describe('FlowMatch scheduler configs', () => {
  it("use_dynamic_shifting: the grid's μ comes from the image's patch tokens ((h/2)·(w/2)), per image size", async () => {
    const m = folderFiles(DIR);
    const sched = {
      _class_name: 'FlowMatchEulerDiscreteScheduler',
      num_train_timesteps: 1000,
      shift: 3.0,
      use_dynamic_shifting: true,
      base_image_seq_len: 16,
      max_image_seq_len: 64,
    };
    m.set('scheduler/scheduler_config.json', json(sched));
    const pipe = await StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(m, 'dynamic') });
    try {
      for (const [px, tokens] of [
        [64, 16],
        [128, 64],
      ] as const) {
        const prep = await pipe.sampleRun({
          embeddings: { prompt: refEmbedding(1), negative: refEmbedding(0) },
          guidanceScale: 7,
          steps: 4,
          height: px,
          width: px,
        });
        const want = pipe.setup.scheduler.sampleOptions(4, { imageSeqLen: tokens }).timesteps!.timesteps!;
        assert.deepEqual([...prep.run.timesteps!.timesteps!, -1], want, `${px} px`);
      }
      // base_shift 0.5 at 16 tokens, max_shift 1.15 at 64: the larger image is shifted further toward noise
      const small = (await pipe.sampleRun({ embeddings: { prompt: refEmbedding(1) }, guidanceScale: 1, steps: 4 })).run.timesteps!.timesteps!;
      const large = (await pipe.sampleRun({ embeddings: { prompt: refEmbedding(1) }, guidanceScale: 1, steps: 4, height: 128, width: 128 })).run
        .timesteps!.timesteps!;
      assert.ok(large[2]! > small[2]!, `σ_2: ${large[2]} vs ${small[2]}`);
    } finally {
      await pipe.release();
    }
  });
});

describe('SD3-style folder with a CLIP-style text encoder (the layout of our own latent DiT)', () => {
  it('the prompt conditions the transformer with last_hidden_state and pooler_output; the negative prompt "" in the same batch', async () => {
    const pipe = await StableDiffusionPipeline.load({ ort, reader: memoryPipelineReader(withTextEncoder(), 'sd3+clip') });
    try {
      assert.equal(pipe.configs.hasTextEncoder, true);
      const te = await ort.InferenceSession.create(readFileSync(`${SD}/text_encoder/model.onnx`));
      const direct = async (text: string) => {
        const ids = pipe.tokenizer.encode(text);
        const out = await te.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
        return {
          hidden: Float32Array.from(out['last_hidden_state']!.data as Float32Array),
          pooled: Float32Array.from(out['pooler_output']!.data as Float32Array),
        };
      };
      const [p, n] = [await direct('a photo of a sneaker'), await direct('')];
      const e = await pipe.encodePrompt('a photo of a sneaker');
      assert.deepEqual(e.shape, [77, 32]);
      assert.equal(maxAbsDiff(e.hiddenStates, p.hidden), 0);
      assert.equal(maxAbsDiff(e.pooled!, p.pooled), 0);
      const log: Recorded[] = [];
      const res = await pipe.textToImage({ prompt: 'a photo of a sneaker', guidanceScale: 4, steps: 2, seed: 3, wrapModel: (u) => recorder(u, log) });
      assert.equal(log.length, 2);
      const c = log[0]!.cond;
      assert.deepEqual(c.encoderHiddenShape, [77, 32]);
      assert.equal(maxAbsDiff(c.encoderHiddenStates!, Float32Array.from([...n.hidden, ...p.hidden])), 0);
      assert.equal(maxAbsDiff(c.extra!['pooled_projections']!.data, Float32Array.from([...n.pooled, ...p.pooled])), 0);
      assert.ok(res.decoded.every(Number.isFinite));
    } finally {
      await pipe.release();
    }
  });
});

describe('feature reuse on the SD3 transformer: reuse points dit', () => {
  it('finds the joint-attention and MLP residual branches of both streams, before their gates', async () => {
    const bytes = new Uint8Array(readFileSync(`${DIR}/transformer/model.onnx`));
    const g = await buildFeatureReuseGraphs(bytes, 'dit', { ort });
    const b = (i: number) => `/mods.0/transformer_blocks.${i}`;
    assert.deepEqual(
      g.points.map((p) => [p.kind, p.name, p.shape]),
      [
        ['gated-attention', `${b(0)}/attn/to_out.0/Add_output_0`, [1, 16, 16]],
        ['gated-mlp', `${b(0)}/ff/net.2/Add_output_0`, [1, 16, 16]],
        ['gated-attention', `${b(0)}/attn/to_add_out/Add_output_0`, [1, 8, 16]],
        ['gated-mlp', `${b(0)}/ff_context/net.2/Add_output_0`, [1, 8, 16]],
        // the last block is context_pre_only: no context-stream output, so no context points
        ['gated-attention', `${b(1)}/attn/to_out.0/Add_output_0`, [1, 16, 16]],
        ['gated-mlp', `${b(1)}/ff/net.2/Add_output_0`, [1, 16, 16]],
      ],
    );
    assert.deepEqual(g.nodeCount, { full: 626, reuse: 206 });
    assert.ok(Math.abs(g.flops.ratio - 0.194) < 0.005, `reuse MACs ratio ${g.flops.ratio}`);
    const frdiff = await buildFeatureReuseGraphs(bytes, 'frdiff', { ort });
    assert.deepEqual(
      frdiff.points.map((p) => p.kind),
      ['gated-attention', 'gated-attention', 'gated-attention'],
    );
  });

  it('interval 2 over the 4-step Euler run: keyframes equal the full model, reuse calls run the reduced graph and differ a little', async () => {
    const pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(DIR) });
    try {
      const log: Recorded[] = [];
      const res = await pipe.textToImage({
        embeddings: { prompt: refEmbedding(1), negative: refEmbedding(0) },
        guidanceScale: 7,
        steps: 4,
        initialLatents: f32(ref.initial_latents),
        featureReuse: { keyframes: { interval: 2 }, mixing: null, points: 'dit' },
        wrapModel: (u) => recorder(u, log),
      });
      assert.equal(log.length, 4);
      const stats = res.featureReuse!;
      assert.deepEqual([stats.keyframe.calls, stats.reuse.calls, stats.keyframe.images, stats.reuse.images], [2, 2, 4, 4]);
      assert.deepEqual(res.featureReuseSetup!.policy.keyframes, [0, 2]);
      assert.deepEqual(
        [res.featureReuseSetup!.model.stats.keyframe, res.featureReuseSetup!.model.stats.reuse, res.featureReuseSetup!.model.stats.skip],
        [2, 2, 0],
      );
      const full = await pipe.unet(8, 8);
      const diffs: number[] = [];
      for (const c of log) {
        const want = Float32Array.from(await full.predict(c.x, c.call, c.cond));
        diffs.push(maxAbsDiff(c.out, want) / Math.max(...want.map(Math.abs)));
      }
      console.log('dit FR: relative max |Δ| to the full model per call', diffs);
      assert.ok(diffs[0]! <= 1e-5 && diffs[2]! <= 1e-5, `keyframes: ${diffs[0]}, ${diffs[2]}`);
      for (const k of [1, 3]) assert.ok(diffs[k]! > 1e-3 && diffs[k]! < 0.1, `reuse call ${k}: relative max |Δ| ${diffs[k]}`);
      assert.ok(res.decoded.every(Number.isFinite));
    } finally {
      await pipe.release();
    }
  });
});
