/**
 * Which input of an ONNX diffusion network plays which role, with its element type and declared
 * shape, and the sample shape, prediction type and null label of the model.
 *
 * Signatures recognised (diffusers' `UNet2DModel` / `UNet2DConditionModel` exports and common
 * alternates):
 *   sample | x | x_t | latent(s) | noisy_input            [B, ...sampleShape]   float32 | float16
 *   timestep | timesteps | t | time                       [B] | [1] | []        int64 | int32 | float32 | float16
 *   class_labels | y | labels | label                     [B]                   int64 | int32
 *   encoder_hidden_states | context                       [B, tokens, dim]      float32 | float16
 *   → out_sample (else the first output)                  [B, ...sampleShape]
 * Input dtypes come from the session's `inputMetadata` (onnxruntime ≥ 1.20), else from the model
 * card's `inputs`, else the defaults above (first listed).
 * @packageDocumentation
 */
import type { PredictionType } from '../core/model.js';
import type { ModelCard } from './model-card.js';
import type { OrtElementType, OrtSessionLike, OrtValueMetadataLike } from './ort-types.js';

/** Which model input plays which role, and its element type and declared shape. */
export interface OnnxInputBinding {
  readonly name: string;
  readonly dtype: OrtElementType;
  /** Declared shape (numbers, or strings for symbolic dimensions); empty when unknown. */
  readonly shape: ReadonlyArray<number | string>;
}

/** The recognised signature of a loaded model. */
export interface OnnxSignature {
  readonly sample: OnnxInputBinding;
  readonly timestep: OnnxInputBinding;
  readonly classLabels?: OnnxInputBinding;
  readonly encoderHiddenStates?: OnnxInputBinding;
  /** Name of the output read as the prediction. */
  readonly output: string;
}

/** What recognition reads of a session: its input names and metadata and the model's own outputs. */
export type OnnxSessionIo = Pick<OrtSessionLike, 'inputNames' | 'inputMetadata' | 'outputNames'>;

/** A recognised model: signature, sample shape, prediction type, null label. */
export interface OnnxModelDescription {
  readonly signature: OnnxSignature;
  readonly sampleShape: readonly number[];
  readonly predictionType: PredictionType;
  readonly nullLabel: number | undefined;
}

/** The card and the overrides recognition takes into account. */
export interface OnnxDescriptionOptions {
  card?: ModelCard;
  sampleShape?: readonly number[];
  predictionType?: PredictionType;
  nullLabel?: number;
}

const SAMPLE_NAMES = ['sample', 'x', 'x_t', 'xt', 'latent', 'latents', 'noisy_input', 'input'];
const TIMESTEP_NAMES = ['timestep', 'timesteps', 't', 'time'];
const CLASS_NAMES = ['class_labels', 'class_label', 'y', 'labels', 'label', 'classes'];
const ENCODER_NAMES = ['encoder_hidden_states', 'context', 'encoder_states', 'text_embeddings'];
const OUTPUT_NAMES = ['out_sample', 'sample_out', 'out', 'output', 'eps', 'noise_pred'];

const FLOAT_TYPES: readonly OrtElementType[] = ['float32', 'float16', 'float64'];
const INT_TYPES: readonly OrtElementType[] = ['int64', 'int32'];
const TIME_TYPES: readonly OrtElementType[] = ['float32', 'float16', 'int64', 'int32', 'float64'];

