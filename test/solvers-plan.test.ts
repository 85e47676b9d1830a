/**
 * Solvers plan themselves: `plan().calls` is the number of calls a real run makes (every registered
 * solver, with and without PFDiff), `stepsForCalls` is the closed-form inverse of `callsForSteps`,
 * stochasticity is a function of the options, and PFDiff checks every base-solver option through
 * the base solver's own rules, refusing what its variant cannot honour.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planCalls, plannedCalls } from '../src/core/frdiff/planned-calls.js';
import { pfdiff, pfdiffVariant } from '../src/core/pfdiff/pfdiff-spec.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { planSample, sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { defineSolver } from '../src/core/solvers/define-solver.js';
import { ddimSpec } from '../src/core/solvers/ddim.js';
import { getSolver, listSolvers } from '../src/core/solvers/registry.js';
import type { SolverSpec } from '../src/core/solvers/types.js';
import { CLEAN_TIME } from '../src/core/schedule/noise-schedule.js';

const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });

/** The PFDiff variant of a solver, or undefined when it has none. */
function variantOf(name: string): string | undefined {
  try {
    return pfdiffVariant(name);
  } catch {
    return undefined;
  }
}

describe('plan().calls is the call count of the real run', () => {
  const nfes = [4, 7, 10];
  for (const spec of listSolvers()) {
    it(`${spec.name}: nfe 4, 7, 10 with and without PFDiff, on a clean-end and a sigma_min-end grid`, async () => {
      for (const nfe of nfes) {
        for (const grid of [{}, { spacing: 'logSNR' as const }]) {
          for (const kh of [undefined, { k: 2, h: 1 }]) {
            if (kh && variantOf(spec.name) === undefined) continue;
            const options = { schedule, solver: spec.name, nfe, timesteps: grid, ...(kh ? { pfdiff: kh } : {}) };
            const plan = planSample(options);
            const model = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [3] });
            const run = await sample({ ...options, model, batch: 2, seed: 3, precision: 'float64' });
            const what = `${spec.name} nfe ${nfe} ${grid.spacing ?? 'linspace (clean end)'}${kh ? ' PFDiff 2_1' : ''}`;
            assert.equal(run.calls, plan.calls, what);
            assert.equal(model.calls, plan.calls, `${what} (counted by the model)`);
            assert.deepEqual(run.timesteps, plan.timesteps, what);
            assert.equal(plan.steps, plan.timesteps.length - 1);
            assert.ok(plan.calls <= nfe, `${what}: ${plan.calls} calls > budget`);
            if (kh) assert.equal(plan.calls, nfe, `${what}: PFDiff spends the budget exactly`);
            assert.equal(await plannedCalls({ ...options, model }), plan.calls);
            assert.equal(model.calls, plan.calls, 'plannedCalls makes no model call');
          }
        }
      }
    });
  }
  it('the known counts: one call per step, Heun 2M − 1, PLMS M + 1, singlestep plans spend the budget', () => {
    const calls = (solver: string, nfe: number) => planCalls({ schedule, solver, nfe } as never);
    assert.deepEqual(
      [4, 7, 10].map((n) => calls('ddim', n)),
      [4, 7, 10],
    );
    assert.deepEqual(
      [4, 7, 10].map((n) => calls('heun', n)),
      [3, 7, 9],
    );
    assert.deepEqual(
      [4, 7, 10].map((n) => planSample({ schedule, solver: 'heun', nfe: n }).steps),
      [2, 4, 5],
    );
    assert.deepEqual(
      [4, 7, 10].map((n) => calls('plms', n)),
      [4, 7, 10],
    );
    assert.deepEqual(
      [4, 7, 10].map((n) => planSample({ schedule, solver: 'plms', nfe: n }).steps),
      [3, 6, 9],
    );
    assert.deepEqual(
      [4, 7, 10].map((n) => calls('dpmpp_3s', n)),
      [4, 7, 10],
    );
    assert.deepEqual(planSample({ schedule, solver: 'dpm_solver_3', nfe: 10 }).options, { lowerOrderFinal: true, orders: [3, 3, 3, 1] });
    // The terminal is known before the grid is built: 11 calls end [3, 3, 3, 1, 1] into σ = 0, [3, 3, 3, 2] at sigma_min.
    assert.deepEqual(planSample({ schedule, solver: 'dpm_solver_3', nfe: 11 }).options.orders, [3, 3, 3, 1, 1]);
    assert.deepEqual(planSample({ schedule, solver: 'dpm_solver_3', nfe: 11, timesteps: { spacing: 'logSNR' } }).options.orders, [3, 3, 3, 2]);
    assert.equal(planSample({ schedule, solver: 'dpm_solver_3', nfe: 11, timesteps: { spacing: 'logSNR' } }).timesteps.length, 5);
    assert.equal(planSample({ schedule, solver: 'heun', steps: 5 }).calls, 9);
    assert.equal(planSample({ schedule, solver: 'ddim', timesteps: { timesteps: [900, 500, 100] } }).calls, 3);
    assert.equal(planSample({ schedule, solver: 'ddim', nfe: 4, pfdiff: { k: 3, h: 2 } }).steps, 13);
  });
});

