/**
 * DPM-Solver (noise prediction, singlestep), DPM-Solver++ (data prediction: 2S/3S singlestep, 2M/3M
 * multistep) and DPM-Solver++(2M) SDE on the closed-form Gaussian model (data N(0.5, 0.5²), float64).
 *
 * Setting of the convergence tests: the continuous VP schedule (β 0.1…20) from t = 1 to tMin = 1e-3,
 * on a smooth log-SNR grid λ_i = λ_0 + (λ_M − λ_0)·(u + 0.1·sin 2πu), u = i/M. Why: (1) the terminal
 * σ = 0 is singular for the noise-prediction forms (λ = +∞: the last interval is necessarily first
 * order there, which caps every solver at order 1–2), so orders are measured to a positive time;
 * (2) on an exactly uniform λ grid (constant h) multistep methods superconverge (3M measures 4.0),
 * so the grid is uniform-in-λ but smoothly perturbed. The clean end point is tested separately
 * (finite, accurate, call counts).
 */
import { MAX_THIRD_ORDER_SPAN } from '../src/core/solvers/exponential-integrator.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { CLEAN_TIME } from '../src/core/schedule/noise-schedule.js';
import { cleanLogSnrGrid, discreteGrid, logSnrGrid, measureOrder, moments, runOnGaussian, smoothLogSnrGrid } from './helpers/convergence.js';
import { dpmSolver1Spec, dpmSolver2Spec, dpmSolver3Spec } from '../src/core/solvers/dpm-solver.js';
import { dpmpp2sSpec, dpmpp3sSpec } from '../src/core/solvers/dpmpp-singlestep.js';
import { dpmpp2mSpec, dpmpp3mSpec } from '../src/core/solvers/dpmpp-multistep.js';
import { dpmpp2mSdeSpec } from '../src/core/solvers/dpmpp-2m-sde.js';
import { stepPlanForCalls } from '../src/core/solvers/singlestep-plan.js';
import { phi } from '../src/core/solvers/exponential-integrator.js';
import { ddimSpec } from '../src/core/solvers/ddim.js';
import type { SolverSpec } from '../src/core/solvers/types.js';
import type { DiffusionModel } from '../src/core/model.js';
import { createSolverContext } from '../src/core/solver-context.js';

const vp = continuousVpSchedule();

const STEPS = [24, 32, 48, 64, 96];
/* eslint-disable @typescript-eslint/no-explicit-any */
const ORDER_CASES: [string, SolverSpec<any>, object, number][] = [
  ['dpm_solver_1', dpmSolver1Spec, { lowerOrderFinal: false }, 1],
  ['dpm_solver_2', dpmSolver2Spec, { lowerOrderFinal: false }, 2],
  ['dpm_solver_3', dpmSolver3Spec, { lowerOrderFinal: false }, 3],
  ['dpmpp_2s', dpmpp2sSpec, { lowerOrderFinal: false }, 2],
  ['dpmpp_3s', dpmpp3sSpec, { lowerOrderFinal: false }, 3],
  ['dpmpp_2m midpoint', dpmpp2mSpec, { lowerOrderFinal: false }, 2],
  ['dpmpp_2m heun', dpmpp2mSpec, { lowerOrderFinal: false, solverType: 'heun' }, 2],
  ['dpmpp_3m', dpmpp3mSpec, { lowerOrderFinal: false }, 3],
  ['dpmpp_2m_sde eta=0', dpmpp2mSdeSpec, { lowerOrderFinal: false, eta: 0 }, 2],
];

for (const [label, spec, options, expected] of ORDER_CASES) {
  test(`${label}: measured convergence order ≈ ${expected} (steps ${STEPS.join(', ')})`, async () => {
    const r = await measureOrder(spec.create(options), (m) => smoothLogSnrGrid(vp, m), STEPS, { schedule: vp });
    assert.ok(
      r.order > expected - 0.3 && r.order < expected + 0.35,
      `${label}: order ${r.order.toFixed(3)}, errors ${r.errors.map((e) => e.toExponential(2)).join(' ')}`,
    );
    // Errors fall monotonically over the range.
    for (let i = 1; i < r.errors.length; i++) assert.ok(r.errors[i]! < r.errors[i - 1]!);
  });
}

