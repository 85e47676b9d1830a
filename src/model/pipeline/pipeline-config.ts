/**
 * The parts of a diffusers / Optimum ONNX Stable-Diffusion folder and the checks made on them before
 * any model runs: every required part present (`model_index.json`, `scheduler/scheduler_config.json`,
 * `tokenizer/`, `text_encoder/model.onnx`, `unet/model.onnx`, `vae_decoder/model.onnx`; `vae_encoder/`
 * optional), each component's `config.json` parsed, the tokenizer's vocabulary equal to the text
 * encoder's embedding table (`vocab_size`), and the UNet's cross-attention width
 * (`cross_attention_dim`) equal to the text encoder's hidden size.
 * @packageDocumentation
 */
import { parseSchedulerConfigText } from '../card-init.js';
import type { PipelineFileReader } from './pipeline-files.js';

/** The configs of a pipeline folder. */
export interface PipelineConfigs {
  readonly modelIndex: Readonly<Record<string, unknown>>;
  readonly scheduler: Readonly<Record<string, unknown>>;
  readonly textEncoder: Readonly<Record<string, unknown>>;
  readonly unet: Readonly<Record<string, unknown>>;
  readonly vae: Readonly<Record<string, unknown>>;
  /** Whether the folder has `vae_encoder/model.onnx` (image-to-image). */
  readonly hasVaeEncoder: boolean;
}

/** A pipeline folder that cannot be used, with what is wrong and the fix. */
export class PipelineFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineFolderError';
  }
}

const REQUIRED = ['model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/model.onnx', 'unet/model.onnx', 'vae_decoder/model.onnx'];

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
  const hasTokenizer =
    (await reader.exists('tokenizer/tokenizer.json')) || ((await reader.exists('tokenizer/vocab.json')) && (await reader.exists('tokenizer/merges.txt')));
  if (!hasTokenizer) missing.push('tokenizer/ (tokenizer.json, or vocab.json + merges.txt)');
  for (const c of ['text_encoder', 'unet', 'vae_decoder']) if (!(await reader.exists(`${c}/config.json`))) missing.push(`${c}/config.json`);
  if (missing.length) {
    throw new PipelineFolderError(
      `${reader.label} is not a complete Stable-Diffusion ONNX pipeline folder: missing ${missing.join(', ')}. ` +
        'Export it with `optimum-cli export onnx --model <model id> <folder>` (or copy the missing parts from the same export)',
    );
  }
  const modelIndex = await readJson(reader, 'model_index.json');
  const scheduler = await readJson(reader, 'scheduler/scheduler_config.json');
  const textEncoder = await readJson(reader, 'text_encoder/config.json');
  const unet = await readJson(reader, 'unet/config.json');
  const vae = await readJson(reader, 'vae_decoder/config.json');
  const hasVaeEncoder = await reader.exists('vae_encoder/model.onnx');
  return { modelIndex, scheduler, textEncoder, unet, vae, hasVaeEncoder };
}

/** A positive integer field of a config, or undefined. */
export function intField(config: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = config[key];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * Check that the parts fit together: the tokenizer's vocabulary size against the text encoder's
 * embedding table, and the text encoder's hidden size against the UNet's cross-attention width
 * (from the configs, and from the graphs' declared dims when they are fixed).
 */
export function checkPipelineParts(
  label: string,
  configs: PipelineConfigs,
  facts: { tokenizerVocab: number; textHidden?: number | undefined; unetContextDim?: number | undefined; textHidden2?: number | undefined },
): void {
  const vocab = intField(configs.textEncoder, 'vocab_size');
  if (vocab !== undefined && facts.tokenizerVocab !== vocab) {
    throw new PipelineFolderError(
      `${label}: the tokenizer has ${facts.tokenizerVocab} tokens but the text encoder's embedding table has ${vocab} (text_encoder/config.json vocab_size): ` +
        'the tokenizer does not belong to this text encoder — use the tokenizer/ folder of the same export',
    );
  }
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
  if (facts.unetContextDim !== undefined) cross.push([facts.unetContextDim, 'unet/model.onnx encoder_hidden_states']);
  const ca = configs.unet['cross_attention_dim'];
  if (typeof ca === 'number') cross.push([ca, 'unet/config.json cross_attention_dim']);
  for (const [h, hw] of hidden) {
    for (const [c, cw] of cross) {
      if (h !== c) {
        throw new PipelineFolderError(
          `${label}: the text encoder's hidden size is ${h} (${hw}) but the UNet's cross-attention width is ${c} (${cw}): ` +
            'the text encoder and the UNet come from different models — use the parts of one export',
        );
      }
    }
  }
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
