/**
 * PNDM's pseudo Runge–Kutta warm-up (plms `warmup: 'prk'`, diffusers' `skip_prk_steps=False`):
 * - against a transcription of diffusers' PNDMScheduler written here from its description — the
 *   timesteps list built as diffusers' set_timesteps builds it (the last 4 grid times, each followed by
 *   its half-step time, the doubled list), and the counter-driven step_prk / step_plms, each step with
 *   diffusers' own ᾱ form of the transfer (PNDM eq. 9) — on the closed-form Gaussian model: the same
 *   model-call times and the same final sample to 1e-12, for S = 4, 9 (⌊T/S⌋ = 111 odd: the network
 *   gets t + 55 while x₁ lies at s − 55), 10 and 25;
 * - the config loader: a PNDM config with class defaults (skip_prk_steps=False, set_alpha_to_one=False,
 *   steps_offset 0: a grid ending at t = 0 with the terminal at t = 0) runs, with S + 9 calls;
 * - measured order on a grid uniform in σ/α, and the call counts and errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { fromSchedulerConfig } from '../src/core/schedule/config.js';
import { gaussianModel } from '../src/core/reference-models.js';
import { createSolverContext } from '../src/core/solver-context.js';
import { getSolver } from '../src/core/solvers/registry.js';
import type { ModelCall } from '../src/core/model.js';
import { measureOrder, rhoUniformGrid } from './helpers/convergence.js';
import { maxAbsDiff } from './helpers/arrays.js';

const MEAN = 0.5;
const STD = 0.5;

/** SD 1.5's betas: linspace(√0.00085, √0.012, 1000)², and ᾱ as their running product. */
function sdAlphasCumprod(): number[] {
  const lo = Math.sqrt(0.00085);
  const hi = Math.sqrt(0.012);
  const out: number[] = [];
  let p = 1;
  for (let i = 0; i < 1000; i++) {
    const b = (lo + ((hi - lo) * i) / 999) ** 2;
    p *= 1 - b;
    out.push(p);
  }
  return out;
}

/** numpy's round: half to even. */
function npRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** The exact ε̂ of N(μ, s²) data at ᾱ: √(1−ᾱ)·(x − √ᾱ·μ)/(ᾱ·s² + 1 − ᾱ). */
function exactEps(x: readonly number[], ab: number): number[] {
  return x.map((v) => (Math.sqrt(1 - ab) * (v - Math.sqrt(ab) * MEAN)) / (ab * STD * STD + 1 - ab));
}

/**
 * diffusers' PNDMScheduler (skip_prk_steps=False, leading spacing) transcribed: returns the
 * model-call times and the final sample from `x`.
 */
