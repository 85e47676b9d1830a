/**
 * The Stable-Diffusion pipeline on test/fixtures/tiny-sd-pipeline (Optimum layout, random weights)
 * against the fixture's reference.json, a PyTorch run of diffusers' StableDiffusionPipeline recorded
 * call by call: token ids, text-encoder outputs, every UNet input (sample, timestep, embeddings) and
 * output, the guided noise, the latents after each step, the VAE input and the decoded image — DDIM
 * and PNDM, 4 steps, CFG 7.5, "a photo of a cat" / "", from initial_latents — each within 1e-4.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import type { Conditioning, DiffusionModel, ModelCall } from '../src/core/model.js';
import type { NumArray } from '../src/core/tensor.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { memoryPipelineReader } from '../src/model/pipeline/pipeline-files.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;
const DIR = 'test/fixtures/tiny-sd-pipeline';
interface T {
  shape: number[];
  values: number[];
}
interface UnetCall {
  timestep: number;
  sample_in: T;
  out_sample: T;
  guided_noise_pred: T;
  latents_after_step: T;
}
interface Run {
  timesteps: number[];
  unet_calls: UnetCall[];
  final_latents: T;
  vae_decoder_input: T;
  decoded_image: T;
}
const ref = JSON.parse(readFileSync(`${DIR}/reference.json`, 'utf8')) as {
  initial_latents: T;
  text_encoder_calls: { text: string; input_ids: number[]; last_hidden_state: T }[];
  runs: { ddim: Run; pndm: Run };
};
const f32 = (t: T) => Float32Array.from(t.values);
const TOL = 1e-4;

interface Recorded {
  x: Float32Array;
  modelTime: number;
  hidden: Float32Array;
  out: Float32Array;
}
/** A UNet wrapper recording every call's inputs and output. */
function recorder(inner: DiffusionModel, log: Recorded[]): DiffusionModel {
  return {
    predictionType: inner.predictionType,
    sampleShape: inner.sampleShape,
    async predict(x: NumArray, call: ModelCall, cond?: Conditioning) {
      const out = await inner.predict(x, call, cond);
      log.push({
        x: Float32Array.from(x),
        modelTime: call.modelTime,
        hidden: Float32Array.from(cond!.encoderHiddenStates!),
        out: Float32Array.from(out),
      });
      return out;
    },
  };
}