test('dpm_solver_1 equals DDIM (ε-form, η = 0) for a step, to 1e-12', async () => {
  const sched = discreteSchedule();
  for (const grid of [
    [999, 800],
    [500, 499.5],
    [40, CLEAN_TIME],
    [700, 100, CLEAN_TIME],
  ]) {
    const a = await runOnGaussian(dpmSolver1Spec.create({ lowerOrderFinal: false }), grid, { schedule: sched });
    const b = await runOnGaussian(ddimSpec.create(), grid, { schedule: sched });
    for (let i = 0; i < a.x.length; i++) assert.ok(Math.abs(a.x[i]! - b.x[i]!) < 1e-12, `grid ${grid}: ${a.x[i]} vs ${b.x[i]}`);
  }
});

test('φ-functions: series and recurrence agree with the closed forms, limits hold', () => {
  for (const z of [-0.49, -0.51, 0.3, 0.7, -3, 2]) {
    assert.ok(Math.abs(phi(1, z) - Math.expm1(z) / z) < 1e-15);
    assert.ok(Math.abs(phi(2, z) - (Math.expm1(z) - z) / z ** 2) < 1e-13);
    assert.ok(Math.abs(phi(3, z) - (Math.expm1(z) - z - (z * z) / 2) / z ** 3) < 1e-12);
  }
  for (const k of [1, 2, 3, 4]) assert.equal(phi(k, -Infinity), 0);
  assert.equal(phi(2, 0), 0.5);
  assert.ok(Math.abs(phi(3, 0) - 1 / 6) < 1e-16);
});

test('DPM-Solver++(3M) integrates a quadratic x̂0(λ) exactly (the 2·h·φ_3 weight)', async () => {
  // On the Gaussian model the local error shrinks like h⁴ for an exact third-order weight; with
  // diffusers' half weight the global error would fall only like h² — covered by the order test.
  // Here: fixed-point check that halving h cuts the 3M error by ≥ 2³·0.8 between 48 and 96 steps.
  const r = await measureOrder(dpmpp3mSpec.create({ lowerOrderFinal: false }), (m) => smoothLogSnrGrid(vp, m), [48, 96], { schedule: vp });
  assert.ok(r.errors[0]! / r.errors[1]! > 6.4, `ratio ${r.errors[0]! / r.errors[1]!}`);
  // Exactness itself: a network whose x̂0 = a + bλ + cλ² ignores x. The data-prediction ODE gives
  // x_t/σ_t = x_s/σ_s + F(λ_t) − F(λ_s) with F(λ) = e^λ·(a + b(λ − 1) + c(λ² − 2λ + 2)), and every
  // third-order step (from the third grid point on) must reproduce it to round-off. Measured: ≤ 3e-16
  // for 3M; DPM-Solver++(2M) misses by 5e-3 … 0.24 on the same grids.
  const [a, b, c] = [0.3, -0.2, 0.05];
  const quadratic: DiffusionModel = {
    predictionType: 'sample',
    sampleShape: [1],
    predict: async (_x, call) => {
      const l = vp.lambda(call.t);
      return new Float64Array(call.batch).fill(a + b * l + c * l * l);
    },
  };
  const F = (l: number) => Math.exp(l) * (a + b * (l - 1) + c * (l * l - 2 * l + 2));
  const run = async (spec: SolverSpec<any>, grid: number[]) =>
    (
      await spec.create({ lowerOrderFinal: false })(
        Float64Array.of(0.7),
        grid,
        createSolverContext({ model: quadratic, schedule: vp, batch: 1, precision: 'float64' }),
      )
    )[0]!;
  // Grids fine enough that every third-order stencil spans at most MAX_THIRD_ORDER_SPAN in λ (a wider
  // one is taken at second order on purpose, see exponential-integrator.ts).
  for (const n of [24, 48, 96]) {
    const grid = smoothLogSnrGrid(vp, n);
    for (let i = 3; i < n; i++)
      assert.ok(vp.lambda(grid[i]!) - vp.lambda(grid[i - 3]!) <= MAX_THIRD_ORDER_SPAN, `${n} steps: stencil ${i} too wide for third order`);
    const exact = async (spec: SolverSpec<any>) =>
      vp.sigma(grid[n]!) * ((await run(spec, grid.slice(0, 3))) / vp.sigma(grid[2]!) + F(vp.lambda(grid[n]!)) - F(vp.lambda(grid[2]!)));
    const got = await run(dpmpp3mSpec, grid);
    assert.ok(Math.abs(got - (await exact(dpmpp3mSpec))) < 1e-13, `${n} steps: 3M ${got} vs exact ${await exact(dpmpp3mSpec)}`);
    assert.ok(Math.abs((await run(dpmpp2mSpec, grid)) - (await exact(dpmpp2mSpec))) > 1e-3, 'the check must tell a second-order solver apart');
  }
});

