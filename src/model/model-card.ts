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

/** What the card says of one ONNX input. */
export interface ModelCardInput {
  /** Element type, e.g. `float32`, `int64`, `float16`. */
  dtype?: string;
  /** Declared shape; strings name symbolic dimensions such as `B`. */
  shape?: ReadonlyArray<number | string>;
}

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
  /** The ONNX inputs by name, when the card lists them. */
  readonly inputs?: Readonly<Record<string, ModelCardInput>>;
  /** Solver the card recommends (`default_solver`), if any. */
  readonly defaultSolver?: string;
  /** Model-call budget the card recommends (`default_nfe`), if any. */
  readonly defaultNfe?: number;
  /** The whole card as parsed, for fields rediffuse does not interpret (training data, …). */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Where the card came from (its path, or `(inline)`), for errors about its fields. */
  readonly source?: string;
}

const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'sample', 'v_prediction'];

function fail(source: string, field: string, problem: string, fix: string): never {
  throw new Error(`model card ${source}: field "${field}" ${problem}; ${fix}`);
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
  if (!isRecord(json)) throw new Error(`model card ${source} must be a JSON object; see models/README.md for the format`);
  const c = json;

  const name = c['name'] ?? 'model';
  if (typeof name !== 'string' || name.length === 0) fail(source, 'name', 'must be a non-empty string', 'e.g. "fashion-unet"');

  const sched = c['scheduler_config'];
  if (!isRecord(sched)) {
    fail(source, 'scheduler_config', 'is missing or not an object', "copy the model's diffusers scheduler_config.json into it");
  }

  const pt = c['prediction_type'] ?? sched['prediction_type'] ?? 'epsilon';
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
      const dtype = spec['dtype'] ?? spec['type'];
      if (dtype !== undefined && typeof dtype !== 'string') fail(source, `inputs.${key}.dtype`, 'must be a string', 'e.g. "float32"');
      const shape = spec['shape'];
      if (shape !== undefined && !(Array.isArray(shape) && shape.every((d) => typeof d === 'string' || (typeof d === 'number' && Number.isInteger(d))))) {
        fail(source, `inputs.${key}.shape`, 'must be a list of integers or dimension names', 'e.g. ["B", 1, 28, 28]');
      }
      inputs[key] = { ...(dtype !== undefined ? { dtype } : {}), ...(shape !== undefined ? { shape: shape as (number | string)[] } : {}) };
    }
  }

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
    ...(typeof ds === 'string' ? { defaultSolver: ds } : {}),
    ...(typeof dn === 'number' ? { defaultNfe: dn } : {}),
    raw: c,
    source,
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
