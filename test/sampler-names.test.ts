/** resolveSamplerName: A1111 / ComfyUI sampler names → solver, options and grid, each planned on the SD 1.5 schedule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSamplerName } from '../src/core/schedule/sampler-names.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { CLEAN_TIME } from '../src/core/schedule/noise-schedule.js';
import { planSample } from '../src/core/sample.js';

const sd15 = discreteSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 });

test('A1111 and ComfyUI names resolve to solver, options and spacing', () => {
  const cases: [string, string, Record<string, unknown>, string][] = [
    ['DPM++ 2M Karras', 'dpmpp_2m', { lowerOrderFinal: false }, 'karras'],
    ['DPM++ 2M', 'dpmpp_2m', { lowerOrderFinal: false }, 'linspace'],
    ['DPM++ 2M SDE Exponential', 'dpmpp_2m_sde', { lowerOrderFinal: false }, 'exponential'],
    ['Euler a', 'euler_a', { noiseStart: 'sigma_max' }, 'linspace'],
    ['euler_ancestral karras', 'euler_a', { noiseStart: 'sigma_max' }, 'karras'],
    ['Euler', 'euler', { noiseStart: 'sigma_max' }, 'linspace'],
    ['LMS Karras', 'lms', { noiseStart: 'sigma_max' }, 'karras'],
    ['Heun', 'heun', { noiseStart: 'sigma_max' }, 'linspace'],
    ['DDIM', 'ddim', {}, 'leading'],
    ['PLMS', 'plms', {}, 'leading'],
    ['UniPC', 'unipc', { variant: 'bh1', order: 3 }, 'time_uniform'],
    ['uni_pc_bh2', 'unipc', { variant: 'bh2', order: 3, lowerOrderFinal: true }, 'linspace'],
    ['  dpmpp_2m   KARRAS ', 'dpmpp_2m', { lowerOrderFinal: false }, 'karras'],
    ['DPM2', 'dpm_2', { noiseStart: 'sigma_max' }, 'linspace'],
    ['DPM2 a Karras', 'dpm_2_a', { noiseStart: 'sigma_max' }, 'karras'],
    ['dpm_2_ancestral', 'dpm_2_a', { noiseStart: 'sigma_max' }, 'linspace'],
    ['ipndm', 'ipndm', { noiseStart: 'sigma_max' }, 'linspace'],
    ['LCM', 'lcm', {}, 'lcm'],
    ['DPM++ SDE Karras', 'dpmpp_sde', { noiseStart: 'sigma_max' }, 'karras'],
    ['DPM++ 2S a', 'dpmpp_2s_a', { noiseStart: 'sigma_max' }, 'linspace'],
  ];
  for (const [name, solver, options, spacing] of cases) {
    const r = resolveSamplerName(name);
    assert.equal(r.solver, solver, name);
    assert.deepEqual(r.solverOptions, options, name);
    assert.equal(r.timesteps.spacing, spacing, name);
    // Every resolved sampler plans on SD 1.5 at 20 steps: 21 grid points, the planned solver.
    const plan = planSample({ schedule: sd15, solver: r.solver, solverOptions: r.solverOptions, steps: 20, timesteps: r.timesteps });
    assert.equal(plan.solver, solver);
    assert.equal(plan.timesteps.length, 21, name);
  }
});

test('the grids are the samplers’ own: normal = t from 999 to 0 then σ = 0; CompVis DDIM = leading + 1 ending at ᾱ_0', () => {
  const euler = planSample({ schedule: sd15, ...resolveSamplerName('Euler'), steps: 4 });
  assert.deepEqual(euler.timesteps, [999, 666, 333, 0, CLEAN_TIME]);
  const ddim = planSample({ schedule: sd15, ...resolveSamplerName('DDIM'), steps: 4 });
  assert.deepEqual(ddim.timesteps, [751, 501, 251, 1, 0]);
  const karras = planSample({ schedule: sd15, ...resolveSamplerName('DPM++ 2M Karras'), steps: 4 });
  assert.equal(karras.timesteps[0], 999);
  assert.equal(karras.timesteps[3], 0);
  assert.equal(karras.timesteps[4], CLEAN_TIME);
  assert.ok(karras.timesteps[1]! > 600 && karras.timesteps[1]! < 700); // σ = 3.17 lies at t ≈ 687
});

test('unknown and not-yet-provided names throw, naming what they are', () => {
  assert.throws(() => resolveSamplerName('Restart'), /"Restart" is Restart sampling, which rediffuse does not provide yet: pick one of/);
  assert.throws(() => resolveSamplerName('DPM++ 3M SDE Karras'), /DPM\+\+ 3M SDE \(sample_dpmpp_3m_sde\)/);
  assert.throws(() => resolveSamplerName('Euler b'), /unknown sampler name "Euler b": use one of euler, euler a/);
  assert.throws(() => resolveSamplerName('DDIM Karras'), /runs on its own grid, not a karras schedule/);
  assert.throws(() => resolveSamplerName(''), /pass a sampler name/);
  assert.ok(resolveSamplerName('DPM++ 2M').notes.some((n) => /z·σ_max/.test(n)));
});
