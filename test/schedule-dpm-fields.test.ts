/**
 * DPMSolverMultistep config fields the loader now applies, with the grids computed independently here:
 * - `lambda_min_clipped` on a cosine (squaredcos_cap_v2) schedule: diffusers' set_timesteps spans
 *   0 … last − 1 with last = N − #{t : λ_t < L}, for linspace / leading / trailing (the cosine ᾱ
 *   table and λ written out here, numpy's half-even rounding);
 * - `use_beta_sigmas`: σ at the Beta(0.6, 0.6) quantiles of [σ(0), σ(N − 1)] (Lee et al. 2024) —
 *   checked by the incomplete beta function's power series (not the continued fraction the code
 *   uses), and betaCdf / betaPpf against the closed forms of Beta(1, 1), Beta(2, 2), Beta(½, ½);
 * - `variance_type: "learned_range"` refused with the fix named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromSchedulerConfig } from '../src/core/schedule/config.js';
import { betaCdf, betaPpf, betaSigmas } from '../src/core/schedule/beta-distribution.js';
import { CLEAN_TIME, veSigma } from '../src/core/schedule/noise-schedule.js';
import { buildTimesteps } from '../src/core/timesteps.js';
import { getSolver } from '../src/core/solvers/registry.js';

/** numpy's round: half to even. */
function npRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** The cosine schedule (Nichol & Dhariwal 2021): β_i = min(1 − ᾱ(i+1)/ᾱ(i), 0.999), ᾱ(t) = cos²((t/N + 0.008)/1.008·π/2). */
function cosineLambdas(n: number): number[] {
  const f = (t: number): number => Math.cos((((t / n + 0.008) / 1.008) * Math.PI) / 2) ** 2;
  const out: number[] = [];
  let ab = 1;
  for (let i = 0; i < n; i++) {
    ab *= 1 - Math.min(1 - f(i + 1) / f(i), 0.999);
    out.push(0.5 * Math.log(ab / (1 - ab)));
  }
  return out;
}

const COSINE = { _class_name: 'DPMSolverMultistepScheduler', beta_schedule: 'squaredcos_cap_v2', num_train_timesteps: 1000 };

function configGrid(config: Record<string, unknown>, steps: number): number[] {
  const c = fromSchedulerConfig(config);
  return buildTimesteps(c.schedule, { ...c.timestepOptions, steps });
}

test('lambda_min_clipped: the cosine grid ends below the clipped times (linspace, leading, trailing), as diffusers computes it', () => {
  const lambdas = cosineLambdas(1000);
  const L = -5.1;
  const clipped = lambdas.filter((l) => l < L).length;
  const last = 1000 - clipped;
  assert.ok(clipped >= 1 && clipped < 30, `the cosine schedule's λ falls below ${L} only near t = 999 (${clipped} times)`);
  for (const steps of [5, 10, 25]) {
    // linspace: linspace(0, last − 1, S + 1).round()[::-1][:-1]
    const lin = Array.from({ length: steps + 1 }, (_, i) => npRound(((last - 1) * i) / steps))
      .reverse()
      .slice(0, steps);
    assert.deepEqual(configGrid({ ...COSINE, lambda_min_clipped: L }, steps), [...lin, CLEAN_TIME], `linspace S=${steps}`);
    // leading: (arange(S + 1)·(last // (S + 1)))[::-1][:-1] + offset
    const ratio = Math.floor(last / (steps + 1));
    const lead = Array.from({ length: steps }, (_, i) => (steps - i) * ratio + 1);
    assert.deepEqual(configGrid({ ...COSINE, lambda_min_clipped: L, timestep_spacing: 'leading', steps_offset: 1 }, steps), [...lead, CLEAN_TIME]);
    // trailing: round(arange(last, 0, −N/S)) − 1, ⌈last·S/N⌉ values
    const count = Math.ceil((last * steps) / 1000);
    const trail = Array.from({ length: count }, (_, i) => npRound(last - (i * 1000) / steps) - 1);
    assert.deepEqual(configGrid({ ...COSINE, lambda_min_clipped: L, timestep_spacing: 'trailing' }, steps), [...trail, CLEAN_TIME]);
    // Unclipped, the grid starts at t = 999.
    assert.equal(configGrid(COSINE, steps)[0], 999);
    assert.equal(configGrid({ ...COSINE, lambda_min_clipped: null }, steps)[0], 999);
  }
  assert.equal(fromSchedulerConfig({ ...COSINE, lambda_min_clipped: L }).notes.length, 0);
});