function pickName(names: readonly string[], wanted: readonly string[]): string | undefined {
  for (const w of wanted) {
    const hit = names.find((n) => n === w) ?? names.find((n) => n.toLowerCase() === w);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function describeInputs(io: OnnxSessionIo): string {
  const meta = new Map((io.inputMetadata ?? []).map((m) => [m.name, m]));
  return io.inputNames
    .map((n) => {
      const m = meta.get(n);
      return m && m.isTensor ? `${n}: ${m.type ?? '?'}[${(m.shape ?? []).join(',')}]` : n;
    })
    .join(', ');
}

/**
 * Map the inputs of `io` to their roles. Throws an error listing what the model has and what is
 * needed when the sample or timestep input is missing or an input is not understood, and one naming
 * the supported element types when an input has another.
 */
export function recogniseSignature(io: OnnxSessionIo, label: string, card: ModelCard | undefined): OnnxSignature {
  const names = io.inputNames;
  const meta = new Map<string, OrtValueMetadataLike>((io.inputMetadata ?? []).map((m) => [m.name, m]));
  const have = describeInputs(io);
  const need = 'sample [B,C,H,W] float, timestep [B], and optionally class_labels [B] int64 or encoder_hidden_states [B,tokens,dim]';
  const bind = (name: string, role: string, allowed: readonly OrtElementType[]): OnnxInputBinding => {
    const m = meta.get(name);
    const fromCard = card?.inputs?.[name];
    const t = (m && m.isTensor ? m.type : undefined) ?? fromCard?.dtype ?? allowed[0]!;
    if (!(allowed as readonly string[]).includes(t)) {
      throw new Error(
        `${label}: input "${name}" (${role}) has element type ${t}; rediffuse supports ${allowed.join(', ')} there — re-export the model with one of those`,
      );
    }
    const shape = (m && m.isTensor && m.shape && m.shape.length ? m.shape : undefined) ?? fromCard?.shape ?? [];
    return { name, dtype: t as OrtElementType, shape };
  };
  const sampleName = pickName(names, SAMPLE_NAMES);
  const timeName = pickName(names, TIMESTEP_NAMES);
  if (sampleName === undefined || timeName === undefined) {
    const missing = [sampleName === undefined ? 'sample' : '', timeName === undefined ? 'timestep' : ''].filter(Boolean).join(' and ');
    throw new Error(
      `${label}: cannot find the ${missing} input. The model has inputs (${have}); rediffuse needs ${need}. Rename the inputs when exporting (torch.onnx.export input_names=[...])`,
    );
  }
  const classLabelName = pickName(names, CLASS_NAMES);
  const encoderName = pickName(names, ENCODER_NAMES);
  const used = new Set([sampleName, timeName, classLabelName, encoderName].filter((n): n is string => n !== undefined));
  const extra = names.filter((n) => !used.has(n));
  if (extra.length > 0) {
    throw new Error(
      `${label}: input(s) ${extra.join(', ')} are not understood. The model has inputs (${have}); rediffuse needs ${need}. Export a model with that signature`,
    );
  }
  const outNames = io.outputNames;
  if (outNames.length === 0) throw new Error(`${label}: the model has no outputs; re-export it`);
  const output = pickName(outNames, OUTPUT_NAMES) ?? outNames[0]!;
  return {
    sample: bind(sampleName, 'sample', FLOAT_TYPES),
    timestep: bind(timeName, 'timestep', TIME_TYPES),
    ...(classLabelName !== undefined ? { classLabels: bind(classLabelName, 'class labels', INT_TYPES) } : {}),
    ...(encoderName !== undefined ? { encoderHiddenStates: bind(encoderName, 'encoder hidden states', FLOAT_TYPES) } : {}),
    output,
  };
}

/**
 * The shape of one sample: `wanted` (card or option) when it agrees with the declared sample input,
 * else the declared shape when it is fixed; otherwise an error saying how to give one.
 */
export function resolveSampleShape(sample: OnnxInputBinding, label: string, wanted: readonly number[] | undefined): number[] {
  const declared = sample.shape.slice(1);
  if (sample.shape.length > 0 && wanted !== undefined) {
    const clash = declared.length !== wanted.length || declared.some((d, i) => typeof d === 'number' && d > 0 && d !== wanted[i]);
    if (clash) {
      throw new Error(
        `${label}: the model's ${sample.name} input is [${sample.shape.join(',')}] but the card/options give a sample shape of [${wanted.join(',')}]; ` +
          'use the card that belongs to this model, or pass the right sample shape',
      );
    }
  }
  if (wanted !== undefined) return [...wanted];
  if (declared.length > 0 && declared.every((d) => typeof d === 'number' && d > 0)) return declared as number[];
  throw new Error(
    `${label}: the model does not declare a fixed sample shape (${sample.name} is [${sample.shape.join(',')}]); give one with a model card (sample_size) or the sampleShape option`,
  );
}

/** Recognise the signature of `io` and settle sample shape, prediction type (default `epsilon`) and null label. */
export function describeOnnxModel(io: OnnxSessionIo, label: string, opts: OnnxDescriptionOptions): OnnxModelDescription {
  const signature = recogniseSignature(io, label, opts.card);
  const sampleShape = resolveSampleShape(signature.sample, label, opts.sampleShape ?? opts.card?.sampleShape);
  const enc = signature.encoderHiddenStates;
  if (enc && enc.shape.length !== 0 && enc.shape.length !== 3) {
    throw new Error(`${label}: ${enc.name} must be [batch, tokens, dim], the model declares [${enc.shape.join(',')}]`);
  }
  return {
    signature,
    sampleShape,
    predictionType: opts.predictionType ?? opts.card?.predictionType ?? 'epsilon',
    nullLabel: opts.nullLabel ?? opts.card?.nullLabel,
  };
}
