// onnxruntime-node CPU ms per call of each part of the latent pipelines, batch 1 / 16 / 64:
//   node models/bench_latent.mjs [threads=1] [folder ...]     (default models/latent-unet models/latent-dit)
// Inputs: sample / hidden_states [B,4,7,7], text states [B,16,64], pooled [B,64], timestep 0-d (U-Net)
// or [B] (transformer), input_ids [B,16], VAE decoder [B,4,7,7], VAE encoder [B,1,28,28]. Prints JSON lines.
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const threads = Number(process.argv[2] ?? 1);
const folders = process.argv.length > 3 ? process.argv.slice(3) : ['models/latent-unet', 'models/latent-dit'];
const f32 = (shape) => new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), shape);
const feedsFor = {
  unet: (B) => ({ sample: f32([B, 4, 7, 7]), timestep: new ort.Tensor('float32', Float32Array.of(500.5), []), encoder_hidden_states: f32([B, 16, 64]) }),
  transformer: (B) => ({
    hidden_states: f32([B, 4, 7, 7]),
    encoder_hidden_states: f32([B, 16, 64]),
    pooled_projections: f32([B, 64]),
    timestep: new ort.Tensor('float32', new Float32Array(B).fill(500.5), [B]),
  }),
  text_encoder: (B) => ({ input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: B * 16 }, (_, i) => (i % 16 === 0 ? 49406n : 49407n)), [B, 16]) }),
  vae_decoder: (B) => ({ latent_sample: f32([B, 4, 7, 7]) }),
  vae_encoder: (B) => ({ sample: f32([B, 1, 28, 28]) }),
};
for (const dir of folders) {
  for (const part of Object.keys(feedsFor)) {
    const path = `${dir}/${part}/model.onnx`;
    if (!existsSync(path)) continue;
    const s = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    for (const B of [1, 16, 64]) {
      const feeds = feedsFor[part](B);
      await s.run(feeds);
      const n = Math.max(5, 256 / B);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await s.run(feeds);
      const ms = (performance.now() - t0) / n;
      console.log(JSON.stringify({ folder: dir, part, batch: B, threads, msPerCall: +ms.toFixed(2), msPerImage: +(ms / B).toFixed(3) }));
    }
    await s.release();
  }
}
