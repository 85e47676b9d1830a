/**
 * A starter model card from an ONNX graph's inputs and outputs (`rediffuse card init`): each input's
 * role guessed from its name (the same guesses recognition makes), else from its declared rank and
 * element type; the sample size from the sample input's fixed dims; the scheduler config given, else
 * DDPM's linear schedule. Every field that is a guess is listed in the card's `_guessed` so the user
 * checks it (docs/model-card.md). Browser-safe: it reads only an onnxruntime session's metadata.
 * @packageDocumentation
 */
import { ROLE_NAME_GUESSES, OUTPUT_NAME_GUESSES, pickName, type OnnxSessionIo } from './onnx-signature.js';
import type { ModelInputRole } from './model-card.js';

/** A starter card and the fields of it that are guesses. */
export interface StarterCard {
  /** The card as JSON-ready data (with `_guessed` listing the guessed fields). */
  readonly card: Record<string, unknown>;
  /** Field paths that are guesses, e.g. `inputs.c.role`, `sample_size`. */
  readonly guessed: readonly string[];
}

/** Options of {@link starterCard}. */
export interface StarterCardOptions {
  /** Card name (default `model`). */
  name?: string;
  /** The model's diffusers scheduler config, when known. */
  schedulerConfig?: Record<string, unknown>;
}

/** DDPM's training schedule (Ho et al. 2020, §4): the guess when no scheduler config is given. */
const DDPM_LINEAR = { _class_name: 'DDPMScheduler', num_train_timesteps: 1000, beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 };

/** Build a starter card for a model with the inputs and outputs of `io` (see the module notes). */
export function starterCard(io: OnnxSessionIo, opts: StarterCardOptions = {}): StarterCard {
  const guessed: string[] = [];
  const meta = new Map((io.inputMetadata ?? []).map((m) => [m.name, m]));
  const shapeOf = (n: string) => {
    const m = meta.get(n);
    return m && m.isTensor && Array.isArray(m.shape) ? m.shape : undefined;
  };
  const typeOf = (n: string) => {
    const m = meta.get(n);
    return m && m.isTensor ? m.type : undefined;
  };
  const roles = new Map<string, ModelInputRole>();
  const byName = new Set<string>();
  for (const role of ['sample', 'timestep', 'class_labels', 'encoder_hidden_states'] as const) {
    const hit = pickName(
      io.inputNames.filter((n) => !roles.has(n)),
      ROLE_NAME_GUESSES[role],
    );
    if (hit !== undefined) {
      roles.set(hit, role);
      byName.add(hit);
    }
  }
  const taken = (r: ModelInputRole) => [...roles.values()].includes(r);
  for (const n of io.inputNames) {
    if (roles.has(n)) continue;
    const shape = shapeOf(n) ?? [];
    const type = typeOf(n) ?? '';
    const isFloat = type.startsWith('float');
    let role: ModelInputRole;
    if (isFloat && shape.length === 4 && !taken('sample')) role = 'sample';
    else if (shape.length <= 2 && shape.slice(1).every((d) => d === 1) && !taken('timestep')) role = 'timestep';
    else if (!isFloat && shape.length === 1 && !taken('class_labels')) role = 'class_labels';
    else if (isFloat && shape.length === 3 && !taken('encoder_hidden_states')) role = 'encoder_hidden_states';
    else role = 'constant';
    roles.set(n, role);
  }
  const inputs: Record<string, Record<string, unknown>> = {};
  for (const n of io.inputNames) {
    const role = roles.get(n)!;
    const entry: Record<string, unknown> = { role };
    const t = typeOf(n);
    const s = shapeOf(n);
    if (t) entry['dtype'] = t;
    if (s) entry['shape'] = s;
    if (role === 'constant') {
      entry['value'] = [0];
      guessed.push(`inputs.${n}.value`);
    }
    if (!byName.has(n)) guessed.push(`inputs.${n}.role`);
    inputs[n] = entry;
  }
  const sampleName = [...roles].find(([, r]) => r === 'sample')?.[0];
  const declared = sampleName ? (shapeOf(sampleName) ?? []).slice(1) : [];
  let sampleSize: number[];
  if (declared.length >= 2 && declared.every((d) => typeof d === 'number' && d > 0)) sampleSize = declared as number[];
  else {
    const c = typeof declared[0] === 'number' && declared[0] > 0 ? declared[0] : 3;
    sampleSize = [c, 32, 32];
    guessed.push('sample_size');
  }
  const output = pickName(io.outputNames, OUTPUT_NAME_GUESSES) ?? io.outputNames[0];
  if (io.outputNames.length > 1 && pickName(io.outputNames, OUTPUT_NAME_GUESSES) === undefined) guessed.push('output');
  let schedulerConfig = opts.schedulerConfig;
  if (!schedulerConfig) {
    schedulerConfig = DDPM_LINEAR;
    guessed.push('scheduler_config');
  }
  const pt = schedulerConfig['prediction_type'];
  const predictionType = typeof pt === 'string' ? pt : 'epsilon';
  if (typeof pt !== 'string') guessed.push('prediction_type');
  const card: Record<string, unknown> = {
    name: opts.name ?? 'model',
    prediction_type: predictionType,
    sample_size: sampleSize,
    image_range: '[-1,1]',
    inputs,
    ...(output !== undefined ? { output } : {}),
    scheduler_config: schedulerConfig,
  };
  guessed.push('image_range');
  if (taken('class_labels')) {
    card['num_classes'] = 10;
    card['null_label'] = 10;
    guessed.push('num_classes', 'null_label');
  }
  card['_guessed'] = guessed;
  return { card, guessed };
}

/**
 * Parse a diffusers `scheduler_config.json` text. diffusers writes `-Infinity` / `Infinity` / `NaN`
 * for some fields (DPMSolverMultistep's `lambda_min_clipped`), which JSON.parse rejects; they are
 * read as the numbers they stand for.
 */
export function parseSchedulerConfigText(text: string, source: string): Record<string, unknown> {
  const marked = text.replace(/(:\s*)(-?Infinity|NaN)(\s*[,}\n])/g, (_m, a: string, v: string, b: string) => `${a}"__num:${v}"${b}`);
  let json: unknown;
  try {
    json = JSON.parse(marked, (_k, v: unknown) => (typeof v === 'string' && v.startsWith('__num:') ? Number(v.slice(6)) : v));
  } catch (err) {
    throw new Error(`scheduler config ${source} is not valid JSON (${(err as Error).message}); pass a diffusers scheduler_config.json`, { cause: err });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`scheduler config ${source} must be a JSON object`);
  return json as Record<string, unknown>;
}
