/**
 * The web page in a real browser (Debian's chromium, driven by playwright-core): it loads the
 * bundled models with onnxruntime-web from the page's own server, and a seed draws the same image
 * there as `rediffuse sample` draws on Node with onnxruntime-node. Sampling runs in a worker, so the
 * page stays responsive and streams progress; the form is checked with the library's own rules.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ortNode from 'onnxruntime-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runSampleCommand } from '../src/cli/commands/sample.js';
import { MAX_SEED } from '../src/core/index.js';
import { decodePng } from '../src/io/png.js';
import type { OrtModuleLike } from '../src/model/ort-types.js';
import { buildWeb } from '../web/build.js';
import { serveStatic } from '../web/serve.js';
import { FormFieldError, settingsFromFields, type FormFields } from '../web/form.js';
import { checkWebRunSettings, createWebSampler, parseWebCard, type WebProgress, type WebRunResult, type WebRunSettings } from '../web/web-sampler.js';
import { maxAbsDiff } from './helpers/arrays.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const skip = CHROMIUM ? false : 'no chromium here: apt-get install chromium (or set CHROMIUM_PATH)';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-web-test-'));
const nodeSampler = createWebSampler(ortNode as unknown as OrtModuleLike, async (name) => ({
  card: JSON.parse(readFileSync(join('models', `${name}.json`), 'utf8')),
  bytes: new Uint8Array(readFileSync(join('models', `${name}.onnx`))),
}));

const GUIDED: WebRunSettings = {
  model: 'fashion-unet',
  solver: 'ddim',
  nfe: 8,
  pfdiff: '2_1',
  fr: null,
  guidance: 2,
  classes: [0, 7],
  perRow: 3,
  seed: 5,
};

/** Every bad value the form or a script may give, with the message that must refuse it. */
const BAD_SETTINGS: { what: string; patch: Partial<WebRunSettings>; message: RegExp }[] = [
  { what: 'guidance −3', patch: { guidance: -3 }, message: /guidance scale must be a finite number ≥ 0 .*got -3: pass a scale ≥ 0/ },
  { what: 'seed −5', patch: { seed: -5 }, message: /seed must be an integer in 0\.\.4294967295 .*got -5: pick a seed in that range/ },
  { what: 'seed 2^32', patch: { seed: 2 ** 32 }, message: /seed must be an integer in 0\.\.4294967295 .*got 4294967296/ },
  { what: 'count 100', patch: { perRow: 100 }, message: /images per row must be an integer in 1\.\.16, got 100: pick 1 to 16/ },
  { what: 'count 0', patch: { perRow: 0 }, message: /images per row must be an integer in 1\.\.16, got 0/ },
  { what: 'NFE 0', patch: { nfe: 0 }, message: /nfe must be an integer ≥ 1, got 0: the budget is at least one model call/ },
  { what: 'NFE 1.5', patch: { nfe: 1.5 }, message: /nfe must be an integer ≥ 1, got 1\.5/ },
  {
    what: 'keyframe interval 0',
    patch: { pfdiff: null, fr: { interval: 0, mixing: true, points: 'frdiff' } },
    message: /keyframe interval must be an integer ≥ 1, got 0/,
  },
];

