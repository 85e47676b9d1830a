/**
 * What a benchmark runs on: the model, its schedule and grid defaults, the quality meter (feature
 * classifier + reference statistics) and, when the model supports it, feature reuse.
 *
 * Two setups exist: the bundled ONNX models (the real measurements), and the closed-form Gaussian
 * reference model with identity features (exact reference statistics), which makes the whole
 * pipeline testable without any model file.
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import {
  type FeatureReuseCapable,
  type DiffusionModel,
  type ModelCall,
  gaussianModel,
  REFERENCE_SCHEDULER_CONFIG,
  type NoiseSchedule,
  type NumArray,
} from '../core/index.js';
import { type GaussianStatistics } from '../metrics/index.js';
import { cardSamplingSetup, parseModelCard, type CardSamplingSetup } from '../model/index.js';
import { sha256Hex, fileSha256, canonicalJson } from './cell-key.js';

/** The project's quality meter: features (and logits) of samples plus the real data's statistics. */
export interface QualityMeter {
  /** What the features are, e.g. `fashion-classifier features (128-d)`. */
  name: string;
  featureDim: number;
  /** Number of classes of the logits, when the meter classifies. */
  numClasses: number | undefined;
  /** Statistics of real data in the same feature space (FD-classifier's reference). */
  referenceStats: GaussianStatistics;
  /** False when the statistics could not be loaded (FD-classifier is then null). Default true. */
  hasReferenceStats?: boolean;
  /** Features `[N, D]` and, when it classifies, logits `[N, C]` of N samples. */
  measure(samples: NumArray, count: number): Promise<{ features: ArrayLike<number>; logits?: ArrayLike<number> }>;
  /** Features of `count` real images (for KID), when real data is available. */
  realFeatures?(count: number): Promise<ArrayLike<number>>;
  release?(): Promise<void>;
}

/** Everything the runner needs about the model under test. */
export interface BenchSetup {
  /** `reference` (closed-form), `onnx` or `pipeline` (a Stable-Diffusion folder's UNet on a prompt). */
  kind: 'reference' | 'onnx' | 'pipeline';
  /** Model name (card name or `reference-gaussian`). */
  name: string;
  /** Absolute path of the model file (null for the reference model). */
  modelPath: string | null;
  /** SHA-256 of the model file (or of the reference model's parameters): part of every cell key. */
  modelHash: string;
  model: DiffusionModel;
  /** The card's sampling setup: every cell's options come from it (`sampleOptionsFromCard`). */
  sampling: CardSamplingSetup;
  schedule: NoiseSchedule;
  /** Whether the samples are class-conditioned (the model takes class labels, or a pipeline bench runs on class prompts). */
  conditional: boolean;
  numClasses: number;
  /** The label meaning "unconditional". */
  nullLabel: number | undefined;
  /** Quality meter; absent when its files are missing (FD/accuracy are then reported as null). */
  meter: QualityMeter | undefined;
  /**
   * Text conditioning of a pipeline's denoiser (`pipelineSetup`): the `sample()` fields `cond` and
   * `guidance` of the n samples [offset, offset + n) of the seed set at guidance g (the prompt's rows —
   * with class prompts, sample i's class caption, class i mod C —; at g ∉ {0, 1} guided against the
   * negative prompt's, at g = 0 the negative prompt alone). Absent for label-conditioned models.
   */
  promptConditioning?: (guidance: number, n: number, offset?: number) => Pick<import('../core/index.js').SampleOptions, 'cond' | 'guidance'>;
  /**
   * Latent setups (a pipeline bench on class prompts): the VAE decode of `count` samples (latents)
   * in runs of `batch`, to the images the quality meter scores ([count, 1, 28, 28], nominally in
   * [−1, 1]; the classifier clamps them to its range). The runner times it apart from sampling.
   */
  decode?: (latents: Float32Array, count: number, batch: number) => Promise<Float32Array>;
  /** A feature-reuse-capable network for a reuse-point preset; absent when the model cannot reuse. */
  featureReuse?: (points: string | string[], options?: { probe?: true | string }) => Promise<FeatureReuseCapable>;
  /** Versions of the runtime pieces (onnxruntime etc.). */
  versions: Record<string, string>;
  release(): Promise<void>;
}

/** Options of {@link referenceSetup}. */
export interface ReferenceSetupOptions {
  /** Side of the square sample (the sample is [1, side, side]). Default 4 (16 numbers). */
  side?: number;
  /** Data mean μ. Default 0.3. */
  mean?: number;
  /** Data standard deviation s. Default 0.5. */
  std?: number;
}

