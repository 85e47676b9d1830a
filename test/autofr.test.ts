/**
 * Auto-FR search, its cost model, the policy objective, planned call counts, and the closed-form
 * identity "skip-only FRDiff on DDIM(η=0) = coarser DDIM".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intervalBudget, measureCallCost, policyCost, searchReusePolicy } from '../src/core/frdiff/autofr.js';
import { timeInterleaved, TIMING_WARMUP_ROUNDS, median } from '../src/core/timing.js';
import { uniformRowLabel } from '../src/cli/commands/autofr.js';
import { main } from '../src/cli/main.js';
import { bundledModelPath, cardPathFor } from '../src/node/load-model.js';
import { plannedCalls } from '../src/core/frdiff/planned-calls.js';
import { createPolicyObjective, fullComputeSamples } from '../src/core/frdiff/policy-objective.js';
import { countCalls, uniformPolicy, type ReusePolicy } from '../src/core/frdiff/reuse-policy.js';
import { withFeatureReuse, type FeatureReuseCapable } from '../src/core/frdiff/feature-reuse-model.js';
import type { DiffusionModel, ModelCall } from '../src/core/model.js';
import { gaussianMixtureModel, gaussianModel } from '../src/core/reference-models.js';
import { sample } from '../src/core/sample.js';
import { discreteSchedule, linspace } from '../src/core/schedule/discrete.js';

const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });

/** A network whose "reuse" call sees the current x but the keyframe's (stale) time — a feature-reuse stand-in with a real error. */
function staleTimeNet(inner: DiffusionModel): FeatureReuseCapable & { keyframes: number; reuses: number } {
  let tKey: ModelCall | null = null;
  const net = {
    predictionType: inner.predictionType,
    sampleShape: inner.sampleShape,
    keyframes: 0,
    reuses: 0,
    predict: (...a: Parameters<DiffusionModel['predict']>) => inner.predict(...a),
    async predictKeyframe(...a: Parameters<DiffusionModel['predict']>) {
      tKey = a[1];
      net.keyframes++;
      return inner.predict(...a);
    },
    async predictReuse(x: Parameters<DiffusionModel['predict']>[0], call: ModelCall) {
      if (tKey === null) throw new Error('no cache');
      net.reuses++;
      return inner.predict(x, { ...tKey, batch: call.batch });
    },
    clearCache() {
      tKey = null;
    },
  };
  return net;
}

const mixture = () =>
  gaussianMixtureModel({
    components: [
      { weight: 0.5, mean: [1, -0.5, 0.3, 0], std: 0.3 },
      { weight: 0.5, mean: [-1, 0.5, -0.2, 0.4], std: 0.2 },
    ],
  });

test('policyCost = (K·c_key + R·c_reuse)/N', () => {
  const p = uniformPolicy(50, 3); // 17 / 19 / 14
  assert.ok(Math.abs(policyCost(p, { keyframe: 1, reuse: 0.5 }) - (17 + 19 * 0.5) / 50) < 1e-15);
  assert.ok(Math.abs(policyCost(uniformPolicy(50, 3, null), { keyframe: 1.1, reuse: 0.2 }) - (17 * 1.1 + 33 * 0.2) / 50) < 1e-15);
});

test('plannedCalls counts the calls of DDIM, PFDiff and a singlestep solver', async () => {
  const model = gaussianModel({ schedule, sampleShape: [2] });
  assert.equal(await plannedCalls({ model, schedule, solver: 'ddim', steps: 50 }), 50);
  assert.equal(await plannedCalls({ model, schedule, solver: 'ddim', nfe: 10, pfdiff: { k: 2, h: 1 } }), 10);
  assert.equal(await plannedCalls({ model, schedule, solver: 'dpm_solver_2', nfe: 9 }), 9);
  assert.equal(await plannedCalls({ model, schedule, solver: 'heun', steps: 5 }), 9);
});

