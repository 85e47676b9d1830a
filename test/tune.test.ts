/**
 * `rediffuse tune`: a tiny real tune on the bundled U-Net, the tuned.json round trip into
 * `sample --config` (same solver, grid and call counts), validation of a corrupted config (clear
 * messages, non-zero exit), and held-out seeds disjoint from the calibration seeds.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onnxSetup, type BenchSetup } from '../src/bench/setup.js';
import { readTunedConfig, TUNED_CONFIG_FORMAT, validateTunedConfig, writeTunedConfig, type TunedConfig } from '../src/bench/tune-config.js';
import { defaultSearchSpace, type TuneCandidate } from '../src/bench/tune-space.js';
import { candidatePlan, checkDisjointSeeds, objectiveOf, pickBest, seedStreams, tune, TuneError, type TuneResult } from '../src/bench/tune.js';
import { main } from '../src/cli/main.js';
import { applyTunedConfig, runSampleCommand, type SampleCommandOptions } from '../src/cli/commands/sample.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-tune-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'rediffuse', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

const none = { kind: 'none' } as const;

test('the default search space: 41 typed candidates on the card spacing, FR only where the model has it', () => {
  const all = defaultSearchSpace({ spacing: 'trailing' });
  assert.equal(all.length, 41);
  assert.equal(all.filter((c) => c.pfdiff !== null).length, 12);
  assert.equal(all.filter((c) => c.solver === 'ipndm_v').length, 7);
  assert.equal(all.filter((c) => c.fr.kind !== 'none').length, 4);
  assert.equal(all.filter((c) => c.spacing === 'karras').length, 3);
  assert.equal(defaultSearchSpace({ spacing: 'trailing', featureReuse: false }).length, 37);
  assert.equal(defaultSearchSpace({ spacing: 'trailing', solvers: ['ddim'], maxNfe: 8 }).length, 2 + 3 + 2);
});

test('the objective: exactly one of budget and target', () => {
  assert.throws(() => objectiveOf({}), /give --budget-ms MS .* or --target-fd FD/);
  assert.throws(() => objectiveOf({ budgetMs: 5, targetFd: 1 }), /not both/);
  assert.throws(() => objectiveOf({ budgetMs: -1 }), /positive number of ms per image/);
  assert.deepEqual(objectiveOf({ targetFd: 0.5 }), { kind: 'target-fd', targetFd: 0.5 });
});

test('held-out seeds draw noise streams disjoint from the calibration seeds; the same seed is refused', () => {
  const cal = { seed: 1000, count: 256 };
  const held = { seed: 2000, count: 256 };
  const a = seedStreams(cal);
  const b = seedStreams(held);
  assert.equal(a.size, 256);
  assert.equal(b.size, 256);
  assert.equal([...a].filter((s) => b.has(s)).length, 0);
  checkDisjointSeeds(cal, held);
  assert.throws(
    () => checkDisjointSeeds(cal, cal),
    (e: unknown) => e instanceof TuneError && /share every noise stream/.test(e.message),
  );
});

test('the pick: lowest FD within a budget, fastest reaching a target, none when nothing meets it', () => {
  const ev = (label: string, fd: number, ms: number) => ({
    candidate: { solver: 'ddim', nfe: 4, spacing: 'trailing' as const, pfdiff: null, fr: none },
    label,
    figures: { seed: 0, count: 8, fd, fdStd: 0, msPerImage: ms },
    calls: { perRun: 4, full: 4, reuse: 0, skip: 0 },
    timesteps: [],
  });
  const evals = [ev('a', 1.0, 10), ev('b', 0.8, 20), ev('c', 0.5, 40)];
  assert.equal(pickBest(evals, { kind: 'budget', budgetMs: 25 })!.label, 'b');
  assert.equal(pickBest(evals, { kind: 'target-fd', targetFd: 0.9 })!.label, 'b');
  assert.equal(pickBest(evals, { kind: 'target-fd', targetFd: 2 })!.label, 'a');
  assert.equal(pickBest(evals, { kind: 'budget', budgetMs: 5 }), null);
});

const haveModels = existsSync('models/fashion-unet.onnx') && existsSync('models/fashion-classifier.onnx') && existsSync('models/fashion-test-stats.json');

describe('a tiny real tune on the bundled U-Net', { skip: !haveModels && 'the bundled models are not here' }, () => {
  let setup: BenchSetup;
  let result: TuneResult;
  const candidates: TuneCandidate[] = [
    { solver: 'ddim', nfe: 4, spacing: 'trailing', pfdiff: null, fr: none },
    { solver: 'ddim', nfe: 8, spacing: 'trailing', pfdiff: null, fr: none },
    { solver: 'dpmpp_2m', nfe: 4, spacing: 'trailing', pfdiff: null, fr: none },
    { solver: 'ddim', nfe: 4, spacing: 'trailing', pfdiff: '2_1', fr: none },
  ];
  const calibration = { seed: 1000, count: 16, batch: 8 };
  const heldOut = { seed: 2000, count: 16, batch: 8 };
  const budgetMs = 2000;

  before(async () => {
    setup = await onnxSetup({ modelPath: 'models/fashion-unet.onnx', threads: 1 });
    result = await tune({ setup, guidance: 0, budgetMs, candidates, calibration, heldOut, screenCount: 8, finalists: 3 });
  });
  after(async () => setup?.release());

  test('it screens every candidate, measures the finalists on the calibration set and picks one meeting its budget there', () => {
    assert.equal(result.screened.length, 4);
    assert.ok(result.screened.every((e) => e.figures.count === 8 && Number.isFinite(e.figures.fd) && e.figures.fd > 0));
    assert.ok(result.finalists.length >= 1 && result.finalists.length <= 3);
    assert.ok(result.finalists.every((e) => e.figures.count === 16 && e.figures.seed === 1000));
    // The pick meets the budget on calibration data and has the lowest FD of the finalists within it.
    assert.ok(result.pick.figures.msPerImage <= budgetMs);
    const within = result.finalists.filter((e) => e.figures.msPerImage <= budgetMs);
    assert.equal(result.pick.figures.fd, Math.min(...within.map((e) => e.figures.fd)));
    // PFDiff and plain DDIM at 4 NFE: 4 model calls per run; DDIM-8: 8.
    for (const e of result.screened) assert.equal(e.calls.perRun, e.candidate.nfe);
  });

  test('the held-out figure comes from seeds the tune never saw', () => {
    assert.equal(result.heldOut.figures.seed, 2000);
    assert.equal(result.heldOut.figures.count, 16);
    assert.deepEqual(result.heldOut.candidate, result.pick.candidate);
    const cal = seedStreams(calibration);
    assert.equal([...seedStreams(heldOut)].filter((s) => cal.has(s)).length, 0);
    assert.equal(result.config.heldOut.meetsObjective, result.heldOut.figures.msPerImage <= budgetMs);
  });

  test('a budget nothing meets and a target nothing reaches are refused with the fix', async () => {
    await assert.rejects(
      tune({ setup, guidance: 0, budgetMs: 1e-6, candidates: candidates.slice(0, 1), calibration: { seed: 1, count: 8, batch: 8 }, heldOut }),
      (e: unknown) =>
        e instanceof TuneError &&
        /no candidate meets the budget of 0\.000001 ms per image on the calibration set; the cheapest finalist costs .* ms per image: raise --budget-ms/.test(
          e.message,
        ),
    );
    await assert.rejects(
      tune({ setup, guidance: 0, targetFd: 1e-9, candidates: candidates.slice(0, 1), calibration: { seed: 1, count: 8, batch: 8 }, heldOut }),
      /raise --target-fd/,
    );
  });

  test('tune → tuned.json → sample --config: the same solver, grid and call counts (plain, PFDiff and feature reuse)', async () => {
    const variants: TuneCandidate[] = [
      result.pick.candidate,
      { solver: 'ddim', nfe: 6, spacing: 'trailing', pfdiff: '2_1', fr: none },
      {
        solver: 'dpmpp_2m',
        nfe: 10,
        spacing: 'karras',
        pfdiff: null,
        fr: { kind: 'interval', interval: 3, mixing: { temperature: 1, bias: 0.6 }, points: 'deepcache' },
      },
      { solver: 'ddim', nfe: 8, spacing: 'trailing', pfdiff: null, fr: { kind: 'interval', interval: 2, mixing: null, points: 'frdiff' } },
      {
        solver: 'ddim',
        nfe: 8,
        spacing: 'trailing',
        pfdiff: null,
        fr: { kind: 'interval', interval: 2, mixing: null, points: 'frdiff', forecast: { order: 1, time: 'lambda' } },
      },
    ];
    for (const [i, sampling] of variants.entries()) {
      const config: TunedConfig = { ...result.config, sampling, plan: candidatePlan(setup, sampling, 0) };
      const file = join(tmp, `tuned-${i}.json`);
      writeTunedConfig(file, config);
      const back = readTunedConfig(file);
      assert.deepEqual(back.sampling, sampling);
      const opts: SampleCommandOptions = {
        config: file,
        class: 'all',
        count: 2,
        seed: 0,
        batchSize: 64,
        threads: 1,
        out: join(tmp, `s-${i}.png`),
        quiet: true,
        progress: false,
        mixing: true, // commander's default of --no-mixing
      };
      const report = await runSampleCommand(opts);
      assert.equal(report.settings.solver, sampling.solver);
      assert.equal(report.settings.spacing, sampling.spacing);
      assert.deepEqual(report.timesteps, config.plan.timesteps);
      assert.equal(report.calls, config.plan.calls);
      assert.equal(report.settings.guidance, null); // guidance 0: the unconditional model, no CFG batch
      if (sampling.pfdiff) assert.equal(`${report.settings.pfdiff!.k}_${report.settings.pfdiff!.h}`, sampling.pfdiff);
      if (sampling.fr.kind === 'none') assert.equal(report.featureReuse, null);
      else {
        const k = report.featureReuse!;
        assert.deepEqual([k.fullCalls, k.reuseCalls, k.skippedSteps], [config.plan.full, config.plan.reuse, config.plan.skip]);
        const forecast = sampling.fr.kind === 'interval' ? sampling.fr.forecast : undefined;
        assert.deepEqual(k.forecast, forecast ?? null);
      }
    }
    // The FR plans themselves: DPM-Solver++ 2M-10 with a keyframe every 3rd call (4 keyframes); pure reuse every 2nd of 8.
    assert.deepEqual(
      [variants[3]!].map((v) => candidatePlan(setup, v, 0)).map((p) => [p.calls, p.full, p.reuse, p.skip]),
      [[8, 4, 4, 0]],
    );
    assert.equal(candidatePlan(setup, variants[2]!, 0).full, 4);
  });

  test('an adaptive feature-reuse config reads back and becomes the --fr-adaptive flags', () => {
    const fr = { kind: 'adaptive', threshold: 0.3, maxInterval: 4, points: 'frdiff', forecast: { order: 1 } } as const;
    const sampling: TuneCandidate = { solver: 'ddim', nfe: 10, spacing: 'trailing', pfdiff: null, fr };
    const file = join(tmp, 'tuned-adaptive.json');
    writeTunedConfig(file, { ...result.config, sampling, plan: candidatePlan(setup, { ...sampling, fr: none }, 0) });
    assert.deepEqual(readTunedConfig(file).sampling.fr, fr);
    const opts = applyTunedConfig({ config: file, mixing: true } as SampleCommandOptions, readTunedConfig(file), file);
    assert.deepEqual([opts.frAdaptive, opts.frInterval, opts.frPoints, opts.frForecast], [0.3, 4, 'frdiff', 1]);
    assert.throws(() => applyTunedConfig({ config: file, frForecast: 2 } as SampleCommandOptions, readTunedConfig(file), file), /drop --fr-forecast/);
  });

  test('sample --config refuses the flags it sets and a config tuned on another model', async () => {
    const file = join(tmp, 'tuned.json');
    writeTunedConfig(file, result.config);
    const r = await cli(['sample', '--config', file, '--nfe', '12', '--guidance', '3', '--out', join(tmp, 'x.png'), '-q']);
    assert.equal(r.code, 1);
    assert.match(r.err, /--config .*tuned\.json sets the solver, NFE, spacing, PFDiff, feature reuse and guidance: drop --nfe, --guidance/);
    const other = join(tmp, 'other.json');
    writeTunedConfig(other, { ...result.config, model: { name: 'fashion-unet', sha256: '0'.repeat(64) } });
    const r2 = await cli(['sample', '--config', other, '--out', join(tmp, 'y.png'), '-q']);
    assert.equal(r2.code, 1);
    assert.match(r2.err, /was tuned on fashion-unet \(sha256 000000000000…\), not on .*fashion-unet\.onnx: tune this model/);
  });
});

describe('a corrupted tuned config is refused with the field and the fix', () => {
  const good: TunedConfig = {
    format: TUNED_CONFIG_FORMAT,
    model: { name: 'fashion-unet', sha256: 'a'.repeat(64) },
    guidance: 2,
    sampling: { solver: 'ddim', nfe: 8, spacing: 'trailing', pfdiff: '2_1', fr: none },
    objective: { kind: 'budget', budgetMs: 10 },
    plan: { timesteps: [999, 499, -1], calls: 8, full: 8, reuse: 0, skip: 0 },
    calibration: { seed: 1000, count: 256, fd: 0.3, fdStd: 0.01, msPerImage: 9 },
    heldOut: { seed: 2000, count: 256, fd: 0.31, fdStd: 0.01, msPerImage: 9.5, meetsObjective: true },
    front: [{ label: 'ddim + PFDiff-2_1 @8', fd: 0.3, msPerImage: 9 }],
    machine: { cpu: 'x', cores: 2 },
    generatedAt: '2026-12-02T00:00:00Z',
  };
  const file = join(tmp, 'bad.json');
  // The file form: feature reuse as a grid declares it.
  const goodFile = { ...good, sampling: { ...good.sampling, fr: 'none' } };
  const cases: [string, (c: Record<string, Record<string, unknown>>) => unknown, RegExp][] = [
    ['format', (c) => ({ ...c, format: 'rediffuse-tuned-config/0' }), /format must be "rediffuse-tuned-config\/1"/],
    ['nfe', (c) => ({ ...c, sampling: { ...c.sampling, nfe: 'eight' } }), /sampling\.nfe must be an integer ≥ 1, got "eight"/],
    ['solver', (c) => ({ ...c, sampling: { ...c.sampling, solver: 'dimm' } }), /sampling\.solver names no solver/],
    ['spacing', (c) => ({ ...c, sampling: { ...c.sampling, spacing: 'sideways' } }), /sampling\.spacing must be one of leading, trailing/],
    ['pfdiff', (c) => ({ ...c, sampling: { ...c.sampling, pfdiff: '4_1' } }), /sampling\.pfdiff must be null or k_h/],
    ['fr', (c) => ({ ...c, sampling: { ...c.sampling, fr: { interval: 0 } } }), /sampling\.fr is not a feature-reuse setting/],
    ['plan sums', (c) => ({ ...c, plan: { ...c.plan, reuse: 2 } }), /calls by kind \(8 \+ 2 \+ 0\) must add up to plan\.calls \(8\)/],
    ['unknown key', (c) => ({ ...c, extra: 1 }), /the file\.extra is not a field of rediffuse-tuned-config\/1/],
    ['objective', (c) => ({ ...c, objective: { kind: 'budget', budgetMs: 3, targetFd: 1 } }), /objective must be \{kind: "budget", budgetMs\}/],
    ['sha', (c) => ({ ...c, model: { ...c.model, sha256: 'xyz' } }), /model\.sha256 must be 64 lower-case hex digits/],
  ];

  test('the validator names each broken field', () => {
    assert.deepEqual(validateTunedConfig(JSON.parse(JSON.stringify(goodFile))).sampling, good.sampling);
    for (const [what, corrupt, pattern] of cases) {
      assert.throws(
        () => validateTunedConfig(corrupt(JSON.parse(JSON.stringify(goodFile))), 'bad.json'),
        (e: Error) => pattern.test(e.message) && /write the file with rediffuse tune/.test(e.message),
        what,
      );
    }
  });

  test('sample --config exits 1 with the message, before any model loads', async () => {
    for (const [what, corrupt, pattern] of cases.slice(0, 4)) {
      writeFileSync(file, JSON.stringify(corrupt(JSON.parse(JSON.stringify(goodFile)))));
      const r = await cli(['sample', '--config', file, '--out', join(tmp, 'z.png'), '-q']);
      assert.equal(r.code, 1, what);
      assert.match(r.err, pattern, what);
      assert.ok(!existsSync(join(tmp, 'z.png')));
    }
    writeFileSync(file, '{ "format": ');
    const bad = await cli(['sample', '--config', file, '--out', join(tmp, 'z.png')]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /bad\.json is not valid JSON/);
    const missing = await cli(['sample', '--config', join(tmp, 'nope.json'), '--out', join(tmp, 'z.png')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /nope\.json does not exist; write it with rediffuse tune --out/);
  });

  test('tune refuses both or neither objective and the same held-out seed, before loading a model', async () => {
    const both = await cli(['tune', '--budget-ms', '5', '--target-fd', '1', '--out', join(tmp, 't.json')]);
    assert.equal(both.code, 1);
    assert.match(both.err, /not both: drop --budget-ms or --target-fd/);
    const neither = await cli(['tune', '--out', join(tmp, 't.json')]);
    assert.equal(neither.code, 1);
    assert.match(neither.err, /nothing to tune for/);
    const same = await cli(['tune', '--budget-ms', '5', '--seed', '7', '--held-out-seed', '7', '--out', join(tmp, 't.json')]);
    assert.equal(same.code, 1);
    assert.match(same.err, /--held-out-seed \(7\) equals --seed/);
    assert.ok(!existsSync(join(tmp, 't.json')));
    assert.equal(readFileSync(join(tmp, 'bad.json'), 'utf8').length > 0, true);
  });
});