/**
 * The closed-form Gaussian model (data N(μ, s²I)) on DDPM's linear schedule, measured with identity
 * features, whose exact reference statistics are (μ·1, s²·I). Feature reuse is simulated: a keyframe
 * stores the time coefficients of ε*(x, t) = σ_t(x − α_t μ)/(α_t² s² + σ_t²) and a reuse call applies
 * the stored (stale) coefficients to the current x — a genuine approximation whose error grows with
 * the distance from the keyframe, like real feature reuse.
 */
export function referenceSetup(opts: ReferenceSetupOptions = {}): BenchSetup {
  const side = opts.side ?? 4;
  const mu = opts.mean ?? 0.3;
  const std = opts.std ?? 0.5;
  const sampleShape = [1, side, side];
  // Its card: DDPM's linear betas with diffusers' default linspace grid (the schedule above).
  const sampling = cardSamplingSetup(
    parseModelCard(
      {
        name: 'reference-gaussian',
        scheduler_config: REFERENCE_SCHEDULER_CONFIG,
        sample_size: sampleShape,
      },
      '(reference model)',
    ),
  );
  const schedule = sampling.schedule;
  const d = side * side;
  const model = gaussianModel({ schedule, mean: mu, std, sampleShape });
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d; i++) cov[i * d + i] = std * std;
  const meter: QualityMeter = {
    name: `identity features (${d}-d) of the closed-form Gaussian`,
    featureDim: d,
    numClasses: undefined,
    referenceStats: { dim: d, mean: new Float64Array(d).fill(mu), covariance: cov },
    async measure(samples) {
      return { features: samples };
    },
  };
  const featureReuse = async (): Promise<FeatureReuseCapable> => {
    let coef: { a: number; sg: number; v: number; batch: number } | null = null;
    const eps = (x: NumArray, c: { a: number; sg: number; v: number }): NumArray => {
      const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = (c.sg * (x[i]! - c.a * mu)) / c.v;
      return out;
    };
    const coefAt = ({ alpha: a, sigma: sg }: ModelCall) => ({ a, sg, v: a * a * std * std + sg * sg });
    return {
      predictionType: 'epsilon',
      sampleShape,
      predict: async (x, call) => eps(x, coefAt(call)),
      async predictKeyframe(x, call) {
        coef = { ...coefAt(call), batch: call.batch };
        return eps(x, coef);
      },
      async predictReuse(x, call) {
        if (!coef || coef.batch !== call.batch) throw new Error('reference feature reuse: no keyframe cache for this batch; run a keyframe first');
        return eps(x, coef);
      },
      clearCache() {
        coef = null;
      },
    };
  };
  return {
    kind: 'reference',
    name: 'reference-gaussian',
    modelPath: null,
    modelHash: sha256Hex(canonicalJson({ model: 'gaussian', schedule: 'ddpm-linear-1000', mu, std, sampleShape })),
    model,
    sampling,
    schedule,
    conditional: false,
    numClasses: 0,
    nullLabel: undefined,
    meter,
    featureReuse,
    versions: {},
    async release() {},
  };
}

/** Options of {@link onnxSetup}. */
export interface OnnxSetupOptions {
  /** Path of the diffusion model (.onnx with its .json card next to it). */
  modelPath: string;
  /** Path of the model's JSON card (default: the .json next to the model). */
  cardPath?: string;
  /** Folder holding fashion-classifier.onnx and fashion-test-stats.json. Default: the model's folder. */
  meterDir?: string;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** Largest batch per network run. Default 128. */
  maxBatch?: number;
  /** Where warnings go (missing meter files, no feature reuse). */
  warn?: (msg: string) => void;
}

/**
 * Load an ONNX diffusion model with onnxruntime-node, its card's schedule and grid defaults, the
 * shipped classifier and test-set statistics as the quality meter, and (when the graph layer offers
 * it) feature reuse on the model's graph.
 */
