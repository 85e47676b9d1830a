/**
 * Feature forecasting (src/core/frdiff/feature-forecast.ts): the Newton forecast against closed
 * forms on non-uniform knots (exact for polynomials of degree ≤ k, the leading error term of degree
 * k + 1, the error order 2^{k+1} under halving), order 0 as a bit-exact copy, the clear errors; and
 * on the bundled Fashion U-Net and DiT, forecasting reuse calls: keyframe calls equal the full model
 * bit for bit, order 0 equals FRDiff bit for bit, and orders 1 and 2 are closer to the full model's
 * output than order 0 along the full model's own DPM-Solver++ 2M trajectory (the regime measured in
 * bench/forecast.md, where features are smooth in t).
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import {
  forecastFeature,
  forecastOrderFor,
  forecastTimeOf,
  forecastWeights,
  maxForecastOrder,
  validateForecastConfig,
  type ForecastOrder,
} from '../src/core/frdiff/feature-forecast.js';
import type { ModelCall } from '../src/core/model.js';
import { sample } from '../src/core/sample.js';
import {
  cardSamplingSetup,
  FeatureReuseOnnxModel,
  OnnxDiffusionModel,
  parseModelCard,
  sampleOptionsFromCard,
  featureReuseFor,
} from '../src/model/index.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;

/** Σ_j w_j f(τ_j) in float64: the forecast of a scalar function. */
const forecastScalar = (f: (x: number) => number, knots: number[], at: number) => {
  const w = forecastWeights(knots, at);
  return knots.reduce((s, k, j) => s + w[j]! * f(k), 0);
};

