/**
 * How many model calls a sampling run will make, found by running it on a free stand-in.
 *
 * A reuse policy is laid out over the call indices 0…N−1 of a run, and N depends on the solver,
 * its grid, the step plan and PFDiff. Rather than re-derive each rule, the run is made once with a
 * stand-in network that returns zeros (batch 1, no guidance: guidance batches cond + uncond into
 * one call, so it does not change N) and its calls are counted.
 * @packageDocumentation
 */
import type { DiffusionModel } from '../model.js';
import { sample, type SampleOptions } from '../sample.js';

/** The number of model calls `sample(options)` makes (options as for the real run). */
export async function plannedCalls(options: SampleOptions): Promise<number> {
  const { model } = options;
  let calls = 0;
  const stand: DiffusionModel = {
    predictionType: model.predictionType,
    sampleShape: model.sampleShape,
    async predict(x) {
      calls++;
      return x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
    },
  };
  const { guidance: _g, cond: _c, onStep: _o, signal: _s, initialNoise: _n, ...rest } = options;
  await sample({ ...rest, model: stand, batch: 1 });
  return calls;
}
