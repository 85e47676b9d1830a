/**
 * PFDiff: the published test vectors (docs/pfdiff.md), exact call counts, the first-order step φ,
 * the past-only variant for singlestep solvers with its remainder rule, the experimental multistep
 * variant (measured), the (k, h) picker, and "PFDiff beats DDIM at equal NFE ≤ 10".
 */
import { modelCallAt } from '../src/core/model.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sample } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { createSolverContext } from '../src/core/solver-context.js';
import { buildTimesteps } from '../src/core/timesteps.js';
import { gaussianBatch } from '../src/core/rng.js';
import { firstOrderStep, predictionAt, storedQuantity } from '../src/core/pfdiff/first-order-step.js';
import { createPfdiffSolver, pfdiffBaseSteps, pfdiffCallsForSteps, PFDIFF_CONFIGS, type PfdiffKH } from '../src/core/pfdiff/pfdiff.js';
import { blockOrders, createPfdiffHigherOrderSolver, pfdiffHigherOrderBaseSteps } from '../src/core/pfdiff/pfdiff-higher-order.js';
import { createMultistepExtrapolationSolver, createPfdiffMultistepSolver } from '../src/core/pfdiff/pfdiff-multistep.js';
import { pickBestKH, rmsError } from '../src/core/pfdiff/pick-kh.js';
import { stepPlanForCalls } from '../src/core/solvers/singlestep-plan.js';
import type { ModelCall } from '../src/core/model.js';
import type { NumArray } from '../src/core/tensor.js';

// The toy of docs/pfdiff.md: data N(0.5, 0.5²), linear β 1e-4…0.02 over 1000 steps, x_T = 1.
const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });
const model = gaussianModel({ schedule, mean: 0.5, std: 0.5 });
const EXACT = 0.9984193387937014;
const KH = (s: string): PfdiffKH => ({ k: Number(s[0]), h: Number(s[2]) });

const VECTORS: Record<number, Record<string, number>> = {
  4: {
    ddim: 0.6639201888893127,
    '1_1': 1.3041740939042787,
    '2_1': 1.0365055053147236,
    '2_2': 1.5165718881073251,
    '3_1': 0.9014422479850592,
    '3_2': 1.233662781634902,
    '3_3': 1.588929608580127,
  },
  6: {
    ddim: 0.7691311768309763,
    '1_1': 1.1283866999466285,
    '2_1': 0.9984687831403538,
    '2_2': 1.2617220092988235,
    '3_1': 0.9302706064995435,
    '3_2': 1.1039562598979347,
    '3_3': 1.3258449593494956,
  },
  10: {
    ddim: 0.8604630959492559,
    '1_1': 1.045117659174432,
    '2_1': 0.9795651825733522,
    '2_2': 1.1114036561172087,
    '3_1': 0.9481223080378646,
    '3_2': 1.0370175741779022,
    '3_3': 1.1436000797151271,
  },
};

async function toy(
  nfe: number,
  solver: string,
  pfdiff?: PfdiffKH & { quantity?: 'epsilon' | 'x0' | 'v' },
  spacing: 'linspace_floor' | undefined = 'linspace_floor',
) {
  return sample({
    model,
    schedule,
    solver,
    nfe,
    ...(pfdiff ? { pfdiff } : {}),
    ...(spacing ? { timesteps: { spacing } } : {}),
    initialNoise: Float64Array.of(1),
    precision: 'float64',
  });
}

