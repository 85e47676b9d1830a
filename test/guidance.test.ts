/**
 * Classifier-free guidance: one batched [uncond; cond] call = one NFE, the guided output is the
 * linear combination in the model's own prediction type, null label / explicit uncond, guidance
 * rescale arithmetic, and errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifierFreeGuidance, MAX_GUIDANCE_SCALE, rescaleGuided } from '../src/core/guidance.js';
import { modelCallAt, type Conditioning, type DiffusionModel, type ModelCall, type PredictionType } from '../src/core/model.js';
import { toX0 } from '../src/core/prediction.js';
import { sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import type { NumArray } from '../src/core/tensor.js';

const schedule = discreteSchedule({});
const NULL = 10;
/** The descriptor of a call at time `t` (model time = schedule time on a discrete schedule) on `batch` samples. */
const at = (t: number, batch: number): ModelCall => modelCallAt(schedule, t, batch);

/**
 * A closed-form conditional model: out_i = 0.5·x_i + 0.001·t + label + 0.1·i (per sample, the
 * label of that sample; the null label acts as 0). It records every call.
 */
function labelModel(type: PredictionType = 'epsilon') {
  const calls: { batch: number; labels: readonly number[] | undefined; t: number }[] = [];
  const d = 3;
  const model: DiffusionModel = {
    predictionType: type,
    sampleShape: [d],
    async predict(x: NumArray, call: ModelCall, cond?: Conditioning) {
      const { batch, modelTime: t } = call;
      calls.push({ batch, labels: cond?.classLabels, t });
      const out = new Float64Array(x.length);
      for (let b = 0; b < batch; b++) {
        const l = cond?.classLabels?.[b] ?? NULL;
        const label = l === NULL ? 0 : l;
        for (let i = 0; i < d; i++) out[b * d + i] = 0.5 * x[b * d + i]! + 0.001 * t + label + 0.1 * i;
      }
      return out;
    },
  };
  return { model, calls };
}

describe('classifier-free guidance wrapper', () => {
  it('one batched call of 2B = [uncond; cond], output y_u + w·(y_c − y_u)', async () => {
    const { model, calls } = labelModel();
    const g = classifierFreeGuidance(model, { scale: 3, nullLabel: NULL });
    const x = Float64Array.of(1, 2, 3, -1, 0, 1);
    const out = await g.predict(x, at(500, 2), { classLabels: [2, 5] });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.batch, 4);
    assert.deepEqual(calls[0]!.labels, [NULL, NULL, 2, 5]);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 3; i++) {
        const base = 0.5 * x[b * 3 + i]! + 0.5 + 0.1 * i;
        const yc = base + [2, 5][b]!;
        const want = base + 3 * (yc - base);
        assert.ok(Math.abs(out[b * 3 + i]! - want) < 1e-12, `${b},${i}: ${out[b * 3 + i]} vs ${want}`);
      }
    }
  });
  it('explicit uncond conditioning takes precedence and may be given once for the batch', async () => {
    const { model, calls } = labelModel();
    const g = classifierFreeGuidance(model, { scale: 2, uncond: { classLabels: [1] }, nullLabel: NULL });
    const out = await g.predict(Float64Array.of(0, 0, 0, 0, 0, 0), at(0, 2), { classLabels: [4, 4] });
    assert.deepEqual(calls[0]!.labels, [1, 1, 4, 4]);
    // y_u = 1 + 0.1 i, y_c = 4 + 0.1 i → 1 + 2·3 = 7 + 0.1 i
    assert.ok(Math.abs(out[0]! - 7) < 1e-12 && Math.abs(out[5]! - 7.2) < 1e-12);
  });
  it('scale 0 gives the unconditional output, scale 1 the conditional one', async () => {
    const { model } = labelModel();
    const x = Float64Array.of(0.2, 0.4, 0.6);
    const u = await classifierFreeGuidance(model, { scale: 0, nullLabel: NULL }).predict(x, at(10, 1), { classLabels: [3] });
    const c = await classifierFreeGuidance(model, { scale: 1, nullLabel: NULL }).predict(x, at(10, 1), { classLabels: [3] });
    assert.ok(Math.abs(c[0]! - u[0]! - 3) < 1e-12);
    assert.ok(Math.abs(u[0]! - (0.1 + 0.01)) < 1e-12);
  });
  it("guidance in the model's own type equals guidance on x̂0 (the conversions are affine)", async () => {
    const { model } = labelModel('v_prediction');
    const g = classifierFreeGuidance(model, { scale: 4, nullLabel: NULL });
    const x = Float64Array.of(0.3, -0.2, 0.9);
    const t = 400;
    const [a, s] = [schedule.alpha(t), schedule.sigma(t)];
    const guided = toX0('v_prediction', await g.predict(x, at(t, 1), { classLabels: [2] }), x, a, s);
    const xu = toX0('v_prediction', await model.predict(x, at(t, 1), { classLabels: [NULL] }), x, a, s);
    const xc = toX0('v_prediction', await model.predict(x, at(t, 1), { classLabels: [2] }), x, a, s);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(guided[i]! - (xu[i]! + 4 * (xc[i]! - xu[i]!))) < 1e-12);
  });
});

