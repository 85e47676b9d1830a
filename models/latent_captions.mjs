// Captions of the latent text-to-image models, tokenized once by the project's own CLIP tokenizer
// (src/model/pipeline/clip-tokenizer.ts over the real openai/CLIP BPE files) so that training sees
// exactly the ids the JS pipeline feeds the text encoder.
//
//   node --import tsx models/latent_captions.mjs [maxLength=16]  ->  models/latent-captions.json
//
// Caption = template × name, names per Fashion-MNIST class (several where natural). The empty prompt ""
// (the classifier-free-guidance branch) is tokenized the same way.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer } from '../src/model/pipeline/clip-tokenizer.ts';

const here = dirname(fileURLToPath(import.meta.url));
const maxLength = Number(process.argv[2] ?? 16);

/** Per class (Fashion-MNIST label order): [name, article] ('' for plurals). */
export const CLASS_NAMES = [
  [['t-shirt', 'a'], ['top', 'a']],
  [['trousers', ''], ['pants', '']],
  [['pullover', 'a'], ['sweater', 'a']],
  [['dress', 'a']],
  [['coat', 'a'], ['jacket', 'a']],
  [['sandal', 'a'], ['sandals', '']],
  [['shirt', 'a']],
  [['sneaker', 'a'], ['sneakers', '']],
  [['bag', 'a'], ['handbag', 'a']],
  [['ankle boot', 'an'], ['boot', 'a']],
];
const TEMPLATES = ['{n}', '{a} {n}', 'a photo of {a} {n}', 'a picture of {a} {n}', 'an image of {a} {n}', 'a photo of the {n}'];

function captions() {
  const out = [];
  CLASS_NAMES.forEach((names, label) => {
    for (const [n, a] of names) {
      for (const t of TEMPLATES) {
        const text = t.replace('{a}', a).replace('{n}', n).replace(/\s+/g, ' ').trim();
        if (!out.some((c) => c.text === text)) out.push({ text, label });
      }
    }
  });
  return out;
}

/** A PipelineFileReader over a local folder. */
function reader(dir) {
  return {
    label: dir,
    exists: async (p) => existsSync(join(dir, p)),
    readBytes: async (p) => new Uint8Array(readFileSync(join(dir, p))),
    readText: async (p) => readFileSync(join(dir, p), 'utf8'),
  };
}

const tokDir = process.env.CLIP_TOKENIZER_DIR ?? join(here, 'latent-tokenizer');
const tok = await ClipTokenizer.load(reader(tokDir), '');
if (tok.maxLength !== maxLength) throw new Error(`${tokDir}/tokenizer_config.json has model_max_length ${tok.maxLength}, expected ${maxLength}`);
const caps = captions().map((c) => {
  const raw = tok.tokenIds(c.text);
  if (raw.length > maxLength - 2) throw new Error(`caption "${c.text}" has ${raw.length} tokens, over ${maxLength - 2}`);
  return { ...c, ids: tok.encode(c.text) };
});
const vocab = [...new Set(caps.flatMap((c) => c.ids).concat(tok.encode('')))].sort((a, b) => a - b);
const doc = { maxLength, bos: tok.bosId, eos: tok.eosId, pad: tok.padId, vocabSize: tok.vocabSize, empty: tok.encode(''), usedIds: vocab, captions: caps };
writeFileSync(join(here, 'latent-captions.json'), JSON.stringify(doc, null, 1) + '\n');
console.log(`${caps.length} captions, ${vocab.length} distinct ids, maxLength ${maxLength}`);