describe('stepsForCalls is the closed-form inverse of callsForSteps', () => {
  const cases: [string, Record<string, unknown>][] = [
    ...listSolvers().map((s): [string, Record<string, unknown>] => [s.name, {}]),
    ['heun', { lowerOrderFinal: false }],
    ['plms', { firstStep: 'euler' }],
    ['dpm_solver_2', { lowerOrderFinal: false }],
    ['dpm_solver_3', { lowerOrderFinal: false }],
    ['dpmpp_3s', { lowerOrderFinal: false }],
  ];
  for (const [name, options] of cases) {
    it(`${name} ${JSON.stringify(options)}: calls(M) ≤ N < calls(M + 1) for N = 1…60`, () => {
      const spec: SolverSpec = getSolver(name);
      for (let nfe = 1; nfe <= 60; nfe++) {
        if (spec.callsForSteps(1, options) > nfe) {
          assert.throws(() => spec.stepsForCalls(nfe, options), /model calls for one step|cannot pay one order/);
          continue;
        }
        const m = spec.stepsForCalls(nfe, options);
        assert.ok(spec.callsForSteps(m, options) <= nfe, `${name} N=${nfe}: calls(${m}) = ${spec.callsForSteps(m, options)}`);
        assert.ok(spec.callsForSteps(m + 1, options) > nfe, `${name} N=${nfe}: M=${m} is not the most`);
      }
    });
  }
  it('defineSolver: one call per step by default, a declared cost otherwise', () => {
    const twice = defineSolver<{ extra: boolean }>({
      name: 'test_twice',
      description: 'two calls per step (test)',
      order: 1,
      gridFamily: 'ddim',
      options: { defaults: { extra: false }, rules: { extra: { kind: 'boolean', doc: 'one more call per run' } } },
      cost: { callsForSteps: (m, o) => 2 * m + (o.extra ? 1 : 0), stepsForCalls: (n, o) => Math.floor((n - (o.extra ? 1 : 0)) / 2) },
      step:
        () =>
        async ({ s, x, ctx }) => ({ x: (await ctx.evaluate(x, s)).x0 }),
    });
    assert.equal(twice.callsForSteps(5), 10);
    assert.equal(twice.stepsForCalls(11, { extra: true }), 5);
    assert.throws(() => twice.stepsForCalls(2, { extra: true }), /"test_twice" needs 3 model calls for one step, more than the budget of 2/);
    assert.throws(() => twice.callsForSteps(2, { extra: 1 } as never), /option "extra" of solver "test_twice" must be true or false, got 1/);
    assert.equal(ddimSpec.stepsForCalls(13), 13);
  });
});

describe('stochastic is a function of the options', () => {
  it('DDIM with η > 0, Euler ancestral with η > 0, DDPM and the SDE solver are stochastic; PFDiff runs are not', () => {
    assert.equal(ddimSpec.stochastic(), false);
    assert.equal(ddimSpec.stochastic({ eta: 0.3 }), true);
    assert.equal(getSolver('euler_a').stochastic(), true);
    assert.equal(getSolver('euler_a').stochastic({ eta: 0 }), false);
    assert.equal(getSolver('ddpm').stochastic(), true);
    assert.equal(getSolver('dpmpp_2m_sde').stochastic({ eta: 0 }), false);
    assert.equal(getSolver('unipc').stochastic(), false);
    assert.equal(planSample({ schedule, solver: 'ddim', nfe: 5, solverOptions: { eta: 1 } }).stochastic, true);
    assert.equal(planSample({ schedule, solver: 'ddim', nfe: 5 }).stochastic, false);
    assert.equal(planSample({ schedule, solver: 'ddim', nfe: 5, pfdiff: { k: 1, h: 1 } }).stochastic, false);
    assert.equal(planSample({ schedule, solver: 'lms', nfe: 5, solverOptions: { order: 2 } }).order, 2);
    assert.equal(getSolver('unipc').order, 3);
    assert.equal(planSample({ schedule, solver: 'unipc', nfe: 5, solverOptions: { order: 1 } }).order, 2);
  });
});