describe('guidance rescale (Lin et al. 2023 §3.4)', () => {
  const std = (v: NumArray) => {
    const a = Array.from(v);
    const m = a.reduce((p, q) => p + q, 0) / a.length;
    return Math.sqrt(a.reduce((p, q) => p + (q - m) ** 2, 0) / (a.length - 1));
  };
  it('φ = 1 matches the conditional std per sample; φ mixes linearly', () => {
    const guided = Float64Array.of(1, 3, 8, -2, 0, 2);
    const cond = Float64Array.of(0, 1, 1, 5, 5, 6);
    const r1 = rescaleGuided(guided, cond, 2, 1);
    assert.ok(Math.abs(std(r1.subarray(0, 3)) - std(cond.subarray(0, 3))) < 1e-12);
    assert.ok(Math.abs(std(r1.subarray(3)) - std(cond.subarray(3))) < 1e-12);
    const r = rescaleGuided(guided, cond, 2, 0.7);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(r[i]! - (0.7 * r1[i]! + 0.3 * guided[i]!)) < 1e-12);
    assert.deepEqual([...rescaleGuided(guided, cond, 2, 0)], [...guided]);
  });
  it('is applied to the guided output (default) or to x̂0', async () => {
    const { model } = labelModel();
    const x = Float64Array.of(0.5, -1, 2);
    const plain = await classifierFreeGuidance(model, { scale: 5, nullLabel: NULL }).predict(x, at(300, 1), { classLabels: [2] });
    const cond = await model.predict(x, at(300, 1), { classLabels: [2] });
    const out = await classifierFreeGuidance(model, { scale: 5, rescale: 0.5, nullLabel: NULL }).predict(x, at(300, 1), { classLabels: [2] });
    const want = rescaleGuided(plain, cond, 1, 0.5);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(out[i]! - want[i]!) < 1e-12);
    const inX0 = await classifierFreeGuidance(model, { scale: 5, rescale: 1, rescaleSpace: 'x0', nullLabel: NULL }).predict(x, at(300, 1), {
      classLabels: [2],
    });
    const [a, s] = [schedule.alpha(300), schedule.sigma(300)];
    assert.ok(Math.abs(std(toX0('epsilon', inX0, x, a, s)) - std(toX0('epsilon', cond, x, a, s))) < 1e-9);
  });
});

