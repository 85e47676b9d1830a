/**
 * Replaying the diffusers reference runs of `test/fixtures/diffusers-parity/sd15-closed-form.json`
 * (see that folder's README): the closed-form model diffusers was run on, and one run of ours from a
 * run's `scheduler_config` through the public config loader, with every model call recorded.
 *
 * The model: data x0 ~ N(μ, s²) per coordinate; with a = ᾱ(t) the exact noise prediction is
 *   ε*(x, t) = √(1−a)·(x − √a·μ) / (a·s² + 1 − a).
 * It sees what a network sees: the timestep input t and the (scaled) state. ᾱ at integer t is the
 * fixture's float64 table; at fractional t, log σ_VE (σ_VE = √((1−ᾱ)/ᾱ)) is interpolated linearly
 * between ⌊t⌋ and ⌊t⌋ + 1 — independent of how the sampler's schedule interpolates.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DiffusionModel, ModelCall } from '../../src/core/model.js';
import { sample } from '../../src/core/sample.js';
import { fromSchedulerConfig, type ConfigSampleOptions, type SchedulerConfig } from '../../src/core/schedule/config.js';
import { veSigma } from '../../src/core/schedule/noise-schedule.js';
import type { NumArray } from '../../src/core/tensor.js';

/** One recorded `step()` output of a diffusers run. */
export interface ParityIntermediate {
  step_call: number;
  timestep: number;
  landing_sigma: number;
  sample_vp: (number | null)[] | null;
}

/** One variant (`stock` or `f64`) of a diffusers run. */
export interface ParityVariant {
  timesteps: number[];
  sigmas: number[] | null;
  init_noise_sigma: number;
  model_calls: number;
  model_call_timesteps: number[];
  final_sample: (number | null)[];
  intermediates: ParityIntermediate[];
  step_noise: number[][] | null;
}

/** One diffusers run: a scheduler variant at one step count. */
export interface ParityRun {
  scheduler: string;
  class: string;
  num_inference_steps: number;
  scheduler_config: Record<string, unknown>;
  stock: ParityVariant;
  f64: ParityVariant;
}

/** The fixture file. */
export interface ParityData {
  diffusers: { repo: string; commit: string; version: string };
  model: { mean: number; std: number; sample_shape: number[]; batch: number; alphas_cumprod: number[] };
  initial_noise: { values: number[][] | number[] };
  runs: ParityRun[];
}

/** The fixture, parsed. */
export function loadParityData(): ParityData {
  const path = fileURLToPath(new URL('../fixtures/diffusers-parity/sd15-closed-form.json', import.meta.url));
  return JSON.parse(readFileSync(path, 'utf8')) as ParityData;
}

/** The closed-form model of the fixture (see the file comment), recording the time input of every call. */
export function parityModel(data: ParityData): DiffusionModel & { readonly times: number[] } {
  const { mean: mu, std, sample_shape: shape, alphas_cumprod: ac } = data.model;
  const logSigma = ac.map((a) => 0.5 * Math.log((1 - a) / a));
  const abar = (t: number): number => {
    const lo = Math.floor(t);
    if (lo === t) return ac[lo]!;
    const w = t - lo;
    const ls = (1 - w) * logSigma[lo]! + w * logSigma[lo + 1]!;
    return 1 / (1 + Math.exp(2 * ls));
  };
  const s2 = std * std;
  const times: number[] = [];
  return {
    predictionType: 'epsilon',
    sampleShape: shape,
    times,
    async predict(x: NumArray, call: ModelCall): Promise<NumArray> {
      const t = call.modelTime;
      if (!(t >= 0 && t <= ac.length - 1)) throw new RangeError(`parity model called at t = ${t}, outside 0…${ac.length - 1}`);
      times.push(t);
      const a = abar(t);
      const out = new Float64Array(x.length);
      const c = Math.sqrt(1 - a) / (a * s2 + 1 - a);
      for (let i = 0; i < x.length; i++) out[i] = c * (x[i]! - Math.sqrt(a) * mu);
      return out;
    },
  };
}

/** One of our states, reported after a step: the VE σ of the time it lives at, and the state (VP). */
export interface OurStep {
  sigma: number;
  x: Float64Array;
  x0?: Float64Array;
}

/** What one run of ours gave. */
export interface OurRun {
  config: SchedulerConfig;
  calls: number;
  times: number[];
  final: Float64Array;
  steps: OurStep[];
}

/** Run `run` our way: `fromSchedulerConfig(run.scheduler_config)` → its sample options for N steps, float64. */
export async function runOurs(
  data: ParityData,
  run: ParityRun,
  extraSolverOptions: Record<string, unknown> = {},
  gridOverrides: Record<string, unknown> = {},
  adjust: (o: ConfigSampleOptions) => ConfigSampleOptions = (o) => o,
): Promise<OurRun> {
  const config = fromSchedulerConfig(run.scheduler_config);
  const model = parityModel(data);
  const noise = run.f64.step_noise;
  const steps: OurStep[] = [];
  const opts = adjust(config.sampleOptions(run.num_inference_steps));
  const result = await sample({
    ...opts,
    solverOptions: { ...opts.solverOptions, ...extraSolverOptions },
    timesteps: { ...opts.timesteps, ...gridOverrides },
    model,
    batch: data.model.batch,
    initialNoise: Float64Array.from(data.initial_noise.values.flat()),
    precision: 'float64',
    ...(noise ? { noise: (i: number) => Float64Array.from(noise[i]!) } : {}),
    onStep: ({ t, x, x0 }) => {
      steps.push({ sigma: t === -1 ? 0 : veSigma(opts.schedule, t), x: Float64Array.from(x), ...(x0 ? { x0: Float64Array.from(x0) } : {}) });
    },
  });
  return { config, calls: result.calls, times: model.times, final: Float64Array.from(result.samples), steps };
}

/** max |a − b| over the entries; Infinity when a reference value is missing (null) or lengths differ. */
export function maxDiff(ours: ArrayLike<number>, ref: readonly (number | null)[]): number {
  if (ours.length !== ref.length) return Infinity;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    if (r === null || r === undefined) return Infinity;
    m = Math.max(m, Math.abs(ours[i]! - r));
  }
  return m;
}

/**
 * The recorded intermediates that are states of the method (not a sub-stage): the last `step()`
 * output landing at its σ (diffusers' Heun and PNDM first write a predictor state at the σ the
 * corrector then lands at). An intermediate whose successor was not recorded counts only when it
 * is the run's last step call. Each is paired with our reported state at the same σ (relative 1e-4: the stock float32 tables move σ near t = 0 by ~1e-5);
 * `ours` is undefined when we report none there (a DPM-Solver singlestep sub-stage).
 */
export function pairIntermediates(ref: ParityVariant, ours: OurStep[]): { ref: ParityIntermediate; ours?: OurStep }[] {
  const recorded = new Map(ref.intermediates.map((m) => [m.step_call, m]));
  const out: { ref: ParityIntermediate; ours?: OurStep }[] = [];
  for (const m of ref.intermediates) {
    const next = recorded.get(m.step_call + 1);
    const last = m.step_call === ref.model_calls - 1;
    if (!last && (next === undefined || next.landing_sigma === m.landing_sigma)) continue;
    const s = m.landing_sigma;
    const match = ours.filter((o) => Math.abs(o.sigma - s) <= 1e-4 * s).at(-1);
    out.push(match ? { ref: m, ours: match } : { ref: m });
  }
  return out;
}
