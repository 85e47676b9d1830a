/**
 * Graph surgery for feature reuse: protobuf round trip, structural reuse-point detection per policy
 * on the bundled U-Net, the DiT and a tiny SD-style U-Net with cross-attention, exactness of the
 * reuse graph fed with fresh caches, pruning, and clear errors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as ortNode from 'onnxruntime-node';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from '../src/model/ort-types.js';
import { decodeModel, encodeModel, type OnnxModel } from '../src/model/onnx-graph/onnx-proto.js';
import { analyzeOnnxModel, buildFeatureReuseGraphs, type AnalyzedOnnxModel } from '../src/model/onnx-graph/feature-reuse-graphs.js';
import { FeatureReuseSession } from '../src/model/onnx-graph/feature-reuse-session.js';
import { findSkipConcats } from '../src/model/onnx-graph/reuse-points.js';
import { formatInspectReport, inspectModel } from '../src/cli/commands/inspect.js';
import { maxAbsDiff as maxAbsArrays } from './helpers/arrays.js';

const ort = ortNode as unknown as OrtModuleLike;

type Arch = 'unet' | 'dit' | 'sd';
/** The committed models (environment variables point a run at other exports of the same architectures). */
const MODELS: { id: string; path: string; arch: Arch }[] = [
  { id: 'fashion U-Net', path: process.env.REDIFFUSE_TEST_UNET ?? 'models/fashion-unet.onnx', arch: 'unet' },
  { id: 'fashion DiT', path: process.env.REDIFFUSE_TEST_DIT ?? 'models/fashion-dit.onnx', arch: 'dit' },
  { id: 'tiny SD U-Net', path: process.env.REDIFFUSE_TEST_SD_UNET ?? 'test/fixtures/tiny-sd-unet.onnx', arch: 'sd' },
];

/** Deterministic feeds for a diffusion model at `batch`, from the session's input metadata. */
function feedsFor(session: OrtSessionLike, batch: number, timestep: number): Record<string, OrtTensorLike> {
  const feeds: Record<string, OrtTensorLike> = {};
  for (const meta of session.inputMetadata ?? []) {
    const shape = (meta.shape ?? []).map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? batch : 8));
    const n = shape.reduce((a, d) => a * d, 1);
    const isTime = /time|^t$/i.test(meta.name) && shape.length === 1;
    if (meta.type === 'int64') {
      feeds[meta.name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(isTime ? timestep + i : i % 10)),
        shape,
      );
    } else {
      const data = isTime
        ? Float32Array.from({ length: n }, (_, i) => timestep + i)
        : Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + 0.1 * meta.name.length));
      feeds[meta.name] = new ort.Tensor('float32', data, shape);
    }
  }
  return feeds;
}

const maxAbsDiff = (a: OrtTensorLike, b: OrtTensorLike) => maxAbsArrays(a.data as Float32Array, b.data as Float32Array);