test('skip-only FRDiff on DDIM η=0 over 2N steps = DDIM over every other grid point (exact)', async () => {
  const gauss = gaussianModel({ schedule, mean: 0.3, std: 0.6, sampleShape: [6] });
  const net: FeatureReuseCapable = {
    predictionType: 'epsilon',
    sampleShape: [6],
    predict: gauss.predict,
    predictKeyframe: gauss.predict,
    predictReuse: () => Promise.reject(new Error('a skip-only policy must not make reuse calls')),
    clearCache() {},
  };
  const N = 10;
  const fine = linspace(999, 0, 2 * N).map((t) => Math.round(t));
  const coarse = fine.filter((_, i) => i % 2 === 0);
  // bias 2 puts λ(r) = clip((30(r − 2) + 2)/4, 0, 1) = 0 for every r < 1: all non-keyframes are skipped.
  const policy: ReusePolicy = { ...uniformPolicy(2 * N, 2, { temperature: 30, bias: 2 }), points: 'frdiff' };
  assert.deepEqual(countCalls(policy), { keyframe: N, reuse: 0, skip: N });
  const fr = withFeatureReuse(net, { policy });
  fr.reset();
  const common = { schedule, solver: 'ddim', batch: 3, seed: 5, precision: 'float64' as const };
  const a = await sample({ ...common, model: fr, timesteps: { timesteps: fine } });
  const b = await sample({ ...common, model: gauss, timesteps: { timesteps: coarse } });
  assert.equal(a.calls, 2 * N);
  assert.equal(fr.stats.keyframe, N);
  assert.equal(fr.stats.skip, N);
  let m = 0;
  for (let i = 0; i < a.samples.length; i++) m = Math.max(m, Math.abs(a.samples[i]! - b.samples[i]!));
  assert.ok(m < 1e-12, `max |Δ| = ${m}`);
  // …and it is not the fine run: the identity is not trivially true.
  const c = await sample({ ...common, model: gauss, timesteps: { timesteps: fine } });
  let d = 0;
  for (let i = 0; i < a.samples.length; i++) d = Math.max(d, Math.abs(a.samples[i]! - c.samples[i]!));
  assert.ok(d > 1e-4, `fine and coarse DDIM should differ, max |Δ| = ${d}`);
});

test('policy objective: all keyframes → MSE exactly 0; feature reuse → MSE > 0', async () => {
  const net = staleTimeNet(mixture());
  const run = { schedule, solver: 'ddim', steps: 20, batch: 4, seed: 3, precision: 'float64' as const };
  const reference = await fullComputeSamples(net, run);
  const objective = createPolicyObjective({ nets: new Map([['frdiff', net]]), run, reference });
  assert.equal((await objective(uniformPolicy(20, 1))).mse, 0);
  const e = await objective(uniformPolicy(20, 3, null));
  assert.ok(e.mse > 0);
  assert.deepEqual([e.stats.keyframe, e.stats.reuse, e.stats.skip], [7, 13, 0]);
  await assert.rejects(objective({ ...uniformPolicy(20, 2), points: 'residual' }), /no network for reuse points "residual"/);
});

test('Auto-FR finds a policy within budget, no worse than uniform-3 at the same cost, with memoised evaluations', async () => {
  const calls = 24;
  const netA = staleTimeNet(mixture());
  const netB = staleTimeNet(mixture());
  const run = { schedule, solver: 'ddim', steps: calls, batch: 4, seed: 11, precision: 'float64' as const };
  const reference = await fullComputeSamples(netA, run);
  const objective = createPolicyObjective({
    nets: new Map([
      ['frdiff', netA],
      ['residual', netB],
    ]),
    run,
    reference,
  });
  const points = [
    { points: 'frdiff', keyframe: 1, reuse: 0.5 },
    { points: 'residual', keyframe: 1.05, reuse: 0.3 },
  ];
  const uniform3 = uniformPolicy(calls, 3, { temperature: 30, bias: 0.5 }, 'frdiff');
  const budget = policyCost(uniform3, points[0]!);
  const seen = new Set<string>();
  let evaluations = 0;
  const result = await searchReusePolicy({
    calls,
    budget,
    points,
    maxEvaluations: 60,
    evaluate: async (p) => {
      evaluations++;
      seen.add(JSON.stringify([p.points, p.mixing, p.keyframes]));
      return (await objective(p)).mse;
    },
  });
  const uniformMse = (await objective(uniform3)).mse;
  assert.ok(result.cost <= budget + 1e-12, `cost ${result.cost} > budget ${budget}`);
  assert.ok(result.objective <= uniformMse, `Auto-FR ${result.objective} vs uniform-3 ${uniformMse}`);
  assert.ok(result.objective < uniformMse, 'the local search should improve on the uniform start on this problem');
  assert.equal(evaluations, seen.size, 'each distinct policy is evaluated once');
  assert.equal(result.evaluations, evaluations);
  assert.equal(result.policy.keyframes[0], 0);
  // the reported objective is reproducible
  assert.equal((await objective(result.policy)).mse, result.objective);
  assert.ok(result.log.some((e) => e.accepted));
});

test('Auto-FR: an impossible budget and bad options give errors that name the fix', async () => {
  const points = [{ points: 'frdiff', keyframe: 1, reuse: 0.9 }];
  await assert.rejects(
    searchReusePolicy({ calls: 10, budget: 0.05, points, biases: [null], evaluate: async () => 0 }),
    /cheapest \(one keyframe\) costs 0\.910: raise the budget/,
  );
  await assert.rejects(searchReusePolicy({ calls: 10, budget: 1.5, points, evaluate: async () => 0 }), /budget is a cost fraction in \(0, 1\]/);
  await assert.rejects(searchReusePolicy({ calls: 10, budget: 0.5, points: [], evaluate: async () => 0 }), /at least one reuse-points option/);
});

