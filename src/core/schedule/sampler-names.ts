/**
 * The sampler names users type — AUTOMATIC1111's display names ("DPM++ 2M Karras", "Euler a") and
 * ComfyUI's `sampler_name` with an optional scheduler ("dpmpp_2m karras", "euler_ancestral") — as a
 * registry solver, its options and the timestep grid, for {@link sample}.
 *
 * Grids: A1111's and ComfyUI's k-diffusion samplers use the model's discrete σ table with the
 * "normal" schedule t = linspace(T−1, 0, N), σ interpolated in log σ (k-diffusion's
 * `DiscreteSchedule.get_sigmas`), then σ = 0: our Euler-family `linspace` grid with the clean
 * terminal on the default (log-σ) schedule. The suffix " Karras" / " Exponential" (ComfyUI: the
 * scheduler `karras` / `exponential`) picks Karras et al.'s ρ = 7 or log-uniform σ between the
 * schedule's ends. k-diffusion starts from z·σ_max in σ/α: the Euler family takes that start
 * (`noiseStart: 'sigma_max'`); the DPM-Solver family starts from the VP state z (0.23 % larger on
 * SD 1.5). A1111's DDIM and PLMS are the CompVis samplers: `leading` times + 1 ("ddim_uniform"),
 * ending at ᾱ_0.
 * @packageDocumentation
 */
import type { TimestepOptions } from '../timesteps.js';

/** What {@link resolveSamplerName} returns: spread into `sample({ model, schedule, ...it })`. */
export interface ResolvedSampler {
  /** Registry solver name. */
  solver: string;
  /** The solver's options. */
  solverOptions: Record<string, unknown>;
  /** Grid options (without the step count). */
  timesteps: Omit<TimestepOptions, 'steps'>;
  /** The name as written, trimmed. */
  name: string;
  /** Where the mapping is not exact, in words. */
  notes: string[];
  /**
   * True when `timesteps` is k-diffusion's "normal" grid on a discrete VP σ table (no schedule word,
   * no grid of the sampler's own). On a flow-matching model the "normal" schedule is the model's own
   * σ list (ComfyUI's `model_sampling` sigmas): callers keep the model's grid instead.
   */
  normalGrid: boolean;
}

type Grid = Omit<TimestepOptions, 'steps'>;
interface Entry {
  solver: string;
  options?: Record<string, unknown>;
  /** The solver's grid on the "normal" schedule when not the k-diffusion one. */
  grid?: Grid;
  /** A fixed grid that a " Karras" suffix does not change (DDIM, PLMS, UniPC). */
  fixedGrid?: boolean;
  notes?: string[];
}

/** k-diffusion's "normal" schedule: t = linspace(T−1, 0, N) (log σ between integers), then σ = 0. */
const NORMAL: Grid = { spacing: 'linspace', family: 'euler', terminal: 'zero' };
/** CompVis DDIM/PLMS ("ddim_uniform"): leading times + 1, last step to ᾱ_0. */
const DDIM_UNIFORM: Grid = { spacing: 'leading', family: 'ddim', stepsOffset: 1, terminal: 'sigma_min' };
const K_START = { noiseStart: 'sigma_max' };

/** Samplers by normalized name (lower case, single spaces; ComfyUI's underscores kept). */
const SAMPLERS: Record<string, Entry> = {
  // A1111 display names
  euler: { solver: 'euler', options: K_START },
  'euler a': { solver: 'euler_a', options: K_START },
  lms: { solver: 'lms', options: K_START },
  heun: { solver: 'heun', options: K_START },
  'dpm++ 2m': { solver: 'dpmpp_2m', options: { lowerOrderFinal: false } },
  'dpm++ 3m': { solver: 'dpmpp_3m', options: { lowerOrderFinal: false } },
  'dpm++ 2m sde': { solver: 'dpmpp_2m_sde', options: { lowerOrderFinal: false } },
  ddim: { solver: 'ddim', grid: DDIM_UNIFORM, fixedGrid: true },
  plms: { solver: 'plms', grid: DDIM_UNIFORM, fixedGrid: true },
  unipc: {
    solver: 'unipc',
    options: { variant: 'bh1', order: 3 },
    grid: { spacing: 'time_uniform', terminal: 'sigma_min' },
    fixedGrid: true,
    notes: ["A1111's UniPC defaults: bh1, order 3, time-uniform grid"],
  },
  deis: { solver: 'deis', options: { order: 3 }, notes: ["ComfyUI's deis uses the 'tab' coefficients; here the log-ρ ones (same order)"] },
  ddpm: { solver: 'ddpm' },
  dpm2: { solver: 'dpm_2', options: K_START },
  'dpm++ sde': { solver: 'dpmpp_sde', options: K_START },
  'dpm++ 2s a': { solver: 'dpmpp_2s_a', options: K_START },
  dpmpp_2s_ancestral: { solver: 'dpmpp_2s_a', options: K_START },
  dpmpp_sde: { solver: 'dpmpp_sde', options: K_START },
  dpmpp_sde_gpu: { solver: 'dpmpp_sde', options: K_START },
  'dpm2 a': { solver: 'dpm_2_a', options: K_START },
  // ComfyUI sampler_name spellings
  dpm_2: { solver: 'dpm_2', options: K_START },
  dpm_2_ancestral: { solver: 'dpm_2_a', options: K_START },
  ipndm: { solver: 'ipndm', options: K_START },
  ipndm_v: { solver: 'ipndm_v', options: K_START },
  tcd: { solver: 'tcd', grid: { spacing: 'lcm', terminal: 'sigma_min' }, fixedGrid: true, notes: ['TCD with γ = 0.3 on the LCM grid'] },
  lcm: { solver: 'lcm', grid: { spacing: 'lcm', terminal: 'zero' }, fixedGrid: true, notes: ['LCM grid of diffusers (50 distillation steps)'] },
  euler_ancestral: { solver: 'euler_a', options: K_START },
  dpmpp_2m: { solver: 'dpmpp_2m', options: { lowerOrderFinal: false } },
  dpmpp_2m_sde: { solver: 'dpmpp_2m_sde', options: { lowerOrderFinal: false } },
  uni_pc: { solver: 'unipc', options: { variant: 'bh1', order: 3, lowerOrderFinal: true } },
  uni_pc_bh2: { solver: 'unipc', options: { variant: 'bh2', order: 3, lowerOrderFinal: true } },
};

