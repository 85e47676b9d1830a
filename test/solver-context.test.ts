/**
 * The solver context: model-call accounting, output checks, x̂0 post-processing (clip_sample,
 * dynamic thresholding), seeded noise and aborting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSolverContext, dynamicThreshold } from '../src/core/solver-context.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { gaussianBatch } from '../src/core/rng.js';
import type { DiffusionModel, ModelCall, PredictionType } from '../src/core/model.js';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { classifierFreeGuidance } from '../src/core/guidance.js';

const sched = discreteSchedule();

/** A model that returns a fixed output. */
function constantModel(out: Float32Array | Float64Array, predictionType: PredictionType = 'epsilon'): DiffusionModel {
  return { predictionType, sampleShape: [out.length], predict: async () => out };
}

test('evaluate converts every prediction type to the same ε̂ and x̂0, and counts calls', async () => {
  const x = Float64Array.from([0.3, -1.2, 2.0, 0.1]);
  const results = [];
  for (const predictionType of ['epsilon', 'sample', 'v_prediction'] as const) {
    const model = gaussianModel({ schedule: sched, mean: 0.5, std: 0.5, sampleShape: [2], predictionType });
    const ctx = createSolverContext({ model, schedule: sched, batch: 2, precision: 'float64' });
    results.push(await ctx.evaluate(x, 400));
    await ctx.evaluate(x, 300);
    assert.equal(ctx.calls, 2);
    assert.equal(ctx.callTimes.length, 2);
  }
  for (const r of results.slice(1)) {
    for (let i = 0; i < x.length; i++) {
      assert.ok(Math.abs(r.eps[i]! - results[0]!.eps[i]!) < 1e-12);
      assert.ok(Math.abs(r.x0[i]! - results[0]!.x0[i]!) < 1e-12);
    }
  }
});

test('evaluate hands the model one call descriptor per call: schedule and model time, α, σ, index, batch', async () => {
  const vp = continuousVpSchedule({}); // network time 999·t, so model time and schedule time differ
  const seen: ModelCall[] = [];
  const model: DiffusionModel = {
    predictionType: 'epsilon',
    sampleShape: [2],
    predict: async (x, call) => (seen.push(call), new Float64Array(x.length)),
  };
  const ctx = createSolverContext({ model, schedule: vp, batch: 3, precision: 'float64' });
  await ctx.evaluate(new Float64Array(6), 0.8);
  await ctx.evaluate(new Float64Array(6), 0.25);
  assert.deepEqual(seen, [
    { t: 0.8, modelTime: 999 * 0.8, alpha: vp.alpha(0.8), sigma: vp.sigma(0.8), index: 0, batch: 3 },
    { t: 0.25, modelTime: 999 * 0.25, alpha: vp.alpha(0.25), sigma: vp.sigma(0.25), index: 1, batch: 3 },
  ]);
  assert.ok(Math.abs(seen[0]!.alpha - Math.exp(-0.25 * 0.64 * 19.9 - 0.5 * 0.8 * 0.1)) < 1e-15, 'α of the VP SDE at t = 0.8');
  // guidance passes the same call on with the batch doubled ([uncond; cond])
  seen.length = 0;
  const guided = classifierFreeGuidance(model, { scale: 2, nullLabel: 9 });
  const gctx = createSolverContext({ model: guided, schedule: vp, batch: 3, precision: 'float64', cond: { classLabels: [1, 2, 3] } });
  await gctx.evaluate(new Float64Array(6), 0.5);
  await gctx.evaluate(new Float64Array(6), 0.4);
  assert.deepEqual(
    seen.map((c) => [c.t, c.index, c.batch]),
    [
      [0.5, 0, 6],
      [0.4, 1, 6],
    ],
  );
});

test('a float32 model output is converted to the float64 state precision', async () => {
  const ctx = createSolverContext({ model: constantModel(Float32Array.from([0.5, 0.25])), schedule: sched, batch: 1, precision: 'float64' });
  const r = await ctx.evaluate(Float64Array.from([1, 1]), 10);
  assert.ok(r.eps instanceof Float64Array && r.x0 instanceof Float64Array);
});

test('NaN, Infinity and wrong output lengths from the model are errors naming the fix', async () => {
  const x = new Float32Array(2);
  const nan = createSolverContext({ model: constantModel(Float32Array.from([0, NaN])), schedule: sched, batch: 1 });
  await assert.rejects(nan.evaluate(x, 500), /model returned NaN at t=500 .*check the model file\/inputs/);
  const inf = createSolverContext({ model: constantModel(Float32Array.from([Infinity, 0])), schedule: sched, batch: 1 });
  await assert.rejects(inf.evaluate(x, 500), /model returned Infinity at t=500/);
  const short: DiffusionModel = { predictionType: 'epsilon', sampleShape: [2], predict: async () => new Float32Array(1) };
  const ctx = createSolverContext({ model: short, schedule: sched, batch: 1 });
  await assert.rejects(ctx.evaluate(x, 500), /model returned 1 values at t=500, expected batch 1 × 2/);
  await assert.rejects(ctx.evaluate(new Float32Array(3), 500), /state has 3 values, expected batch 1 × 2/);
});

