/**
 * The CLIP tokenizer (tokenizers.js over the folder's files) against tokenizer_tests.json: openai's
 * reference ids, padded to 77 with 49407, for 17 of the 20 prompts; the 3 prompts that ftfy rewrites
 * (flagged in the file) equal the ids of the tokenizer.json pipeline instead. Both loading paths:
 * tokenizer.json (test/fixtures/clip-tokenizer) and vocab.json + merges.txt (the pipeline fixture's
 * tokenizer/, as Optimum saves it).
 */
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClipTokenizer } from '../src/model/pipeline/clip-tokenizer.js';
import { nodePipelineReader } from '../src/node/pipeline-folder.js';

interface Case {
  prompt: string;
  input_ids_padded: number[];
  hf_fast_tokenizer_json_ids: number[];
  hf_fast_matches_reference: boolean;
  truncated: boolean;
}
const tests = JSON.parse(readFileSync('test/fixtures/clip-tokenizer/tokenizer_tests.json', 'utf8')) as { prompts: Case[] };

/** diffusers' padded ids for BPE ids: bos, the first 75, eos, pad 49407 to 77. */
const padded = (ids: number[]) => {
  const out = [49406, ...ids.slice(0, 75), 49407];
  while (out.length < 77) out.push(49407);
  return out;
};

describe('CLIP tokenizer', () => {
  for (const [name, reader, dir] of [
    ['tokenizer.json', nodePipelineReader('test/fixtures/clip-tokenizer'), ''],
    ['vocab.json + merges.txt', nodePipelineReader('test/fixtures/tiny-sd-pipeline'), 'tokenizer'],
  ] as const) {
    it(`${name}: the reference ids of tokenizer_tests.json (17 exact, the 3 ftfy prompts as tokenizer.json's pipeline)`, async () => {
      const tok = await ClipTokenizer.load(reader, dir);
      assert.equal(tok.maxLength, 77);
      assert.equal(tok.vocabSize, 49408);
      assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [49406, 49407, 49407]);
      let exact = 0;
      const ftfy: string[] = [];
      for (const c of tests.prompts) {
        const got = tok.encode(c.prompt);
        if (c.hf_fast_matches_reference) {
          assert.deepEqual(got, c.input_ids_padded, JSON.stringify(c.prompt));
          exact++;
        } else {
          assert.deepEqual(got, padded(c.hf_fast_tokenizer_json_ids), JSON.stringify(c.prompt));
          assert.notDeepEqual(got, c.input_ids_padded);
          ftfy.push(c.prompt);
        }
      }
      assert.equal(exact, 17);
      assert.equal(ftfy.length, 3);
      assert.ok(
        tests.prompts.some((c) => c.truncated),
        'a prompt over 75 tokens is truncated',
      );
    });
  }
  it('a folder with neither tokenizer.json nor vocab.json + merges.txt is refused with the fix', async () => {
    await assert.rejects(
      ClipTokenizer.load(nodePipelineReader('test/fixtures/tiny-sd-pipeline'), 'unet'),
      /needs tokenizer\.json, or vocab\.json and merges\.txt/,
    );
  });
});
