/**
 * `rediffuse autofr --pipeline DIR --prompt …`: a tiny Auto-FR search (4 evaluations) on the SD
 * fixture's UNet with the prompt's embeddings writes a policy over the run's 10 DDIM calls that
 * `txt2img --fr-policy` runs with exactly its keyframe/reuse/skip counts; bad combinations are refused
 * before the pipeline loads.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runAutofrCommand, type AutofrCommandOptions } from '../src/cli/commands/autofr.js';
import { runTxt2Img } from '../src/cli/commands/txt2img.js';
import { countCalls, type ReusePolicy } from '../src/core/index.js';
import { fixtureRequest } from './helpers/txt2img.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';

describe('rediffuse autofr --pipeline', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-sd-autofr-'));
  const opts = (out: string): AutofrCommandOptions => ({
    pipeline: DIR,
    prompt: 'a photo of a cat',
    solver: 'ddim',
    steps: 10,
    guidance: 7.5,
    budget: 'interval:2',
    budgetKind: 'cost',
    samples: 1,
    seed: 1,
    heldoutSeed: 1001,
    points: 'frdiff,deepcache',
    biases: '0.5,none',
    maxEvals: 4,
    timeLimit: 60,
    repeats: 1,
    out,
    quiet: true,
  });
  it('searches a policy on the UNet (cost ≤ budget, 10 calls) that txt2img --fr-policy runs as planned', async () => {
    const out = join(tmp, 'policy.json');
    const origWrite = process.stdout.write.bind(process.stdout);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    let report;
    try {
      report = await runAutofrCommand(opts(out));
    } finally {
      process.stdout.write = origWrite;
    }
    assert.ok(report.evaluations >= 1 && report.evaluations <= 4, `evaluations ${report.evaluations}`);
    const policy = JSON.parse(readFileSync(out, 'utf8')) as ReusePolicy;
    assert.equal(policy.calls, 10);
    assert.equal(policy.keyframes[0], 0);
    assert.equal(policy.meta?.['model'], DIR);
    assert.equal(policy.meta?.['prompt'], 'a photo of a cat');
    assert.deepEqual(policy.meta?.['size'], [64, 64]);
    assert.equal(policy.meta?.['guidance'], 7.5);
    assert.ok((report.policy.meta!['cost'] as number) <= report.budget + 1e-9, `cost ${report.policy.meta!['cost']} > budget ${report.budget}`);
    // the cost budget of interval 2 with default mixing: (5 keyframes + 3 reuse calls at the graph's MAC ratio + 2 skips) / 10
    const ratio = report.measured['frdiff']!.macsRatio;
    assert.ok(Math.abs(ratio - 0.376) < 1e-3, `frdiff MAC ratio ${ratio}`);
    assert.ok(Math.abs(report.budget - (5 + 3 * ratio) / 10) < 1e-9, `budget ${report.budget} vs ratio ${ratio}`);
    for (const row of report.comparison) assert.ok(Number.isFinite(row.heldoutMse) && row.heldoutMse >= 0);
    const planned = countCalls(policy);
    const run = await runTxt2Img(fixtureRequest(join(tmp, 'fr.png'), { solver: 'ddim', steps: 10, frPolicy: out }));
    const fr = run.featureReuse!;
    assert.deepEqual(fr.policy.keyframes, policy.keyframes);
    assert.deepEqual([fr.fullCalls, fr.reuseCalls, fr.skippedSteps], [planned.keyframe, planned.reuse, planned.skip]);
    assert.equal(fr.fullCalls + fr.reuseCalls + fr.skippedSteps, 10);
  });
  it('refuses --pipeline without --prompt, and --prompt without --pipeline', async () => {
    const out = join(tmp, 'x.json');
    await assert.rejects(runAutofrCommand({ ...opts(out), prompt: undefined }), /--pipeline needs --prompt/);
    await assert.rejects(runAutofrCommand({ ...opts(out), pipeline: undefined }), /--prompt\/--negative-prompt need --pipeline DIR/);
    assert.equal(existsSync(out), false);
  });
});
