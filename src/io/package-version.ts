/**
 * The version of the rediffuse package, read once from its package.json (Node only): what
 * `rediffuse --version` prints and what bench results record.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** `version` of the package.json two folders above this file (src/io or dist/io), else `unknown`. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    cached = 'unknown';
  }
  return cached;
}
