/**
 * Flow matching (rectified flow): the schedule, the flow prediction type, the closed-form Gaussian
 * flow model, diffusers' FlowMatchEulerDiscreteScheduler and use_flow_sigmas configs, the solvers on
 * the flow schedule (orders measured on the closed-form model) and PFDiff around the flow Euler.
 *
 * Fixtures (test/fixtures/flow-match/): SD3-medium's scheduler_config.json as shipped with the
 * tiny-sd3-flow export, and channel 0 of that export's recorded diffusers FlowMatch Euler run (the
 * step is elementwise, so a subset of coordinates replays exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CLEAN_TIME,
  flowDynamicShiftMu,
  flowMatchSigmas,
  flowSchedule,
  flowShift,
  flowSigmasDpm,
  flowTimeShift,
  fromSchedulerConfig,
  gaussianBatch,
  gaussianFlowModel,
  gaussianModel,
  getSolver,
  isFlowSchedule,
  planSample,
  sample,
  type DiffusionModel,
} from '../src/core/index.js';
import { convertPrediction, toEpsilon, toX0 } from '../src/core/prediction.js';
import { buildTimesteps } from '../src/core/timesteps.js';
import { createSolverContext } from '../src/core/solver-context.js';
import { ddimNoiseScale } from '../src/core/solvers/ddim.js';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { fitLogLogSlope } from './helpers/convergence.js';
import type { PredictionType } from '../src/core/model.js';
import type { NumArray } from '../src/core/tensor.js';

const SD3_CONFIG = JSON.parse(readFileSync('test/fixtures/flow-match/sd3-scheduler_config.json', 'utf8')) as Record<string, unknown>;
const SD3_RUN = JSON.parse(readFileSync('test/fixtures/flow-match/sd3-flow-euler-run.json', 'utf8')) as {
  timesteps: number[];
  sigmas: number[];
  initial_latents: number[];
  calls: { timestep: number; hidden_states_in: number[]; guided_model_output: number[]; latents_after_step: number[] }[];
  final_latents: number[];
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const rms = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s / a.length);
};
const f32 = Math.fround;

/** The grid `sample()` runs for `sampleOptions(n)` of a scheduler config. */
function gridOf(c: ReturnType<typeof fromSchedulerConfig>, n: number, flow?: { imageSeqLen?: number; mu?: number }): number[] {
  const o = c.sampleOptions(n, flow);
  return planSample({ schedule: o.schedule, solver: o.solver, solverOptions: o.solverOptions, steps: o.steps!, timesteps: o.timesteps }).timesteps;
}

// --- schedule ---------------------------------------------------------------------------------------

test('flow schedule: α = 1 − σ, σ = σ, λ = log((1 − σ)/σ) with its exact inverse; network time σ·T', () => {
  const s = flowSchedule();
  assert.ok(isFlowSchedule(s));
  assert.equal(isFlowSchedule(discreteSchedule()), false);
  assert.equal(s.tMax, 1);
  assert.equal(s.tMin, 1e-3);
  for (const sg of [1e-3, 0.01, 0.25, 0.5, 0.857692301273346, 0.999]) {
    assert.equal(s.alpha(sg), 1 - sg);
    assert.equal(s.sigma(sg), sg);
    assert.ok(Math.abs(s.lambda(sg) - Math.log((1 - sg) / sg)) < 1e-12);
    assert.ok(Math.abs(s.timeOfLambda(s.lambda(sg)) - sg) < 1e-15, `inverse at σ = ${sg}`);
    assert.equal(s.modelTime(sg), sg * 1000);
  }
  // The two ends: pure noise σ = 1 (α = 0, λ = −∞) and the clean end σ = 0 (CLEAN_TIME, λ = +∞).
  assert.equal(s.alpha(1), 0);
  assert.equal(s.lambda(1), -Infinity);
  assert.equal(s.timeOfLambda(-Infinity), 1);
  assert.equal(s.alpha(CLEAN_TIME), 1);
  assert.equal(s.sigma(CLEAN_TIME), 0);
  assert.equal(s.lambda(CLEAN_TIME), Infinity);
  assert.equal(s.timeOfLambda(Infinity), CLEAN_TIME);
  assert.equal(s.modelTime(CLEAN_TIME), 0);
  // Far tails of the inverse stay accurate (no 1 − tiny cancellation): λ = 40 ↔ σ = e⁻⁴⁰/(1 + e⁻⁴⁰).
  assert.ok(Math.abs(s.timeOfLambda(40) / Math.exp(-40) - 1) < 1e-12);
  // A float32 σ times 1000 is exact in float64, so the float32 model input is diffusers' timestep.
  assert.equal(f32(s.modelTime(f32(0.857692301273346))), 857.6923217773438);
  assert.equal(flowSchedule({ modelTimes: 'truncate' }).modelTime(0.8576923), 857);
  assert.throws(() => s.alpha(1.5), /outside the schedule: use σ in \[0\.001, 1\]/);
  assert.throws(() => s.alpha(0), /outside the schedule/);
  assert.throws(() => flowSchedule({ modelTimes: 'round' as 'exact' }), /'exact' or 'truncate'/);
});

