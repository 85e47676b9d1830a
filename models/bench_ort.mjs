// onnxruntime-node CPU timing of the exported models: node models/bench_ort.mjs [threads]
import * as ort from 'onnxruntime-node';
const threads = Number(process.argv[2] ?? 2);
for (const name of ['fashion-unet', 'fashion-dit', 'fashion-classifier']) {
  const s = await ort.InferenceSession.create(`models/${name}.onnx`, { intraOpNumThreads: threads });
  for (const B of [1, 16, 64]) {
    const x = new ort.Tensor('float32', Float32Array.from({ length: B * 784 }, (_, i) => Math.sin(i)), [B, 1, 28, 28]);
    const feeds = name === 'fashion-classifier' ? { images: x } : {
      sample: x, timestep: new ort.Tensor('float32', Float32Array.from({ length: B }, () => 500.5), [B]),
      class_labels: new ort.Tensor('int64', BigInt64Array.from({ length: B }, () => 3n), [B]),
    };
    await s.run(feeds);
    const n = Math.max(3, 64 / B);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await s.run(feeds);
    const dt = (performance.now() - t0) / n;
    console.log(`${name} batch ${B}: ${dt.toFixed(1)} ms/call, ${(dt / B).toFixed(2)} ms/image`);
  }
}