test("stepPlanForCalls follows DPM-Solver's fast plan; σ=0 end forces a final order 1", () => {
  assert.deepEqual(stepPlanForCalls(10, 3), [3, 3, 3, 1]);
  assert.deepEqual(stepPlanForCalls(9, 3, false), [3, 3, 2, 1]);
  assert.deepEqual(stepPlanForCalls(11, 3, false), [3, 3, 3, 2]);
  assert.deepEqual(stepPlanForCalls(11, 3), [3, 3, 3, 1, 1]);
  assert.deepEqual(stepPlanForCalls(8, 2, false), [2, 2, 2, 2]);
  assert.deepEqual(stepPlanForCalls(8, 2), [2, 2, 2, 1, 1]);
  assert.deepEqual(stepPlanForCalls(7, 2), [2, 2, 2, 1]);
  assert.deepEqual(stepPlanForCalls(3, 1), [1, 1, 1]);
  for (let nfe = 1; nfe <= 20; nfe++) {
    for (const order of [1, 2, 3]) {
      const plan = stepPlanForCalls(nfe, order);
      assert.equal(
        plan.reduce((a, b) => a + b, 0),
        nfe,
      );
      assert.equal(plan[plan.length - 1], 1);
    }
  }
  assert.throws(() => stepPlanForCalls(0, 3), /nfe must be an integer ≥ 1/);
});

test('exact call counts: callsForSteps / stepsForCalls match the calls made', async () => {
  const sched = discreteSchedule();
  const specs: SolverSpec<any>[] = [dpmSolver1Spec, dpmSolver2Spec, dpmSolver3Spec, dpmpp2sSpec, dpmpp3sSpec, dpmpp2mSpec, dpmpp3mSpec, dpmpp2mSdeSpec];
  for (const spec of specs) {
    for (const nfe of [1, 2, 5, 10, 11]) {
      const steps = spec.stepsForCalls(nfe);
      const calls = spec.callsForSteps(steps);
      assert.ok(calls <= nfe && spec.callsForSteps(steps + 1) > nfe, `${spec.name} nfe ${nfe}`);
      const run = await runOnGaussian(spec.create(), discreteGrid(1000, steps), { schedule: sched, batch: 1 });
      assert.equal(run.calls, calls, `${spec.name}, ${steps} steps`);
    }
  }
  // Singlestep defaults: order-k intervals, last one first order: 3·3 + 1 = 10 calls for 4 steps.
  assert.equal(dpmSolver3Spec.callsForSteps(4), 10);
  assert.equal(dpmSolver3Spec.stepsForCalls(10), 4);
  assert.equal(dpmpp2sSpec.callsForSteps(5, { lowerOrderFinal: false }), 10);
  // The adaptive plan: the grid has plan.length intervals and the run uses exactly nfe calls.
  for (const nfe of [9, 10, 11]) {
    const orders = stepPlanForCalls(nfe, 3);
    const steps = dpmpp3sSpec.stepsForCalls(nfe, { orders });
    assert.equal(steps, orders.length);
    assert.equal(dpmpp3sSpec.callsForSteps(steps, { orders }), nfe);
    const run = await runOnGaussian(dpmpp3sSpec.create({ orders }), discreteGrid(1000, steps), { schedule: sched, batch: 1 });
    assert.equal(run.calls, nfe);
  }
  assert.throws(() => dpmpp3sSpec.stepsForCalls(9, { orders: [3, 3, 3, 1] }), /needs 10 calls but the budget is 9/);
  assert.throws(() => dpmpp3sSpec.callsForSteps(5, { orders: [3, 3, 3, 1] }), /4 entries but the grid has 5 intervals/);
});

