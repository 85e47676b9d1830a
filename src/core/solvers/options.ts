/**
 * The one option-rule language of the solvers: every solver declares its options as rules with
 * defaults, and {@link resolveOptions} checks a given object against them. Errors share one
 * wording and one class: `TypeError` when the options are not an object, `RangeError` for an
 * unknown key or a value outside its rule; each message names the solver, the option, the allowed
 * values and the fix.
 * @packageDocumentation
 */

/** How one option is checked; `doc` is the one-line description listed when a key is unknown. */
export type OptionRule =
  | {
      readonly kind: 'number';
      readonly doc: string;
      readonly min?: number;
      readonly max?: number;
      /** The lower bound is excluded (the option must be > min). */
      readonly minExclusive?: boolean;
      readonly integer?: boolean;
    }
  | { readonly kind: 'boolean'; readonly doc: string }
  | { readonly kind: 'enum'; readonly doc: string; readonly values: readonly string[] }
  /** A list of integers in [min, max]. */
  | { readonly kind: 'integers'; readonly doc: string; readonly min?: number; readonly max?: number };

/** One rule per option key of `O`. */
export type OptionRules<O extends object> = { readonly [K in keyof O]-?: OptionRule };

/** The options a solver takes: a rule and a default per key (`undefined` where the default depends on other settings). */
export interface OptionSchema<O extends object> {
  readonly defaults: O;
  readonly rules: OptionRules<O>;
}

function bounds(min: number | undefined, max: number | undefined, minExclusive = false): string {
  if (min !== undefined && max !== undefined) return ` in ${minExclusive ? '(' : '['}${min}, ${max}]`;
  if (min !== undefined) return minExclusive ? ` > ${min}` : ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

/** The allowed values of a rule, in words (e.g. `an integer in [1, 4]`, `one of 'heun', 'euler'`). */
export function describeRule(rule: OptionRule): string {
  switch (rule.kind) {
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${rule.values.map((v) => `'${v}'`).join(', ')}`;
    case 'number':
      return `${rule.integer ? 'an integer' : 'a number'}${bounds(rule.min, rule.max, rule.minExclusive)}`;
    case 'integers':
      return `a list of integers${bounds(rule.min, rule.max)}`;
  }
}

function inRange(v: number, min: number | undefined, max: number | undefined, minExclusive = false): boolean {
  return (min === undefined || (minExclusive ? v > min : v >= min)) && (max === undefined || v <= max);
}

function fits(rule: OptionRule, v: unknown): boolean {
  switch (rule.kind) {
    case 'boolean':
      return typeof v === 'boolean';
    case 'enum':
      return typeof v === 'string' && rule.values.includes(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) && (!rule.integer || Number.isInteger(v)) && inRange(v, rule.min, rule.max, rule.minExclusive);
    case 'integers':
      return Array.isArray(v) && v.every((e) => Number.isInteger(e) && inRange(e as number, rule.min, rule.max));
  }
}

/** A value as the messages print it. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return JSON.stringify(v);
  return String(v);
}

/**
 * Check one option value against its rule (`undefined` passes: it means "the default"). Throws a
 * `RangeError` naming the solver, the option, the allowed values and the fix.
 */
export function checkOption(solver: string, key: string, rule: OptionRule, value: unknown, fallback?: unknown): void {
  if (value === undefined || fits(rule, value)) return;
  const allowed = describeRule(rule);
  const fix = fallback === undefined ? `pass ${allowed} or leave it out` : `pass ${allowed} or leave it out for the default ${showValue(fallback)}`;
  throw new RangeError(`option "${key}" of solver "${solver}" must be ${allowed}, got ${showValue(value)}: ${fix}`);
}

/**
 * `given` merged over the schema's defaults, after checking that every key is known and every
 * value fits its rule. `undefined` values mean "use the default".
 */
export function resolveOptions<O extends object>(solver: string, given: Partial<O> | undefined, schema: OptionSchema<O>): O {
  const out = { ...schema.defaults };
  if (given === undefined || given === null) return out;
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw new TypeError(
      `options of solver "${solver}" must be an object, got ${Array.isArray(given) ? 'an array' : typeof given}: pass e.g. {} or leave them out`,
    );
  }
  const rules = schema.rules as Readonly<Record<string, OptionRule>>;
  for (const [key, value] of Object.entries(given)) {
    const rule = Object.prototype.hasOwnProperty.call(rules, key) ? rules[key] : undefined;
    if (!rule) {
      const valid = Object.entries(rules).map(([k, r]) => `${k} (${r.doc})`);
      throw new RangeError(
        valid.length > 0
          ? `unknown option "${key}" for solver "${solver}": valid options are ${valid.join('; ')}`
          : `unknown option "${key}" for solver "${solver}": this solver takes no options; drop "${key}"`,
      );
    }
    if (value === undefined) continue;
    checkOption(solver, key, rule, value, (schema.defaults as Record<string, unknown>)[key]);
    (out as Record<string, unknown>)[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
  }
  return out;
}
