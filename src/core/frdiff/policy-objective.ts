/**
 * Auto-FR's objective (FRDiff §4.3): the mean squared error between the final sample of a run that
 * follows a reuse policy and the final sample of the full-compute run from the same initial noise
 * and conditioning, MSE = (1/(B·D)) Σ (x_FR − x_full)².
 * @packageDocumentation
 */
import { sample, type SampleOptions } from '../sample.js';
import { meanSquaredError, type NumArray } from '../tensor.js';
import type { PredictionType } from '../model.js';
import { withFeatureReuse, type FeatureReuseCapable, type ReuseStats } from './feature-reuse-model.js';
import type { ReusePolicy } from './reuse-policy.js';

/** One evaluated policy. */
export interface PolicyEvaluation {
  /** MSE of the final samples against the full-compute reference. */
  mse: number;
  /** Per-kind call counts and ms of the run. */
  stats: ReuseStats;
  /** Final samples. */
  samples: NumArray;
}

/** Options of {@link createPolicyObjective}. */
export interface PolicyObjectiveOptions {
  /** The networks by reuse-points name (`frdiff`, `residual`, …); a policy picks one by its `points`. */
  nets: ReadonlyMap<string, FeatureReuseCapable>;
  /** The run: schedule, solver, steps/nfe, guidance, cond, batch, seed (the `model` is replaced). */
  run: Omit<SampleOptions, 'model'>;
  /** Final samples of the full-compute run with the same options. */
  reference: NumArray;
  /** Space in which outputs are mixed (default `epsilon`). */
  mixSpace?: PredictionType;
}

/** The name a policy's `points` selects in the `nets` map (`frdiff` when absent). */
export function pointsKey(points: ReusePolicy['points']): string {
  if (points === undefined) return 'frdiff';
  return Array.isArray(points) ? points.join(',') : points;
}

/** Full-compute final samples of `run` on `net` (every call a keyframe). */
export async function fullComputeSamples(net: FeatureReuseCapable, run: Omit<SampleOptions, 'model'>): Promise<NumArray> {
  const r = await sample({
    ...run,
    model: { predictionType: net.predictionType, sampleShape: net.sampleShape, predict: (...a) => net.predictKeyframe(...a) },
  });
  return r.samples;
}

/** `evaluate(policy)` → final-sample MSE against the reference (see the module comment). */
export function createPolicyObjective(opts: PolicyObjectiveOptions): (policy: ReusePolicy) => Promise<PolicyEvaluation> {
  return async (policy) => {
    const key = pointsKey(policy.points);
    const net = opts.nets.get(key);
    if (!net) throw new Error(`no network for reuse points "${key}": load one (have ${[...opts.nets.keys()].join(', ')})`);
    const model = withFeatureReuse(net, { policy, ...(opts.mixSpace ? { mixSpace: opts.mixSpace } : {}) });
    model.reset();
    const r = await sample({ ...opts.run, model });
    return { mse: meanSquaredError(r.samples, opts.reference), stats: { ...model.stats }, samples: r.samples };
  };
}
