/**
 * Checks shared by every solver: option objects (unknown keys, types, ranges) and timestep grids
 * (noisiest first, strictly decreasing noise level). Errors name the problem and the fix.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';

/** How one option is checked. */
export type OptionRule =
  | { readonly kind: 'number'; readonly min?: number; readonly max?: number; readonly integer?: boolean }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'enum'; readonly values: readonly string[] };

/** One rule per option key of `O`. */
export type OptionRules<O extends object> = { readonly [K in keyof O]-?: OptionRule };

function describeRule(rule: OptionRule): string {
  switch (rule.kind) {
    case 'boolean':
      return 'true or false';
    case 'enum':
      return rule.values.map((v) => `'${v}'`).join(' | ');
    case 'number': {
      const what = rule.integer ? 'an integer' : 'a number';
      if (rule.min !== undefined && rule.max !== undefined) return `${what} in [${rule.min}, ${rule.max}]`;
      if (rule.min !== undefined) return `${what} ≥ ${rule.min}`;
      if (rule.max !== undefined) return `${what} ≤ ${rule.max}`;
      return what;
    }
  }
}

function fits(rule: OptionRule, v: unknown): boolean {
  switch (rule.kind) {
    case 'boolean':
      return typeof v === 'boolean';
    case 'enum':
      return typeof v === 'string' && rule.values.includes(v);
    case 'number':
      return (
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (!rule.integer || Number.isInteger(v)) &&
        (rule.min === undefined || v >= rule.min) &&
        (rule.max === undefined || v <= rule.max)
      );
  }
}

/**
 * `given` merged over `defaults`, after checking that every key is known and every value fits its
 * rule. `undefined` values mean "use the default".
 */
export function resolveOptions<O extends object>(
  solver: string,
  given: Partial<O> | undefined,
  defaults: O,
  rules: OptionRules<O>,
): O {
  const out = { ...defaults };
  if (given === undefined || given === null) return out;
  if (typeof given !== 'object') {
    throw new TypeError(`options of solver "${solver}" must be an object, got ${typeof given}`);
  }
  const valid = Object.keys(rules);
  for (const [key, value] of Object.entries(given)) {
    if (!valid.includes(key)) {
      const list = valid.length > 0 ? valid.join(', ') : '(none: this solver takes no options)';
      throw new Error(`unknown option "${key}" for solver "${solver}": valid options are ${list}`);
    }
    if (value === undefined) continue;
    const rule = (rules as Record<string, OptionRule>)[key]!;
    if (!fits(rule, value)) {
      throw new RangeError(`option "${key}" of solver "${solver}" must be ${describeRule(rule)}, got ${String(value)}`);
    }
    (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

/**
 * Check that a grid runs from noisy to clean: at least two times, each a valid time of the
 * schedule, with log-SNR strictly increasing (the terminal may be the clean end point, λ = +∞).
 */
export function checkTimesteps(solver: string, schedule: NoiseSchedule, timesteps: readonly number[]): void {
  if (!Array.isArray(timesteps) || timesteps.length < 2) {
    throw new RangeError(
      `solver "${solver}" needs a grid of at least 2 times (start and terminal), got ${timesteps?.length ?? 0}`,
    );
  }
  let prev = -Infinity;
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i]!;
    if (typeof t !== 'number' || Number.isNaN(t)) throw new TypeError(`timesteps[${i}] is not a number (${String(t)})`);
    const l = schedule.lambda(t);
    if (!(l > prev)) {
      throw new RangeError(
        `timesteps must go from noisy to clean with strictly decreasing noise level, but timesteps[${i - 1}] = ` +
          `${timesteps[i - 1]} and timesteps[${i}] = ${t} do not: pass the grid noisiest first, without repeats`,
      );
    }
    prev = l;
  }
}

/**
 * The most steps M ≥ 1 with `callsForSteps(M) ≤ nfe`, for a call count that grows with M.
 * Throws when `nfe` is not an integer ≥ 1 or when even one step costs more than `nfe` calls.
 */
export function maxStepsWithin(solver: string, nfe: number, callsForSteps: (steps: number) => number): number {
  if (!Number.isInteger(nfe) || nfe < 1) {
    throw new RangeError(`the NFE budget must be an integer ≥ 1, got ${nfe}`);
  }
  if (callsForSteps(1) > nfe) {
    throw new RangeError(
      `solver "${solver}" needs ${callsForSteps(1)} model calls for one step, more than the budget of ${nfe}: raise the NFE or pick another solver`,
    );
  }
  let m = 1;
  while (callsForSteps(m + 1) <= nfe) m++;
  return m;
}