// --- prediction type `flow` -------------------------------------------------------------------------

test('flow prediction u = ε − x0 converts to and from ε, x0 and VP v on any (α, σ), to 1e-12', () => {
  const x0 = Float64Array.of(0.3, -1.2, 2.0);
  const eps = Float64Array.of(-0.7, 0.4, 1.1);
  const points: [string, number, number][] = [
    ['flow σ = 0.3', 0.7, 0.3],
    ['flow σ = 1 (α = 0)', 0, 1],
    ['VP', Math.sqrt(0.6), Math.sqrt(0.4)],
    ['EDM twin', 1 / Math.hypot(1, 3), 3 / Math.hypot(1, 3)],
  ];
  for (const [label, a, s] of points) {
    const x = x0.map((v, i) => a * v + s * eps[i]!);
    const outputs: Record<PredictionType, Float64Array> = {
      epsilon: eps,
      sample: x0,
      v_prediction: x0.map((v, i) => a * eps[i]! - s * v),
      flow: x0.map((v, i) => eps[i]! - v),
    };
    for (const from of Object.keys(outputs) as PredictionType[]) {
      for (const to of Object.keys(outputs) as PredictionType[]) {
        // ε and x0 are not determined by ε alone at α = 0, nor by x0 alone at σ = 0.
        if (a === 0 && from === 'epsilon' && to !== 'epsilon') continue;
        if (a === 0 && from === 'sample' && to !== 'sample') continue;
        const got = convertPrediction(from, to, outputs[from], x, a, s);
        assert.ok(maxDiff(got, outputs[to]) < 1e-12, `${label}: ${from} → ${to}`);
      }
    }
  }
  // At σ = 1 the velocity gives x0 = x − u and ε = x; ε-prediction cannot give x0 there.
  const x = Float64Array.of(0.5);
  assert.deepEqual([...toX0('flow', Float64Array.of(0.25), x, 0, 1)], [0.25]);
  assert.deepEqual([...toEpsilon('flow', Float64Array.of(0.25), x, 0, 1)], [0.5]);
  assert.throws(() => toX0('epsilon', x, x, 0, 1), /x0 is undefined from ε at α = 0.*flow prediction on flow schedules/);
});

// --- the closed-form flow model ---------------------------------------------------------------------

test('gaussianFlowModel: exact velocity = ε − x0 of the VP-form Gaussian model, = dX/dσ of its exact ODE solution', async () => {
  const model = gaussianFlowModel({ mean: [0.5, -1, 2], std: 0.7, sampleShape: [3] });
  const sched = flowSchedule({ sigmaMin: 1e-6 });
  const eps = gaussianModel({ schedule: sched, mean: [0.5, -1, 2], std: 0.7, sampleShape: [3], predictionType: 'epsilon' });
  const x = Float64Array.of(0.3, -0.4, 1.7);
  for (const sg of [0.05, 0.3, 0.6, 0.95]) {
    const call = { t: sg, modelTime: 1000 * sg, alpha: 1 - sg, sigma: sg, index: 0, batch: 1 };
    const u = await model.predict(x, call);
    // (a) the ε-model's prediction, converted (an independent formula: ε* = σ(x − αμ)/(α²s² + σ²)).
    const viaEps = convertPrediction('epsilon', 'flow', await eps.predict(x, call), x, 1 - sg, sg);
    assert.ok(maxDiff(u, viaEps) < 1e-12, `σ = ${sg}: velocity vs converted ε`);
    // (b) central difference of the exact ODE solution X(σ') through (x, σ): dX/dσ' at σ' = σ is v.
    const h = 1e-5;
    const up = model.exactOdeSolution(x, sg, sg + h);
    const down = model.exactOdeSolution(x, sg, sg - h);
    const fd = Float64Array.from(up, (v, i) => (v - down[i]!) / (2 * h));
    assert.ok(maxDiff(u, fd) < 1e-8, `σ = ${sg}: velocity vs finite difference, ${maxDiff(u, fd)}`);
  }
  // At σ = 1 (pure noise, V = 1): v = x − μ.
  assert.ok(maxDiff(model.velocity(x, 1), Float64Array.of(0.3 - 0.5, -0.4 + 1, 1.7 - 2)) < 1e-15);
  // The ODE solution composes (1 → 0.4 → 0 equals 1 → 0) and its clean end maps N(0, 1) onto N(μ, s²).
  const mid = model.exactOdeSolution(x, 1, 0.4);
  assert.ok(maxDiff(model.exactOdeSolution(mid, 0.4, CLEAN_TIME), model.exactOdeSolution(x, 1, CLEAN_TIME)) < 1e-14);
  assert.ok(maxDiff(model.exactOdeSolution(x, 1, CLEAN_TIME), Float64Array.of(0.5 + 0.7 * 0.3, -1 - 0.7 * 0.4, 2 + 0.7 * 1.7)) < 1e-14);
  assert.equal(model.calls, 4);
});

