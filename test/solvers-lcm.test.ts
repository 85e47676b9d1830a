/**
 * LCM (lcm.ts), TCD (tcd.ts) and the `lcm` grid: diffusers' LCMScheduler times, and two-step runs on the
 * closed-form Gaussian model against the update written out by hand (posterior-mean x̂0, the
 * boundary scalings, re-noising with an injected stream).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { CLEAN_TIME } from '../src/core/schedule/noise-schedule.js';
import { fromSchedulerConfig } from '../src/core/schedule/config.js';
import { buildTimesteps, TimestepCountError } from '../src/core/timesteps.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { sample } from '../src/core/sample.js';
import { lcmScalings } from '../src/core/solvers/lcm.js';

const sd15 = discreteSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 });

test('lcm grid: diffusers LCMScheduler times from the 50 distillation steps', () => {
  // origin 19, 39, …, 999 reversed, at ⌊linspace(0, 50, S, endpoint=False)⌋.
  assert.deepEqual(buildTimesteps(sd15, { spacing: 'lcm', steps: 4 }), [999, 759, 499, 259, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(sd15, { spacing: 'lcm', steps: 1 }), [999, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(sd15, { spacing: 'lcm', steps: 8 }), [999, 879, 759, 639, 499, 379, 259, 139, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(sd15, { spacing: 'lcm', steps: 2, lcmOriginalSteps: 4 }), [999, 499, CLEAN_TIME]);
  assert.throws(() => buildTimesteps(sd15, { spacing: 'lcm', steps: 51 }), TimestepCountError);
  assert.throws(() => buildTimesteps(sd15, { spacing: 'lcm', steps: 2, lcmOriginalSteps: 0 }), /lcmOriginalSteps must be an integer in \[1, 1000\]/);
});

test('lcm: two steps on the Gaussian model equal the hand-written consistency update (1e-12)', async () => {
  const mean = 0.3;
  const std = 0.5;
  const model = gaussianModel({ schedule: sd15, mean, std, sampleShape: [3] });
  const xT = Float64Array.from([0.7, -1.2, 0.4]);
  const z = Float64Array.from([0.5, 0.1, -2]);
  const config = fromSchedulerConfig({ _class_name: 'LCMScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 });
  const opts = config.sampleOptions(2);
  assert.equal(opts.solver, 'lcm');
  const run = await sample({ model, ...opts, initialNoise: xT, precision: 'float64', noise: () => z });
  assert.deepEqual(run.timesteps, [999, 499, CLEAN_TIME]);
  assert.equal(run.calls, 2);
  // x̂0 of the exact model is the posterior mean μ + α·s²/(α²s² + σ²)·(x − α·μ).
  const x0 = (x: number, t: number): number => {
    const a = sd15.alpha(t);
    const sg = sd15.sigma(t);
    return mean + ((a * std * std) / (a * a * std * std + sg * sg)) * (x - a * mean);
  };
  for (let i = 0; i < 3; i++) {
    const s1 = lcmScalings(999, 10, 0.5);
    const f1 = s1.cSkip * xT[i]! + s1.cOut * x0(xT[i]!, 999);
    const x1 = sd15.alpha(499) * f1 + sd15.sigma(499) * z[i]!;
    const s2 = lcmScalings(499, 10, 0.5);
    const f2 = s2.cSkip * x1 + s2.cOut * x0(x1, 499);
    assert.ok(Math.abs(run.samples[i]! - f2) < 1e-12, `coordinate ${i}: ${run.samples[i]} vs ${f2}`);
  }
  // The boundary condition: c_skip → 1, c_out → 0 at t = 0; c_out ≈ 1 at t = 999.
  assert.deepEqual(lcmScalings(0, 10, 0.5), { cSkip: 1, cOut: 0 });
  assert.ok(Math.abs(lcmScalings(999, 10, 0.5).cOut - 1) < 2e-9);
});

test('tcd: γ = 0 is DDIM; γ = 0.5 equals the hand-written DDIM jump to ⌊t/2⌋ and forward noise back to t', async () => {
  const model = gaussianModel({ schedule: sd15, mean: 0.3, std: 0.5, sampleShape: [3] });
  const xT = Float64Array.from([0.7, -1.2, 0.4]);
  const z = Float64Array.from([0.5, 0.1, -2]);
  const config = fromSchedulerConfig({ _class_name: 'TCDScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 });
  const opts = config.sampleOptions(2);
  assert.equal(opts.solver, 'tcd');
  const common = { model, schedule: sd15, steps: 2, timesteps: opts.timesteps, initialNoise: xT, precision: 'float64' as const, noise: () => z };
  const tcd0 = await sample({ ...common, solver: 'tcd', solverOptions: { gamma: 0 } });
  const ddim = await sample({ ...common, solver: 'ddim' });
  assert.deepEqual(tcd0.timesteps, [999, 499, 0]);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(tcd0.samples[i]! - ddim.samples[i]!) < 1e-13);
  const tcd = await sample({ ...common, solver: 'tcd', solverOptions: { gamma: 0.5 } });
  const eps = (x: number, t: number): number => {
    const a = sd15.alpha(t);
    const sg = sd15.sigma(t);
    return (sg * (x - a * 0.3)) / (a * a * 0.25 + sg * sg);
  };
  const ddimTo = (x: number, s: number, t: number): number => {
    const e = eps(x, s);
    const x0 = (x - sd15.sigma(s) * e) / sd15.alpha(s);
    return sd15.alpha(t) * x0 + sd15.sigma(t) * e;
  };
  for (let i = 0; i < 3; i++) {
    const jumped = ddimTo(xT[i]!, 999, 249); // ⌊0.5·499⌋
    const r = sd15.alpha(499) / sd15.alpha(249);
    const x1 = r * jumped + Math.sqrt(1 - r * r) * z[i]!;
    const last = ddimTo(x1, 499, 0); // the last step lands at ⌊0.5·0⌋ = 0, no noise
    assert.ok(Math.abs(tcd.samples[i]! - last) < 1e-12, `coordinate ${i}: ${tcd.samples[i]} vs ${last}`);
  }
});
