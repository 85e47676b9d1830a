/**
 * Atomic file writes: the bytes go to a hidden temporary file in the target's folder, are flushed
 * to disk, and the temporary is renamed over the target. rename(2) within one file system is
 * atomic, so a reader (or a user after Ctrl-C) sees either the old file or the complete new one,
 * never a partial file under the final name. The write is synchronous, so no signal handler can
 * run between writing and renaming.
 * @packageDocumentation
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Create missing parent folders. Default true. */
  mkdirs?: boolean;
  /** File mode of the new file. Default 0o644. */
  mode?: number;
}

/** Write `data` to `path` atomically (temporary file + fsync + rename). Returns the absolute path. */
export function writeFileAtomic(path: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): string {
  const target = resolve(path);
  const dir = dirname(target);
  if (opts.mkdirs ?? true) mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot write ${target} (${e.code ?? e.message}); check the folder exists and is writable, or choose another --out`);
  }
  return target;
}
