/**
 * The one timing harness of rediffuse (the bench's call timings, Auto-FR's measured call costs, the
 * bench's paired wall times): tasks run interleaved — one round runs each task once, in order — so
 * that drift in machine load hits all of them alike; the first {@link TIMING_WARMUP_ROUNDS} rounds
 * are untimed (they pay for session start-up, allocation and caches), and each task's figure is the
 * median of its timed rounds.
 * @packageDocumentation
 */

import { now } from './clock.js';

/** Untimed rounds before the timed ones. */
export const TIMING_WARMUP_ROUNDS = 2;

/** The median of `values` (the mean of the two middle values for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** What {@link timeInterleaved} returns: per task, the ms of each timed round and their median. */
export interface InterleavedTiming {
  ms: number[][];
  medianMs: number[];
}

/**
 * Run `tasks` in interleaved rounds ({@link TIMING_WARMUP_ROUNDS} untimed, then `repeats` timed)
 * and return each task's round times and median (see the module notes).
 */
export async function timeInterleaved(
  tasks: readonly (() => Promise<unknown>)[],
  repeats: number,
  clock: () => number = now,
): Promise<InterleavedTiming> {
  if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError(`timing repeats must be an integer ≥ 1, got ${repeats}`);
  const ms = tasks.map(() => [] as number[]);
  for (let round = 0; round < TIMING_WARMUP_ROUNDS + repeats; round++) {
    for (let i = 0; i < tasks.length; i++) {
      const t0 = clock();
      await tasks[i]!();
      if (round >= TIMING_WARMUP_ROUNDS) ms[i]!.push(clock() - t0);
    }
  }
  return { ms, medianMs: ms.map(median) };
}
