/**
 * `rediffuse txt2img --pipeline DIR --prompt "…"`: text to image with a Stable-Diffusion ONNX pipeline
 * folder (diffusers / Optimum layout; a UNet, or an SD3-style flow transformer with a CLIP-style text
 * encoder) through the same sampler suite, PFDiff and feature reuse, written as one PNG (the images side
 * by side; greyscale when the VAE decodes one channel) atomically.
 * @packageDocumentation
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { listSolvers, TIMESTEP_SPACINGS, type StepInfo, type TimestepSpacing } from '../../core/index.js';
import { parseNpy, StableDiffusionPipeline, type FeatureReuseChoice, type OrtModuleLike, type TextToImageRequest } from '../../model/index.js';
import { checkOutputPath, decodePng, encodePng, nodePipelineReader, writeFileAtomic, type RgbaImage } from '../../node/index.js';
import { CliError, EXIT_INTERRUPTED, intArg, numberArg, parsePfdiff, threadsArg } from '../cli-error.js';
import { interruptSignal } from '../interrupt.js';
import {
  addFeatureReuseOptions,
  checkFeatureReuseFlags,
  featureReuseReport,
  formatFeatureReuseLine,
  reuseChoiceFromFlags,
  reuseSourceOf,
  wantsFeatureReuse,
  type FeatureReuseFlags,
  type FeatureReuseReport,
} from './feature-reuse-options.js';
import { addSolverOptionFlags, solverOptionsFrom, type SolverFlags } from './sample.js';
import { createProgress } from '../progress.js';

/** Parsed options of `rediffuse txt2img`. */
export interface Txt2ImgOptions extends FeatureReuseFlags, SolverFlags {
  pipeline: string;
  prompt: string;
  negativePrompt?: string;
  guidance: number;
  guidanceRescale: number;
  height?: number;
  width?: number;
  count: number;
  seed: number;
  batchSize?: number;
  threads?: number;
  initialLatents?: string;
  image?: string;
  strength?: number;
  /** Write one small preview PNG per step here (`step-001.png` …; latent resolution, images side by side). */
  previewDir?: string;
  out: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
}

/** What `txt2img` reports (printed with --json). */
export interface Txt2ImgReport {
  output: string;
  pipeline: string;
  prompt: string;
  negativePrompt: string;
  solver: string;
  calls: number;
  timesteps: number[];
  guidance: number;
  size: [number, number];
  count: number;
  seed: number;
  wallMs: number;
  loadMs: number;
  /** FRDiff feature reuse (--fr-interval / --fr-policy): calls by kind (full, reuse, skipped), cache memory, ms per kind — as `sample` reports it. */
  featureReuse: FeatureReuseReport | null;
}

