/**
 * FeatureReuseOnnxModel (the ONNX adapter of FRDiff): exactness of keyframe and reuse calls against
 * the plain model, per-chunk caches, exact equality of an all-keyframe run, call accounting with
 * and without PFDiff, policy files and clear errors. Runs on a tiny U-Net built in code and, when
 * it is there, on the bundled Fashion U-Net.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import { withFeatureReuse } from '../src/core/frdiff/feature-reuse-model.js';
import { plannedCalls } from '../src/core/frdiff/planned-calls.js';
import { countCalls, uniformPolicy, type ReusePolicy } from '../src/core/frdiff/reuse-policy.js';
import { modelCallAt } from '../src/core/model.js';
import { sample, type SampleOptions } from '../src/core/sample.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { FeatureReuseOnnxModel, parseReusePoints } from '../src/model/feature-reuse-onnx-model.js';
import { OnnxDiffusionModel } from '../src/model/onnx-backend.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { policyFromFlags, readReusePolicyFile } from '../src/cli/commands/feature-reuse-options.js';
import { runSampleCommand, type SampleCommandOptions } from '../src/cli/commands/sample.js';
import { plainConvOnnx, tinyUnetOnnx } from './helpers/tiny-fr-onnx.js';
import { maxAbsDiff } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;
const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, numTrainTimesteps: 1000 });
/** The descriptor of a call at time `t` on `batch` samples. */
const at = (t: number, batch: number) => modelCallAt(schedule, t, batch);

const maxAbs = maxAbsDiff;

interface Subject {
  id: string;
  bytes: () => Uint8Array;
  sampleShape: number[];
  policies: string[];
}
const FASHION = process.env.REDIFFUSE_TEST_UNET ?? 'models/fashion-unet.onnx';
const SUBJECTS: (Subject & { skip: string | false })[] = [
  { id: 'tiny U-Net', bytes: () => tinyUnetOnnx(), sampleShape: [1, 4, 4], policies: ['frdiff', 'residual', 'deepcache'], skip: false },
  {
    id: 'Fashion U-Net',
    bytes: () => new Uint8Array(readFileSync(FASHION)),
    sampleShape: [1, 28, 28],
    policies: ['frdiff', 'deepcache'],
    skip: existsSync(FASHION) ? false : `${FASHION} is not there yet`,
  },
];

for (const subject of SUBJECTS) {
  describe(`FeatureReuseOnnxModel on the ${subject.id}`, { skip: subject.skip }, () => {
    let bytes: Uint8Array;
    let plain: OnnxDiffusionModel;
    const nets = new Map<string, FeatureReuseOnnxModel>();
    const batch = 3;
    let x: Float32Array;
    const cond = { classLabels: [1, 2, 10] };
    before(async () => {
      bytes = subject.bytes();
      // same chunking as the nets (onnxruntime's rounding may depend on the batch of a run)
      plain = await OnnxDiffusionModel.create({ ort, model: bytes, sampleShape: subject.sampleShape, nullLabel: 10, maxBatch: 2 });
      for (const p of subject.policies) {
        nets.set(p, await FeatureReuseOnnxModel.create({ ort, model: bytes, points: p, sampleShape: subject.sampleShape, nullLabel: 10, maxBatch: 2 }));
      }
      const d = subject.sampleShape.reduce((a, b) => a * b, 1);
      x = Float32Array.from({ length: batch * d }, (_, i) => Math.sin(0.37 * i) * 0.9);
    });

    it('keyframe calls equal the plain model, and reuse calls fed with fresh caches equal it too (every policy, chunked batches)', async () => {
      for (const [name, net] of nets) {
        assert.ok(net.points.length > 0, name);
        const full = await plain.predict(x, at(500, batch), cond);
        assert.equal(maxAbs(await net.predictKeyframe(x, at(500, batch), cond), full), 0, `${name} keyframe`);
        // batch 3 with maxBatch 2 runs as two chunks: one cache per chunk
        assert.equal(net.stats.cacheBytes, net.graphs.cacheBytesPerSample * batch, `${name}: cache of chunks 2 + 1`);
        assert.equal(maxAbs(await net.predictReuse(x, at(500, batch), cond), full), 0, `${name} reuse at the same input`);
        // at another time the reuse call reuses stale features: close to, but not, the full output
        const later = await plain.predict(x, at(450, batch), cond);
        const reused = await net.predictReuse(x, at(450, batch), cond);
        assert.ok(maxAbs(reused, later) > 0, `${name}: the reuse call must use the cache`);
      }
    });

    it('a reuse call without a cache, or on another batch, throws an error naming the fix', async () => {
      const net = nets.get('frdiff')!;
      net.clearCache();
      await assert.rejects(net.predictReuse(x, at(500, batch), cond), /make a keyframe call first/);
      await net.predictKeyframe(x, at(500, batch), cond);
      const d = subject.sampleShape.reduce((a, b) => a * b, 1);
      await assert.rejects(net.predictReuse(x.subarray(0, 2 * d), at(500, 2), { classLabels: [1, 2] }), /holds batch 3 but this reuse call has batch 2/);
    });

    it('with interval 1 (all keyframes) a guided DDIM run equals the plain run exactly', async () => {
      const net = nets.get('frdiff')!;
      const run: Omit<SampleOptions, 'model'> = { schedule, solver: 'ddim', steps: 8, batch, seed: 4, cond, guidance: { scale: 2, nullLabel: 10 } };
      const ref = await sample({ ...run, model: plain });
      const fr = withFeatureReuse(net, { policy: uniformPolicy(8, 1) });
      fr.reset();
      const got = await sample({ ...run, model: fr });
      assert.equal(maxAbs(got.samples, ref.samples), 0);
      assert.deepEqual([fr.stats.keyframe, fr.stats.reuse, fr.stats.skip], [8, 0, 0]);
    });
  });
}