describe('PFDiff test vectors (docs/pfdiff.md, official first-order code in float64)', () => {
  it('the exact ODE end point of the toy', () => {
    assert.ok(Math.abs(model.exactOdeSolution(Float64Array.of(1), 999, -1)[0]! - EXACT) < 1e-12);
  });
  for (const n of [4, 6, 10]) {
    it(`N = ${n}: DDIM and the six k_h to 1e-9, with exactly N calls`, async () => {
      const ddim = await toy(n, 'ddim');
      assert.equal(ddim.calls, n);
      assert.ok(Math.abs(ddim.samples[0]! - VECTORS[n]!['ddim']!) < 1e-9, `DDIM ${ddim.samples[0]}`);
      for (const name of ['1_1', '2_1', '2_2', '3_1', '3_2', '3_3']) {
        const kh = KH(name);
        const r = await toy(n, 'ddim', kh);
        assert.equal(r.calls, n, `${name} calls`);
        assert.equal(r.steps, n * (kh.k + 1) - kh.k, `${name} base grid`);
        assert.ok(Math.abs(r.samples[0]! - VECTORS[n]![name]!) < 1e-9, `${name}: ${r.samples[0]} vs ${VECTORS[n]![name]}`);
        // DPM-Solver-1 and Euler are the same ε-form step.
        for (const base of ['dpm_solver_1', 'euler']) {
          const e = await toy(n, base, kh);
          assert.ok(Math.abs(e.samples[0]! - VECTORS[n]![name]!) < 1e-9, `${base} ${name}`);
        }
      }
    });
  }
  it('worked example: N = 4, 2_1 → M = 10, calls at 999, 777, 444, 111', async () => {
    const times: number[] = [];
    const counting = { ...model, predict: (x: NumArray, call: ModelCall) => (times.push(call.modelTime), model.predict(x, call)) };
    const r = await sample({
      model: counting,
      schedule,
      nfe: 4,
      pfdiff: { k: 2, h: 1 },
      timesteps: { spacing: 'linspace_floor' },
      initialNoise: Float64Array.of(1),
      precision: 'float64',
    });
    assert.deepEqual(r.timesteps, [999, 888, 777, 666, 555, 444, 333, 222, 111, 0, -1]);
    assert.deepEqual(times, [999, 777, 444, 111]);
  });
  it('x̂0 reuse (dpmpp_1, or ddim with reuse x0) to the printed precision', async () => {
    const cases: [number, string, number][] = [
      [4, '1_1', 0.66473],
      [4, '2_1', 0.79566],
      [10, '2_1', 0.89619],
    ];
    for (const [n, name, want] of cases) {
      const a = await toy(n, 'dpmpp_1', KH(name));
      const b = await toy(n, 'ddim', { ...KH(name), quantity: 'x0' });
      assert.equal(a.pfdiff?.quantity, 'x0');
      assert.ok(Math.abs(a.samples[0]! - want) < 5e-6, `${n} ${name}: ${a.samples[0]}`);
      assert.equal(a.samples[0], b.samples[0]);
      assert.equal(a.calls, n);
    }
  });
});

