/**
 * `rediffuse txt2img` on the tiny SD pipeline fixture: the PNG it writes from initial_latents.npy is
 * diffusers' image of reference.json (DDIM and PNDM, 4 steps, CFG 7.5) to within one 8-bit level; a bad
 * --out or folder is refused before anything loads.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runTxt2Img, type Txt2ImgOptions } from '../src/cli/commands/txt2img.js';
import { decodePng } from '../src/io/png.js';
import { fixtureRequest } from './helpers/txt2img.js';

const DIR = 'test/fixtures/tiny-sd-pipeline';
const ref = JSON.parse(readFileSync(`${DIR}/reference.json`, 'utf8')) as {
  runs: Record<'ddim' | 'pndm', { decoded_image: { values: number[] }; timesteps: number[] }>;
};
const base = (out: string): Txt2ImgOptions => fixtureRequest(out, { steps: 4, initialLatents: `${DIR}/initial_latents.npy` });

describe('rediffuse txt2img', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-txt2img-'));
  for (const [run, solver] of [
    ['ddim', 'ddim'],
    ['pndm', undefined],
  ] as const) {
    it(`${run}: writes the reference image (64×64 RGB, every channel within one level)`, async () => {
      const out = join(tmp, `${run}.png`);
      const report = await runTxt2Img({ ...base(out), ...(solver ? { solver } : {}) });
      assert.equal(report.calls, ref.runs[run].timesteps.length);
      assert.deepEqual(report.size, [64, 64]);
      const png = decodePng(new Uint8Array(readFileSync(out)));
      assert.deepEqual([png.width, png.height], [64, 64]);
      const v = ref.runs[run].decoded_image.values;
      const plane = 64 * 64;
      let worst = 0;
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          const want = Math.round(Math.min(1, Math.max(0, v[c * plane + p]! / 2 + 0.5)) * 255);
          worst = Math.max(worst, Math.abs(png.data[p * 4 + c]! - want));
        }
        assert.equal(png.data[p * 4 + 3], 255);
      }
      assert.ok(worst <= 1, `max level difference ${worst}`);
    });
  }
  it('--image: image to image from the PNG it wrote (strength 0.5 of 4 DDIM steps: 2 UNet calls)', async () => {
    const out = join(tmp, 'i2i.png');
    const report = await runTxt2Img({ ...base(out), initialLatents: undefined, solver: 'ddim', image: join(tmp, 'ddim.png'), strength: 0.5 });
    assert.equal(report.calls, 2);
    assert.deepEqual(report.timesteps, [251, 1, 0]);
    const png = decodePng(new Uint8Array(readFileSync(out)));
    assert.deepEqual([png.width, png.height], [64, 64]);
    await assert.rejects(runTxt2Img({ ...base(out), initialLatents: undefined, strength: 0.5 }), /--strength needs --image/);
  });
  it('refuses a folder as --out and a missing pipeline folder before loading', async () => {
    await assert.rejects(runTxt2Img(base(tmp + '/')), /names a folder/);
    await assert.rejects(runTxt2Img({ ...base(join(tmp, 'x.png')), pipeline: join(tmp, 'nope') }), /does not exist or is not a folder/);
    assert.equal(existsSync(join(tmp, 'x.png')), false);
    await assert.rejects(runTxt2Img({ ...base(join(tmp, 'x.png')), initialLatents: `${DIR}/model_index.json` }), /--initial-latents: .*not a NumPy/);
  });
});
