import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mixingWeight } from '../src/core/frdiff/score-mixing.js';
import { callKind, countCalls, layoutReusePolicy, uniformKeyframes, uniformPolicy, validateReusePolicy } from '../src/core/frdiff/reuse-policy.js';
import { withFeatureReuse, type FeatureReuseCapable } from '../src/core/frdiff/feature-reuse-model.js';
import { modelCallAt } from '../src/core/model.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { normalizeReusePoints } from '../src/model/feature-reuse-setup.js';

test('hard-sigmoid mixing weight: λ(r) = clip((T(r−b)+2)/4, 0, 1)', () => {
  assert.equal(mixingWeight(0.5), 0.5);
  assert.equal(mixingWeight(0), 0);
  assert.equal(mixingWeight(1), 1);
  // The ramp spans r ∈ [b − 2/T, b + 2/T].
  assert.ok(mixingWeight(0.5 - 2 / 30) < 1e-15);
  assert.equal(mixingWeight(0.5 - 2.01 / 30), 0);
  assert.ok(Math.abs(mixingWeight(0.5 + 1 / 30) - 0.75) < 1e-12);
  assert.ok(Math.abs(mixingWeight(0.3, { temperature: 10, bias: 0.2 }) - 0.75) < 1e-12);
});

test('worked call counts of docs/frdiff.md (N = 50, b = 0.5)', () => {
  // docs/frdiff.md: interval 2 → 25/14/11, 3 → 17/19/14, 4 → 13/21/16 (full/reuse/skipped).
  const expected: Record<number, [number, number, number]> = { 2: [25, 14, 11], 3: [17, 19, 14], 4: [13, 21, 16] };
  for (const [interval, [full, reuse, skip]] of Object.entries(expected)) {
    const c = countCalls(uniformPolicy(50, Number(interval)));
    assert.deepEqual([c.keyframe, c.reuse, c.skip], [full, reuse, skip], `interval ${interval}`);
  }
  // Without mixing every non-keyframe call is a reuse call.
  const pure = countCalls(uniformPolicy(50, 3, null));
  assert.deepEqual([pure.keyframe, pure.reuse, pure.skip], [17, 33, 0]);
});

test('uniform keyframes and call kinds', () => {
  assert.deepEqual(uniformKeyframes(10, 3), [0, 3, 6, 9]);
  const p = uniformPolicy(10, 2, { temperature: 30, bias: 0.5 });
  assert.equal(callKind(p, 0).kind, 'keyframe');
  assert.equal(callKind(p, 1).kind, 'skip');
  assert.equal(callKind(p, 9).kind, 'reuse');
  assert.equal(callKind(p, 9).weight, 1);
  assert.throws(() => uniformKeyframes(10, 0), /interval must be an integer ≥ 1/);
});

test('policy validation names the problem', () => {
  const ok = uniformPolicy(20, 2);
  assert.deepEqual(validateReusePolicy(JSON.parse(JSON.stringify(ok))), ok);
  assert.throws(() => validateReusePolicy({ ...ok, keyframes: [1, 2] }), /must start with 0/);
  assert.throws(() => validateReusePolicy({ ...ok, keyframes: [0, 4, 2] }), /strictly increasing/);
  assert.throws(() => validateReusePolicy({ ...ok, keyframes: [0, 20] }), /not a call index in 0…19/);
  assert.throws(() => validateReusePolicy({ ...ok, format: 'x' }), /"format" must be/);
  assert.throws(() => validateReusePolicy(ok, 30), /made for 20 model calls but this run makes 30/);
  assert.throws(() => validateReusePolicy({ ...ok, mixing: { temperature: -1, bias: 0.5 } }), /temperature must be a positive/);
  assert.throws(() => validateReusePolicy('nope'), /expected a JSON object/);
});

/**
 * A closed-form feature-reuse network for the arithmetic: keyframe calls return the exact ε of the
 * Gaussian model; reuse calls return the exact ε plus a known offset `delta` (standing in for the
 * error of stale features), so every mixed output has a value we can compute by hand.
 */
function offsetReuseNet(delta: number) {
  const schedule = discreteSchedule();
  const base = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [2] });
  let cached = false;
  const net: FeatureReuseCapable = {
    predictionType: 'epsilon',
    sampleShape: [2],
    predict: (x, call) => base.predict(x, call),
    async predictKeyframe(x, call) {
      cached = true;
      return base.predict(x, call);
    },
    async predictReuse(x, call) {
      if (!cached) throw new Error('no cache');
      const e = await base.predict(x, call);
      return e.map((v) => v + delta) as Float64Array;
    },
    clearCache() {
      cached = false;
    },
  };
  return { schedule, base, net };
}