export async function onnxSetup(opts: OnnxSetupOptions): Promise<BenchSetup> {
  const warn = opts.warn ?? (() => {});
  const { loadOnnxModel, readModelBytes } = await import('../node/index.js');
  const { cardSamplingSetup } = await import('../model/index.js');
  const ort = await import('onnxruntime-node');
  const loaded = await loadOnnxModel({
    path: opts.modelPath,
    ...(opts.cardPath !== undefined ? { cardPath: opts.cardPath } : {}),
    maxBatch: opts.maxBatch ?? 128,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  if (!loaded.card)
    throw new Error(`no model card for ${loaded.modelPath}: the bench needs the model's JSON card (scheduler config, classes); pass --card FILE`);
  const card = loaded.card;
  const setup = cardSamplingSetup(card);
  const numClasses = card.numClasses ?? card.classNames?.length ?? 0;
  const conditional = loaded.model.signature.classLabels !== undefined && numClasses > 0;

  const meter = await fashionMeter(ort, opts.meterDir ?? join(loaded.modelPath, '..'), opts.threads, warn);

  const featureReuse = await onnxFeatureReuseFactory(ort, readModelBytes(loaded.modelPath), card, opts.threads, opts.maxBatch ?? 128, warn);
  let ortVersion = 'unknown';
  try {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    /* keep unknown */
  }
  return {
    kind: 'onnx',
    name: card.name,
    modelPath: loaded.modelPath,
    modelHash: fileSha256(loaded.modelPath),
    model: loaded.model,
    sampling: setup,
    schedule: setup.schedule,
    conditional,
    numClasses,
    nullLabel: loaded.model.nullLabel,
    meter,
    ...(featureReuse ? { featureReuse } : {}),
    versions: { 'onnxruntime-node': ortVersion },
    async release() {
      await loaded.model.release();
      await meter?.release?.();
    },
  };
}

/**
 * The shipped quality meter of a folder: fashion-classifier.onnx and fashion-test-stats.json in
 * `meterDir`; undefined (with a warning) when either file is missing.
 */
async function fashionMeter(
  ort: typeof import('onnxruntime-node'),
  meterDir: string,
  threads: number | undefined,
  warn: (msg: string) => void,
): Promise<QualityMeter | undefined> {
  const classifierPath = join(meterDir, 'fashion-classifier.onnx');
  const statsPath = join(meterDir, 'fashion-test-stats.json');
  if (!existsSync(classifierPath) || !existsSync(statsPath)) {
    warn(`no quality meter (${classifierPath} or ${statsPath} is missing): FD-classifier and accuracy are reported as null`);
    return undefined;
  }
  const { loadClassifier, loadReferenceStatistics } = await import('../node/index.js');
  const classifier = await loadClassifier(ort, classifierPath, { batchSize: 256, ...(threads !== undefined ? { threads } : {}) });
  let stats: Awaited<ReturnType<typeof loadReferenceStatistics>> | undefined;
  try {
    stats = await loadReferenceStatistics(statsPath, { expectedDim: classifier.featureDim });
  } catch (e) {
    warn(`the test-set statistics cannot be read (${(e as Error).message}): FD-classifier is reported as null`);
  }
  let realCache: Float32Array | undefined;
  return {
    name: `fashion-classifier features (${classifier.featureDim}-d)`,
    featureDim: classifier.featureDim,
    numClasses: classifier.numClasses,
    referenceStats: stats ?? { dim: 0, mean: new Float64Array(0), covariance: new Float64Array(0) },
    hasReferenceStats: stats !== undefined,
    async measure(samples) {
      const out = await classifier.classify(samples);
      return { features: out.features, logits: out.logits };
    },
    async realFeatures(count) {
      if (!realCache) {
        const { loadFashionMnist, pixelsToUnitRange } = await import('../node/index.js');
        let test;
        try {
          test = await loadFashionMnist('t10k');
        } catch (e) {
          throw new Error(`KID needs the Fashion-MNIST test images (${(e as Error).message}); install dataset-fashion-mnist or set metrics.kid: false`, {
            cause: e,
          });
        }
        realCache = (await classifier.classify(pixelsToUnitRange(test.pixels))).features;
      }
      const rows = Math.min(count, realCache.length / classifier.featureDim);
      return realCache.subarray(0, rows * classifier.featureDim);
    },
    release: () => classifier.release(),
  };
}

/** Options of {@link pipelineSetup}. */
export interface PipelineSetupOptions {
  /** The pipeline folder (diffusers / Optimum ONNX layout). */
  dir: string;
  /** One prompt conditioning every sample (trajectory error only). Exactly one of `prompt` and `classPrompts`. */
  prompt?: string;
  /**
   * A class-prompts file (`class-prompts.ts`: the format of models/latent-captions.json, or an array
   * of captions): sample i gets class i mod C's caption, and the decoded images are scored by the
   * quality meter (FD-classifier, class accuracy). Exactly one of `prompt` and `classPrompts`.
   */
  classPrompts?: string;
  /** Default "". */
  negativePrompt?: string;
  /** Image size in pixels. Default: the UNet's sample_size × the VAE factor. */
  height?: number;
  width?: number;
  /** With class prompts: the folder of fashion-classifier.onnx and fashion-test-stats.json. Default: the pipeline folder's parent. */
  meterDir?: string;
  threads?: number;
  maxBatch?: number;
  warn?: (msg: string) => void;
}

/**
 * A benchmark on a pipeline's denoiser (UNet or SD3-style transformer): the latents [C, H/f, W/f]
 * are the samples, the folder's scheduler config the sampling setup, and trajectory error is
 * measured on the latents.
 *
 * With one `prompt`, its embeddings condition every sample (guided against the negative prompt's)
 * and there is no quality meter (no classifier exists for these images). With `classPrompts`, sample
 * i is conditioned on the caption of class i mod C; each cell's latents are decoded by the folder's
 * VAE (`decode`, the pipeline's own decode) and scored by the shipped Fashion-MNIST classifier, which
 * needs 1 × 28 × 28 images. The model hash covers the denoiser's bytes, the prompts (with class
 * prompts: the file's SHA-256, the chosen captions, the text encoder's and the VAE decoder's bytes)
 * and the size, so a cell key changes with any of them.
 */
export async function pipelineSetup(opts: PipelineSetupOptions): Promise<BenchSetup> {
  const warn = opts.warn ?? (() => {});
  if ((opts.prompt === undefined) === (opts.classPrompts === undefined)) {
    throw new Error(
      opts.prompt === undefined
        ? 'a pipeline bench needs a prompt (one prompt for every sample) or class prompts (a caption per class, e.g. models/latent-captions.json)'
        : 'give a prompt or class prompts, not both: class prompts condition each sample on its class caption',
    );
  }
  const { readClassPrompts, classOfSample, gatherConditioning } = await import('./class-prompts.js');
  // the file is checked before anything loads
  let classPrompts = opts.classPrompts !== undefined ? readClassPrompts(opts.classPrompts) : undefined;
  const { nodePipelineReader } = await import('../node/index.js');
  const { StableDiffusionPipeline } = await import('../model/index.js');
  const ort = await import('onnxruntime-node');
  let meter: QualityMeter | undefined;
  if (classPrompts) {
    meter = await fashionMeter(ort, opts.meterDir ?? join(opts.dir, '..'), opts.threads, warn);
    if (meter?.numClasses !== undefined) classPrompts = readClassPrompts(classPrompts.file, meter.numClasses);
  }
  let pipe: import('../model/index.js').StableDiffusionPipeline;
  try {
    pipe = await StableDiffusionPipeline.load({
      ort: ort as unknown as import('../model/index.js').OrtModuleLike,
      reader: nodePipelineReader(opts.dir),
      maxBatch: opts.maxBatch ?? 64,
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
  } catch (e) {
    await meter?.release?.();
    throw e;
  }
  try {
    const prep = await pipe.sampleRun({
      prompt: opts.prompt ?? classPrompts!.captions[0]!,
      negativePrompt: opts.negativePrompt ?? '',
      guidanceScale: 1,
      ...(opts.height !== undefined ? { height: opts.height } : {}),
      ...(opts.width !== undefined ? { width: opts.width } : {}),
    });
    const { latentHeight: h, latentWidth: w } = prep;
    const model = await pipe.unet(h, w);
    const card = pipe.unetCard(h, w);
    const sampling = cardSamplingSetup(card);
    const bytes = await pipe.unetBytes();
    const timeIds = pipe.sdxl ? pipe.sdxlTimeIds(prep.height, prep.width) : undefined;
    const rows = (e: typeof prep.prompt, n: number) => pipe.promptRows(e, n, timeIds);
    const featureReuse = await onnxFeatureReuseFactory(ort, bytes, card, opts.threads, opts.maxBatch ?? 64, warn);
    const common = { modelPath: opts.dir, model, sampling, schedule: sampling.schedule, nullLabel: undefined, versions: {} };
    const reuse = featureReuse ? { featureReuse } : {};
    if (!classPrompts) {
      const promptConditioning = (g: number, n: number) => {
        if (g === 0) return { cond: rows(prep.negativePrompt, n) };
        if (g === 1) return { cond: rows(prep.prompt, n) };
        return { cond: rows(prep.prompt, n), guidance: { scale: g, uncond: rows(prep.negativePrompt, n) } };
      };
      const modelHash = sha256Hex(
        canonicalJson({ unet: sha256Hex(bytes), prompt: opts.prompt, negativePrompt: opts.negativePrompt ?? '', size: [prep.height, prep.width] }),
      );
      return {
        ...common,
        kind: 'pipeline',
        name: `${pipe.label} (${prep.width}×${prep.height}, "${opts.prompt}")`,
        modelHash,
        conditional: false,
        numClasses: 0,
        meter: undefined,
        promptConditioning,
        ...reuse,
        release: () => pipe.release(),
      };
    }
    const cp = classPrompts;
    const imageShape = [pipe.imageChannels, prep.height, prep.width];
    if (meter && imageShape.join('x') !== '1x28x28') {
      throw new Error(
        `the quality meter scores 1×28×28 grey images (Fashion-MNIST), and ${pipe.label} decodes ${imageShape.join('×')}: ` +
          'class prompts measure FD-classifier on our latent Fashion-MNIST pipelines only — bench this folder with one prompt (trajectory error only)',
      );
    }
    const classEmbeddings = [];
    for (const [k, text] of cp.captions.entries()) {
      const e = await pipe.encodePrompt(text);
      const given = cp.ids[k];
      if (given && e.inputIds && given.join(',') !== e.inputIds.join(',')) {
        throw new Error(
          `class prompts ${cp.file}: the ids of "${text}" ([${given.join(', ')}]) are not what ${pipe.label}'s tokenizer makes of it ([${e.inputIds.join(', ')}]): ` +
            "the captions were tokenized for another model — use this folder's captions file, or drop the ids",
        );
      }
      classEmbeddings.push(e);
    }
    const classRows = classEmbeddings.map((e) => rows(e, 1));
    const C = cp.captions.length;
    const promptConditioning = (g: number, n: number, offset = 0) => {
      if (g === 0) return { cond: rows(prep.negativePrompt, n) };
      const cond = gatherConditioning(
        classRows,
        Array.from({ length: n }, (_, i) => classOfSample(offset + i, C)),
      );
      if (g === 1) return { cond };
      return { cond, guidance: { scale: g, uncond: rows(prep.negativePrompt, n) } };
    };
    const latentSize = pipe.latentChannels * h * w;
    const decode = async (latents: Float32Array, count: number, batch: number): Promise<Float32Array> => {
      if (latents.length !== count * latentSize) throw new RangeError(`decode: ${latents.length} latent values for ${count} samples of ${latentSize}`);
      const per = imageShape[0]! * imageShape[1]! * imageShape[2]!;
      const images = new Float32Array(count * per);
      for (let o = 0; o < count; o += batch) {
        const n = Math.min(batch, count - o);
        images.set(await pipe.decode(latents.subarray(o * latentSize, (o + n) * latentSize), n, h, w), o * per);
      }
      return images;
    };
    const reader = nodePipelineReader(opts.dir);
    const partHash = async (part: string) => sha256Hex(await reader.readBytes(`${part}/model.onnx`));
    const modelHash = sha256Hex(
      canonicalJson({
        [pipe.denoiser]: sha256Hex(bytes),
        textEncoder: await partHash('text_encoder'),
        vaeDecoder: await partHash('vae_decoder'),
        classPrompts: { sha256: cp.sha256, captions: cp.captions },
        negativePrompt: opts.negativePrompt ?? '',
        size: [prep.height, prep.width],
      }),
    );
    return {
      ...common,
      kind: 'pipeline',
      name: `${displayPath(pipe.label)} (${prep.width}×${prep.height}, ${C} class prompts of ${basename(cp.file)})`,
      modelHash,
      conditional: true,
      numClasses: C,
      meter,
      promptConditioning,
      decode,
      ...reuse,
      async release() {
        await pipe.release();
        await meter?.release?.();
      },
    };
  } catch (e) {
    await pipe.release();
    await meter?.release?.();
    throw e;
  }
}

/**
 * Feature reuse for an ONNX model through the keyframe/reuse graph adapter
 * (src/model/feature-reuse-onnx-model.ts), loaded lazily so the bench runs without FR cells when
 * the graph layer cannot handle a model.
 */
async function onnxFeatureReuseFactory(
  ort: unknown,
  bytes: Uint8Array,
  card: import('../model/index.js').ModelCard,
  threads: number | undefined,
  maxBatch: number,
  warn: (msg: string) => void,
): Promise<((points: string | string[], options?: { probe?: true | string }) => Promise<FeatureReuseCapable>) | undefined> {
  let mod: typeof import('../model/index.js');
  try {
    mod = await import('../model/index.js');
  } catch (e) {
    warn(`feature reuse is unavailable (${(e as Error).message}): feature-reuse cells will fail`);
    return undefined;
  }
  return async (points, options) =>
    mod.FeatureReuseOnnxModel.create({
      ...(options?.probe !== undefined ? { probe: options.probe } : {}),
      ort: ort as import('../model/index.js').OrtModuleLike,
      model: bytes,
      points,
      card,
      label: card.name,
      maxBatch,
      ...(threads !== undefined ? { threads } : {}),
    });
}

/** A folder as a report names it: relative to the working directory when inside it (reports are committed), else as given. */
function displayPath(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir;
}
