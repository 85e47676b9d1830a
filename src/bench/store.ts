/**
 * The bench's on-disk store, which makes runs resumable. Layout under the output folder:
 *
 *   cells/<key>.json        one finished cell (settings, figures, calls, timings)
 *   refs/<key>.json|.bin    a reference run: metadata + the samples as little-endian Float32
 *   samples/<key>.bin       samples of a full-compute cell that feature-reuse cells compare against
 *
 * A committed results.json can seed an empty store ({@link BenchStore.importCells}), so a grid too
 * large for one session resumes in the next one from the cells that are in the repository.
 *
 * Every file is written atomically (temporary file + rename), so an interrupted run leaves either
 * a complete file or none, and a restarted run skips every cell whose file exists.
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../node/index.js';

/** Metadata stored next to a Float32 sample file. */
export interface StoredArrayMeta {
  format: 'rediffuse-bench-array/1';
  /** Number of float32 values in the .bin file. */
  length: number;
  /** [count, ...sampleShape]. */
  shape: number[];
  /** Free-form description (what produced it). */
  [key: string]: unknown;
}

/** Resumable store rooted at an output folder. */
export class BenchStore {
  /** Cells held in memory instead of on disk (a dry-run store). */
  private readonly staged = new Map<string, unknown>();

  /**
   * `dryRun`: nothing is written; cells "written" (e.g. imported) are held in memory, so a dry run
   * plans as the real run would and leaves the output folder as it was.
   */
  constructor(
    readonly dir: string,
    readonly options: { dryRun?: boolean } = {},
  ) {}

  /** Path of a cell's result file. */
  cellPath(key: string): string {
    return join(this.dir, 'cells', `${key}.json`);
  }

  /** A stored cell result, or undefined when the cell has not finished (a corrupt file counts as missing). */
  readCell<T>(key: string): T | undefined {
    if (this.staged.has(key)) return this.staged.get(key) as T;
    const p = this.cellPath(key);
    if (!existsSync(p)) return undefined;
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Store a finished cell atomically. */
  writeCell(key: string, result: unknown): void {
    if (this.options.dryRun) {
      this.staged.set(key, result);
      return;
    }
    writeFileAtomic(this.cellPath(key), `${JSON.stringify(result, null, 2)}\n`);
  }

  /**
   * Seed the store with the finished cells of an earlier results.json. Only cells with status 'ok'
   * that were measured on the same model file are taken; a cell already in the store is kept.
   * Cells are matched to a grid by key, so imported cells that no longer match are simply unused.
   */
  importCells(results: unknown, modelHash: string): { imported: number; present: number; skipped: number } {
    const r = results as { format?: unknown; model?: { sha256?: unknown }; cells?: unknown };
    if (r?.format !== 'rediffuse-bench-results/1' || !Array.isArray(r.cells)) {
      throw new Error('not a rediffuse results.json (format rediffuse-bench-results/1 with a cells array); pass the results.json a bench run wrote');
    }
    if (r.model?.sha256 !== modelHash) {
      throw new Error(
        `the results were measured on another model file (sha256 ${String(r.model?.sha256).slice(0, 12)}…, this grid's model is ${modelHash.slice(0, 12)}…); import results of the same model`,
      );
    }
    let imported = 0;
    let present = 0;
    let skipped = 0;
    for (const c of r.cells as { key?: unknown; status?: unknown; format?: unknown }[]) {
      if (c?.format !== 'rediffuse-bench-cell/1' || c.status !== 'ok' || typeof c.key !== 'string' || !/^[0-9a-f]{24}$/.test(c.key)) {
        skipped++;
        continue;
      }
      if (this.staged.has(c.key) || existsSync(this.cellPath(c.key))) {
        present++;
        continue;
      }
      this.writeCell(c.key, c);
      imported++;
    }
    return { imported, present, skipped };
  }

  /** Read a stored Float32 array (`refs/` or `samples/`), or undefined if absent or inconsistent. */
  readArray(kind: 'refs' | 'samples', key: string): { data: Float32Array; meta: StoredArrayMeta } | undefined {
    const metaPath = join(this.dir, kind, `${key}.json`);
    const binPath = join(this.dir, kind, `${key}.bin`);
    if (!existsSync(metaPath) || !existsSync(binPath)) return undefined;
    try {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as StoredArrayMeta;
      const bytes = readFileSync(binPath);
      if (bytes.byteLength !== meta.length * 4) return undefined;
      const data = new Float32Array(meta.length);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < meta.length; i++) data[i] = view.getFloat32(i * 4, true);
      return { data, meta };
    } catch {
      return undefined;
    }
  }

  /** Store a Float32 array atomically: the .bin first, then the .json that marks it complete. */
  writeArray(kind: 'refs' | 'samples', key: string, data: ArrayLike<number>, meta: Omit<StoredArrayMeta, 'format' | 'length'>): void {
    if (this.options.dryRun) throw new Error('a dry-run bench store writes nothing');
    const bytes = new Uint8Array(data.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
    writeFileAtomic(join(this.dir, kind, `${key}.bin`), bytes);
    writeFileAtomic(
      join(this.dir, kind, `${key}.json`),
      `${JSON.stringify({ format: 'rediffuse-bench-array/1', length: data.length, ...meta }, null, 2)}\n`,
    );
  }
}
