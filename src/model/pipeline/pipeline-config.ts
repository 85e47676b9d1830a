/**
 * The parts of a diffusers / Optimum ONNX Stable-Diffusion folder and the checks made on them before
 * any model runs: every required part present (`model_index.json`, `scheduler/scheduler_config.json`,
 * the denoiser — `unet/model.onnx`, or SD3's `transformer/model.onnx` —, `vae_decoder/model.onnx`;
 * `tokenizer/` and `text_encoder/model.onnx` unless `model_index.json` lists `text_encoder` as
 * `[null, null]`, diffusers' mark of a component left out; `vae_encoder/` optional), each component's
 * `config.json` parsed, the tokenizer's vocabulary equal to the text encoder's embedding table
 * (`vocab_size`), and the denoiser's context width (UNet `cross_attention_dim`, SD3 transformer
 * `joint_attention_dim`) equal to the text encoder's hidden size.
 * @packageDocumentation
 */
import { parseSchedulerConfigText } from '../card-init.js';
import type { PipelineFileReader } from './pipeline-files.js';

/**
 * The denoising network of a pipeline folder: a UNet (`unet/`, SD 1.x/2.x/SDXL) or an SD3-style
 * flow-matching transformer (`transformer/`, diffusers' `SD3Transformer2DModel`).
 */
export type DenoiserKind = 'unet' | 'transformer';

/** The configs of a pipeline folder. */
export interface PipelineConfigs {
  readonly modelIndex: Readonly<Record<string, unknown>>;
  readonly scheduler: Readonly<Record<string, unknown>>;
  /** `text_encoder/config.json`; empty when the folder has no text encoder (see {@link PipelineConfigs.hasTextEncoder}). */
  readonly textEncoder: Readonly<Record<string, unknown>>;
  /** The denoiser's `config.json` (`unet/` or `transformer/`, see {@link PipelineConfigs.denoiser}). */
  readonly unet: Readonly<Record<string, unknown>>;
  readonly vae: Readonly<Record<string, unknown>>;
  /** Whether the folder has `vae_encoder/model.onnx` (image-to-image). */
  readonly hasVaeEncoder: boolean;
  /** Which denoiser the folder holds: its folder name. */
  readonly denoiser: DenoiserKind;
  /**
   * Whether the folder has a text encoder and tokenizer. Without them (`text_encoder: [null, null]` in
   * `model_index.json`) the folder samples from conditioning the caller gives, and a prompt is refused.
   */
  readonly hasTextEncoder: boolean;
}

/** Whether `model_index.json` lists component `name` as `[null, null]` (diffusers' mark of a part left out of the pipeline). */
export function componentLeftOut(modelIndex: Readonly<Record<string, unknown>>, name: string): boolean {
  const v = modelIndex[name];
  return Array.isArray(v) && v.every((x) => x === null);
}

/** A pipeline folder that cannot be used, with what is wrong and the fix. */
export class PipelineFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineFolderError';
  }
}

const REQUIRED = ['model_index.json', 'scheduler/scheduler_config.json', 'vae_decoder/model.onnx'];

async function readJson(reader: PipelineFileReader, path: string): Promise<Record<string, unknown>> {
  const text = await reader.readText(path);
  try {
    return parseSchedulerConfigText(text, `${reader.label}/${path}`);
  } catch (err) {
    throw new PipelineFolderError(`${reader.label}/${path} is not a JSON object (${(err as Error).message}); re-export the pipeline`);
  }
}