describe('φ (first-order step with a given output)', () => {
  it('ε-, x̂0- and v-forms agree for a fresh output and differ for a reused one', async () => {
    const x = Float64Array.of(0.3, -1.2);
    const ctx = createSolverContext({
      model: gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [2] }),
      schedule,
      batch: 1,
      precision: 'float64',
    });
    const p = await ctx.evaluate(x, 700);
    const out = (['epsilon', 'x0', 'v'] as const).map((r) =>
      firstOrderStep(schedule, r, storedQuantity(p, r, schedule.alpha(700), schedule.sigma(700)), x, 700, 400),
    );
    for (const o of out) for (let i = 0; i < 2; i++) assert.ok(Math.abs(o[i]! - out[0]![i]!) < 1e-12);
    // DDIM's own formula: α_t·x̂0 + σ_t·ε̂.
    assert.ok(Math.abs(out[0]![0]! - (schedule.alpha(400) * p.x0[0]! + schedule.sigma(400) * p.eps[0]!)) < 1e-12);
    // Reused at another point (x', 500): the forms differ.
    const x2 = Float64Array.of(0.1, -0.4);
    const re = (['epsilon', 'x0', 'v'] as const).map(
      (r) => firstOrderStep(schedule, r, storedQuantity(p, r, schedule.alpha(700), schedule.sigma(700)), x2, 500, 200)[0]!,
    );
    assert.ok(Math.abs(re[0]! - re[1]!) > 1e-3 && Math.abs(re[0]! - re[2]!) > 1e-3);
    // predictionAt is consistent: x = α·x̂0 + σ·ε̂ at the new point.
    const q = predictionAt(schedule, 'v', storedQuantity(p, 'v', schedule.alpha(700), schedule.sigma(700)), x2, 500);
    assert.ok(Math.abs(schedule.alpha(500) * q.x0[0]! + schedule.sigma(500) * q.eps[0]! - x2[0]!) < 1e-12);
  });
  it('v reuse runs with N calls and lands between', async () => {
    const r = await toy(6, 'ddim', { k: 2, h: 1, quantity: 'v' });
    assert.equal(r.calls, 6);
    assert.ok(Number.isFinite(r.samples[0]!));
    // With α = cos θ, σ = sin θ, the DDIM step from (x, s) to t with v held fixed is a rotation:
    // x_t = cos(θ_t − θ_s)·x + sin(θ_t − θ_s)·v. Alg. 1 (N = 6, 2_1, M = 16) written out with it:
    const theta = (t: number) => Math.atan2(schedule.sigma(t), schedule.alpha(t));
    const rot = (x: number, v: number, s: number, t: number) => Math.cos(theta(t) - theta(s)) * x + Math.sin(theta(t) - theta(s)) * v;
    const vAt = async (x: number, t: number) => {
      const eps = (await model.predict(Float64Array.of(x), modelCallAt(schedule, t, 1)))[0]!;
      return schedule.alpha(t) * eps - schedule.sigma(t) * ((x - schedule.sigma(t) * eps) / schedule.alpha(t));
    };
    const tau = r.timesteps;
    let x = 1;
    let v = await vAt(x, tau[0]!);
    x = rot(x, v, tau[0]!, tau[1]!);
    for (let i = 1; i < tau.length - 1; i += 3) {
      v = await vAt(rot(x, v, tau[i]!, tau[i + 1]!), tau[i + 1]!);
      x = rot(x, v, tau[i]!, tau[i + 3]!);
    }
    assert.ok(Math.abs(r.samples[0]! - x) < 1e-12, `v reuse ${r.samples[0]} vs the rotation form ${x}`);
    // …and it lands between plain DDIM (0.76913) and the exact end point (0.99842): measured 0.77046.
    assert.ok(r.samples[0]! > VECTORS[6]!['ddim']! && r.samples[0]! < EXACT, `${r.samples[0]}`);
  });
});

describe('PFDiff errors name the fix', () => {
  it('rejects M ≠ N(k+1) − k', async () => {
    const ctx = createSolverContext({ model, schedule, batch: 1, precision: 'float64' });
    const grid = buildTimesteps(schedule, { steps: 9, spacing: 'linspace_floor' });
    await assert.rejects(createPfdiffSolver({ k: 2, h: 1 })(Float64Array.of(1), grid, ctx), /M = N·\(k\+1\) − k.*pfdiffBaseSteps/);
    assert.throws(() => pfdiffCallsForSteps(9, 2), /N = 4 → M = 10/);
    assert.equal(pfdiffCallsForSteps(10, 2), 4);
    assert.equal(pfdiffBaseSteps(4, 2), 10);
  });
  it('rejects bad k, h and quantity', async () => {
    assert.throws(() => createPfdiffSolver({ k: 4, h: 1 }), /k must be an integer 1, 2 or 3/);
    assert.throws(() => createPfdiffSolver({ k: 2, h: 3 }), /1 ≤ h ≤ k = 2/);
    assert.throws(() => createPfdiffSolver({ k: 2, h: 0 }), /h in 1\.\.2/);
    assert.throws(() => createPfdiffSolver({ k: 1.5, h: 1 }), /k must be an integer/);
    assert.throws(() => createPfdiffSolver({ k: 1, h: 1, quantity: 'score' as 'x0' }), /epsilon, x0, v/);
    await assert.rejects(toy(4, 'heun', { k: 1, h: 1 }), /no variant for solver "heun".*ddim/);
    await assert.rejects(sample({ model, schedule, solver: 'ddim', solverOptions: { eta: 1 }, nfe: 4, pfdiff: { k: 1, h: 1 } }), /eta = 0/);
  });
});

