/**
 * CLIP's BPE tokenizer for Stable-Diffusion prompts, run by `@huggingface/tokenizers` (tokenizers.js)
 * from the folder's `tokenizer.json` when it has one, else from `vocab.json` + `merges.txt` (what
 * Optimum saves for a slow `CLIPTokenizer`) assembled into the pipeline transformers' `CLIPConverter`
 * builds: NFC, whitespace runs → one space, lower-casing; the CLIP split pattern and byte-level
 * symbols; BPE with the `</w>` word suffix. A prompt becomes `[bos] + first (max − 2) ids + [eos]`
 * padded to `model_max_length` (77) with the pad token, as diffusers' `tokenizer(…,
 * padding="max_length", truncation=True)` does. openai's reference tokenizer also runs `ftfy.fix_text`,
 * which no tokenizer.json pipeline does: prompts with ligatures, full-width letters, curly quotes or
 * HTML entities can differ from it.
 * @packageDocumentation
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { PipelineFileReader } from './pipeline-files.js';

/** CLIP's pre-tokenization pattern (openai `simple_tokenizer.py`, as transformers' converter writes it). */
const CLIP_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** A CLIP tokenizer padded/truncated to a fixed length. */
export class ClipTokenizer {
  /** Ids per prompt (`model_max_length`). */
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Size of the vocabulary (added tokens included). */
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;

  private constructor(tokenizer: Tokenizer, ids: { maxLength: number; bos: number; eos: number; pad: number; vocabSize: number }) {
    this.tokenizer = tokenizer;
    this.maxLength = ids.maxLength;
    this.bosId = ids.bos;
    this.eosId = ids.eos;
    this.padId = ids.pad;
    this.vocabSize = ids.vocabSize;
  }

  /**
   * Load from a tokenizer folder (`dir` inside the reader, e.g. `tokenizer`): `tokenizer.json`, else
   * `vocab.json` + `merges.txt`; `tokenizer_config.json` and `special_tokens_map.json` when present.
   */
  static async load(reader: PipelineFileReader, dir = 'tokenizer'): Promise<ClipTokenizer> {
    const p = (f: string) => (dir ? `${dir}/${f}` : f);
    const where = `${reader.label}${dir ? `/${dir}` : ''}`;
    const json = async (f: string): Promise<Record<string, unknown> | undefined> => {
      if (!(await reader.exists(p(f)))) return undefined;
      try {
        return JSON.parse(await reader.readText(p(f))) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`${where}/${f} is not valid JSON (${(err as Error).message}); re-save the tokenizer`, { cause: err });
      }
    };
    const config = (await json('tokenizer_config.json')) ?? {};
    const specialMap = (await json('special_tokens_map.json')) ?? {};
    const tokenText = (v: unknown): string | undefined =>
      typeof v === 'string'
        ? v
        : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
          ? (v as { content: string }).content
          : undefined;
    const special = (key: string, dflt: string) => tokenText(config[key]) ?? tokenText(specialMap[key]) ?? dflt;
    const bos = special('bos_token', '<|startoftext|>');
    const eos = special('eos_token', '<|endoftext|>');
    const unk = special('unk_token', '<|endoftext|>');
    const pad = special('pad_token', eos);
    let spec = await json('tokenizer.json');
    if (!spec) {
      if (!(await reader.exists(p('vocab.json'))) || !(await reader.exists(p('merges.txt')))) {
        throw new Error(
          `${where}: the tokenizer needs tokenizer.json, or vocab.json and merges.txt; the folder has neither — copy the tokenizer of the pipeline into it`,
        );
      }
      const vocab = (await json('vocab.json'))!;
      const merges = (await reader.readText(p('merges.txt')))
        .split('\n')
        .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')))
        .map((l) => l.split(' ') as [string, string]);
      spec = clipTokenizerJson(vocab as Record<string, number>, merges, { bos, eos, unk });
    }
    const tokenizer = new Tokenizer(spec, { ...config, bos_token: bos, eos_token: eos, unk_token: unk, pad_token: pad });
    const id = (tok: string) => {
      const v = tokenizer.token_to_id(tok);
      if (v === undefined) throw new Error(`${where}: special token ${tok} is not in the vocabulary; the tokenizer files do not belong together`);
      return v;
    };
    const mml = config['model_max_length'];
    const maxLength = typeof mml === 'number' && Number.isInteger(mml) && mml >= 2 && mml <= 4096 ? mml : 77;
    const vocabSize = tokenizer.get_vocab(true).size;
    return new ClipTokenizer(tokenizer, { maxLength, bos: id(bos), eos: id(eos), pad: id(pad), vocabSize });
  }

  /** The BPE ids of `text` without the special tokens (not truncated). */
  tokenIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** The `maxLength` input ids of a prompt: bos, at most maxLength − 2 ids, eos, then padding. */
  encode(text: string): number[] {
    const ids = this.tokenIds(text).slice(0, this.maxLength - 2);
    const out = [this.bosId, ...ids, this.eosId];
    while (out.length < this.maxLength) out.push(this.padId);
    return out;
  }

  /** The text of ids (special tokens dropped). */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }
}

/** The tokenizer.json of transformers' CLIPConverter for a vocabulary and its merges. */
function clipTokenizerJson(
  vocab: Record<string, number>,
  merges: [string, string][],
  t: { bos: string; eos: string; unk: string },
): Record<string, unknown> {
  const added = [t.bos, t.eos]
    .filter((tok, i, a) => a.indexOf(tok) === i && vocab[tok] !== undefined)
    .map((tok) => ({ id: vocab[tok], content: tok, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [t.eos, vocab[t.eos]], cls: [t.bos, vocab[t.bos]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: t.unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