test('withFeatureReuse: keyframe / mixed reuse / skip arithmetic and accounting', async () => {
  const { schedule, base, net } = offsetReuseNet(0.25);
  // 4 calls, keyframes {0}, mixing chosen so call 1 skips, call 2 mixes with w = 0.5, call 3 w = 1.
  const policy = { ...uniformPolicy(4, 4, { temperature: 8, bias: 0.5 }) };
  // λ(1/4) = clip((8(−0.25)+2)/4) = 0; λ(2/4) = 0.5; λ(3/4) = 1.
  const m = withFeatureReuse(net, { policy });
  const at = (t: number, index = 0) => modelCallAt(schedule, t, 1, index);
  const x0 = Float64Array.of(0.3, -0.7);
  const eKey = await base.predict(x0, at(900));
  assert.deepEqual(Array.from(await m.predict(x0, at(900, 0))), Array.from(eKey));
  const x1 = Float64Array.of(0.1, 0.2);
  assert.deepEqual(Array.from(await m.predict(x1, at(700, 1))), Array.from(eKey), 'skip returns ε_key');
  const x2 = Float64Array.of(-0.4, 0.9);
  const e2 = await base.predict(x2, at(500));
  const got2 = await m.predict(x2, at(500, 2));
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(got2[i]! - (0.5 * (e2[i]! + 0.25) + 0.5 * eKey[i]!)) < 1e-12);
  const x3 = Float64Array.of(0.05, 0.05);
  const e3 = await base.predict(x3, at(300));
  const got3 = await m.predict(x3, at(300, 3));
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(got3[i]! - (e3[i]! + 0.25)) < 1e-12);
  assert.equal(m.stats.keyframe, 1);
  assert.equal(m.stats.reuse, 2);
  assert.equal(m.stats.skip, 1);
  await assert.rejects(() => m.predict(x3, at(200, 4)), /more than the 4 model calls/);
  m.reset();
  assert.equal(m.stats.keyframe, 0);
  await m.predict(x0, at(900, 0));
  assert.equal(m.stats.keyframe, 1);
});

test('withFeatureReuse mixes in x̂0 space when asked (differs from ε mixing off the keyframe point)', async () => {
  const { schedule, net } = offsetReuseNet(0);
  const policy = uniformPolicy(2, 2, { temperature: 30, bias: 5 }); // call 1 always skips
  const mEps = withFeatureReuse(net, { policy });
  const mX0 = withFeatureReuse(net, { policy, mixSpace: 'sample' });
  const at = (t: number, index = 0) => modelCallAt(schedule, t, 1, index);
  const xa = Float64Array.of(0.3, -0.7);
  const xb = Float64Array.of(1.3, 0.4);
  await mEps.predict(xa, at(800, 0));
  await mX0.predict(xa, at(800, 0));
  const sEps = await mEps.predict(xb, at(600, 1));
  const sX0 = await mX0.predict(xb, at(600, 1));
  // Holding x̂0 fixed and re-deriving ε at (xb, 600): ε = (x − α·x̂0)/σ.
  const a8 = schedule.alpha(800),
    s8 = schedule.sigma(800),
    a6 = schedule.alpha(600),
    s6 = schedule.sigma(600);
  const eKey = await gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [2] }).predict(xa, at(800));
  for (let i = 0; i < 2; i++) {
    assert.ok(Math.abs(sEps[i]! - eKey[i]!) < 1e-12);
    const x0key = (xa[i]! - s8 * eKey[i]!) / a8;
    assert.ok(Math.abs(sX0[i]! - (xb[i]! - a6 * x0key) / s6) < 1e-12);
  }
});

test("layoutReusePolicy: an interval over the run's calls, a policy checked against them, mixing and points resolved once", () => {
  // interval: keyframes 0, M, 2M, … over N calls with the default mixing (T = 30, b = 0.5)
  assert.deepEqual(layoutReusePolicy({ keyframes: { interval: 2 } }, 5), {
    format: 'rediffuse-reuse-policy/1',
    calls: 5,
    keyframes: [0, 2, 4],
    mixing: { temperature: 30, bias: 0.5 },
    points: 'frdiff',
  });
  assert.equal(layoutReusePolicy({ keyframes: { interval: 2 }, mixing: null }, 5).mixing, null);
  assert.deepEqual(layoutReusePolicy({ keyframes: { interval: 3 }, mixing: { bias: 0.3 }, points: ['a', 'b'] }, 7).mixing, {
    temperature: 30,
    bias: 0.3,
  });
  const made: ReturnType<typeof uniformPolicy> = {
    format: 'rediffuse-reuse-policy/1',
    calls: 6,
    keyframes: [0, 4],
    mixing: { temperature: 20, bias: 0.7 },
    points: 'deepcache',
    meta: { solver: 'ddim' },
  };
  // a policy keeps its own mixing and points unless the choice overrides them (fields on top of its own)
  assert.deepEqual(layoutReusePolicy({ keyframes: { policy: made } }, 6).mixing, { temperature: 20, bias: 0.7 });
  assert.deepEqual(layoutReusePolicy({ keyframes: { policy: made }, mixing: { bias: 0.4 } }, 6).mixing, { temperature: 20, bias: 0.4 });
  assert.equal(layoutReusePolicy({ keyframes: { policy: made }, points: 'frdiff' }, 6).points, 'frdiff');
  assert.equal(layoutReusePolicy({ keyframes: { policy: { ...made, mixing: null } }, mixing: { bias: 0.6 } }, 6).mixing!.temperature, 30);
  assert.throws(() => layoutReusePolicy({ keyframes: { policy: made } }, 5), /made for 6 model calls but this run makes 5/);
  assert.throws(() => layoutReusePolicy({ keyframes: { interval: 2 }, mixing: { bias: 9 } }, 5), /bias must lie in \[-1, 2\]/);
});

test('normalizeReusePoints: one tensor name as inspect prints it is a list of one; preset names stay', () => {
  assert.deepEqual(normalizeReusePoints('/Add_11_output_0'), ['/Add_11_output_0']);
  assert.deepEqual(normalizeReusePoints(' /a , /b ,'), ['/a', '/b']);
  assert.equal(normalizeReusePoints('deepcache:2'), 'deepcache:2');
  assert.equal(normalizeReusePoints('residual'), 'residual');
  assert.deepEqual(normalizeReusePoints(['x']), ['x']);
  assert.throws(() => normalizeReusePoints(' , '), /name nothing: use frdiff, residual, deepcache/);
});
