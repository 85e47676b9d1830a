/**
 * Build the web page into web/dist: the app and its sampling worker bundled with esbuild, the page, onnxruntime-web's
 * WebAssembly runtime, and the bundled models — everything the page loads, so it runs from any
 * static server with no network access.
 *
 *   npx tsx web/build.ts            (npm run build:web)
 * @packageDocumentation
 */
import { copyFileSync, cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

/** Build the page into `outDir` (default web/dist) and return that folder. */
export async function buildWeb(outDir = join(here, 'dist')): Promise<string> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'ort'), { recursive: true });
  mkdirSync(join(outDir, 'models'), { recursive: true });
  await build({
    entryPoints: [join(here, 'app.ts'), join(here, 'worker.ts'), join(here, 'pipeline-app.ts')],
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  });
  copyFileSync(join(here, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(here, 'pipeline.html'), join(outDir, 'pipeline.html'));
  // the tiny SD and SD3-style test pipelines (random weights), for the pipeline page
  for (const [from, to] of [
    ['tiny-sd-pipeline', 'tiny-sd'],
    ['tiny-sd3-flow', 'tiny-sd3-flow'],
  ]) {
    cpSync(join(root, 'test', 'fixtures', from), join(outDir, 'pipelines', to), { recursive: true, filter: (src) => !src.endsWith('reference.json') });
  }
  // the latent text-to-image pipelines trained here (models/README.md), ~7 MB each
  for (const m of ['latent-unet', 'latent-dit']) cpSync(join(root, 'models', m), join(outDir, 'pipelines', m), { recursive: true });
  const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/wasm'));
  for (const f of ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs']) copyFileSync(join(ortDist, f), join(outDir, 'ort', f));
  for (const m of ['fashion-unet', 'fashion-dit']) {
    for (const ext of ['.onnx', '.json']) copyFileSync(join(root, 'models', m + ext), join(outDir, 'models', m + ext));
  }
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWeb(process.argv[2]);
  process.stderr.write(`built the web page into ${out}; serve it with npm run web\n`);
}
