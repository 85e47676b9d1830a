/**
 * The tuned-configuration file `rediffuse tune` writes and `rediffuse sample --config` reads
 * (format `rediffuse-tuned-config/1`): the sampling settings of the pick (solver, NFE, spacing,
 * PFDiff k_h, feature reuse), the guidance and model it was tuned for, its plan (grid and calls by
 * kind), and the evidence (objective, calibration and held-out figures, the front). Written
 * atomically; every field is validated on read, with an error that names the file, the field and the
 * fix.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatKH, getSolver, parseKH, TIMESTEP_SPACINGS, type TimestepSpacing } from '../core/index.js';
import { writeFileAtomic } from '../node/index.js';
import { GridError, parseFrEntry, type FrSpec } from './grid.js';

/** Format tag (schema version) of a tuned configuration. */
export const TUNED_CONFIG_FORMAT = 'rediffuse-tuned-config/1';

/** The sampling settings a tuned configuration fixes (one candidate of the search). */
export interface TunedSampling {
  /** Registry solver name. */
  solver: string;
  /** Model-call budget. */
  nfe: number;
  /** Timestep spacing. */
  spacing: TimestepSpacing;
  /** PFDiff k_h (e.g. `2_1`) or null. */
  pfdiff: string | null;
  /** Feature reuse, as a bench grid declares it (`none`, interval policies, policy files, and kinds other parts add). */
  fr: FrSpec;
}

/** What the tune optimised. */
export type TuneObjective = { kind: 'budget'; budgetMs: number } | { kind: 'target-fd'; targetFd: number };

/** Figures of one evaluated configuration on one seed set. */
export interface TuneFigures {
  /** First seed and sample count of the seed set. */
  seed: number;
  count: number;
  /** FD-classifier of the `count` samples, and its bootstrap standard deviation. */
  fd: number;
  fdStd: number;
  /** Sampling wall time per image on this machine, ms. */
  msPerImage: number;
}

/** One point of the front the tune prints. */
export interface TuneFrontEntry {
  label: string;
  fd: number;
  msPerImage: number;
}

/** A tuned configuration file. */
export interface TunedConfig {
  format: typeof TUNED_CONFIG_FORMAT;
  /** The model it was tuned on (card name and SHA-256 of the ONNX file). */
  model: { name: string; sha256: string };
  /** Guidance scale (0 = unconditional, 1 = conditional, other = classifier-free guidance). */
  guidance: number;
  sampling: TunedSampling;
  objective: TuneObjective;
  /** The plan of the pick at one sample (grid, calls per run by kind). */
  plan: { timesteps: number[]; calls: number; full: number; reuse: number; skip: number };
  calibration: TuneFigures;
  heldOut: TuneFigures & { meetsObjective: boolean };
  front: TuneFrontEntry[];
  machine: { cpu: string; cores: number };
  generatedAt: string;
}

