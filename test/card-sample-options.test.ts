/**
 * The one card → `sample()` options path: the guidance / null-label / label rule (w = 0 is the
 * unconditional model at batch B, w = 1 the conditional one, other w the guided 2B batch), the card's
 * solver settings, budgets and PFDiff k_h, and errors that name the card.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKH, formatKH } from '../src/core/pfdiff/kh.js';
import { planSample, sample } from '../src/core/sample.js';
import type { DiffusionModel, Conditioning } from '../src/core/model.js';
import { cardConditioning, sampleOptionsFromCard, SampleRequestError } from '../src/model/card-sample-options.js';
import { DEFAULT_NFE } from '../src/core/solvers/define-solver.js';
import { cardSamplingSetup, parseModelCard, solverSettingsFor } from '../src/model/model-card.js';

const SCHEDULER = {
  _class_name: 'DDIMScheduler',
  num_train_timesteps: 1000,
  beta_start: 1e-4,
  beta_end: 0.02,
  beta_schedule: 'linear',
  clip_sample: false,
  timestep_spacing: 'trailing',
};
const conditionalCard = parseModelCard({ name: 'c', scheduler_config: SCHEDULER, sample_size: [1, 2, 2], num_classes: 3, null_label: 3 }, 'cards/c.json');
const plainCard = parseModelCard({ name: 'u', scheduler_config: SCHEDULER, sample_size: [1, 2, 2] }, 'cards/u.json');
const cond = cardSamplingSetup(conditionalCard);
const plain = cardSamplingSetup(plainCard);

/** A network that records the batch and labels of every call and returns ε = label/10 (null label → 0.3). */
function recordingModel(): DiffusionModel & { calls: { batch: number; labels: readonly number[] | undefined }[] } {
  const calls: { batch: number; labels: readonly number[] | undefined }[] = [];
  return {
    predictionType: 'epsilon',
    sampleShape: [1, 2, 2],
    calls,
    async predict(x, { batch }, c?: Conditioning) {
      calls.push({ batch, labels: c?.classLabels });
      const out = new Float32Array(x.length);
      const per = x.length / batch;
      for (let i = 0; i < x.length; i++) out[i] = (c?.classLabels?.[Math.floor(i / per)] ?? 3) / 10;
      return out;
    },
  };
}

test('guidance rule: w = 0 → null labels at batch B, w = 1 → labels at B, w = 2 and w = 0.5 → the guided 2B batch', async () => {
  const labels = [0, 1, 2, 1];
  const o0 = sampleOptionsFromCard(cond, { guidance: 0, classLabels: labels, batch: 4, nfe: 3 });
  assert.equal(o0.guidance, undefined);
  assert.deepEqual(o0.cond?.classLabels, [3, 3, 3, 3]);
  const o1 = sampleOptionsFromCard(cond, { guidance: 1, classLabels: labels, batch: 4, nfe: 3 });
  assert.equal(o1.guidance, undefined);
  assert.deepEqual(o1.cond?.classLabels, labels);
  const o2 = sampleOptionsFromCard(cond, { guidance: 2, classLabels: labels, batch: 4, nfe: 3 });
  assert.deepEqual(o2.guidance, { scale: 2, rescale: 0, nullLabel: 3 });
  assert.equal(sampleOptionsFromCard(cond, { guidance: 0.5, classLabels: labels, batch: 4 }).guidance?.scale, 0.5);
  // the default: guided at 2 with labels, plain without
  assert.equal(sampleOptionsFromCard(cond, { classLabels: labels, batch: 4 }).guidance?.scale, 2);
  assert.deepEqual(cardConditioning(cond, {}), { mode: 'unconditional', scale: 1 });

  // On a network: w = 0 makes 3 calls of batch 4, all null labels, and equals w = 2's ε̃ at w = 0 (ε_u).
  const m0 = recordingModel();
  const r0 = await sample({ ...o0, model: m0, seed: 1 });
  assert.deepEqual(
    m0.calls.map((c) => c.batch),
    [4, 4, 4],
  );
  assert.deepEqual(m0.calls[0]!.labels, [3, 3, 3, 3]);
  const m2 = recordingModel();
  await sample({ ...o2, model: m2, seed: 1 });
  assert.deepEqual(
    m2.calls.map((c) => c.batch),
    [8, 8, 8],
  );
  // CFG at scale 0 through the 2B batch gives the same samples as the 1B unconditional run
  const mg = recordingModel();
  const rg = await sample({ ...o2, guidance: { scale: 0, nullLabel: 3 }, model: mg, seed: 1 });
  let maxDiff = 0;
  for (let i = 0; i < r0.samples.length; i++) maxDiff = Math.max(maxDiff, Math.abs(r0.samples[i]! - rg.samples[i]!));
  assert.ok(maxDiff < 1e-6, `w=0 at B vs CFG(0) at 2B differ by ${maxDiff}`);
});