/** RMS end-point error over a seeded batch against the exact ODE solution. */
async function endpointError(nfe: number, pfdiff: PfdiffKH | undefined, spacing: 'linspace_floor' | undefined): Promise<number> {
  const batch = 8;
  const x = gaussianBatch(7, batch, 1, 'float64');
  const r = await sample({
    model,
    schedule,
    solver: 'ddim',
    nfe,
    ...(pfdiff ? { pfdiff } : {}),
    ...(spacing ? { timesteps: { spacing } } : {}),
    initialNoise: x,
    batch,
    precision: 'float64',
  });
  assert.equal(r.calls, nfe);
  const first = r.timesteps[0]!;
  return rmsError(r.samples, model.exactOdeSolution(x, first, -1));
}

describe('PFDiff (best k_h) beats plain DDIM at equal NFE ≤ 10 (Gaussian model)', () => {
  for (const [label, spacing] of [
    ['linspace_floor grid', 'linspace_floor'],
    ['default grid (DDIM linspace)', undefined],
  ] as const) {
    it(label, async () => {
      const rows: Record<string, string | number>[] = [];
      for (const nfe of [4, 6, 8, 10]) {
        const ddim = await endpointError(nfe, undefined, spacing);
        const row: Record<string, string | number> = { nfe, ddim: ddim.toExponential(3) };
        let best = Infinity;
        let bestName = '';
        for (const kh of PFDIFF_CONFIGS) {
          const e = await endpointError(nfe, kh, spacing);
          row[`${kh.k}_${kh.h}`] = e.toExponential(3);
          if (e < best) [best, bestName] = [e, `${kh.k}_${kh.h}`];
        }
        row['best'] = bestName;
        row['ratio'] = (ddim / best).toFixed(1);
        rows.push(row);
        assert.ok(best < ddim, `NFE ${nfe}: best PFDiff ${best} vs DDIM ${ddim}`);
      }
      console.log(`\nPFDiff vs DDIM, RMS end-point error (8 samples), ${label}`);
      console.table(rows);
    });
  }
});

