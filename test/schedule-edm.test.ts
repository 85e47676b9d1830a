/**
 * The EDM schedule (schedule/edm.ts), the EDM preconditioning as a model conversion
 * (edm-preconditioning.ts) and diffusers' EDMEulerScheduler through the config loader:
 * - the schedule in closed form (α = 1/√(1+σ²), σ_VP = σ/√(1+σ²), λ = −ln σ, c_noise = ¼ ln σ);
 * - the wrapper against c_in / c_skip / c_out written out here in VE terms, and against the VP
 *   v-prediction conversion for σ_data = 1;
 * - the config's grid (Karras eq. 5 / log-uniform σ, computed here) and a transcription of diffusers'
 *   EDMEuler loop (VE state from z·√(σ_max² + 1), Euler in σ) on a closed-form EDM network that
 *   reads σ from its time input: the same call times and the same final sample to 1e-12;
 * - measured orders of euler, heun and dpmpp_2m on the EDM Karras grid with the wrapped network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { edmSchedule } from '../src/core/schedule/edm.js';
import { CLEAN_TIME, hasCleanEnd, veSigma } from '../src/core/schedule/noise-schedule.js';
import { fromSchedulerConfig } from '../src/core/schedule/config.js';
import { edmPreconditionedModel } from '../src/core/edm-preconditioning.js';
import { convertPrediction } from '../src/core/prediction.js';
import { buildTimesteps } from '../src/core/timesteps.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { createSolverContext } from '../src/core/solver-context.js';
import { getSolver } from '../src/core/solvers/registry.js';
import type { DiffusionModel, ModelCall, PredictionType } from '../src/core/model.js';
import type { NumArray } from '../src/core/tensor.js';
import { fitLogLogSlope } from './helpers/convergence.js';
import { maxAbsDiff } from './helpers/arrays.js';

const MEAN = 0.3;
const STD = 0.6;

test('edmSchedule: α, σ, λ, model time and the clean end in closed form', () => {
  const s = edmSchedule();
  assert.equal(s.tMax, 80);
  assert.equal(s.tMin, 0.002);
  assert.equal(s.sigmaData, 0.5);
  assert.ok(hasCleanEnd(s));
  for (const t of [0.002, 0.1, 1, 7.5, 80]) {
    assert.ok(Math.abs(s.alpha(t) - 1 / Math.sqrt(1 + t * t)) < 1e-15);
    assert.ok(Math.abs(s.sigma(t) - t / Math.sqrt(1 + t * t)) < 1e-15);
    assert.ok(Math.abs(s.alpha(t) ** 2 + s.sigma(t) ** 2 - 1) < 1e-15);
    assert.ok(Math.abs(veSigma(s, t) - t) < 1e-13 * t);
    assert.ok(Math.abs(s.lambda(t) + Math.log(t)) < 1e-15);
    assert.ok(Math.abs(s.timeOfLambda(s.lambda(t)) - t) < 1e-13 * t);
    assert.equal(s.modelTime(t), 0.25 * Math.log(t));
  }
  assert.equal(s.alpha(CLEAN_TIME), 1);
  assert.equal(s.sigma(CLEAN_TIME), 0);
  assert.equal(s.lambda(CLEAN_TIME), Infinity);
  assert.throws(() => s.alpha(100), /EDM time \(noise level σ\) 100 is outside the schedule: use σ in \[0.002, 80\]/);
  assert.throws(() => edmSchedule({ sigmaMin: 1, sigmaMax: 0.5 }), /need 0 < sigmaMin < sigmaMax/);
  assert.throws(() => edmSchedule({ sigmaData: 0 }), /sigmaData must be > 0/);
  // A clean terminal is allowed on this continuous schedule, and is the default.
  assert.equal(buildTimesteps(s, { spacing: 'karras', steps: 3 }).at(-1), CLEAN_TIME);
});

/** A network that returns a fixed output and records its input. */
function fixedNetwork(type: PredictionType, out: number[]): DiffusionModel & { inputs: number[][] } {
  const inputs: number[][] = [];
  return {
    predictionType: type,
    sampleShape: [out.length],
    inputs,
    predict: async (x) => (inputs.push([...x]), Float64Array.from(out)),
  };
}