// --- FlowMatchEulerDiscreteScheduler config ---------------------------------------------------------

/**
 * The σ grid of FlowMatchEulerDiscreteScheduler.set_timesteps(N), written out from its definition:
 * __init__'s float32 table σ_i = i/T (i = T … 1) shifted by s·σ/(1 + (s − 1)·σ) in float32 ops gives
 * σ_max, σ_min; then float64 t = linspace(σ_max·T, σ_min·T, N), σ = t/T, shift again, to float32.
 */
function expectedSd3Sigmas(n: number, shift: number, T = 1000): number[] {
  const table = (s: number) => f32(f32(shift * s) / f32(1 + f32((shift - 1) * s)));
  const hi = table(f32(T / T));
  const lo = table(f32(1 / T));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = n === 1 ? hi * T : i === n - 1 ? lo * T : hi * T + i * ((lo * T - hi * T) / (n - 1));
    const s = t / T;
    out.push(f32((shift * s) / (1 + (shift - 1) * s)));
  }
  return out;
}

test("SD3-medium's FlowMatchEulerDiscreteScheduler config: flow schedule, euler, and diffusers' σ grid for N = 1…60", () => {
  const c = fromSchedulerConfig(SD3_CONFIG);
  assert.equal(c.className, 'FlowMatchEulerDiscreteScheduler');
  assert.equal(c.predictionType, 'flow');
  assert.equal(c.solver, 'euler');
  assert.ok(isFlowSchedule(c.schedule));
  assert.equal(c.diffusersVersion, '0.29.0.dev0');
  assert.deepEqual(c.unknownFields, {});
  for (let n = 1; n <= 60; n++) {
    assert.equal(c.sampleOptions(n).steps, n);
    assert.deepEqual(gridOf(c, n), [...expectedSd3Sigmas(n, 3), CLEAN_TIME], `N = ${n}`);
  }
  // The recorded diffusers run (set_timesteps(4)): σ and the network's timesteps, bit for bit.
  // sampleOptions(N) gives set_timesteps(N)'s explicit σ list; the config's spacing (timestepOptions) builds the same grid.
  for (const n of [1, 4, 28]) assert.deepEqual(c.sampleOptions(n).timesteps.timesteps, buildTimesteps(c.schedule, { ...c.timestepOptions, steps: n }));
  const g = gridOf(c, 4);
  assert.deepEqual(g.slice(0, -1), SD3_RUN.sigmas.slice(0, -1));
  assert.deepEqual(
    g.slice(0, -1).map((t) => f32(c.schedule.modelTime(t))),
    SD3_RUN.timesteps,
  );
  assert.deepEqual(SD3_RUN.sigmas, [1, 0.857692301273346, 0.602150559425354, 0.008928571827709675, 0]);
  assert.throws(() => c.sampleOptions(0), /integer ≥ 1/);
  assert.equal(getSolver('FlowMatchEulerDiscreteScheduler').name, 'euler');
  assert.equal(getSolver('FlowMatchHeunDiscreteScheduler').name, 'heun');
});

test('FlowMatch Euler replays the recorded diffusers SD3 run step for step, bit for bit in float32', async () => {
  const c = fromSchedulerConfig(SD3_CONFIG);
  const d = SD3_RUN.initial_latents.length;
  const seen: number[] = [];
  // The network of the recorded run, as it answered (guided, CFG 7): call i returns its recorded output.
  const replay: DiffusionModel = {
    predictionType: 'flow',
    sampleShape: [d],
    async predict(x, call) {
      const rec = SD3_RUN.calls[call.index]!;
      assert.equal(f32(call.modelTime), rec.timestep, `call ${call.index}: timestep`);
      seen.push(maxDiff(x, rec.hidden_states_in));
      return Float32Array.from(rec.guided_model_output);
    },
  };
  const states: NumArray[] = [];
  const run = await sample({
    model: replay,
    ...c.sampleOptions(4),
    initialNoise: Float32Array.from(SD3_RUN.initial_latents),
    onStep: (info) => void states.push(info.x),
  });
  assert.equal(run.calls, 4);
  for (let i = 0; i < 4; i++) {
    const steps = SD3_RUN.calls[i]!.latents_after_step;
    assert.equal(maxDiff(states[i]!, steps), 0, `step ${i}`);
  }
  assert.deepEqual(seen, [0, 0, 0, 0]);
  assert.deepEqual([...run.samples], SD3_RUN.final_latents);
});