describe('past-only variant for singlestep higher-order solvers', () => {
  it('block orders: p calls per block, the remainder N mod p last', () => {
    assert.deepEqual(blockOrders(6, 3), [3, 3]);
    assert.deepEqual(blockOrders(7, 3), [3, 3, 1]);
    assert.deepEqual(blockOrders(8, 3), [3, 3, 2]);
    assert.deepEqual(blockOrders(2, 3), [2]);
    assert.deepEqual(blockOrders(5, 2), [2, 2, 1]);
    assert.equal(pfdiffHigherOrderBaseSteps(7, 2, 3, true), 1 + 2 * 3 + 1);
    assert.equal(pfdiffHigherOrderBaseSteps(7, 2, 3, false), 7);
  });
  it('uses exactly N calls for every N = 1…10, solver and k_h (clean terminal and sigma_min)', async () => {
    for (const solver of ['dpm_solver_2', 'dpm_solver_3', 'dpmpp_2s', 'dpmpp_3s']) {
      for (const nfe of [1, 2, 3, 4, 5, 7, 10]) {
        for (const kh of [
          { k: 1, h: 1 },
          { k: 3, h: 2 },
        ]) {
          for (const terminal of ['zero', 'sigma_min'] as const) {
            const r = await sample({
              model,
              schedule,
              solver,
              nfe,
              pfdiff: kh,
              timesteps: { terminal },
              initialNoise: Float64Array.of(1),
              precision: 'float64',
            });
            assert.equal(r.calls, nfe, `${solver} N=${nfe} ${kh.k}_${kh.h} ${terminal}`);
            assert.equal(r.pfdiff?.variant, 'past-only');
            assert.ok(Number.isFinite(r.samples[0]!));
          }
        }
      }
    }
  });
  it('the remainder calls are used (N = 7 differs from N = 6 with p = 3) and are needed (no early stop)', async () => {
    const run = (nfe: number) =>
      sample({ model, schedule, solver: 'dpm_solver_3', nfe, pfdiff: { k: 2, h: 1 }, initialNoise: Float64Array.of(1), precision: 'float64' });
    const [a, b] = [await run(6), await run(7)];
    assert.equal(a.calls, 6);
    assert.equal(b.calls, 7);
    assert.equal(b.steps, 1 + 2 * 3 + 1);
    assert.equal(b.timesteps[b.timesteps.length - 1], -1);
    assert.notEqual(a.samples[0], b.samples[0]);
  });
  it('a grid of the wrong size is rejected with the size to use', async () => {
    const ctx = createSolverContext({ model, schedule, batch: 1, precision: 'float64' });
    // N = 6, p = 2, k = 1: 3 blocks → 1 + 2·2 = 5 intervals (sigma_min terminal of the logSNR grid).
    const ok = buildTimesteps(schedule, { steps: 5, spacing: 'logSNR' });
    const solver = createPfdiffHigherOrderSolver({ k: 1, h: 1, base: 'dpm_solver_2', nfe: 6 });
    await solver(Float64Array.of(1), ok, ctx);
    assert.equal(ctx.calls, 6);
    const bad = buildTimesteps(schedule, { steps: 6, spacing: 'logSNR' });
    await assert.rejects(solver(Float64Array.of(1), bad, ctx), /needs a base grid of 5 intervals.*got 6.*pfdiffHigherOrderBaseSteps\(6, 1, 2, false\)/);
  });
  it('measured against the plain solver at equal NFE (printed)', async () => {
    const rows: Record<string, string | number>[] = [];
    const x = gaussianBatch(7, 8, 1, 'float64');
    for (const solver of ['dpm_solver_2', 'dpmpp_2s', 'dpm_solver_3']) {
      for (const nfe of [6, 8, 10]) {
        // The plain solver gets DPM-Solver's plan that spends exactly nfe calls.
        const plan = { orders: stepPlanForCalls(nfe, solver.endsWith('3') ? 3 : 2) };
        const run = async (pfdiff?: PfdiffKH) => {
          const r = await sample({
            model,
            schedule,
            solver,
            nfe,
            ...(pfdiff ? { pfdiff } : { solverOptions: plan }),
            initialNoise: x,
            batch: 8,
            precision: 'float64',
          });
          assert.equal(r.calls, nfe);
          return rmsError(r.samples, model.exactOdeSolution(x, r.timesteps[0]!, -1));
        };
        const plain = await run();
        let best = Infinity;
        let name = '';
        for (const kh of PFDIFF_CONFIGS) {
          const e = await run(kh);
          if (e < best) [best, name] = [e, `${kh.k}_${kh.h}`];
        }
        rows.push({ solver, nfe, plain: plain.toExponential(3), pfdiffBest: best.toExponential(3), best: name });
        // Measured: the best k_h beats the plain solver by 1.34× (dpm_solver_3, NFE 10) to 6.9× (dpm_solver_2, NFE 10).
        assert.ok(plain / best > 1.3, `${solver} NFE ${nfe}: best PFDiff ${best} (${name}) vs plain ${plain}`);
      }
    }
    console.log('\nPFDiff past-only variant vs plain singlestep solver, RMS end-point error (8 samples)');
    console.table(rows);
  });
});

