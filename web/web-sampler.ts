/**
 * The web page's sampler, without the DOM: settings in (model, solver, NFE, PFDiff, feature reuse,
 * guidance, classes, seed), samples and their image-grid raster out, with model calls by kind and
 * wall time. It composes the public API the CLI uses — the card's scheduler config, `sample()`,
 * PFDiff, FRDiff on graphs cut from the same ONNX file, and `imageGridRgba` — so the page and
 * `rediffuse sample` draw the same image for the same seed.
 * @packageDocumentation
 */
import {
  plannedCalls,
  sample,
  uniformPolicy,
  validateReusePolicy,
  withFeatureReuse,
  type DiffusionModel,
  type NumArray,
  type ReusePolicy,
  type SampleOptions,
} from '../src/core/index.js';
import { checkSampleOptions } from './check-options.js';
import {
  cardSamplingSetup,
  featureReuseFor,
  FeatureReuseOnnxModel,
  OnnxDiffusionModel,
  parseModelCard,
  sampleOptionsFromCard,
  type ModelCard,
  type OrtModuleLike,
} from '../src/model/index.js';
import { imageGridRgba } from '../src/index.js';

/** What one run samples. */
export interface WebRunSettings {
  /** Bundled model name: `fashion-unet` or `fashion-dit`. */
  model: string;
  solver: string;
  nfe: number;
  /** PFDiff k_h, e.g. `2_1`, or null. */
  pfdiff: string | null;
  /** Feature reuse: keyframe interval M, score mixing, reuse points; null for none. */
  fr: { interval: number; mixing: boolean; points: string } | null;
  /** Guidance scale (1 = off). */
  guidance: number;
  /** Class indices, one grid row each; empty = unconditional. */
  classes: number[];
  /** Images per row. */
  perRow: number;
  seed: number;
}

/** The most images per row the page draws: a row of 16 cells is about 1000 px wide. */
export const MAX_PER_ROW = 16;

/** What a run returns. */
export interface WebRunResult {
  samples: number[];
  rgba: { width: number; height: number; data: number[] };
  calls: number;
  fullCalls: number;
  reuseCalls: number;
  skippedCalls: number;
  wallMs: number;
  callMs: number;
  cacheBytes: number;
}

/** Where a sampler gets a model's card (parsed JSON) and ONNX bytes by bundled name. */
export type ModelFetcher = (name: string) => Promise<{ card: unknown; bytes: Uint8Array }>;

/** Where a run stands after a solver step. */
export interface WebProgress {
  /** Model calls so far; with feature reuse, split into full (keyframe), reuse and skipped calls. */
  calls: number;
  fullCalls: number;
  reuseCalls: number;
  skippedCalls: number;
  /** The step's x̂0 (x where the solver has none) drawn as the result's grid; computed on demand. */
  preview(): { width: number; height: number; data: Uint8Array };
}

/**
 * Runs {@link WebRunSettings}; sessions are created once per model (and reuse-point preset). Bad
 * settings reject before any session is created (see {@link checkWebRunSettings}).
 */
export type WebSampler = (settings: WebRunSettings, onProgress?: (step: number, steps: number, progress: WebProgress) => void) => Promise<WebRunResult>;

interface Loaded {
  card: ModelCard;
  bytes: Uint8Array;
  plain?: OnnxDiffusionModel;
  fr: Map<string, FeatureReuseOnnxModel>;
}

/** The page's own rule for {@link WebRunSettings.perRow}; everything else is the library's. */
function checkPerRow(perRow: number): void {
  if (!Number.isInteger(perRow) || perRow < 1 || perRow > MAX_PER_ROW) {
    throw new RangeError(
      `images per row must be an integer in 1..${MAX_PER_ROW}, got ${perRow}: pick 1 to ${MAX_PER_ROW} (rediffuse sample --count draws wider grids)`,
    );
  }
}

/** The {@link sample} options of one run of `s` with `model` (the card's solver settings, guidance and labels). */
export function webSampleOptions(card: ModelCard, s: WebRunSettings, model: DiffusionModel): SampleOptions {
  checkPerRow(s.perRow);
  const batch = s.classes.length > 0 ? s.classes.length * s.perRow : s.perRow;
  const request = {
    solver: s.solver,
    nfe: s.nfe,
    pfdiff: s.pfdiff,
    guidance: s.guidance,
    classLabels: s.classes.flatMap((c) => Array.from({ length: s.perRow }, () => c)),
    batch,
    seed: s.seed,
  };
  return { ...sampleOptionsFromCard(cardSamplingSetup(card), request), model };
}

