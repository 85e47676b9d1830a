/**
 * DEIS (deis.ts): closed-form convergence orders on the Gaussian model, and the log-ρ coefficients
 * against the integrals diffusers writes out for orders 2 and 3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { deisCoefficients, deisSpec } from '../src/core/solvers/deis.js';
import { ddimSpec } from '../src/core/solvers/ddim.js';
import { logSnrGrid, measureOrder, runOnGaussian, smoothLogSnrGrid } from './helpers/convergence.js';

const vp = continuousVpSchedule();
const STEPS = [24, 32, 48, 64, 96];

// Order 2 on the plain log-SNR grid: on the smoothed one its leading error term changes sign near
// 64 steps (errors 3.5e-5, 6.5e-7, 8.2e-6 at 48, 64, 96), which no slope fit survives.
const GRIDS = { 1: smoothLogSnrGrid, 2: (s: typeof vp, m: number) => logSnrGrid(s, m), 3: smoothLogSnrGrid } as const;

for (const order of [1, 2, 3] as const) {
  test(`deis order ${order}: measured convergence order ≈ ${order} (steps ${STEPS.join(', ')})`, async () => {
    const r = await measureOrder(deisSpec.create({ order, lowerOrderFinal: false }), (m) => GRIDS[order](vp, m), STEPS, { schedule: vp });
    assert.ok(
      r.order > order - 0.3 && r.order < order + 0.35,
      `order ${r.order.toFixed(3)}, errors ${r.errors.map((e) => e.toExponential(2)).join(' ')}`,
    );
    for (let i = 1; i < r.errors.length; i++) assert.ok(r.errors[i]! < r.errors[i - 1]!);
  });
}

test('deis order 1 is DDIM (to 1e-13)', async () => {
  const grid = smoothLogSnrGrid(vp, 12);
  const a = await runOnGaussian(deisSpec.create({ order: 1 }), grid, { schedule: vp });
  const b = await runOnGaussian(ddimSpec.create(), grid, { schedule: vp });
  for (let i = 0; i < a.x.length; i++) assert.ok(Math.abs(a.x[i]! - b.x[i]!) < 1e-13);
});

test('deis coefficients: integrate the log-ρ Lagrange basis exactly (orders 2, 3), sum to ρ_t − ρ_s', () => {
  const L = Math.log;
  // ∫ (log τ − log c)/(log b − log c) dτ and its 3-node analogue, written out (diffusers' ind_fn).
  const ind2 = (t: number, b: number, c: number) => (t * (-L(c) + L(t) - 1)) / (L(b) - L(c));
  const ind3 = (t: number, b: number, c: number, d: number) =>
    (t * (L(c) * (L(d) - L(t) + 1) - L(d) * L(t) + L(d) + L(t) ** 2 - 2 * L(t) + 2)) / ((L(b) - L(c)) * (L(b) - L(d)));
  const [rt, r0, r1, r2] = [0.7, 1.6, 4.1, 14.6];
  const c2 = deisCoefficients([r0, r1], r0, rt);
  assert.ok(Math.abs(c2[0]! - (ind2(rt, r0, r1) - ind2(r0, r0, r1))) < 1e-13);
  assert.ok(Math.abs(c2[1]! - (ind2(rt, r1, r0) - ind2(r0, r1, r0))) < 1e-13);
  const c3 = deisCoefficients([r0, r1, r2], r0, rt);
  assert.ok(Math.abs(c3[0]! - (ind3(rt, r0, r1, r2) - ind3(r0, r0, r1, r2))) < 1e-13);
  assert.ok(Math.abs(c3[1]! - (ind3(rt, r1, r2, r0) - ind3(r0, r1, r2, r0))) < 1e-13);
  assert.ok(Math.abs(c3[2]! - (ind3(rt, r2, r0, r1) - ind3(r0, r2, r0, r1))) < 1e-13);
  // The basis sums to 1, so the coefficients sum to ∫ dτ = ρ_t − ρ_s; into ρ_t = 0 they stay finite.
  assert.ok(Math.abs(c3.reduce((a, b) => a + b, 0) - (rt - r0)) < 1e-13);
  const clean = deisCoefficients([r0, r1, r2], r0, 0);
  assert.ok(clean.every(Number.isFinite));
  assert.ok(Math.abs(clean.reduce((a, b) => a + b, 0) + r0) < 1e-13);
});