test('--budget interval:1 is exactly 1 even when a keyframe measured dearer than a full call; interval:M is capped at 1', async () => {
  const noisy = { keyframe: 1.574, reuse: 0.4 }; // a keyframe "costing" 1.574 full calls is timing noise
  assert.equal(intervalBudget(20, 1, noisy), 1);
  assert.equal(intervalBudget(20, 2, { keyframe: 2.5, reuse: 0.4 }), 1); // (10·2.5 + 10·0.4)/20 = 1.45 → 1
  assert.ok(Math.abs(intervalBudget(50, 3, { keyframe: 1, reuse: 0.5 }) - (17 + 19 * 0.5) / 50) < 1e-15);
  // the search accepts the budget and finds a policy (interval 1 does not fit at 1.574, interval 2 does)
  const r = await searchReusePolicy({
    calls: 20,
    budget: intervalBudget(20, 1, noisy),
    points: [{ points: 'frdiff', ...noisy }],
    biases: [null],
    maxEvaluations: 3,
    evaluate: async (p) => 1 / p.keyframes.length,
  });
  assert.ok(r.cost <= 1);
  assert.equal(r.bestUniform.interval, 2);
});

test('the Auto-FR report row of uniform interval 3 names the reuse points it ran', () => {
  assert.equal(uniformRowLabel(uniformPolicy(50, 3, { temperature: 30, bias: 0.5 }, 'deepcache')), 'uniform-3 (b=0.5, deepcache)');
  assert.equal(uniformRowLabel(uniformPolicy(50, 3, null, ['/a', '/b'])), 'uniform-3 (no mixing, /a,/b)');
});

test('one timing harness: warm-up rounds untimed, interleaved rounds, medians; measureCallCost uses it', async () => {
  let clock = 0;
  const order: string[] = [];
  const task = (name: string, ms: number[]) => {
    let i = 0;
    return async () => {
      order.push(name);
      clock += ms[i++]!;
    };
  };
  // a: 100, 100 (warm-up), then 3, 1, 2 → median 2; b: 50, 50, then 4, 8, 6, … → median 6
  const t = await timeInterleaved([task('a', [100, 100, 3, 1, 2]), task('b', [50, 50, 4, 8, 6])], 3, () => clock);
  assert.equal(TIMING_WARMUP_ROUNDS, 2);
  assert.deepEqual(t.ms, [
    [3, 1, 2],
    [4, 8, 6],
  ]);
  assert.deepEqual(t.medianMs, [2, 6]);
  assert.deepEqual(order.slice(0, 4), ['a', 'b', 'a', 'b']);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const net = staleTimeNet(gaussianModel({ schedule, sampleShape: [3] }));
  const m = await measureCallCost(net, { batch: 2, schedule, t: 500, repeats: 4, plain: net });
  assert.equal(net.keyframes, TIMING_WARMUP_ROUNDS + 4);
  assert.equal(net.reuses, TIMING_WARMUP_ROUNDS + 4);
  assert.deepEqual([m.repeats, m.warmup, m.batch], [4, 2, 2]);
  assert.ok(m.fullMs! > 0 && m.keyframeMs > 0 && m.reuseMs > 0);
  assert.ok(Math.abs(m.keyframeFraction - m.keyframeMs / m.fullMs!) < 1e-12);
});

test('autofr refuses guidance on a model card without classes, as sample does, before any work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rediffuse-autofr-'));
  try {
    const card = JSON.parse(readFileSync(cardPathFor(bundledModelPath()), 'utf8')) as Record<string, unknown>;
    delete card['num_classes'];
    delete card['null_label'];
    delete card['class_names'];
    const cardPath = join(dir, 'uncond.json');
    writeFileSync(cardPath, JSON.stringify(card));
    let err = '';
    const out = join(dir, 'policy.json');
    const started = performance.now();
    const code = await main(['node', 'rediffuse', 'autofr', '--card', cardPath, '--steps', '4', '--out', out, '--quiet'], {
      out: () => {},
      err: (s) => void (err += s),
    });
    assert.equal(code, 1, err);
    assert.match(err, /classifier-free guidance needs a class-conditional model, but fashion-unet is not one: use guidance 1 \(or 0\) \(--guidance\)/);
    assert.equal(existsSync(out), false);
    assert.ok(performance.now() - started < 5000, 'refused before the graphs were cut');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
