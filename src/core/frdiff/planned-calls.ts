/**
 * How many model calls a sampling run will make, read from its plan: the solver spec (or PFDiff
 * around it) lays out the grid and the exact call count before the run (`SolverSpec.plan`), so a
 * reuse policy over the call indices 0…N−1 is laid out from the same rules the run follows.
 * @packageDocumentation
 */
import { planSample, type SampleOptions } from '../sample.js';

/** The number of model calls `sample(options)` makes (synchronous; throws on bad options). */
export function planCalls(options: SampleOptions): number {
  return planSample(options).calls;
}

/** The number of model calls `sample(options)` makes (options as for the real run); rejects on bad options. */
export async function plannedCalls(options: SampleOptions): Promise<number> {
  return planCalls(options);
}