/** Names we know that have no solver here yet, with what they are. */
const MISSING: Record<string, string> = {
  'dpm++ 3m sde': 'DPM++ 3M SDE (sample_dpmpp_3m_sde)',
  dpmpp_3m_sde: 'DPM++ 3M SDE (sample_dpmpp_3m_sde)',
  'dpm fast': "DPM-Solver's adaptive-order fast sampler",
  'dpm adaptive': "DPM-Solver's adaptive step-size sampler",
  dpm_fast: "DPM-Solver's adaptive-order fast sampler",
  dpm_adaptive: "DPM-Solver's adaptive step-size sampler",
  restart: 'Restart sampling',
  heunpp2: 'Heun++ (ComfyUI heunpp2)',
};

/** Schedule words: A1111's suffix or ComfyUI's scheduler name. */
const SCHEDULES: Record<string, Grid | 'normal'> = {
  normal: 'normal',
  karras: { spacing: 'karras', terminal: 'zero' },
  exponential: { spacing: 'exponential', terminal: 'zero' },
  ddim_uniform: DDIM_UNIFORM,
};

function known(): string {
  return [...new Set(Object.keys(SAMPLERS))].join(', ');
}

/**
 * Resolve a sampler name as A1111 or ComfyUI users write it (case-insensitive; A1111's display
 * names such as "DPM++ 2M Karras", "Euler a", "DDIM", "PLMS", "UniPC"; ComfyUI's `sampler_name`
 * such as "dpmpp_2m", "euler_ancestral", "uni_pc_bh2", optionally followed by its scheduler, e.g.
 * "dpmpp_2m karras") to a solver, its options and its grid. Throws for an empty or unknown name
 * (listing the known ones) and, naming what it is, for a known sampler that has no solver here.
 */
export function resolveSamplerName(name: string): ResolvedSampler {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TypeError('resolveSamplerName: pass a sampler name such as "DPM++ 2M Karras", "Euler a" or "dpmpp_2m karras"');
  }
  const trimmed = name.trim();
  const words = trimmed.toLowerCase().replace(/\s+/g, ' ').split(' ');
  let schedule: Grid | 'normal' = 'normal';
  const last = words[words.length - 1]!;
  if (words.length > 1 && SCHEDULES[last] !== undefined) {
    schedule = SCHEDULES[last]!;
    words.pop();
  }
  const key = words.join(' ');
  const entry = SAMPLERS[key];
  if (!entry) {
    const missing = MISSING[key];
    if (missing) throw new RangeError(`sampler "${trimmed}" is ${missing}, which rediffuse does not provide yet: pick one of ${known()}`);
    throw new RangeError(`unknown sampler name "${trimmed}": use one of ${known()} (optionally followed by karras, exponential or normal)`);
  }
  const notes = [...(entry.notes ?? [])];
  let timesteps: Grid = entry.grid ?? NORMAL;
  if (schedule !== 'normal') {
    if (entry.fixedGrid && schedule !== DDIM_UNIFORM) {
      throw new RangeError(`sampler "${trimmed}": ${key} runs on its own grid, not a ${last} schedule; drop "${last}"`);
    }
    timesteps = schedule;
  }
  if (entry.options?.['noiseStart'] === undefined && !entry.fixedGrid && entry.solver !== 'ddpm') {
    notes.push('k-diffusion starts from z·σ_max in σ/α; this solver starts from the VP state z');
  }
  const normalGrid = timesteps === NORMAL;
  return { solver: entry.solver, solverOptions: { ...(entry.options ?? {}) }, timesteps: { ...timesteps }, name: trimmed, notes, normalGrid };
}
