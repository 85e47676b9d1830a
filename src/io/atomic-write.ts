/**
 * Atomic file writes: the bytes go to a hidden temporary file in the target's folder, are flushed
 * to disk, and the temporary is renamed over the target. rename(2) within one file system is
 * atomic, so a reader (or a user after Ctrl-C) sees either the old file or the complete new one,
 * never a partial file under the final name. The write is synchronous, so no signal handler can
 * run between writing and renaming.
 *
 * What may be written is decided by `output-path.ts` ({@link checkOutputPath}): regular files and
 * missing paths only; a symbolic link is followed and the file it points to is replaced; folders,
 * FIFOs, devices and files this user may not write are refused before anything is written.
 *
 * Temporaries are named `.<name>.<pid>.<random>.tmp`. A process killed between writing and
 * renaming (SIGKILL, power loss) leaves one behind; the next write to the same path removes the
 * stale ones: those whose process is gone, this process's own (its writes are synchronous, so
 * none is in flight), and any older than a day.
 * @packageDocumentation
 */
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkOutputPath, OutputPathError } from './output-path.js';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Create missing parent folders. Default true. */
  mkdirs?: boolean;
  /** File mode of a new file. Default 0o644; a replaced file keeps its own permission bits. */
  mode?: number;
  /** The option the path came from, named in error messages (default `--out`). */
  flag?: string;
}

const STALE_AGE_MS = 24 * 3600 * 1000;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Is process `pid` alive? (EPERM: alive, another user's.) */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the stale temporaries of earlier writes to `target` (see the module comment). Returns the
 * names removed. Errors are ignored: cleaning is best effort and never blocks a write.
 */
export function removeStaleTemporaries(target: string, now = Date.now()): string[] {
  const dir = dirname(target);
  const pattern = new RegExp(`^\\.${escapeRegExp(basename(target))}\\.(\\d+)\\.[a-z0-9]+\\.tmp$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const file = join(dir, name);
    try {
      const st = statSync(file);
      if (!st.isFile()) continue;
      if (pid === process.pid || !processAlive(pid) || now - st.mtimeMs > STALE_AGE_MS) {
        rmSync(file, { force: true });
        removed.push(name);
      }
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

/**
 * Write `data` to `path` atomically (temporary file + fsync + rename). Returns the absolute path
 * written (for a symbolic link: the file it points to). Throws {@link OutputPathError} for a path
 * the output policy refuses, before anything is written.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): string {
  const flag = opts.flag ?? '--out';
  const target = checkOutputPath(path, { flag });
  const dir = dirname(target);
  let old: Stats | undefined;
  try {
    old = statSync(target);
  } catch {
    old = undefined;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    if (opts.mkdirs ?? true) mkdirSync(dir, { recursive: true });
    removeStaleTemporaries(target);
    tmp = join(dir, `.${basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
    fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
    if (old) {
      fchmodSync(fd, old.mode & 0o7777);
      if (process.getuid?.() === 0) fchownSync(fd, old.uid, old.gid);
    }
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    if (tmp !== undefined) rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new OutputPathError(
      `cannot write ${target} (${e.code ?? e.message}); check the folder exists and is writable, or choose another ${flag}`,
      target,
    );
  }
  return target;
}
