/**
 * The pipeline page: a Stable-Diffusion ONNX folder (diffusers / Optimum layout; a UNet, or an
 * SD3-style flow transformer) loaded in the browser through the library's
 * {@link StableDiffusionPipeline} — from a URL on this server (`fetchPipelineReader`) or from a
 * folder the user picks (`memoryPipelineReader`) — and text to image with onnxruntime-web.
 * `window.rediffusePipeline.run(settings)` is the same entry point for scripts; it also takes the
 * embeddings themselves (`embeddings`), which is how a folder without text encoders is run.
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
  type PromptEmbedding,
} from '../src/model/index.js';

ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

/** One run of the page. */
export interface PipelineRunSettings {
  /** Folder URL relative to the page (ignored when a folder was picked and `picked` is true). */
  source: string;
  picked?: boolean;
  /** The prompt (needs the folder's text encoder); leave it out when `embeddings` are given. */
  prompt?: string;
  /** The conditioning itself instead of prompts: [tokens, dim] hidden states and the pooled vector (SD3), as plain arrays. */
  embeddings?: { prompt: PageEmbedding; negative?: PageEmbedding };
  negativePrompt?: string;
  solver?: string;
  steps?: number;
  guidance?: number;
  seed?: number;
  /** Images per run (one guided denoiser batch; default 1); drawn side by side. */
  batch?: number;
  /** Start from the folder's `initial_latents.npy` (the fixture's reference run) instead of seeded noise. */
  initialLatents?: boolean;
}

/** One embedding as a script passes it: [tokens, dim] hidden states flattened, and the pooled vector where the denoiser takes one. */
export interface PageEmbedding {
  hiddenStates: number[];
  shape: [number, number];
  pooled?: number[];
}

const toEmbedding = (e: PageEmbedding): PromptEmbedding => ({
  hiddenStates: Float32Array.from(e.hiddenStates),
  shape: e.shape,
  ...(e.pooled ? { pooled: Float32Array.from(e.pooled) } : {}),
});

/** What a run returns. */
export interface PipelineRunResult {
  /** `unet` or `transformer`. */
  denoiser: string;
  solver: string;
  calls: number;
  timesteps: number[];
  /** Final latents of every image, [batch, C, h, w] flattened. */
  latents: number[];
  /** The VAE output of every image, [batch, channels, H, W] flattened. */
  decoded: number[];
  batch: number;
  /** One image's size. */
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
  const e = settings.embeddings;
  const r = await pipe.textToImage({
    ...(e
      ? { embeddings: { prompt: toEmbedding(e.prompt), ...(e.negative ? { negative: toEmbedding(e.negative) } : {}) } }
      : { prompt: settings.prompt ?? '', negativePrompt: settings.negativePrompt ?? '' }),
    ...(settings.solver ? { solver: settings.solver } : {}),
    ...(settings.steps !== undefined ? { steps: settings.steps } : {}),
    ...(settings.guidance !== undefined ? { guidanceScale: settings.guidance } : {}),
    ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
    ...(settings.batch !== undefined ? { batch: settings.batch } : {}),
    ...(initialLatents ? { initialLatents } : {}),
    onStep: (info) => {
      status(`step ${info.step + 1}/${info.steps}`);
    },
  });
  const im = r.images[0]!;
  const canvas = $<HTMLCanvasElement>('image');
  canvas.width = im.width * r.images.length;
  canvas.height = im.height;
  const ctx = canvas.getContext('2d')!;
  r.images.forEach((m, i) => ctx.putImageData(new ImageData(new Uint8ClampedArray(m.data), m.width, m.height), i * im.width, 0));
  status(`${r.run.solver}, ${r.run.calls} ${pipe.denoiser === 'unet' ? 'UNet' : 'transformer'} calls, wall time ${(r.run.wallMs / 1000).toFixed(2)} s`);
  return {
    denoiser: pipe.denoiser,
    solver: r.run.solver,
    calls: r.run.calls,
    timesteps: r.run.timesteps,
    latents: Array.from(r.latents),
    decoded: Array.from(r.decoded),
    batch: r.images.length,
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
    batch: num('batch'),
  }).catch((err: unknown) => status(`error: ${(err as Error).message}`));
});

declare global {
  interface Window {
    rediffusePipeline: { run: typeof run; ready: boolean };
  }
}
window.rediffusePipeline = { run, ready: true };
status('ready');
