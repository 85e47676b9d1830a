/**
 * Errors the command line reports as one line on stderr with a chosen exit code, and the parsers
 * of option values (each throws a {@link CliError} that names the option and the fix).
 * @packageDocumentation
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { parseKH } from '../core/index.js';

/** Exit code for wrong input or a failed run. */
export const EXIT_FAILURE = 1;
/** Exit code after Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** An error meant for the user: printed as `rediffuse: <message>` and ended with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Commander argument parser: an integer within [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const v = Number(value);
    if (!/^[-+]?\d+$/.test(value.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`expected an integer${max < Number.MAX_SAFE_INTEGER ? ` in ${min}..${max}` : ` ≥ ${min}`}, got "${value}".`);
    }
    return v;
  };
}

/**
 * Commander argument parser of `--threads`: an integer from 1 to the number of cores this process
 * may run on (`os.availableParallelism()`). More intra-op threads than cores only adds contention
 * (measured: `--threads 1000` made two model calls take 58 s), so a larger value is refused, not
 * clamped: the run would not be the one asked for.
 */
export function threadsArg(cores: number = availableParallelism()): (value: string) => number {
  return (value: string) => {
    const v = Number(value);
    if (!/^[-+]?\d+$/.test(value.trim()) || !Number.isSafeInteger(v) || v < 1) {
      throw new InvalidArgumentError(`expected an integer in 1..${cores} (the cores of this machine), got "${value}".`);
    }
    if (v > cores) {
      throw new InvalidArgumentError(
        `${v} threads is more than the ${cores} core${cores === 1 ? '' : 's'} this process can use (os.availableParallelism()); ` +
          `pass at most --threads ${cores}, or leave --threads out for onnxruntime's choice.`,
      );
    }
    return v;
  };
}

/** Commander argument parser: a finite number within [min, max]. */
export function numberArg(min = -Infinity, max = Infinity): (value: string) => number {
  return (value: string) => {
    const v = Number(value);
    if (value.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
      const range = min > -Infinity && max < Infinity ? ` in [${min}, ${max}]` : min > -Infinity ? ` ≥ ${min}` : '';
      throw new InvalidArgumentError(`expected a number${range}, got "${value}".`);
    }
    return v;
  };
}

/** Commander argument parser of PFDiff's `k_h` (e.g. `2_1`), by core's {@link parseKH}. */
export function parsePfdiff(value: string): { k: number; h: number } {
  try {
    return parseKH(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}

/** Parse a solver option `key=value` (value read as JSON when it parses, else as a string). */
export function parseSolverOption(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value (e.g. solverType=heun), got "${value}".`);
  const key = value.slice(0, eq).trim();
  const raw = value.slice(eq + 1).trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = raw;
  }
  return { ...previous, [key]: parsed };
}