describe('guidance errors name the fix', () => {
  it('missing null label, missing conditioning, bad options', async () => {
    const { model } = labelModel();
    await assert.rejects(
      classifierFreeGuidance(model, { scale: 2 }).predict(Float64Array.of(0, 0, 0), at(1, 1), { classLabels: [1] }),
      /null label.*nullLabel/,
    );
    await assert.rejects(
      classifierFreeGuidance(model, { scale: 2, nullLabel: NULL }).predict(Float64Array.of(0, 0, 0), at(1, 1)),
      /needs conditioning.*pass cond/,
    );
    await assert.rejects(
      classifierFreeGuidance(model, { scale: 2 }).predict(Float64Array.of(0, 0, 0), at(1, 1), {
        encoderHiddenStates: new Float32Array(4),
        encoderHiddenShape: [2, 2],
      }),
      /explicit uncond/,
    );
    assert.throws(() => classifierFreeGuidance(model, { scale: Number.NaN }), /finite number/);
    assert.throws(() => classifierFreeGuidance(model, { scale: 2, rescale: 1.5 }), /\[0, 1\]/);
    // x̂0-space rescale needs no schedule: α and σ come with the call descriptor.
    assert.doesNotThrow(() => classifierFreeGuidance(model, { scale: 2, rescale: 0.5, rescaleSpace: 'x0' }));
    await assert.rejects(
      classifierFreeGuidance(model, { scale: 2, uncond: { classLabels: [1, 2, 3] } }).predict(Float64Array.of(0, 0, 0, 0, 0, 0), at(1, 2), {
        classLabels: [1, 1],
      }),
      /give 1 or 2/,
    );
  });
  it('encoder-state conditioning is concatenated [uncond; cond]', async () => {
    let seen: Float32Array | undefined;
    const model: DiffusionModel = {
      predictionType: 'epsilon',
      sampleShape: [1],
      async predict(x, { batch }, cond) {
        seen = cond?.encoderHiddenStates;
        return new Float64Array(batch).map((_, b) => cond!.encoderHiddenStates![b * 2]! + 0 * x[0]!);
      },
    };
    const g = classifierFreeGuidance(model, { scale: 3, uncond: { encoderHiddenStates: Float32Array.of(1, 1), encoderHiddenShape: [1, 2] } });
    const out = await g.predict(Float64Array.of(0, 0), at(5, 2), { encoderHiddenStates: Float32Array.of(2, 2, 4, 4), encoderHiddenShape: [1, 2] });
    assert.deepEqual([...seen!], [1, 1, 1, 1, 2, 2, 4, 4]);
    assert.deepEqual([...out], [1 + 3 * 1, 1 + 3 * 3]);
  });
});