test('FlowMatch config fields: dynamic shifting (μ from the sequence length), linear time shift, shift_terminal, Karras/exponential/beta σ', () => {
  const flux = {
    _class_name: 'FlowMatchEulerDiscreteScheduler',
    num_train_timesteps: 1000,
    shift: 3.0,
    use_dynamic_shifting: true,
    base_shift: 0.5,
    max_shift: 1.15,
    base_image_seq_len: 256,
    max_image_seq_len: 4096,
  };
  const c = fromSchedulerConfig(flux);
  assert.throws(() => c.sampleOptions(8), /use_dynamic_shifting.*pass \{ imageSeqLen \}.*or \{ mu \}/);
  // The config's own timestepOptions carry no μ: a grid built from them is refused, naming the fix.
  assert.throws(() => buildTimesteps(c.schedule, { ...c.timestepOptions, steps: 8 }), /dynamic shifting.*needs μ.*imageSeqLen/);
  // calculate_shift: μ = L·m + b through (256, 0.5) and (4096, 1.15); 1024 tokens (a 1024² FLUX image / 16²·…): μ = 0.63.
  const mu = 0.5 + ((1.15 - 0.5) / (4096 - 256)) * (1024 - 256);
  assert.ok(Math.abs(flowDynamicShiftMu(1024, {}) - mu) < 1e-15);
  const lo = f32(1 / 1000);
  const want = (n: number, shiftOf: (s: number) => number) =>
    Array.from({ length: n }, (_, i) => {
      const t = i === n - 1 ? lo * 1000 : 1000 + i * ((lo * 1000 - 1000) / (n - 1));
      return f32(shiftOf(t / 1000));
    });
  const expo = (s: number) => Math.exp(mu) / (Math.exp(mu) + (1 / s - 1));
  assert.deepEqual(gridOf(c, 8, { imageSeqLen: 1024 }), [...want(8, expo), CLEAN_TIME]);
  assert.deepEqual(gridOf(c, 8, { mu }), [...want(8, expo), CLEAN_TIME]);
  const lin = fromSchedulerConfig({ ...flux, time_shift_type: 'linear' });
  assert.deepEqual(gridOf(lin, 6, { mu: 2 }), [...want(6, (s) => 2 / (2 + (1 / s - 1))), CLEAN_TIME]);
  assert.ok(Math.abs(flowTimeShift(0.5, Math.log(3)) - flowShift(0.5, 3)) < 1e-15, 'exponential time shift with μ = ln s is the static shift s');

  // shift_terminal (LTX-Video): the stretched grid ends exactly at the terminal value.
  const ltx = fromSchedulerConfig({ _class_name: 'FlowMatchEulerDiscreteScheduler', shift: 1, shift_terminal: 0.1 });
  const grid = gridOf(ltx, 10);
  assert.equal(grid[9], f32(0.1));
  assert.equal(grid[0], 1);
  const raw = Array.from({ length: 10 }, (_, i) => (1000 + i * ((lo * 1000 - 1000) / 9)) / 1000);
  raw[9] = lo;
  const scale = (1 - raw[9]!) / 0.9;
  assert.deepEqual(
    grid.slice(0, -1),
    raw.map((s) => f32(1 - (1 - s) / scale)),
  );

  // Karras (ρ = 7) / exponential / beta σ between the shifted ends.
  const base = expectedSd3Sigmas(12, 3).map(Number);
  const [hi, low] = [flowMatchSigmas(2, { shift: 3, dtype: 'float64' })[0]!, flowMatchSigmas(2, { shift: 3, dtype: 'float64' })[1]!];
  assert.equal(f32(hi), base[0]);
  assert.equal(f32(low), base[11]);
  const karras = gridOf(fromSchedulerConfig({ ...SD3_CONFIG, use_karras_sigmas: true }), 12);
  const kw = Array.from({ length: 12 }, (_, i) => f32((hi ** (1 / 7) + (i / 11) * (low ** (1 / 7) - hi ** (1 / 7))) ** 7));
  assert.ok(maxDiff(karras.slice(0, -1), kw) <= 6e-8, 'karras');
  const expo2 = gridOf(fromSchedulerConfig({ ...SD3_CONFIG, use_exponential_sigmas: true }), 12);
  assert.ok(
    maxDiff(
      expo2.slice(0, -1),
      Array.from({ length: 12 }, (_, i) => f32(Math.exp(Math.log(hi) + (i / 11) * (Math.log(low) - Math.log(hi))))),
    ) <= 6e-8,
  );
  const beta = gridOf(fromSchedulerConfig({ ...SD3_CONFIG, use_beta_sigmas: true }), 12);
  assert.equal(beta[0], f32(hi));
  assert.equal(beta[11], f32(low));
  assert.ok(beta[1]! < hi && beta[1]! > 0.9, 'Beta(0.6, 0.6) crowds the ends');
  assert.equal(fromSchedulerConfig({ ...SD3_CONFIG, use_karras_sigmas: true }).spacing, 'flow_match');
  assert.equal(fromSchedulerConfig({ ...SD3_CONFIG, use_karras_sigmas: true }).karras, true);
});

