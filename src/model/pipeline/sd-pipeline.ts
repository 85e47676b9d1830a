/**
 * A Stable-Diffusion ONNX pipeline folder (diffusers / Optimum layout) as a library object: load
 * once, encode prompts with the CLIP tokenizer and text encoder, sample latents through the same
 * `sample()` as every other model (any solver, PFDiff, feature reuse through `wrapModel`), decode
 * with the VAE. onnxruntime is injected and files come through a {@link PipelineFileReader}, so the
 * same object runs in Node.js and in a browser.
 *
 * Text-to-image as diffusers' `StableDiffusionPipeline`: prompt embeddings e_c = CLIP(prompt) and
 * e_u = CLIP(negative prompt, "" by default), one guided UNet batch [e_u; e_c] per step combined as
 * ε̃ = ε_u + w·(ε_c − ε_u) (Ho & Salimans 2022, eq. 6), with guidance rescale φ (Lin et al. 2023,
 * §3.4); w = 1 runs the conditional batch alone and w = 0 the negative prompt alone (the project's
 * guidance rule, `card-sample-options.ts`). Initial latents are N(0, I) of shape
 * [4, H/8, W/8] (or given); the image is vae_decoder(latents / scaling_factor), mapped from [−1, 1]
 * to 8-bit RGB as diffusers' `(x/2 + 0.5).clamp(0, 1)·255` rounded.
 *
 * SDXL folders (`text_encoder_2/`, UNet inputs `text_embeds` and `time_ids`), as diffusers'
 * `StableDiffusionXLPipeline` (Podell et al. 2023, §2.2): the prompt embedding is the penultimate
 * hidden state of each encoder (Optimum's `hidden_states.{L−1}` of an export with hidden states),
 * concatenated on the feature axis; the pooled embedding is `text_embeds` of the second encoder; the
 * size/crop conditioning is time_ids = [orig_h, orig_w, crop_top, crop_left, target_h, target_w]
 * per sample. Under guidance the negative rows carry the negative prompt's embeddings, or zeros for
 * both when the folder's `force_zeros_for_empty_prompt` (default true) is set and the negative prompt
 * is empty or absent (diffusers zeroes when it is not given; the CLI's default is the empty prompt).
 *
 * SD3-style folders (`transformer/` instead of `unet/`, `sd3-transformer.ts`), as diffusers'
 * `StableDiffusion3Pipeline` (Esser et al. 2024): the network predicts the rectified-flow velocity
 * v = ε − x₀ on x_σ = (1 − σ)·x₀ + σ·ε at timestep σ·1000, sampled on the folder's
 * `FlowMatchEulerDiscreteScheduler` config; the same guided batch [e_u; e_c] with the pooled
 * embedding as `pooled_projections`; the VAE's `shift_factor` s: decode(z/scaling_factor + s),
 * encode z = (E(x) − s)·scaling_factor. Either kind samples from embeddings the caller gives
 * (`embeddings`), which is how a folder without text encoders is used.
 * @packageDocumentation
 */
import type { Conditioning, DiffusionModel } from '../../core/model.js';
import { gaussianBatch } from '../../core/rng.js';
import { planSample, sample, type PfdiffSettings, type SampleOptions, type SampleResult } from '../../core/sample.js';
import { CLEAN_TIME } from '../../core/schedule/noise-schedule.js';
import { checkCount } from '../../core/solvers/define-solver.js';
import type { StepInfo } from '../../core/solvers/types.js';
import type { RgbaImage } from '../../io/image-grid.js';
import { sampleOptionsFromCard, type CardSampleRequest } from '../card-sample-options.js';
import { cardSamplingSetup, parseModelCard, type CardSamplingSetup, type ModelCard } from '../model-card.js';
import type { FeatureReuseOnnxModel, FeatureReuseOnnxStats } from '../feature-reuse-onnx-model.js';
import { createFeatureReuseSetup, type FeatureReuseChoice, type FeatureReuseRunSetup } from '../feature-reuse-setup.js';
import { OnnxDiffusionModel } from '../onnx-backend.js';
import { createOnnxSession, onnxSessionOptions } from '../onnx-session.js';
import type { OrtModuleLike, OrtSessionLike, OrtTensorLike } from '../ort-types.js';
import { ClipTokenizer } from './clip-tokenizer.js';
import { fitLatentRgbProjection, previewLatents, type LatentRgbProjection } from './latent-preview.js';
import {
  checkPipelineParts,
  checkSdxlConditioning,
  intField,
  readPipelineConfigs,
  PipelineFolderError,
  type DenoiserKind,
  type PipelineConfigs,
} from './pipeline-config.js';
import type { PipelineFileReader } from './pipeline-files.js';
import { checkSd3Transformer, sd3PromptBlockers, SD3_CARD_INPUTS, SD3_POOLED_INPUT, SD3_TRANSFORMER_OUTPUT } from './sd3-transformer.js';

/** Options of {@link StableDiffusionPipeline.load}. */
export interface StableDiffusionLoadOptions {
  /** The onnxruntime module (`onnxruntime-node` or `onnxruntime-web`). */
  ort: OrtModuleLike;
  /** The pipeline folder. */
  reader: PipelineFileReader;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** onnxruntime execution providers. */
  executionProviders?: readonly unknown[];
  /** Largest UNet batch of one `session.run` (default 64; a guided call of B images is 2B). */
  maxBatch?: number;
}

/** One encoded prompt (or embeddings the caller gives: then without ids). */
export interface PromptEmbedding {
  /** The tokenizer's `maxLength` ids; absent for embeddings given by the caller. */
  readonly inputIds?: readonly number[];
  /** `last_hidden_state`, [tokens, dim] flattened. */
  readonly hiddenStates: Float32Array;
  /** [tokens, dim]. */
  readonly shape: readonly [number, number];
  /**
   * The pooled embedding: SDXL's second-encoder `text_embeds` [D2] (the UNet's `text_embeds`), SD3's
   * `pooler_output` [P] (the transformer's `pooled_projections`).
   */
  readonly pooled?: Float32Array;
}

/** SDXL's micro-conditioning of a request (`time_ids`), in pixels. */
export interface SdxlSizeConditioning {
  /** (h, w) of the training image the model should imitate. Default: the output size. */
  originalSize?: readonly [number, number];
  /** (top, left) of the crop. Default (0, 0). */
  cropsCoordsTopLeft?: readonly [number, number];
  /** (h, w) the model should aim at. Default: the output size. */
  targetSize?: readonly [number, number];
}

/**
 * A text-to-image request (every field optional but the prompt). The solver fields (`solver` — default the folder's scheduler, PNDM → `plms` —,
 * `sampler`, `solverOptions`, `nfe` / `steps` — diffusers' `num_inference_steps` —, `spacing`) are
 * those of {@link CardSampleRequest}: they go through the same `sampleOptionsFromCard`.
 */