describe('Newton forecast arithmetic', () => {
  const knots3 = [0.2, 0.55, 1.3]; // non-uniform: spacings 0.35 and 0.75
  it('order k is exact for polynomials of degree ≤ k on non-uniform knots (float64 weights)', () => {
    const polys: [number, (x: number) => number][] = [
      [0, () => 2.5],
      [1, (x) => 1.5 - 3 * x],
      [2, (x) => 0.7 + 2 * x - 4 * x * x],
    ];
    for (const [deg, f] of polys) {
      for (let k = deg; k <= 2; k++) {
        const knots = knots3.slice(2 - k);
        for (const at of [1.9, -0.4, 0.9]) assert.ok(Math.abs(forecastScalar(f, knots, at) - f(at)) < 1e-12, `degree ${deg}, order ${k}, at ${at}`);
      }
    }
  });

  it('the error of order k on τ^{k+1} is Π_m (τ − τ_m) (the closed form of the remainder)', () => {
    for (let k = 0; k <= 2; k++) {
      const knots = knots3.slice(2 - k);
      const at = 1.75;
      const err = at ** (k + 1) - forecastScalar((x) => x ** (k + 1), knots, at);
      const closed = knots.reduce((p, m) => p * (at - m), 1);
      assert.ok(Math.abs(err - closed) < 1e-12, `order ${k}: ${err} vs ${closed}`);
    }
  });

  it('weights sum to 1 and do not depend on the knots’ order', () => {
    const w = forecastWeights([0.3, 1.1, 0.7], 1.6);
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    const v = forecastWeights([1.1, 0.7, 0.3], 1.6);
    assert.ok(Math.abs(w[0]! - v[2]!) < 1e-12 && Math.abs(w[1]! - v[0]!) < 1e-12 && Math.abs(w[2]! - v[1]!) < 1e-12);
  });

  it('halving the keyframe spacing cuts the error of order k by about 2^{k+1} (smooth features, non-uniform spacing)', () => {
    const f = (x: number) => Math.sin(3 * x) + 0.5 * Math.exp(-x);
    const ratios: number[] = [];
    for (let k = 0; k <= 2; k++) {
      const errs = [0.02, 0.01, 0.005].map((h) => {
        const offsets = [0, 0.6, 1.5].slice(0, k + 1); // uneven gaps 0.6h, 0.9h
        const knots = offsets.map((o) => 0.4 + o * h);
        const at = 0.4 + (offsets[k]! + 0.8) * h;
        return Math.abs(forecastScalar(f, knots, at) - f(at));
      });
      const r1 = errs[0]! / errs[1]!;
      const r2 = errs[1]! / errs[2]!;
      ratios.push(r2);
      const expect = 2 ** (k + 1);
      assert.ok(r2 > expect * 0.8 && r2 < expect * 1.25, `order ${k}: ratio ${r2.toFixed(2)} (and ${r1.toFixed(2)}) vs ${expect}`);
    }
    assert.ok(ratios[0]! < ratios[1]! && ratios[1]! < ratios[2]!);
  });

  it('forecastFeature on Float32Arrays: order 0 copies bit for bit; orders 1 and 2 reproduce a quadratic feature to float32 rounding', () => {
    const n = 1000;
    const coef = Array.from({ length: 3 }, (_, c) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + c) * (c + 1)));
    const feat = (tau: number) => Float32Array.from({ length: n }, (_, i) => coef[0]![i]! + coef[1]![i]! * tau + coef[2]![i]! * tau * tau);
    const knots = [-0.3, 0.05, 0.6];
    const values = knots.map(feat);
    const stale = forecastFeature([values[2]!], [knots[2]!], 0.9);
    assert.equal(maxAbsDiff(stale, values[2]!), 0);
    assert.notEqual(stale, values[2]);
    const want = feat(0.9);
    const q = forecastFeature(values, knots, 0.9);
    assert.ok(maxAbsDiff(q, want) < 2e-5, `order 2: ${maxAbsDiff(q, want)}`);
    const lin = (tau: number) => Float32Array.from({ length: n }, (_, i) => coef[0]![i]! + coef[1]![i]! * tau);
    const l = forecastFeature([lin(knots[1]!), lin(knots[2]!)], knots.slice(1), 0.9);
    assert.ok(maxAbsDiff(l, lin(0.9)) < 1e-5, `order 1: ${maxAbsDiff(l, lin(0.9))}`);
    // an order-1 forecast of the quadratic misses by c2·(τ − τ1)(τ − τ2)
    const miss = forecastFeature(values.slice(1), knots.slice(1), 0.9);
    const i = 17;
    assert.ok(Math.abs(want[i]! - miss[i]! - coef[2]![i]! * (0.9 - 0.05) * (0.9 - 0.6)) < 1e-5);
  });

  it('errors name the problem: duplicate knots, mismatched sizes, bad configs, non-finite λ', () => {
    assert.throws(() => forecastWeights([0.5, 0.5], 1), /same time/);
    assert.throws(() => forecastFeature([new Float32Array(3), new Float32Array(4)], [0, 1], 2), /different sizes/);
    assert.throws(() => validateForecastConfig({ order: 3 }), /"order" must be 0, 1 or 2/);
    assert.throws(() => validateForecastConfig({ order: 1, time: 'sigma' }), /"time" must be "lambda"/);
    assert.throws(() => validateForecastConfig({ order: 1, every: 2 }), /unknown field "every"/);
    assert.throws(() => forecastTimeOf('lambda', { t: 0, alpha: 1, sigma: 0 }), /forecast in time "t"/);
    assert.equal(forecastTimeOf('lambda', { t: 5, alpha: 0.8, sigma: 0.6 }), Math.log(0.8 / 0.6));
    const c = validateForecastConfig({ order: 1, points: { 'gated-attention': 2, h3: 0 } });
    assert.equal(maxForecastOrder(c), 2);
    assert.equal(forecastOrderFor(c, { name: 'h3', kind: 'gated-attention' }), 0);
    assert.equal(forecastOrderFor(c, { name: 'x', kind: 'gated-attention' }), 2);
    assert.equal(forecastOrderFor(c, { name: 'x', kind: 'resnet-conv1' }), 1);
  });
});

const MODELS = [
  { id: 'unet', onnx: 'models/fashion-unet.onnx', card: 'models/fashion-unet.json' },
  { id: 'dit', onnx: 'models/fashion-dit.onnx', card: 'models/fashion-dit.json' },
];