test('terminal at CLEAN_TIME (σ = 0, λ = +∞): finite and accurate for every solver', async () => {
  const sched = discreteSchedule();
  const cases: [SolverSpec<any>, object, number][] = [
    [dpmSolver1Spec, {}, 50],
    [dpmSolver2Spec, {}, 10],
    [dpmSolver3Spec, {}, 7],
    [dpmpp2sSpec, {}, 10],
    [dpmpp3sSpec, {}, 7],
    [dpmpp3sSpec, { orders: stepPlanForCalls(20, 3) }, stepPlanForCalls(20, 3).length],
    [dpmpp2mSpec, {}, 20],
    [dpmpp2mSpec, { lowerOrderFinal: false }, 20],
    [dpmpp3mSpec, { lowerOrderFinal: false }, 20],
    [dpmpp2mSdeSpec, { eta: 0, lowerOrderFinal: false }, 20],
  ];
  for (const [spec, options, steps] of cases) {
    const run = await runOnGaussian(spec.create(options), cleanLogSnrGrid(sched, steps), { schedule: sched });
    for (const v of run.x) assert.ok(Number.isFinite(v), `${spec.name}: non-finite output`);
    assert.ok(run.error < (spec === dpmSolver1Spec ? 0.08 : 0.06), `${spec.name} ${JSON.stringify(options)}: error ${run.error}`);
  }
});

test('singlestep into σ = 0 at order > 1 is refused with the fix', async () => {
  const sched = discreteSchedule();
  await assert.rejects(
    runOnGaussian(dpmSolver2Spec.create({ lowerOrderFinal: false }), discreteGrid(1000, 5), { schedule: sched }),
    /ends at the clean point.*set lowerOrderFinal: true/,
  );
  await assert.rejects(
    runOnGaussian(dpmpp3sSpec.create({ orders: stepPlanForCalls(11, 3, false) }), discreteGrid(1000, 4), { schedule: sched }),
    /end the orders plan with 1/,
  );
});

test('lowerOrderFinal (2M/3M): first-order last step below 15 steps, no effect from 15 on', async () => {
  const setup = { schedule: vp };
  const grid = (m: number): number[] => smoothLogSnrGrid(vp, m);
  for (const spec of [dpmpp2mSpec, dpmpp3mSpec]) {
    const lof = (await runOnGaussian(spec.create(), grid(10), setup)).x;
    const euler = (await runOnGaussian(spec.create({ lowerOrderFinal: false, eulerAtFinal: true }), grid(10), setup)).x;
    const full = (await runOnGaussian(spec.create({ lowerOrderFinal: false }), grid(10), setup)).x;
    if (spec === dpmpp2mSpec) assert.deepEqual(lof, euler); // 2M: only the last step is lowered
    assert.notDeepEqual(lof, full);
    const lof20 = (await runOnGaussian(spec.create(), grid(20), setup)).x;
    const full20 = (await runOnGaussian(spec.create({ lowerOrderFinal: false }), grid(20), setup)).x;
    assert.deepEqual(lof20, full20);
  }
  // Singlestep: lowerOrderFinal lowers the last interval (3 + 3 + 1 calls instead of 9).
  assert.equal(dpmSolver3Spec.callsForSteps(3), 7);
  assert.equal(dpmSolver3Spec.callsForSteps(3, { lowerOrderFinal: false }), 9);
});

