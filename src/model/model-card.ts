/**
 * The JSON model card shipped next to each ONNX model (`models/<name>.json`).
 *
 * Field names follow diffusers where diffusers has one (`scheduler_config` is a diffusers
 * `scheduler_config.json` as it is, `prediction_type`, `sample_size`); the rest describe the
 * conditioning (`num_classes`, `null_label`, `class_names`) and the ONNX signature (`inputs`).
 * {@link parseModelCard} validates a card and names the offending field in every error.
 * @packageDocumentation
 */
import type { PredictionType } from '../core/model.js';
import { fromSchedulerConfig, type SchedulerConfig, type ThresholdingConfig } from '../core/schedule/config.js';
import { getSolver } from '../core/solvers/registry.js';
import type { TimestepOptions } from '../core/timesteps.js';
import type { NoiseSchedule } from '../core/schedule/noise-schedule.js';

/**
 * The role an ONNX input plays (docs/model-card.md, "inputs"): the four network roles, a constant,
 * a value derived from the run (the sample's spatial size), or `extra`: a per-sample input fed by
 * name from the call's conditioning (`cond.extra[name]`, e.g. SDXL's `text_embeds` and `time_ids`).
 */
export type ModelInputRole = 'sample' | 'timestep' | 'class_labels' | 'encoder_hidden_states' | 'constant' | 'image_height' | 'image_width' | 'extra';

/** The roles a card may give an input. */
export const MODEL_INPUT_ROLES: readonly ModelInputRole[] = [
  'sample',
  'timestep',
  'class_labels',
  'encoder_hidden_states',
  'constant',
  'image_height',
  'image_width',
  'extra',
];

/** What the timestep input receives: the schedule's model time, or the VE noise level σ_t/α_t of the VP point. */
export type TimestepValue = 'model_time' | 'sigma';

/** What the card says of one ONNX input. */
export interface ModelCardInput {
  /** Element type, e.g. `float32`, `int64`, `float16`. */
  dtype?: string;
  /** Declared shape; strings name symbolic dimensions such as `B`. An explicit `[]` is a 0-d scalar. */
  shape?: ReadonlyArray<number | string>;
  /** Which role the input plays; when absent the role is guessed from the name. */
  role?: ModelInputRole;
  /** Timestep only: multiplier applied to the fed time (e.g. 0.001 for a model trained on t/1000). Default 1. */
  scale?: number;
  /** Timestep only: what is fed (before `scale`). Default `model_time`. */
  time?: TimestepValue;
  /** Constant only: the values, row-major, one sample's worth when the first dim is symbolic (repeated per row). */
  value?: readonly number[];
}

/** The range of the model's data space: `[-1,1]` (diffusers' default) or `[0,1]`. */
export type ImageRange = '[-1,1]' | '[0,1]';

/** A validated model card. */
export interface ModelCard {
  /** Model name, e.g. `fashion-unet`. */
  readonly name: string;
  /** The diffusers scheduler config the model was trained with, unchanged. */
  readonly schedulerConfig: Readonly<Record<string, unknown>>;
  /** What the network predicts (card's `prediction_type`, else the scheduler config's, else ε). */
  readonly predictionType: PredictionType;
  /** Shape of one sample, e.g. `[1, 28, 28]`. */
  readonly sampleShape: readonly number[];
  /** Number of real classes, when class-conditional. */
  readonly numClasses?: number;
  /** The label meaning "no class" (classifier-free guidance's unconditional branch). */
  readonly nullLabel?: number;
  /** Human-readable class names, `numClasses` of them. */
  readonly classNames?: readonly string[];
  /** The ONNX inputs by name, when the card lists them (their roles, dtypes, shapes, constants). */
  readonly inputs?: Readonly<Record<string, ModelCardInput>>;
  /** The output read as the prediction (`output`), when the card names it. */
  readonly output?: string;
  /** The data range of a sample (`image_range`). Default `[-1,1]`. */
  readonly imageRange?: ImageRange;
  /** Solver the card recommends (`default_solver`), if any. */
  readonly defaultSolver?: string;
  /** Model-call budget the card recommends (`default_nfe`), if any. */
  readonly defaultNfe?: number;
  /** The whole card as parsed, for fields rediffuse does not interpret (training data, …). */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Where the card came from (its path, or `(inline)`), for errors about its fields. */
  readonly source?: string;
}

