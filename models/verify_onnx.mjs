// Helper for export_onnx.py: runs an ONNX model with onnxruntime-node on raw .bin inputs
// described by a spec JSON and writes each output as raw float32 .bin.
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ctor = { float32: Float32Array, int64: BigInt64Array, float16: Uint16Array };
const feeds = {};
for (const [name, d] of Object.entries(spec.inputs)) {
  const buf = readFileSync(d.file);
  const Arr = ctor[d.dtype];
  const arr = new Arr(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  feeds[name] = new ort.Tensor(d.dtype, arr, d.shape);
}
const sess = await ort.InferenceSession.create(spec.model);
const out = await sess.run(feeds);
for (const name of spec.outputs) {
  writeFileSync(`${spec.outdir}/${name}.bin`, Buffer.from(out[name].data.buffer, out[name].data.byteOffset, out[name].data.byteLength));
}