export interface TextToImageRequest extends Pick<CardSampleRequest, 'solver' | 'sampler' | 'solverOptions' | 'nfe' | 'steps' | 'spacing'> {
  /** The prompt; needs the folder's text encoder. Leave it out when `embeddings` are given. */
  prompt?: string;
  /** The unconditional branch's prompt. Default "". */
  negativePrompt?: string;
  /**
   * Embeddings instead of prompts (a folder without text encoders, or the caller's own encoder): the
   * prompt's and the negative branch's (`negative`, needed under guidance w ∉ {0, 1}), each
   * [tokens, dim] with the pooled embedding where the denoiser takes one (SD3, SDXL).
   */
  embeddings?: { prompt: PromptEmbedding; negative?: PromptEmbedding };
  /** Guidance scale w. Default 7.5. */
  guidanceScale?: number;
  /** Guidance rescale φ ∈ [0, 1]. Default 0. */
  guidanceRescale?: number;
  /** SDXL folders only: the `time_ids` sizes (see {@link SdxlSizeConditioning}). */
  sdxl?: SdxlSizeConditioning;
  /** Image size in pixels (multiples of the VAE factor, 8 for SD). Default: the denoiser's sample_size × the factor. */
  height?: number;
  width?: number;
  /** Images per prompt. Default 1. */
  batch?: number;
  seed?: number;
  /** PFDiff `k_h` (e.g. `2_1`) or settings. */
  pfdiff?: string | PfdiffSettings;
  /** Initial latents [batch, C, H/f, W/f] (C latent channels, f the VAE factor) instead of seeded noise. */
  initialLatents?: Float32Array;
  /**
   * FRDiff feature reuse on the UNet: keyframes (interval or policy), reuse points (default
   * `frdiff`), mixing. The keyframe/reuse graphs are cut from `unet/model.onnx` for this run.
   */
  featureReuse?: FeatureReuseChoice;
  /** Wrap the UNet model (recording, counting) before sampling; applied over feature reuse when both are given. */
  wrapModel?: (unet: DiffusionModel) => DiffusionModel | Promise<DiffusionModel>;
  /** After each step: the step info and a cheap RGB preview of the latents (`preview()` maps `info.x`). */
  onStep?: (info: StepInfo, preview: () => RgbaImage[]) => void | Promise<void>;
  /**
   * After each step: a preview per sample, h × w = latent resolution (H/8 × W/8), RGBA, of the
   * solver's latest x̂₀ when it has one (the image the step points at), else of the state x, through
   * the pipeline's fitted linear latent → RGB map ({@link StableDiffusionPipeline.latentRgbProjection}).
   */
  onPreview?: (info: StepInfo, images: RgbaImage[]) => void | Promise<void>;
  signal?: AbortSignal;
}

/** An image-to-image request: a text-to-image request with the start image and the strength. */
export interface ImageToImageRequest extends TextToImageRequest {
  /** The start image(s): RGBA rasters (8-bit), or [B, 3, H, W] values in [−1, 1] with their size. */
  image: RgbaImage | readonly RgbaImage[] | { data: Float32Array; batch: number; height: number; width: number };
  /** How much of the grid to run, in (0, 1]: 1 starts from (almost) pure noise. Default 0.8 (diffusers'). */
  strength?: number;
  /** z₀ from the encoder's distribution: a sample (diffusers' default) or its mean. Default `sample`. */
  latentMode?: 'sample' | 'mean';
  /** ε of x_{t0} = α·z₀ + σ·ε instead of seeded noise. */
  noise?: Float32Array;
}

/** What {@link StableDiffusionPipeline.sampleRun} returns. */
export interface PipelineSampleRun {
  /** `sample()` options without the model. */
  readonly run: Omit<SampleOptions, 'model'>;
  readonly prompt: PromptEmbedding;
  readonly negativePrompt: PromptEmbedding;
  readonly batch: number;
  /** Image size in pixels. */
  readonly height: number;
  readonly width: number;
  /** Latent size (pixels / VAE factor). */
  readonly latentHeight: number;
  readonly latentWidth: number;
}

/** What {@link StableDiffusionPipeline.textToImage} returns. */
export interface TextToImageResult {
  /** Final latents [batch, C, H/f, W/f]. */
  readonly latents: Float32Array;
  /** The VAE output [batch, image channels (3, or 1 for grey), H, W], nominally in [−1, 1]. */
  readonly decoded: Float32Array;
  /** One RGBA image per sample. */
  readonly images: RgbaImage[];
  readonly prompt: PromptEmbedding;
  readonly negativePrompt: PromptEmbedding;
  /** The sampling run (calls, grid, times). */
  readonly run: SampleResult;
  /** Feature reuse's calls per kind and cache memory, when it was on. */
  readonly featureReuse?: FeatureReuseOnnxStats;
  /**
   * The feature-reuse setup of the run, when it was on: the policy over the run's calls, the wrapper
   * (`model.stats`: full, reuse and skipped calls) and the network (released; its stats and points stay readable).
   */
  readonly featureReuseSetup?: FeatureReuseRunSetup<FeatureReuseOnnxModel>;
}

/**
 * A loaded Stable-Diffusion pipeline (see the module notes): SD 1.x/2.x/SDXL with a UNet, or SD3-style
 * with a flow-matching transformer. `unet(h, w)`, `unetCard` and `unetBytes` give the denoiser of
 * either kind.
 */
export class StableDiffusionPipeline {
  readonly configs: PipelineConfigs;
  /** The sampling setup of the folder's scheduler config. */
  readonly setup: CardSamplingSetup;
  /** VAE `scaling_factor` (0.18215 for SD 1.x, 1.5305 for SD3). */
  readonly scalingFactor: number;
  /** VAE `shift_factor` (SD3: 0.0609; 0 when the config has none). */
  readonly shiftFactor: number;
  /** Spatial factor of the VAE (2^(blocks − 1), 8 for SD). */
  readonly vaeFactor: number;
  /** Latent channels of the denoiser. */
  readonly latentChannels: number;
  /** Channels of the decoded image (the VAE decoder's `out_channels`: 3, or 1 for grey images). */
  readonly imageChannels: number;
  /** The text encoder's hidden size (the denoiser's context width when there is no text encoder). */
  readonly hiddenSize: number;
  readonly label: string;
  /** Whether the folder is SDXL (second text encoder, UNet `text_embeds` and `time_ids`). */
  readonly sdxl: boolean;
  /** The denoiser: `unet` or `transformer` (SD3). */
  readonly denoiser: DenoiserKind;
  private readonly opts: StableDiffusionLoadOptions;
  private readonly textEncoder: OrtSessionLike | undefined;
  private readonly clipTokenizer: ClipTokenizer | undefined;
  private readonly textEncoder2: OrtSessionLike | undefined;
  private readonly tokenizer2: ClipTokenizer | undefined;
  private readonly vaeDecoder: OrtSessionLike;
  private readonly unetSource: string | Uint8Array;
  private vaeEncoder: Promise<OrtSessionLike> | undefined;
  private readonly unets = new Map<string, Promise<OnnxDiffusionModel>>();
  private readonly cardFor: (shape: readonly number[]) => ModelCard;
  private projection: Promise<LatentRgbProjection> | undefined;
  private fittedProjection: LatentRgbProjection | undefined;

