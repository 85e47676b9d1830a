/**
 * The SD3-style flow-matching transformer of a pipeline folder (`transformer/model.onnx`, diffusers'
 * `SD3Transformer2DModel` as Optimum's `SD3TransformerOnnxConfig` exports it): its inputs and their
 * roles, and the checks made before any call.
 *
 *   hidden_states          [B, C, h, w]   the noisy latents            → role `sample`
 *   encoder_hidden_states  [B, seq, D]    the text tokens (joint attention context) → `encoder_hidden_states`
 *   pooled_projections     [B, P]         the pooled text embedding    → `extra` (fed from `cond.extra.pooled_projections`)
 *   timestep               [B] float      σ·1000 (diffusers' flow-matching timestep convention) → `timestep`
 *   → out_hidden_states    [B, C, h, w]   the velocity v = ε − x₀ (prediction type `flow`)
 *
 * With one CLIP-style text encoder (`last_hidden_state`, `pooler_output`), the tokens are its last
 * hidden state and the pooled embedding its `pooler_output`. SD3's own three encoders (two CLIPs and
 * T5, whose outputs diffusers' `StableDiffusion3Pipeline` pads and concatenates) are not composed here:
 * such a folder samples from conditioning the caller gives.
 * @packageDocumentation
 */
import type { ModelCardInput } from '../model-card.js';
import { PipelineFolderError } from './pipeline-config.js';

/** The inputs of Optimum's SD3 transformer export, in its order. */
export const SD3_TRANSFORMER_INPUTS = ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'] as const;

/** The output of Optimum's SD3 transformer export. */
export const SD3_TRANSFORMER_OUTPUT = 'out_hidden_states';

/** The extra conditioning input fed from `cond.extra` (the pooled text embedding). */
export const SD3_POOLED_INPUT = 'pooled_projections';

/** The model card's `inputs` (roles) of an SD3 transformer export. */
export const SD3_CARD_INPUTS: Readonly<Record<string, ModelCardInput>> = {
  hidden_states: { role: 'sample' },
  encoder_hidden_states: { role: 'encoder_hidden_states' },
  pooled_projections: { role: 'extra' },
  timestep: { role: 'timestep' },
};

/**
 * Check that `transformer/model.onnx` has SD3's signature; throws {@link PipelineFolderError} naming
 * the missing inputs and what the export has.
 */
export function checkSd3Transformer(label: string, io: { inputNames: readonly string[]; outputNames: readonly string[] }): void {
  const missing = SD3_TRANSFORMER_INPUTS.filter((n) => !io.inputNames.includes(n));
  const extra = io.inputNames.filter((n) => !(SD3_TRANSFORMER_INPUTS as readonly string[]).includes(n));
  if (missing.length || extra.length) {
    throw new PipelineFolderError(
      `${label}/transformer/model.onnx has inputs ${io.inputNames.join(', ')}; rediffuse loads a transformer/ with SD3's signature ` +
        `(${SD3_TRANSFORMER_INPUTS.join(', ')})` +
        (missing.length ? `, and this one lacks ${missing.join(', ')}` : '') +
        (extra.length ? `, and does not know ${extra.join(', ')}` : '') +
        ' — export an SD3Transformer2DModel with Optimum (optimum-cli export onnx), or write a model card for the network alone (docs/model-card.md)',
    );
  }
}

/** The prompt-encoding parts an SD3-style folder lacks (empty when its single CLIP-style text encoder can encode prompts). */
export function sd3PromptBlockers(modelIndex: Readonly<Record<string, unknown>>, hasTextEncoder: boolean): string[] {
  const named = (k: string) => {
    const v = modelIndex[k];
    return Array.isArray(v) && v.some((x) => x !== null);
  };
  const out: string[] = [];
  if (!hasTextEncoder) out.push('text_encoder/model.onnx', 'tokenizer/ (model_index.json lists text_encoder as [null, null])');
  for (const k of ['text_encoder_2', 'text_encoder_3']) if (named(k)) out.push(`${k} (SD3's CLIP-G / T5 prompt embedding is not composed by rediffuse)`);
  return out;
}
