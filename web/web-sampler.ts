/**
 * The web page's sampler, without the DOM: settings in (model, solver, NFE, PFDiff, feature reuse,
 * guidance, classes, seed), samples and their image-grid raster out, with model calls by kind and
 * wall time. It composes the public API the CLI uses — the card's scheduler config, `sample()`,
 * PFDiff, FRDiff on graphs cut from the same ONNX file, and `imageGridRgba` — so the page and
 * `rediffuse sample` draw the same image for the same seed.
 * @packageDocumentation
 */
import { sample, type DiffusionModel, type FeatureReuseModel, type SampleOptions } from '../src/core/index.js';
import { imageGridRgba } from '../src/io/image-grid.js';
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

/** Runs {@link WebRunSettings}; sessions are created once per model (and reuse-point policy). */
export type WebSampler = (settings: WebRunSettings, onProgress?: (step: number, steps: number) => void) => Promise<WebRunResult>;

interface Loaded {
  card: ModelCard;
  bytes: Uint8Array;
  plain?: OnnxDiffusionModel;
  fr: Map<string, FeatureReuseOnnxModel>;
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
      m = { card: parseModelCard(card, `models/${name}.json`), bytes, fr: new Map() };
      loaded.set(name, m);
    }
    return m;
  };
  return async (s, onProgress) => {
    const m = await loadModel(s.model);
    const setup = cardSamplingSetup(m.card);
    const conditional = s.classes.length > 0;
    const batch = conditional ? s.classes.length * s.perRow : s.perRow;
    m.plain ??= await OnnxDiffusionModel.create({ ort, model: m.bytes, card: m.card, label: s.model });
    const options: SampleOptions = {
      ...sampleOptionsFromCard(setup, {
        solver: s.solver,
        nfe: s.nfe,
        pfdiff: s.pfdiff,
        guidance: s.guidance,
        classLabels: s.classes.flatMap((c) => Array.from({ length: s.perRow }, () => c)),
        batch,
        seed: s.seed,
      }),
      model: m.plain,
      onStep: (i) => onProgress?.(i.step + 1, i.steps),
    };
    let frModel: FeatureReuseModel | undefined;
    let frNet: FeatureReuseOnnxModel | undefined;
    if (s.fr) {
      frNet = m.fr.get(s.fr.points);
      if (!frNet) {
        frNet = await FeatureReuseOnnxModel.create({ ort, model: m.bytes, card: m.card, label: s.model, points: s.fr.points });
        m.fr.set(s.fr.points, frNet);
      }
      frModel = (await featureReuseFor(frNet, options, { keyframes: { interval: s.fr.interval }, ...(s.fr.mixing ? {} : { mixing: null }), points: s.fr.points })).model;
      frNet.resetStats();
      options.model = frModel as DiffusionModel;
    }
    const r = await sample(options);
    const rgba = imageGridRgba(r.samples, {
      sampleShape: m.card.sampleShape,
      columns: s.perRow,
      ...(conditional ? { rowLabels: s.classes.map((c) => m.card.classNames?.[c] ?? `class ${c}`) } : {}),
    });
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