test('FlowMatch config refusals name the field and the fix', () => {
  const sd3 = SD3_CONFIG;
  assert.throws(
    () => fromSchedulerConfig({ ...sd3, invert_sigmas: true }),
    /"invert_sigmas" is true: Mochi's reversed convention.*set "invert_sigmas": false/,
  );
  assert.throws(() => fromSchedulerConfig({ ...sd3, stochastic_sampling: true }), /"stochastic_sampling" is true.*set "stochastic_sampling": false/);
  assert.throws(() => fromSchedulerConfig({ ...sd3, use_karras_sigmas: true, use_beta_sigmas: true }), /set at most one of them/);
  assert.throws(() => fromSchedulerConfig({ ...sd3, time_shift_type: 'cubic' }), /"time_shift_type" must be one of "exponential", "linear"/);
  assert.throws(() => fromSchedulerConfig({ ...sd3, shift: 0 }), /"shift" must be > 0/);
  assert.throws(() => fromSchedulerConfig({ ...sd3, shift_terminal: 1.5 }), /"shift_terminal" must lie in \(0, 1\)/);
  assert.throws(
    () => fromSchedulerConfig({ ...sd3, use_dynamic_shifting: true, base_image_seq_len: 256, max_image_seq_len: 256 }),
    /max_image_seq_len.*equals base_image_seq_len/,
  );
  // Unknown fields are kept, as for the other classes.
  assert.deepEqual(fromSchedulerConfig({ ...sd3, some_new_field: 1 }).unknownFields, { some_new_field: 1 });
});

test('DPMSolverMultistep / UniPC with use_flow_sigmas and flow_prediction: flow schedule, flow_shift grid, int64 timesteps', () => {
  for (const [cls, solver] of [
    ['DPMSolverMultistepScheduler', 'dpmpp_2m'],
    ['UniPCMultistepScheduler', 'unipc'],
  ] as const) {
    const c = fromSchedulerConfig({
      _class_name: cls,
      use_flow_sigmas: true,
      flow_shift: 5,
      prediction_type: 'flow_prediction',
      num_train_timesteps: 1000,
    });
    assert.equal(c.predictionType, 'flow');
    assert.equal(c.solver, solver);
    assert.ok(isFlowSchedule(c.schedule));
    for (const n of [1, 4, 20, 50]) {
      // σ = flip(shift(1 − linspace(1, 1/T, N + 1)))[:-1]: from shift(1 − 1/T) < 1, never the pure-noise σ = 1.
      const a = Array.from({ length: n + 1 }, (_, i) => (i === n ? 1 / 1000 : 1 + i * ((1 / 1000 - 1) / n)));
      const want = a
        .map((v) => f32((5 * (1 - v)) / (1 + 4 * (1 - v))))
        .reverse()
        .slice(0, n);
      assert.deepEqual(gridOf(c, n), [...want, CLEAN_TIME], `${cls} N = ${n}`);
    }
    assert.deepEqual(flowSigmasDpm(3, { flowShift: 5 }), gridOf(c, 3).slice(0, -1));
    // diffusers' int64 timesteps: ⌊σ·T⌋.
    const t1 = gridOf(c, 4)[1]!;
    assert.equal(c.schedule.modelTime(t1), Math.trunc(t1 * 1000));
  }
  assert.throws(
    () => fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', prediction_type: 'flow_prediction' }),
    /"prediction_type" is "flow_prediction" on a VP beta schedule.*use_flow_sigmas/,
  );
  assert.throws(
    () => fromSchedulerConfig({ _class_name: 'UniPCMultistepScheduler', use_flow_sigmas: true, final_sigmas_type: 'sigma_min' }),
    /"final_sigmas_type" is "sigma_min" with use_flow_sigmas.*use "zero"/,
  );
  assert.throws(
    () => fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', use_flow_sigmas: true, use_karras_sigmas: true }),
    /use_flow_sigmas.*Karras/,
  );
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', use_flow_sigmas: true }), /DDIMScheduler has no flow-sigma grid/);
});