describe('Stable-Diffusion pipeline vs reference.json (diffusers, PyTorch)', () => {
  let pipe: StableDiffusionPipeline;
  before(async () => {
    pipe = await StableDiffusionPipeline.load({ ort, reader: nodePipelineReader(DIR) });
  });

  it('tokenizes and encodes the prompt and the empty negative prompt', async () => {
    for (const call of ref.text_encoder_calls) {
      const e = await pipe.encodePrompt(call.text);
      assert.deepEqual(e.inputIds, call.input_ids);
      assert.deepEqual(e.shape, [77, 32]);
      const d = maxAbsDiff(e.hiddenStates, f32(call.last_hidden_state));
      assert.ok(d <= TOL, `${JSON.stringify(call.text)}: last_hidden_state max |Δ| ${d}`);
    }
  });

  for (const [name, solver] of [
    ['ddim', 'ddim'],
    ['pndm', undefined],
  ] as const) {
    it(`${name}, 4 steps, CFG 7.5: every UNet input and output, the guided noise, the latents per step and the image`, async () => {
      const r = ref.runs[name];
      const log: Recorded[] = [];
      const steps: Float32Array[] = [];
      const result = await pipe.textToImage({
        prompt: 'a photo of a cat',
        guidanceScale: 7.5,
        steps: 4,
        ...(solver ? { solver } : {}),
        initialLatents: f32(ref.initial_latents),
        wrapModel: (u) => recorder(u, log),
        onStep: (info) => {
          steps.push(Float32Array.from(info.x));
        },
      });
      assert.equal(result.run.solver, name === 'ddim' ? 'ddim' : 'plms');
      assert.equal(log.length, r.unet_calls.length);
      const [uncond, cond] = [ref.text_encoder_calls.find((c) => c.text === '')!, ref.text_encoder_calls.find((c) => c.text !== '')!];
      const embeds = Float32Array.from([...uncond.last_hidden_state.values, ...cond.last_hidden_state.values]);
      const worst: Record<string, number> = {};
      const check = (what: string, got: ArrayLike<number>, want: Float32Array) => {
        assert.equal(got.length, want.length, what);
        const d = maxAbsDiff(Float32Array.from(got), want);
        worst[what] = Math.max(worst[what] ?? 0, d);
        assert.ok(d <= TOL, `${name} ${what}: max |Δ| ${d}`);
      };
      r.unet_calls.forEach((c, i) => {
        assert.equal(log[i]!.modelTime, c.timestep, `call ${i} timestep`);
        check('sample_in', log[i]!.x, f32(c.sample_in));
        check('encoder_hidden_states', log[i]!.hidden, embeds);
        check('out_sample', log[i]!.out, f32(c.out_sample));
        const o = log[i]!.out;
        const half = o.length / 2;
        check(
          'guided_noise_pred',
          Array.from({ length: half }, (_, k) => o[k]! + 7.5 * (o[half + k]! - o[k]!)),
          f32(c.guided_noise_pred),
        );
      });
      // the latents after each scheduler step (PNDM's warm-up call repeats a timestep and takes no step of its own)
      const after = r.unet_calls.map((c) => f32(c.latents_after_step));
      const distinct = name === 'pndm' ? after.filter((_, i) => i !== 0) : after;
      assert.equal(steps.length, distinct.length);
      steps.forEach((x, i) => check(`latents step ${i}`, x, distinct[i]!));
      check('final_latents', result.latents, f32(r.final_latents));
      check(
        'vae_decoder_input',
        Array.from(result.latents, (v) => v / pipe.scalingFactor),
        f32(r.vae_decoder_input),
      );
      check('decoded_image', result.decoded, f32(r.decoded_image));
      assert.equal(result.images[0]!.width, 64);
      console.log(`${name}: max |Δ| per tensor kind`, worst);
    });
  }

  it('image to image: the VAE encoder reproduces the reference round trip; strength cuts the grid; x_t0 = α·z0 + σ·ε', async () => {
    const r = ref.runs.ddim as Run & { vae_encoder_roundtrip: { latent_parameters: T } };
    const img = Float32Array.from(r.decoded_image.values, (v) => Math.min(1, Math.max(-1, v)));
    const params = await pipe.encodeImage(img, 1, 64, 64);
    assert.equal(params.channels, 8);
    const d = maxAbsDiff(params.data, f32(r.vae_encoder_roundtrip.latent_parameters));
    assert.ok(d <= TOL, `latent_parameters max |Δ| ${d}`);
    const noise = Float32Array.from({ length: 256 }, (_, i) => Math.cos(0.7 * i));
    for (const [strength, times] of [
      [0.5, [251, 1]],
      [0.75, [501, 251, 1]],
      [1, [751, 501, 251, 1]],
    ] as const) {
      const log: Recorded[] = [];
      const out = await pipe.imageToImage({
        prompt: 'a photo of a cat',
        image: { data: img, batch: 1, height: 64, width: 64 },
        strength,
        latentMode: 'mean',
        noise,
        solver: 'ddim',
        steps: 4,
        wrapModel: (u) => recorder(u, log),
      });
      assert.deepEqual(
        log.map((c) => c.modelTime),
        times,
      );
      const t0 = times[0]!;
      const a = pipe.setup.schedule.alpha(t0);
      const sg = pipe.setup.schedule.sigma(t0);
      const x0 = Array.from({ length: 256 }, (_, i) => a * 0.18215 * params.data[i]! + sg * noise[i]!);
      assert.ok(maxAbsDiff(log[0]!.x.subarray(0, 256), Float32Array.from(x0)) <= 1e-5, `strength ${strength}: x_t0`);
      assert.ok(out.decoded.every(Number.isFinite));
    }
    await assert.rejects(
      pipe.imageToImage({ prompt: 'x', image: { data: img, batch: 1, height: 64, width: 64 }, strength: 0.1, steps: 4 }),
      /strength 0.1 of 4 steps leaves no step to run/,
    );
    for (const batch of [0, 1.5]) {
      await assert.rejects(
        pipe.textToImage({ prompt: 'x', steps: 2, batch }),
        new RegExp(`batch must be an integer ≥ 1, got ${batch}: pass the number of samples`),
      );
    }
  });

  describe('folders that do not fit are refused before any model call', () => {
    /** Every file of the fixture, in memory (as a browser holds a picked folder). */
    const files = () => {
      const m = new Map<string, Uint8Array>();
      const walk = (rel: string) => {
        for (const name of readdirSync(join(DIR, rel))) {
          const r = rel ? `${rel}/${name}` : name;
          if (statSync(join(DIR, r)).isDirectory()) walk(r);
          else if (name !== 'reference.json') m.set(r, new Uint8Array(readFileSync(join(DIR, r))));
        }
      };
      walk('');
      return m;
    };
    const edit = (m: Map<string, Uint8Array>, path: string, change: (c: Record<string, unknown>) => void) => {
      const c = JSON.parse(new TextDecoder().decode(m.get(path)!)) as Record<string, unknown>;
      change(c);
      m.set(path, new TextEncoder().encode(JSON.stringify(c)));
    };
    /** onnxruntime with every session's `run` counted. */
    let runs = 0;
    const counting = {
      ...ort,
      InferenceSession: {
        create: async (...args: unknown[]) => {
          const s = await (ort.InferenceSession.create as (...a: unknown[]) => Promise<{ run: (...a: unknown[]) => unknown }>)(...args);
          const run = s.run.bind(s);
          s.run = (...a: unknown[]) => {
            runs++;
            return run(...a);
          };
          return s;
        },
      },
    } as unknown as OrtModuleLike;
    const load = (m: Map<string, Uint8Array>) => StableDiffusionPipeline.load({ ort: counting, reader: memoryPipelineReader(m, 'tiny-sd') });

    it('the whole folder in memory loads and encodes like the folder on disk', async () => {
      const p = await load(files());
      const e = await p.encodePrompt('a photo of a cat');
      assert.ok(maxAbsDiff(e.hiddenStates, f32(ref.text_encoder_calls[0]!.last_hidden_state)) <= TOL);
      assert.equal(runs, 1);
      runs = 0;
    });
    it('image to image without vae_encoder/ says so', async () => {
      const m = files();
      m.delete('vae_encoder/model.onnx');
      const p = await load(m);
      await assert.rejects(
        p.imageToImage({ prompt: 'x', image: { data: new Float32Array(3 * 64 * 64), batch: 1, height: 64, width: 64 } }),
        /has no vae_encoder\/model\.onnx: image-to-image needs it/,
      );
      assert.equal(runs, 0);
    });
    it('a missing part', async () => {
      const m = files();
      m.delete('vae_decoder/model.onnx');
      m.delete('tokenizer/merges.txt');
      await assert.rejects(
        load(m),
        /not a complete Stable-Diffusion ONNX pipeline folder: missing vae_decoder\/model\.onnx, tokenizer\/.*optimum-cli export onnx/,
      );
      assert.equal(runs, 0);
    });
    it("a tokenizer whose vocabulary does not match the text encoder's embedding table", async () => {
      const m = files();
      edit(m, 'text_encoder/config.json', (c) => (c['vocab_size'] = 49152));
      await assert.rejects(load(m), /tokenizer has 49408 tokens but the text encoder's embedding table has 49152/);
      assert.equal(runs, 0);
    });
    it("a UNet whose cross-attention width does not match the text encoder's hidden size", async () => {
      const m = files();
      edit(m, 'unet/config.json', (c) => (c['cross_attention_dim'] = 768));
      await assert.rejects(load(m), /hidden size is 32 \(text_encoder\/model\.onnx last_hidden_state\) but the UNet's cross-attention width is 768/);
      const m2 = files();
      m2.set('unet/model.onnx', new Uint8Array(readFileSync('test/fixtures/tiny-sd-unet.onnx')));
      edit(m2, 'text_encoder/config.json', (c) => (c['hidden_size'] = 48));
      await assert.rejects(load(m2), /hidden size is 48 \(text_encoder\/config\.json hidden_size\) but the UNet's cross-attention width is 32/);
      assert.equal(runs, 0);
    });
  });
});
