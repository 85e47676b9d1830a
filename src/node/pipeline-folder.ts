/**
 * A {@link PipelineFileReader} over a folder on disk (a diffusers/Optimum ONNX pipeline folder).
 * @packageDocumentation
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PipelineFileReader } from '../model/pipeline/pipeline-files.js';

/** A reader of the pipeline folder `dir`; throws when `dir` is not a folder. */
export function nodePipelineReader(dir: string): PipelineFileReader {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new Error(`pipeline folder ${root} does not exist or is not a folder; pass --pipeline with the folder of an Optimum/diffusers ONNX export`);
  }
  const abs = (p: string) => join(root, ...p.split('/'));
  return {
    label: root,
    exists: async (p) => existsSync(abs(p)),
    readBytes: async (p) => new Uint8Array(await readFile(abs(p))),
    readText: async (p) => readFile(abs(p), 'utf8'),
    pathOf: abs,
  };
}