test('clipSample clamps x̂0 and recomputes ε̂ so that x = α·x̂0 + σ·ε̂', async () => {
  const t = 200;
  const model = constantModel(Float64Array.from([3, -0.5, -4]), 'sample');
  const ctx = createSolverContext({ model, schedule: sched, batch: 1, precision: 'float64', clipSample: 1 });
  const x = Float64Array.from([0.2, 0.4, -0.1]);
  const r = await ctx.evaluate(x, t);
  assert.deepEqual(Array.from(r.x0), [1, -0.5, -1]);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(sched.alpha(t) * r.x0[i]! + sched.sigma(t) * r.eps[i]! - x[i]!) < 1e-14);
});

test('dynamic thresholding: per-sample quantile, clamped to [1, maxValue], then rescaled', () => {
  const x0 = Float64Array.from([0.5, -2, 3, 1, /* sample 2 */ 0.2, -0.4, 0.9, 0.1]);
  // ratio 1: s = max|x0| = 3 → clamped to 2; sample 2: s = 0.9 → clamped to 1 (left unchanged).
  assert.deepEqual(Array.from(dynamicThreshold(x0, 2, { ratio: 1, maxValue: 2 })), [0.25, -1, 1, 0.5, 0.2, -0.4, 0.9, 0.1]);
  // ratio 0.5 on |x0| sorted [0.5, 1, 2, 3]: position 1.5 → s = 1.5.
  const half = dynamicThreshold(x0.subarray(0, 4), 1, { ratio: 0.5, maxValue: 10 });
  const want = [0.5 / 1.5, -1, 1, 1 / 1.5];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(half[i]! - want[i]!) < 1e-15);
});

test('thresholding takes precedence over clipSample, and bad settings are rejected', async () => {
  const model = constantModel(Float64Array.from([3, -0.5]), 'sample');
  const ctx = createSolverContext({ model, schedule: sched, batch: 1, precision: 'float64', clipSample: 1, thresholding: { ratio: 1, maxValue: 3 } });
  const r = await ctx.evaluate(Float64Array.from([0, 0]), 100);
  assert.deepEqual(Array.from(r.x0), [1, -0.5 / 3]);
  assert.throws(() => createSolverContext({ model, schedule: sched, batch: 1, clipSample: 0 }), /clipSample must be a positive range/);
  assert.throws(() => createSolverContext({ model, schedule: sched, batch: 1, thresholding: { ratio: 1.5, maxValue: 1 } }), /ratio must lie in \(0, 1\]/);
  assert.throws(() => createSolverContext({ model, schedule: sched, batch: 1, thresholding: { ratio: 0.9, maxValue: 0.5 } }), /maxValue must be ≥ 1/);
  assert.throws(() => createSolverContext({ model, schedule: sched, batch: 0 }), /batch must be an integer ≥ 1/);
});

test('solver noise is seeded per sample: independent of batch size, distinct from the initial noise', () => {
  const model = gaussianModel({ schedule: sched, sampleShape: [3] });
  const a = createSolverContext({ model, schedule: sched, batch: 4, seed: 42, precision: 'float64' });
  const b = createSolverContext({ model, schedule: sched, batch: 2, seed: 42, precision: 'float64' });
  const a1 = a.noise();
  const a2 = a.noise();
  const b1 = b.noise();
  const b2 = b.noise();
  assert.deepEqual(b1, a1.subarray(0, 6));
  assert.deepEqual(b2, a2.subarray(0, 6));
  assert.notDeepEqual(a1, a2);
  assert.notDeepEqual(a1, gaussianBatch(42, 4, 3, 'float64'));
  const other = createSolverContext({ model, schedule: sched, batch: 4, seed: 43, precision: 'float64' });
  assert.notDeepEqual(other.noise(), a1);
});

test('an aborted signal stops the run with an AbortError', async () => {
  const model = gaussianModel({ schedule: sched, sampleShape: [2] });
  const ac = new AbortController();
  const ctx = createSolverContext({ model, schedule: sched, batch: 1, signal: ac.signal, onStep: () => ac.abort() });
  const x = new Float32Array(2);
  await ctx.evaluate(x, 10);
  await assert.rejects(ctx.step({ step: 0, steps: 2, t: 5, x }), (e: Error) => e.name === 'AbortError' && /aborted/.test(e.message));
  await assert.rejects(ctx.evaluate(x, 5), { name: 'AbortError' });
  assert.equal(ctx.calls, 1);
});