describe('experimental multistep PFDiff (ours)', () => {
  it('N calls, runs, and its effect is measured (printed)', async () => {
    const rows: Record<string, string | number>[] = [];
    const x = gaussianBatch(7, 8, 1, 'float64');
    for (const nfe of [4, 6, 8, 10]) {
      const err = (r: { samples: NumArray; timesteps: number[] }) => rmsError(r.samples, model.exactOdeSolution(x, r.timesteps[0]!, -1));
      const plain = await sample({ model, schedule, solver: 'dpmpp_2m', nfe, initialNoise: x, batch: 8, precision: 'float64' });
      assert.equal(plain.calls, nfe);
      // Our predictor without PFDiff, on the same default grid.
      const ctx = createSolverContext({ model, schedule, batch: 8, precision: 'float64' });
      const ours = await createMultistepExtrapolationSolver()(x, plain.timesteps, ctx);
      assert.equal(ctx.calls, nfe);
      const row: Record<string, string | number> = {
        nfe,
        dpmpp_2m: err(plain).toExponential(3),
        predictorOnly: rmsError(ours, model.exactOdeSolution(x, plain.timesteps[0]!, -1)).toExponential(3),
      };
      let best = Infinity;
      for (const kh of PFDIFF_CONFIGS) {
        for (const solver of ['dpmpp_2m', 'unipc']) {
          if (solver === 'unipc' && kh.k !== 1) continue;
          const r = await sample({ model, schedule, solver, nfe, pfdiff: kh, initialNoise: x, batch: 8, precision: 'float64' });
          assert.equal(r.calls, nfe);
          assert.equal(r.pfdiff?.variant, 'multistep-experimental');
          assert.ok(Number.isFinite(r.samples[0]!));
          if (solver === 'dpmpp_2m') {
            row[`${kh.k}_${kh.h}`] = err(r).toExponential(3);
            best = Math.min(best, err(r));
          }
        }
      }
      rows.push(row);
      // Measured: on this model the best of the six beats DPM-Solver++(2M) by ≥ 1.8× at NFE 4…10
      // (1.85×, 4.2×, 15×, 5.6×).
      assert.ok(best < err(plain), `NFE ${nfe}: best multistep PFDiff ${best} vs dpmpp_2m ${err(plain)}`);
      assert.ok(err(plain) / best >= 1.8, `NFE ${nfe}: best multistep PFDiff ${best} is not 1.8× better than dpmpp_2m ${err(plain)}`);
    }
    console.log('\nExperimental multistep PFDiff (ours) vs DPM-Solver++(2M), RMS end-point error (8 samples)');
    console.table(rows);
  });
  it('the same predictor as the ODE solver: its error falls with the grid (second order)', async () => {
    const errs: number[] = [];
    for (const m of [16, 32, 64]) {
      const grid = buildTimesteps(schedule, { steps: m, spacing: 'logSNR' });
      const ctx = createSolverContext({ model, schedule, batch: 1, precision: 'float64' });
      const out = await createMultistepExtrapolationSolver()(Float64Array.of(1), grid, ctx);
      errs.push(Math.abs(out[0]! - model.exactOdeSolution(Float64Array.of(1), grid[0]!, grid[m]!)[0]!));
    }
    const order = Math.log2(errs[1]! / errs[2]!);
    assert.ok(order > 1.7 && order < 2.5, `order ${order} (${errs})`);
  });
  it('rejects bad configurations', () => {
    assert.throws(() => createPfdiffMultistepSolver({ k: 0, h: 1 }), /k must be/);
  });
});

describe('pickBestKH', () => {
  it('ranks the six configurations and the baseline by measured error', async () => {
    const x = gaussianBatch(3, 4, 1, 'float64');
    const reference = model.exactOdeSolution(x, 999, -1);
    let runs = 0;
    const result = await pickBestKH({
      nfe: 6,
      reference,
      sampleWith: async (kh, nfe) => {
        runs++;
        const r = await sample({
          model,
          schedule,
          nfe,
          ...(kh ? { pfdiff: kh } : {}),
          timesteps: { spacing: 'linspace_floor' },
          initialNoise: x,
          batch: 4,
          precision: 'float64',
        });
        return r.samples;
      },
    });
    assert.equal(runs, 7);
    assert.equal(result.ranking.length, 7);
    for (let i = 1; i < result.ranking.length; i++) assert.ok(result.ranking[i - 1]!.error <= result.ranking[i]!.error);
    assert.deepEqual(result.best, result.ranking[0]!.kh);
    assert.ok(result.best !== null, 'some PFDiff configuration beats DDIM at NFE 6');
    assert.ok(result.ranking[0]!.error < result.baselineError!);
    await assert.rejects(pickBestKH({ nfe: 0, reference, sampleWith: async () => reference }), /nfe must be/);
    await assert.rejects(pickBestKH({ nfe: 4, candidates: [{ k: 1, h: 2 }], reference, sampleWith: async () => reference }), /1 ≤ h ≤ k/);
  });
});