test('refusals name the fix: guidance on a label-free card, labels on it, CFG without labels or null label', () => {
  assert.throws(
    () => sampleOptionsFromCard(plain, { guidance: 2, batch: 2 }),
    (e: unknown) =>
      e instanceof SampleRequestError && e.field === 'guidance' && /needs a class-conditional model, but u is not one: use guidance 1/.test(e.message),
  );
  assert.throws(() => sampleOptionsFromCard(plain, { classLabels: [0, 1], batch: 2 }), /u is not class-conditional/);
  assert.throws(() => sampleOptionsFromCard(cond, { guidance: 3, batch: 2 }), /needs class labels/);
  const noNull = cardSamplingSetup(parseModelCard({ name: 'n', scheduler_config: SCHEDULER, sample_size: [1, 2, 2], num_classes: 3 }, 'cards/n.json'));
  assert.throws(() => sampleOptionsFromCard(noNull, { guidance: 2, classLabels: [0, 1], batch: 2 }), /cards\/n\.json has no null_label.*use guidance 1/);
  assert.throws(() => sampleOptionsFromCard(cond, { guidance: 2, classLabels: [0], batch: 2 }), /one class label per sample: 1 labels for 2 samples/);
  assert.throws(() => sampleOptionsFromCard(cond, { guidance: -1, batch: 2 }), /finite number ≥ 0/);
  // label-free card: w = 0 and w = 1 are both the plain model
  assert.equal(sampleOptionsFromCard(plain, { guidance: 0, batch: 2 }).cond, undefined);
});

test("settings: the card's solver and grid, the NFE default, spacing and solver options on top, PFDiff k_h text", () => {
  const o = sampleOptionsFromCard(cond, { batch: 1 });
  assert.equal(o.solver, 'ddim');
  assert.equal(o.nfe, DEFAULT_NFE);
  assert.equal(o.timesteps?.spacing, 'trailing');
  const withDefault = cardSamplingSetup(parseModelCard({ ...conditionalCard.raw, default_nfe: 7 }, 'x'));
  assert.equal(sampleOptionsFromCard(withDefault, { batch: 1 }).nfe, 7);
  const k = sampleOptionsFromCard(cond, {
    batch: 1,
    solver: 'dpmpp_2m',
    steps: 9,
    spacing: 'karras',
    solverOptions: { lowerOrderFinal: false },
    pfdiff: '3_2',
  });
  assert.equal(k.nfe, undefined);
  assert.equal(k.steps, 9);
  assert.equal(k.timesteps?.spacing, 'karras');
  assert.equal(k.timesteps?.family, undefined); // another solver: its own formula family
  assert.deepEqual(k.solverOptions, { lowerOrderFinal: false });
  assert.deepEqual(k.pfdiff, { k: 3, h: 2 });
  assert.throws(() => sampleOptionsFromCard(cond, { batch: 1, nfe: 3, steps: 3 }), /not both/);
});

test("a card's unknown default_solver is blamed on the card, with its file", () => {
  const bad = cardSamplingSetup(parseModelCard({ ...conditionalCard.raw, default_solver: 'warp9' }, 'models/mine.json'));
  assert.throws(
    () => solverSettingsFor(bad),
    /model card models\/mine\.json: field "default_solver" names no solver \(unknown solver "warp9".*\); fix the card, or choose a solver/,
  );
  assert.throws(() => sampleOptionsFromCard(bad, { batch: 1 }), /models\/mine\.json: field "default_solver"/);
  assert.equal(sampleOptionsFromCard(bad, { batch: 1, solver: 'euler' }).solver, 'euler'); // a chosen solver needs no default
  assert.throws(() => solverSettingsFor(cond, 'warp9'), /^Error: unknown solver "warp9"/);
});

test('parseKH: the six settings, three separators, errors listing the valid ones', () => {
  assert.deepEqual(parseKH('2_1'), { k: 2, h: 1 });
  assert.deepEqual(parseKH(' 3:3 '), { k: 3, h: 3 });
  assert.deepEqual(parseKH('1,1'), { k: 1, h: 1 });
  assert.equal(formatKH(parseKH('3,2')), '3_2');
  for (const bad of ['2_3', '4_1', '0_0', 'two', '21', '2_1_1'])
    assert.throws(() => parseKH(bad), /expected k_h with 1 ≤ h ≤ k ≤ 3 \(one of 1_1, 2_1, 2_2, 3_1, 3_2, 3_3\)/);
});