/** Register `txt2img` on a commander program. */
export function registerTxt2Img(program: Command): Command {
  const head = program
    .command('txt2img')
    .description(
      'text to image with a Stable-Diffusion ONNX pipeline folder (diffusers / Optimum export: model_index.json, unet/ or transformer/ (SD3), text_encoder/, …)',
    )
    .requiredOption('--pipeline <dir>', 'the pipeline folder (e.g. from optimum-cli export onnx --model <id> <dir>)')
    .requiredOption('-p, --prompt <text>', 'the prompt')
    .addOption(new Option('--negative-prompt <text>', 'the unconditional branch\'s prompt (default "")'))
    .addOption(
      new Option(
        '-s, --solver <name>',
        `solver (default: the folder's scheduler; PNDM → plms): ${listSolvers()
          .map((s) => s.name)
          .join(', ')}`,
      ),
    );
  const cmd = addSolverOptionFlags(head)
    .addOption(new Option('-n, --nfe <n>', 'model-call budget (default 20)').argParser(intArg(1)).conflicts('steps'))
    .addOption(new Option('--steps <n>', "grid intervals (diffusers' num_inference_steps)").argParser(intArg(1)))
    .addOption(new Option('--spacing <name>', `timestep spacing: ${TIMESTEP_SPACINGS.join(', ')} (default: the scheduler config's)`))
    .addOption(new Option('--pfdiff <k_h>', 'PFDiff timestep skipping, e.g. 2_1').argParser(parsePfdiff))
    .addOption(
      new Option('--pfdiff-quantity <quantity>', 'PFDiff with a first-order solver: the stored, reused model output').choices(['epsilon', 'x0', 'v']),
    )
    .addOption(
      new Option('-g, --guidance <scale>', 'classifier-free guidance scale w (1 = prompt only, 0 = negative prompt only)')
        .argParser(numberArg(0))
        .default(7.5),
    )
    .addOption(new Option('--guidance-rescale <phi>', 'guidance rescale φ in [0, 1]').argParser(numberArg(0, 1)).default(0))
    .addOption(
      new Option('--height <px>', "image height (multiple of the VAE factor f, 8 for SD; default: the denoiser's sample_size × f)").argParser(
        intArg(1, 4096),
      ),
    )
    .addOption(new Option('--width <px>', 'image width (multiple of the VAE factor)').argParser(intArg(1, 4096)))
    .addOption(new Option('--count <n>', 'images').argParser(intArg(1, 64)).default(1))
    .addOption(new Option('--seed <n>', 'seed of the initial latents').argParser(intArg(0, 2 ** 32 - 1)).default(0))
    .addOption(new Option('--initial-latents <file.npy>', 'initial latents [count, C, H/f, W/f] as float32 .npy instead of seeded noise'))
    .addOption(
      new Option('--image <file.png>', 'image to image: start from this PNG (sides multiples of 8; needs vae_encoder/)').conflicts('initialLatents'),
    )
    .addOption(new Option('--strength <s>', 'image to image: share of the grid to run, in (0, 1] (default 0.8)').argParser(numberArg(0, 1)))
    .addOption(new Option('-b, --batch-size <n>', 'largest denoiser (UNet or transformer) batch per run').argParser(intArg(1, 4096)))
    .addOption(new Option('-t, --threads <n>', 'onnxruntime intra-op threads').argParser(threadsArg()))
    .addOption(new Option('-o, --out <path>', 'PNG to write').default('rediffuse-txt2img.png'))
    .addOption(
      new Option(
        '--preview-dir <dir>',
        "write a preview PNG per step (step-001.png …): the step's x̂0 at latent resolution through a linear latent→RGB map fitted to the VAE",
      ),
    )
    .addOption(new Option('--json', 'print a JSON report'))
    .addOption(new Option('-q, --quiet', 'print nothing on success'))
    .addOption(new Option('--no-progress', 'no progress bar'))
    .action(async (opts: Txt2ImgOptions) => {
      await runTxt2Img(opts);
    });
  return addFeatureReuseOptions(cmd);
}

/** Images side by side in one RGBA raster. */
function sideBySide(images: readonly RgbaImage[]): RgbaImage {
  const h = images[0]!.height;
  const width = images.reduce((a, im) => a + im.width, 0);
  const data = new Uint8Array(width * h * 4);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < h; y++) data.set(im.data.subarray(y * im.width * 4, (y + 1) * im.width * 4), (y * width + x0) * 4);
    x0 += im.width;
  }
  return { width, height: h, data };
}

