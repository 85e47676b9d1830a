/**
 * The SD3-style fixture (test/fixtures/tiny-sd3-flow: a flow transformer without text encoders) and
 * the same folder with the tiny SD pipeline's CLIP text encoder and tokenizer added — hidden and
 * pooled width 32, what the transformer's `encoder_hidden_states` and `pooled_projections` take: the
 * layout of our own latent flow DiT (one CLIP-style encoder, `last_hidden_state` + `pooler_output`).
 * @packageDocumentation
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The SD3-style fixture folder. */
export const SD3_FIXTURE = 'test/fixtures/tiny-sd3-flow';
/** The SD 1.x fixture whose text encoder and tokenizer are borrowed. */
export const SD_FIXTURE_DIR = 'test/fixtures/tiny-sd-pipeline';

/** Write the fixture with a text encoder and tokenizer into `dir` (created) and return it. */
export function writeSd3WithTextEncoder(dir: string): string {
  cpSync(SD3_FIXTURE, dir, { recursive: true, filter: (src) => !src.endsWith('reference.json') });
  for (const part of ['text_encoder', 'tokenizer']) cpSync(join(SD_FIXTURE_DIR, part), join(dir, part), { recursive: true });
  const index = JSON.parse(readFileSync(join(SD3_FIXTURE, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(
    join(dir, 'model_index.json'),
    JSON.stringify({ ...index, text_encoder: ['transformers', 'CLIPTextModel'], tokenizer: ['transformers', 'CLIPTokenizer'] }, null, 2),
  );
  return dir;
}