test('edmPreconditionedModel: c_in, c_skip, c_out by hand (VE), both signs; σ_data = 1 is VP v-prediction', async () => {
  const sch = edmSchedule();
  const x = Float64Array.from([0.4, -1.1, 2.0]);
  const F = [0.3, -0.2, 0.9];
  for (const sigma of [0.05, 1.3, 40]) {
    const call: ModelCall = { t: sigma, modelTime: sch.modelTime(sigma), alpha: sch.alpha(sigma), sigma: sch.sigma(sigma), index: 0, batch: 1 };
    const xVe = [...x].map((v) => v * Math.sqrt(1 + sigma * sigma));
    for (const [type, sign] of [
      ['epsilon', 1],
      ['v_prediction', -1],
    ] as const) {
      const sd = 0.5;
      const net = fixedNetwork(type, F);
      const d = await edmPreconditionedModel(net, { sigmaData: sd }).predict(x, call);
      const cIn = 1 / Math.sqrt(sigma * sigma + sd * sd);
      const cSkip = (sd * sd) / (sigma * sigma + sd * sd);
      const cOut = (sign * sigma * sd) / Math.sqrt(sigma * sigma + sd * sd);
      for (let i = 0; i < 3; i++) {
        assert.ok(Math.abs(net.inputs[0]![i]! - cIn * xVe[i]!) < 1e-13, `input ${type} σ=${sigma}`);
        assert.ok(Math.abs(d[i]! - (cSkip * xVe[i]! + cOut * F[i]!)) < 1e-12, `D ${type} σ=${sigma}`);
      }
    }
    const vp = await edmPreconditionedModel(fixedNetwork('v_prediction', F), { sigmaData: 1 }).predict(x, call);
    const want = convertPrediction('v_prediction', 'sample', Float64Array.from(F), x, call.alpha, call.sigma);
    assert.ok(maxAbsDiff(vp, want) < 1e-12, `σ_d = 1 vs VP v-prediction at σ=${sigma}`);
  }
  assert.throws(() => edmPreconditionedModel(fixedNetwork('sample', F)), /got "sample": set the network's predictionType/);
  assert.throws(() => edmPreconditionedModel(fixedNetwork('epsilon', F), { sigmaData: -1 }), /sigmaData must be > 0/);
});

/**
 * A closed-form EDM network for N(μ, s²) data: it reads σ from its time input (σ = e^{4·c_noise}),
 * undoes c_in, and returns F = (D − c_skip·x_VE)/c_out with the exact denoiser
 * D = μ + s²/(s² + σ²)·(x_VE − μ).
 */
function edmGaussianNetwork(type: 'epsilon' | 'v_prediction', sigmaData: number, times: number[]): DiffusionModel {
  return {
    predictionType: type,
    sampleShape: [1],
    async predict(input: NumArray, call: ModelCall) {
      times.push(call.modelTime);
      const sigma = Math.exp(4 * call.modelTime);
      const r = Math.sqrt(sigma * sigma + sigmaData * sigmaData);
      const cSkip = (sigmaData * sigmaData) / (r * r);
      const cOut = ((type === 'epsilon' ? 1 : -1) * sigma * sigmaData) / r;
      const out = new Float64Array(input.length);
      for (let i = 0; i < input.length; i++) {
        const xVe = input[i]! * r;
        const d = MEAN + ((STD * STD) / (STD * STD + sigma * sigma)) * (xVe - MEAN);
        out[i] = (d - cSkip * xVe) / cOut;
      }
      return out;
    },
  };
}

/** diffusers' EDMEulerScheduler loop transcribed (VE state, s_churn = 0). */
function diffusersEdmEuler(
  z: readonly number[],
  steps: number,
  cfg: { sigmaMin: number; sigmaMax: number; sigmaData: number; rho: number; schedule: 'karras' | 'exponential'; final: 'zero' | 'sigma_min' },
  type: 'epsilon' | 'v_prediction',
): { times: number[]; x: number[] } {
  const ramp = Array.from({ length: steps }, (_, i) => (steps === 1 ? 0 : i / (steps - 1)));
  const sigmas =
    cfg.schedule === 'karras'
      ? ramp.map((r) => (cfg.sigmaMax ** (1 / cfg.rho) + r * (cfg.sigmaMin ** (1 / cfg.rho) - cfg.sigmaMax ** (1 / cfg.rho))) ** cfg.rho)
      : ramp.map((r) => Math.exp(Math.log(cfg.sigmaMax) + r * (Math.log(cfg.sigmaMin) - Math.log(cfg.sigmaMax))));
  const all = [...sigmas, cfg.final === 'zero' ? 0 : sigmas.at(-1)!];
  const times: number[] = [];
  let x = z.map((v) => v * Math.sqrt(cfg.sigmaMax ** 2 + 1));
  for (let i = 0; i < steps; i++) {
    const sigma = all[i]!;
    const cSkip = cfg.sigmaData ** 2 / (sigma * sigma + cfg.sigmaData ** 2);
    const cOut = ((type === 'epsilon' ? 1 : -1) * sigma * cfg.sigmaData) / Math.sqrt(sigma * sigma + cfg.sigmaData ** 2);
    times.push(0.25 * Math.log(sigma)); // timesteps = precondition_noise(σ)
    const fOut = networkOutput(cfg.sigmaData, type, x, sigma); // the network sees c_in·x_VE
    const d = x.map((v, j) => cSkip * v + cOut * fOut[j]!);
    x = x.map((v, j) => v + ((v - d[j]!) / sigma) * (all[i + 1]! - sigma));
  }
  return { times, x };
}

/** {@link edmGaussianNetwork}'s output at (x_VE, σ), written in VE terms. */
function networkOutput(sigmaData: number, type: 'epsilon' | 'v_prediction', xVe: readonly number[], sigma: number): number[] {
  const r = Math.sqrt(sigma * sigma + sigmaData * sigmaData);
  const cSkip = (sigmaData * sigmaData) / (r * r);
  const cOut = ((type === 'epsilon' ? 1 : -1) * sigma * sigmaData) / r;
  return xVe.map((v) => (MEAN + ((STD * STD) / (STD * STD + sigma * sigma)) * (v - MEAN) - cSkip * v) / cOut);
}

async function runOursEdm(config: Record<string, unknown>, steps: number, z: Float64Array): Promise<{ times: number[]; x: number[]; grid: number[] }> {
  const c = fromSchedulerConfig(config);
  assert.ok(c.preconditioning?.kind === 'edm');
  const o = c.sampleOptions(steps);
  const plan = getSolver(o.solver).plan({ schedule: o.schedule, steps: o.steps!, timesteps: o.timesteps, options: o.solverOptions });
  const times: number[] = [];
  const net = edmGaussianNetwork(c.predictionType as 'epsilon' | 'v_prediction', c.preconditioning.sigmaData, times);
  const model = edmPreconditionedModel(net, { sigmaData: c.preconditioning.sigmaData });
  const ctx = createSolverContext({ model, schedule: o.schedule, batch: z.length, precision: 'float64' });
  const x = await plan.run(z, plan.timesteps, ctx);
  // Our state is the VP x; diffusers' is x_VE = x/α (the same at σ = 0, a factor √(1 + σ_min²) at σ_min).
  const a = o.schedule.alpha(plan.timesteps.at(-1)!);
  return { times, x: [...x].map((v) => v / a), grid: plan.timesteps };
}

const Z = Float64Array.from([0.8, -1.4, 0.1, 2.2]);

test('config: EDMEulerScheduler defaults → euler on the EDM schedule, Karras σ (ρ = 7) then σ = 0', () => {
  const c = fromSchedulerConfig({ _class_name: 'EDMEulerScheduler', _diffusers_version: '0.27.0' });
  assert.equal(c.solver, 'euler');
  assert.deepEqual(c.solverOptions, {});
  assert.equal(c.predictionType, 'epsilon');
  assert.deepEqual(c.preconditioning, { kind: 'edm', sigmaData: 0.5 });
  assert.equal(c.schedule.kind, 'continuous');
  assert.deepEqual(c.notes, []);
  assert.deepEqual(c.unknownFields, {});
  const o = c.sampleOptions(5);
  const grid = buildTimesteps(o.schedule, { ...o.timesteps, steps: o.steps! });
  const hi = 80 ** (1 / 7);
  const lo = 0.002 ** (1 / 7);
  const want = [0, 1, 2, 3, 4].map((i) => (hi + (i / 4) * (lo - hi)) ** 7);
  assert.equal(grid.length, 6);
  assert.equal(grid[5], CLEAN_TIME);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(grid[i]! - want[i]!) < 1e-13 * want[i]!, `σ_${i} = ${grid[i]} vs ${want[i]}`);
  assert.ok(Math.abs(want[2]! - 2.5152) < 1e-3); // (80^{1/7}/2 + 0.002^{1/7}/2)^7
  assert.throws(() => fromSchedulerConfig({ _class_name: 'EDMEulerScheduler', prediction_type: 'sample' }), /prediction_type.*"epsilon", "v_prediction"/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'EDMEulerScheduler', sigma_schedule: 'linear' }), /sigma_schedule/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'EDMEulerScheduler', sigma_min: 100 }), /0 < sigma_min < sigma_max/);
  assert.throws(
    () => fromSchedulerConfig({ _class_name: 'EDMEulerScheduler', final_sigmas_type: 'sigma_min' }).sampleOptions(1),
    /use numInferenceSteps ≥ 2/,
  );
});