describe('FRDiff call accounting on the tiny U-Net', () => {
  let net: FeatureReuseOnnxModel;
  before(async () => {
    net = await FeatureReuseOnnxModel.create({ ort, model: tinyUnetOnnx(), points: 'frdiff', sampleShape: [1, 4, 4], nullLabel: 10 });
  });
  const cond = { classLabels: [3, 7] };
  const guidance = { scale: 2, nullLabel: 10 };

  it('DDIM 50 steps, interval 3 with mixing: full / reuse / skipped match countCalls, and the adapter saw the same', async () => {
    const policy = uniformPolicy(50, 3);
    const fr = withFeatureReuse(net, { policy });
    fr.reset();
    net.resetStats();
    const r = await sample({ model: fr, schedule, solver: 'ddim', steps: 50, batch: 2, seed: 1, cond, guidance });
    const c = countCalls(policy);
    assert.deepEqual([c.keyframe, c.reuse, c.skip], [17, 19, 14]);
    assert.equal(r.calls, 50);
    assert.deepEqual([fr.stats.keyframe, fr.stats.reuse, fr.stats.skip], [c.keyframe, c.reuse, c.skip]);
    assert.equal(net.stats.keyframe.calls, c.keyframe);
    assert.equal(net.stats.reuse.calls, c.reuse);
    assert.equal(net.stats.keyframe.images, 4 * c.keyframe, 'a guided call of B samples runs 2B');
    assert.equal(net.stats.peakCacheBytes, 4 * net.graphs.cacheBytesPerSample);
  });

  it('FR composes with PFDiff: PFDiff-2_1 on DDIM with 12 calls, interval 2, counts follow the policy', async () => {
    const run: SampleOptions = { model: net, schedule, solver: 'ddim', nfe: 12, pfdiff: { k: 2, h: 1 }, batch: 2, seed: 2, cond, guidance };
    const calls = await plannedCalls(run);
    assert.equal(calls, 12);
    const policy = uniformPolicy(calls, 2, { temperature: 30, bias: 0.4 });
    const fr = withFeatureReuse(net, { policy });
    fr.reset();
    const r = await sample({ ...run, model: fr });
    const c = countCalls(policy);
    assert.equal(r.calls, calls);
    assert.deepEqual([fr.stats.keyframe, fr.stats.reuse, fr.stats.skip], [c.keyframe, c.reuse, c.skip]);
    assert.ok(c.reuse > 0 && c.skip > 0);
    // with all keyframes, PFDiff + FR equals PFDiff alone exactly
    const all = withFeatureReuse(net, { policy: uniformPolicy(calls, 1) });
    all.reset();
    const a = await sample({ ...run, model: all });
    const b = await sample(run);
    assert.equal(maxAbs(a.samples, b.samples), 0);
  });
});