// --- solvers on the flow schedule -------------------------------------------------------------------

const MODEL = gaussianFlowModel({ mean: 0.5, std: 0.5, sampleShape: [4] });
const FLOW = flowSchedule({ sigmaMin: 1e-4 });
const Z = gaussianBatch(1, 4, 4, 'float64');

/** RMS error of `solver` from σ = grid[0] (the exact marginal there, from seeded noise at σ = 1) to the grid's end. */
async function flowError(solver: string, options: object, grid: number[]): Promise<number> {
  const t0 = grid[0]!;
  const x = MODEL.exactOdeSolution(Z, 1, t0);
  const ctx = createSolverContext({ model: MODEL, schedule: FLOW, batch: 4, precision: 'float64' });
  const out = await getSolver(solver).create(options)(x, grid, ctx);
  return rms(out, MODEL.exactOdeSolution(x, t0, grid[grid.length - 1]!));
}

/** σ from 1 to the clean end, N intervals, smoothly non-uniform: σ_i = 1 − u − 0.05·sin 2πu, u = i/N. */
const sigmaGrid = (n: number): number[] => [...Array.from({ length: n }, (_, i) => 1 - i / n - 0.05 * Math.sin((2 * Math.PI * i) / n)), CLEAN_TIME];

/** λ from λ(0.98) to λ(0.02), smoothly perturbed (as the VP order tests): the log-SNR solvers' setting. */
function lambdaGrid(n: number): number[] {
  const [l0, l1] = [FLOW.lambda(0.98), FLOW.lambda(0.02)];
  const g = Array.from({ length: n + 1 }, (_, i) => FLOW.timeOfLambda(l0 + (l1 - l0) * (i / n + 0.1 * Math.sin((2 * Math.PI * i) / n))));
  g[0] = 0.98;
  g[n] = 0.02;
  return g;
}

const STEPS = [8, 16, 32, 64];
const ORDER_CASES: [string, string, object, (n: number) => number[], number, number][] = [
  ['euler (FlowMatch Euler), σ = 1 → 0', 'euler', {}, sigmaGrid, 0.85, 1.15],
  ['heun in (x, σ), σ = 1 → 0', 'heun', {}, sigmaGrid, 1.8, 2.25],
  ['dpmpp_2m, flow prediction', 'dpmpp_2m', { lowerOrderFinal: false }, lambdaGrid, 1.7, 2.35],
  ['unipc bh2 (UniPC-2: order 3 with its corrector)', 'unipc', { variant: 'bh2', lowerOrderFinal: false }, lambdaGrid, 2.6, 3.4],
];

for (const [label, solver, options, grid, lo, hi] of ORDER_CASES) {
  test(`${label}: measured convergence order on the closed-form flow model in [${lo}, ${hi}] (N = ${STEPS.join(', ')})`, async () => {
    const errors: number[] = [];
    for (const n of STEPS) errors.push(await flowError(solver, options, grid(n)));
    const order = -fitLogLogSlope(STEPS, errors);
    assert.ok(order > lo && order < hi, `${label}: order ${order.toFixed(3)}, errors ${errors.map((e) => e.toExponential(2)).join(' ')}`);
    for (let i = 1; i < errors.length; i++) assert.ok(errors[i]! < errors[i - 1]!);
  });
}

test('euler and ddim on the flow schedule are the FlowMatch Euler step x + (σ′ − σ)·v, to 1e-12', async () => {
  const c = fromSchedulerConfig(SD3_CONFIG);
  const grid = gridOf(c, 10);
  // The update written out: x_{i+1} = x_i + (σ_{i+1} − σ_i)·v(x_i, σ_i).
  let x = Float64Array.from(Z);
  for (let i = 0; i + 1 < grid.length; i++) {
    const s = grid[i]!;
    const t = grid[i + 1] === CLEAN_TIME ? 0 : grid[i + 1]!;
    const v = MODEL.velocity(x, s);
    x = x.map((xi, j) => xi + (t - s) * v[j]!);
  }
  for (const solver of ['euler', 'ddim']) {
    const r = await sample({ model: MODEL, ...c.sampleOptions(10), solver, initialNoise: Z, batch: 4, precision: 'float64' });
    assert.equal(r.calls, 10);
    assert.ok(maxDiff(r.samples, x) < 1e-12, `${solver}: ${maxDiff(r.samples, x)}`);
  }
});