  private constructor(
    opts: StableDiffusionLoadOptions,
    parts: {
      tokenizer: ClipTokenizer | undefined;
      configs: PipelineConfigs;
      textEncoder: OrtSessionLike | undefined;
      vaeDecoder: OrtSessionLike;
      unetSource: string | Uint8Array;
      hiddenSize: number;
      textEncoder2?: OrtSessionLike;
      tokenizer2?: ClipTokenizer;
      /** The denoiser's output names (the card names `out_hidden_states` for SD3 when it is there). */
      denoiserOutputs: readonly string[];
    },
  ) {
    this.opts = opts;
    this.label = opts.reader.label;
    this.clipTokenizer = parts.tokenizer;
    this.configs = parts.configs;
    this.textEncoder = parts.textEncoder;
    this.vaeDecoder = parts.vaeDecoder;
    this.unetSource = parts.unetSource;
    this.hiddenSize = parts.hiddenSize;
    this.textEncoder2 = parts.textEncoder2;
    this.tokenizer2 = parts.tokenizer2;
    this.sdxl = parts.textEncoder2 !== undefined;
    this.denoiser = parts.configs.denoiser;
    const sdxlInputs = this.sdxl ? { text_embeds: { role: 'extra' as const }, time_ids: { role: 'extra' as const } } : {};
    const sf = this.configs.vae['scaling_factor'];
    this.scalingFactor = typeof sf === 'number' && sf > 0 ? sf : 0.18215;
    const shift = this.configs.vae['shift_factor'];
    this.shiftFactor = typeof shift === 'number' && Number.isFinite(shift) ? shift : 0;
    const blocks = this.configs.vae['block_out_channels'];
    this.vaeFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
    this.latentChannels = intField(this.configs.unet, 'in_channels') ?? 4;
    this.imageChannels = intField(this.configs.vae, 'out_channels') ?? 3;
    const schedulerConfig = this.configs.scheduler;
    const unetConfig = this.configs.unet;
    const inputs = this.denoiser === 'transformer' ? SD3_CARD_INPUTS : { timestep: { role: 'timestep' }, ...sdxlInputs };
    const output = this.denoiser === 'transformer' && parts.denoiserOutputs.includes(SD3_TRANSFORMER_OUTPUT) ? { output: SD3_TRANSFORMER_OUTPUT } : {};
    this.cardFor = (shape) =>
      parseModelCard(
        {
          name: `${this.label} ${this.denoiser}`,
          scheduler_config: schedulerConfig,
          sample_size: shape,
          inputs,
          ...output,
          ...(typeof unetConfig['prediction_type'] === 'string' ? { prediction_type: unetConfig['prediction_type'] } : {}),
        },
        `${this.label}/scheduler/scheduler_config.json`,
      );
    this.setup = cardSamplingSetup(this.cardFor([this.latentChannels, 8, 8]));
  }

  /**
   * Load a pipeline folder: check its parts (missing files, tokenizer ↔ text encoder vocabulary,
   * text encoder ↔ UNet cross-attention width) and open the text encoder and VAE decoder sessions;
   * the UNet session opens on first use per latent size. Throws {@link PipelineFolderError} naming
   * the problem and the fix before any model call.
   */
  static async load(opts: StableDiffusionLoadOptions): Promise<StableDiffusionPipeline> {
    const { reader, ort } = opts;
    const configs = await readPipelineConfigs(reader);
    const d = configs.denoiser;
    const tokenizer = configs.hasTextEncoder ? await ClipTokenizer.load(reader, 'tokenizer') : undefined;
    const sessionOptions = onnxSessionOptions(opts);
    const source = async (part: string) => (reader.pathOf ? reader.pathOf(`${part}/model.onnx`) : reader.readBytes(`${part}/model.onnx`));
    const unetSource = await source(d);
    const unetProbe = await createOnnxSession(ort, unetSource, sessionOptions, `${reader.label}/${d}/model.onnx`);
    const lastDim = (meta: OrtSessionLike['inputMetadata'] | OrtSessionLike['outputMetadata'], name: string) => {
      const m = meta?.find((v) => v.name === name);
      const d = m && m.isTensor ? m.shape?.[m.shape.length - 1] : undefined;
      return typeof d === 'number' && d > 0 ? d : undefined;
    };
    const unetContextDim = lastDim(unetProbe.inputMetadata, 'encoder_hidden_states');
    const denoiserPooled = lastDim(unetProbe.inputMetadata, SD3_POOLED_INPUT);
    const unetInputs = [...unetProbe.inputNames];
    const denoiserOutputs = [...unetProbe.outputNames];
    await unetProbe.release?.();
    if (d === 'transformer') checkSd3Transformer(reader.label, { inputNames: unetInputs, outputNames: denoiserOutputs });
    const textEncoder = configs.hasTextEncoder
      ? await createOnnxSession(ort, await source('text_encoder'), sessionOptions, `${reader.label}/text_encoder/model.onnx`)
      : undefined;
    const textHidden = textEncoder ? lastDim(textEncoder.outputMetadata, 'last_hidden_state') : undefined;
    const index2 = configs.modelIndex['text_encoder_2'];
    const hasTextEncoder2 =
      d === 'unet' && ((await reader.exists('text_encoder_2/model.onnx')) || (Array.isArray(index2) && index2.some((v) => v !== null)));
    let sdxl: { textEncoder2: OrtSessionLike; tokenizer2: ClipTokenizer } | undefined;
    try {
      if (d === 'unet' && checkSdxlConditioning(reader.label, { hasTextEncoder2, unetInputs })) {
        if (!(await reader.exists('text_encoder_2/model.onnx'))) {
          throw new PipelineFolderError(
            `${reader.label}/model_index.json names text_encoder_2 but text_encoder_2/model.onnx is missing: copy it from the same export`,
          );
        }
        if (!textEncoder || !tokenizer) {
          throw new PipelineFolderError(`${reader.label} is SDXL but has no text_encoder/ and tokenizer/: copy them from the same export`);
        }
        const tokenizer2 = (await reader.exists('tokenizer_2/vocab.json')) ? await ClipTokenizer.load(reader, 'tokenizer_2') : tokenizer;
        const textEncoder2 = await createOnnxSession(ort, await source('text_encoder_2'), sessionOptions, `${reader.label}/text_encoder_2/model.onnx`);
        sdxl = { textEncoder2, tokenizer2 };
        checkSdxlEncoder(`${reader.label}/text_encoder/model.onnx`, textEncoder, false);
        checkSdxlEncoder(`${reader.label}/text_encoder_2/model.onnx`, textEncoder2, true);
      }
      let textHidden2 = sdxl ? lastDim(sdxl.textEncoder2.outputMetadata, 'last_hidden_state') : undefined;
      if (sdxl && textHidden2 === undefined && (await reader.exists('text_encoder_2/config.json'))) {
        const c2 = JSON.parse(new TextDecoder().decode(await reader.readBytes('text_encoder_2/config.json'))) as Record<string, unknown>;
        textHidden2 = intField(c2, 'hidden_size');
      }
      if (textEncoder && tokenizer) {
        const pooledOut = d === 'transformer' ? lastDim(textEncoder.outputMetadata, 'pooler_output') : undefined;
        checkPipelineParts(reader.label, configs, {
          tokenizerVocab: tokenizer.vocabSize,
          textHidden,
          unetContextDim,
          ...(textHidden2 !== undefined ? { textHidden2 } : {}),
          ...(d === 'transformer' ? { textPooled: pooledOut, denoiserPooled } : {}),
        });
        const needed = ['last_hidden_state', ...(d === 'transformer' ? ['pooler_output'] : [])];
        if (!textEncoder.inputNames.includes('input_ids') || needed.some((n) => !textEncoder.outputNames.includes(n))) {
          throw new PipelineFolderError(
            `${reader.label}/text_encoder/model.onnx has inputs ${textEncoder.inputNames.join(', ')} and outputs ${textEncoder.outputNames.join(', ')}; ` +
              `a CLIP text encoder export takes input_ids and returns ${needed.join(' and ')}` +
              (d === 'transformer' ? ' (the transformer takes the pooled embedding as pooled_projections)' : '') +
              ' — re-export it with Optimum',
          );
        }
      }
    } catch (err) {
      await textEncoder?.release?.();
      await sdxl?.textEncoder2.release?.();
      throw err;
    }
    const vaeDecoder = await createOnnxSession(ort, await source('vae_decoder'), sessionOptions, `${reader.label}/vae_decoder/model.onnx`);
    const contextKey = d === 'unet' ? 'cross_attention_dim' : 'joint_attention_dim';
    const hiddenSize = textHidden ?? intField(configs.textEncoder, 'hidden_size') ?? unetContextDim ?? intField(configs.unet, contextKey) ?? 768;
    return new StableDiffusionPipeline(opts, {
      tokenizer,
      configs,
      textEncoder,
      vaeDecoder,
      unetSource,
      hiddenSize,
      denoiserOutputs,
      ...(sdxl ?? {}),
    });
  }