/** The keyframe policy of a feature-reuse run: a keyframe every `interval`-th of the run's planned calls. */
async function reusePolicy(options: SampleOptions, fr: NonNullable<WebRunSettings['fr']>): Promise<ReusePolicy> {
  return validateReusePolicy(uniformPolicy(await plannedCalls(options), fr.interval, fr.mixing ? undefined : null, fr.points));
}

/**
 * Resolve when `s` is a run the library accepts for this card, reject with the library's message
 * otherwise — the same checks `sample()` makes, and the feature-reuse policy's, run without a model
 * call (which reuse points a graph has is found when it is cut, at the run) (the form and
 * `window.rediffuse.run` both use it, before any session or worker run starts).
 */
export async function checkWebRunSettings(card: ModelCard, s: WebRunSettings): Promise<void> {
  const stand: DiffusionModel = {
    predictionType: card.predictionType,
    sampleShape: card.sampleShape,
    predict: () => Promise.reject(new Error('not called')),
  };
  const options = webSampleOptions(card, s, stand);
  await checkSampleOptions(options);
  if (s.fr) await reusePolicy(options, s.fr);
}

/** The card parsed from its JSON, as the sampler reads it (for {@link checkWebRunSettings} on the page). */
export function parseWebCard(json: unknown, name: string): ModelCard {
  return parseModelCard(json, `models/${name}.json`);
}

/**
 * The page's sampler over an injected onnxruntime module and model fetcher: onnxruntime-web and
 * `fetch` on the page, onnxruntime-node and the file system in the test that compares the two.
 */
export function createWebSampler(ort: OrtModuleLike, fetchModel: ModelFetcher): WebSampler {
  const loaded = new Map<string, Loaded>();
  const loadModel = async (name: string): Promise<Loaded> => {
    let m = loaded.get(name);
    if (!m) {
      const { card, bytes } = await fetchModel(name);
      m = { card: parseWebCard(card, name), bytes, fr: new Map() };
      loaded.set(name, m);
    }
    return m;
  };
  return async (s, onProgress) => {
    const m = await loadModel(s.model);
    await checkWebRunSettings(m.card, s);
    const conditional = s.classes.length > 0;
    m.plain ??= await OnnxDiffusionModel.create({ ort, model: m.bytes, card: m.card, label: s.model });
    m.plain.resetStats();
    const options = webSampleOptions(m.card, s, m.plain);
    const grid = (images: NumArray) =>
      imageGridRgba(images, {
        sampleShape: m.card.sampleShape,
        columns: s.perRow,
        ...(conditional ? { rowLabels: s.classes.map((c) => m.card.classNames?.[c] ?? `class ${c}`) } : {}),
      });
    let frModel: ReturnType<typeof withFeatureReuse> | undefined;
    let frNet: FeatureReuseOnnxModel | undefined;
    if (s.fr) {
      frNet = m.fr.get(s.fr.points);
      if (!frNet) {
        frNet = await FeatureReuseOnnxModel.create({ ort, model: m.bytes, card: m.card, label: s.model, points: s.fr.points });
        m.fr.set(s.fr.points, frNet);
      }
      frModel = (
        await featureReuseFor(frNet, options, { keyframes: { interval: s.fr.interval }, ...(s.fr.mixing ? {} : { mixing: null }), points: s.fr.points })
      ).model;
      frNet.resetStats();
      options.model = frModel as DiffusionModel;
    }
    const plain = m.plain;
    if (onProgress) {
      options.onStep = (i) => {
        const fr = frModel?.stats;
        const calls = fr ? fr.keyframe + fr.reuse + fr.skip : plain.stats.calls;
        onProgress(i.step + 1, i.steps, {
          calls,
          fullCalls: fr ? fr.keyframe : calls,
          reuseCalls: fr?.reuse ?? 0,
          skippedCalls: fr?.skip ?? 0,
          preview: () => grid(i.x0 ?? i.x),
        });
      };
    }
    const r = await sample(options);
    const rgba = grid(r.samples);
    return {
      samples: Array.from(r.samples),
      rgba: { width: rgba.width, height: rgba.height, data: Array.from(rgba.data) },
      calls: r.calls,
      fullCalls: frModel ? frModel.stats.keyframe : r.calls,
      reuseCalls: frModel?.stats.reuse ?? 0,
      skippedCalls: frModel?.stats.skip ?? 0,
      wallMs: r.wallMs,
      callMs: r.callMs,
      cacheBytes: frNet?.stats.peakCacheBytes ?? 0,
    };
  };
}
