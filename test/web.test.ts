/**
 * The web page in a real browser (Debian's chromium, driven by playwright-core): it loads the
 * bundled models with onnxruntime-web from the page's own server, and a seed draws the same image
 * there as `rediffuse sample` draws on Node with onnxruntime-node.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ortNode from 'onnxruntime-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runSampleCommand } from '../src/cli/commands/sample.js';
import { decodePng } from '../src/io/png.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { buildWeb } from '../web/build.js';
import { serveStatic } from '../web/serve.js';
import { createWebSampler, type WebRunResult, type WebRunSettings } from '../web/web-sampler.js';
import { maxAbsDiff } from './helpers/arrays.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const skip = CHROMIUM ? false : 'no chromium here: apt-get install chromium (or set CHROMIUM_PATH)';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-web-test-'));
const nodeSampler = createWebSampler(ortNode as unknown as OrtModuleLike, async (name) => ({
  card: JSON.parse(readFileSync(join('models', `${name}.json`), 'utf8')),
  bytes: new Uint8Array(readFileSync(join('models', `${name}.onnx`))),
}));

const GUIDED: WebRunSettings = { model: 'fashion-unet', solver: 'ddim', nfe: 8, pfdiff: '2_1', fr: null, guidance: 2, classes: [0, 7], perRow: 3, seed: 5 };

describe('web page in chromium', { skip }, () => {
  let browser: Browser;
  let page: Page;
  let close: () => void;
  const inPage = (s: WebRunSettings) => page.evaluate((settings) => window.rediffuse.run(settings), s) as Promise<WebRunResult>;

  before(async () => {
    const dir = await buildWeb(join(tmp, 'dist'));
    const { server, url } = await serveStatic(dir);
    close = () => server.close();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => window.rediffuse?.ready === true, undefined, { timeout: 30_000 });
    assert.deepEqual(errors, []);
  });
  after(async () => {
    await browser?.close();
    close?.();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a seed draws the same image in the browser (twice) and in rediffuse sample on Node', async (t) => {
    const a = await inPage(GUIDED);
    const b = await inPage(GUIDED);
    assert.deepEqual(b.samples, a.samples, 'two runs in the browser differ');
    assert.equal(a.calls, 8);
    assert.equal(a.samples.length, 6 * 28 * 28);

    const n = await nodeSampler(GUIDED);
    const diff = maxAbsDiff(a.samples, n.samples);
    assert.ok(diff < 2e-3, `browser vs Node samples differ by up to ${diff}`);
    t.diagnostic(`onnxruntime-web vs onnxruntime-node: samples differ by at most ${diff.toExponential(2)}`);

    const png = join(tmp, 'node.png');
    await runSampleCommand({ solver: 'ddim', nfe: 8, pfdiff: { k: 2, h: 1 }, guidance: 2, class: '0,7', count: 3, seed: 5, out: png, quiet: true, batchSize: 64 });
    const cli = decodePng(new Uint8Array(readFileSync(png)));
    assert.equal(a.rgba.width, cli.width);
    assert.equal(a.rgba.height, cli.height);
    let differing = 0;
    let worst = 0;
    for (let i = 0; i < cli.data.length; i++) {
      const d = Math.abs(cli.data[i]! - a.rgba.data[i]!);
      if (d > 0) differing++;
      worst = Math.max(worst, d);
    }
    t.diagnostic(`PNG bytes differing from the CLI's: ${differing} of ${cli.data.length} (at most ${worst} level)`);
    assert.ok(worst <= 1, `a pixel differs by ${worst} levels between the browser and the CLI's PNG`);
    assert.ok(differing <= cli.data.length * 1e-3, `${differing} of ${cli.data.length} bytes differ`);
  });

  test('feature reuse runs on graphs cut in the browser, with the same calls and samples as on Node', async () => {
    const s: WebRunSettings = { ...GUIDED, pfdiff: null, nfe: 12, fr: { interval: 3, mixing: true, points: 'frdiff' }, classes: [3], perRow: 4 };
    const a = await inPage(s);
    const n = await nodeSampler(s);
    assert.equal(a.calls, 12);
    assert.equal(a.fullCalls, 4);
    assert.equal(a.fullCalls + a.reuseCalls + a.skippedCalls, 12);
    assert.deepEqual([a.fullCalls, a.reuseCalls, a.skippedCalls], [n.fullCalls, n.reuseCalls, n.skippedCalls]);
    assert.ok(a.cacheBytes > 0);
    assert.ok(maxAbsDiff(a.samples, n.samples) < 2e-3);
  });

  test('bad settings reject with a message that names the fix', async () => {
    await assert.rejects(inPage({ ...GUIDED, solver: 'dpmpp_9m' }), /unknown solver.*dpmpp_2m/i);
    await assert.rejects(inPage({ ...GUIDED, model: 'fashion-dit', fr: { interval: 2, mixing: false, points: 'deepcache' } }), /needs a U-Net.*frdiff or residual/);
  });
});
