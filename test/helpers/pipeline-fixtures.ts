/**
 * Building blocks of the pipeline tests' graphs and folders: a folder read into memory (so a test
 * can swap one part for a graph it builds) and an ONNX value-info entry with fixed and symbolic dims.
 * @packageDocumentation
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every file under `dir`, keyed by its path relative to `dir` (for `memoryPipelineReader`). */
export function filesOf(dir: string, prefix = ''): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of readdirSync(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) for (const [k, v] of filesOf(dir, rel)) out.set(k, v);
    else out.set(rel, new Uint8Array(readFileSync(join(dir, rel))));
  }
  return out;
}

/** An ONNX graph input/output of tensor type `elemType` (1 = float32, 7 = int64); a string dim is symbolic. */
export const io = (name: string, elemType: number, dims: (number | string)[]) => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