describe('PFDiff validates every base-solver option and refuses what it cannot honour', () => {
  const model = gaussianModel({ schedule, mean: 0.5, std: 0.5 });
  const run = (solver: string, solverOptions: Record<string, unknown>, pf = { k: 1, h: 1 }) =>
    sample({ model, schedule, solver, nfe: 4, solverOptions, pfdiff: pf, initialNoise: Float64Array.of(1), precision: 'float64' });
  it('issue 10 item 5: unipc {order: 3, variant: bh1, bogus: 1} with PFDiff names bogus', async () => {
    await assert.rejects(run('unipc', { order: 3, variant: 'bh1', bogus: 1 }), /unknown option "bogus" for solver "unipc": valid options are variant/);
    await assert.rejects(
      plannedCalls({ model, schedule, solver: 'unipc', nfe: 4, solverOptions: { bogus: 1 }, pfdiff: { k: 1, h: 1 } }),
      /unknown option "bogus"/,
    );
    // Without PFDiff the same key throws the same error.
    await assert.rejects(
      sample({ model, schedule, solver: 'unipc', nfe: 4, solverOptions: { bogus: 1 } as never }),
      /unknown option "bogus" for solver "unipc"/,
    );
  });
  it('options the variant ignores are refused with the fix; defaults given explicitly are accepted', async () => {
    await assert.rejects(
      run('unipc', { order: 3, variant: 'bh1' }),
      /multistep-experimental variant around unipc cannot honour option "order" = 3, "variant" = "bh1" .*drop order, variant, or sample with unipc without PFDiff/,
    );
    await assert.rejects(run('unipc', { variant: 'bh1' }), /cannot honour option "variant" = "bh1"/);
    await assert.rejects(run('dpmpp_2m', { solverType: 'heun' }), /cannot honour option "solverType" = "heun"/);
    await assert.rejects(run('dpm_solver_2', { orders: [2, 2] }), /past-only variant around dpm_solver_2 cannot honour option "orders" = \[2,2\]/);
    await assert.rejects(run('dpmpp_3s', { lowerOrderFinal: false }), /cannot honour option "lowerOrderFinal" = false/);
    await assert.rejects(run('ddim', { eta: 0.5 }), /PFDiff wraps the deterministic ddim \(eta = 0\), got eta = 0\.5: drop eta or set it to 0/);
    await assert.rejects(run('ddim', { etaa: 0 }), /unknown option "etaa" for solver "ddim"/);
    await assert.rejects(run('dpmpp_2m', { solverType: 'rk4' }), /option "solverType" of solver "dpmpp_2m" must be one of 'midpoint', 'heun'/);
    const plain = await run('unipc', {});
    const explicitDefaults = await run('unipc', { order: 2, variant: 'bh2', predictX0: true, lowerOrderFinal: true, disableCorrector: [] });
    assert.equal(explicitDefaults.samples[0], plain.samples[0]);
    assert.equal((await run('ddim', { eta: 0 })).samples[0], (await run('ddim', {})).samples[0]);
  });
  it('the past-only variant honours r1 (the samples change with it)', async () => {
    const a = await run('dpm_solver_2', {}, { k: 2, h: 1 });
    const b = await run('dpm_solver_2', { r1: 0.3 }, { k: 2, h: 1 });
    assert.equal(a.calls, 4);
    assert.equal(b.calls, 4);
    assert.ok(Math.abs(a.samples[0]! - b.samples[0]!) > 1e-6, `${a.samples[0]} vs ${b.samples[0]}`);
    await assert.rejects(run('dpm_solver_3', { r1: 0.7, r2: 0.6 }), /need r1 < r2/);
  });
  it('pfdiff(spec) is a spec: plan, cost and errors that name the fix', () => {
    const spec = pfdiff(ddimSpec, { k: 2, h: 1 });
    assert.equal(spec.name, 'ddim');
    assert.equal(spec.stepsForCalls(4), 10);
    assert.equal(spec.callsForSteps(10), 4);
    const plan = spec.plan({ schedule, nfe: 4, timesteps: { spacing: 'linspace_floor' } });
    assert.deepEqual(plan.timesteps, [999, 888, 777, 666, 555, 444, 333, 222, 111, 0, CLEAN_TIME]);
    assert.deepEqual(plan.pfdiff, { k: 2, h: 1, variant: 'first-order', quantity: 'epsilon' });
    const past = pfdiff(getSolver('dpm_solver_3'), { k: 1, h: 1 });
    assert.throws(() => past.create(), /past-only variant around dpm_solver_3 solver depends on the NFE budget.*plan it with nfe/);
    assert.throws(() => past.plan({ schedule, steps: 5 }), /needs an nfe budget/);
    assert.throws(() => pfdiff(getSolver('heun'), { k: 1, h: 1 }), /no variant for solver "heun"/);
    assert.throws(() => spec.plan({ schedule, timesteps: { timesteps: [900, 600, 300] } }), /M = N·\(k\+1\) − k intervals, got M = 3/);
  });
});