/** Read and check the configs of a pipeline folder (see the module notes); throws {@link PipelineFolderError}. */
export async function readPipelineConfigs(reader: PipelineFileReader): Promise<PipelineConfigs> {
  const missing: string[] = [];
  for (const f of REQUIRED) if (!(await reader.exists(f))) missing.push(f);
  const denoiser: DenoiserKind = !(await reader.exists('unet/model.onnx')) && (await reader.exists('transformer/model.onnx')) ? 'transformer' : 'unet';
  if (!(await reader.exists(`${denoiser}/model.onnx`))) missing.push('unet/model.onnx (or transformer/model.onnx)');
  const indexPresent = await reader.exists('model_index.json');
  const modelIndexEarly = indexPresent ? await readJson(reader, 'model_index.json') : {};
  const hasTokenizer =
    (await reader.exists('tokenizer/tokenizer.json')) || ((await reader.exists('tokenizer/vocab.json')) && (await reader.exists('tokenizer/merges.txt')));
  const hasEncoderFile = await reader.exists('text_encoder/model.onnx');
  // A text encoder is part of the folder unless model_index.json leaves it out; one that is there is used.
  const textOptional = componentLeftOut(modelIndexEarly, 'text_encoder') && !hasEncoderFile;
  const hasTextEncoder = !textOptional;
  if (hasTextEncoder) {
    if (!hasEncoderFile) missing.push('text_encoder/model.onnx');
    if (!hasTokenizer) missing.push('tokenizer/ (tokenizer.json, or vocab.json + merges.txt)');
  }
  for (const c of [...(hasTextEncoder ? ['text_encoder'] : []), denoiser, 'vae_decoder'])
    if (!(await reader.exists(`${c}/config.json`))) missing.push(`${c}/config.json`);
  if (missing.length) {
    throw new PipelineFolderError(
      `${reader.label} is not a complete Stable-Diffusion ONNX pipeline folder: missing ${missing.join(', ')}. ` +
        'Export it with `optimum-cli export onnx --model <model id> <folder>` (or copy the missing parts from the same export)',
    );
  }
  const modelIndex = modelIndexEarly;
  const scheduler = await readJson(reader, 'scheduler/scheduler_config.json');
  const textEncoder = hasTextEncoder ? await readJson(reader, 'text_encoder/config.json') : {};
  const unet = await readJson(reader, `${denoiser}/config.json`);
  const vae = await readJson(reader, 'vae_decoder/config.json');
  const hasVaeEncoder = await reader.exists('vae_encoder/model.onnx');
  return { modelIndex, scheduler, textEncoder, unet, vae, hasVaeEncoder, denoiser, hasTextEncoder };
}

/** A positive integer field of a config, or undefined. */
export function intField(config: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = config[key];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * Check that the parts fit together: the tokenizer's vocabulary size against the text encoder's
 * embedding table, the text encoder's hidden size against the denoiser's context width (UNet
 * `cross_attention_dim`, SD3 transformer `joint_attention_dim`), and for SD3 the text encoder's pooled
 * width against the transformer's `pooled_projection_dim` (from the configs, and from the graphs'
 * declared dims when they are fixed).
 */