/** Ground truth from the export's node names (the detector itself never looks at names). */
function expectedBlocks(model: OnnxModel, arch: Arch): { resnets: number; attention: number; residualBranches: number } {
  const names = (model.graph!.node ?? []).map((n) => `${n.name ?? ''}|${n.opType}`);
  const resnets = names.filter((n) => /\/(conv1|c1)\/Conv\|Conv$/.test(n)).length;
  const softmax = names.filter((n) => n.endsWith('|Softmax')).length;
  if (arch === 'sd') {
    const scopes = new Set(names.filter((n) => /\/(proj_in|pin)\//.test(n)).map((n) => n.split(/\/(proj_in|pin)\//)[0]));
    return { resnets, attention: scopes.size, residualBranches: resnets + scopes.size };
  }
  if (arch === 'dit') return { resnets: 0, attention: softmax, residualBranches: 2 * softmax };
  return { resnets, attention: softmax, residualBranches: resnets + softmax };
}

for (const spec of MODELS) {
  describe(`feature-reuse surgery on the ${spec.id}`, { skip: existsSync(spec.path) ? false : `${spec.path} is not there yet` }, () => {
    let bytes: Uint8Array;
    let analyzed: AnalyzedOnnxModel;
    let full: OrtSessionLike;
    before(async () => {
      bytes = new Uint8Array(readFileSync(spec.path));
      analyzed = await analyzeOnnxModel(bytes, { ort });
      full = await ort.InferenceSession.create(bytes);
    });

    it('decodes and re-encodes the model byte for byte', () => {
      const again = encodeModel(decodeModel(bytes));
      assert.equal(again.length, bytes.length);
      assert.ok(Buffer.from(again).equals(Buffer.from(bytes)));
    });

    const policies = spec.arch === 'dit' ? (['frdiff', 'residual'] as const) : (['frdiff', 'residual', 'deepcache'] as const);
    for (const policy of policies) {
      it(`${policy}: the reuse graph fed with fresh caches reproduces the full output, and prunes work`, async () => {
        const graphs = await buildFeatureReuseGraphs(analyzed, policy);
        const session = await FeatureReuseSession.fromGraphs(ort, graphs);
        const feeds = feedsFor(full, 2, 411);
        const ref = await full.run(feeds);
        const key = await session.runKeyframe(feeds);
        const reuse = await session.runReuse(feeds, key.cache);
        for (const name of graphs.outputNames) {
          assert.ok(maxAbsDiff(key.outputs[name], ref[name]) <= 1e-6, `keyframe ${name}`);
          assert.ok(maxAbsDiff(reuse[name], ref[name]) <= 1e-6, `reuse ${name}: ${maxAbsDiff(reuse[name], ref[name])}`);
        }
        // the cache has one [B, …] tensor per point, of the advertised per-sample size
        let perSample = 0;
        for (const p of graphs.points) {
          const t = key.cache[p.name];
          assert.equal(t.dims[0], 2);
          perSample += ((t.data as Float32Array).length / 2) * 4;
        }
        assert.equal(perSample, graphs.cacheBytesPerSample);
        // pruning: fewer nodes and initializers, fewer MACs
        const reuseModel = decodeModel(graphs.reuse);
        assert.equal(reuseModel.graph!.node!.length, graphs.nodeCount.reuse);
        assert.ok(graphs.nodeCount.reuse < graphs.nodeCount.full);
        assert.ok(reuseModel.graph!.initializer!.length < analyzed.model.graph!.initializer!.length);
        const bounds = { frdiff: spec.arch === 'dit' ? [0.4, 0.85] : [0.15, 0.8], residual: [0, 0.4], deepcache: [0.02, 0.95] }[policy];
        assert.ok(graphs.flops.ratio > bounds[0] && graphs.flops.ratio < bounds[1], `MAC ratio ${graphs.flops.ratio}`);
        if (policy === 'residual') {
          const fr = await buildFeatureReuseGraphs(analyzed, 'frdiff');
          assert.ok(graphs.flops.ratio < fr.flops.ratio, 'caching whole branches skips more than FRDiff points');
        }
        // a reuse step at another timestep really runs the time-conditioned remainder
        if (policy !== 'residual' || spec.arch === 'dit') {
          const later = await session.runReuse(feedsFor(full, 2, 900), key.cache);
          assert.ok(maxAbsDiff(later[graphs.outputNames[0]], ref[graphs.outputNames[0]]) > 1e-4);
        }
        // one row of the cache serves the matching row of the batch
        const row1 = session.selectCacheRows(key.cache, [1]);
        const feeds1: Record<string, OrtTensorLike> = {};
        for (const [n, t] of Object.entries(feeds)) {
          const per = (t.data as Float32Array).length / t.dims[0];
          const data = (t.data as Float32Array).slice(per, 2 * per);
          feeds1[n] = new ort.Tensor(t.type as 'float32', data as Float32Array, [1, ...t.dims.slice(1)]);
        }
        const one = await session.runReuse(feeds1, row1);
        const o = graphs.outputNames[0];
        const per = (ref[o].data as Float32Array).length / 2;
        const want = (ref[o].data as Float32Array).subarray(per);
        const got = one[o].data as Float32Array;
        for (let i = 0; i < per; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5);
        await assert.rejects(session.runReuse(feeds1, key.cache), /batch 2 but this call has batch 1/);
        await session.release();
      });
    }

    it('finds one reuse point per block, of the expected kinds', async () => {
      const exp = expectedBlocks(analyzed.model, spec.arch);
      const fr = await buildFeatureReuseGraphs(analyzed, 'frdiff');
      const kinds = (k: string) => fr.points.filter((p) => p.kind === k).length;
      assert.equal(kinds('resnet-conv1'), exp.resnets);
      assert.equal(kinds('attention-branch') + kinds('gated-attention'), exp.attention);
      assert.ok(exp.attention > 0);
      if (spec.arch === 'dit') assert.equal(kinds('gated-attention'), exp.attention);
      else assert.ok(exp.resnets > 0);
      // the ResNet point is the first conv (before the time embedding is added)
      for (const p of fr.points.filter((q) => q.kind === 'resnet-conv1')) {
        const producer = analyzed.model.graph!.node!.find((n) => n.output!.includes(p.name))!;
        assert.equal(producer.opType, 'Conv');
        assert.match(producer.name ?? '', /(conv1|c1)\/Conv$/);
      }
      const res = await buildFeatureReuseGraphs(analyzed, 'residual');
      assert.equal(res.points.length, exp.residualBranches);
    });

    it('deepcache: branches are ordered shallow to deep, and a DiT is refused', async () => {
      if (spec.arch === 'dit') {
        await assert.rejects(buildFeatureReuseGraphs(analyzed, 'deepcache'), /needs a U-Net.*use reuse points frdiff or residual/);
        return;
      }
      const skips = findSkipConcats(analyzed.index, analyzed.shapes);
      const upBlocks = analyzed.model.graph!.node!.filter(
        (n) => n.opType === 'Concat' && analyzed.shapes.get(n.output![0])?.shape.length === 4 && !analyzed.index.isConstant(n.output![0]),
      ).length;
      assert.equal(skips.length, upBlocks);
      const ratios: number[] = [];
      for (let b = 0; b < skips.length; b++) ratios.push((await buildFeatureReuseGraphs(analyzed, { preset: 'deepcache', branch: b })).flops.ratio);
      assert.ok(ratios[0] < ratios[ratios.length - 1], `shallowest branch skips the most: ${ratios}`);
      await assert.rejects(
        buildFeatureReuseGraphs(analyzed, { preset: 'deepcache', branch: skips.length }),
        new RegExp(`has ${skips.length} skip branches`),
      );
    });

    it('explicit tensor names: exact, and unknown names are refused with candidates', async () => {
      const fr = await buildFeatureReuseGraphs(analyzed, 'frdiff');
      const pick = [fr.points[0].name];
      const graphs = await buildFeatureReuseGraphs(analyzed, pick);
      assert.deepEqual(
        graphs.points.map((p) => p.name),
        pick,
      );
      assert.equal(graphs.points[0].kind, 'explicit');
      const session = await FeatureReuseSession.fromGraphs(ort, graphs);
      const feeds = feedsFor(full, 2, 77);
      const ref = await full.run(feeds);
      const key = await session.runKeyframe(feeds);
      const out = await session.runReuse(feeds, key.cache);
      assert.ok(maxAbsDiff(out[graphs.outputNames[0]], ref[graphs.outputNames[0]]) <= 1e-6);
      await assert.rejects(buildFeatureReuseGraphs(analyzed, [pick[0] + '_typo']), /is not a tensor of this graph.*e\.g\. '/);
      const weight = analyzed.model.graph!.initializer![0].name!;
      await assert.rejects(buildFeatureReuseGraphs(analyzed, [weight]), /is a weight/);
      await session.release();
    });
  });
}

/** A float32 initializer of the given shape with deterministic values. */
function weight(name: string, dims: number[]) {
  const n = dims.reduce((a, d) => a * d, 1);
  return { name, dims, dataType: 1, floatData: Array.from({ length: n }, (_, i) => Math.cos(i + name.length) * 0.5) };
}
const io = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }] } } } });

