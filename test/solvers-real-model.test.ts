/**
 * Third-order multistep solvers (UniPC-3, DPM-Solver++(3M)) on the bundled Fashion-MNIST U-Net, in
 * the regime the closed-form order tests do not reach: σ-spaced grids (Karras, exponential) from
 * t = 999 (σ/α ≈ 157), 8 and 12 model calls, classifier-free guidance 4 and 1, into σ = 0.
 *
 * Trajectory error: the mean squared difference of the final samples from a DPM-Solver++(2M) run with
 * 60 calls on the same grid family from the same noise (its own error, against 100 and 200 calls, is
 * ~5e-5, against the 3e-3…6e-2 measured here). Without the third-order stencil limit
 * (`MAX_THIRD_ORDER_SPAN`), at 8 calls, Karras grid, guidance 4, UniPC-3 ended at 4.4 (speckled noise)
 * against UniPC-2's 0.053, and 3M at 0.87 against 2M's 0.063.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { sample, type SampleOptions } from '../src/core/sample.js';
import { gaussianBatch } from '../src/core/rng.js';
import { buildTimesteps } from '../src/core/timesteps.js';
import { MAX_THIRD_ORDER_SPAN } from '../src/core/solvers/exponential-integrator.js';
import type { NumArray } from '../src/core/tensor.js';
import { bundledModelPath, loadOnnxModel } from '../src/node/load-model.js';
import { cardSamplingSetup } from '../src/model/model-card.js';

const MODEL = process.env['REDIFFUSE_BUNDLED_MODEL'] ?? bundledModelPath();
/** T-shirt/top, Dress, Sneaker, Ankle boot: four samples from one seeded noise. */
const LABELS = [0, 3, 7, 9];
const REFERENCE_CALLS = 60;

function mse(a: NumArray, b: NumArray): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

type Base = Pick<SampleOptions, 'model' | 'schedule' | 'batch' | 'initialNoise' | 'cond' | 'guidance' | 'timesteps'>;

let setup: { base: (spacing: 'karras' | 'exponential', guidance: number) => Base; schedule: Base['schedule'] };

before(async () => {
  const loaded = await loadOnnxModel({ path: MODEL, threads: 2 });
  assert.ok(loaded.card, `no model card next to ${MODEL}`);
  const { schedule, nullLabel } = cardSamplingSetup(loaded.card);
  const noise = gaussianBatch(2026, LABELS.length, 28 * 28, 'float32');
  setup = {
    schedule,
    base: (spacing, guidance) => ({
      model: loaded.model,
      schedule,
      batch: LABELS.length,
      initialNoise: noise,
      cond: { classLabels: LABELS },
      ...(guidance === 1 ? {} : { guidance: { scale: guidance, nullLabel: nullLabel! } }),
      timesteps: { spacing },
    }),
  };
});

const references = new Map<string, NumArray>();

/** Trajectory errors of UniPC-2/3 and DPM-Solver++ 2M/3M at `nfe` calls (the reference is shared per grid and guidance). */
async function errors(spacing: 'karras' | 'exponential', guidance: number, nfe: number) {
  const base = setup.base(spacing, guidance);
  const key = `${spacing}/${guidance}`;
  if (!references.has(key)) references.set(key, (await sample({ ...base, solver: 'dpmpp_2m', nfe: REFERENCE_CALLS })).samples);
  const ref = references.get(key)!;
  const err = async (solver: string, order?: number) =>
    mse((await sample({ ...base, solver, nfe, ...(order === undefined ? {} : { solverOptions: { order } }) })).samples, ref);
  return { unipc2: await err('unipc', 2), unipc3: await err('unipc', 3), dpmpp2m: await err('dpmpp_2m'), dpmpp3m: await err('dpmpp_3m') };
}

const fmt = (e: Record<string, number>) =>
  Object.entries(e)
    .map(([k, v]) => `${k} ${v.toExponential(2)}`)
    .join(', ');

// Tolerances. At 8 calls every third-order stencil of these grids spans more than 2 in λ, so the
// third-order solvers run at second order (ratio 1; without the limit UniPC-3 was 5–83× UniPC-2). At 12 calls on
// the Karras grid the early steps are third order: measured UniPC-3/UniPC-2 0.74 and 3M/2M 0.42 on
// these 4 samples (1.03 and 1.25 on 8 others). On this model the third order buys little over the
// second (its wider extrapolation also weights the t-periodic ripple of ε̂ more), so the bounds
// allow it to be somewhat worse, by 1.5× and 3×; without the limit every case fails.
const UNIPC_RATIO = 1.5;
const DPMPP_RATIO = 3;

describe('third-order multistep solvers on the bundled U-Net (σ-spaced grids, guidance, into σ = 0)', () => {
  const cases: ['karras' | 'exponential', number, number][] = [
    ['karras', 4, 8],
    ['karras', 1, 8],
    ['exponential', 4, 8],
    ['exponential', 1, 8],
    ['karras', 4, 12],
  ];
  for (const [spacing, guidance, nfe] of cases) {
    it(`${spacing} grid, guidance ${guidance}, ${nfe} calls: UniPC-3 ≤ ${UNIPC_RATIO}× UniPC-2, 3M ≤ ${DPMPP_RATIO}× 2M`, async (t) => {
      const e = await errors(spacing, guidance, nfe);
      t.diagnostic(`MSE vs ${REFERENCE_CALLS}-call 2M: ${fmt(e)}`);
      assert.ok(e.unipc3 <= UNIPC_RATIO * e.unipc2, `UniPC-3 ${e.unipc3} vs UniPC-2 ${e.unipc2} (${fmt(e)})`);
      assert.ok(e.dpmpp3m <= DPMPP_RATIO * e.dpmpp2m, `3M ${e.dpmpp3m} vs 2M ${e.dpmpp2m} (${fmt(e)})`);
      // Clean images, not speckle: the samples are in [−1, 1], a broken run is off by O(1).
      assert.ok(e.unipc3 < 0.15 && e.dpmpp3m < 0.15, fmt(e));
    });
  }

  it('the 12-call Karras grid still takes third-order steps (the limit does not switch order 3 off)', () => {
    const lambdas = buildTimesteps(setup.schedule, { steps: 12, spacing: 'karras' }).map((t) => setup.schedule.lambda(t));
    // Step i (i ≥ 2) is third order when λ_{i+1} − λ_{i−2} ≤ MAX_THIRD_ORDER_SPAN (the last two are lowered anyway).
    const third = lambdas.slice(3, -2).filter((l, j) => l - lambdas[j]! <= MAX_THIRD_ORDER_SPAN).length;
    assert.ok(third >= 2, `third-order steps on the 12-call Karras grid: ${third}`);
    const eight = buildTimesteps(setup.schedule, { steps: 8, spacing: 'karras' }).map((t) => setup.schedule.lambda(t));
    assert.equal(eight.slice(3, -2).filter((l, j) => l - eight[j]! <= MAX_THIRD_ORDER_SPAN).length, 0);
  });
});
