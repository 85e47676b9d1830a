/**
 * Adaptive recompute (src/core/frdiff/adaptive-policy.ts, src/model/onnx-graph/probe-graph.ts): the
 * decision rule on closed-form signals (plain FBCache and accumulated TeaCache changes), the probe
 * graph's signal against the same tensor of the full graph, the call accounting of adaptive runs on
 * the bundled Fashion U-Net (δ = 0 → every call full and the plain model's samples bit for bit;
 * δ = ∞ → only the warm-up full; full + reuse = calls = probes), and a comparison with the uniform
 * and the Auto-FR policies at the same number of full calls (trajectory error vs the full model run).
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import { RecomputeDecider, relativeL1Change, validateAdaptiveRecompute, withAdaptiveReuse } from '../src/core/frdiff/adaptive-policy.js';
import { searchReusePolicy } from '../src/core/frdiff/autofr.js';
import { withFeatureReuse } from '../src/core/frdiff/feature-reuse-model.js';
import { layoutReusePolicy, type ReusePolicy } from '../src/core/frdiff/reuse-policy.js';
import { sample, type SampleOptions } from '../src/core/sample.js';
import { modelCallAt } from '../src/core/model.js';
import { analyzeOnnxModel, buildFeatureReuseGraphs } from '../src/model/onnx-graph/feature-reuse-graphs.js';
import { buildProbeGraph, firstBlockSignal } from '../src/model/onnx-graph/probe-graph.js';
import {
  cardSamplingSetup,
  FeatureReuseOnnxModel,
  featureReuseFor,
  OnnxDiffusionModel,
  parseModelCard,
  sampleOptionsFromCard,
} from '../src/model/index.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { tinyUnetOnnx } from './helpers/tiny-fr-onnx.js';
import { cellKey } from '../src/bench/cell-key.js';
import { cellLabel, parseFrEntry, type CellSpec } from '../src/bench/grid.js';
import { reuseChoiceOf } from '../src/bench/runner.js';
import { checkFeatureReuseFlags, reuseChoiceFromFlags } from '../src/cli/commands/feature-reuse-options.js';
import { cacheConfigChoice, enumerateCacheConfigs } from '../src/core/frdiff/cache-config.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;

describe('the recompute rule', () => {
  const sig = (v: number) => Float32Array.of(v, -v, 2 * v);
  it('relative L1 change: ‖a − b‖₁/‖b‖₁, with 0/0 = 0 and x/0 = ∞', () => {
    assert.equal(relativeL1Change(Float32Array.of(1, 2), Float32Array.of(2, 2)), 0.25);
    assert.equal(relativeL1Change([0, 0], [0, 0]), 0);
    assert.equal(relativeL1Change([1, 0], [0, 0]), Infinity);
  });
  it('plain (FBCache): the change against the last full call’s signal reaches δ', () => {
    const d = new RecomputeDecider({ threshold: 0.25 });
    // signals 1, 1.1, 1.2, 1.3 (full: change 0.3 ≥ 0.25), 1.4 (vs 1.3: 0.077), 1.7 (0.31 full)
    const full = [1, 1.1, 1.2, 1.3, 1.4, 1.7].map((v) => d.decide(sig(v)));
    assert.deepEqual(full, [true, false, false, true, false, true]);
    assert.ok(Math.abs(d.changes[2]! - 0.2) < 1e-6 && Math.abs(d.changes[4]! - 0.1 / 1.3) < 1e-6);
  });
  it('accumulated (TeaCache): the sum of per-call changes reaches δ, then restarts', () => {
    const d = new RecomputeDecider({ threshold: 0.25, accumulate: 'accumulated' });
    // per-call changes 0.1, 0.0909, 0.0833 → sums 0.1, 0.191, 0.274 (full); then 0.1/1.3, …
    const full = [1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7].map((v) => d.decide(sig(v)));
    assert.deepEqual(full, [true, false, false, true, false, false, false, true]);
    assert.ok(Math.abs(d.changes[2]! - (0.1 + 0.1 / 1.1)) < 1e-6);
  });
  it('δ = 0 recomputes every call, δ = ∞ only the warm-up; warm-up and a forced call are full', () => {
    const zero = new RecomputeDecider({ threshold: 0 });
    assert.deepEqual(
      [1, 1, 1].map((v) => zero.decide(sig(v))),
      [true, true, true],
    );
    const inf = new RecomputeDecider({ threshold: Infinity, warmup: 2 });
    assert.deepEqual(
      [1, 5, 50, 0, 9].map((v) => inf.decide(sig(v))),
      [true, true, false, false, false],
    );
    assert.equal(inf.decide(sig(1), true), true);
    inf.reset();
    assert.equal(inf.decide(sig(3)), true);
  });
  it('maxInterval caps the calls between full calls', () => {
    const d = new RecomputeDecider({ threshold: Infinity, maxInterval: 3 });
    assert.deepEqual(
      [1, 1, 1, 1, 1, 1, 1].map((v) => d.decide(sig(v))),
      [true, false, false, true, false, false, true],
    );
  });
  it('bad settings are refused with the field named', () => {
    assert.throws(() => validateAdaptiveRecompute({ threshold: -1 }), /"threshold" δ must be a number ≥ 0/);
    assert.throws(() => validateAdaptiveRecompute({ threshold: 0.1, accumulate: 'teacache' }), /"accumulate" must be "plain"/);
    assert.throws(() => validateAdaptiveRecompute({ threshold: 0.1, warmup: 0 }), /"warmup" must be an integer ≥ 1/);
    assert.throws(() => layoutReusePolicy({ keyframes: { adaptive: { threshold: 0.1 } }, mixing: { bias: 0.5 } }, 10), /no score mixing/);
    assert.deepEqual(layoutReusePolicy({ keyframes: { adaptive: { threshold: 0.1, warmup: 2 } } }, 10).keyframes, [0, 1]);
  });
});

describe('descriptions: CLI flags, bench cells, cache configs', () => {
  it('the CLI flags give the choice, and refuse combinations that would be ignored or contradict', () => {
    assert.deepEqual(reuseChoiceFromFlags({ frAdaptive: 0.2, frAdaptiveMode: 'accumulated', frForecast: 1, frForecastTime: 'lambda' }), {
      keyframes: { adaptive: { threshold: 0.2, accumulate: 'accumulated' } },
      forecast: { order: 1, time: 'lambda' },
    });
    assert.deepEqual(reuseChoiceFromFlags({ frInterval: 3, frForecast: 2, frForecastPoints: { 'gated-attention': 1 } }), {
      keyframes: { interval: 3 },
      forecast: { order: 2, points: { 'gated-attention': 1 } },
    });
    assert.throws(() => checkFeatureReuseFlags({ frAdaptive: 0.1, frPolicy: 'p.json' }), /--fr-adaptive decides the keyframes/);
    // with an interval, adaptive recompute also recomputes at least every M calls
    assert.deepEqual(reuseChoiceFromFlags({ frAdaptive: 0.3, frInterval: 4 }).keyframes, { adaptive: { threshold: 0.3, maxInterval: 4 } });
    assert.throws(() => checkFeatureReuseFlags({ frAdaptive: 0.1, mixBias: 0.3 }), /no score mixing.*--mix-bias/);
    assert.throws(() => checkFeatureReuseFlags({ frForecastTime: 't', frInterval: 2 }), /add --fr-forecast K/);
    assert.throws(() => checkFeatureReuseFlags({ frProbe: 'x', frInterval: 2 }), /adaptive recompute only/);
    assert.throws(() => checkFeatureReuseFlags({ frForecast: 1 }), /--fr-forecast applies to feature reuse only/);
  });

  it('bench cells: forecast and adaptive entries parse, label and key; order 0 keeps the key of a plain FR cell', () => {
    const ctx = {
      modelHash: 'm',
      seeds: { seed: 0, count: 4, batch: 4 },
      reference: { solver: 'ddim', nfe: 10 },
      metrics: { fd: false, accuracy: false, kid: false, trajectory: false, best: 'fd' as const },
    };
    const cell = (fr: unknown): CellSpec => ({ solver: 'dpmpp_2m', nfe: 20, pfdiff: null, guidance: 2, fr: parseFrEntry(fr) });
    assert.equal(cellKey(cell({ interval: 2, forecast: 0 }), ctx), cellKey(cell({ interval: 2 }), ctx));
    // the key recipe is unchanged for cells without the new fields (a key computed before they existed)
    assert.equal(
      cellKey(cell({ interval: 2 }), ctx),
      cellKey({ solver: 'dpmpp_2m', nfe: 20, pfdiff: null, guidance: 2, fr: { kind: 'interval', interval: 2, mixing: null, points: 'frdiff' } }, ctx),
    );
    assert.notEqual(cellKey(cell({ interval: 2, forecast: 1 }), ctx), cellKey(cell({ interval: 2 }), ctx));
    assert.notEqual(cellKey(cell({ interval: 2, forecast: 1 }), ctx), cellKey(cell({ interval: 2, forecast: { order: 1, time: 'lambda' } }), ctx));
    assert.deepEqual(parseFrEntry({ adaptive: 0.1, forecast: 1 }), { kind: 'adaptive', threshold: 0.1, points: 'frdiff', forecast: { order: 1 } });
    assert.equal(cellLabel(cell({ interval: 3, forecast: { order: 2, time: 'lambda' } })), 'dpmpp_2m + FR/3 fc2λ @20 g2');
    assert.equal(cellLabel(cell({ adaptive: 0.2, accumulate: 'accumulated' })), 'dpmpp_2m + FR adaptive δ=0.2 acc @20 g2');
    assert.deepEqual(reuseChoiceOf(parseFrEntry({ adaptive: 0.2, warmup: 2, probe: 'sig' })), {
      keyframes: { adaptive: { threshold: 0.2, warmup: 2 } },
      points: 'frdiff',
      probe: 'sig',
    });
    assert.throws(() => parseFrEntry({ adaptive: 0.1, interval: 2 }, 'fr[3]'), /fr\[3\]: adaptive recompute decides the keyframes/);
    assert.throws(() => parseFrEntry({ adaptive: -1 }, 'fr[3]'), /fr\[3\]\.adaptive: must be a finite threshold/);
    assert.throws(() => parseFrEntry({ interval: 2, forecast: 3 }, 'fr[1]'), /fr\[1\]\.forecast: .*"order" must be 0, 1 or 2/);
  });

  it('cache configs: a search space enumerates typed configs, each a valid reuse choice', () => {
    const configs = enumerateCacheConfigs({ intervals: [2, 3], thresholds: [0.1], forecastOrders: [0, 1], forecastTimes: ['t', 'lambda'] });
    // (2 intervals + 1 threshold) × (order 0 + order 1 in two times)
    assert.equal(configs.length, 9);
    assert.deepEqual(configs[0], { method: 'uniform', interval: 2, mixing: null, points: 'frdiff' });
    assert.deepEqual(configs[8], {
      method: 'adaptive',
      adaptive: { threshold: 0.1, accumulate: 'plain' },
      points: 'frdiff',
      forecast: { order: 1, time: 'lambda' },
    });
    for (const c of configs) assert.ok(layoutReusePolicy(cacheConfigChoice(c), 20).calls === 20);
    assert.throws(() => cacheConfigChoice({ method: 'uniform', interval: 0, mixing: null, points: 'frdiff' }), /interval must be an integer ≥ 1/);
  });
});

describe('the probe graph', () => {
  it('its signal equals the same tensor taken from the full graph (tiny U-Net and the bundled Fashion U-Net), at a fraction of the MACs', async () => {
    const subjects: [string, Uint8Array, number[]][] = [['tiny', tinyUnetOnnx(), [1, 4, 4]]];
    if (existsSync('models/fashion-unet.onnx')) subjects.push(['fashion-unet', new Uint8Array(readFileSync('models/fashion-unet.onnx')), [1, 28, 28]]);
    if (existsSync('models/fashion-dit.onnx')) subjects.push(['fashion-dit', new Uint8Array(readFileSync('models/fashion-dit.onnx')), [1, 28, 28]]);
    for (const [id, bytes, shape] of subjects) {
      const analyzed = await analyzeOnnxModel(bytes, { ort });
      const signal = firstBlockSignal(analyzed);
      const probe = buildProbeGraph(analyzed);
      assert.equal(probe.signal, signal);
      // measured: tiny 55% (one conv block of two), Fashion U-Net 7.7%, Fashion DiT 6.5%
      assert.ok(probe.macsRatio > 0 && probe.macsRatio < (id === 'tiny' ? 0.6 : 0.1), `${id}: probe MACs ratio ${probe.macsRatio}`);
      console.log(`# ${id}: probe signal ${signal}, ${probe.nodeCount} nodes, ${(100 * probe.macsRatio).toFixed(1)}% of the full model's MACs`);
      const full = await buildFeatureReuseGraphs(analyzed, [signal], { ort });
      const [ps, ks] = await Promise.all([ort.InferenceSession.create(probe.bytes), ort.InferenceSession.create(full.keyframe)]);
      const d = shape.reduce((a, b) => a * b, 1);
      // feeds by the declared element type of each runtime input (1 = float, 7 = int64)
      const feeds: Record<string, InstanceType<OrtModuleLike['Tensor']>> = {};
      for (const input of analyzed.model.graph!.input ?? []) {
        const name = input.name ?? '';
        if (analyzed.index.initializerNames.has(name)) continue;
        const elem = input.type?.tensorType?.elemType;
        const rank = input.type?.tensorType?.shape?.dim?.length ?? 1;
        if (rank > 1)
          feeds[name] = new ort.Tensor(
            'float32',
            Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(0.1 * i)),
            [2, ...shape],
          );
        else if (elem === 7) feeds[name] = new ort.Tensor('int64', BigInt64Array.of(/time/.test(name) ? 400n : 1n, /time/.test(name) ? 400n : 3n), [2]);
        else feeds[name] = new ort.Tensor('float32', Float32Array.of(400, 400), [2]);
      }
      const a = (await ps.run(feeds))[signal]!.data as Float32Array;
      const b = (await ks.run(feeds))[signal]!.data as Float32Array;
      assert.equal(a.length, b.length);
      assert.equal(maxAbsDiff(a, b), 0, `${id}: probe signal vs full graph`);
    }
  });
  it('refuses a tensor the graph does not compute', async () => {
    const analyzed = await analyzeOnnxModel(tinyUnetOnnx(), { ort });
    assert.throws(() => buildProbeGraph(analyzed, 'no_such_tensor'), /computes no tensor "no_such_tensor"/);
  });
});

const UNET = 'models/fashion-unet.onnx';
const CARD = 'models/fashion-unet.json';
describe('adaptive recompute on the bundled Fashion U-Net', { skip: existsSync(UNET) && existsSync(CARD) ? false : `${UNET} is not there` }, () => {
  let plain: OnnxDiffusionModel;
  let net: FeatureReuseOnnxModel;
  let card: ReturnType<typeof parseModelCard>;
  const runOf = (seed: number, batch = 4): Omit<SampleOptions, 'model'> =>
    sampleOptionsFromCard(cardSamplingSetup(card), {
      solver: 'dpmpp_2m',
      steps: 20,
      batch,
      seed,
      classLabels: Array.from({ length: batch }, (_, i) => (3 * i + seed) % 10),
      guidance: 2,
    });
  before(async () => {
    card = parseModelCard(JSON.parse(readFileSync(CARD, 'utf8')));
    const bytes = new Uint8Array(readFileSync(UNET));
    plain = await OnnxDiffusionModel.create({ ort, model: bytes, card });
    net = await FeatureReuseOnnxModel.create({ ort, model: bytes, card, points: 'frdiff', probe: true });
  });
  const mse = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
    return s / a.length;
  };

  it('δ = 0: every call full, the plain model’s samples bit for bit; δ = ∞: only the warm-up full; calls by kind add up', async () => {
    const run = runOf(1);
    const ref = await sample({ ...run, model: plain });
    const all = withAdaptiveReuse(net, { adaptive: { threshold: 0 } });
    all.reset();
    const a = await sample({ ...run, model: all });
    assert.equal(maxAbsDiff(a.samples, ref.samples), 0);
    assert.equal(all.stats.keyframe, 20);
    assert.equal(all.stats.reuse, 0);
    assert.equal(all.stats.probe, 20);
    net.resetStats();
    const none = withAdaptiveReuse(net, { adaptive: { threshold: Infinity, warmup: 2 } });
    none.reset();
    await sample({ ...run, model: none });
    assert.deepEqual(none.stats.keyframes, [0, 1]);
    assert.equal(none.stats.reuse, 18);
    assert.equal(none.stats.probe, 20);
    assert.equal(net.stats.probe.calls, 20);
    assert.equal(net.stats.keyframe.calls + net.stats.reuse.calls, 20);
    // a middle threshold: full + reuse = calls, probes = calls, the full calls listed
    const mid = await featureReuseFor(net, run, { keyframes: { adaptive: { threshold: 0.1 } } });
    await sample({ ...run, model: mid.model });
    const s = mid.model.stats as typeof none.stats;
    assert.equal(s.keyframe + s.reuse, 20);
    assert.equal(s.probe, 20);
    assert.equal(s.skip, 0);
    assert.equal(s.keyframes.length, s.keyframe);
    assert.ok(s.keyframe > 1 && s.keyframe < 20, `δ = 0.1: ${s.keyframe} full calls`);
    assert.deepEqual(mid.policy.keyframes, [0]);
  });

  it('against the uniform and the Auto-FR policies at the same number of full calls (trajectory MSE vs the full model, held-out seeds)', async () => {
    const held = runOf(11, 8);
    const full = (await sample({ ...held, model: plain })).samples;
    const calib = runOf(2, 4);
    const calibFull = (await sample({ ...calib, model: plain })).samples;
    const rows: string[] = [];
    let lateShare = 1;
    for (const [threshold, maxInterval] of [
      [0.15, undefined],
      [0.3, undefined],
      [0.3, 4],
    ] as const) {
      const ad = withAdaptiveReuse(net, { adaptive: { threshold, ...(maxInterval ? { maxInterval } : {}) } });
      ad.reset();
      const errAd = mse((await sample({ ...held, model: ad })).samples, full);
      const F = ad.stats.keyframe;
      // uniform at F full calls: keyframes spread evenly, round(j·N/F)
      const kf = [...new Set(Array.from({ length: F }, (_, j) => Math.round((j * 20) / F)))];
      const uni: ReusePolicy = { format: 'rediffuse-reuse-policy/1', calls: 20, keyframes: kf, mixing: null, points: 'frdiff' };
      const errUni = await errorOf(uni, held, full);
      // Auto-FR under the same cost (F keyframes, the rest reuse), no mixing, searched on another batch
      const reuseCost = 0.5;
      const budget = (F + (20 - F) * reuseCost) / 20 + 1e-9;
      const found = await searchReusePolicy({
        calls: 20,
        budget,
        points: [{ points: 'frdiff', keyframe: 1, reuse: reuseCost }],
        biases: [null],
        maxEvaluations: 12,
        evaluate: async (p) => mse(await samplesOf(p, calib), calibFull),
      });
      const errAuto = await errorOf(found.policy, held, full);
      rows.push(
        `δ=${threshold}${maxInterval ? ` maxInterval ${maxInterval}` : ''}: ${F} full, ${ad.stats.reuse} reuse, ${ad.stats.probe} probes — adaptive ${errAd.toExponential(2)}, uniform ${errUni.toExponential(2)} (${kf.length} full), Auto-FR ${errAuto.toExponential(2)} (${found.policy.keyframes.length} full)`,
      );
      assert.ok(kf.length === F && found.policy.keyframes.length <= F);
      assert.ok([errAd, errUni, errAuto].every((e) => Number.isFinite(e) && e > 0));
      if (!maxInterval) lateShare = Math.min(lateShare, ad.stats.keyframes.filter((k) => k >= 12).length / F);
      else assert.ok(ad.stats.keyframes.every((k, j) => j === 0 || k - ad.stats.keyframes[j - 1]! <= maxInterval));
    }
    for (const r of rows) console.log(`# ${r}`);
    // Measured (bench/forecast.md): on this U-Net the first block's residual moves 1.5–13% per call
    // over the first 60% of the run, so the FBCache rule places most full calls in the last 40% and
    // reuses for ~10 calls in a row early: at equal full calls it is ~2.6–5× worse than uniform here.
    // What is robust is where the rule puts its full calls, asserted here; the errors are reported.
    assert.ok(lateShare > 0.5, `share of full calls in the last 40% of the run: ${lateShare}`);
  });

  async function samplesOf(policy: ReusePolicy, run: Omit<SampleOptions, 'model'>) {
    net.setForecast(undefined);
    const m = withFeatureReuse(net, { policy });
    m.reset();
    return (await sample({ ...run, model: m })).samples;
  }
  async function errorOf(policy: ReusePolicy, run: Omit<SampleOptions, 'model'>, full: ArrayLike<number>) {
    return mse(await samplesOf(policy, run), full);
  }
  void modelCallAt;
});
