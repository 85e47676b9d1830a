/**
 * The page's sampling worker: onnxruntime-web (WebAssembly) and {@link createWebSampler} run here,
 * off the page's main thread, so the page stays responsive during a run and can draw each step's
 * progress and preview as the worker posts them (see web/worker-protocol.ts).
 * @packageDocumentation
 */
import * as ort from 'onnxruntime-web/wasm';
import type { OrtModuleLike } from '../src/model/index.js';
import { createWebSampler } from './web-sampler.js';
import { PREVIEW_INTERVAL_MS, type WorkerMessage, type WorkerRequest, type WorkerResult } from './worker-protocol.js';

/** The dedicated-worker global scope, typed here because the project's lib is DOM, not WebWorker. */
const scope = self as unknown as {
  postMessage(message: WorkerMessage, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
  location: { href: string };
};

// The wasm binary and its loader are served from the page's folder (copied by web/build.ts): no CDN.
ort.env.wasm.wasmPaths = new URL('./ort/', scope.location.href).href;
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url} (HTTP ${r.status}); build the page with npm run build:web and serve web/dist`);
  return r;
}

const run = createWebSampler(ort as unknown as OrtModuleLike, async (name) => ({
  card: await (await fetchOk(new URL(`models/${name}.json`, scope.location.href).href)).json(),
  bytes: new Uint8Array(await (await fetchOk(new URL(`models/${name}.onnx`, scope.location.href).href)).arrayBuffer()),
}));

const now = (): number => performance.now();

async function handle(req: WorkerRequest): Promise<void> {
  let lastPreview = -Infinity;
  try {
    const result = await run(req.settings, (step, steps, p) => {
      const msg: WorkerMessage = {
        id: req.id,
        type: 'progress',
        step,
        steps,
        calls: p.calls,
        fullCalls: p.fullCalls,
        reuseCalls: p.reuseCalls,
        skippedCalls: p.skippedCalls,
      };
      if (step === 1 || step === steps || now() - lastPreview >= PREVIEW_INTERVAL_MS) {
        msg.preview = p.preview();
        lastPreview = now();
        scope.postMessage(msg, [msg.preview.data.buffer]);
      } else {
        scope.postMessage(msg);
      }
    });
    const moved: WorkerResult = {
      ...result,
      samples: Float64Array.from(result.samples),
      rgba: { ...result.rgba, data: Uint8Array.from(result.rgba.data) },
    };
    scope.postMessage({ id: req.id, type: 'result', result: moved }, [moved.samples.buffer, moved.rgba.data.buffer]);
  } catch (err) {
    scope.postMessage({ id: req.id, type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
}

// One run at a time: onnxruntime sessions take one run each, and the page's runs queue in order.
let queue: Promise<void> = Promise.resolve();
scope.onmessage = (ev) => {
  const req = ev.data;
  if (req?.type === 'run') queue = queue.then(() => handle(req));
};