function diffusersPndm(
  x0: readonly number[],
  steps: number,
  offset: number,
  setAlphaToOne: boolean,
  spacing: 'leading' | 'linspace' | 'trailing' = 'leading',
  skipPrk = false,
): { times: number[]; x: number[] } {
  const ac = sdAlphasCumprod();
  const n = 1000;
  const finalAb = setAlphaToOne ? 1 : ac[0]!;
  const ratio = Math.floor(n / steps);
  // _timesteps, ascending: leading arange(S)·⌊N/S⌋ + offset; linspace round(linspace(0, N−1, S)); trailing round(arange(N, 0, −N/S))[::-1] − 1.
  const grid =
    spacing === 'leading'
      ? Array.from({ length: steps }, (_, i) => i * ratio + offset)
      : spacing === 'linspace'
        ? Array.from({ length: steps }, (_, i) => npRound(steps === 1 ? 0 : ((n - 1) * i) / (steps - 1)))
        : Array.from({ length: steps }, (_, i) => npRound(n - (i * n) / steps) - 1).reverse();
  const half = Math.floor(ratio / 2);
  // prk = last 4 times repeated twice + tile([0, half]); then prk[:-1].repeat(2)[1:-1], reversed.
  const last4 = grid.slice(-4);
  const prk0 = last4.flatMap((t) => [t, t + half]);
  const doubled = prk0.slice(0, -1).flatMap((t) => [t, t]);
  const prk = skipPrk ? [] : doubled.slice(1, -1).reverse();
  // skip_prk_steps: [_t[:-1], _t[-2], _t[-1]] reversed (the second time repeated), else _t[:-3] reversed.
  const plms = skipPrk ? [...grid.slice(0, -1), ...grid.slice(-2, -1), ...grid.slice(-1)].reverse() : grid.slice(0, -3).reverse();
  const times = [...prk, ...plms];
  // _get_prev_sample: x_prev = √(ᾱ_prev/ᾱ)·x − (ᾱ_prev − ᾱ)·ε / (ᾱ·√(1−ᾱ_prev) + √(ᾱ(1−ᾱ)ᾱ_prev)).
  const prev = (x: readonly number[], t: number, tp: number, e: readonly number[]): number[] => {
    const a = ac[t]!;
    const ap = tp >= 0 ? ac[tp]! : finalAb;
    const denom = a * Math.sqrt(1 - ap) + Math.sqrt(a * (1 - a) * ap);
    return x.map((v, i) => Math.sqrt(ap / a) * v - ((ap - a) * e[i]!) / denom);
  };
  let x = [...x0];
  let counter = 0;
  let cur: number[] = x.map(() => 0);
  let curSample = x;
  let ets: number[][] = [];
  for (const t of times) {
    const out = exactEps(x, ac[t]!);
    if (counter < prk.length) {
      const diff = counter % 2 ? 0 : half;
      const tPrev = t - diff;
      const tBase = prk[Math.floor(counter / 4) * 4]!;
      let e = out;
      if (counter % 4 === 0) {
        cur = cur.map((v, i) => v + out[i]! / 6);
        ets.push(out);
        curSample = x;
      } else if (counter % 4 === 3) {
        e = cur.map((v, i) => v + out[i]! / 6);
        cur = x.map(() => 0);
      } else {
        cur = cur.map((v, i) => v + out[i]! / 3);
      }
      x = prev(curSample, tBase, tPrev, e);
    } else {
      // step_plms: counter 1 (skip_prk) redoes the first step from t + ⌊N/S⌋ with the mean ε̂.
      let from = t;
      let to = t - ratio;
      if (counter !== 1) ets = [...ets.slice(-3), out];
      else [from, to] = [t + ratio, t];
      let e: number[];
      let base = x;
      if (ets.length === 1 && counter === 0) {
        e = out;
        curSample = x;
      } else if (ets.length === 1 && counter === 1) {
        e = out.map((v, i) => (v + ets[0]![i]!) / 2);
        base = curSample;
      } else {
        const w = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]][ets.length - 1]!;
        e = out.map((_, i) => w.reduce((acc, wk, k) => acc + wk * ets.at(-1 - k)![i]!, 0));
      }
      x = prev(base, from, to, e);
    }
    counter++;
  }
  return { times, x };
}

async function runConfig(config: Record<string, unknown>, steps: number, xStart: Float64Array): Promise<{ times: number[]; x: number[] }> {
  const c = fromSchedulerConfig(config);
  const o = c.sampleOptions(steps);
  const spec = getSolver(o.solver);
  const plan = spec.plan({ schedule: o.schedule, steps: o.steps!, timesteps: o.timesteps, options: o.solverOptions });
  const base = gaussianModel({ schedule: o.schedule, mean: MEAN, std: STD, sampleShape: [xStart.length] });
  const times: number[] = [];
  const model = { ...base, predict: (x: Parameters<typeof base.predict>[0], call: ModelCall) => (times.push(call.t), base.predict(x, call)) };
  const ctx = createSolverContext({ model, schedule: o.schedule, batch: 1, precision: 'float64' });
  const x = await plan.run(xStart, plan.timesteps, ctx);
  assert.equal(ctx.calls, plan.calls, 'planned calls');
  return { times, x: [...x] };
}

const SD15_PRK = {
  _class_name: 'PNDMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: false,
  steps_offset: 1,
};
const X_START = Float64Array.from([1.3, -0.4, 0.2, -2.1, 0.7, 0.05]);

for (const [label, config, offset, one] of [
  ['SD 1.5 config with skip_prk_steps=false', SD15_PRK, 1, false],
  [
    'class defaults with scaled_linear betas',
    { _class_name: 'PNDMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' },
    0,
    false,
  ],
  ['set_alpha_to_one=true', { ...SD15_PRK, set_alpha_to_one: true }, 1, true],
] as const) {
  test(`plms warmup 'prk' reproduces diffusers' PNDM step_prk/step_plms (${label})`, async () => {
    for (const steps of [4, 9, 10, 25]) {
      const ref = diffusersPndm([...X_START], steps, offset, one);
      // The transcription's skip_prk_steps branch against our plms, which the parity fixture checks against diffusers.
      const refSkip = diffusersPndm([...X_START], steps, offset, one, 'leading', true);
      const oursSkip = await runConfig({ ...config, skip_prk_steps: true }, steps, X_START);
      assert.deepEqual(oursSkip.times, refSkip.times, `S=${steps} skip_prk_steps: times`);
      assert.ok(maxAbsDiff(Float64Array.from(oursSkip.x), Float64Array.from(refSkip.x)) < 1e-12, `S=${steps} skip_prk_steps: final`);
      const ours = await runConfig(config, steps, X_START);
      assert.equal(ours.times.length, steps + 9, `S=${steps}: S + 9 calls`);
      assert.deepEqual(ours.times, ref.times, `S=${steps}: model-call times`);
      const d = maxAbsDiff(Float64Array.from(ours.x), Float64Array.from(ref.x));
      assert.ok(d < 1e-12, `S=${steps}: final sample differs from the transcription by ${d}`);
    }
  });
}

