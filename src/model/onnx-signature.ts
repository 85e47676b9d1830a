/**
 * Which input of an ONNX diffusion network plays which role, with its element type and declared
 * shape, and the sample shape, prediction type and null label of the model.
 *
 * Roles come from the model card first (`inputs.<name>.role`, `output`; docs/model-card.md) — a card
 * that names the roles is never refused for its names — and are otherwise guessed from the names
 * of diffusers' `UNet2DModel` / `UNet2DConditionModel` exports and common alternates:
 *   sample | x | x_t | latent(s) | noisy_input            [B, ...sampleShape]         float32 | float16
 *   timestep | timesteps | t | time                       [] | [1] | [B] | [B,1]      int64 | int32 | float32 | float16
 *   class_labels | y | labels | label                     [B]                         int64 | int32
 *   encoder_hidden_states | context                       [B, tokens, dim]            float32 | float16
 *   → out_sample (else the first output)                  [B, ...sampleShape]
 * Extra inputs are constants or values derived from the run (`constant`, `image_height`,
 * `image_width`); they exist only when the card declares them.
 *
 * Input dtypes and shapes come from the session's `inputMetadata` (onnxruntime ≥ 1.20), else from
 * the card's `inputs`, else the defaults above (first listed). onnxruntime reports `[]` both for a
 * 0-d input and for one of unknown shape; `[]` is read as 0-d (what Optimum writes for the UNet
 * timestep) unless the card gives another shape.
 * @packageDocumentation
 */
import type { PredictionType } from '../core/model.js';
import type { ModelCard, ModelInputRole, TimestepValue } from './model-card.js';
import type { OrtElementType, OrtSessionLike, OrtValueMetadataLike } from './ort-types.js';

/** Which model input plays which role, and its element type and declared shape. */
export interface OnnxInputBinding {
  readonly name: string;
  readonly dtype: OrtElementType;
  /** Declared shape (numbers, or strings for symbolic dimensions); empty when unknown or 0-d. */
  readonly shape: ReadonlyArray<number | string>;
  /** Whether `shape` is declared (by the session or the card): an empty declared shape is a 0-d tensor. */
  readonly shapeKnown?: boolean;
}

/** How the time of a call becomes the timestep input's value: `scale · (model time | σ_t/α_t)`. */
export interface OnnxTimestepEncoding {
  readonly time: TimestepValue;
  readonly scale: number;
}

/** An input fed a constant or a value derived from the run (card role `constant`, `image_height`, `image_width`). */
export interface OnnxExtraInput {
  readonly binding: OnnxInputBinding;
  readonly role: Extract<ModelInputRole, 'constant' | 'image_height' | 'image_width'>;
  /** The constant's values (one row's worth when the first declared dim is symbolic). */
  readonly value?: readonly number[];
}