/** Run `rediffuse txt2img` with parsed options (exported for in-process tests). */
export async function runTxt2Img(opts: Txt2ImgOptions): Promise<Txt2ImgReport> {
  if (opts.spacing !== undefined && !(TIMESTEP_SPACINGS as readonly string[]).includes(opts.spacing)) {
    throw new CliError(`unknown spacing "${opts.spacing}": use one of ${TIMESTEP_SPACINGS.join(', ')}`);
  }
  if (opts.pfdiffQuantity !== undefined && !opts.pfdiff) throw new CliError('--pfdiff-quantity needs --pfdiff k_h');
  checkFeatureReuseFlags(opts);
  // the policy file read and checked, the points normalised, before anything loads
  const featureReuse: FeatureReuseChoice | undefined = wantsFeatureReuse(opts) ? reuseChoiceFromFlags(opts) : undefined;
  checkOutputPath(opts.out); // before anything loads
  if (opts.previewDir !== undefined) {
    try {
      mkdirSync(opts.previewDir, { recursive: true });
    } catch (err) {
      throw new CliError(`--preview-dir ${opts.previewDir}: ${(err as Error).message}; pass a folder that can be created`);
    }
  }
  let initialLatents: Float32Array | undefined;
  if (opts.initialLatents !== undefined) {
    try {
      initialLatents = parseNpy(new Uint8Array(readFileSync(opts.initialLatents)), opts.initialLatents).data;
    } catch (err) {
      throw new CliError(`--initial-latents: ${(err as Error).message}`);
    }
  }
  if (opts.strength !== undefined && opts.image === undefined) throw new CliError('--strength needs --image FILE.png');
  let image: RgbaImage | undefined;
  if (opts.image !== undefined) {
    try {
      image = decodePng(new Uint8Array(readFileSync(opts.image)));
    } catch (err) {
      throw new CliError(`--image ${opts.image}: ${(err as Error).message}; pass a PNG file`);
    }
    if (opts.count !== 1) throw new CliError('--image takes one start image: use --count 1');
  }
  const signal = interruptSignal();
  const progress = createProgress(!opts.quiet && opts.progress !== false);
  progress.phase('loading pipeline');
  try {
    const t0 = performance.now();
    let pipe: StableDiffusionPipeline;
    try {
      const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
      pipe = await StableDiffusionPipeline.load({
        ort,
        reader: nodePipelineReader(opts.pipeline),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        ...(opts.batchSize !== undefined ? { maxBatch: opts.batchSize } : {}),
      });
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const loadMs = performance.now() - t0;
    const solverOptions = solverOptionsFrom(opts);
    const req: TextToImageRequest = {
      prompt: opts.prompt,
      negativePrompt: opts.negativePrompt ?? '',
      guidanceScale: opts.guidance,
      guidanceRescale: opts.guidanceRescale,
      batch: opts.count,
      seed: opts.seed,
      ...(opts.height !== undefined ? { height: opts.height } : {}),
      ...(opts.width !== undefined ? { width: opts.width } : {}),
      ...(opts.solver !== undefined ? { solver: opts.solver } : {}),
      ...(opts.sampler !== undefined ? { sampler: opts.sampler } : {}),
      ...(Object.keys(solverOptions).length ? { solverOptions } : {}),
      ...(opts.steps !== undefined ? { steps: opts.steps } : opts.nfe !== undefined ? { nfe: opts.nfe } : {}),
      ...(opts.spacing !== undefined ? { spacing: opts.spacing as TimestepSpacing } : {}),
      ...(opts.pfdiff ? { pfdiff: { ...opts.pfdiff, ...(opts.pfdiffQuantity ? { quantity: opts.pfdiffQuantity } : {}) } } : {}),
      ...(initialLatents ? { initialLatents } : {}),
      ...(featureReuse ? { featureReuse } : {}),
      onStep: (info) => {
        if (info.step === 0) progress.start(info.steps, 'sampling');
        progress.update(info.step + 1);
      },
      ...(opts.previewDir !== undefined
        ? {
            onPreview: (info: StepInfo, images: RgbaImage[]) => {
              const name = `step-${String(info.step + 1).padStart(3, '0')}.png`;
              writeFileAtomic(join(opts.previewDir!, name), encodePng(sideBySide(images)));
            },
          }
        : {}),
      signal,
    };
    let result;
    try {
      result = image
        ? await pipe.imageToImage({ ...req, image, ...(opts.strength !== undefined ? { strength: opts.strength } : {}) })
        : await pipe.textToImage(req);
    } catch (err) {
      if (signal.aborted) throw new CliError('interrupted: no image was written', EXIT_INTERRUPTED);
      const msg = (err as Error).message;
      throw new CliError(opts.frPolicy !== undefined && /reuse policy/.test(msg) ? `${opts.frPolicy}: ${msg}` : msg);
    } finally {
      progress.stop();
    }
    if (signal.aborted) throw new CliError('interrupted: no image was written', EXIT_INTERRUPTED);
    const output = writeFileAtomic(opts.out, encodePng(sideBySide(result.images), { grey: pipe.imageChannels === 1 }));
    await pipe.release();
    const im = result.images[0]!;
    const report: Txt2ImgReport = {
      output,
      pipeline: pipe.label,
      prompt: opts.prompt,
      negativePrompt: opts.negativePrompt ?? '',
      solver: result.run.solver,
      calls: result.run.calls,
      timesteps: result.run.timesteps,
      guidance: opts.guidance,
      size: [im.height, im.width],
      count: opts.count,
      seed: opts.seed,
      wallMs: result.run.wallMs,
      loadMs,
      featureReuse: result.featureReuseSetup ? featureReuseReport(result.featureReuseSetup, reuseSourceOf(opts)) : null,
    };
    if (!opts.quiet) for (const note of result.featureReuseSetup?.notes ?? []) process.stderr.write(`rediffuse: warning: ${note}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (!opts.quiet) {
      process.stdout.write(
        `wrote ${output} (${opts.count} × ${im.width}×${im.height}; ${report.solver}, ${report.calls} ${pipe.denoiser === 'unet' ? 'UNet' : 'transformer'} calls, ${(report.wallMs / 1000).toFixed(2)} s)\n`,
      );
      if (report.featureReuse) process.stdout.write(`${formatFeatureReuseLine(report.featureReuse)}\n`);
    }
    return report;
  } finally {
    progress.stop();
  }
}