for (const m of MODELS) {
  const skip = existsSync(m.onnx) && existsSync(m.card) ? false : `${m.onnx} is not there`;
  describe(`feature forecasting on the bundled Fashion ${m.id}`, { skip }, () => {
    let plain: OnnxDiffusionModel;
    let net: FeatureReuseOnnxModel;
    let card: ReturnType<typeof parseModelCard>;
    before(async () => {
      card = parseModelCard(JSON.parse(readFileSync(m.card, 'utf8')));
      const bytes = new Uint8Array(readFileSync(m.onnx));
      plain = await OnnxDiffusionModel.create({ ort, model: bytes, card });
      net = await FeatureReuseOnnxModel.create({ ort, model: bytes, card, points: 'frdiff' });
    });

    it('along the full model’s DPM-Solver++ 2M trajectory (20 steps, guidance 2, keyframes every 2 calls, forecast in t): keyframes equal the full model, order 1 and 2 beat order 0', async () => {
      const run = sampleOptionsFromCard(cardSamplingSetup(card), {
        solver: 'dpmpp_2m',
        steps: 20,
        batch: 4,
        seed: 3,
        classLabels: [0, 3, 5, 7],
        guidance: 2,
      });
      const rec: { x: Float32Array; call: ModelCall; cond: unknown; out: Float32Array }[] = [];
      await sample({
        ...run,
        model: {
          predictionType: plain.predictionType,
          sampleShape: plain.sampleShape,
          async predict(x, call, cond) {
            const out = (await plain.predict(x, call, cond)) as Float32Array;
            rec.push({ x: Float32Array.from(x), call, cond, out: Float32Array.from(out) });
            return out;
          },
        },
      });
      assert.equal(rec.length, 20);
      const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        let num = 0;
        let den = 0;
        for (let i = 0; i < a.length; i++) {
          num += (a[i]! - b[i]!) ** 2;
          den += b[i]! ** 2;
        }
        return Math.sqrt(num / den);
      };
      const err: Record<number, number> = {};
      const outputs: Record<number, Float32Array[]> = {};
      for (const order of [0, 1, 2] as ForecastOrder[]) {
        net.setForecast({ order, time: 't' });
        net.resetStats();
        let sum = 0;
        outputs[order] = [];
        for (let i = 0; i < rec.length; i++) {
          const r = rec[i]!;
          if (i % 2 === 0) {
            const k = await net.predictKeyframe(r.x, r.call, r.cond as never);
            assert.equal(maxAbsDiff(k, r.out), 0, `order ${order}: keyframe call ${i} equals the full model`);
            continue;
          }
          const o = (await net.predictReuse(r.x, r.call, r.cond as never)) as Float32Array;
          outputs[order]!.push(o);
          sum += rel(o, r.out);
        }
        err[order] = sum / 10;
        const s = net.stats;
        assert.equal(s.keyframe.calls, 10);
        assert.equal(s.reuse.calls, 10);
        // every reuse call after the second keyframe forecasts every point (order 2 falls back to 1 with two keyframes)
        assert.equal(s.forecast.tensors, order === 0 ? 0 : 9 * net.points.length);
        if (order > 0) assert.ok(s.forecast.ms > 0 && s.forecast.ms < s.reuse.totalMs);
      }
      // the first reuse call has one keyframe behind it: every order holds it stale there
      assert.equal(maxAbsDiff(outputs[1]![0]!, outputs[0]![0]!), 0);
      console.log(
        `# fashion ${m.id}: mean relative error of reuse calls vs the full model: order 0 ${err[0]!.toExponential(3)}, order 1 ${err[1]!.toExponential(3)}, order 2 ${err[2]!.toExponential(3)}`,
      );
      // measured: U-Net 3.62e-2 / 1.69e-2 / 1.68e-2, DiT see bench/forecast.md
      assert.ok(err[1]! < 0.8 * err[0]!, `order 1 ${err[1]} vs order 0 ${err[0]}`);
      assert.ok(err[2]! < 0.8 * err[0]!, `order 2 ${err[2]} vs order 0 ${err[0]}`);
    });

    it('a sampling run with forecast order 0 equals FRDiff bit for bit; order 1 runs the same calls and differs', async () => {
      const run = sampleOptionsFromCard(cardSamplingSetup(card), { solver: 'ddim', steps: 10, batch: 2, seed: 5, classLabels: [1, 8], guidance: 2 });
      const stale = await featureReuseFor(net, run, { keyframes: { interval: 3 }, mixing: null });
      const a = await sample({ ...run, model: stale.model });
      const zero = await featureReuseFor(net, run, { keyframes: { interval: 3 }, mixing: null, forecast: { order: 0 } });
      const b = await sample({ ...run, model: zero.model });
      assert.equal(maxAbsDiff(a.samples, b.samples), 0);
      const one = await featureReuseFor(net, run, { keyframes: { interval: 3 }, mixing: null, forecast: { order: 1, time: 'lambda' } });
      const c = await sample({ ...run, model: one.model });
      assert.deepEqual({ ...one.model.stats, keyframeMs: 0, reuseMs: 0 }, { keyframe: 4, reuse: 6, skip: 0, keyframeMs: 0, reuseMs: 0 });
      assert.ok(maxAbsDiff(a.samples, c.samples) > 1e-4);
      // two keyframes kept: the cache holds twice one keyframe's features
      assert.equal(net.stats.cacheBytes, 2 * net.graphs.cacheBytesPerSample * 4);
    });

    it('refuses a forecast for a point the model does not have', () => {
      assert.throws(() => net.setForecast({ order: 1, points: { nonexistent: 2 } }), /neither a reuse point nor a point kind/);
    });
  });
}