test('lambda_min_clipped: sigma-spaced grids (karras) use the whole table, as in diffusers; a run on the clipped grid works', async () => {
  const clippedKarras = configGrid({ ...COSINE, lambda_min_clipped: -5.1, use_karras_sigmas: true }, 8);
  assert.deepEqual(clippedKarras, configGrid({ ...COSINE, use_karras_sigmas: true }, 8));
  assert.equal(clippedKarras[0], 999);
  const c = fromSchedulerConfig({ ...COSINE, lambda_min_clipped: -5.1 });
  const o = c.sampleOptions(10);
  const plan = getSolver(o.solver).plan({ schedule: o.schedule, steps: o.steps!, timesteps: o.timesteps, options: o.solverOptions });
  assert.equal(plan.calls, 10);
  assert.ok(plan.timesteps[0]! < 999);
  assert.ok(o.schedule.lambda(plan.timesteps[0]!) >= -5.1);
  assert.throws(() => configGrid({ ...COSINE, lambda_min_clipped: 50 }, 4), /clips \d+ of 1000 training times, leaving no grid/);
  assert.throws(() => fromSchedulerConfig({ ...COSINE, lambda_min_clipped: 'low' }), /field "lambda_min_clipped" must be a number/);
  assert.match(
    fromSchedulerConfig({ _class_name: 'EulerDiscreteScheduler', lambda_min_clipped: -5 }).notes.join(' '),
    /not a field of EulerDiscreteScheduler/,
  );
});

/** B(x; a, b) by its power series x^a·Σ (1 − b)_n/n!·xⁿ/(a + n), for x ≤ ½. */
function incompleteBetaSeries(x: number, a: number, b: number): number {
  let sum = 0;
  let coef = 1; // (1 − b)_n / n!
  for (let n = 0; n < 200; n++) {
    sum += (coef * x ** n) / (a + n);
    coef *= (n + 1 - b) / (n + 1);
  }
  return x ** a * sum;
}

/** I_x(a, a) from the series and the symmetry I_x = 1 − I_{1−x} (B(a, a) = 2·B(½; a, a)). */
function symmetricBetaCdf(x: number, a: number): number {
  const total = 2 * incompleteBetaSeries(0.5, a, a);
  return x <= 0.5 ? incompleteBetaSeries(x, a, a) / total : 1 - incompleteBetaSeries(1 - x, a, a) / total;
}