describe('FRDiff errors and policy files', () => {
  it('a model with no reuse points fails with a clear error', async () => {
    await assert.rejects(
      FeatureReuseOnnxModel.create({ ort, model: plainConvOnnx(), points: 'frdiff', sampleShape: [1, 4, 4], label: 'plain-conv' }),
      /plain-conv: cannot set up feature reuse: reuse points frdiff: no reuse points found.*pass explicit tensor names/,
    );
    await assert.rejects(
      FeatureReuseOnnxModel.create({ ort, model: plainConvOnnx(), points: 'deepcache', sampleShape: [1, 4, 4] }),
      /deepcache: needs a U-Net/,
    );
  });

  it('reuse-points names parse, and unknown ones name the valid forms', () => {
    assert.equal(parseReusePoints(undefined), 'frdiff');
    assert.deepEqual(parseReusePoints('deepcache:2'), { preset: 'deepcache', branch: 2 });
    assert.deepEqual(parseReusePoints('a,b'), ['a', 'b']);
    assert.throws(() => parseReusePoints('fastest'), /unknown reuse points "fastest": use frdiff, residual, deepcache, dit, deepcache:N/);
  });

  it('explicit tensor lists work and a wrong tensor name is rejected', async () => {
    const net = await FeatureReuseOnnxModel.create({ ort, model: tinyUnetOnnx(), points: ['h1'], sampleShape: [1, 4, 4], nullLabel: 10 });
    assert.deepEqual(
      net.points.map((p) => p.name),
      ['h1'],
    );
    await assert.rejects(
      FeatureReuseOnnxModel.create({ ort, model: tinyUnetOnnx(), points: ['nope'], sampleShape: [1, 4, 4] }),
      /cannot cache tensor 'nope'/,
    );
  });

  it('policy files: malformed JSON, wrong format, wrong call count and bad keyframes give errors naming the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rediffuse-fr-'));
    const file = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    assert.throws(() => readReusePolicyFile(join(dir, 'missing.json')), /does not exist; pass --fr-policy/);
    assert.throws(() => readReusePolicyFile(file('a.json', '{"format": ')), /is not valid JSON/);
    assert.throws(() => readReusePolicyFile(file('b.json', '{"format":"x"}')), /"format" must be "rediffuse-reuse-policy\/1"/);
    const good: ReusePolicy = uniformPolicy(10, 2);
    const g = file('g.json', JSON.stringify(good));
    assert.deepEqual(readReusePolicyFile(g, 10).keyframes, [0, 2, 4, 6, 8]);
    assert.throws(() => readReusePolicyFile(g, 20), /made for 10 model calls but this run makes 20/);
    assert.throws(() => readReusePolicyFile(file('c.json', JSON.stringify({ ...good, keyframes: [2, 4] }))), /must start with 0/);
    assert.throws(() => readReusePolicyFile(file('d.json', JSON.stringify({ ...good, mixing: { temperature: 30 } }))), /numeric temperature and bias/);
    // flags on top of a file: --no-mixing, --mix-bias, --fr-points
    assert.equal(policyFromFlags({ frPolicy: g, mixing: false }, 10).mixing, null);
    assert.equal(policyFromFlags({ frPolicy: g, mixBias: 0.3 }, 10).mixing!.bias, 0.3);
    assert.equal(policyFromFlags({ frPolicy: g, frPoints: 'residual' }, 10).points, 'residual');
    assert.throws(() => policyFromFlags({ frInterval: 2, mixing: false, mixBias: 0.3 }, 10), /--no-mixing turns score mixing off/);
    assert.deepEqual(policyFromFlags({ frInterval: 3 }, 10).keyframes, [0, 3, 6, 9]);
  });
});

describe('rediffuse sample --fr-interval / --fr-policy (in-process, tiny U-Net)', () => {
  it('reports full / reuse / skipped calls, cache memory and ms per kind; a policy file gives the same run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rediffuse-fr-cli-'));
    const model = join(dir, 'tiny.onnx');
    writeFileSync(model, tinyUnetOnnx());
    writeFileSync(
      join(dir, 'tiny.json'),
      JSON.stringify({
        name: 'tiny',
        sample_size: [1, 4, 4],
        num_classes: 10,
        null_label: 10,
        scheduler_config: {
          _class_name: 'DDIMScheduler',
          num_train_timesteps: 1000,
          beta_schedule: 'linear',
          beta_start: 0.0001,
          beta_end: 0.02,
          prediction_type: 'epsilon',
          clip_sample: false,
        },
      }),
    );
    const base: SampleCommandOptions = {
      model,
      solver: 'ddim',
      steps: 50,
      class: '0,1',
      count: 2,
      seed: 3,
      batchSize: 64,
      out: join(dir, 'a.png'),
      quiet: true,
      mixing: true,
    };
    const a = await runSampleCommand({ ...base, frInterval: 3 });
    const fr = a.featureReuse!;
    assert.deepEqual([fr.fullCalls, fr.reuseCalls, fr.skippedSteps], [17, 19, 14]);
    assert.equal(a.calls, 50);
    assert.equal(fr.cacheBytes, 2 * 4 * fr.cacheBytesPerSample, 'guided batch of 2 × 4 samples');
    assert.ok(fr.keyframeMs > 0 && fr.reuseMs > 0);
    const policy = join(dir, 'p.json');
    writeFileSync(policy, JSON.stringify(uniformPolicy(50, 3)));
    const b = await runSampleCommand({ ...base, frPolicy: policy, out: join(dir, 'b.png') });
    assert.deepEqual(readFileSync(join(dir, 'b.png')), readFileSync(join(dir, 'a.png')));
    assert.equal(b.featureReuse!.reuseCalls, 19);
    const c = await runSampleCommand({ ...base, frInterval: 3, mixing: false, out: join(dir, 'c.png') });
    assert.deepEqual([c.featureReuse!.fullCalls, c.featureReuse!.reuseCalls, c.featureReuse!.skippedSteps], [17, 33, 0]);
    writeFileSync(policy, JSON.stringify(uniformPolicy(20, 3)));
    await assert.rejects(runSampleCommand({ ...base, frPolicy: policy }), /made for 20 model calls but this run makes 50/);
  });
});