const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'sample', 'v_prediction', 'flow'];

/**
 * The prediction type a diffusers scheduler config implies: its `prediction_type` (diffusers'
 * `flow_prediction` is our `flow`), else `flow` for `FlowMatchEulerDiscreteScheduler` (which has no
 * such field: its models predict the velocity ε − x0).
 */
function schedulerPredictionType(sched: Record<string, unknown>): unknown {
  const pt = sched['prediction_type'];
  if (pt === 'flow_prediction') return 'flow';
  if (pt === undefined && sched['_class_name'] === 'FlowMatchEulerDiscreteScheduler') return 'flow';
  return pt;
}

function fail(source: string, field: string, problem: string, fix: string): never {
  throw new Error(`model card ${source}: field "${field}" ${problem}; ${fix} (card format: docs/model-card.md)`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/**
 * Validate a model card (a parsed object or its JSON text). `source` names the card in errors
 * (e.g. its path). Unknown fields are kept in `raw` and otherwise ignored.
 */
export function parseModelCard(input: unknown, source = '(inline)'): ModelCard {
  let json = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (err) {
      throw new Error(`model card ${source} is not valid JSON (${(err as Error).message}); fix the file or pass another --card`, { cause: err });
    }
  }
  if (!isRecord(json)) throw new Error(`model card ${source} must be a JSON object; see docs/model-card.md for the format`);
  const c = json;

  const name = c['name'] ?? 'model';
  if (typeof name !== 'string' || name.length === 0) fail(source, 'name', 'must be a non-empty string', 'e.g. "fashion-unet"');

  const sched = c['scheduler_config'];
  if (!isRecord(sched)) {
    fail(source, 'scheduler_config', 'is missing or not an object', "copy the model's diffusers scheduler_config.json into it");
  }

  const pt = c['prediction_type'] ?? schedulerPredictionType(sched) ?? 'epsilon';
  if (typeof pt !== 'string' || !(PREDICTION_TYPES as readonly string[]).includes(pt)) {
    fail(source, 'prediction_type', `is ${JSON.stringify(pt)}`, `use one of ${PREDICTION_TYPES.join(', ')}`);
  }

  const ss = c['sample_size'];
  if (!Array.isArray(ss) || ss.length === 0 || !ss.every(positiveInt)) {
    fail(source, 'sample_size', `is ${JSON.stringify(ss)}`, 'give the shape of one sample as positive integers, e.g. [1, 28, 28]');
  }
  const sampleShape = ss as number[];

  const nc = c['num_classes'];
  if (nc !== undefined && nc !== null && !positiveInt(nc))
    fail(source, 'num_classes', `is ${JSON.stringify(nc)}`, 'use a positive integer or leave it out');
  const numClasses = typeof nc === 'number' ? nc : undefined;

  const nl = c['null_label'];
  if (nl !== undefined && nl !== null && !(typeof nl === 'number' && Number.isInteger(nl) && nl >= 0)) {
    fail(source, 'null_label', `is ${JSON.stringify(nl)}`, 'use a non-negative integer (usually num_classes)');
  }
  const nullLabel = typeof nl === 'number' ? nl : undefined;
  if (nullLabel !== undefined && numClasses !== undefined && nullLabel < numClasses) {
    fail(
      source,
      'null_label',
      `(${nullLabel}) is one of the real classes 0…${numClasses - 1}`,
      'use the extra label the model was trained with for "no class"',
    );
  }

  const cn = c['class_names'];
  let classNames: string[] | undefined;
  if (cn !== undefined && cn !== null) {
    if (!Array.isArray(cn) || !cn.every((s) => typeof s === 'string' && s.length > 0)) {
      fail(source, 'class_names', 'must be a list of non-empty strings', 'one name per class, in label order');
    }
    classNames = cn as string[];
    if (numClasses !== undefined && classNames.length !== numClasses) {
      fail(source, 'class_names', `has ${classNames.length} names but num_classes is ${numClasses}`, 'give exactly one name per class');
    }
  }

  let inputs: Record<string, ModelCardInput> | undefined;
  const inp = c['inputs'];
  if (inp !== undefined && inp !== null) {
    if (!isRecord(inp)) fail(source, 'inputs', 'must be an object keyed by input name', 'e.g. {"timestep": {"dtype": "float32", "shape": ["B"]}}');
    inputs = {};
    for (const [key, spec] of Object.entries(inp)) {
      if (typeof spec === 'string') {
        inputs[key] = { dtype: spec };
        continue;
      }
      if (!isRecord(spec)) fail(source, `inputs.${key}`, 'must be an object {dtype, shape} or a dtype string', 'e.g. {"dtype": "int64", "shape": ["B"]}');
      inputs[key] = parseCardInput(source, key, spec);
    }
  }

  const roleCount = new Map<string, number>();
  for (const spec of Object.values(inputs ?? {})) if (spec.role) roleCount.set(spec.role, (roleCount.get(spec.role) ?? 0) + 1);
  for (const role of ['sample', 'timestep', 'class_labels', 'encoder_hidden_states']) {
    if ((roleCount.get(role) ?? 0) > 1) fail(source, 'inputs', `gives the role "${role}" to more than one input`, 'give each network role to one input');
  }

  const out = c['output'];
  if (out !== undefined && (typeof out !== 'string' || out.length === 0)) fail(source, 'output', 'must be the name of an output', 'e.g. "eps"');

  const ir = c['image_range'] ?? '[-1,1]';
  if (ir !== '[-1,1]' && ir !== '[0,1]') fail(source, 'image_range', `is ${JSON.stringify(ir)}`, 'use "[-1,1]" or "[0,1]"');

  const ds = c['default_solver'];
  if (ds !== undefined && typeof ds !== 'string') fail(source, 'default_solver', 'must be a solver name', 'e.g. "dpmpp_2m"');
  const dn = c['default_nfe'];
  if (dn !== undefined && !positiveInt(dn)) fail(source, 'default_nfe', `is ${JSON.stringify(dn)}`, 'use a positive integer');

  return {
    name,
    schedulerConfig: sched,
    predictionType: pt as PredictionType,
    sampleShape,
    ...(numClasses !== undefined ? { numClasses } : {}),
    ...(nullLabel !== undefined ? { nullLabel } : {}),
    ...(classNames ? { classNames } : {}),
    ...(inputs ? { inputs } : {}),
    ...(typeof out === 'string' ? { output: out } : {}),
    imageRange: ir,
    ...(typeof ds === 'string' ? { defaultSolver: ds } : {}),
    ...(typeof dn === 'number' ? { defaultNfe: dn } : {}),
    raw: c,
    source,
  };
}

/** One entry of the card's `inputs` (a dtype string, or an object; see {@link ModelCardInput}). */
function parseCardInput(source: string, key: string, spec: Record<string, unknown>): ModelCardInput {
  const dtype = spec['dtype'] ?? spec['type'];
  if (dtype !== undefined && typeof dtype !== 'string') fail(source, `inputs.${key}.dtype`, 'must be a string', 'e.g. "float32"');
  const shape = spec['shape'];
  if (shape !== undefined && !(Array.isArray(shape) && shape.every((d) => typeof d === 'string' || (typeof d === 'number' && Number.isInteger(d))))) {
    fail(source, `inputs.${key}.shape`, 'must be a list of integers or dimension names', 'e.g. ["B", 1, 28, 28]');
  }
  const role = spec['role'];
  if (role !== undefined && !(MODEL_INPUT_ROLES as readonly unknown[]).includes(role)) {
    fail(source, `inputs.${key}.role`, `is ${JSON.stringify(role)}`, `use one of ${MODEL_INPUT_ROLES.join(', ')}`);
  }
  const scale = spec['scale'];
  if (scale !== undefined && !(typeof scale === 'number' && Number.isFinite(scale) && scale > 0)) {
    fail(source, `inputs.${key}.scale`, `is ${JSON.stringify(scale)}`, 'use a positive number, e.g. 0.001 for a model trained on t/1000');
  }
  const time = spec['time'];
  if (time !== undefined && time !== 'model_time' && time !== 'sigma')
    fail(source, `inputs.${key}.time`, `is ${JSON.stringify(time)}`, 'use "model_time" or "sigma"');
  if ((scale !== undefined || time !== undefined) && role !== undefined && role !== 'timestep') {
    fail(source, `inputs.${key}`, `has "scale"/"time" but its role is ${String(role)}`, 'those apply to the timestep input only');
  }
  const value = spec['value'];
  const values = typeof value === 'number' ? [value] : value;
  if (values !== undefined && !(Array.isArray(values) && values.length > 0 && values.every((v) => typeof v === 'number' && Number.isFinite(v)))) {
    fail(source, `inputs.${key}.value`, 'must be a finite number or a non-empty list of them', 'e.g. [64, 64]');
  }
  if (role === 'constant' && values === undefined)
    fail(source, `inputs.${key}.value`, 'is missing for a constant input', 'give the value it is fed, e.g. 1');
  if (values !== undefined && role !== 'constant')
    fail(source, `inputs.${key}.value`, 'is only for inputs with role "constant"', 'add "role": "constant"');
  return {
    ...(dtype !== undefined ? { dtype: dtype as string } : {}),
    ...(shape !== undefined ? { shape: shape as (number | string)[] } : {}),
    ...(role !== undefined ? { role: role as ModelInputRole } : {}),
    ...(scale !== undefined ? { scale: scale as number } : {}),
    ...(time !== undefined ? { time: time as TimestepValue } : {}),
    ...(values !== undefined ? { value: values as number[] } : {}),
  };
}

/**
 * The class label for a user's class choice: an index (`"3"`), or a class name matched without
 * regard to case, spaces, `-`, `_` and `/` (`ankle boot`, `Ankle_Boot` and `ankleboot` are the
 * same name; prefixes are not guessed). Throws listing the valid choices.
 */
export function resolveClassLabel(card: Pick<ModelCard, 'numClasses' | 'classNames' | 'name'>, choice: string): number {
  const n = card.numClasses ?? card.classNames?.length;
  if (n === undefined) {
    throw new Error(`model ${card.name} is not class-conditional: leave out --class`);
  }
  const names = card.classNames ?? [];
  const listing = names.length ? names.map((s, i) => `${i}=${s}`).join(', ') : `0…${n - 1}`;
  const trimmed = choice.trim();
  if (/^\d+$/.test(trimmed)) {
    const k = Number(trimmed);
    if (k < n) return k;
    throw new Error(`class ${k} is out of range: model ${card.name} has classes ${listing}`);
  }
  const norm = (s: string) => s.toLowerCase().replace(/[\s\-_/]+/g, '');
  const want = norm(trimmed);
  const k = names.findIndex((s) => norm(s) === want);
  if (k >= 0) return k;
  throw new Error(`unknown class "${choice}": use an index or a name of model ${card.name}: ${listing}`);
}

/** What sampling needs from a card: the schedule and grid of its scheduler config, and the model facts. */
export interface CardSamplingSetup {
  /** The scheduler config as rediffuse reads it (solver, grid options, clip_sample, …). */
  readonly scheduler: SchedulerConfig;
  /** The noise schedule the model was trained with. */
  readonly schedule: NoiseSchedule;
  readonly predictionType: PredictionType;
  readonly sampleShape: readonly number[];
  readonly nullLabel: number | undefined;
  readonly classNames: readonly string[] | undefined;
  /** Number of real classes (`num_classes`, else the number of class names); 0 when not class-conditional. */
  readonly numClasses: number;
  /** The card's `default_solver`, else the solver its scheduler config maps to. */
  readonly defaultSolver: string;
  /** The card's `default_nfe`, if any. */
  readonly defaultNfe: number | undefined;
  /** The card's name and source, for errors about what the card says. */
  readonly card: Pick<ModelCard, 'name' | 'source' | 'defaultSolver'>;
}

/**
 * Turn a card into a sampling setup. The card's own `prediction_type` wins over the scheduler
 * config's. Errors from the scheduler config are prefixed with the card's name.
 */
export function cardSamplingSetup(card: ModelCard): CardSamplingSetup {
  let scheduler: SchedulerConfig;
  try {
    scheduler = fromSchedulerConfig(card.schedulerConfig);
  } catch (err) {
    throw new Error(`model card ${card.name}: scheduler_config: ${(err as Error).message}`, { cause: err });
  }
  return {
    scheduler,
    schedule: scheduler.schedule,
    predictionType: card.predictionType,
    sampleShape: card.sampleShape,
    nullLabel: card.nullLabel,
    classNames: card.classNames,
    numClasses: card.numClasses ?? card.classNames?.length ?? 0,
    defaultSolver: card.defaultSolver ?? scheduler.solver,
    defaultNfe: card.defaultNfe,
    card: { name: card.name, source: card.source ?? '(inline)', ...(card.defaultSolver !== undefined ? { defaultSolver: card.defaultSolver } : {}) },
  };
}

/** Sampler settings derived from a card for a chosen solver ({@link solverSettingsFor}). */
export interface CardSolverSettings {
  /** The registry name of the solver. */
  readonly solver: string;
  /** The scheduler config's solver options when it names this same solver, else none (the solver's defaults). */
  readonly solverOptions: Record<string, unknown>;
  /** Grid options (spacing, offset, terminal); the formula family only when the solver is the config's own. */
  readonly timesteps: Omit<TimestepOptions, 'steps'>;
  /** `clip_sample_range` when the config clips x̂0, else undefined. */
  readonly clipSample: number | undefined;
  readonly thresholding: ThresholdingConfig | undefined;
}

/**
 * What `sample()` needs from a card besides the model, for `solver` (default: the card's): the
 * config's grid and solver options carry over when the solver is the one the config names; another
 * solver keeps the grid spacing but uses its own formula family and its own default options (what
 * swapping a diffusers pipeline's scheduler with `from_config` gives).
 */
export function solverSettingsFor(setup: CardSamplingSetup, solver?: string): CardSolverSettings {
  let name: string;
  try {
    name = getSolver(solver ?? setup.defaultSolver).name;
  } catch (err) {
    if (solver !== undefined || setup.card.defaultSolver === undefined) throw err;
    throw new Error(
      `model card ${setup.card.source}: field "default_solver" names no solver (${(err as Error).message}); fix the card, or choose a solver (--solver)`,
      { cause: err },
    );
  }
  const s = setup.scheduler;
  const same = name === s.solver;
  const timesteps: Omit<TimestepOptions, 'steps'> = { ...s.timestepOptions };
  if (!same) delete timesteps.family;
  return {
    solver: name,
    solverOptions: same ? { ...s.solverOptions } : {},
    timesteps,
    clipSample: s.clipSample ? s.clipSampleRange : undefined,
    thresholding: s.thresholding,
  };
}
