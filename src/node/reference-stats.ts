/**
 * Node.js-only: read the reference statistics JSON (and the binary file it names) from disk; by
 * default the file shipped in the package's models/ folder. The format is validated by the
 * browser-safe `parseReferenceStatistics` of `src/metrics/reference-stats.ts`.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  parseReferenceStatistics,
  REFERENCE_STATISTICS_FILE,
  type ReferenceStatistics,
  type ReferenceStatisticsOptions,
} from '../metrics/reference-stats.js';
import { packageRoot } from './load-model.js';

/**
 * Read and validate a statistics JSON file (and the binary file it names, from the same folder);
 * by default `models/fashion-test-stats.json` under the package root.
 */
export async function loadReferenceStatistics(
  path: string = join(packageRoot(), 'models', REFERENCE_STATISTICS_FILE),
  options: Omit<ReferenceStatisticsOptions, 'source'> = {},
): Promise<ReferenceStatistics> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`loadReferenceStatistics: ${path} not found; pass the path of the shipped fashion-test-stats.json`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`loadReferenceStatistics: ${path} is not valid JSON (${(e as Error).message}); restore the shipped file`, { cause: e });
  }
  let binary: Uint8Array | undefined;
  const bin = (json as Record<string, unknown> | null)?.['binary'];
  if (typeof bin === 'object' && bin !== null && typeof (bin as Record<string, unknown>)['file'] === 'string') {
    const binPath = join(dirname(path), (bin as Record<string, string>)['file']!);
    try {
      binary = await readFile(binPath);
    } catch {
      throw new Error(`loadReferenceStatistics: ${path} names ${binPath}, which is missing; restore the shipped .bin file`);
    }
  }
  return parseReferenceStatistics(json, binary, { ...options, source: path });
}