test("PFDiff on a card whose scheduler is the run's solver: the card's diffusers-mode options are not forced on it", () => {
  // SD 1.5's DDIM config loads { eta: 0, stepping: 'ratio' } (diffusers' t → t − T//N); PFDiff's
  // first-order variant cannot step that way and refuses a user's `stepping`, but the card's own
  // defaults are not the user's words: PFDiff then runs DDIM with its own options.
  const card = parseModelCard({
    name: 'sd-ddim',
    scheduler_config: {
      _class_name: 'DDIMScheduler',
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      steps_offset: 1,
      clip_sample: false,
      set_alpha_to_one: false,
    },
    sample_size: [4, 8, 8],
  });
  const setup = cardSamplingSetup(card);
  const plain = sampleOptionsFromCard(setup, { solver: 'ddim', nfe: 6, batch: 1 });
  assert.deepEqual(plain.solverOptions, { eta: 0, stepping: 'ratio' });
  const pf = sampleOptionsFromCard(setup, { solver: 'ddim', nfe: 6, pfdiff: '2_1', batch: 1 });
  assert.deepEqual(pf.solverOptions, {});
  assert.deepEqual(pf.pfdiff, { k: 2, h: 1 });
  assert.equal(planSample(pf).calls, 6);
  // a user's own option that PFDiff cannot honour is still refused
  assert.throws(
    () => planSample(sampleOptionsFromCard(setup, { solver: 'ddim', nfe: 6, pfdiff: '2_1', batch: 1, solverOptions: { stepping: 'ratio' } })),
    /stepping/,
  );
});

test('a sampler name as users type it resolves to the solver, its options and its grid; not with a solver', () => {
  const setup = cardSamplingSetup(parseModelCard({ name: 'c', scheduler_config: SCHEDULER, sample_size: [1, 2, 2] }));
  const karras = sampleOptionsFromCard(setup, { sampler: 'DPM++ 2M Karras', nfe: 8, batch: 1 });
  assert.equal(karras.solver, 'dpmpp_2m');
  assert.equal(karras.timesteps?.spacing, 'karras');
  assert.equal(planSample(karras).calls, 8);
  const eulerA = sampleOptionsFromCard(setup, { sampler: 'Euler a', nfe: 5, batch: 1 });
  assert.equal(eulerA.solver, 'euler_a');
  assert.throws(
    () => sampleOptionsFromCard(setup, { sampler: 'Euler a', solver: 'ddim', batch: 1 }),
    (e: unknown) => e instanceof SampleRequestError && e.field === 'sampler' && /not both/.test(e.message),
  );
  assert.throws(
    () => sampleOptionsFromCard(setup, { sampler: 'Warp 9', batch: 1 }),
    (e: unknown) => e instanceof SampleRequestError && e.field === 'sampler',
  );
});

test('a sampler name on a flow-matching card keeps the model σ grid unless it names a schedule', () => {
  const flowCard = parseModelCard(
    {
      name: 'f',
      scheduler_config: { _class_name: 'FlowMatchEulerDiscreteScheduler', num_train_timesteps: 1000, shift: 3.0 },
      sample_size: [1, 2, 2],
      prediction_type: 'flow',
    },
    'cards/f.json',
  );
  const flow = cardSamplingSetup(flowCard);
  const bySolver = sampleOptionsFromCard(flow, { solver: 'euler', batch: 1, steps: 6 });
  const byName = sampleOptionsFromCard(flow, { sampler: 'euler', batch: 1, steps: 6 });
  const own = planSample(bySolver).timesteps;
  assert.deepEqual(planSample(byName).timesteps, own);
  // the card's own FlowMatchEulerDiscreteScheduler grid: σ from 1 down, then the clean end
  assert.equal(own[0], 1);
  assert.equal(own[own.length - 1], -1);
  assert.equal(bySolver.timesteps?.spacing, 'flow_match');
  // a schedule word still picks its own grid: Karras σ needs finite ends, which a flow model does not have
  assert.throws(
    () => planSample(sampleOptionsFromCard(flow, { sampler: 'euler karras', batch: 1, steps: 6 })),
    /spacing "karras" spreads σ\/α between finite ends.*σ\/α = ∞ at t = 1.*pass sigmaMax/,
  );
});
