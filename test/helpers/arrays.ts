/**
 * Array comparisons shared by the tests.
 * @packageDocumentation
 */
import assert from 'node:assert/strict';

/** max_i |a_i − b_i|; the arrays must have the same length (asserted). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `arrays of different lengths: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