  /** The CLIP tokenizer; throws {@link PipelineFolderError} naming the missing parts for a folder without a text encoder. */
  get tokenizer(): ClipTokenizer {
    if (!this.clipTokenizer) this.checkCanEncode();
    return this.clipTokenizer!;
  }

  /**
   * The denoiser's model card for latents [C, h, w]: the folder's scheduler config, the timestep as
   * declared (UNet: 0-d; SD3 transformer: [B]), SD3's roles for a transformer (`sd3-transformer.ts`).
   */
  unetCard(latentHeight: number, latentWidth: number): ModelCard {
    return this.cardFor([this.latentChannels, latentHeight, latentWidth]);
  }

  /** The denoiser (UNet or transformer) as a {@link OnnxDiffusionModel} for latents [C, h, w] (one session per size, cached). */
  unet(latentHeight: number, latentWidth: number): Promise<OnnxDiffusionModel> {
    const shape = [this.latentChannels, latentHeight, latentWidth];
    const key = shape.join('x');
    let m = this.unets.get(key);
    if (!m) {
      m = OnnxDiffusionModel.create({
        ort: this.opts.ort,
        model: this.unetSource,
        card: this.unetCard(latentHeight, latentWidth),
        label: `${this.label}/${this.denoiser}/model.onnx`,
        ...(this.opts.threads !== undefined ? { threads: this.opts.threads } : {}),
        ...(this.opts.executionProviders ? { executionProviders: this.opts.executionProviders } : {}),
        ...(this.opts.maxBatch !== undefined ? { maxBatch: this.opts.maxBatch } : {}),
      });
      this.unets.set(key, m);
    }
    return m;
  }

  /**
   * Tokenize and encode a prompt: `last_hidden_state` of the text encoder; for SDXL the penultimate
   * hidden states of both encoders concatenated on the feature axis, and the second encoder's pooled
   * `text_embeds` (see the module notes).
   */
  async encodePrompt(text: string): Promise<PromptEmbedding> {
    this.checkCanEncode();
    const tokenizer = this.tokenizer;
    const textEncoder = this.textEncoder!;
    const ids = tokenizer.encode(text);
    if (this.denoiser === 'transformer') {
      const { hidden, dim, pooled } = await this.runEncoder(textEncoder, ids, 'last');
      return { inputIds: ids, hiddenStates: hidden, shape: [ids.length, dim], pooled: pooled! };
    }
    if (!this.textEncoder2) {
      const { hidden, dim } = await this.runEncoder(textEncoder, ids, 'last');
      return { inputIds: ids, hiddenStates: hidden, shape: [ids.length, dim] };
    }
    const ids2 = this.tokenizer2!.encode(text);
    const e1 = await this.runEncoder(textEncoder, ids, 'penultimate');
    const e2 = await this.runEncoder(this.textEncoder2, ids2, 'penultimate');
    const T = ids.length;
    if (ids2.length !== T)
      throw new PipelineFolderError(`${this.label}: tokenizer_2 pads to ${ids2.length} tokens, tokenizer to ${T}: use the tokenizers of one export`);
    const D = e1.dim + e2.dim;
    const hidden = new Float32Array(T * D);
    for (let t = 0; t < T; t++) {
      hidden.set(e1.hidden.subarray(t * e1.dim, (t + 1) * e1.dim), t * D);
      hidden.set(e2.hidden.subarray(t * e2.dim, (t + 1) * e2.dim), t * D + e1.dim);
    }
    return { inputIds: ids, hiddenStates: hidden, shape: [T, D], pooled: e2.pooled! };
  }

  /** Throws a {@link PipelineFolderError} naming the missing parts when this folder cannot encode a prompt. */
  private checkCanEncode(): void {
    const blockers = this.denoiser === 'transformer' ? sd3PromptBlockers(this.configs.modelIndex, this.configs.hasTextEncoder) : [];
    if (!this.textEncoder && !blockers.length) blockers.push('text_encoder/model.onnx', 'tokenizer/');
    if (blockers.length) {
      throw new PipelineFolderError(
        `${this.label} cannot encode a prompt: it has no ${blockers.join(', ')}. ` +
          'Give the conditioning instead (textToImage({ embeddings: { prompt, negative } }) with [tokens, dim] hidden states and the pooled vector), ' +
          'or add a CLIP text encoder (text_encoder/ with input_ids → last_hidden_state, pooler_output) and its tokenizer/ from the same export',
      );
    }
  }