/** x → MatMul → Relu → MatMul (→ + x when `residual`). */
function tinyMlp(residual: boolean): Uint8Array {
  const nodes = [
    { opType: 'MatMul', input: ['x', 'W1'], output: ['h1'] },
    { opType: 'Relu', input: ['h1'], output: ['h2'] },
    { opType: 'MatMul', input: ['h2', 'W2'], output: [residual ? 'h3' : 'y'] },
  ];
  if (residual) nodes.push({ opType: 'Add', input: ['x', 'h3'], output: ['y'] });
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'mlp', node: nodes, initializer: [weight('W1', [4, 4]), weight('W2', [4, 4])], input: [io('x')], output: [io('y')] },
  });
}

describe('feature-reuse surgery on graphs without reuse points', () => {
  it('a plain MLP has no reuse point under any policy', async () => {
    const a = await analyzeOnnxModel(tinyMlp(false), { ort });
    await assert.rejects(buildFeatureReuseGraphs(a, 'frdiff'), /reuse points frdiff: no reuse points found.*explicit tensor names/);
    await assert.rejects(buildFeatureReuseGraphs(a, 'residual'), /reuse points residual: no reuse points found/);
    await assert.rejects(buildFeatureReuseGraphs(a, 'deepcache'), /needs a U-Net/);
    await assert.rejects(buildFeatureReuseGraphs(a, ['h9']), /'h9'.*e\.g\. .*'h/);
    await assert.rejects(buildFeatureReuseGraphs(a, 'fast' as 'frdiff'), /unknown reuse points 'fast'; use one of frdiff, residual, deepcache/);
    await assert.rejects(buildFeatureReuseGraphs(a, ['x']), /is a graph input/);
  });

  it(
    'the Fashion-MNIST classifier has no reuse points',
    { skip: existsSync('models/fashion-classifier.onnx') ? false : 'classifier not there yet' },
    async () => {
      const a = await analyzeOnnxModel(new Uint8Array(readFileSync('models/fashion-classifier.onnx')), { ort });
      for (const policy of ['frdiff', 'residual'] as const)
        await assert.rejects(buildFeatureReuseGraphs(a, policy), new RegExp(`reuse points ${policy}: no reuse points found`));
      await assert.rejects(buildFeatureReuseGraphs(a, 'deepcache'), /needs a U-Net/);
    },
  );

  it('a residual MLP: residual caches the branch, the reuse graph keeps only the add, and MACs drop to zero', async () => {
    const bytes = tinyMlp(true);
    const a = await analyzeOnnxModel(bytes, { ort });
    await assert.rejects(buildFeatureReuseGraphs(a, 'frdiff'), /no reuse points/);
    const g = await buildFeatureReuseGraphs(a, 'residual');
    assert.deepEqual(
      g.points.map((p) => [p.name, p.kind, p.shape, p.symbolic]),
      [['h3', 'residual-branch', [1, 4], ['batch', null]]],
    );
    assert.equal(g.flops.full.macs, 2 * 16);
    assert.equal(g.flops.reuse.macs, 0);
    assert.equal(g.flops.ratio, 0);
    assert.deepEqual(
      decodeModel(g.reuse).graph!.node!.map((n) => n.opType),
      ['Add'],
    );
    assert.equal(decodeModel(g.reuse).graph!.initializer!.length, 0);
    assert.equal(g.cacheBytesPerSample, 16);
    const s = await FeatureReuseSession.fromGraphs(ort, g);
    const x = new ort.Tensor('float32', Float32Array.from([1, -2, 3, 0.5, 0, 1, -1, 2]), [2, 4]);
    const full = await ort.InferenceSession.create(bytes);
    const ref = (await full.run({ x })).y;
    const key = await s.runKeyframe({ x });
    assert.equal(maxAbsDiff((await s.runReuse({ x }, key.cache)).y, ref), 0);
    // reuse at another input adds the stale branch to the CURRENT skip input: y' = x' + h3(x)
    const x2 = new ort.Tensor('float32', Float32Array.from([0, 0, 0, 0, 1, 1, 1, 1]), [2, 4]);
    const y2 = (await s.runReuse({ x: x2 }, key.cache)).y.data as Float32Array;
    const h3 = key.cache.h3.data as Float32Array;
    y2.forEach((v, i) => assert.ok(Math.abs(v - ((x2.data as Float32Array)[i] + h3[i])) < 1e-6));
  });

  it('a skip around the whole network (c_skip·x + c_out·F(x)) is not taken for a block', async () => {
    const img = (name: string) => ({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }, { dimValue: 4 }, { dimValue: 4 }] } } },
    });
    const conv = (x: string, w: string, y: string) => ({
      opType: 'Conv',
      input: [x, w],
      output: [y],
      attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }],
    });
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'wrapped-resblock',
        node: [
          conv('x', 'Wa', 'c1'),
          { opType: 'Relu', input: ['c1'], output: ['r1'] },
          conv('r1', 'Wb', 'c2'),
          { opType: 'Add', input: ['x', 'c2'], output: ['h'] },
          { opType: 'Mul', input: ['x', 'cskip'], output: ['sx'] },
          { opType: 'Mul', input: ['h', 'cout'], output: ['o'] },
          { opType: 'Add', input: ['sx', 'o'], output: ['y'] },
        ],
        initializer: [weight('Wa', [2, 2, 3, 3]), weight('Wb', [2, 2, 3, 3]), weight('cskip', [1]), weight('cout', [1])],
        input: [img('x')],
        output: [img('y')],
      },
    });
    const a = await analyzeOnnxModel(bytes, { ort });
    const res = await buildFeatureReuseGraphs(a, 'residual');
    assert.deepEqual(
      res.points.map((p) => p.name),
      ['c2'],
    );
    const fr = await buildFeatureReuseGraphs(a, 'frdiff');
    assert.deepEqual(
      fr.points.map((p) => [p.name, p.kind]),
      [['c1', 'resnet-conv1']],
    );
    assert.equal(fr.flops.full.macs, 2 * 16 * 2 * 2 * 9);
    assert.equal(fr.flops.ratio, 0.5);
  });

  it('fields unknown to the schema survive decoding and the surgery', async () => {
    const unknownField = [0x9a, 0x06, 3, 7, 8, 9]; // field 99, length-delimited, 3 bytes
    const bytes = new Uint8Array([...tinyMlp(true), ...unknownField]);
    assert.ok(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes)));
    const g = await buildFeatureReuseGraphs(bytes, 'residual', { ort });
    for (const out of [g.keyframe, g.reuse]) assert.deepEqual([...out.subarray(out.length - 6)], unknownField);
  });
});

describe('rediffuse inspect', () => {
  const spec = MODELS.find((m) => existsSync(m.path) && m.arch !== 'dit') ?? MODELS.find((m) => existsSync(m.path));
  it(
    'reports every reuse-point preset with the share of MACs skipped and the cache size',
    { skip: spec ? false : 'no model available yet' },
    async () => {
      const report = await inspectModel(spec!.path, ['all']);
      assert.deepEqual(
        report.presets.map((p) => p.preset),
        ['frdiff', 'residual', 'deepcache', 'dit'],
      );
      const fr = report.presets[0]!;
      assert.ok(fr.points!.length > 0 && fr.macsSkipped! > 0.15 && fr.macsSkipped! < 0.85);
      assert.ok(fr.cacheBytesPerSample! > 0);
      const text = formatInspectReport(report);
      assert.match(text, new RegExp(`frdiff: ${fr.points!.length} reuse points; a reuse step skips ${(100 * fr.macsSkipped!).toFixed(1)}% of MACs`));
      assert.match(text, /\[B×\d+/);
      await assert.rejects(inspectModel('nope.onnx', ['frdiff']), /cannot read model 'nope.onnx'/);
    },
  );
});