test('solvers that work in σ/α or log-SNR refuse a grid starting at σ = 1 (α = 0), naming the ones that can', async () => {
  const c = fromSchedulerConfig(SD3_CONFIG);
  for (const solver of ['dpmpp_2m', 'unipc', 'lms', 'euler_a']) {
    await assert.rejects(
      sample({ model: MODEL, ...c.sampleOptions(8), solver, initialNoise: Z, batch: 4 }),
      /infinite at the grid's first time 1 \(α = 0.*use ddim, euler or heun there.*use_flow_sigmas grid/,
      solver,
    );
  }
  const heun = await sample({ model: MODEL, ...c.sampleOptions(8), solver: 'heun', initialNoise: Z, batch: 4, precision: 'float64' });
  assert.equal(heun.calls, 15);
  // Measured: 0.020 (Euler at 8 calls: 0.21).
  assert.ok(rms(heun.samples, MODEL.exactOdeSolution(Z, 1, CLEAN_TIME)) < 0.025);
});

test('DPM-Solver++ 2M and UniPC on the diffusers flow-sigma grid land closer than Euler at equal calls', async () => {
  for (const cls of ['DPMSolverMultistepScheduler', 'UniPCMultistepScheduler']) {
    const c = fromSchedulerConfig({ _class_name: cls, use_flow_sigmas: true, flow_shift: 3, prediction_type: 'flow_prediction' });
    // Measured (2M / UniPC vs Euler): 20 calls 1.8e-2 / 1.6e-2 vs 8.0e-2; 40 calls 4.9e-3 / 2.7e-3 vs 4.1e-2.
    for (const n of [20, 40]) {
      const o = c.sampleOptions(n);
      const t0 = gridOf(c, n)[0]!;
      const x = MODEL.exactOdeSolution(Z, 1, t0);
      const exact = MODEL.exactOdeSolution(x, t0, CLEAN_TIME);
      const run = await sample({ model: MODEL, ...o, initialNoise: x, batch: 4, precision: 'float64' });
      const euler = await sample({ model: MODEL, ...o, solver: 'euler', solverOptions: {}, initialNoise: x, batch: 4, precision: 'float64' });
      assert.equal(run.calls, n);
      const [e, eEuler] = [rms(run.samples, exact), rms(euler.samples, exact)];
      assert.ok(e < eEuler / 3, `${cls} N = ${n}: ${e.toExponential(2)} vs euler ${eEuler.toExponential(2)}`);
    }
  }
});

test('PFDiff-2_1 around the flow Euler (reusing the velocity) beats plain Euler at equal calls on the SD3 grid', async () => {
  const c = fromSchedulerConfig(SD3_CONFIG);
  const exact = MODEL.exactOdeSolution(Z, 1, CLEAN_TIME);
  for (const n of [4, 6, 8, 10]) {
    const plain = await sample({ model: MODEL, ...c.sampleOptions(n), initialNoise: Z, batch: 4, precision: 'float64' });
    // PFDiff-k_h runs on a base grid of M = N(k + 1) − k intervals: the config's spacing (timestepOptions) with the NFE.
    const pf = await sample({
      model: MODEL,
      schedule: c.schedule,
      solver: 'euler',
      timesteps: c.timestepOptions,
      nfe: n,
      pfdiff: { k: 2, h: 1 },
      initialNoise: Z,
      batch: 4,
      precision: 'float64',
    });
    assert.equal(pf.steps, 3 * n - 2);
    assert.deepEqual(pf.timesteps, gridOf(c, 3 * n - 2));
    assert.equal(pf.calls, n);
    assert.equal(plain.calls, n);
    assert.deepEqual(pf.pfdiff, { k: 2, h: 1, variant: 'first-order', quantity: 'flow' });
    const [e, ePlain] = [rms(pf.samples, exact), rms(plain.samples, exact)];
    // Measured (RMS to the exact ODE end point): 4 calls 0.075 vs 0.398, 6: 0.062 vs 0.278, 8: 0.055 vs 0.207, 10: 0.048 vs 0.165.
    assert.ok(e < ePlain / 3, `N = ${n}: PFDiff ${e.toExponential(2)} vs Euler ${ePlain.toExponential(2)}`);
    assert.ok(e < 0.08, `N = ${n}: PFDiff ${e}`);
  }
  // Reusing ε instead is refused at σ = 1, where the ε-form step divides by α = 0.
  await assert.rejects(
    sample({ model: MODEL, ...c.sampleOptions(28), pfdiff: { k: 2, h: 1, quantity: 'epsilon' }, initialNoise: Z, batch: 4 }),
    /ε-form cannot start at α = 0.*quantity 'flow'/,
  );
});