/** The recognised signature of a loaded model. */
export interface OnnxSignature {
  readonly sample: OnnxInputBinding;
  readonly timestep: OnnxInputBinding;
  readonly classLabels?: OnnxInputBinding;
  readonly encoderHiddenStates?: OnnxInputBinding;
  /** Name of the output read as the prediction. */
  readonly output: string;
  /** The timestep's encoding (default: the model time, scale 1). */
  readonly timestepEncoding?: OnnxTimestepEncoding;
  /** Inputs fed constants or derived values. */
  readonly extras?: readonly OnnxExtraInput[];
  /** Per-sample inputs fed by name from the call's `cond.extra` (card role `extra`). */
  readonly condInputs?: readonly OnnxInputBinding[];
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
const EXTRA_TYPES: readonly OrtElementType[] = ['float32', 'float16', 'float64', 'int64', 'int32'];

/** The input names guessed for each network role (what `rediffuse card init` also uses). */
export const ROLE_NAME_GUESSES: Readonly<Record<'sample' | 'timestep' | 'class_labels' | 'encoder_hidden_states', readonly string[]>> = {
  sample: SAMPLE_NAMES,
  timestep: TIMESTEP_NAMES,
  class_labels: CLASS_NAMES,
  encoder_hidden_states: ENCODER_NAMES,
};

/** The output names guessed for the prediction. */
export const OUTPUT_NAME_GUESSES: readonly string[] = OUTPUT_NAMES;

/** The first of `names` matching one of `wanted` (exactly, else ignoring case). */
export function pickName(names: readonly string[], wanted: readonly string[]): string | undefined {
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

const CARD_HINT = 'say which input is which in the model card\'s "inputs" (e.g. {"c": {"role": "class_labels"}}; see docs/model-card.md)';

/**
 * Map the inputs of `io` to their roles: the card's roles first, the name guesses for the rest.
 * Throws an error listing what the model has and what is needed when the sample or timestep input
 * is missing, an input has no role, or the card names an input or output the model lacks; and one
 * naming the supported element types when an input has another.
 */
export function recogniseSignature(io: OnnxSessionIo, label: string, card: ModelCard | undefined): OnnxSignature {
  const names = io.inputNames;
  const meta = new Map<string, OrtValueMetadataLike>((io.inputMetadata ?? []).map((m) => [m.name, m]));
  const have = describeInputs(io);
  const need = 'sample [B,C,H,W] float, timestep ([], [1], [B] or [B,1]), and optionally class_labels [B] int or encoder_hidden_states [B,tokens,dim]';
  const cardInputs = card?.inputs ?? {};
  const bind = (name: string, role: string, allowed: readonly OrtElementType[]): OnnxInputBinding => {
    const m = meta.get(name);
    const fromCard = cardInputs[name];
    const t = (m && m.isTensor ? m.type : undefined) ?? fromCard?.dtype ?? allowed[0]!;
    if (!(allowed as readonly string[]).includes(t)) {
      throw new Error(
        `${label}: input "${name}" (${role}) has element type ${t}; rediffuse supports ${allowed.join(', ')} there — re-export the model with one of those`,
      );
    }
    const declared = m && m.isTensor && Array.isArray(m.shape) ? m.shape : undefined;
    // A declared non-empty shape is the truth; [] is 0-d or unknown, so the card's shape decides.
    const shape = declared && declared.length ? declared : (fromCard?.shape ?? declared ?? []);
    const shapeKnown = declared !== undefined || fromCard?.shape !== undefined;
    return { name, dtype: t as OrtElementType, shape, shapeKnown };
  };
  for (const key of Object.keys(cardInputs)) {
    if (cardInputs[key]!.role !== undefined && !names.includes(key)) {
      throw new Error(
        `${label}: the model card gives a role to input "${key}", but the model has inputs (${have}); fix the card's "inputs" (docs/model-card.md)`,
      );
    }
  }
  const roleOf = new Map<string, ModelInputRole>();
  for (const n of names) {
    const r = cardInputs[n]?.role;
    if (r !== undefined) roleOf.set(n, r);
  }
  const byRole = (role: ModelInputRole) => [...roleOf].find(([, r]) => r === role)?.[0];
  for (const role of ['sample', 'timestep', 'class_labels', 'encoder_hidden_states'] as const) {
    if (byRole(role) !== undefined) continue;
    const guess = pickName(
      names.filter((n) => !roleOf.has(n)),
      ROLE_NAME_GUESSES[role],
    );
    if (guess !== undefined) roleOf.set(guess, role);
  }
  const sampleName = byRole('sample');
  const timeName = byRole('timestep');
  if (sampleName === undefined || timeName === undefined) {
    const missing = [sampleName === undefined ? 'sample' : '', timeName === undefined ? 'timestep' : ''].filter(Boolean).join(' and ');
    throw new Error(`${label}: cannot find the ${missing} input. The model has inputs (${have}); rediffuse needs ${need}: ${CARD_HINT}`);
  }
  const extra = names.filter((n) => !roleOf.has(n));
  if (extra.length > 0) {
    throw new Error(
      `${label}: input(s) ${extra.join(', ')} are not understood (no role). The model has inputs (${have}); rediffuse needs ${need}: ${CARD_HINT}`,
    );
  }
  const classLabelName = byRole('class_labels');
  const encoderName = byRole('encoder_hidden_states');
  const outNames = io.outputNames;
  if (outNames.length === 0) throw new Error(`${label}: the model has no outputs; re-export it`);
  if (card?.output !== undefined && !outNames.includes(card.output)) {
    throw new Error(
      `${label}: the model card names output "${card.output}", but the model has outputs ${outNames.join(', ')}; fix the card's "output" (docs/model-card.md)`,
    );
  }
  const output = card?.output ?? pickName(outNames, OUTPUT_NAMES) ?? outNames[0]!;
  const timeSpec = cardInputs[timeName];
  const extras: OnnxExtraInput[] = [];
  for (const [n, r] of roleOf) {
    if (r !== 'constant' && r !== 'image_height' && r !== 'image_width') continue;
    const value = cardInputs[n]?.value;
    extras.push({ binding: bind(n, r, EXTRA_TYPES), role: r, ...(value ? { value } : {}) });
  }
  const condInputs: OnnxInputBinding[] = [];
  for (const [n, r] of roleOf) if (r === 'extra') condInputs.push(bind(n, 'extra conditioning', FLOAT_TYPES));
  const timestep = bind(timeName, 'timestep', TIME_TYPES);
  const ts = timestep.shape;
  const rankOk = ts.length <= 1 || (ts.length === 2 && (ts[1] === 1 || ts[1] === -1 || typeof ts[1] === 'string'));
  if (!rankOk) {
    throw new Error(
      `${label}: timestep input "${timeName}" is declared [${ts.join(',')}]; rediffuse feeds [], [1], [B] or [B,1] — re-export it with one of those`,
    );
  }
  return {
    sample: bind(sampleName, 'sample', FLOAT_TYPES),
    timestep,
    ...(classLabelName !== undefined ? { classLabels: bind(classLabelName, 'class labels', INT_TYPES) } : {}),
    ...(encoderName !== undefined ? { encoderHiddenStates: bind(encoderName, 'encoder hidden states', FLOAT_TYPES) } : {}),
    output,
    ...(timeSpec?.scale !== undefined || timeSpec?.time !== undefined
      ? { timestepEncoding: { time: timeSpec.time ?? 'model_time', scale: timeSpec.scale ?? 1 } }
      : {}),
    ...(extras.length ? { extras } : {}),
    ...(condInputs.length ? { condInputs } : {}),
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
