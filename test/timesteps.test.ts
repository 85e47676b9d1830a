/**
 * Timestep grids against numpy-computed diffusers / DPM-Solver / DDIM-code values, including the
 * half-to-even rounding traps. Each expected list quotes the numpy expression that produced it
 * (N = 1000 training steps).
 */
import { test } from 'node:test';
import { gaussianModel } from '../src/core/reference-models.js';
import { planSample, sample } from '../src/core/sample.js';
import assert from 'node:assert/strict';
import { CLEAN_TIME, continuousVpSchedule, discreteSchedule, veSigma } from '../src/core/schedule/index.js';
import {
  AYS_TABLES,
  TIMESTEP_SPACINGS,
  MAX_GRID_STEPS,
  TimestepCountError,
  buildTimesteps,
  gridEndsClean,
  karrasSigmas,
  loglinearResample,
  roundHalfEven,
  type TimestepOptions,
} from '../src/core/timesteps.js';

const linear = discreteSchedule({});
const sd = discreteSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 });

function closeAll(actual: readonly number[], expected: readonly number[], tol: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `${label}[${i}]: expected ${expected[i]}, got ${a}`));
}

/** The S model times (without the terminal). */
const nodes = (opts: TimestepOptions, schedule = linear): number[] => buildTimesteps(schedule, opts).slice(0, -1);

test('roundHalfEven is numpy round', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 832.5, 166.5, 499.49999999999994, 937.5].map(roundHalfEven), [0, 2, 2, 0, -2, 832, 166, 499, 938]);
});

test('DPM family linspace: linspace(0, 999, S+1).round()[::-1][:-1] with half-to-even traps', () => {
  assert.deepEqual(nodes({ steps: 6, spacing: 'linspace', family: 'dpm' }), [999, 832, 666, 500, 333, 166]); // 832.5→832, 166.5→166
  assert.deepEqual(nodes({ steps: 10, spacing: 'linspace', family: 'dpm' }), [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]); // 499.5→500
  // S=30: 832.4999999999999 and 499.49999999999994 round down — the i·step linspace matters.
  assert.deepEqual(
    nodes({ steps: 30, spacing: 'linspace', family: 'dpm' }),
    [999, 966, 932, 899, 866, 832, 799, 766, 733, 699, 666, 633, 599, 566, 533, 499, 466, 433, 400, 366, 333, 300, 266, 233, 200, 166, 133, 100, 67, 33],
  );
  assert.deepEqual(buildTimesteps(linear, { steps: 6, spacing: 'linspace' }).at(-1), CLEAN_TIME); // dpm is the default family
});