const BASE = { sigmaMin: 0.002, sigmaMax: 80, sigmaData: 0.5, rho: 7, schedule: 'karras' as const, final: 'zero' as const };
for (const [label, config, cfg, type] of [
  ['defaults (karras, epsilon, final zero)', { _class_name: 'EDMEulerScheduler' }, BASE, 'epsilon'],
  [
    'v_prediction, sigma_data 1',
    { _class_name: 'EDMEulerScheduler', prediction_type: 'v_prediction', sigma_data: 1 },
    { ...BASE, sigmaData: 1 },
    'v_prediction',
  ],
  [
    'exponential (CosXL), sigma_max 120',
    { _class_name: 'EDMEulerScheduler', sigma_schedule: 'exponential', sigma_max: 120, prediction_type: 'v_prediction' },
    { ...BASE, sigmaMax: 120, schedule: 'exponential' as const },
    'v_prediction',
  ],
  ['rho 3, sigma_min 0.02', { _class_name: 'EDMEulerScheduler', rho: 3, sigma_min: 0.02 }, { ...BASE, rho: 3, sigmaMin: 0.02 }, 'epsilon'],
] as const) {
  test(`EDMEulerScheduler ${label}: same call times and final sample as diffusers' loop`, async () => {
    for (const n of [1, 4, 10, 25]) {
      const ref = diffusersEdmEuler([...Z], n, cfg, type);
      const ours = await runOursEdm(config, n, Z);
      assert.equal(ours.times.length, n);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(ours.times[i]! - ref.times[i]!) < 1e-14, `N=${n} call ${i}: c_noise ${ours.times[i]} vs ${ref.times[i]}`);
      const d = maxAbsDiff(Float64Array.from(ours.x), Float64Array.from(ref.x));
      assert.ok(d < 1e-12, `N=${n}: final differs by ${d}`);
      // Not the trivial answer: the 1-step run from σ_max is far from the data mean, the 25-step run close to the exact ODE end point.
      if (n === 1) assert.ok(maxAbsDiff(Float64Array.from(ours.x), Z) > 0.1);
    }
  });
}

