/**
 * The one clock of the library: milliseconds from a monotonic source, for call and run timings.
 * @packageDocumentation
 */

/**
 * Milliseconds since an arbitrary origin: `performance.now()` (monotonic, sub-millisecond) where
 * the runtime has it (Node ≥ 16, browsers, workers), else `Date.now()`.
 */
export function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