test('DDIM family linspace: linspace(0, 999, S).round()[::-1]', () => {
  assert.deepEqual(nodes({ steps: 3, spacing: 'linspace', family: 'ddim' }), [999, 500, 0]); // 499.5→500
  assert.deepEqual(nodes({ steps: 7, spacing: 'linspace', family: 'ddim' }), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(nodes({ steps: 9, spacing: 'linspace', family: 'ddim' }), [999, 874, 749, 624, 500, 375, 250, 125, 0]);
  assert.deepEqual(nodes({ steps: 6, spacing: 'linspace', family: 'ddim' }), [999, 799, 599, 400, 200, 0]);
});

test('Euler family linspace is fractional float32: np.linspace(0, 999, S, dtype=np.float32)[::-1]', () => {
  assert.deepEqual(nodes({ steps: 6, spacing: 'linspace', family: 'euler' }), [
    999,
    Math.fround(799.2),
    Math.fround(599.4),
    Math.fround(399.6),
    Math.fround(199.8),
    0,
  ]);
});

test('leading: DDIM (N//S) and DPM (N//(S+1)) formulas with steps_offset', () => {
  // (np.arange(0, S)·(1000//S)).round()[::-1] + 1
  assert.deepEqual(nodes({ steps: 5, spacing: 'leading', family: 'ddim', stepsOffset: 1 }), [801, 601, 401, 201, 1]);
  assert.deepEqual(nodes({ steps: 7, spacing: 'leading', family: 'ddim', stepsOffset: 1 }), [853, 711, 569, 427, 285, 143, 1]);
  assert.deepEqual(nodes({ steps: 7, spacing: 'leading', family: 'euler', stepsOffset: 1 }), [853, 711, 569, 427, 285, 143, 1]);
  // (np.arange(0, S+1)·(1000//(S+1))).round()[::-1][:-1] + 1
  assert.deepEqual(nodes({ steps: 5, spacing: 'leading', family: 'dpm', stepsOffset: 1 }), [831, 665, 499, 333, 167]);
  assert.deepEqual(nodes({ steps: 7, spacing: 'leading', family: 'dpm', stepsOffset: 1 }), [876, 751, 626, 501, 376, 251, 126]);
  assert.deepEqual(nodes({ steps: 5, spacing: 'leading', family: 'ddim' }), [800, 600, 400, 200, 0]);
});

test('trailing: np.round(np.arange(1000, 0, -1000/S)) - 1, all families', () => {
  for (const family of ['ddim', 'dpm', 'euler'] as const) {
    assert.deepEqual(nodes({ steps: 3, spacing: 'trailing', family }), [999, 666, 332]);
    assert.deepEqual(nodes({ steps: 7, spacing: 'trailing', family }), [999, 856, 713, 570, 428, 285, 142]);
  }
  // S=16 hits exact halves: 937.5→938, 812.5→812, 687.5→688, …
  assert.deepEqual(nodes({ steps: 16, spacing: 'trailing' }), [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]);
  // S=61: numpy's arange yields 62 values (the last rounds to −1); we keep exactly S.
  const g = nodes({ steps: 61, spacing: 'trailing' });
  assert.equal(g.length, 61);
  assert.deepEqual(g.slice(-3), [48, 32, 15]);
});

test('DDIM code grids: uniform, quadratic ("top 800"), linspace_floor (PFDiff)', () => {
  // range(0, 1000, 1000//6) has 7 values; the first 6 are kept.
  assert.deepEqual(buildTimesteps(linear, { steps: 6, spacing: 'uniform' }), [830, 664, 498, 332, 166, 0, CLEAN_TIME]);
  // [int(x) for x in np.linspace(0, np.sqrt(800), 10)**2][::-1]
  assert.deepEqual(buildTimesteps(linear, { steps: 10, spacing: 'quadratic' }), [800, 632, 483, 355, 246, 158, 88, 39, 9, 0, CLEAN_TIME]);
  // [int(x) for x in np.linspace(0, 999, S)][::-1]
  assert.deepEqual(buildTimesteps(linear, { steps: 10, spacing: 'linspace_floor' }), [999, 888, 777, 666, 555, 444, 333, 222, 111, 0, CLEAN_TIME]);
  assert.deepEqual(nodes({ steps: 7, spacing: 'linspace_floor' }), [999, 832, 666, 499, 333, 166, 0]); // 499.5 truncates
  assert.throws(() => buildTimesteps(linear, { steps: 40, spacing: 'quadratic' }), /not strictly decreasing/);
});

test('DPM-Solver time_uniform / time_quadratic / logSNR on a discrete schedule (n = N·t_c − 1)', () => {
  // 1000·np.linspace(1, 1e-3, 11) − 1
  closeAll(
    buildTimesteps(linear, { steps: 10, spacing: 'time_uniform' }),
    [999, 899.1, 799.2, 699.3, 599.4, 499.5, 399.6, 299.7, 199.8, 99.9, 0],
    1e-9,
    'time_uniform',
  );
  // 1000·np.linspace(1, np.sqrt(1e-3), 5)**2 − 1
  closeAll(
    buildTimesteps(linear, { steps: 4, spacing: 'time_quadratic' }),
    [999, 573.4210412256314, 265.061388300842, 73.9210412256314, 0],
    1e-9,
    'time_quadratic',
  );
  const g = buildTimesteps(linear, { steps: 5, spacing: 'logSNR' });
  assert.equal(g[0], 999);
  assert.equal(g[5], 0);
  const lambdas = g.map((t) => linear.lambda(t));
  const h = (lambdas[5]! - lambdas[0]!) / 5;
  lambdas.forEach((l, i) => assert.ok(Math.abs(l - (lambdas[0]! + i * h)) < 1e-9, `λ step ${i}`));
  // With a clean terminal the S nodes span [T, ε] and the clean point follows.
  closeAll(buildTimesteps(linear, { steps: 2, spacing: 'time_uniform', terminal: 'zero' }), [999, 0, CLEAN_TIME], 1e-12, 'zero');
});

test('DPM-Solver spacings on a continuous schedule run from 1 to ε', () => {
  const c = continuousVpSchedule();
  closeAll(buildTimesteps(c, { steps: 4, spacing: 'time_uniform' }), [1, 0.75025, 0.5005, 0.25075, 0.001], 1e-12, 'cont');
  assert.throws(() => buildTimesteps(c, { steps: 4, spacing: 'trailing' }), /needs a discrete schedule/);
  assert.throws(() => buildTimesteps(c, { steps: 4, spacing: 'time_uniform', terminal: 'zero' }), /no clean end point/);
  const k = buildTimesteps(c, { steps: 4, spacing: 'karras' });
  assert.equal(k[0], 1);
  assert.equal(k[4], 0.001);
});

test('Karras: first/last sigma are the schedule ends; times equal diffusers _sigma_to_t', () => {
  // numpy: sig = sqrt((1−ᾱ)/ᾱ) of the linear schedule; karras(sig[0], sig[-1], 10, ρ=7);
  // t = diffusers _sigma_to_t (log σ linear between integer steps).
  const g = buildTimesteps(linear, { steps: 10, spacing: 'karras' });
  closeAll(
    g,
    [
      999,
      936.9218887360332,
      863.8290442433714,
      775.13315450661,
      662.6368630544349,
      510.70346211984446,
      300.98479150007955,
      102.16137423640704,
      18.308004650406552,
      0,
      CLEAN_TIME,
    ],
    1e-8,
    'karras t',
  );
  const sig = g.slice(0, -1).map((t) => veSigma(linear, t));
  const expected = [
    157.40728081040749, 85.71052238784978, 44.04740487579081, 21.105410301025287, 9.274611951115675, 3.6525679190903184, 1.2463257094660058,
    0.34969256737211857, 0.07392619255462649, 0.010000500037502566,
  ];
  sig.forEach((s, i) => assert.ok(Math.abs(s / expected[i]! - 1) < 1e-9, `σ[${i}] ${s} vs ${expected[i]}`));
  closeAll(karrasSigmas(0.0291671582, 14.6146412293, 2), [14.6146412293, 0.0291671582], 1e-9, 'ends');
  // A sigma_min terminal: S+1 points ending at σ_min (no zero-length step).
  const gm = buildTimesteps(linear, { steps: 3, spacing: 'karras', terminal: 'sigma_min' });
  assert.equal(gm.length, 4);
  assert.equal(gm[3], 0);
  // Overrides and ρ.
  const go = buildTimesteps(sd, { steps: 3, spacing: 'karras', sigmaMin: 0.1, sigmaMax: 10, rho: 1 });
  closeAll(
    go.slice(0, 3).map((t) => veSigma(sd, t)),
    [10, 5.05, 0.1],
    1e-9,
    'override',
  );
  assert.throws(() => buildTimesteps(sd, { steps: 3, spacing: 'karras', sigmaMax: 100 }), /outside this schedule's range/);
});

test('exponential: log-uniform sigmas', () => {
  // np.exp(np.linspace(log(sig[-1]), log(sig[0]), 10))
  const expected = [
    157.40728081040763, 53.78871122586465, 18.38050591080511, 6.280927537350765, 2.1462984164249894, 0.7334262121246244, 0.25062405326071,
    0.08564244778062845, 0.029265462617939036, 0.010000500037502575,
  ];
  const g = buildTimesteps(linear, { steps: 10, spacing: 'exponential' });
  g.slice(0, -1).forEach((t, i) => assert.ok(Math.abs(veSigma(linear, t) / expected[i]! - 1) < 1e-9, `σ[${i}]`));
  assert.equal(g[10], CLEAN_TIME);
});

test('Align Your Steps: published tables and log-linear resampling', () => {
  assert.deepEqual(buildTimesteps(sd, { steps: 10, spacing: 'ays' }), [999, 850, 736, 645, 545, 455, 343, 233, 124, 24, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(sd, { steps: 10, spacing: 'ays', aysModel: 'sdxl' }), [999, 845, 730, 587, 443, 310, 193, 116, 53, 13, CLEAN_TIME]);
  // loglinear_interp(sd15_timesteps, 5) of the AYS how-to page.
  closeAll(nodes({ steps: 5, spacing: 'ays' }, sd), [999, 712.1119756697801, 497.97088268291344, 256.64952852397545, 24], 1e-9, 'ays 5');
  // Sigma domain, 10 steps: the SD noise levels are the schedule's own σ at these times.
  const gs = buildTimesteps(sd, { steps: 10, spacing: 'ays', aysDomain: 'sigmas' });
  gs.slice(0, -1).forEach((t, i) => assert.ok(Math.abs(veSigma(sd, t) / AYS_TABLES.sd15.sigmas[i]! - 1) < 1e-9, `σ[${i}]`));
  assert.ok(Math.abs(gs[0]! - 999) < 1e-6);
  // loglinear_interp(sd1_sigmas, 7)
  closeAll(
    loglinearResample(AYS_TABLES.sd15.sigmas, 7),
    [14.614641229299998, 4.5892051782783, 2.391697369619659, 1.3943805092, 0.7431215272146431, 0.2883345709855391, 0.029167158199999998],
    1e-12,
    'resample',
  );
  assert.equal(buildTimesteps(sd, { steps: 1, spacing: 'ays' })[0], 999);
});

test('explicit list: validated, terminal appended unless given', () => {
  assert.deepEqual(buildTimesteps(linear, { timesteps: [999, 500.5, 10] }), [999, 500.5, 10, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(linear, { timesteps: [999, 500, CLEAN_TIME] }), [999, 500, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(linear, { timesteps: [999, 500], terminal: 'sigma_min' }), [999, 500, 0]);
  assert.throws(() => buildTimesteps(linear, { timesteps: [500, 999] }), /not strictly decreasing/);
  assert.throws(() => buildTimesteps(linear, { timesteps: [1000, 10] }), /outside the schedule/);
  assert.throws(() => buildTimesteps(linear, { timesteps: [999, 0], terminal: 'sigma_min' }), /not strictly decreasing/);
  assert.throws(() => buildTimesteps(linear, { timesteps: [999, 10], steps: 3 }), /explicit list has 2/);
  assert.throws(() => buildTimesteps(linear, { timesteps: [] }), /empty/);
});

test('terminals and errors', () => {
  assert.deepEqual(buildTimesteps(linear, { steps: 2, spacing: 'leading', family: 'ddim', stepsOffset: 1, terminal: 'sigma_min' }), [501, 1, 0]);
  // DDIM linspace already ends at 0: a sigma_min terminal would give a zero-length step.
  assert.throws(() => buildTimesteps(linear, { steps: 4, spacing: 'linspace', family: 'ddim', terminal: 'sigma_min' }), /not strictly decreasing/);
  for (const bad of [0, -1, 2.5, Number.NaN]) assert.throws(() => buildTimesteps(linear, { steps: bad }), /integer ≥ 1/);
  assert.throws(() => buildTimesteps(linear, {}), /steps must be/);
  assert.throws(
    () => buildTimesteps(linear, { steps: 4, spacing: 'even' as never }),
    (e: Error) => TIMESTEP_SPACINGS.every((s) => e.message.includes(s)),
  );
  assert.throws(() => buildTimesteps(linear, { steps: 4, family: 'k' as never }), /unknown family/);
  assert.throws(() => buildTimesteps(linear, { steps: 4, terminal: 'one' as never }), /unknown terminal/);
  assert.throws(() => buildTimesteps(linear, { steps: 1000, spacing: 'leading', family: 'dpm' }), /not strictly decreasing/);
  // One step: the noisiest point, then the terminal.
  assert.deepEqual(buildTimesteps(linear, { steps: 1, spacing: 'trailing' }), [999, CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(linear, { steps: 1, spacing: 'logSNR' }), [999, 0]);
});

test('too many steps: the grid says the most its spacing allows, and the budget that fits (issue 10 item 11)', async () => {
  const count = (f: () => unknown): TimestepCountError => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof TimestepCountError && e instanceof RangeError, String(e));
      return e;
    }
    assert.fail('expected a TimestepCountError');
  };
  // leading, DPM family: ratio = N // (S+1) ≥ 1 needs S ≤ N − 1.
  const dpm = count(() => buildTimesteps(linear, { steps: 1000, spacing: 'leading', family: 'dpm' }));
  assert.equal(dpm.maxSteps, 999);
  assert.match(dpm.message, /at most 999 steps for 1000 training timesteps; pass steps ≤ 999/);
  assert.deepEqual(buildTimesteps(linear, { steps: 999, spacing: 'leading', family: 'dpm' }).slice(-3), [2, 1, CLEAN_TIME]);
  // leading, DDIM family: ratio = N // S ≥ 1 needs S ≤ N; refused before building 100 000 points.
  const ddim = count(() => buildTimesteps(linear, { steps: 100_000, spacing: 'leading', family: 'ddim' }));
  assert.equal(ddim.maxSteps, 1000);
  assert.match(ddim.message, /at most 1000 steps for 1000 training timesteps/);
  assert.equal(buildTimesteps(linear, { steps: 1000, spacing: 'leading', family: 'ddim' }).length, 1001);
  // The DDIM code's quadratic grid: int(linspace(0, √800, S)²) repeats 0 and 1 from S = 30 on.
  assert.equal(count(() => buildTimesteps(linear, { steps: 40, spacing: 'quadratic' })).maxSteps, 29);
  assert.equal(buildTimesteps(linear, { steps: 29, spacing: 'quadratic' }).length, 30);
  // Fractional spacings are capped at MAX_GRID_STEPS (an effectively endless run is refused up front).
  const karras = count(() => buildTimesteps(linear, { steps: 100_000, spacing: 'karras' }));
  assert.equal(MAX_GRID_STEPS, 10_000);
  assert.equal(karras.maxSteps, 10_000);
  assert.match(karras.message, /karras grid for 100000 steps exceeds the cap of 10000 intervals/);
  assert.equal(buildTimesteps(linear, { steps: 10_000, spacing: 'karras' }).length, 10_001);
  // Through a plan, in model calls: the largest NFE this grid allows for this solver.
  const model = gaussianModel({ schedule: linear, sampleShape: [2] });
  await assert.rejects(
    sample({ model, schedule: linear, solver: 'dpmpp_2m', nfe: 1000, timesteps: { spacing: 'leading' } }),
    /dpmpp_2m with nfe = 1000 needs a grid of 1000 intervals.*at most 999 steps for 1000 training timesteps.*the largest budget on this grid is nfe = 999$/,
  );
  await assert.rejects(
    sample({ model, schedule: linear, solver: 'dpmpp_2m', nfe: 100_000, timesteps: { spacing: 'karras' } }),
    /cap of 10000 intervals.*the largest budget on this grid is nfe = 10000$/,
  );
  assert.equal(model.calls, 0, 'refused before any model call');
  assert.match(
    count(() => planSample({ schedule: linear, solver: 'heun', nfe: 5000, timesteps: { spacing: 'leading' } })).message,
    /largest budget on this grid is nfe = 2000$/,
  );
  assert.equal(planSample({ schedule: linear, solver: 'heun', nfe: 2000, timesteps: { spacing: 'leading' } }).calls, 1999);
  // PFDiff-2_1 spends M = 3N − 2 base intervals: at most 1000 → N ≤ 334.
  assert.match(count(() => planSample({ schedule: linear, solver: 'ddim', nfe: 1000, pfdiff: { k: 2, h: 1 } })).message, /nfe = 334$/);
  assert.equal(planSample({ schedule: linear, solver: 'ddim', nfe: 334, pfdiff: { k: 2, h: 1 } }).steps, 1000);
});

test('gridEndsClean resolves the terminal before the grid is built', () => {
  assert.equal(gridEndsClean(linear, {}), true);
  assert.equal(gridEndsClean(linear, { spacing: 'logSNR' }), false);
  assert.equal(gridEndsClean(linear, { spacing: 'logSNR', terminal: 'zero' }), true);
  assert.equal(gridEndsClean(linear, { spacing: 'karras', terminal: 'sigma_min' }), false);
  assert.equal(gridEndsClean(linear, { timesteps: [900, 100] }), true);
  assert.equal(gridEndsClean(linear, { timesteps: [900, 100], terminal: 'sigma_min' }), false);
  assert.equal(gridEndsClean(continuousVpSchedule(), {}), false);
});

test('timeDtype: Euler-family linspace in float32 (diffusers as shipped, default) or float64', () => {
  const s = discreteSchedule();
  const f32 = buildTimesteps(s, { spacing: 'linspace', family: 'euler', steps: 6 });
  const f64 = buildTimesteps(s, { spacing: 'linspace', family: 'euler', steps: 6, timeDtype: 'float64' });
  assert.deepEqual(f32.slice(0, 6), [999, Math.fround(799.2), Math.fround(599.4), Math.fround(399.6), Math.fround(199.8), 0]);
  assert.deepEqual(f64.slice(0, 6), [999, 799.2, 599.4000000000001, 399.6, 199.8, 0]);
  assert.throws(
    () => buildTimesteps(s, { spacing: 'linspace', family: 'euler', steps: 6, timeDtype: 'float16' as never }),
    /timeDtype must be 'float32' or 'float64'/,
  );
});

test('repeatedTerminal keeps a grid ending at t = 0 followed by the terminal t = 0 (identity last step); otherwise refused', () => {
  const s = discreteSchedule();
  const opts = { spacing: 'linspace' as const, family: 'ddim' as const, terminal: 'sigma_min' as const, steps: 4 };
  assert.deepEqual(buildTimesteps(s, { ...opts, repeatedTerminal: true }), [999, 666, 333, 0, 0]);
  assert.throws(() => buildTimesteps(s, opts), /not strictly decreasing at position 4 \(0 then 0\)/);
  // Only the last pair may repeat: a grid repeating earlier is still refused.
  assert.throws(() => buildTimesteps(s, { ...opts, steps: 1001, repeatedTerminal: true }), /cannot be strictly decreasing/);
});
