/**
 * Node.js-only loading: read an ONNX model and its JSON card from disk and open it with
 * onnxruntime-node. Browser code uses {@link OnnxDiffusionModel.create} with bytes it fetched.
 * @packageDocumentation
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModelCard, type ModelCard } from '../model/model-card.js';
import { OnnxDiffusionModel, type OnnxModelOptions } from '../model/onnx-backend.js';
import type { OrtModuleLike } from '../model/ort-types.js';

/** Name of the model `rediffuse sample` uses when given none. */
export const DEFAULT_MODEL_NAME = 'fashion-unet';

/** The package's root folder (holds `models/`), found from this file's own location in `src/node/` or `dist/node/`. */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Path of a bundled model, `models/<name>.onnx` under the package root. */
export function bundledModelPath(name: string = DEFAULT_MODEL_NAME): string {
  return join(packageRoot(), 'models', `${name}.onnx`);
}

/** The card path that belongs to a model path: same folder and name, `.json`. */
export function cardPathFor(modelPath: string): string {
  return join(dirname(modelPath), `${basename(modelPath, extname(modelPath))}.json`);
}

/** Read and validate a model card file; errors name the file and the fix. */
export function loadModelCard(path: string): ModelCard {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `model card ${path} does not exist; pass --card with the model's JSON card`
        : `cannot read model card ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseModelCard(text, path);
}

/** Read a model file's bytes with errors that say what to do. */
export function readModelBytes(path: string): Uint8Array {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new Error(`model file ${abs} does not exist; pass --model with the path of an .onnx file (see models/README.md for the bundled ones)`);
  }
  if (statSync(abs).isDirectory()) throw new Error(`${abs} is a folder; pass the path of the .onnx file inside it`);
  return readFileSync(abs);
}

/** Options of {@link loadOnnxModel}. */
export interface LoadOnnxModelOptions extends Omit<OnnxModelOptions, 'ort' | 'model' | 'card' | 'label'> {
  /** Path of the `.onnx` file. */
  path: string;
  /** Path of its card; default: the `.json` next to it, used when it exists. Pass `null` for none. */
  cardPath?: string | null;
  /** onnxruntime module; default `onnxruntime-node`. */
  ort?: OrtModuleLike;
}

/** A loaded model with its card (when it has one). */
export interface LoadedOnnxModel {
  model: OnnxDiffusionModel;
  card: ModelCard | undefined;
  /** Absolute paths actually read. */
  modelPath: string;
  cardPath: string | undefined;
}

/** Load an ONNX diffusion model and its card from disk with onnxruntime-node. */
export async function loadOnnxModel(opts: LoadOnnxModelOptions): Promise<LoadedOnnxModel> {
  const modelPath = resolve(opts.path);
  const bytes = readModelBytes(modelPath);
  let cardPath: string | undefined;
  if (opts.cardPath === undefined) {
    const guess = cardPathFor(modelPath);
    cardPath = existsSync(guess) ? guess : undefined;
  } else if (opts.cardPath !== null) {
    cardPath = resolve(opts.cardPath);
  }
  const card = cardPath !== undefined ? loadModelCard(cardPath) : undefined;
  const ort: OrtModuleLike = opts.ort ?? (await import('onnxruntime-node'));
  const { path: _path, cardPath: _card, ort: _ort, ...rest } = opts;
  const model = await OnnxDiffusionModel.create({ ...rest, ort, model: bytes, label: modelPath, ...(card ? { card } : {}) });
  return { model, card, modelPath, cardPath };
}
