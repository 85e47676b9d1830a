/**
 * Option checks of the DPM-Solver family and UniPC, whose options include lists (per-interval
 * orders, corrector-free steps) that `validation.ts`'s scalar rules do not cover. Every failure
 * names the problem and the fix.
 * @packageDocumentation
 */

/**
 * Throw if `options` has a key that is not in `valid` (a map from key to a one-line description).
 * The message lists every valid key, so a typo is fixed at a glance.
 */
export function checkOptionKeys(solver: string, options: object | undefined, valid: Readonly<Record<string, string>>): void {
  if (options === undefined || options === null) return;
  if (typeof options !== 'object') throw new TypeError(`${solver}: options must be an object, got ${typeof options}`);
  for (const key of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(valid, key)) {
      const list = Object.entries(valid)
        .map(([k, d]) => `${k} (${d})`)
        .join('; ');
      throw new RangeError(`${solver}: unknown option "${key}". Valid options: ${list}`);
    }
  }
}

/** A boolean option, or its default. */
export function booleanOption(solver: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${solver}: option ${name} must be true or false, got ${String(value)}`);
  return value;
}

/** A numeric option in [lo, hi] (bounds inclusive unless `open`), or its default. */
export function numberOption(
  solver: string,
  name: string,
  value: unknown,
  fallback: number,
  lo: number,
  hi: number,
  open: { lo?: boolean; hi?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const v = value as number;
  const okLo = open.lo ? v > lo : v >= lo;
  const okHi = open.hi ? v < hi : v <= hi;
  if (typeof value !== 'number' || !Number.isFinite(v) || !okLo || !okHi) {
    const range = `${open.lo ? '(' : '['}${lo}, ${hi}${open.hi ? ')' : ']'}`;
    throw new RangeError(`${solver}: option ${name} must be a number in ${range}, got ${String(value)}`);
  }
  return v;
}

/** An integer option in [lo, hi], or its default. */
export function integerOption(solver: string, name: string, value: unknown, fallback: number, lo: number, hi: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
    throw new RangeError(`${solver}: option ${name} must be an integer from ${lo} to ${hi}, got ${String(value)}`);
  }
  return value;
}

/** A string option from a fixed set, or its default. */
export function choiceOption<T extends string>(solver: string, name: string, value: unknown, fallback: T, choices: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new RangeError(`${solver}: option ${name} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${String(value)}`);
  }
  return value as T;
}