describe("the page's checks and progress, on Node", () => {
  const unet = parseWebCard(JSON.parse(readFileSync(join('models', 'fashion-unet.json'), 'utf8')), 'fashion-unet');

  test('the library refuses every bad setting, before a session exists', async () => {
    for (const bad of BAD_SETTINGS) await assert.rejects(checkWebRunSettings(unet, { ...GUIDED, ...bad.patch }), bad.message, bad.what);
    await checkWebRunSettings(unet, GUIDED);
    await checkWebRunSettings(unet, { ...GUIDED, seed: MAX_SEED, perRow: 16, guidance: 0 });
    await assert.rejects(nodeSampler({ ...GUIDED, seed: -5 }), /seed must be an integer in 0\.\.4294967295/);
  });

  test('a form field without a number is refused by name, not read as 0', () => {
    const good: FormFields = {
      model: 'fashion-unet',
      solver: 'ddim',
      nfe: '8',
      pfdiff: '2_1',
      fr: '1',
      points: 'frdiff',
      mixing: true,
      guidance: '2',
      class: '0',
      count: '3',
      seed: '5',
    };
    assert.deepEqual(settingsFromFields(good), { ...GUIDED, classes: [0] });
    for (const [field, label] of [
      ['nfe', 'model calls \\(NFE\\)'],
      ['guidance', 'guidance scale'],
      ['count', 'images per row'],
      ['seed', 'seed'],
    ] as const) {
      for (const text of ['', '  ', '1e999']) {
        assert.throws(
          () => settingsFromFields({ ...good, [field]: text }),
          (e: unknown) =>
            e instanceof FormFieldError &&
            e.field === field &&
            new RegExp(`^${label} is empty or not a number.*: enter a number, e\\.g\\. `).test(e.message),
          `${field} = "${text}"`,
        );
      }
    }
  });

  test('progress streams each step with calls by kind and a preview of the grid', async () => {
    const seen: { step: number; steps: number; calls: number; kinds: number; width: number; height: number }[] = [];
    const onProgress = (step: number, steps: number, p: WebProgress) => {
      const img = p.preview();
      assert.equal(img.data.length, img.width * img.height * 4);
      seen.push({ step, steps, calls: p.calls, kinds: p.fullCalls + p.reuseCalls + p.skippedCalls, width: img.width, height: img.height });
    };
    const s: WebRunSettings = {
      ...GUIDED,
      pfdiff: null,
      solver: 'dpmpp_2m',
      nfe: 9,
      fr: { interval: 3, mixing: true, points: 'frdiff' },
      classes: [1],
      perRow: 2,
    };
    const r = await nodeSampler(s, onProgress);
    assert.equal(r.calls, 9);
    assert.deepEqual(
      seen.map((p) => p.step),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.ok(seen.every((p) => p.steps === 9 && p.kinds === p.calls && p.width === r.rgba.width && p.height === r.rgba.height));
    assert.deepEqual(
      seen.map((p) => p.calls),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
      'one call per dpmpp_2m step',
    );
  });
});

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
    await runSampleCommand({
      solver: 'ddim',
      nfe: 8,
      pfdiff: { k: 2, h: 1 },
      guidance: 2,
      class: '0,7',
      count: 3,
      seed: 5,
      out: png,
      quiet: true,
      batchSize: 64,
    });
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
    await assert.rejects(
      inPage({ ...GUIDED, model: 'fashion-dit', fr: { interval: 2, mixing: false, points: 'deepcache' } }),
      /needs a U-Net.*frdiff or residual/,
    );
  });
});