test('DDIM η noise scale in its general (α, σ) form: the VP eq. 16 unchanged, ησ_t at the pure-noise start', () => {
  const vp = discreteSchedule();
  for (const [s, t] of [
    [999, 500],
    [500, 20],
    [20, 0],
  ] as const) {
    const [as, at, ss, st] = [vp.alpha(s), vp.alpha(t), vp.sigma(s), vp.sigma(t)];
    const eq16 = 0.7 * (st / ss) * Math.sqrt(1 - (as * as) / (at * at));
    assert.ok(Math.abs(ddimNoiseScale(vp, s, t, 0.7) - eq16) < 1e-14 * Math.max(1, eq16));
  }
  const flow = flowSchedule();
  assert.equal(ddimNoiseScale(flow, 1, 0.6, 0.5), 0.5 * 0.6);
  // The posterior std of x_t given (x_s, x0) for the flow path: σ_t·√(1 − (α_s σ_t/(α_t σ_s))²).
  const r = (0.2 * 0.5) / (0.5 * 0.8);
  assert.ok(Math.abs(ddimNoiseScale(flow, 0.8, 0.5, 1) - 0.5 * Math.sqrt(1 - r * r)) < 1e-15);
  assert.ok(ddimNoiseScale(continuousVpSchedule(), 1, 0.5, 0) === 0);
});

test('DDPM and DDIM η = 1 on the flow schedule: the same posterior step in the general (α, σ) form, converging to the data law', async () => {
  const model = gaussianFlowModel({ mean: 0.5, std: 0.5, sampleShape: [1] });
  const schedule = flowSchedule();
  const grid = (n: number): number[] => [...Array.from({ length: n }, (_, i) => 1 - i / n), CLEAN_TIME];
  const ddpm = await sample({ model, schedule, solver: 'ddpm', timesteps: { timesteps: grid(50) }, batch: 64, seed: 5, precision: 'float64' });
  const ddim = await sample({
    model,
    schedule,
    solver: 'ddim',
    solverOptions: { eta: 1 },
    timesteps: { timesteps: grid(50) },
    batch: 64,
    seed: 5,
    precision: 'float64',
  });
  assert.ok(maxDiff(ddpm.samples, ddim.samples) < 1e-12);
  // Data N(0.5, 0.25): the ancestral sampler's variance deficit is O(1/N). Measured: 0.056 (25 steps), 0.0052 (400 steps).
  const deficit = async (n: number): Promise<number> => {
    const r = await sample({ model, schedule, solver: 'ddpm', timesteps: { timesteps: grid(n) }, batch: 20000, seed: 3, precision: 'float64' });
    let m = 0;
    for (const v of r.samples) m += v;
    m /= r.samples.length;
    let v2 = 0;
    for (const v of r.samples) v2 += (v - m) ** 2;
    assert.ok(Math.abs(m - 0.5) < 0.01, `mean ${m}`);
    return 0.25 - v2 / r.samples.length;
  };
  const [d25, d400] = [await deficit(25), await deficit(400)];
  assert.ok(d25 > 0.04 && d400 < 0.012 && d400 < d25 / 5, `variance deficit ${d25} (25 steps), ${d400} (400 steps)`);
});

test('flow_match / flow_sigmas spacings: the config grids by name, refused off flow schedules and with a σ_min terminal', () => {
  const flow = flowSchedule();
  assert.deepEqual(buildTimesteps(flow, { steps: 4, spacing: 'flow_match', flow: { shift: 3 } }), [...expectedSd3Sigmas(4, 3), CLEAN_TIME]);
  assert.deepEqual(buildTimesteps(flow, { steps: 5, spacing: 'flow_sigmas', flow: { shift: 3 } }), [...flowSigmasDpm(5, { flowShift: 3 }), CLEAN_TIME]);
  assert.throws(
    () => buildTimesteps(discreteSchedule(), { steps: 4, spacing: 'flow_match' }),
    /"flow_match" is a flow-matching grid: use it with a flow schedule/,
  );
  assert.throws(
    () => buildTimesteps(flow, { steps: 4, spacing: 'flow_match', terminal: 'sigma_min' }),
    /ends at the clean end σ = 0: use terminal "zero"/,
  );
  // σ below the schedule's smallest σ is refused before any call (shift 0.5 halves σ_min = 1/T).
  assert.throws(() => buildTimesteps(flow, { steps: 4, spacing: 'flow_match', flow: { shift: 0.5 } }), /σ\[3\] = 0\.000250.* lies outside the schedule/);
});