  /** One text encoder run: the last or the penultimate hidden state [tokens, dim] (and `text_embeds` or `pooler_output` when the export has it). */
  private async runEncoder(
    session: OrtSessionLike,
    ids: readonly number[],
    which: 'last' | 'penultimate',
  ): Promise<{ hidden: Float32Array; dim: number; pooled?: Float32Array }> {
    const { Tensor } = this.opts.ort;
    const meta = session.inputMetadata?.find((m) => m.name === 'input_ids');
    const int32 = meta && meta.isTensor && meta.type === 'int32';
    const feed = int32
      ? new Tensor('int32', Int32Array.from(ids), [1, ids.length])
      : new Tensor('int64', BigInt64Array.from(ids.map((v) => BigInt(v))), [1, ids.length]);
    const out = await session.run({ input_ids: feed });
    try {
      const name = which === 'last' ? 'last_hidden_state' : penultimateName(session.outputNames)!;
      const h = out[name]!;
      const pooled = out['text_embeds'] ?? out['pooler_output'];
      return {
        hidden: Float32Array.from(h.data as Float32Array),
        dim: h.dims[2]!,
        ...(pooled ? { pooled: Float32Array.from(pooled.data as Float32Array) } : {}),
      };
    } finally {
      for (const v of Object.values(out)) v.dispose?.();
    }
  }

  /**
   * VAE decode: latents z [B, C, h, w] → image [B, image channels, f·h, f·w] of
   * vae_decoder(z / scaling_factor + shift_factor) (diffusers' SD3 pipeline; shift 0 for SD 1.x/2.x/SDXL).
   */
  async decode(latents: Float32Array, batch: number, latentHeight: number, latentWidth: number): Promise<Float32Array> {
    const n = batch * this.latentChannels * latentHeight * latentWidth;
    if (latents.length !== n)
      throw new RangeError(`decode: ${latents.length} latent values for [${batch},${this.latentChannels},${latentHeight},${latentWidth}]`);
    const scaled = new Float32Array(n);
    for (let i = 0; i < n; i++) scaled[i] = latents[i]! / this.scalingFactor + this.shiftFactor;
    const input = new this.opts.ort.Tensor('float32', scaled, [batch, this.latentChannels, latentHeight, latentWidth]);
    const name = this.vaeDecoder.inputNames[0]!;
    const out = await this.vaeDecoder.run({ [name]: input });
    try {
      const y: OrtTensorLike = out['sample'] ?? out[this.vaeDecoder.outputNames[0]!]!;
      return Float32Array.from(y.data as Float32Array);
    } finally {
      for (const v of Object.values(out)) v.dispose?.();
    }
  }

  /** Text to image (see the module notes). Errors in the request are thrown before any model call. */
  async textToImage(req: TextToImageRequest): Promise<TextToImageResult> {
    return this.generate(req, undefined);
  }