describe('web page in chromium: responsiveness and the form', { skip }, () => {
  let browser: Browser;
  let page: Page;
  let close: () => void;
  const dir = join(tmp, 'dist-form');

  before(async () => {
    await buildWeb(dir);
    const { server, url } = await serveStatic(dir);
    close = () => server.close();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.rediffuse?.ready === true && document.getElementById('status')?.textContent === 'ready', undefined, {
      timeout: 30_000,
    });
  });
  after(async () => {
    await browser?.close();
    close?.();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Fill the form with a good run: one class, 4 images, guided (8 per call), dpmpp_2m with `nfe` calls. */
  async function goodForm(nfe = 10): Promise<void> {
    await page.selectOption('#model', 'fashion-unet');
    await page.selectOption('#solver', 'dpmpp_2m');
    await page.fill('#nfe', String(nfe));
    await page.selectOption('#pfdiff', '');
    await page.selectOption('#fr', '1');
    await page.fill('#guidance', '2');
    await page.selectOption('#class', '7');
    await page.fill('#count', '4');
    await page.fill('#seed', '3');
  }

  /** Click Sample and watch the main thread until the report: timer gaps, long tasks, status texts. */
  function probeRun() {
    return page.evaluate(async () => {
      const status = document.getElementById('status')!;
      // A 10 ms timer: the longest gap between its ticks is the longest the page could not react.
      let last = performance.now();
      let worstGap = 0;
      let tickCount = 0;
      const ticks = setInterval(() => {
        const now = performance.now();
        worstGap = Math.max(worstGap, now - last);
        last = now;
        tickCount++;
      }, 10);
      // Long tasks (≥ 50 ms) are the main thread's own busy stretches, without the time the OS gave other processes.
      let worstTask = 0;
      const tasks = new PerformanceObserver((l) => l.getEntries().forEach((e) => (worstTask = Math.max(worstTask, e.duration))));
      tasks.observe({ type: 'longtask' });
      const seen: { text: string; ticks: number }[] = [];
      const observer = new MutationObserver(() => seen.push({ text: status.textContent ?? '', ticks: tickCount }));
      observer.observe(status, { childList: true, characterData: true, subtree: true });
      const previews = window.rediffuse.previews;
      const start = performance.now();
      document.getElementById('go')!.click();
      await new Promise<void>((done) => {
        const poll = setInterval(() => {
          if (/wall time|^error/.test(status.textContent ?? '')) {
            clearInterval(poll);
            done();
          }
        }, 10);
      });
      const wall = performance.now() - start;
      clearInterval(ticks);
      tasks.disconnect();
      observer.disconnect();
      return { worstGap, worstTask, wall, seen, previews: window.rediffuse.previews - previews, final: status.textContent ?? '' };
    });
  }

  test('the page stays responsive during a run and shows "step i/n" and previews before it ends', async (t) => {
    // A run of several seconds on this machine: the call budget grows until the run lasts 2 s.
    let nfe = 10;
    let probe = await goodForm(nfe).then(probeRun);
    while (probe.wall < 2000 && nfe < 400) {
      nfe *= 4;
      probe = await goodForm(nfe).then(probeRun);
    }
    t.diagnostic(
      `run of ${nfe} calls, ${(probe.wall / 1000).toFixed(1)} s: longest timer gap ${probe.worstGap.toFixed(0)} ms, longest main-thread task ` +
        `${probe.worstTask.toFixed(0)} ms; ${probe.previews} previews drawn`,
    );
    assert.match(probe.final, new RegExp(`^${nfe} model calls; .* s wall time`));
    assert.ok(probe.wall >= 2000, `the run took ${probe.wall.toFixed(0)} ms, too short to measure responsiveness`);
    // Sampling on the main thread made the whole run one task (a 4.5 s gap); the bound leaves room for a loaded test machine.
    assert.ok(probe.worstTask < 200, `the main thread was busy for ${probe.worstTask.toFixed(0)} ms at a stretch during the run`);
    assert.ok(
      probe.worstGap < Math.min(1000, probe.wall / 4),
      `the page did not react for ${probe.worstGap.toFixed(0)} ms during a ${probe.wall.toFixed(0)} ms run`,
    );
    const texts = probe.seen.map((s) => s.text);
    const steps = texts.filter((s) => new RegExp(`^step \\d+/${nfe} · \\d+ model calls$`).test(s));
    assert.ok(steps.length >= 5, `only ${steps.length} "step i/${nfe}" updates: ${JSON.stringify(texts)}`);
    assert.ok(steps.includes(`step 1/${nfe} · 1 model calls`) && steps.includes(`step ${nfe}/${nfe} · ${nfe} model calls`), JSON.stringify(steps));
    // The page's timers ran between "step 1/n" and the report: the status was on screen, not overwritten in one busy stretch.
    const first = probe.seen.find((s) => s.text.startsWith(`step 1/${nfe}`))!;
    const done = probe.seen.at(-1)!;
    assert.equal(done.text, probe.final);
    t.diagnostic(`timer ticks between "step 1/${nfe}" and the report: ${done.ticks - first.ticks}`);
    assert.ok(done.ticks - first.ticks >= 10, `only ${done.ticks - first.ticks} timer ticks between step 1 and the end`);
    assert.ok(probe.previews >= 2, `${probe.previews} previews drawn`);
  });

  test('every bad form value is refused next to the form, with its fix, and starts no run', async () => {
    const cases: [string, string, RegExp][] = [
      ['#guidance', '-3', /guidance scale must be a finite number ≥ 0 .*got -3: pass a scale ≥ 0/],
      ['#seed', '-5', /seed must be an integer in 0\.\.4294967295 .*got -5: pick a seed in that range/],
      ['#count', '100', /images per row must be an integer in 1\.\.16, got 100: pick 1 to 16/],
      ['#nfe', '', /^model calls \(NFE\) is empty or not a number: enter a number, e\.g\. 10$/],
      ['#nfe', '0', /nfe must be an integer ≥ 1, got 0/],
      ['#seed', '', /^seed is empty or not a number: enter a number, e\.g\. 0$/],
    ];
    for (const [field, value, message] of cases) {
      await goodForm();
      await page.waitForFunction(() => document.getElementById('form-error')?.textContent === '');
      const before = await page.textContent('#status');
      await page.fill(field, value);
      await page.click('#go');
      await page.waitForFunction(() => (document.getElementById('form-error')?.textContent ?? '') !== '');
      assert.match((await page.textContent('#form-error'))!, message, `${field} = "${value}"`);
      if (value === '') assert.equal(await page.getAttribute(field, 'aria-invalid'), 'true');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await page.textContent('#status'), before, `${field} = "${value}" started a run`);
    }
    await goodForm();
    await page.waitForFunction(() => document.getElementById('form-error')?.textContent === '');
    for (const bad of BAD_SETTINGS) {
      await assert.rejects(
        page.evaluate((s) => window.rediffuse.run(s), { ...GUIDED, ...bad.patch }),
        bad.message,
        bad.what,
      );
    }
  });
});