test("EDMEulerScheduler final_sigmas_type 'sigma_min': the same final sample with one call fewer (diffusers' last call is a zero-length step)", async () => {
  for (const n of [2, 6, 20]) {
    const ref = diffusersEdmEuler([...Z], n, { ...BASE, final: 'sigma_min' }, 'epsilon');
    const ours = await runOursEdm({ _class_name: 'EDMEulerScheduler', final_sigmas_type: 'sigma_min' }, n, Z);
    assert.equal(ref.times.length, n);
    assert.equal(ours.times.length, n - 1);
    assert.deepEqual(
      ours.times.map((t) => t.toFixed(12)),
      ref.times.slice(0, -1).map((t) => t.toFixed(12)),
    );
    assert.ok(Math.abs(ours.grid.at(-1)! - 0.002) < 1e-15);
    const d = maxAbsDiff(Float64Array.from(ours.x), Float64Array.from(ref.x));
    assert.ok(d < 1e-12, `N=${n}: final differs by ${d}`);
  }
});

test('solvers on the EDM schedule through the preconditioning: measured orders on the Karras grid', async (t) => {
  const sch = edmSchedule({ sigmaMax: 20 });
  const exactModel = gaussianModel({ schedule: sch, mean: MEAN, std: STD, sampleShape: [1] });
  const cases = [
    { solver: 'euler', lo: 0.8, hi: 1.3 },
    { solver: 'heun', lo: 1.7, hi: 2.5 },
    { solver: 'dpmpp_2m', lo: 1.7, hi: 2.6 },
  ];
  const stepsList = [16, 32, 64, 128];
  for (const c of cases) {
    const errors: number[] = [];
    for (const m of stepsList) {
      const grid = buildTimesteps(sch, { spacing: 'karras', steps: m, terminal: 'sigma_min' });
      const model = edmPreconditionedModel(edmGaussianNetwork('epsilon', 0.5, []), { schedule: sch });
      const ctx = createSolverContext({ model, schedule: sch, batch: Z.length, precision: 'float64' });
      const x0 = Float64Array.from(Z, (v) => sch.alpha(grid[0]!) * MEAN + Math.sqrt(sch.alpha(grid[0]!) ** 2 * STD * STD + sch.sigma(grid[0]!) ** 2) * v);
      const x = await getSolver(c.solver).create()(x0, grid, ctx);
      const exact = exactModel.exactOdeSolution(x0, grid[0]!, grid.at(-1)!);
      errors.push(Math.sqrt([...x].reduce((s, v, i) => s + (v - exact[i]!) ** 2, 0) / x.length));
    }
    const order = -fitLogLogSlope(stepsList, errors);
    t.diagnostic(`${c.solver}: order ${order.toFixed(3)}; errors ${errors.map((e) => e.toExponential(2)).join(' ')}`);
    assert.ok(order > c.lo && order < c.hi, `${c.solver}: order ${order}`);
  }
});
