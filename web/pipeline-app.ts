/**
 * The pipeline page: a Stable-Diffusion ONNX folder (diffusers / Optimum layout) loaded in the browser
 * through the library's {@link StableDiffusionPipeline} — from a URL on this server
 * (`fetchPipelineReader`) or from a folder the user picks (`memoryPipelineReader`) — and text to image
 * with onnxruntime-web. `window.rediffusePipeline.run(settings)` is the same entry point for scripts.
 * Runs on the main thread (the bundled pipeline is tiny; a full SD folder belongs in a worker).
 * @packageDocumentation
 */
import * as ort from 'onnxruntime-web/wasm';
import {
  fetchPipelineReader,
  memoryPipelineReader,
  parseNpy,
  StableDiffusionPipeline,
  type OrtModuleLike,
  type PipelineFileReader,
} from '../src/model/index.js';

ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

/** One run of the page. */
export interface PipelineRunSettings {
  /** Folder URL relative to the page (ignored when a folder was picked and `picked` is true). */
  source: string;
  picked?: boolean;
  prompt: string;
  negativePrompt?: string;
  solver?: string;
  steps?: number;
  guidance?: number;
  seed?: number;
  /** Start from the folder's `initial_latents.npy` (the fixture's reference run) instead of seeded noise. */
  initialLatents?: boolean;
}

/** What a run returns. */
export interface PipelineRunResult {
  solver: string;
  calls: number;
  timesteps: number[];
  latents: number[];
  decoded: number[];
  width: number;
  height: number;
  wallMs: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (s: string): void => {
  $('status').textContent = s;
};
let picked: PipelineFileReader | undefined;
let loaded: { key: string; pipe: Promise<StableDiffusionPipeline> } | undefined;

function pipelineFor(reader: PipelineFileReader): Promise<StableDiffusionPipeline> {
  if (loaded?.key !== reader.label) loaded = { key: reader.label, pipe: StableDiffusionPipeline.load({ ort: ort as unknown as OrtModuleLike, reader }) };
  return loaded.pipe;
}

async function run(settings: PipelineRunSettings): Promise<PipelineRunResult> {
  const reader = settings.picked && picked ? picked : fetchPipelineReader(new URL(settings.source, location.href).href);
  status(`loading ${reader.label} …`);
  const pipe = await pipelineFor(reader);
  const initialLatents = settings.initialLatents ? parseNpy(await reader.readBytes('initial_latents.npy'), 'initial_latents.npy').data : undefined;
  status('sampling …');
  const r = await pipe.textToImage({
    prompt: settings.prompt,
    negativePrompt: settings.negativePrompt ?? '',
    ...(settings.solver ? { solver: settings.solver } : {}),
    ...(settings.steps !== undefined ? { steps: settings.steps } : {}),
    ...(settings.guidance !== undefined ? { guidanceScale: settings.guidance } : {}),
    ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
    ...(initialLatents ? { initialLatents } : {}),
    onStep: (info) => {
      status(`step ${info.step + 1}/${info.steps}`);
    },
  });
  const im = r.images[0]!;
  const canvas = $<HTMLCanvasElement>('image');
  canvas.width = im.width;
  canvas.height = im.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(im.data), im.width, im.height), 0, 0);
  status(`${r.run.solver}, ${r.run.calls} UNet calls, wall time ${(r.run.wallMs / 1000).toFixed(2)} s`);
  return {
    solver: r.run.solver,
    calls: r.run.calls,
    timesteps: r.run.timesteps,
    latents: Array.from(r.latents),
    decoded: Array.from(r.decoded),
    width: im.width,
    height: im.height,
    wallMs: r.run.wallMs,
  };
}

$<HTMLInputElement>('folder').addEventListener('change', async (ev) => {
  const files = Array.from((ev.target as HTMLInputElement).files ?? []);
  const map = new Map<string, Uint8Array>();
  for (const f of files) {
    const rel = (f.webkitRelativePath || f.name).split('/').slice(1).join('/');
    if (rel) map.set(rel, new Uint8Array(await f.arrayBuffer()));
  }
  picked = memoryPipelineReader(map, files[0]?.webkitRelativePath.split('/')[0] ?? '(picked folder)');
  status(`picked ${picked.label} (${map.size} files)`);
});

$<HTMLFormElement>('form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  run({
    source: $<HTMLInputElement>('source').value,
    picked: picked !== undefined,
    prompt: $<HTMLInputElement>('prompt').value,
    negativePrompt: $<HTMLInputElement>('negative').value,
    solver: $<HTMLInputElement>('solver').value,
    steps: num('steps'),
    guidance: num('guidance'),
    seed: num('seed'),
  }).catch((err: unknown) => status(`error: ${(err as Error).message}`));
});

declare global {
  interface Window {
    rediffusePipeline: { run: typeof run; ready: boolean };
  }
}
window.rediffusePipeline = { run, ready: true };
status('ready');