export function checkPipelineParts(
  label: string,
  configs: PipelineConfigs,
  facts: {
    tokenizerVocab: number;
    textHidden?: number | undefined;
    unetContextDim?: number | undefined;
    textHidden2?: number | undefined;
    /** SD3: the text encoder's `pooler_output` width and the transformer's `pooled_projections` width. */
    textPooled?: number | undefined;
    denoiserPooled?: number | undefined;
  },
): void {
  const vocab = intField(configs.textEncoder, 'vocab_size');
  if (vocab !== undefined && facts.tokenizerVocab !== vocab) {
    throw new PipelineFolderError(
      `${label}: the tokenizer has ${facts.tokenizerVocab} tokens but the text encoder's embedding table has ${vocab} (text_encoder/config.json vocab_size): ` +
        'the tokenizer does not belong to this text encoder — use the tokenizer/ folder of the same export',
    );
  }
  const d = configs.denoiser;
  const what = d === 'unet' ? "the UNet's cross-attention width" : "the transformer's context width";
  const hidden: [number, string][] = [];
  const cross: [number, string][] = [];
  const hs = intField(configs.textEncoder, 'hidden_size');
  if (facts.textHidden2 !== undefined) {
    // SDXL: the UNet attends to [enc1; enc2] concatenated on the feature axis.
    const h1 = facts.textHidden ?? hs;
    if (h1 !== undefined) hidden.push([h1 + facts.textHidden2, 'text_encoder + text_encoder_2 hidden states, concatenated']);
  } else {
    if (facts.textHidden !== undefined) hidden.push([facts.textHidden, 'text_encoder/model.onnx last_hidden_state']);
    if (hs !== undefined) hidden.push([hs, 'text_encoder/config.json hidden_size']);
  }
  if (facts.unetContextDim !== undefined) cross.push([facts.unetContextDim, `${d}/model.onnx encoder_hidden_states`]);
  const key = d === 'unet' ? 'cross_attention_dim' : 'joint_attention_dim';
  const ca = configs.unet[key];
  if (typeof ca === 'number') cross.push([ca, `${d}/config.json ${key}`]);
  const mismatch = (pairsA: [number, string][], pairsB: [number, string][], a: string, b: string) => {
    for (const [h, hw] of pairsA) {
      for (const [c, cw] of pairsB) {
        if (h !== c) {
          throw new PipelineFolderError(
            `${label}: ${a} is ${h} (${hw}) but ${b} is ${c} (${cw}): ` +
              `the text encoder and the ${d === 'unet' ? 'UNet' : 'transformer'} come from different models — use the parts of one export`,
          );
        }
      }
    }
  };
  mismatch(hidden, cross, "the text encoder's hidden size", what);
  const pooled: [number, string][] = facts.textPooled !== undefined ? [[facts.textPooled, 'text_encoder/model.onnx pooler_output']] : [];
  const pooledIn: [number, string][] = [];
  if (facts.denoiserPooled !== undefined) pooledIn.push([facts.denoiserPooled, `${d}/model.onnx pooled_projections`]);
  const pd = configs.unet['pooled_projection_dim'];
  if (d === 'transformer' && typeof pd === 'number') pooledIn.push([pd, `${d}/config.json pooled_projection_dim`]);
  mismatch(pooled, pooledIn, "the text encoder's pooled width", "the transformer's pooled-projection width");
}

/** The UNet inputs of SDXL's extra conditioning (Optimum's names): the pooled text embedding and the size/crop ids. */
export const SDXL_UNET_INPUTS = ['text_embeds', 'time_ids'] as const;

/**
 * SDXL's extra conditioning — a second text encoder (`text_encoder_2/`, CLIPTextModelWithProjection)
 * whose pooled `text_embeds` and the size/crop `time_ids` the UNet takes — is checked before any
 * model call: a folder whose second text encoder and UNet disagree (one without the other) is refused
 * as parts of different exports (its UNet would otherwise fail on its first call, or run without the
 * conditioning it was trained with). Returns whether the folder is a consistent SDXL folder.
 */
export function checkSdxlConditioning(label: string, facts: { hasTextEncoder2: boolean; unetInputs: readonly string[] }): boolean {
  const extra = SDXL_UNET_INPUTS.filter((n) => facts.unetInputs.includes(n));
  if (facts.hasTextEncoder2 && extra.length === 0) {
    throw new PipelineFolderError(
      `${label} has text_encoder_2/ (SDXL's second text encoder) but unet/model.onnx takes no text_embeds or time_ids ` +
        `(its inputs: ${facts.unetInputs.join(', ')}): the UNet and the text encoders come from different exports — use the parts of one export`,
    );
  }
  if (!facts.hasTextEncoder2 && extra.length > 0) {
    throw new PipelineFolderError(
      `${label}: unet/model.onnx takes ${extra.join(' and ')} (SDXL's extra conditioning) but the folder has no text_encoder_2/model.onnx to compute them: ` +
        'copy text_encoder_2/ and tokenizer_2/ from the same export (optimum-cli export onnx writes them for SDXL)',
    );
  }
  if (facts.hasTextEncoder2 && extra.length !== SDXL_UNET_INPUTS.length) {
    throw new PipelineFolderError(
      `${label}: unet/model.onnx takes ${extra.join(', ')} but not ${SDXL_UNET_INPUTS.filter((n) => !extra.includes(n)).join(', ')}: ` +
        'an SDXL UNet takes both text_embeds and time_ids — re-export the UNet with Optimum',
    );
  }
  return facts.hasTextEncoder2;
}
