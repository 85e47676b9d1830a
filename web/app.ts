/**
 * The rediffuse web page: samples the bundled Fashion-MNIST models in the browser with
 * onnxruntime-web (WebAssembly) in a worker (web/worker.ts), so the page stays responsive and shows
 * each step's progress and x̂0 preview. The form is checked with the library's own rules before a run
 * starts; `window.rediffuse.run(settings)` is the same entry point, for scripts and the browser test.
 * @packageDocumentation
 */
import { listSolvers, MAX_SEED } from '../src/core/index.js';
import type { ModelCard } from '../src/model/index.js';
import { FormFieldError, settingsFromFields, type FormFields } from './form.js';
import { checkWebRunSettings, MAX_PER_ROW, parseWebCard, type WebRunResult, type WebRunSettings } from './web-sampler.js';
import type { WorkerMessage, WorkerProgress, WorkerRequest, WorkerResult } from './worker-protocol.js';

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url} (HTTP ${r.status}); build the page with npm run build:web and serve web/dist`);
  return r;
}

// ---- checks, on the main thread (a card is a small JSON file) -----------------------------------

const cards = new Map<string, Promise<ModelCard>>();
function cardFor(name: string): Promise<ModelCard> {
  let c = cards.get(name);
  if (!c) {
    c = fetchOk(`models/${name}.json`).then(async (r) => parseWebCard(await r.json(), name));
    c.catch(() => cards.delete(name));
    cards.set(name, c);
  }
  return c;
}

/** Reject with the library's message when `s` is not a run it accepts. */
async function check(s: WebRunSettings): Promise<void> {
  await checkWebRunSettings(await cardFor(s.model), s);
}

// ---- the worker ------------------------------------------------------------------------------

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const pending = new Map<number, { resolve: (r: WorkerResult) => void; reject: (e: Error) => void; onProgress: (p: WorkerProgress) => void }>();
let nextId = 1;
worker.onmessage = (ev: MessageEvent<WorkerMessage>) => {
  const msg = ev.data;
  const p = pending.get(msg.id);
  if (!p) return;
  if (msg.type === 'progress') {
    p.onProgress(msg);
    return;
  }
  pending.delete(msg.id);
  if (msg.type === 'result') p.resolve(msg.result);
  else p.reject(new Error(msg.message));
};
worker.onerror = (ev) => {
  const err = new Error(`the sampling worker failed: ${ev.message || 'it could not load worker.js'}; rebuild with npm run build:web`);
  for (const p of pending.values()) p.reject(err);
  pending.clear();
};

function inWorker(settings: WebRunSettings, onProgress: (p: WorkerProgress) => void): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ id, type: 'run', settings } satisfies WorkerRequest);
  });
}

// ---- the page --------------------------------------------------------------------------------

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let previews = 0;

function draw(img: { width: number; height: number; data: ArrayLike<number> }): void {
  const canvas = $<HTMLCanvasElement>('out');
  if (canvas.width !== img.width || canvas.height !== img.height) {
    canvas.width = img.width;
    canvas.height = img.height;
  }
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
}

function callKinds(c: { fullCalls: number; reuseCalls: number; skippedCalls: number }): string {
  return c.reuseCalls + c.skippedCalls > 0 ? ` (${c.fullCalls} full, ${c.reuseCalls} reuse, ${c.skippedCalls} skipped)` : '';
}

function report(res: WorkerResult): string {
  const kinds = res.reuseCalls + res.skippedCalls > 0 ? `${callKinds(res).slice(0, -1)}; cache ${(res.cacheBytes / 1024).toFixed(0)} KiB)` : '';
  return `${res.calls} model calls${kinds}; ${(res.wallMs / 1000).toFixed(2)} s wall time, ${(res.callMs / res.calls || 0).toFixed(1)} ms per call`;
}

/** Run checked settings in the worker, streaming "step i/n" and previews to the page. */
async function execute(s: WebRunSettings): Promise<WorkerResult> {
  const button = $<HTMLButtonElement>('go');
  const status = $<HTMLElement>('status');
  button.disabled = true;
  status.textContent = 'loading model…';
  try {
    const res = await inWorker(s, (p) => {
      status.textContent = `step ${p.step}/${p.steps} · ${p.calls} model calls${callKinds(p)}`;
      if (p.preview) {
        draw(p.preview);
        previews++;
      }
    });
    draw(res.rgba);
    status.textContent = report(res);
    return res;
  } catch (err) {
    status.textContent = `error: ${(err as Error).message}`;
    throw err;
  } finally {
    button.disabled = false;
  }
}

/** The scripting entry point: the library's checks, then a run in the worker, drawn on the page. */
async function run(s: WebRunSettings): Promise<WebRunResult> {
  await check(s);
  const r = await execute(s);
  return { ...r, samples: Array.from(r.samples), rgba: { ...r.rgba, data: Array.from(r.rgba.data) } };
}

function readFields(): FormFields {
  const value = (id: keyof FormFields) => $<HTMLInputElement | HTMLSelectElement>(id).value;
  return {
    model: value('model'),
    solver: value('solver'),
    nfe: value('nfe'),
    pfdiff: value('pfdiff'),
    fr: value('fr'),
    points: value('points'),
    mixing: $<HTMLInputElement>('mixing').checked,
    guidance: value('guidance'),
    class: value('class'),
    count: value('count'),
    seed: value('seed'),
  };
}

let checking = 0;
/** The form's settings, or null after showing why they are refused next to the form. */
async function checkedForm(): Promise<WebRunSettings | null> {
  const token = ++checking;
  const shown = $<HTMLElement>('form-error');
  let settings: WebRunSettings | null = null;
  let error: { message: string; field?: string } | null = null;
  try {
    settings = settingsFromFields(readFields());
    await check(settings);
  } catch (err) {
    error = { message: (err as Error).message, ...(err instanceof FormFieldError ? { field: err.field } : {}) };
  }
  if (token !== checking) return null; // a newer edit is being checked
  for (const el of document.querySelectorAll('#form [aria-invalid]')) el.removeAttribute('aria-invalid');
  shown.textContent = error ? error.message : '';
  if (error?.field) $(error.field).setAttribute('aria-invalid', 'true');
  return error ? null : settings;
}

async function onSample(): Promise<void> {
  const settings = await checkedForm();
  if (!settings) return;
  await execute(settings).catch(() => undefined); // the status line shows the error
}

function initForm(): void {
  const solver = $<HTMLSelectElement>('solver');
  for (const s of listSolvers()) solver.add(new Option(s.name, s.name, s.name === 'dpmpp_2m', s.name === 'dpmpp_2m'));
  $<HTMLInputElement>('count').max = String(MAX_PER_ROW);
  $<HTMLInputElement>('seed').max = String(MAX_SEED);
  $<HTMLFormElement>('form').addEventListener('input', () => void checkedForm());
  $<HTMLButtonElement>('go').addEventListener('click', () => void onSample());
  $<HTMLElement>('status').textContent = 'ready';
}

declare global {
  interface Window {
    rediffuse: { run: typeof run; ready: boolean; readonly previews: number };
  }
}
window.rediffuse = {
  run,
  ready: true,
  /** Step previews drawn so far. */
  get previews() {
    return previews;
  },
};
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', initForm);
else initForm();
