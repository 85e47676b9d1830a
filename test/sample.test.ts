/**
 * The sampling entry point: result fields and call counts, determinism (same seed → same samples,
 * independent of the batch size), abort, the onStep callback, and errors that name the fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DiffusionModel } from '../src/core/model.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { gaussianBatch } from '../src/core/rng.js';
import { sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import type { StepInfo } from '../src/core/solvers/types.js';

const schedule = discreteSchedule({});
const model = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [2, 3] });

describe('sample()', () => {
  it('returns samples, calls, steps, the grid and timings; default noise is gaussianBatch(seed)', async () => {
    const r = await sample({ model, schedule, solver: 'ddim', nfe: 7, batch: 2, seed: 11, precision: 'float64' });
    assert.equal(r.samples.length, 12);
    assert.ok(r.samples instanceof Float64Array);
    assert.equal(r.calls, 7);
    assert.equal(r.steps, 7);
    assert.equal(r.timesteps.length, 8);
    assert.equal(r.timesteps[7], -1);
    assert.equal(r.solver, 'ddim');
    assert.ok(r.wallMs >= 0 && r.callMs >= 0);
    // The timings measure: each of 7 calls of a model that holds the thread 2 ms adds ≥ 2 ms to both.
    const slow: DiffusionModel = {
      ...model,
      predict: (x, t, b) => {
        const until = performance.now() + 2;
        while (performance.now() < until);
        return model.predict(x, t, b);
      },
    };
    const timed = await sample({ model: slow, schedule, solver: 'ddim', nfe: 7, batch: 2, seed: 11, precision: 'float64' });
    assert.ok(timed.callMs >= 14 && timed.wallMs >= timed.callMs, `callMs ${timed.callMs}, wallMs ${timed.wallMs}`);
    // Same as passing that noise explicitly: x_T = z (no σ_T scaling for VP solvers).
    const z = gaussianBatch(11, 2, 6, 'float64');
    const again = await sample({ model, schedule, solver: 'ddim', nfe: 7, batch: 2, initialNoise: z, precision: 'float64' });
    assert.deepEqual([...again.samples], [...r.samples]);
    // …and DDIM's result is close to the exact ODE end point of that noise.
    const exact = model.exactOdeSolution(z, r.timesteps[0]!, -1);
    let se = 0;
    for (let i = 0; i < 12; i++) se += (r.samples[i]! - exact[i]!) ** 2;
    assert.ok(Math.sqrt(se / 12) < 0.2, `RMS error ${Math.sqrt(se / 12)}`);
  });
  it('float32 is the default precision', async () => {
    const r = await sample({ model, schedule, nfe: 3 });
    assert.ok(r.samples instanceof Float32Array);
  });
  it('same seed → identical samples; a sample does not depend on the batch size', async () => {
    for (const solver of ['ddim', 'euler_a']) {
      const a = await sample({ model, schedule, solver, nfe: 6, batch: 3, seed: 5 });
      const b = await sample({ model, schedule, solver, nfe: 6, batch: 3, seed: 5 });
      assert.deepEqual([...a.samples], [...b.samples]);
      const one = await sample({ model, schedule, solver, nfe: 6, batch: 1, seed: 5 });
      assert.deepEqual([...one.samples], [...a.samples.subarray(0, 6)]);
      const other = await sample({ model, schedule, solver, nfe: 6, batch: 1, seed: 6 });
      assert.notDeepEqual([...other.samples], [...one.samples]);
    }
  });
  it('onStep reports (step, steps, t, x, x̂0) once per step; with PFDiff once per call', async () => {
    const seen: StepInfo[] = [];
    await sample({ model, schedule, nfe: 5, onStep: (s) => void seen.push(s) });
    assert.deepEqual(
      seen.map((s) => s.step),
      [0, 1, 2, 3, 4],
    );
    assert.ok(seen.every((s) => s.steps === 5 && s.x.length === 6 && s.x0 !== undefined));
    const pf: StepInfo[] = [];
    const r = await sample({ model, schedule, nfe: 5, pfdiff: { k: 3, h: 2 }, onStep: (s) => void pf.push(s) });
    assert.equal(r.steps, 17);
    assert.deepEqual(
      pf.map((s) => s.step),
      [0, 1, 2, 3, 4],
    );
    assert.equal(pf[4]!.t, -1);
  });
  it('an AbortSignal stops the run', async () => {
    const ctl = new AbortController();
    const counting = gaussianModel({ schedule, sampleShape: [2] });
    await assert.rejects(
      sample({ model: counting, schedule, nfe: 10, signal: ctl.signal, onStep: (s) => (s.step === 2 ? ctl.abort() : undefined) }),
      (e: Error) => e.name === 'AbortError' && /aborted/.test(e.message),
    );
    assert.equal(counting.calls, 3);
    await assert.rejects(sample({ model, schedule, nfe: 3, signal: AbortSignal.abort() }), { name: 'AbortError' });
  });
  it('an explicit grid is used as given', async () => {
    const r = await sample({ model, schedule, timesteps: { timesteps: [900, 500, 100] } });
    assert.deepEqual(r.timesteps, [900, 500, 100, -1]);
    assert.equal(r.calls, 3);
  });
});

describe('sample() errors name the problem and the fix', () => {
  it('unknown solver lists the valid names', async () => {
    await assert.rejects(sample({ model, schedule, solver: 'ddim2' }), /unknown solver "ddim2": valid names are .*ddim.*euler/);
  });
  it('nfe < 1, nfe and steps together, bad batch', async () => {
    await assert.rejects(sample({ model, schedule, nfe: 0 }), /nfe must be an integer ≥ 1/);
    await assert.rejects(sample({ model, schedule, nfe: 2.5 }), /nfe must be an integer ≥ 1/);
    await assert.rejects(sample({ model, schedule, nfe: 4, steps: 4 }), /either nfe .* or steps/);
    await assert.rejects(sample({ model, schedule, batch: 0 }), /batch must be an integer ≥ 1/);
  });
  it('PFDiff k/h out of range', async () => {
    await assert.rejects(sample({ model, schedule, nfe: 4, pfdiff: { k: 4, h: 1 } }), /k must be an integer 1, 2 or 3/);
    await assert.rejects(sample({ model, schedule, nfe: 4, pfdiff: { k: 2, h: 3 } }), /1 ≤ h ≤ k = 2/);
  });
  it('initial noise of the wrong length', async () => {
    await assert.rejects(sample({ model, schedule, batch: 2, initialNoise: new Float32Array(6) }), /initialNoise has 6 values, expected batch 2 × 6/);
  });
  it('class labels that do not match the batch', async () => {
    await assert.rejects(sample({ model, schedule, batch: 2, cond: { classLabels: [1] } }), /1 labels but batch is 2/);
  });
  it('NaN from the model', async () => {
    const bad: DiffusionModel = { predictionType: 'epsilon', sampleShape: [2], predict: async (x) => new Float32Array(x.length).fill(Number.NaN) };
    await assert.rejects(sample({ model: bad, schedule, nfe: 2 }), /model returned NaN.*check the model/);
  });
  it('a model output of the wrong size', async () => {
    const bad: DiffusionModel = { predictionType: 'epsilon', sampleShape: [2], predict: async () => new Float32Array(3) };
    await assert.rejects(sample({ model: bad, schedule, nfe: 2 }), /model returned 3 values/);
  });
});

it('singlestep solvers spend exactly the NFE budget (adaptive step plan)', async () => {
  const schedule = discreteSchedule();
  const model = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [2] });
  for (const solver of ['dpm_solver_2', 'dpm_solver_3', 'dpmpp_2s', 'dpmpp_3s']) {
    for (const nfe of [4, 5, 6, 7, 10]) {
      const r = await sample({ model, schedule, solver, nfe, batch: 1, precision: 'float64' });
      assert.equal(r.calls, nfe, `${solver} at nfe ${nfe}`);
    }
  }
});