test("PNDM on linspace / trailing grids (stepping 'ratio', with and without PRK) reproduces the transcription", async () => {
  for (const spacing of ['linspace', 'trailing'] as const) {
    for (const skipPrk of [false, true]) {
      const config = { ...SD15_PRK, steps_offset: 0, timestep_spacing: spacing, skip_prk_steps: skipPrk };
      assert.equal(fromSchedulerConfig(config).solverOptions['stepping'], 'ratio');
      for (const steps of [4, 6, 9, 10, 25]) {
        const ref = diffusersPndm([...X_START], steps, 0, false, spacing, skipPrk);
        const ours = await runConfig(config, steps, X_START);
        const label = `${spacing} skip_prk_steps=${skipPrk} S=${steps}`;
        assert.equal(ours.times.length, skipPrk ? steps + 1 : steps + 9, `${label}: calls`);
        assert.deepEqual(ours.times, ref.times, `${label}: model-call times`);
        const d = maxAbsDiff(Float64Array.from(ours.x), Float64Array.from(ref.x));
        assert.ok(d < 1e-12, `${label}: final sample differs from the transcription by ${d}`);
        // stepping 'grid' lands on the grid instead: a different final sample wherever the spacing is not ⌊T/N⌋.
        const c = fromSchedulerConfig(config);
        const o = c.sampleOptions(steps);
        const grid = getSolver('plms').plan({ schedule: o.schedule, steps, timesteps: o.timesteps, options: { ...o.solverOptions, stepping: 'grid' } });
        const spacedByRatio = grid.timesteps.slice(0, -2).every((t, i) => t - grid.timesteps[i + 1]! === Math.floor(1000 / steps));
        if (!spacedByRatio) {
          const base = gaussianModel({ schedule: o.schedule, mean: MEAN, std: STD, sampleShape: [X_START.length] });
          const xg = await grid.run(X_START, grid.timesteps, createSolverContext({ model: base, schedule: o.schedule, batch: 1, precision: 'float64' }));
          assert.ok(maxAbsDiff(xg, Float64Array.from(ref.x)) > 1e-6, `${label}: stepping 'grid' should differ from diffusers`);
        }
      }
    }
  }
  // The SD 1.5 (leading) config keeps the grid stepping (the same steps there).
  assert.equal(fromSchedulerConfig({ ...SD15_PRK, skip_prk_steps: true }).solverOptions['stepping'], undefined);
  assert.throws(
    () => getSolver('plms').plan({ schedule: continuousVpSchedule(), steps: 5, options: { stepping: 'ratio' }, timesteps: { spacing: 'time_uniform' } }),
    /plms stepping 'ratio' .* needs integer times of a discrete schedule, got a continuous schedule/,
  );
});

test('config: PNDM with class defaults runs (PRK warm-up, S + 9 calls, grid ending t = 0 twice)', async () => {
  const c = fromSchedulerConfig({ _class_name: 'PNDMScheduler' });
  assert.deepEqual(c.notes, []);
  assert.deepEqual(c.solverOptions, { warmup: 'prk' });
  const o = c.sampleOptions(10);
  const plan = getSolver(o.solver).plan({ schedule: o.schedule, steps: o.steps!, timesteps: o.timesteps, options: o.solverOptions });
  assert.deepEqual(plan.timesteps, [900, 800, 700, 600, 500, 400, 300, 200, 100, 0, 0]);
  assert.equal(plan.calls, 19);
  const r = await runConfig({ _class_name: 'PNDMScheduler' }, 10, X_START);
  assert.deepEqual(r.times, [900, 850, 850, 800, 800, 750, 750, 700, 700, 650, 650, 600, 600, 500, 400, 300, 200, 100, 0]);
  // The SD 1.5 config (skip_prk_steps=true) keeps PLMS's improved-Euler start.
  assert.deepEqual(fromSchedulerConfig({ ...SD15_PRK, skip_prk_steps: true }).solverOptions, {});
});

