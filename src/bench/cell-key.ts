/**
 * Stable keys for benchmark cells and reference runs: SHA-256 of a canonical JSON encoding (object
 * keys sorted, no whitespace) of everything that determines the result — the cell's settings, the
 * seed set, the model file's hash, the reference run and the metric settings. Equal inputs give equal
 * keys across runs and machines, so a stored cell is found again after an interruption.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CellSpec, FrSpec, MetricSpec, ReferenceRunSpec, SeedSet } from './grid.js';

/**
 * Version of the key recipe; bump it when a change makes old stored cells invalid. 2: trajectory
 * error is measured against a reference that starts where the cell starts, and the bundled cards
 * moved from `leading` to `trailing` spacing (the card is not part of the key), so v1 cells differ.
 */
export const CELL_KEY_VERSION = 2;

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError(`canonicalJson: ${value} has no JSON form`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of a file's bytes (the model identity in every key). */
export function fileSha256(path: string): string {
  return sha256Hex(readFileSync(path));
}

/** A feature-reuse setting with its policy file's content hash (so an edited policy is a new cell). */
function frIdentity(fr: FrSpec): unknown {
  if (fr.kind !== 'policy') return fr;
  let hash = 'missing';
  try {
    hash = fileSha256(fr.file);
  } catch {
    /* the runner reports the missing file */
  }
  return { kind: 'policy', sha256: hash };
}

/** Everything a cell's result depends on besides its own settings. */
export interface KeyContext {
  modelHash: string;
  seeds: SeedSet;
  reference: ReferenceRunSpec;
  metrics: MetricSpec;
}

/** The key of a cell: 24 hex digits of SHA-256 over its canonical description. */
export function cellKey(cell: CellSpec, ctx: KeyContext): string {
  const m = ctx.metrics;
  return sha256Hex(
    canonicalJson({
      v: CELL_KEY_VERSION,
      cell: { ...cell, fr: frIdentity(cell.fr) },
      model: ctx.modelHash,
      seeds: ctx.seeds,
      reference: m.trajectory ? ctx.reference : null,
      metrics: { fd: m.fd, accuracy: m.accuracy, kid: m.kid, trajectory: m.trajectory },
    }),
  ).slice(0, 24);
}

/** The key of a reference run: model, guidance, seeds, the reference solver/NFE and the start time of its grid. */
export function referenceKey(guidance: number, ctx: Pick<KeyContext, 'modelHash' | 'seeds' | 'reference'>, start?: number): string {
  return sha256Hex(canonicalJson({ v: CELL_KEY_VERSION, ref: ctx.reference, guidance, start, model: ctx.modelHash, seeds: ctx.seeds })).slice(0, 24);
}
