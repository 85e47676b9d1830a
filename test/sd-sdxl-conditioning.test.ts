/**
 * SDXL's extra conditioning is checked before any model call: a folder with text_encoder_2/ but a
 * UNet without text_embeds/time_ids, a UNet taking them without text_encoder_2/, and an SDXL folder
 * whose text encoders give no hidden states are refused at load with the reason and the fix, and
 * no session ever runs. The SDXL UNet is a graph built from bytes with Optimum's SDXL input names.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/model/onnx-graph/onnx-proto.js';
import type { OrtModuleLike, OrtSessionLike } from '../src/model/ort-types.js';
import { memoryPipelineReader } from '../src/model/pipeline/pipeline-files.js';
import { StableDiffusionPipeline } from '../src/model/pipeline/sd-pipeline.js';
import { filesOf, io } from './helpers/pipeline-fixtures.js';
import { PipelineFolderError, checkSdxlConditioning } from '../src/model/pipeline/pipeline-config.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';

/** A UNet with Optimum's SDXL inputs: out_sample = sample + mean(text_embeds) + mean(time_ids) (so every input is used). */
function sdxlUnetOnnx(): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'sdxl-unet',
      node: [
        { opType: 'ReduceMean', input: ['text_embeds'], output: ['te'], name: 'te', attribute: [{ name: 'keepdims', type: 2, i: 1 }] },
        { opType: 'ReduceMean', input: ['time_ids'], output: ['ti'], name: 'ti', attribute: [{ name: 'keepdims', type: 2, i: 1 }] },
        { opType: 'ReduceMean', input: ['encoder_hidden_states'], output: ['eh'], name: 'eh', attribute: [{ name: 'keepdims', type: 2, i: 0 }] },
        { opType: 'Add', input: ['te', 'ti'], output: ['c'], name: 'c', attribute: [] },
        { opType: 'Add', input: ['c', 'eh'], output: ['c2'], name: 'c2', attribute: [] },
        { opType: 'Add', input: ['c2', 'timestep'], output: ['c3'], name: 'c3', attribute: [] },
        { opType: 'Add', input: ['sample', 'c3'], output: ['out_sample'], name: 'out', attribute: [] },
      ],
      initializer: [],
      input: [
        io('sample', 1, ['batch', 4, 8, 8]),
        io('timestep', 1, []),
        io('encoder_hidden_states', 1, ['batch', 'sequence', 32]),
        io('text_embeds', 1, ['batch', 1280]),
        io('time_ids', 1, ['batch', 6]),
      ],
      output: [io('out_sample', 1, ['batch', 4, 8, 8])],
    },
  });
}

/** onnxruntime with every session's `run` counted. */
function countingOrt(): { ort: OrtModuleLike; runs: () => number; sessions: () => number } {
  let runs = 0;
  let sessions = 0;
  const real = ort as unknown as OrtModuleLike;
  return {
    ort: {
      Tensor: real.Tensor,
      InferenceSession: {
        create: async (m, o) => {
          const s: OrtSessionLike = await real.InferenceSession.create(m, o);
          sessions++;
          return {
            inputNames: s.inputNames,
            outputNames: s.outputNames,
            inputMetadata: s.inputMetadata,
            outputMetadata: s.outputMetadata,
            run: (...a: Parameters<OrtSessionLike['run']>) => {
              runs++;
              return s.run(...a);
            },
            release: () => s.release?.(),
          } as OrtSessionLike;
        },
      },
    },
    runs: () => runs,
    sessions: () => sessions,
  };
}

describe('SDXL extra conditioning', () => {
  const base = filesOf(DIR);
  const load = async (files: Map<string, Uint8Array>) => {
    const c = countingOrt();
    const err = await StableDiffusionPipeline.load({ ort: c.ort, reader: memoryPipelineReader(files, 'sdxl-test') }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    return { err, runs: c.runs(), sessions: c.sessions() };
  };
  it('the SD 1.x fixture passes the check and loads (3 sessions opened, none run)', async () => {
    const r = await load(base);
    assert.equal(r.err, undefined);
    assert.equal(r.runs, 0);
    assert.equal(r.sessions, 3); // text encoder, UNet probe, VAE decoder
  });
  it('text_encoder_2/ with a UNet that takes no text_embeds: refused, no model call', async () => {
    const files = new Map(base);
    files.set('text_encoder_2/model.onnx', base.get('text_encoder/model.onnx')!);
    const r = await load(files);
    assert.ok(r.err instanceof PipelineFolderError);
    assert.match(
      r.err.message,
      /has text_encoder_2\/ .* unet\/model\.onnx takes no text_embeds or time_ids \(its inputs: sample, timestep, encoder_hidden_states\)/,
    );
    assert.equal(r.runs, 0);
  });
  it('a UNet with text_embeds and time_ids but no text_encoder_2/: refused, no model call', async () => {
    const files = new Map(base);
    files.set('unet/model.onnx', sdxlUnetOnnx());
    const r = await load(files);
    assert.ok(r.err instanceof PipelineFolderError);
    assert.match(r.err.message, /takes text_embeds and time_ids .* no text_encoder_2\/model\.onnx/);
    assert.equal(r.runs, 0);
  });
  it('an SDXL folder whose text encoders export no hidden states: refused, no model call', async () => {
    const files = new Map(base);
    files.set('unet/model.onnx', sdxlUnetOnnx());
    files.set('text_encoder_2/model.onnx', base.get('text_encoder/model.onnx')!);
    const r = await load(files);
    assert.match(r.err!.message, /text_encoder\/model\.onnx lacks outputs hidden_states\.0 … hidden_states\.L \(its outputs: last_hidden_state/);
    assert.equal(r.runs, 0);
    // model_index.json naming text_encoder_2 counts as having it (a folder with the directory missing)
    const idx = JSON.parse(new TextDecoder().decode(base.get('model_index.json')!)) as Record<string, unknown>;
    const only = new Map(base);
    only.set('model_index.json', new TextEncoder().encode(JSON.stringify({ ...idx, text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'] })));
    assert.match((await load(only)).err!.message, /has text_encoder_2\//);
    only.set('unet/model.onnx', sdxlUnetOnnx());
    assert.match((await load(only)).err!.message, /names text_encoder_2 but text_encoder_2\/model\.onnx is missing/);
  });
  it('checkSdxlConditioning alone: the SD 1.x inputs pass', () => {
    checkSdxlConditioning('x', { hasTextEncoder2: false, unetInputs: ['sample', 'timestep', 'encoder_hidden_states'] });
    assert.throws(() => checkSdxlConditioning('x', { hasTextEncoder2: false, unetInputs: ['sample', 'time_ids'] }), /takes time_ids/);
  });
});