describe('guidance overflow blames the scale, not the model', () => {
  /** ε_u = −v and ε_c = +v everywhere: finite outputs whose guided combination is v·(2w − 1). */
  function splitModel(v: number, type: 'float32' | 'float64' = 'float32') {
    let calls = 0;
    const model: DiffusionModel = {
      predictionType: 'epsilon',
      sampleShape: [2],
      async predict(x, { batch }, cond) {
        calls++;
        const out = type === 'float64' ? new Float64Array(x.length) : new Float32Array(x.length);
        for (let b = 0; b < batch; b++) out.fill(cond?.classLabels?.[b] === NULL ? -v : v, 2 * b, 2 * b + 2);
        return out;
      },
    };
    return { model, calls: () => calls };
  }

  it('scales above 1e6 (and below 0) are refused before the run, with the bound and the fix', async () => {
    assert.equal(MAX_GUIDANCE_SCALE, 1e6);
    const { model, calls } = splitModel(1);
    const tooLarge = /guidance scale 1e\+308 is too large: \|scale\| must be at most 1000000 \(typical values are 1–10\).*pass a smaller scale/;
    assert.throws(() => classifierFreeGuidance(model, { scale: 1e308, nullLabel: NULL }), tooLarge);
    assert.throws(() => classifierFreeGuidance(model, { scale: -2e6, nullLabel: NULL }), /guidance scale must be a finite number ≥ 0 .*got -2000000/);
    await assert.rejects(
      sample({ model, schedule, nfe: 4, batch: 1, cond: { classLabels: [1] }, guidance: { scale: 1e308, nullLabel: NULL } }),
      tooLarge,
    );
    assert.equal(calls(), 0, 'refused before the first model call');
    // the bound itself is accepted: 1 + 1e6·(1 − (−1))·… stays finite for this model
    const g = await classifierFreeGuidance(model, { scale: 1e6, nullLabel: NULL }).predict(new Float32Array(2), at(500, 1), { classLabels: [1] });
    assert.deepEqual(Array.from(g), [2e6 - 1, 2e6 - 1]);
  });

  it('finite model outputs whose guided combination overflows name the guidance scale (float32 and float64)', async () => {
    // float32: −1e35 + 1e4·(1e35 − (−1e35)) = 2e39 > 3.4e38
    const f32 = splitModel(1e35);
    const g = classifierFreeGuidance(f32.model, { scale: 1e4, nullLabel: NULL });
    const overflow = (err: Error) =>
      /^classifier-free guidance overflowed at t=500 \(element 0\)/.test(err.message) &&
      /guidance scale w = 10000 is Infinity in float32: lower the guidance scale/.test(err.message) &&
      !/check the model/.test(err.message);
    await assert.rejects(g.predict(new Float32Array(2), at(500, 1), { classLabels: [3] }), overflow);
    // through sample(): the run's error is the guidance's, not "model returned Infinity"
    await assert.rejects(
      sample({ model: f32.model, schedule, nfe: 3, batch: 1, cond: { classLabels: [3] }, guidance: { scale: 1e4, nullLabel: NULL } }),
      (err: Error) => /^classifier-free guidance overflowed at t=999 .*guidance scale w = 10000/.test(err.message) && !/model returned/.test(err.message),
    );
    assert.equal(f32.calls(), 2, 'the run stops at its first (guided) call');
    // float64: 1e305·(2·1e4 − 1) ≈ 2e309 > 1.8e308
    const f64 = splitModel(1e305, 'float64');
    await assert.rejects(
      classifierFreeGuidance(f64.model, { scale: 1e4, nullLabel: NULL }).predict(new Float64Array(2), at(200, 1), { classLabels: [3] }),
      /overflowed at t=200 .*y_u = -1e\+305, y_c = 1e\+305.*w = 10000 is Infinity in float64/,
    );
    // the same model at scale 2 is fine: −1e35 + 2·2e35 = 3e35
    const ok = await classifierFreeGuidance(f32.model, { scale: 2, nullLabel: NULL }).predict(new Float32Array(2), at(500, 1), { classLabels: [3] });
    assert.ok(Math.abs(ok[0]! - 3e35) / 3e35 < 1e-6);
  });

  it('a NaN from the model under guidance still blames the model', async () => {
    const nan = splitModel(Number.NaN);
    await assert.rejects(
      classifierFreeGuidance(nan.model, { scale: 2, nullLabel: NULL }).predict(new Float32Array(2), at(500, 1), { classLabels: [3] }),
      /^Error: model returned NaN at t=500 \(model time 500, element 0 of the unconditional half of the guided batch\): check the model file\/inputs/,
    );
  });
});

describe('guidance through sample()', () => {
  it('one guided call per step counts as one NFE; PFDiff stores the guided output', async () => {
    for (const pfdiff of [undefined, { k: 2, h: 1 }]) {
      const { model, calls } = labelModel();
      const r = await sample({
        model,
        schedule,
        nfe: 5,
        batch: 2,
        cond: { classLabels: [1, 2] },
        guidance: { scale: 2, nullLabel: NULL },
        precision: 'float64',
        ...(pfdiff ? { pfdiff } : {}),
      });
      assert.equal(r.calls, 5);
      assert.equal(calls.length, 5);
      assert.ok(calls.every((c) => c.batch === 4));
    }
  });
  it('guided PFDiff equals PFDiff on the guided model written out by hand', async () => {
    const { model } = labelModel();
    const handGuided: DiffusionModel = {
      predictionType: 'epsilon',
      sampleShape: [3],
      async predict(x, call, cond) {
        const { batch } = call;
        const u = await model.predict(x, call, { classLabels: new Array(batch).fill(NULL) });
        const c = await model.predict(x, call, cond);
        return u.map((v, i) => v + 2.5 * (c[i]! - v));
      },
    };
    const common = { schedule, nfe: 4, batch: 1, cond: { classLabels: [3] }, pfdiff: { k: 2, h: 1 }, precision: 'float64' as const, seed: 9 };
    const a = await sample({ ...common, model, guidance: { scale: 2.5, nullLabel: NULL } });
    const b = await sample({ ...common, model: handGuided });
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(a.samples[i]! - b.samples[i]!) < 1e-12);
  });
});
