/**
 * Class prompts of a pipeline bench: one caption per class, so that a text-to-image model is
 * measured as the class-conditional models are — sample i of the seed set belongs to class
 * i mod C ({@link classOfSample}, the rule of the pixel bench's labels), and is conditioned on that
 * class's caption; the decoded images are then scored by the class classifier.
 *
 * A class-prompts file is JSON in one of two forms:
 * - the training-captions format of `models/latent-captions.json`: `{ "captions": [{ "text", "label",
 *   "ids"? }, …] }`; per class the first caption of the form "a photo of …" is taken (the prompts of
 *   `models/eval_latent.py`, which measured the README's figures), else the class's first caption;
 * - an array of strings: the caption of class i at index i.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import type { Conditioning, ConditioningInput } from '../core/index.js';
import { sha256Hex } from './cell-key.js';

/** The class of sample `index` of a seed set among `numClasses` classes: index mod C. */
export function classOfSample(index: number, numClasses: number): number {
  return index % numClasses;
}

/** One caption per class, read by {@link readClassPrompts}. */
export interface ClassPrompts {
  /** The file it was read from. */
  file: string;
  /** SHA-256 of the file's bytes (part of the bench's model hash, so an edited file makes new cells). */
  sha256: string;
  /** The caption of class k at index k (C = length). */
  captions: string[];
  /** The token ids the file gives for each chosen caption (training-captions format), else undefined. */
  ids: (readonly number[] | undefined)[];
}

/** Prefix of the captions `models/eval_latent.py` evaluated with. */
const EVAL_PREFIX = 'a photo of ';

/**
 * Read a class-prompts file (see the module notes). `numClasses`, when given (the classifier's
 * class count), is the number of classes the file must cover exactly: 0 … C − 1. Throws an error
 * naming the file, the problem and the fix.
 */
export function readClassPrompts(file: string, numClasses?: number): ClassPrompts {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(
      `class prompts ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass an existing JSON file, e.g. models/latent-captions.json`,
      { cause: e },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`class prompts ${file}: not valid JSON (${(e as Error).message}); fix the syntax`, { cause: e });
  }
  const byClass = new Map<number, { text: string; ids?: readonly number[] }>();
  const form = 'use {"captions": [{"text": "a photo of a t-shirt", "label": 0}, …]} (models/latent-captions.json) or ["caption of class 0", …]';
  if (Array.isArray(raw)) {
    raw.forEach((t, k) => {
      if (typeof t !== 'string' || t.trim() === '') throw new Error(`class prompts ${file}: entry ${k} is ${JSON.stringify(t)}, not a caption; ${form}`);
      byClass.set(k, { text: t });
    });
  } else if (typeof raw === 'object' && raw !== null && Array.isArray((raw as { captions?: unknown }).captions)) {
    const list = (raw as { captions: unknown[] }).captions;
    list.forEach((c, i) => {
      const o = c as { text?: unknown; label?: unknown; ids?: unknown };
      if (
        typeof o !== 'object' ||
        o === null ||
        typeof o.text !== 'string' ||
        o.text.trim() === '' ||
        !Number.isInteger(o.label) ||
        (o.label as number) < 0
      ) {
        throw new Error(`class prompts ${file}: captions[${i}] is ${JSON.stringify(c)}; each caption needs a text and an integer label ≥ 0 — ${form}`);
      }
      const ids = Array.isArray(o.ids) && o.ids.every((v) => Number.isInteger(v)) ? (o.ids as number[]) : undefined;
      const k = o.label as number;
      const have = byClass.get(k);
      // the first "a photo of …" caption of the class wins; else its first caption
      if (!have || (!have.text.startsWith(EVAL_PREFIX) && o.text.startsWith(EVAL_PREFIX))) byClass.set(k, { text: o.text, ...(ids ? { ids } : {}) });
    });
  } else {
    throw new Error(`class prompts ${file}: expected a captions object or an array of captions; ${form}`);
  }
  if (byClass.size === 0) throw new Error(`class prompts ${file}: no caption in it; ${form}`);
  const top = Math.max(...byClass.keys());
  const C = numClasses ?? top + 1;
  const missing = Array.from({ length: C }, (_, k) => k).filter((k) => !byClass.has(k));
  if (missing.length > 0) {
    throw new Error(
      `class prompts ${file} have no caption for class${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} of 0…${C - 1}` +
        `${numClasses !== undefined ? ` (the classifier has ${numClasses} classes)` : ''}: every class needs a caption — add them`,
    );
  }
  if (top >= C) {
    throw new Error(
      `class prompts ${file} have captions for class ${top}, but the classifier knows classes 0…${C - 1} only: drop the captions of the classes it cannot score`,
    );
  }
  const chosen = Array.from({ length: C }, (_, k) => byClass.get(k)!);
  return { file, sha256: sha256Hex(bytes), captions: chosen.map((c) => c.text), ids: chosen.map((c) => c.ids) };
}

/**
 * The conditioning of samples whose rows come from one-row conditionings: row j of the result is
 * `rows[picks[j]]` (encoder states and every extra input; `rows[k]` holds exactly one sample).
 */
export function gatherConditioning(rows: readonly Conditioning[], picks: readonly number[]): Conditioning {
  const first = rows[0];
  if (!first) throw new RangeError('gatherConditioning: no rows to pick from');
  const out: Conditioning = {};
  if (first.encoderHiddenStates) {
    const per = first.encoderHiddenStates.length;
    const e = new Float32Array(per * picks.length);
    picks.forEach((k, j) => e.set(rows[k]!.encoderHiddenStates!, j * per));
    out.encoderHiddenStates = e;
    if (first.encoderHiddenShape) out.encoderHiddenShape = first.encoderHiddenShape;
  }
  if (first.extra) {
    const extra: Record<string, ConditioningInput> = {};
    for (const [name, input] of Object.entries(first.extra)) {
      const per = input.data.length;
      const data = new Float32Array(per * picks.length);
      picks.forEach((k, j) => data.set(rows[k]!.extra![name]!.data, j * per));
      extra[name] = { data, shape: input.shape };
    }
    out.extra = extra;
  }
  if (first.classLabels) out.classLabels = picks.map((k) => rows[k]!.classLabels![0]!);
  return out;
}