test('the PRK warm-up step is one RK4 step: k₁…k₄ by hand on a single interval pair', async () => {
  // Two intervals of the continuous VP schedule would not pass (PRK needs ≥ 4); check the first
  // interval instead through the state after step 0, against the RK4 stages written out here.
  const vp = continuousVpSchedule();
  const grid = [0.8, 0.6, 0.45, 0.3, 0.2];
  const model = gaussianModel({ schedule: vp, mean: MEAN, std: STD, sampleShape: [2] });
  const x = Float64Array.from([0.9, -1.2]);
  let first: number[] | undefined;
  const ctx = createSolverContext({
    model,
    schedule: vp,
    batch: 1,
    precision: 'float64',
    onStep: (info) => {
      if (info.step === 0) first = [...info.x];
    },
  });
  await getSolver('plms').create({ warmup: 'prk' })(x, grid, ctx);
  assert.equal(ctx.calls, 12 + 1);
  const eps = (y: readonly number[], t: number): number[] => {
    const a = vp.alpha(t);
    const s = vp.sigma(t);
    return y.map((v) => (s * (v - a * MEAN)) / (a * a * STD * STD + s * s));
  };
  // φ(x, s → u, ε) = (α_u/α_s)·x + (σ_u − α_u·σ_s/α_s)·ε.
  const phi = (y: readonly number[], s: number, u: number, e: readonly number[]): number[] =>
    y.map((v, i) => (vp.alpha(u) / vp.alpha(s)) * v + (vp.sigma(u) - (vp.alpha(u) * vp.sigma(s)) / vp.alpha(s)) * e[i]!);
  const [s, t] = [0.8, 0.6];
  const m = 0.7;
  const k1 = eps([...x], s);
  const k2 = eps(phi([...x], s, m, k1), m);
  const k3 = eps(phi([...x], s, m, k2), m);
  const k4 = eps(phi([...x], s, t, k3), t);
  const want = phi(
    [...x],
    s,
    t,
    k1.map((v, i) => (v + 2 * k2[i]! + 2 * k3[i]! + k4[i]!) / 6),
  );
  assert.ok(first);
  const d = Math.max(...want.map((v, i) => Math.abs(v - first![i]!)));
  assert.ok(d < 1e-14, `step 0 differs from the hand RK4 by ${d}`);
});

test("plms warmup 'prk': measured order on a grid uniform in σ/α", async (t) => {
  const vp = continuousVpSchedule();
  const prk = await measureOrder(getSolver('plms').create({ warmup: 'prk' }), (m) => rhoUniformGrid(vp, m, 0.3, 1e-3), [16, 32, 64, 128, 256], {
    schedule: vp,
  });
  t.diagnostic(`order ${prk.order.toFixed(3)}; errors ${prk.errors.map((e) => e.toExponential(2)).join(' ')}`);
  // Measured 3.81 (errors 2.3e-4 … 6.3e-9): the fourth-order stencil from step 3 on, the RK4 warm-up
  // not limiting it (its half-step lies at the time midpoint, O(h²) off the σ/α midpoint, for 3 steps only).
  assert.ok(prk.order > 3.4 && prk.order < 4.6, `order ${prk.order}`);
});

test("plms warmup 'prk': call counts, budgets and errors", () => {
  const plms = getSolver('plms');
  assert.equal(plms.callsForSteps(4, { warmup: 'prk' }), 13);
  assert.equal(plms.callsForSteps(50, { warmup: 'prk' }), 59);
  assert.equal(plms.stepsForCalls(59, { warmup: 'prk' }), 50);
  assert.equal(plms.stepsForCalls(13, { warmup: 'prk' }), 4);
  const vp = continuousVpSchedule();
  assert.equal(plms.plan({ schedule: vp, nfe: 20, options: { warmup: 'prk' }, timesteps: { spacing: 'time_uniform' } }).steps, 11);
  assert.throws(
    () => plms.plan({ schedule: vp, nfe: 12, options: { warmup: 'prk' }, timesteps: { spacing: 'time_uniform' } }),
    /warmup 'prk' needs at least 13 model calls/,
  );
  assert.throws(
    () => plms.plan({ schedule: vp, steps: 3, options: { warmup: 'prk' }, timesteps: { spacing: 'time_uniform' } }),
    /needs a grid of at least 4 intervals, got 3 .*num_inference_steps ≥ 4/,
  );
  assert.throws(() => plms.create({ warmup: 'prk', order: 2 }), /warmup 'prk' starts the order-4 stencil/);
  assert.throws(() => plms.create({ warmup: 'rk4' } as object), /option "warmup" of solver "plms" must be one of 'none', 'prk'/);
  // diffusers cannot build its PRK list for S < 4 either; the loader's 3-step run is refused before any call.
  const o3 = fromSchedulerConfig({ _class_name: 'PNDMScheduler' }).sampleOptions(3);
  assert.throws(() => plms.plan({ schedule: o3.schedule, steps: 3, timesteps: o3.timesteps, options: o3.solverOptions }), /at least 4 intervals, got 3/);
});
