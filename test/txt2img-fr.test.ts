/**
 * `rediffuse txt2img` with feature reuse, through the same --fr-* flag parsing as `sample`: interval 2
 * over 10 DDIM calls on the tiny SD pipeline fixture is 5 full + 3 reuse calls and 2 mixed-in skips, and the image stays
 * close to the full run's; a stray --fr-points or a policy for another call count is refused before
 * sampling; `sample --pipeline` points at txt2img.
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runTxt2Img, type Txt2ImgOptions } from '../src/cli/commands/txt2img.js';
import { runSampleCommand, type SampleCommandOptions } from '../src/cli/commands/sample.js';
import { decodePng } from '../src/io/png.js';
import { fixtureRequest } from './helpers/txt2img.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';
const base = (out: string): Txt2ImgOptions => fixtureRequest(out, { solver: 'ddim', nfe: 10 });

describe('rediffuse txt2img --fr-*', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-txt2img-fr-'));
  it('--fr-interval 2: 5 full + 3 reuse + 2 skipped of 10, the image within 16 levels (mean ≤ 1.5) of the full run', async () => {
    const full = await runTxt2Img(base(join(tmp, 'full.png')));
    assert.equal(full.calls, 10);
    assert.equal(full.featureReuse, null);
    const fr = await runTxt2Img({ ...base(join(tmp, 'fr.png')), frInterval: 2 });
    assert.equal(fr.calls, 10);
    const r = fr.featureReuse!;
    assert.deepEqual(r.policy.keyframes, [0, 2, 4, 6, 8]);
    assert.equal(r.policy.calls, 10);
    assert.equal(r.policy.source, 'uniform interval 2');
    // score mixing (FRDiff §4.2) turns 2 of the 5 non-keyframe calls into skips (no network call)
    assert.deepEqual([r.fullCalls, r.reuseCalls, r.skippedSteps], [5, 3, 2]);
    assert.deepEqual(r.planned, { keyframe: 5, reuse: 3, skip: 2 });
    assert.equal(r.points.length, 12);
    assert.ok(r.reuseMacsRatio > 0 && r.reuseMacsRatio < 1, `reuse MACs ratio ${r.reuseMacsRatio}`);
    const a = decodePng(new Uint8Array(readFileSync(join(tmp, 'full.png'))));
    const b = decodePng(new Uint8Array(readFileSync(join(tmp, 'fr.png'))));
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) {
      const d = Math.abs(a.data[i]! - b.data[i]!);
      worst = Math.max(worst, d);
      sum += d;
    }
    const mean = sum / a.data.length;
    assert.ok(worst > 0, 'feature reuse changed nothing: the reuse calls did not run');
    assert.ok(worst <= 16 && mean <= 1.5, `max ${worst}, mean ${mean.toFixed(3)} levels`);
  });
  it('--no-mixing: every non-keyframe call is a reuse call (5 + 5, none skipped)', async () => {
    const fr = await runTxt2Img({ ...base(join(tmp, 'nomix.png')), frInterval: 2, mixing: false });
    assert.deepEqual([fr.featureReuse!.fullCalls, fr.featureReuse!.reuseCalls, fr.featureReuse!.skippedSteps], [5, 5, 0]);
    assert.equal(fr.featureReuse!.policy.mixing, null);
  });
  it('refuses stray flags and a policy for another call count before any UNet call', async () => {
    const out = join(tmp, 'x.png');
    await assert.rejects(runTxt2Img({ ...base(out), frPoints: 'frdiff' }), /--fr-points applies to feature reuse only: add --fr-interval M/);
    await assert.rejects(runTxt2Img({ ...base(out), frPolicy: join(tmp, 'nope.json') }), /does not exist; pass --fr-policy/);
    const policy = join(tmp, 'p.json');
    writeFileSync(policy, JSON.stringify({ format: 'rediffuse-reuse-policy/1', calls: 6, keyframes: [0, 3], mixing: null, points: 'frdiff' }));
    await assert.rejects(
      runTxt2Img({ ...base(out), frPolicy: policy }),
      /p\.json: invalid reuse policy: it was made for 6 model calls but this run makes 10/,
    );
    assert.equal(existsSync(out), false);
  });
  it('sample --pipeline points at txt2img', async () => {
    await assert.rejects(
      runSampleCommand({ pipeline: DIR, prompt: 'a cat', out: join(tmp, 's.png') } as unknown as SampleCommandOptions),
      /rediffuse txt2img --pipeline DIR --prompt/,
    );
  });
});
