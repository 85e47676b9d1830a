/**
 * `rediffuse card init MODEL.onnx [--scheduler-config FILE] [--out FILE]`: write a starter model card
 * from the graph's inputs and outputs, its guesses listed in `_guessed` (docs/model-card.md).
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parseSchedulerConfigText, starterCard, type StarterCard, parseModelCard, createOnnxSession, onnxSessionOptions } from '../../model/index.js';
import type { OrtModuleLike } from '../../model/index.js';
import { writeFileAtomic, checkOutputPath } from '../../node/index.js';

/** Options of {@link runCardInit}. */
export interface CardInitOptions {
  schedulerConfig?: string;
  /** Card path (default: the model's path with `.json`). */
  out?: string;
  /** Replace an existing card. */
  force?: boolean;
}

/** Write a starter card for `model`; returns its path and the card. */
export async function runCardInit(model: string, opts: CardInitOptions = {}): Promise<{ path: string } & StarterCard> {
  if (!existsSync(model)) throw new Error(`model file ${model} does not exist; pass the path of an .onnx file`);
  const out = opts.out ?? model.replace(/\.onnx$/i, '') + '.json';
  const target = checkOutputPath(out);
  if (existsSync(target) && !opts.force) throw new Error(`${target} exists; pass --force to replace it, or choose another --out`);
  let schedulerConfig: Record<string, unknown> | undefined;
  if (opts.schedulerConfig !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.schedulerConfig, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --scheduler-config ${opts.schedulerConfig} (${(err as Error).message})`, { cause: err });
    }
    schedulerConfig = parseSchedulerConfigText(text, opts.schedulerConfig);
  }
  const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
  const session = await createOnnxSession(ort, model, onnxSessionOptions({}), model);
  const starter = starterCard(session, { name: basename(model).replace(/\.onnx$/i, ''), ...(schedulerConfig ? { schedulerConfig } : {}) });
  await session.release?.();
  const text = JSON.stringify(starter.card, null, 2) + '\n';
  parseModelCard(text, out); // the starter card is a valid card
  writeFileAtomic(target, text);
  return { path: target, ...starter };
}

/** Register `card init` on a commander program. */
export function registerCard(program: Command): void {
  const card = program.command('card').description('model cards (docs/model-card.md)');
  card
    .command('init')
    .description("write a starter model card from an ONNX model's inputs and outputs; check the fields it lists as guessed")
    .argument('<model>', 'path of the .onnx model')
    .option('--scheduler-config <file>', "the model's diffusers scheduler_config.json")
    .option('--out <file>', 'card path (default: the model path with .json)')
    .option('--force', 'replace an existing card')
    .action(async (model: string, opts: CardInitOptions) => {
      const r = await runCardInit(model, opts);
      process.stdout.write(
        `wrote ${r.path}\n` + (r.guessed.length ? `guessed (check these, see docs/model-card.md): ${r.guessed.join(', ')}\n` : 'nothing guessed\n'),
      );
    });
}
