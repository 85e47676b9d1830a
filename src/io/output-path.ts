/**
 * The output-path policy: what rediffuse agrees to write over, decided before any expensive work
 * (the commands call {@link checkOutputPath} before loading a model) and again by the atomic writer.
 *
 * - A missing path is fine when its nearest existing ancestor is a writable folder (missing
 *   folders are created at write time).
 * - An existing regular file is replaced only when this user may write it: `access(W_OK)` for
 *   ordinary users (the kernel's answer, ACLs included). Root passes every access check, so for
 *   root the file's mode bits decide: a file (or folder) with no write bit at all (e.g. 0444) is
 *   read-only and is not replaced. The atomic replacement keeps the old file's permission bits and,
 *   as root, its owner.
 * - A symbolic link is followed: the file it points to is replaced (the link stays a link), under
 *   the same rules; a dangling link, or one to anything but a regular file, is refused.
 * - A folder, FIFO, character or block device (`/dev/full`, `/dev/stdout` on a terminal or pipe)
 *   or socket is refused: the atomic writer renames a new regular file into place, which would
 *   replace the node instead of writing into it.
 * @packageDocumentation
 */
import { accessSync, constants, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** What a path must be: a file to replace or create, or a folder to write files into. */
export type OutputKind = 'file' | 'folder';

/** Options of {@link checkOutputPath}. */
export interface OutputPathOptions {
  /** A file (default) or a folder (e.g. bench's `--out`). */
  kind?: OutputKind;
  /** The option the path came from, named in the fix (default `--out`). */
  flag?: string;
}

/** An output path rediffuse refuses to write, with the reason and the fix in the message. */
export class OutputPathError extends Error {
  constructor(
    message: string,
    /** The absolute path as given. */
    readonly path: string,
  ) {
    super(message);
    this.name = 'OutputPathError';
  }
}

/** A word for what a non-regular file system node is. */
export function describeNode(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return st.isFile() ? 'a regular file' : 'not a regular file';
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** May this process write `path` (whose stats are `st`)? As root: some write bit must be set. */
function writable(path: string, st: Stats, folder: boolean): string | undefined {
  try {
    accessSync(path, folder ? constants.W_OK | constants.X_OK : constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EROFS' ? 'is on a read-only file system' : `is not writable by this user (${code ?? 'access denied'})`;
  }
  if (isRoot() && (st.mode & 0o222) === 0) {
    return `is read-only (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}; rediffuse does not override that even as root)`;
  }
  return undefined;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new OutputPathError(`cannot check ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, path);
  }
}

/**
 * Check that `path` can be written under the policy of this module, without writing anything.
 * Returns the absolute path that will be written: `path` itself, or the file a symbolic link at
 * `path` points to. Throws {@link OutputPathError} naming the path, what it is and the fix.
 */
export function checkOutputPath(path: string, opts: OutputPathOptions = {}): string {
  const kind = opts.kind ?? 'file';
  const flag = opts.flag ?? '--out';
  const given = resolve(path);
  const refuse = (what: string, fix: string) => new OutputPathError(`cannot write ${flag} ${given}: it ${what}; ${fix}`, given);
  if (kind === 'file' && (path.endsWith('/') || path.endsWith('\\') || path === '' || path === '.')) {
    throw refuse('names a folder, not a file', `pass a file name (e.g. ${resolve(given, 'rediffuse-samples.png')}), or choose another ${flag}`);
  }
  let target = given;
  let st = lstatOrUndefined(given);
  if (st?.isSymbolicLink()) {
    let real: Stats;
    try {
      real = statSync(given);
      target = realpathSync(given);
    } catch {
      throw refuse('is a symbolic link to a missing file', `remove the link or point it at a file, or choose another ${flag}`);
    }
    if (kind === 'file' && !real.isFile()) {
      throw refuse(
        `is a symbolic link to ${describeNode(real)}`,
        `rediffuse writes only regular files (it replaces them atomically); choose another ${flag}, e.g. a file name`,
      );
    }
    st = real;
  }
  if (st) {
    if (kind === 'folder') {
      if (!st.isDirectory()) throw refuse(`is ${describeNode(st)}, not a folder`, `pass a folder (existing or new), or choose another ${flag}`);
      const why = writable(target, st, true);
      if (why) throw refuse(why, `make it writable, or choose another ${flag}`);
      return target;
    }
    if (st.isDirectory())
      throw refuse('is a folder', `pass a file path inside it (e.g. ${resolve(target, 'rediffuse-samples.png')}), or choose another ${flag}`);
    if (!st.isFile()) {
      throw refuse(
        `is ${describeNode(st)}, not a regular file`,
        `rediffuse writes only regular files (it replaces them atomically, which would replace the device or pipe itself); choose another ${flag}, e.g. a file name`,
      );
    }
    const why = writable(target, st, false);
    if (why) throw refuse(why, `make it writable (chmod u+w), remove it, or choose another ${flag}`);
  }
  // The folder that will hold the new file (or the new folder): its nearest existing ancestor must
  // be a writable folder, since missing folders are created.
  let dir = kind === 'folder' && !st ? target : dirname(target);
  for (;;) {
    const dst = lstatOrUndefined(dir);
    if (dst) {
      const real = dst.isSymbolicLink() ? statOrUndefined(dir) : dst;
      if (!real || !real.isDirectory()) {
        throw refuse(
          `would go inside ${dir}, which is ${real ? describeNode(real) : 'a dangling symbolic link'}, not a folder`,
          `choose another ${flag}`,
        );
      }
      const why = writable(dir, real, true);
      if (why) throw new OutputPathError(`cannot write ${flag} ${given}: the folder ${dir} ${why}; make it writable, or choose another ${flag}`, given);
      return target;
    }
    const up = dirname(dir);
    if (up === dir) throw refuse('has no existing folder above it', `choose another ${flag}`);
    dir = up;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
