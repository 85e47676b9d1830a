/**
 * The rediffuse web page: samples the bundled Fashion-MNIST models in the browser with
 * onnxruntime-web (WebAssembly) through {@link createWebSampler}. The form only fills the settings;
 * `window.rediffuse.run(settings)` is the same entry point, for scripts and the browser test.
 * @packageDocumentation
 */
import * as ort from 'onnxruntime-web/wasm';
import { listSolvers } from '../src/core/index.js';
import type { OrtModuleLike } from '../src/model/index.js';
import { createWebSampler, type WebRunResult, type WebRunSettings, type WebSampler } from './web-sampler.js';

// The wasm binary and its loader are served next to the page (copied by web/build.ts): no CDN.
ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url} (HTTP ${r.status}); build the page with npm run build:web and serve web/dist`);
  return r;
}

const run: WebSampler = createWebSampler(ort as unknown as OrtModuleLike, async (name) => ({
  card: await (await fetchOk(`models/${name}.json`)).json(),
  bytes: new Uint8Array(await (await fetchOk(`models/${name}.onnx`)).arrayBuffer()),
}));

// ---- the form --------------------------------------------------------------------------------

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function settingsFromForm(): WebRunSettings {
  const cls = $<HTMLSelectElement>('class').value;
  const frInterval = Number($<HTMLSelectElement>('fr').value);
  const perRow = Number($<HTMLInputElement>('count').value);
  return {
    model: $<HTMLSelectElement>('model').value,
    solver: $<HTMLSelectElement>('solver').value,
    nfe: Number($<HTMLInputElement>('nfe').value),
    pfdiff: $<HTMLSelectElement>('pfdiff').value || null,
    fr: frInterval > 1 ? { interval: frInterval, mixing: $<HTMLInputElement>('mixing').checked, points: $<HTMLSelectElement>('points').value } : null,
    guidance: Number($<HTMLInputElement>('guidance').value),
    classes: cls === 'all' ? Array.from({ length: 10 }, (_, k) => k) : cls === 'none' ? [] : [Number(cls)],
    perRow,
    seed: Number($<HTMLInputElement>('seed').value),
  };
}

function draw(res: WebRunResult): void {
  const canvas = $<HTMLCanvasElement>('out');
  canvas.width = res.rgba.width;
  canvas.height = res.rgba.height;
  const img = new ImageData(new Uint8ClampedArray(res.rgba.data), res.rgba.width, res.rgba.height);
  canvas.getContext('2d')!.putImageData(img, 0, 0);
}

function report(res: WebRunResult): string {
  const kinds = res.reuseCalls + res.skippedCalls > 0 ? ` (${res.fullCalls} full, ${res.reuseCalls} reuse, ${res.skippedCalls} skipped; cache ${(res.cacheBytes / 1024).toFixed(0)} KiB)` : '';
  return `${res.calls} model calls${kinds}; ${(res.wallMs / 1000).toFixed(2)} s wall time, ${(res.callMs / res.calls || 0).toFixed(1)} ms per call`;
}

async function onSample(): Promise<void> {
  const button = $<HTMLButtonElement>('go');
  const status = $<HTMLElement>('status');
  button.disabled = true;
  try {
    const res = await run(settingsFromForm(), (i, n) => (status.textContent = `step ${i}/${n}`));
    draw(res);
    status.textContent = report(res);
  } catch (err) {
    status.textContent = `error: ${(err as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

function initForm(): void {
  const solver = $<HTMLSelectElement>('solver');
  for (const s of listSolvers()) solver.add(new Option(s.name, s.name, s.name === 'dpmpp_2m', s.name === 'dpmpp_2m'));
  $<HTMLButtonElement>('go').addEventListener('click', () => void onSample());
  $<HTMLElement>('status').textContent = 'ready';
}

declare global {
  interface Window {
    rediffuse: { run: typeof run; ready: boolean };
  }
}
window.rediffuse = { run, ready: true };
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', initForm);
else initForm();