  /**
   * Image to image (diffusers' `StableDiffusionImg2ImgPipeline`): the image [−1, 1] is encoded,
   * z₀ = scaling_factor · (mean + exp(logvar/2)·ε′ − shift_factor) (or the mean), the run's grid of S intervals is
   * cut to its last ⌊S·strength⌋ (so strength 1 starts at the noisiest time, 0.5 halfway), and
   * sampling starts from x_{t₀} = α_{t₀}·z₀ + σ_{t₀}·ε. Needs `vae_encoder/` in the folder.
   */
  async imageToImage(req: ImageToImageRequest): Promise<TextToImageResult> {
    const strength = req.strength ?? 0.8;
    if (!(strength > 0 && strength <= 1)) throw new RangeError(`strength must be in (0, 1], got ${strength}`);
    const enc = await this.vaeEncoderSession();
    const { image, batch: imgBatch, height, width } = imageTensor(req.image, this.imageChannels);
    const batch = req.batch ?? imgBatch;
    if (batch !== imgBatch) throw new RangeError(`${imgBatch} image(s) for a batch of ${batch}: give one image per sample`);
    const f = this.vaeFactor;
    if (height % f !== 0 || width % f !== 0)
      throw new RangeError(`the image is ${width}×${height}; image-to-image needs sides that are multiples of ${f} (crop or resize it)`);
    if ((req.height !== undefined && req.height !== height) || (req.width !== undefined && req.width !== width)) {
      throw new RangeError(`height/width (${req.width}×${req.height}) differ from the image's ${width}×${height}: leave them out`);
    }
    const params = await this.encodeImage(image, batch, height, width, enc);
    const C = this.latentChannels;
    const plane = (height / f) * (width / f);
    const size = C * plane;
    const z0 = new Float32Array(batch * size);
    const mode = req.latentMode ?? 'sample';
    const eps2 = mode === 'sample' ? gaussianBatch((req.seed ?? 0) ^ 0x5eed, batch, size) : undefined;
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < size; i++) {
        const mean = params.data[b * params.channels * plane + i]!;
        let v = mean;
        if (params.channels === 2 * C && eps2) {
          const logvar = Math.min(20, Math.max(-30, params.data[b * params.channels * plane + size + i]!));
          v = mean + Math.exp(0.5 * logvar) * eps2[b * size + i]!;
        }
        z0[b * size + i] = (v - this.shiftFactor) * this.scalingFactor;
      }
    }
    return this.generate({ ...req, batch, height, width }, { z0, strength, ...(req.noise ? { noise: req.noise } : {}) });
  }

  /** The VAE encoder's output for images [B, 3, H, W] in [−1, 1]: `latent_parameters` (mean ++ logvar) or an older export's `latent_sample`. */
  async encodeImage(
    image: Float32Array,
    batch: number,
    height: number,
    width: number,
    session?: OrtSessionLike,
  ): Promise<{ data: Float32Array; channels: number }> {
    const enc = session ?? (await this.vaeEncoderSession());
    const input = new this.opts.ort.Tensor('float32', image, [batch, this.imageChannels, height, width]);
    const out = await enc.run({ [enc.inputNames[0]!]: input });
    try {
      const y = out['latent_parameters'] ?? out['latent_sample'] ?? out[enc.outputNames[0]!]!;
      return { data: Float32Array.from(y.data as Float32Array), channels: y.dims[1]! };
    } finally {
      for (const v of Object.values(out)) v.dispose?.();
    }
  }

  private vaeEncoderSession(): Promise<OrtSessionLike> {
    if (!this.configs.hasVaeEncoder) {
      return Promise.reject(
        new PipelineFolderError(
          `${this.label} has no vae_encoder/model.onnx: image-to-image needs it — export the pipeline with its VAE encoder (Optimum does by default)`,
        ),
      );
    }
    this.vaeEncoder ??= (async () => {
      const r = this.opts.reader;
      const src = r.pathOf ? r.pathOf('vae_encoder/model.onnx') : await r.readBytes('vae_encoder/model.onnx');
      return createOnnxSession(this.opts.ort, src, onnxSessionOptions(this.opts), `${this.label}/vae_encoder/model.onnx`);
    })();
    return this.vaeEncoder;
  }

  /**
   * The `sample()` options of a text-to-image request without the model: the folder's scheduler
   * settings for the solver and budget, the prompt's embedding as `cond` (batch rows), the negative
   * prompt's as the guidance branch, the initial latents, the step callbacks. What `textToImage`
   * samples with; Auto-FR and the bench run the UNet with it (`unet(latentHeight, latentWidth)` or
   * the bytes of {@link unetBytes}, with {@link unetCard}). Throws on a bad request before any model call but the text encoder's.
   */
  async sampleRun(req: TextToImageRequest): Promise<PipelineSampleRun> {
    return this.prepare(req, undefined);
  }

  /** The denoiser's ONNX bytes (to cut feature-reuse graphs from). */
  async unetBytes(): Promise<Uint8Array> {
    return typeof this.unetSource === 'string' ? this.opts.reader.readBytes(`${this.denoiser}/model.onnx`) : this.unetSource;
  }

  /**
   * An embedding repeated as `rows` conditioning rows (the UNet's `encoder_hidden_states` of a
   * batch); for SDXL also `text_embeds` (the pooled embedding) and `time_ids` (given, or
   * [H, W, 0, 0, H, W] of the UNet's default size); for SD3 `pooled_projections` (the pooled embedding).
   */
  promptRows(e: PromptEmbedding, rows: number, timeIds?: readonly number[]): Conditioning {
    const repeat = (v: ArrayLike<number>) => {
      const out = new Float32Array(v.length * rows);
      for (let b = 0; b < rows; b++) out.set(v, b * v.length);
      return out;
    };
    const cond: Conditioning = { encoderHiddenStates: repeat(e.hiddenStates), encoderHiddenShape: e.shape };
    if (this.denoiser === 'transformer') {
      if (!e.pooled) {
        throw new RangeError(
          `${this.label}: the SD3 transformer takes ${SD3_POOLED_INPUT}: give the embedding its pooled vector (PromptEmbedding.pooled)`,
        );
      }
      return { ...cond, extra: { [SD3_POOLED_INPUT]: { data: repeat(e.pooled), shape: [e.pooled.length] } } };
    }
    if (!this.sdxl) return cond;
    if (!e.pooled) throw new Error(`${this.label} is SDXL: the embedding has no pooled text_embeds — encode it with this pipeline's encodePrompt`);
    const dflt = (intField(this.configs.unet, 'sample_size') ?? 128) * this.vaeFactor;
    const ids = timeIds ?? [dflt, dflt, 0, 0, dflt, dflt];
    if (ids.length !== 6 || ids.some((v) => !Number.isFinite(v))) throw new RangeError(`time_ids must be 6 finite numbers, got [${ids.join(', ')}]`);
    return {
      ...cond,
      extra: { text_embeds: { data: repeat(e.pooled), shape: [e.pooled.length] }, time_ids: { data: repeat(ids), shape: [6] } },
    };
  }

  /** SDXL's time_ids of a request: (orig_h, orig_w, crop_top, crop_left, target_h, target_w), diffusers' `_get_add_time_ids`. */
  sdxlTimeIds(height: number, width: number, size: SdxlSizeConditioning = {}): number[] {
    const o = size.originalSize ?? [height, width];
    const c = size.cropsCoordsTopLeft ?? [0, 0];
    const t = size.targetSize ?? [height, width];
    const ids = [o[0], o[1], c[0], c[1], t[0], t[1]];
    if (ids.some((v) => !Number.isFinite(v) || v < 0)) throw new RangeError(`sdxl sizes must be finite numbers ≥ 0, got time_ids [${ids.join(', ')}]`);
    return ids;
  }

  /** The negative embedding of a request: zeros (hidden and pooled) for an empty SDXL negative prompt when the folder forces zeros. */
  private async negativeEmbedding(text: string, like: PromptEmbedding): Promise<PromptEmbedding> {
    const force = this.configs.modelIndex['force_zeros_for_empty_prompt'];
    if (this.sdxl && text === '' && force !== false) {
      return {
        inputIds: this.tokenizer.encode(''),
        hiddenStates: new Float32Array(like.hiddenStates.length),
        shape: like.shape,
        pooled: new Float32Array(like.pooled!.length),
      };
    }
    return this.encodePrompt(text);
  }

  /** A caller's embedding checked against the denoiser: [tokens, context width], the pooled vector where it takes one. */
  private checkEmbedding(e: PromptEmbedding, what: string): PromptEmbedding {
    const [tokens, dim] = e.shape;
    if (!(Number.isInteger(tokens) && tokens > 0 && dim === this.hiddenSize) || e.hiddenStates.length !== tokens * dim) {
      throw new RangeError(
        `${what}: hidden states of shape [${e.shape.join(',')}] with ${e.hiddenStates.length} values; ` +
          `${this.label}'s ${this.denoiser} takes [tokens, ${this.hiddenSize}] per sample`,
      );
    }
    const pooledWidth = this.denoiser === 'transformer' ? intField(this.configs.unet, 'pooled_projection_dim') : undefined;
    if ((this.denoiser === 'transformer' || this.sdxl) && !e.pooled) {
      throw new RangeError(`${what}: ${this.label}'s ${this.denoiser} also takes the pooled embedding: give ${what}.pooled`);
    }
    if (pooledWidth !== undefined && e.pooled!.length !== pooledWidth) {
      throw new RangeError(`${what}.pooled has ${e.pooled!.length} values; the transformer's pooled_projections take ${pooledWidth}`);
    }
    return e;
  }

  private async prepare(
    req: TextToImageRequest,
    start: { z0: Float32Array; strength: number; noise?: Float32Array } | undefined,
  ): Promise<PipelineSampleRun> {
    if ((req.prompt === undefined) === (req.embeddings === undefined)) {
      throw new RangeError(
        req.prompt === undefined
          ? 'a text-to-image request needs a prompt, or embeddings ({ prompt: { hiddenStates, shape, pooled? }, negative? })'
          : 'give a prompt or embeddings, not both',
      );
    }
    if (req.embeddings && req.negativePrompt !== undefined)
      throw new RangeError('negativePrompt needs a prompt: with embeddings, give embeddings.negative');
    if (req.prompt !== undefined) this.checkCanEncode();
    const f = this.vaeFactor;
    const dflt = (intField(this.configs.unet, 'sample_size') ?? 64) * f;
    const height = req.height ?? dflt;
    const width = req.width ?? dflt;
    for (const [k, v] of [
      ['height', height],
      ['width', width],
    ] as const) {
      if (!Number.isInteger(v) || v < f || v % f !== 0) throw new RangeError(`${k} must be a positive multiple of ${f} pixels, got ${v}`);
    }
    // checked before the prompts are encoded for `batch` rows (sample() checks it too, but later)
    const batch = checkCount(req.batch ?? 1, 'batch', 'pass the number of samples');
    const h = height / f;
    const w = width / f;
    const scale = req.guidanceScale ?? 7.5;
    const patch = intField(this.configs.unet, 'patch_size') ?? 2;
    const options = sampleOptionsFromCard(this.setup, {
      batch,
      classConditional: false,
      guidance: 1,
      ...(req.solver !== undefined ? { solver: req.solver } : {}),
      ...(req.sampler !== undefined ? { sampler: req.sampler } : {}),
      ...(req.solverOptions ? { solverOptions: req.solverOptions } : {}),
      ...(req.nfe !== undefined ? { nfe: req.nfe } : {}),
      ...(req.steps !== undefined ? { steps: req.steps } : {}),
      ...(req.spacing !== undefined ? { spacing: req.spacing } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      ...(req.pfdiff !== undefined ? { pfdiff: req.pfdiff } : {}),
      // SD3's patch tokens, for a FlowMatch config with dynamic shifting (diffusers' calculate_shift)
      ...(this.denoiser === 'transformer' ? { flowImageSeqLen: Math.floor(h / patch) * Math.floor(w / patch) } : {}),
    });
    if (!Number.isFinite(scale) || scale < 0) throw new RangeError(`guidance scale must be a finite number ≥ 0 (e.g. 7.5), got ${scale}`);
    const rescale = req.guidanceRescale ?? 0;
    if (!(rescale >= 0 && rescale <= 1)) throw new RangeError(`guidance rescale must be in [0, 1], got ${rescale}`);
    const latentSize = this.latentChannels * h * w;
    if (start) {
      // img2img: the tail of the run's grid, entered at α_{t0}·z0 + σ_{t0}·ε
      const plan = planSample({ ...options });
      const S = plan.timesteps.length - 1;
      const init = Math.min(Math.floor(S * start.strength), S);
      if (init < 1) throw new RangeError(`strength ${start.strength} of ${S} steps leaves no step to run: raise the strength or the steps`);
      const tail = plan.timesteps.slice(S - init);
      const last = tail[tail.length - 1]!;
      delete options.nfe;
      delete options.steps;
      options.timesteps = { ...options.timesteps, timesteps: tail.slice(0, -1), terminal: last === CLEAN_TIME ? 'zero' : 'sigma_min' };
      const t0 = tail[0]!;
      const a = this.setup.schedule.alpha(t0);
      const sg = this.setup.schedule.sigma(t0);
      const eps = start.noise ?? gaussianBatch(req.seed ?? 0, batch, latentSize);
      if (eps.length !== batch * latentSize) throw new RangeError(`noise has ${eps.length} values; expected ${batch * latentSize}`);
      const x = new Float32Array(batch * latentSize);
      for (let i = 0; i < x.length; i++) x[i] = a * start.z0[i]! + sg * eps[i]!;
      req = { ...req, initialLatents: x };
    }
    if (req.initialLatents && req.initialLatents.length !== batch * latentSize) {
      throw new RangeError(
        `initialLatents has ${req.initialLatents.length} values; expected [${batch},${this.latentChannels},${h},${w}] = ${batch * latentSize}`,
      );
    }
    if (req.sdxl && !this.sdxl) throw new RangeError(`sdxl size conditioning was given but ${this.label} is not an SDXL folder: drop it`);
    const timeIds = this.sdxl ? this.sdxlTimeIds(height, width, req.sdxl) : undefined;
    let prompt: PromptEmbedding;
    let negativePrompt: PromptEmbedding;
    if (req.embeddings) {
      prompt = this.checkEmbedding(req.embeddings.prompt, 'embeddings.prompt');
      const neg = req.embeddings.negative;
      if (!neg && scale !== 1) {
        throw new RangeError(
          `guidance scale ${scale} runs the negative branch: give embeddings.negative (the unconditional embedding), or use guidance 1`,
        );
      }
      negativePrompt = neg ? this.checkEmbedding(neg, 'embeddings.negative') : prompt;
    } else {
      prompt = await this.encodePrompt(req.prompt!);
      negativePrompt = await this.negativeEmbedding(req.negativePrompt ?? '', prompt);
    }
    const projection = req.onStep || req.onPreview ? await this.latentRgbProjection() : undefined;
    const rows = (e: PromptEmbedding) => this.promptRows(e, batch, timeIds);
    const guided = scale !== 0 && scale !== 1;
    const runOptions: Omit<SampleOptions, 'model'> = {
      ...options,
      cond: rows(scale === 0 ? negativePrompt : prompt),
      ...(guided ? { guidance: { scale, rescale, uncond: rows(negativePrompt) } } : {}),
      ...(req.initialLatents ? { initialNoise: req.initialLatents } : {}),
      ...(req.onStep || req.onPreview
        ? {
            onStep: async (info: StepInfo) => {
              if (req.onPreview) await req.onPreview(info, this.preview(info.x0 ?? info.x, batch, h, w, projection));
              if (req.onStep) await req.onStep(info, () => this.preview(info.x, batch, h, w, projection));
            },
          }
        : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    };
    return { run: runOptions, prompt, negativePrompt, batch, height, width, latentHeight: h, latentWidth: w };
  }

  private async generate(
    req: TextToImageRequest,
    start: { z0: Float32Array; strength: number; noise?: Float32Array } | undefined,
  ): Promise<TextToImageResult> {
    const prep = await this.prepare(req, start);
    const { run: runOptions, prompt, negativePrompt, batch, height, width, latentHeight: h, latentWidth: w } = prep;
    let fr: FeatureReuseOnnxModel | undefined;
    let frSetup: FeatureReuseRunSetup<FeatureReuseOnnxModel> | undefined;
    let model: DiffusionModel;
    if (req.featureReuse) {
      const bytes = await this.unetBytes();
      const setup = await createFeatureReuseSetup({
        ort: this.opts.ort,
        model: bytes,
        card: this.unetCard(h, w),
        label: `${this.label}/${this.denoiser}/model.onnx`,
        run: runOptions,
        ...req.featureReuse,
        ...(this.opts.threads !== undefined ? { threads: this.opts.threads } : {}),
        ...(this.opts.executionProviders ? { executionProviders: this.opts.executionProviders } : {}),
        ...(this.opts.maxBatch !== undefined ? { maxBatch: this.opts.maxBatch } : {}),
      });
      frSetup = setup;
      fr = setup.net;
      model = setup.model;
    } else {
      model = await this.unet(h, w);
    }
    if (req.wrapModel) model = await req.wrapModel(model);
    let run: SampleResult;
    try {
      run = await sample({ ...runOptions, model });
    } finally {
      await fr?.release();
    }
    const latents = run.samples instanceof Float32Array ? run.samples : Float32Array.from(run.samples);
    const decoded = await this.decode(latents, batch, h, w);
    return {
      latents,
      decoded,
      images: toImages(decoded, batch, height, width),
      prompt,
      negativePrompt,
      run,
      ...(fr ? { featureReuse: fr.stats } : {}),
      ...(frSetup ? { featureReuseSetup: frSetup } : {}),
    };
  }

  /**
   * The linear latent → RGB map of this pipeline's VAE decoder (see `latent-preview.ts`), fitted by
   * least squares on one decode of 2 × N(0, I) latents of 16 × 16 (a fixed seed) on first use, then cached.
   */
  latentRgbProjection(): Promise<LatentRgbProjection> {
    this.projection ??= (async () => {
      const [batch, h, w] = [2, 16, 16];
      const C = this.latentChannels;
      const z = Float32Array.from(gaussianBatch(0x7e57ab1e, batch, C * h * w));
      let decoded = await this.decode(z, batch, h, w);
      if (this.imageChannels === 1) {
        // a grey VAE: the map fits R = G = B to the grey level
        const plane = decoded.length / batch;
        const rgb = new Float32Array(3 * decoded.length);
        for (let b = 0; b < batch; b++) for (let c = 0; c < 3; c++) rgb.set(decoded.subarray(b * plane, (b + 1) * plane), (b * 3 + c) * plane);
        decoded = rgb;
      }
      const proj = fitLatentRgbProjection(z, decoded, { batch, channels: C, height: h, width: w, factor: this.vaeFactor });
      this.fittedProjection = proj;
      return proj;
    })();
    return this.projection;
  }

  /**
   * A cheap preview of latents [B, C, h, w]: one h × w RGB image per sample through the fitted linear
   * map ({@link latentRgbProjection}, awaited first, or a map given). Not the VAE's image: the colours
   * and layout as they form, at latent resolution.
   */
  preview(latents: ArrayLike<number>, batch: number, h: number, w: number, projection?: LatentRgbProjection): RgbaImage[] {
    const proj = projection ?? this.fittedProjection;
    if (!proj) throw new Error('preview needs the latent → RGB map: await pipeline.latentRgbProjection() first');
    return previewLatents(latents, batch, h, w, proj);
  }

  /** Free every session. */
  async release(): Promise<void> {
    await this.textEncoder?.release?.();
    await this.textEncoder2?.release?.();
    await this.vaeDecoder.release?.();
    if (this.vaeEncoder) await (await this.vaeEncoder).release?.();
    for (const m of this.unets.values()) await (await m).release();
    this.unets.clear();
  }
}

/** The penultimate `hidden_states.K` output name (K = max − 1), or undefined when the export has no hidden states. */
function penultimateName(outputs: readonly string[]): string | undefined {
  const ks = outputs
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]));
  if (ks.length < 2) return undefined;
  const k = Math.max(...ks) - 1;
  return outputs.includes(`hidden_states.${k}`) ? `hidden_states.${k}` : undefined;
}