/** A tuned configuration that cannot be read: names the file, the field and the fix. */
export class TunedConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TunedConfigError';
  }
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function checker(file: string) {
  const fail = (field: string, msg: string): never => {
    throw new TunedConfigError(`${file}: ${field} ${msg}; write the file with rediffuse tune (or fix the field)`);
  };
  const obj = (v: unknown, field: string, keys: readonly string[]): Obj => {
    if (!isObj(v)) fail(field, `must be an object, got ${JSON.stringify(v)}`);
    const o = v as Obj;
    for (const k of Object.keys(o))
      if (!keys.includes(k)) fail(`${field}.${k}`, `is not a field of ${TUNED_CONFIG_FORMAT} (allowed: ${keys.join(', ')})`);
    return o;
  };
  const num = (v: unknown, field: string, min = -Infinity, integer = false): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      fail(field, `must be ${integer ? 'an integer' : 'a finite number'} ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const str = (v: unknown, field: string): string => {
    if (typeof v !== 'string' || v === '') fail(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return v as string;
  };
  const bool = (v: unknown, field: string): boolean => {
    if (typeof v !== 'boolean') fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const numList = (v: unknown, field: string): number[] => {
    if (!Array.isArray(v) || v.length < 2) fail(field, `must be a list of at least 2 numbers, got ${JSON.stringify(v)}`);
    return (v as unknown[]).map((x, i) => num(x, `${field}[${i}]`));
  };
  return { fail, obj, num, str, bool, numList };
}

/** The sampling block, validated (`baseDir` resolves a policy file's path). */
export function validateTunedSampling(v: unknown, file = 'tuned config', baseDir = process.cwd()): TunedSampling {
  const c = checker(file);
  const s = c.obj(v, 'sampling', ['solver', 'nfe', 'spacing', 'pfdiff', 'fr']);
  const solver = c.str(s.solver, 'sampling.solver');
  try {
    getSolver(solver);
  } catch (e) {
    c.fail('sampling.solver', `names no solver (${(e as Error).message})`);
  }
  const nfe = c.num(s.nfe, 'sampling.nfe', 1, true);
  const spacing = c.str(s.spacing, 'sampling.spacing');
  if (!(TIMESTEP_SPACINGS as readonly string[]).includes(spacing))
    c.fail('sampling.spacing', `must be one of ${TIMESTEP_SPACINGS.join(', ')}, got "${spacing}"`);
  let pfdiff: string | null = null;
  if (s.pfdiff !== null) {
    try {
      pfdiff = formatKH(parseKH(c.str(s.pfdiff, 'sampling.pfdiff')));
    } catch (e) {
      if (e instanceof TunedConfigError) throw e;
      c.fail('sampling.pfdiff', `must be null or k_h with 1 ≤ h ≤ k ≤ 3 (e.g. "2_1"), got ${JSON.stringify(s.pfdiff)}`);
    }
  }
  let fr: FrSpec;
  try {
    fr = parseFrEntry(s.fr, 'sampling.fr', baseDir);
  } catch (e) {
    if (e instanceof GridError) c.fail('sampling.fr', `is not a feature-reuse setting (${e.message})`);
    throw e;
  }
  return { solver, nfe, spacing: spacing as TimestepSpacing, pfdiff, fr: fr! };
}

/** Validate a parsed tuned configuration (every field); `file` names it in errors. */
export function validateTunedConfig(raw: unknown, file = 'tuned config', baseDir = process.cwd()): TunedConfig {
  const c = checker(file);
  const top = c.obj(raw, 'the file', [
    'format',
    'model',
    'guidance',
    'sampling',
    'objective',
    'plan',
    'calibration',
    'heldOut',
    'front',
    'machine',
    'generatedAt',
  ]);
  if (top.format !== TUNED_CONFIG_FORMAT) c.fail('format', `must be "${TUNED_CONFIG_FORMAT}", got ${JSON.stringify(top.format)}`);
  const m = c.obj(top.model, 'model', ['name', 'sha256']);
  const name = c.str(m.name, 'model.name');
  const sha256 = c.str(m.sha256, 'model.sha256');
  if (!/^[0-9a-f]{64}$/.test(sha256)) c.fail('model.sha256', 'must be 64 lower-case hex digits (the SHA-256 of the ONNX file)');
  const guidance = c.num(top.guidance, 'guidance', 0);
  const sampling = validateTunedSampling(top.sampling, file, baseDir);
  const o = c.obj(top.objective, 'objective', ['kind', 'budgetMs', 'targetFd']);
  let objective: TuneObjective;
  if (o.kind === 'budget' && o.targetFd === undefined) objective = { kind: 'budget', budgetMs: c.num(o.budgetMs, 'objective.budgetMs', 0) };
  else if (o.kind === 'target-fd' && o.budgetMs === undefined) objective = { kind: 'target-fd', targetFd: c.num(o.targetFd, 'objective.targetFd', 0) };
  else objective = c.fail('objective', `must be {kind: "budget", budgetMs} or {kind: "target-fd", targetFd}, got ${JSON.stringify(o)}`);
  const p = c.obj(top.plan, 'plan', ['timesteps', 'calls', 'full', 'reuse', 'skip']);
  const plan = {
    timesteps: c.numList(p.timesteps, 'plan.timesteps'),
    calls: c.num(p.calls, 'plan.calls', 1, true),
    full: c.num(p.full, 'plan.full', 0, true),
    reuse: c.num(p.reuse, 'plan.reuse', 0, true),
    skip: c.num(p.skip, 'plan.skip', 0, true),
  };
  if (plan.full + plan.reuse + plan.skip !== plan.calls)
    c.fail('plan', `calls by kind (${plan.full} + ${plan.reuse} + ${plan.skip}) must add up to plan.calls (${plan.calls})`);
  const figures = (v: unknown, field: string, extra: string[] = []): TuneFigures & Obj => {
    const f = c.obj(v, field, ['seed', 'count', 'fd', 'fdStd', 'msPerImage', ...extra]);
    return {
      ...f,
      seed: c.num(f.seed, `${field}.seed`, 0, true),
      count: c.num(f.count, `${field}.count`, 1, true),
      fd: c.num(f.fd, `${field}.fd`, 0),
      fdStd: c.num(f.fdStd, `${field}.fdStd`, 0),
      msPerImage: c.num(f.msPerImage, `${field}.msPerImage`, 0),
    };
  };
  const cal = figures(top.calibration, 'calibration');
  const held = figures(top.heldOut, 'heldOut', ['meetsObjective']);
  const calibration: TuneFigures = { seed: cal.seed, count: cal.count, fd: cal.fd, fdStd: cal.fdStd, msPerImage: cal.msPerImage };
  const heldOut = {
    seed: held.seed,
    count: held.count,
    fd: held.fd,
    fdStd: held.fdStd,
    msPerImage: held.msPerImage,
    meetsObjective: c.bool(held.meetsObjective, 'heldOut.meetsObjective'),
  };
  if (!Array.isArray(top.front)) c.fail('front', 'must be a list of {label, fd, msPerImage}');
  const front = (top.front as unknown[]).map((e, i) => {
    const f = c.obj(e, `front[${i}]`, ['label', 'fd', 'msPerImage']);
    return {
      label: c.str(f.label, `front[${i}].label`),
      fd: c.num(f.fd, `front[${i}].fd`, 0),
      msPerImage: c.num(f.msPerImage, `front[${i}].msPerImage`, 0),
    };
  });
  const mach = c.obj(top.machine, 'machine', ['cpu', 'cores']);
  const machine = { cpu: c.str(mach.cpu, 'machine.cpu'), cores: c.num(mach.cores, 'machine.cores', 1, true) };
  const generatedAt = c.str(top.generatedAt, 'generatedAt');
  return { format: TUNED_CONFIG_FORMAT, model: { name, sha256 }, guidance, sampling, objective, plan, calibration, heldOut, front, machine, generatedAt };
}

/** Read and validate a tuned configuration file. */
export function readTunedConfig(path: string): TunedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TunedConfigError(
      code === 'ENOENT' ? `${path} does not exist; write it with rediffuse tune --out ${path}` : `${path} cannot be read (${(e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TunedConfigError(`${path} is not valid JSON (${(e as Error).message}); write it with rediffuse tune`);
  }
  return validateTunedConfig(raw, path, dirname(resolve(path)));
}

/** The declared (file) form of a feature-reuse setting. */
export function frEntryOf(fr: FrSpec): unknown {
  if (fr.kind === 'none') return 'none';
  if (fr.kind === 'policy') return { policy: fr.file };
  const forecast = fr.forecast ? { forecast: fr.forecast } : {};
  if (fr.kind === 'interval') {
    return { interval: fr.interval, mixing: fr.mixing ?? false, points: fr.points, ...(fr.space ? { space: fr.space } : {}), ...forecast };
  }
  const { kind: _kind, threshold, ...rest } = fr;
  return { adaptive: threshold, ...rest };
}

/** Write a tuned configuration atomically (validated first, so a written file always reads back). */
export function writeTunedConfig(path: string, config: TunedConfig): string {
  const json = { ...config, sampling: { ...config.sampling, fr: frEntryOf(config.sampling.fr) } };
  validateTunedConfig(JSON.parse(JSON.stringify(json)), path, dirname(resolve(path)));
  return writeFileAtomic(path, `${JSON.stringify(json, null, 2)}\n`);
}