test('betaCdf / betaPpf: closed forms of Beta(1,1), Beta(2,2), Beta(½,½), and the series for Beta(0.6, 0.6)', () => {
  for (const x of [0.001, 0.1, 0.37, 0.5, 0.81, 0.999]) {
    assert.ok(Math.abs(betaCdf(x, 1, 1) - x) < 1e-14);
    assert.ok(Math.abs(betaCdf(x, 2, 2) - (3 * x * x - 2 * x ** 3)) < 1e-14);
    assert.ok(Math.abs(betaCdf(x, 0.5, 0.5) - (2 / Math.PI) * Math.asin(Math.sqrt(x))) < 1e-14);
    assert.ok(Math.abs(betaCdf(x, 0.6, 0.6) - symmetricBetaCdf(x, 0.6)) < 1e-13, `I_${x}(0.6, 0.6)`);
  }
  for (const p of [0.01, 0.25, 0.5, 0.9]) {
    assert.ok(Math.abs(betaPpf(p, 0.5, 0.5) - Math.sin((Math.PI * p) / 2) ** 2) < 1e-14);
    const q = betaPpf(p, 0.6, 0.6);
    assert.ok(Math.abs(symmetricBetaCdf(q, 0.6) - p) < 1e-13);
    assert.ok(Math.abs(q + betaPpf(1 - p, 0.6, 0.6) - 1) < 1e-14, 'symmetry of Beta(a, a)');
  }
  assert.equal(betaPpf(0, 0.6, 0.6), 0);
  assert.equal(betaPpf(1, 0.6, 0.6), 1);
  assert.throws(() => betaPpf(1.5, 0.6, 0.6), /p must lie in \[0, 1\]/);
  assert.throws(() => betaCdf(0.5, 0, 1), /need shapes a, b > 0/);
});

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000 };

test('use_beta_sigmas: σ at the Beta(0.6, 0.6) quantiles of [σ(0), σ(999)], the model handed rounded times (DPM family)', async () => {
  const c = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', ...SD, use_beta_sigmas: true });
  assert.equal(c.spacing, 'beta');
  assert.deepEqual(c.notes, []);
  const steps = 12;
  const grid = buildTimesteps(c.schedule, { ...c.timestepOptions, steps });
  assert.equal(grid.length, steps + 1);
  assert.equal(grid.at(-1), CLEAN_TIME);
  const lo = veSigma(c.schedule, 0);
  const hi = veSigma(c.schedule, 999);
  const sig = grid.slice(0, -1).map((t) => veSigma(c.schedule, t));
  assert.equal(grid[0], 999);
  assert.equal(grid[steps - 1], 0);
  for (let i = 0; i < steps; i++) {
    const x = (sig[i]! - lo) / (hi - lo);
    assert.ok(Math.abs(symmetricBetaCdf(x, 0.6) - (1 - i / (steps - 1))) < 1e-10, `σ_${i}: I_x = ${symmetricBetaCdf(x, 0.6)}`);
    assert.equal(c.schedule.modelTime(grid[i]!), npRound(grid[i]!));
  }
  // Dense at both ends: the first and last gaps are the smallest in the unit interval.
  const xs = sig.map((s) => (s - lo) / (hi - lo));
  const gaps = xs.slice(1).map((v, i) => xs[i]! - v);
  assert.ok(gaps[0]! < gaps[5]! && gaps.at(-1)! < gaps[5]!);
  assert.deepEqual(
    betaSigmas(lo, hi, steps).map((s) => s.toPrecision(12)),
    sig.map((s) => s.toPrecision(12)),
  );
  const o = c.sampleOptions(steps);
  assert.equal(getSolver(o.solver).plan({ schedule: o.schedule, steps: o.steps!, timesteps: o.timesteps, options: o.solverOptions }).calls, steps);
  // The Euler family keeps the log-σ schedule on this grid too, and the flags are exclusive.
  assert.equal(fromSchedulerConfig({ _class_name: 'EulerDiscreteScheduler', ...SD, use_beta_sigmas: true }).spacing, 'beta');
  assert.throws(
    () => fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', use_beta_sigmas: true, use_karras_sigmas: true }),
    /field "use_beta_sigmas" is true together with use_karras_sigmas; set at most one of them/,
  );
});

test('variance_type "learned_range" is refused with the fix named (DDPM keeps its own check)', () => {
  for (const v of ['learned', 'learned_range']) {
    assert.throws(
      () => fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', variance_type: v }),
      new RegExp(`field "variance_type" is "${v}": the network outputs 2× channels.*export the network with only its first half of output channels`),
    );
  }
  assert.equal(fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', variance_type: null }).solver, 'dpmpp_2m');
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDPMScheduler', variance_type: 'learned_range' }), /use "fixed_small" or "fixed_large"/);
});
