/**
 * iPNDM with variable steps (ipndm-v.ts): its weights integrate the slope polynomial exactly over
 * the actual step (equal-step iPNDM weights on uniform steps, exact for polynomials of degree < k on
 * any nodes), it equals `ipndm` on a ρ-uniform grid, and its measured order and errors against
 * `ipndm`'s on log-SNR and trailing grids of the Gaussian model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { CLEAN_TIME } from '../src/core/schedule/noise-schedule.js';
import { IPNDM_WEIGHTS } from '../src/core/solvers/ipndm.js';
import { variableStepWeights } from '../src/core/solvers/ipndm-v.js';
import { getSolver } from '../src/core/solvers/registry.js';
import { resolveSamplerName } from '../src/core/schedule/sampler-names.js';
import { logSnrGrid, measureOrder, rhoUniformGrid, runOnGaussian } from './helpers/convergence.js';

const vp = continuousVpSchedule();

test('variable-step weights: the equal-step iPNDM weights on uniform steps, exact for polynomials of degree < k on any nodes', () => {
  for (let k = 1; k <= 4; k++) {
    // ρ_s = 5, older nodes 5.5, 6, …; a step to 4.5
    const w = variableStepWeights(
      Array.from({ length: k }, (_, j) => 5 + 0.5 * j),
      4.5,
    );
    IPNDM_WEIGHTS[k - 1]!.forEach((wj, j) => assert.ok(Math.abs(w[j]! - -0.5 * wj) < 1e-14, `k=${k} j=${j}: ${w[j]} vs ${-0.5 * wj}`));
  }
  const nodes = [2.0, 2.7, 4.1, 9.3];
  const w = variableStepWeights(nodes, 0.4);
  const p = (r: number) => 1.5 - 2 * r + 0.7 * r * r - 0.09 * r ** 3;
  const integral = (r: number) => 1.5 * r - r * r + (0.7 / 3) * r ** 3 - (0.09 / 4) * r ** 4;
  const quad = nodes.reduce((a, r, j) => a + w[j]! * p(r), 0);
  assert.ok(Math.abs(quad - (integral(0.4) - integral(2.0))) < 1e-12, `${quad} vs ${integral(0.4) - integral(2.0)}`);
  assert.throws(() => variableStepWeights([1, 1], 0.5), /nodes 0 and 1 coincide/);
});

test('ipndm_v equals ipndm on a ρ-uniform grid (to 1e-12); on a log-SNR grid its order is 3.4 against ipndm 2.0', async () => {
  const grid = rhoUniformGrid(vp, 24, 0.3, 1e-3);
  const a = await runOnGaussian(getSolver('ipndm').create(), grid, { schedule: vp });
  const b = await runOnGaussian(getSolver('ipndm_v').create(), grid, { schedule: vp });
  let m = 0;
  for (let i = 0; i < a.x.length; i++) m = Math.max(m, Math.abs(a.x[i]! - b.x[i]!));
  assert.ok(m < 1e-12, `${m}`);
  assert.equal(b.calls, 24);
  // Measured: ipndm_v 3.44 (errors 2.6e-2 … 2.0e-6 over 16…256 steps), ipndm 2.05 (1.0e-2 … 3.4e-5).
  const steps = [16, 32, 64, 128, 256];
  const v = await measureOrder(getSolver('ipndm_v').create(), (n) => logSnrGrid(vp, n), steps, { schedule: vp });
  const fixed = await measureOrder(getSolver('ipndm').create(), (n) => logSnrGrid(vp, n), steps, { schedule: vp });
  assert.ok(v.order >= 3.0 && v.order <= 3.9, `ipndm_v order ${v.order}`);
  assert.ok(fixed.order >= 1.7 && fixed.order <= 2.4, `ipndm order ${fixed.order}`);
  // From 64 steps on the variable-step weights are the more accurate; at 16 and 32 the fixed ones are.
  steps.forEach((n, i) => assert.equal(v.errors[i]! < fixed.errors[i]!, n >= 64, `${n} steps: ipndm_v ${v.errors[i]} vs ipndm ${fixed.errors[i]}`));
});

test('trailing grids on the Gaussian model: ipndm_v beats ipndm at 50 steps, ipndm is the closer at 4 to 15', async () => {
  // Measured (mean 0.3, std 0.4, discrete schedule): 6 steps ipndm_v 1.6e-1, ipndm 9.7e-2, DDIM 2.2e-1;
  // 15 steps 1.2e-2 / 8.1e-3 / 1.0e-1; 50 steps 1.9e-4 / 1.0e-3 / 3.2e-2. Both beat DDIM at every count.
  const disc = discreteSchedule();
  for (const steps of [6, 15, 50]) {
    const grid = [...Array.from({ length: steps }, (_, i) => Math.round(1000 - (i * 1000) / steps) - 1), CLEAN_TIME];
    const e = (name: string) => runOnGaussian(getSolver(name).create(), grid, { schedule: disc, mean: 0.3, std: 0.4 }).then((r) => r.error);
    const [v, fixed, ddim] = [await e('ipndm_v'), await e('ipndm'), await e('ddim')];
    assert.ok(v < ddim && fixed < ddim, `${steps} steps: ipndm_v ${v}, ipndm ${fixed}, ddim ${ddim}`);
    assert.equal(v < fixed, steps === 50, `${steps} steps: ipndm_v ${v}, ipndm ${fixed}`);
  }
});

test('the sampler name ipndm_v (ComfyUI) resolves to it', () => {
  assert.equal(resolveSamplerName('ipndm_v').solver, 'ipndm_v');
});

test('ipndm_v takes the options of ipndm (orders 1…4, default 4): order 1 is euler (to 1e-13), order 5 is refused with the fix', async () => {
  const grid = logSnrGrid(vp, 12);
  const e = await runOnGaussian(getSolver('euler').create(), grid, { schedule: vp });
  const v1 = await runOnGaussian(getSolver('ipndm_v').create({ order: 1 }), grid, { schedule: vp });
  let m = 0;
  for (let i = 0; i < e.x.length; i++) m = Math.max(m, Math.abs(e.x[i]! - v1.x[i]!));
  assert.ok(m < 1e-13, `${m}`);
  for (const name of ['ipndm', 'ipndm_v'])
    assert.throws(
      () => getSolver(name).create({ order: 5 }),
      new RegExp(`option "order" of solver "${name}" must be an integer in \\[1, 4\\], got 5: .*default 4`),
    );
  assert.equal(getSolver('ipndm_v').order, 2);
  assert.equal(getSolver('ipndm_v').gridFamily, 'euler');
});
