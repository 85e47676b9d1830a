/**
 * UniPC (bh1/bh2, orders 1–3, corrector) on the closed-form Gaussian model (data N(0.5, 0.5²),
 * float64). Convergence setting as in solvers-dpm.test.ts: continuous VP schedule to tMin = 1e-3 on a
 * smoothly perturbed log-SNR grid (the σ = 0 end is singular for λ-based higher-order forms; a
 * constant-h grid makes multistep methods superconverge).
 *
 * Measured: the corrector UniC-p raises the predictor's order p by one (Zhao et al. 2023, Thm 3.3),
 * so `order: p` converges at p + 1; with every corrector disabled UniP-p converges at p (and UniP-2
 * with bh2 is DPM-Solver++(2M) exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { cleanLogSnrGrid, discreteGrid, measureOrder, runOnGaussian, smoothLogSnrGrid } from './helpers/convergence.js';
import { unipcSpec, type UniPcOptions } from '../src/core/solvers/unipc.js';
import { dpmpp2mSpec, dpmpp3mSpec } from '../src/core/solvers/dpmpp-multistep.js';

const vp = continuousVpSchedule();

const STEPS = [24, 32, 48, 64, 96];
const ALL = [...Array(200).keys()];
const CASES: [string, Partial<UniPcOptions>, number][] = [
  ['bh1, order 1', { variant: 'bh1', order: 1 }, 2],
  ['bh1, order 2', { variant: 'bh1', order: 2 }, 3],
  ['bh1, order 3', { variant: 'bh1', order: 3 }, 4],
  ['bh2, order 1', { variant: 'bh2', order: 1 }, 2],
  ['bh2, order 2', { variant: 'bh2', order: 2 }, 3],
  ['bh2, order 3', { variant: 'bh2', order: 3 }, 4],
  ['bh1, order 2, noise prediction', { variant: 'bh1', order: 2, predictX0: false }, 3],
  ['bh2, order 3, noise prediction', { variant: 'bh2', order: 3, predictX0: false }, 4],
  ['bh2, order 2, no corrector (UniP-2)', { order: 2, disableCorrector: ALL }, 2],
  ['bh2, order 3, no corrector (UniP-3)', { order: 3, disableCorrector: ALL }, 3],
];

for (const [label, options, expected] of CASES) {
  test(`unipc ${label}: measured order ≈ ${expected}`, async () => {
    const r = await measureOrder(unipcSpec.create({ ...options, lowerOrderFinal: false }), (m) => smoothLogSnrGrid(vp, m), STEPS, { schedule: vp });
    assert.ok(
      r.order > expected - 0.3 && r.order < expected + 0.4,
      `order ${r.order.toFixed(3)}, errors ${r.errors.map((e) => e.toExponential(2)).join(' ')}`,
    );
  });
}

test('UniP-2 (bh2, no corrector) is DPM-Solver++(2M) midpoint to 1e-12', async () => {
  const grid = smoothLogSnrGrid(vp, 20);
  const a = await runOnGaussian(unipcSpec.create({ disableCorrector: ALL, lowerOrderFinal: false }), grid, { schedule: vp });
  const b = await runOnGaussian(dpmpp2mSpec.create({ lowerOrderFinal: false }), grid, { schedule: vp });
  for (let i = 0; i < a.x.length; i++) assert.ok(Math.abs(a.x[i]! - b.x[i]!) < 1e-12);
});

test('UniP-3 (no corrector) equals DPM-Solver++(3M) with the exact 2·h·φ_3 weight, to 1e-12', async () => {
  // UniPC solves its order conditions for ρ independently of DPM-Solver++'s divided differences;
  // agreeing with our 3M confirms the D2 weight (diffusers' half weight would differ at O(h³)).
  const grid = smoothLogSnrGrid(vp, 20);
  const a = await runOnGaussian(unipcSpec.create({ order: 3, disableCorrector: ALL, lowerOrderFinal: false }), grid, { schedule: vp });
  const b = await runOnGaussian(dpmpp3mSpec.create({ lowerOrderFinal: false }), grid, { schedule: vp });
  for (let i = 0; i < a.x.length; i++) assert.ok(Math.abs(a.x[i]! - b.x[i]!) < 1e-12, `${a.x[i]} vs ${b.x[i]}`);
});

test('the corrector costs no call: NFE = steps', async () => {
  const sched = discreteSchedule();
  for (const steps of [1, 2, 5, 10]) {
    for (const order of [1, 2, 3]) {
      const run = await runOnGaussian(unipcSpec.create({ order }), discreteGrid(1000, steps), { schedule: sched, batch: 1 });
      assert.equal(run.calls, steps);
      assert.equal(unipcSpec.callsForSteps(steps, { order }), steps);
    }
  }
  assert.equal(unipcSpec.stepsForCalls(7), 7);
});

test('disableCorrector changes the result; disabling after the last step changes nothing', async () => {
  const grid = smoothLogSnrGrid(vp, 10);
  const base = await runOnGaussian(unipcSpec.create(), grid, { schedule: vp });
  const off3 = await runOnGaussian(unipcSpec.create({ disableCorrector: [3] }), grid, { schedule: vp });
  const offLast = await runOnGaussian(unipcSpec.create({ disableCorrector: [9] }), grid, { schedule: vp });
  assert.notDeepEqual(off3.x, base.x);
  assert.ok(Math.abs(off3.error - base.error) > 1e-6);
  assert.deepEqual(offLast.x, base.x);
});

test('lowerOrderFinal lowers the last orders (order ≤ steps − i)', async () => {
  const grid = smoothLogSnrGrid(vp, 8);
  const lof = await runOnGaussian(unipcSpec.create({ order: 3 }), grid, { schedule: vp });
  const full = await runOnGaussian(unipcSpec.create({ order: 3, lowerOrderFinal: false }), grid, { schedule: vp });
  assert.notDeepEqual(lof.x, full.x);
  // With order 1 the rule has nothing to lower.
  const o1a = await runOnGaussian(unipcSpec.create({ order: 1 }), grid, { schedule: vp });
  const o1b = await runOnGaussian(unipcSpec.create({ order: 1, lowerOrderFinal: false }), grid, { schedule: vp });
  assert.deepEqual(o1a.x, o1b.x);
});

test('terminal at CLEAN_TIME: finite and accurate, data and noise prediction, bh1 and bh2', async () => {
  const sched = discreteSchedule();
  for (const variant of ['bh1', 'bh2'] as const) {
    for (const predictX0 of [true, false]) {
      for (const order of [1, 2, 3]) {
        for (const lowerOrderFinal of [true, false]) {
          const run = await runOnGaussian(unipcSpec.create({ variant, predictX0, order, lowerOrderFinal }), cleanLogSnrGrid(sched, 20), {
            schedule: sched,
          });
          for (const v of run.x) assert.ok(Number.isFinite(v));
          assert.ok(run.error < 0.06, `${variant} x0=${predictX0} order ${order}: error ${run.error}`);
        }
      }
    }
  }
});

test('options are validated with the fix in the message', () => {
  assert.throws(() => unipcSpec.create({ solver_type: 'bh1' } as never), /unknown option "solver_type".*variant.*order.*disableCorrector.*predictX0/);
  assert.throws(() => unipcSpec.create({ variant: 'bh3' as never }), /option "variant" of solver "unipc" must be one of 'bh1', 'bh2'/);
  assert.throws(() => unipcSpec.create({ order: 4 }), /option "order" of solver "unipc" must be an integer in \[1, 3\]/);
  assert.throws(() => unipcSpec.create({ disableCorrector: [-1] }), /option "disableCorrector" of solver "unipc" must be a list of integers ≥ 0/);
});