/** An SDXL text encoder export must give its hidden states (and, for the second, the pooled `text_embeds`). */
function checkSdxlEncoder(label: string, session: OrtSessionLike, pooled: boolean): void {
  const outs = session.outputNames;
  const missing = [
    ...(session.inputNames.includes('input_ids') ? [] : ['input input_ids']),
    ...(penultimateName(outs) ? [] : ['outputs hidden_states.0 … hidden_states.L']),
    ...(pooled && !outs.includes('text_embeds') ? ['output text_embeds'] : []),
  ];
  if (missing.length > 0) {
    throw new PipelineFolderError(
      `${label} lacks ${missing.join(', ')} (its outputs: ${outs.join(', ')}): SDXL takes the penultimate hidden state of both text encoders and the pooled ` +
        'text_embeds of the second — export them with Optimum (optimum-cli export onnx writes hidden states for SDXL)',
    );
  }
}

/**
 * Start images as a [B, C, H, W] tensor in [−1, 1] (8-bit v ↦ 2·v/255 − 1, as diffusers' image
 * processor; C = 3 takes R, G, B, C = 1 their mean, the grey level of a grey image).
 */
function imageTensor(img: ImageToImageRequest['image'], channels: number): { image: Float32Array; batch: number; height: number; width: number } {
  if ('batch' in img) {
    if (img.data.length !== img.batch * channels * img.height * img.width)
      throw new RangeError(`image data has ${img.data.length} values for [${img.batch},${channels},${img.height},${img.width}]`);
    return { image: img.data, batch: img.batch, height: img.height, width: img.width };
  }
  const list = Array.isArray(img) ? (img as readonly RgbaImage[]) : [img as RgbaImage];
  const { width, height } = list[0]!;
  if (list.some((im) => im.width !== width || im.height !== height)) throw new RangeError('the start images differ in size: give images of one size');
  const plane = width * height;
  const image = new Float32Array(list.length * channels * plane);
  list.forEach((im, b) => {
    for (let p = 0; p < plane; p++) {
      if (channels === 1) image[b * plane + p] = (2 * (im.data[p * 4]! + im.data[p * 4 + 1]! + im.data[p * 4 + 2]!)) / 3 / 255 - 1;
      else for (let c = 0; c < 3; c++) image[(b * 3 + c) * plane + p] = (2 * im.data[p * 4 + c]!) / 255 - 1;
    }
  });
  return { image, batch: list.length, height, width };
}

/**
 * Images [B, C, H, W] in [−1, 1] → RGBA, as diffusers: round(clamp(x/2 + 0.5, 0, 1)·255); C = 3 (RGB)
 * or 1 (grey: R = G = B). C is read from the data's length.
 */
export function toImages(decoded: ArrayLike<number>, batch: number, height: number, width: number): RgbaImage[] {
  const plane = height * width;
  const channels = decoded.length / (batch * plane);
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(
      `toImages: ${decoded.length} values are ${channels} channels of [${batch},·,${height},${width}]; images have 1 (grey) or 3 (RGB)`,
    );
  }
  const images: RgbaImage[] = [];
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(plane * 4);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        const v = decoded[(b * channels + (channels === 1 ? 0 : c)) * plane + p]! / 2 + 0.5;
        data[p * 4 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
      data[p * 4 + 3] = 255;
    }
    images.push({ width, height, data });
  }
  return images;
}