test('DPM-Solver++(2M) SDE: eta = 0 is 2M; final distribution matches the data; deterministic per seed', async () => {
  const sched = discreteSchedule();
  const grid = discreteGrid(1000, 12);
  const a = await runOnGaussian(dpmpp2mSdeSpec.create({ eta: 0 }), grid, { schedule: sched });
  const b = await runOnGaussian(dpmpp2mSpec.create(), grid, { schedule: sched });
  for (let i = 0; i < a.x.length; i++) assert.ok(Math.abs(a.x[i]! - b.x[i]!) < 1e-12);

  // A log-SNR grid on the discrete schedule (49 intervals to t = 0, then the clean point): the SDE's
  // second-order term amplifies the injected noise when consecutive steps differ much in h (a
  // time-uniform 50-step grid gives variance 0.35 here; 0.27 at 100 steps).
  const g50 = [...logSnrGrid(sched, 49, 999, 0), CLEAN_TIME];
  const run = await runOnGaussian(dpmpp2mSdeSpec.create(), g50, { schedule: sched, batch: 1000, dim: 4, seed: 7 });
  const { mean, variance } = moments(run.x);
  // 4000 values: the mean's standard error is 0.5/√4000 ≈ 0.008; the variance's ≈ 0.25·√(2/4000) ≈ 0.0056.
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(variance - 0.25) < 0.025, `variance ${variance}`);
  assert.equal(run.calls, 50);
  const again = await runOnGaussian(dpmpp2mSdeSpec.create(), g50, { schedule: sched, batch: 1000, dim: 4, seed: 7 });
  assert.deepEqual(again.x, run.x);
  const other = await runOnGaussian(dpmpp2mSdeSpec.create(), g50, { schedule: sched, batch: 1000, dim: 4, seed: 8 });
  assert.notDeepEqual(other.x, run.x);
});

test('options are validated: unknown keys list the valid ones, bad values name the range', () => {
  assert.throws(() => dpmpp2mSpec.create({ solver_type: 'heun' } as any), /unknown option "solver_type".*solverType.*lowerOrderFinal.*eulerAtFinal/);
  assert.throws(() => dpmpp2mSpec.create({ solverType: 'rk4' } as any), /option "solverType" of solver "dpmpp_2m" must be one of 'midpoint', 'heun'/);
  assert.throws(() => dpmSolver2Spec.create({ r1: 1.5 }), /option "r1" of solver "dpm_solver_2" must be a number in \(0, 1\]/);
  assert.throws(() => dpmSolver3Spec.create({ r1: 0.7, r2: 0.6 }), /need r1 < r2/);
  assert.throws(() => dpmSolver3Spec.create({ order: 2 } as any), /unknown option "order".*orders/);
  assert.throws(() => dpmSolver2Spec.create({ orders: [3, 1] }), /option "orders" of solver "dpm_solver_2" must be a list of integers in \[1, 2\]/);
  assert.throws(() => dpmpp2mSdeSpec.create({ eta: -1 }), /option "eta" of solver "dpmpp_2m_sde" must be a number ≥ 0/);
  assert.throws(() => dpmpp3mSpec.stepsForCalls(0), /integer ≥ 1/);
});

test('the intermediate point r1 is honoured (r1 = 1/2 vs 2/3 differ, both second order accurate)', async () => {
  const grid = smoothLogSnrGrid(vp, 32);
  const a = await runOnGaussian(dpmpp2sSpec.create({ lowerOrderFinal: false }), grid, { schedule: vp });
  const b = await runOnGaussian(dpmpp2sSpec.create({ lowerOrderFinal: false, r1: 2 / 3 }), grid, { schedule: vp });
  assert.notDeepEqual(a.x, b.x);
  assert.ok(a.error < 5e-3 && b.error < 5e-3, `${a.error} ${b.error}`);
});
