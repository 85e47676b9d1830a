/**
 * Timestep grids: the times a sampler visits, from the noisiest to the terminal point.
 *
 * {@link buildTimesteps} returns `steps + 1` times `[t_0, …, t_{steps−1}, terminal]` in the
 * schedule's own time (0…N−1, fractional allowed, for discrete schedules; (0, 1] for continuous ones).
 * Solvers step between consecutive entries, so a grid with `steps` intervals costs a first-order
 * solver `steps` model calls.
 *
 * The integer spacings reproduce diffusers' `set_timesteps` bit for bit: numpy's `round` is
 * round-half-to-even, `linspace` is `start + i·step` with the last value set to `stop`, and `arange`
 * with a float step is `start + i·δ` with δ = (start + step) − start.
 *
 * The terminal: `zero` is the clean end point (σ = 0: {@link CLEAN_TIME} for discrete schedules —
 * diffusers' `set_alpha_to_one=True` / `final_sigmas_type="zero"`); `sigma_min` is the smallest
 * trained time (t = 0 discrete, ε continuous — diffusers' `set_alpha_to_one=False` /
 * `final_sigmas_type="sigma_min"`, and the end point of DPM-Solver's own grids).
 * @packageDocumentation
 */
import { betaSigmas } from './schedule/beta-distribution.js';
import { linspace } from './schedule/discrete.js';
import { flowMatchSigmas, flowSigmasDpm, isFlowSchedule, type FlowMatchSigmaOptions } from './schedule/flow.js';
import { CLEAN_TIME, hasCleanEnd, timeOfVeSigma, veSigma, type NoiseSchedule } from './schedule/noise-schedule.js';

/** Every named spacing {@link buildTimesteps} knows, in the order they are documented. */
export const TIMESTEP_SPACINGS = [
  'leading',
  'trailing',
  'linspace',
  'time_uniform',
  'logSNR',
  'time_quadratic',
  'uniform',
  'quadratic',
  'linspace_floor',
  'karras',
  'exponential',
  'beta',
  'ays',
  'lcm',
  'flow_match',
  'flow_sigmas',
] as const;

/**
 * A named timestep spacing.
 * - `leading`, `trailing`, `linspace`: diffusers' `timestep_spacing`, with the formula family chosen
 *   by {@link TimestepOptions.family}.
 * - `time_uniform`, `logSNR`, `time_quadratic`: DPM-Solver's `skip_type` (Lu et al. 2022, §3.4 / App. D).
 * - `uniform`, `quadratic`: the DDIM code's `skip_type` (Song et al. 2021); `linspace_floor`:
 *   `int(np.linspace(0, N−1, S))`, the grid of the PFDiff reference code.
 * - `karras`: Karras et al. 2022 eq. 5; `exponential`: log-uniform σ; `beta`: Beta sampling (Lee et
 *   al. 2024, diffusers' `use_beta_sigmas`): σ at the Beta(0.6, 0.6) quantiles of [σ_min, σ_max].
 * - `ays`: Align Your Steps (Sabour et al. 2024).
 * - `lcm`: diffusers' LCMScheduler grid, `steps` of the `lcmOriginalSteps` distillation times
 *   (k·i − 1, k = ⌊N/origin⌋), picked at ⌊linspace(0, origin, steps, endpoint=False)⌋ from the noisy end.
 * - `flow_match`, `flow_sigmas` (flow schedules only, options in {@link TimestepOptions.flow}):
 *   FlowMatchEulerDiscreteScheduler's σ grid (`flowMatchSigmas`) and the `use_flow_sigmas` grid of
 *   DPMSolverMultistep / UniPC (`flowSigmasDpm`), then σ = 0.
 */
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/** Which library's formula `leading` / `trailing` / `linspace` follow (they differ between schedulers). */
export type TimestepFamily = 'ddim' | 'dpm' | 'euler';

/** The valid {@link TimestepFamily} values. */
export const TIMESTEP_FAMILIES: readonly TimestepFamily[] = ['ddim', 'dpm', 'euler'];

/** The last grid point: `zero` = clean data (σ = 0), `sigma_min` = smallest trained time. */
export type TimestepTerminal = 'zero' | 'sigma_min';

/** The Align-Your-Steps tables (`sd15`: Stable Diffusion 1.5, `sdxl`: SDXL). */
export type AysModel = 'sd15' | 'sdxl';

/** Whether AYS uses the published timesteps or the published noise levels σ. */
export type AysDomain = 'timesteps' | 'sigmas';

/** Options of {@link buildTimesteps}. */
export interface TimestepOptions {
  /** Number of intervals (integer ≥ 1). May be left out when {@link TimestepOptions.timesteps} is given. */
  steps?: number;
  /** Named spacing, default `linspace`. Ignored when an explicit list is given. */
  spacing?: TimestepSpacing;
  /** Formula family for `leading` / `trailing` / `linspace`, default `dpm`. */
  family?: TimestepFamily;
  /** diffusers' `steps_offset`, added to `leading` grids (SD 1.x uses 1). Default 0. */
  stepsOffset?: number;
  /**
   * The last point. Default: `zero` for discrete schedules (and continuous ones with a clean end, e.g. EDM), except DPM-Solver's own spacings which end
   * at `sigma_min` as in the DPM-Solver code; other continuous schedules only allow `sigma_min`.
   */
  terminal?: TimestepTerminal;
  /**
   * Precision of the Euler-family `linspace` times: `float32` (default, diffusers as shipped:
   * `np.linspace(..., dtype=np.float32)`) or `float64` (the same formula unrounded).
   */
  timeDtype?: 'float32' | 'float64';
  /**
   * Keep a grid whose last time equals its terminal (e.g. DDIM `linspace` or PNDM without
   * `steps_offset` end at t = 0, and `set_alpha_to_one=False` puts the terminal at t = 0 too): the
   * last interval then has zero length, an identity step that still calls the model — what diffusers
   * runs. Default false: such a grid is refused as not strictly decreasing. Only solvers whose update
   * is the identity on a zero-length interval accept it (ddim, plms).
   */
  repeatedTerminal?: boolean;
  /** `lcm` spacing: the distillation's step count (diffusers' `original_inference_steps`), default 50. */
  lcmOriginalSteps?: number;
  /**
   * diffusers' `lambda_min_clipped` (DPM-Solver classes, `dpm` family `leading` / `trailing` /
   * `linspace`): the grid spans only the times whose log-SNR λ is ≥ this (for cosine schedules,
   * whose λ plunges near t = N − 1). With `trailing`, diffusers keeps its step N/S, so a clipped grid
   * has ⌈S·last/N⌉ ≤ S intervals. Default −∞ (no clipping).
   */
  lambdaMinClipped?: number;
  /** Karras ρ, default 7. */
  rho?: number;
  /** Smallest VE sigma σ/α for `karras` / `exponential`, default the schedule's at `tMin`. */
  sigmaMin?: number;
  /** Largest VE sigma σ/α for `karras` / `exponential`, default the schedule's at `tMax`. */
  sigmaMax?: number;
  /** AYS table, default `sd15`. */
  aysModel?: AysModel;
  /** AYS domain, default `timesteps`. */
  aysDomain?: AysDomain;
  /**
   * `flow_match` / `flow_sigmas` spacings: the shift and its variants (`flow_sigmas` reads `shift` as
   * diffusers' `flow_shift`, and `numTrainTimesteps`, `dtype`). `numTrainTimesteps` defaults to the schedule's.
   */
  flow?: FlowMatchSigmaOptions;
  /**
   * An explicit, strictly decreasing list of times `t_0 … t_{S−1}` inside the schedule; the terminal
   * is appended from {@link TimestepOptions.terminal}, unless the list already ends with
   * {@link CLEAN_TIME}, which is then taken as its terminal.
   */
  timesteps?: readonly number[];
}

/**
 * Align-Your-Steps 10-step tables (Sabour, Fidler, Kreis 2024). `timesteps` are the published
 * integer times of the 1000-step SD schedules (diffusers' `AysSchedules`); `sigmas` the published
 * noise levels σ/α, the last being σ_min, which the sampler replaces by 0.
 */
export const AYS_TABLES: Readonly<Record<AysModel, { timesteps: readonly number[]; sigmas: readonly number[] }>> = {
  sd15: {
    timesteps: [999, 850, 736, 645, 545, 455, 343, 233, 124, 24],
    sigmas: [
      14.6146412293, 6.4745760956, 3.8636745985, 2.694615152, 1.8841921177, 1.3943805092, 0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662,
      0.0291671582,
    ],
  },
  sdxl: {
    timesteps: [999, 845, 730, 587, 443, 310, 193, 116, 53, 13],
    sigmas: [
      14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177,
      0.0291671582,
    ],
  },
};

/** numpy's `round` for float64: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for |x| < 2^52
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The first `count` values of numpy's `arange(start, stop, step)` for a float step: start + i·δ. */
function arangeFloat(start: number, step: number, count: number): number[] {
  const delta = start + step - start;
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(i === 0 ? start : i === 1 ? start + step : start + i * delta);
  return out;
}

/**
 * numpy's `interp(x, xs, ys)` for increasing `xs` (linear between knots, clamped at the ends):
 * y = y_j + (x − x_j)·(y_{j+1} − y_j)/(x_{j+1} − x_j).
 */
function interp(x: number, xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (x <= xs[0]!) return ys[0]!;
  if (x >= xs[n - 1]!) return ys[n - 1]!;
  let j = 0;
  while (x >= xs[j + 1]!) j++;
  const slope = (ys[j + 1]! - ys[j]!) / (xs[j + 1]! - xs[j]!);
  return slope * (x - xs[j]!) + ys[j]!;
}

/**
 * Log-linear resampling of a decreasing positive sequence to `count` values (AYS paper, App. "How to
 * use": log y is interpolated linearly over an even grid on [0, 1]).
 */
export function loglinearResample(values: readonly number[], count: number): number[] {
  if (count === 1) return [values[0]!];
  const ys = values.map(Math.log).reverse();
  const xs = linspace(0, 1, values.length);
  return linspace(0, 1, count)
    .map((x) => Math.exp(interp(x, xs, ys)))
    .reverse();
}

function fail(message: string): never {
  throw new Error(message);
}

function checkSteps(steps: unknown): number {
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1) {
    fail(`timesteps: steps must be an integer ≥ 1, got ${String(steps)}; pass e.g. { steps: 10 }`);
  }
  return steps;
}

function trainSteps(schedule: NoiseSchedule, spacing: string): number {
  if (schedule.kind !== 'discrete') {
    fail(
      `timesteps: spacing "${spacing}" needs a discrete schedule (it counts training steps); for a continuous ` +
        `schedule use time_uniform, logSNR, time_quadratic, karras, exponential or ays`,
    );
  }
  return schedule.numTrainTimesteps ?? Math.round(schedule.tMax) + 1;
}

/** diffusers' `leading` / `trailing` / `linspace` without the terminal (S values, decreasing). */
function diffusersGrid(
  spacing: 'leading' | 'trailing' | 'linspace',
  family: TimestepFamily,
  n: number,
  s: number,
  offset: number,
  timeDtype: 'float32' | 'float64' = 'float32',
  last = n,
): number[] {
  switch (spacing) {
    case 'leading': {
      if (family === 'dpm') {
        // DPMSolverMultistep / UniPC: ratio = last // (S+1); (arange(S+1)·ratio).round()[::-1][:-1] + offset.
        const ratio = Math.floor(last / (s + 1));
        return Array.from({ length: s }, (_, i) => (s - i) * ratio + offset);
      }
      // DDIM / DDPM / PNDM / Euler: ratio = N // S; (arange(S)·ratio).round()[::-1] + offset.
      const ratio = Math.floor(n / s);
      return Array.from({ length: s }, (_, i) => (s - 1 - i) * ratio + offset);
    }
    case 'trailing': {
      // All families: round(arange(N, 0, −N/S)) − 1. numpy's arange gives S+1 values for some S
      // (e.g. N=1000, S=61: the extra one rounds to −1); we keep exactly the first S. Clipped (dpm):
      // arange(last, 0, −N/S) has ⌈last/(N/S)⌉ values.
      const count = last === n ? s : Math.min(s, Math.ceil(last / (n / s)));
      return arangeFloat(last, -n / s, count).map((v) => roundHalfEven(v) - 1);
    }
    case 'linspace': {
      if (family === 'dpm') {
        // linspace(0, last−1, S+1).round()[::-1][:-1]
        return linspace(0, last - 1, s + 1)
          .map(roundHalfEven)
          .reverse()
          .slice(0, s);
      }
      if (family === 'euler') {
        // Euler/Heun/LMS: linspace(0, N−1, S, dtype=float32)[::-1] — fractional, float32-rounded.
        const times = linspace(0, n - 1, s);
        return (timeDtype === 'float64' ? times : times.map(Math.fround)).reverse();
      }
      return linspace(0, n - 1, s)
        .map(roundHalfEven)
        .reverse();
    }
  }
}

/**
 * diffusers' `last_timestep` under `lambda_min_clipped` L: N minus the number of training times whose
 * λ_t < L (`searchsorted` over the increasing flipped λ table). N without clipping or outside the dpm family.
 */
function clippedLastTimestep(schedule: NoiseSchedule, n: number, family: TimestepFamily, lambdaMinClipped: number | undefined): number {
  if (lambdaMinClipped === undefined || lambdaMinClipped === -Infinity) return n;
  if (typeof lambdaMinClipped !== 'number' || Number.isNaN(lambdaMinClipped))
    fail(`timesteps: lambdaMinClipped must be a number, got ${String(lambdaMinClipped)}`);
  if (family !== 'dpm')
    fail(`timesteps: lambdaMinClipped applies to the dpm family's grids (DPM-Solver's lambda_min_clipped), not to family "${family}"`);
  let clipped = 0;
  for (let t = 0; t < n; t++) if (schedule.lambda(t) < lambdaMinClipped) clipped++;
  if (clipped >= n - 1)
    fail(`timesteps: lambdaMinClipped ${lambdaMinClipped} clips ${clipped} of ${n} training times, leaving no grid: use a smaller value`);
  return n - clipped;
}

/** DPM-Solver continuous time t_c ∈ [1/N, 1] ↔ discrete model time n = N·t_c − 1. */
function dpmSolverEnds(schedule: NoiseSchedule): { T: number; eps: number; toTime: (tc: number) => number } {
  if (schedule.kind === 'discrete') {
    const n = schedule.numTrainTimesteps ?? Math.round(schedule.tMax) + 1;
    // Clamp only the rounding error of N·t_c − 1 at the two ends.
    const toTime = (tc: number): number => Math.min(schedule.tMax, Math.max(schedule.tMin, n * tc - 1));
    return { T: 1, eps: 1 / n, toTime };
  }
  return { T: schedule.tMax, eps: schedule.tMin, toTime: (tc) => Math.min(schedule.tMax, Math.max(schedule.tMin, tc)) };
}

/** VE sigma → schedule time, clamped into [tMin, tMax] (only rounding error lies outside). */
function timeOfSigma(schedule: NoiseSchedule, sigma: number): number {
  const lo = veSigma(schedule, schedule.tMin);
  const hi = veSigma(schedule, schedule.tMax);
  if (!(sigma >= lo * (1 - 1e-9) && sigma <= hi * (1 + 1e-9))) {
    fail(
      `timesteps: noise level σ/α = ${sigma} lies outside this schedule's range [${lo}, ${hi}]; ` +
        'pass sigmaMin/sigmaMax inside it (or, for ays, use aysDomain "timesteps")',
    );
  }
  const t = timeOfVeSigma(schedule, Math.min(hi, Math.max(lo, sigma)));
  return Math.min(schedule.tMax, Math.max(schedule.tMin, t));
}

/** Karras et al. 2022 eq. 5: σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, count: number, rho = 7): number[] {
  const lo = sigmaMin ** (1 / rho);
  const hi = sigmaMax ** (1 / rho);
  return linspace(0, 1, count).map((r) => (hi + r * (lo - hi)) ** rho);
}

/** Log-uniform sigmas: σ_i = exp(linspace(log σ_max, log σ_min, n)). */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, count: number): number[] {
  return linspace(Math.log(sigmaMax), Math.log(sigmaMin), count).map(Math.exp);
}

/**
 * The first position where `grid` fails to decrease strictly, or −1; with `repeatedTerminal`, a last
 * time equal to the one before it is allowed (the identity final step, see {@link TimestepOptions}).
 */
function firstNonDecreasing(grid: readonly number[], repeatedTerminal = false): number {
  for (let i = 1; i < grid.length; i++) {
    if (grid[i]! < grid[i - 1]!) continue;
    if (repeatedTerminal && i === grid.length - 1 && i > 1 && grid[i] === grid[i - 1]) continue;
    return i;
  }
  return -1;
}

function checkDecreasing(grid: readonly number[], what: string): void {
  const i = firstNonDecreasing(grid);
  if (i >= 0) {
    fail(`timesteps: ${what} is not strictly decreasing at position ${i} (${grid[i - 1]} then ${grid[i]}); use another spacing/terminal`);
  }
}

/**
 * The most intervals any grid may have (10 000): beyond it a run is effectively endless (a
 * first-order solver would make over 10 000 model calls), so {@link buildTimesteps} refuses it up
 * front instead of starting it.
 */
export const MAX_GRID_STEPS = 10_000;

/** A grid that cannot have this many intervals; `maxSteps` is the most this spacing allows here (0: none). */
export class TimestepCountError extends RangeError {
  constructor(
    message: string,
    /** The most intervals the spacing allows for this schedule and options (0 when even one fails). */
    readonly maxSteps: number,
    /** The intervals asked for. */
    readonly steps: number,
  ) {
    super(message);
    this.name = 'TimestepCountError';
  }
}

/** Spacings whose times are integers of the training grid 0…N−1 (so at most N distinct times). */
const INTEGER_SPACINGS: ReadonlySet<string> = new Set(['leading', 'trailing', 'uniform', 'quadratic', 'linspace_floor']);

function integerValued(spacing: TimestepSpacing, family: TimestepFamily): boolean {
  return INTEGER_SPACINGS.has(spacing) || (spacing === 'linspace' && family !== 'euler');
}

/**
 * Whether the grid these options build ends at the clean point (σ = 0): its terminal resolved as
 * {@link buildTimesteps} resolves it (an explicit list ending with {@link CLEAN_TIME} counts as clean).
 * A plan that depends on the terminal (a lower-order final step) asks this before building the grid.
 */
export function gridEndsClean(schedule: NoiseSchedule, options: Omit<TimestepOptions, 'steps'>): boolean {
  const list = options.timesteps;
  if (list !== undefined) {
    if (Array.isArray(list) && list.length > 1 && list[list.length - 1] === CLEAN_TIME && hasCleanEnd(schedule)) return true;
    return resolveTerminal(schedule, options.terminal, 'zero') === 'zero';
  }
  const spacing = options.spacing ?? 'linspace';
  const dpmSolverSpacing = spacing === 'time_uniform' || spacing === 'logSNR' || spacing === 'time_quadratic';
  return resolveTerminal(schedule, options.terminal, dpmSolverSpacing ? 'sigma_min' : 'zero') === 'zero';
}

function checkInside(schedule: NoiseSchedule, t: number, what: string): void {
  if (!(Number.isFinite(t) && t >= schedule.tMin && t <= schedule.tMax)) {
    fail(`timesteps: ${what} ${t} lies outside the schedule; use times in [${schedule.tMin}, ${schedule.tMax}]`);
  }
}

/**
 * Build the grid `[t_0, …, t_{steps−1}, terminal]` (length `steps + 1`, strictly decreasing).
 *
 * Throws when `steps` is not an integer ≥ 1, the spacing or family is unknown (listing the valid
 * ones), the spacing needs a discrete schedule, or the grid would repeat a time. Too many steps
 * throw a {@link TimestepCountError} that says the most this spacing allows for the schedule (at
 * most N for a spacing of integer times over N training timesteps; at most {@link MAX_GRID_STEPS}
 * for any spacing), before anything is built.
 */
export function buildTimesteps(schedule: NoiseSchedule, options: TimestepOptions): number[] {
  const explicit = options.timesteps;
  if (explicit !== undefined) return explicitGrid(schedule, explicit, options);
  const steps = checkSteps(options.steps);
  const spacing = options.spacing ?? 'linspace';
  if (!(TIMESTEP_SPACINGS as readonly string[]).includes(spacing)) {
    fail(`timesteps: unknown spacing "${String(spacing)}"; use one of ${TIMESTEP_SPACINGS.join(', ')}, or an explicit list`);
  }
  const family = options.family ?? 'dpm';
  if (!TIMESTEP_FAMILIES.includes(family)) {
    fail(`timesteps: unknown family "${String(family)}"; use one of ${TIMESTEP_FAMILIES.join(', ')}`);
  }
  const what = `the ${String(spacing)} grid for ${steps} steps`;
  const train = schedule.kind === 'discrete' ? (schedule.numTrainTimesteps ?? Math.round(schedule.tMax) + 1) : undefined;
  const per = train !== undefined ? ` for ${train} training timesteps` : '';
  if (train !== undefined && integerValued(spacing, family) && steps > train) {
    const max = largestValidSteps(schedule, options, train);
    if (max === 0) fail(`timesteps: ${what} cannot be strictly decreasing with this spacing and terminal: use another spacing/terminal`);
    throw new TimestepCountError(
      `timesteps: ${what} would not be strictly decreasing: a spacing of integer training times allows at most ${max} steps${per}: ` +
        `pass steps ≤ ${max} (or a smaller NFE), or use a fractional spacing (karras, exponential, logSNR, time_uniform)`,
      max,
      steps,
    );
  }
  if (steps > MAX_GRID_STEPS) {
    throw new TimestepCountError(
      `timesteps: ${what} exceeds the cap of ${MAX_GRID_STEPS} intervals (a run that long is effectively endless): pass steps ≤ ${MAX_GRID_STEPS} (or a smaller NFE)`,
      MAX_GRID_STEPS,
      steps,
    );
  }
  const grid = rawTimesteps(schedule, { ...options, steps });
  const bad = firstNonDecreasing(grid, options.repeatedTerminal === true);
  if (bad >= 0) {
    const max = largestValidSteps(schedule, options, steps - 1);
    const detail = `${what} is not strictly decreasing at position ${bad} (${grid[bad - 1]} then ${grid[bad]})`;
    if (max === 0) fail(`timesteps: ${detail}; no step count works with this spacing and terminal: use another spacing/terminal`);
    throw new TimestepCountError(
      `timesteps: ${detail}: this spacing allows at most ${max} steps${per}; pass steps ≤ ${max} (or a smaller NFE), or use another spacing/terminal`,
      max,
      steps,
    );
  }
  return grid;
}

/** The largest step count ≤ `upTo` whose grid is strictly decreasing (binary search; 0 when none is). */
function largestValidSteps(schedule: NoiseSchedule, options: TimestepOptions, upTo: number): number {
  const ok = (m: number): boolean => {
    try {
      return firstNonDecreasing(rawTimesteps(schedule, { ...options, steps: m }), options.repeatedTerminal === true) < 0;
    } catch {
      return false;
    }
  };
  if (upTo < 1 || !ok(1)) return 0;
  let lo = 1;
  let hi = upTo;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The grid of a named spacing, unchecked for monotonicity. */
function rawTimesteps(schedule: NoiseSchedule, options: TimestepOptions & { steps: number }): number[] {
  const steps = options.steps;
  const spacing = options.spacing ?? 'linspace';
  const family = options.family ?? 'dpm';
  const isDpmSolverSpacing = spacing === 'time_uniform' || spacing === 'logSNR' || spacing === 'time_quadratic';
  const terminal = resolveTerminal(schedule, options.terminal, isDpmSolverSpacing ? 'sigma_min' : 'zero');
  const terminalTime = terminal === 'zero' ? CLEAN_TIME : schedule.tMin;
  // Time-like and sigma-like spacings span [t_max, t_min]: with a `sigma_min` terminal their steps+1
  // points end at t_min; with a `zero` terminal their `steps` points do and the clean point follows.
  const spanCount = terminal === 'zero' ? steps : steps + 1;
  const withTerminal = (nodes: number[]): number[] => (terminal === 'zero' ? [...nodes, CLEAN_TIME] : nodes);

  let grid: number[];
  switch (spacing) {
    case 'leading':
    case 'trailing':
    case 'linspace': {
      const n = trainSteps(schedule, spacing);
      const offset = options.stepsOffset ?? 0;
      if (!Number.isInteger(offset) || offset < 0) {
        fail(`timesteps: stepsOffset must be an integer ≥ 0, got ${offset}`);
      }
      const dtype = options.timeDtype ?? 'float32';
      if (dtype !== 'float32' && dtype !== 'float64') fail(`timesteps: timeDtype must be 'float32' or 'float64', got ${String(dtype)}`);
      grid = [
        ...diffusersGrid(spacing, family, n, steps, offset, dtype, clippedLastTimestep(schedule, n, family, options.lambdaMinClipped)),
        terminalTime,
      ];
      break;
    }
    case 'uniform': {
      // DDIM code: range(0, N, N // S); it yields more than S values when S ∤ N — we keep the first S,
      // which is diffusers' DDIM `leading` without offset.
      const n = trainSteps(schedule, spacing);
      const skip = Math.floor(n / steps);
      grid = [...Array.from({ length: steps }, (_, i) => (steps - 1 - i) * skip), terminalTime];
      break;
    }
    case 'quadratic': {
      // DDIM code: int(linspace(0, √(0.8·N), S)²) — the "top 800" quadratic grid.
      const n = trainSteps(schedule, spacing);
      const nodes = linspace(0, Math.sqrt(n * 0.8), steps).map((v) => Math.trunc(v * v));
      grid = [...nodes.reverse(), terminalTime];
      break;
    }
    case 'linspace_floor': {
      const n = trainSteps(schedule, spacing);
      grid = [
        ...linspace(0, n - 1, steps)
          .map(Math.trunc)
          .reverse(),
        terminalTime,
      ];
      break;
    }
    case 'time_uniform':
    case 'logSNR':
    case 'time_quadratic': {
      const { T, eps, toTime } = dpmSolverEnds(schedule);
      let times: number[];
      if (spacing === 'time_uniform') {
        times = linspace(T, eps, spanCount).map(toTime);
      } else if (spacing === 'time_quadratic') {
        times = linspace(Math.sqrt(T), Math.sqrt(eps), spanCount).map((v) => toTime(v * v));
      } else {
        // Uniform in λ between λ(t_max) and λ(t_min) (DPM-Solver §3.4).
        const lT = schedule.lambda(schedule.tMax);
        const l0 = schedule.lambda(schedule.tMin);
        times = linspace(lT, l0, spanCount).map((l) => timeOfSigma(schedule, Math.exp(-l)));
        times[0] = schedule.tMax;
        if (spanCount > 1) times[spanCount - 1] = schedule.tMin;
      }
      grid = withTerminal(times);
      break;
    }
    case 'karras':
    case 'exponential':
    case 'beta': {
      const sigmaMin = options.sigmaMin ?? veSigma(schedule, schedule.tMin);
      const sigmaMax = options.sigmaMax ?? veSigma(schedule, schedule.tMax);
      if (sigmaMax === Infinity) {
        fail(
          `timesteps: spacing "${spacing}" spreads σ/α between finite ends, and this schedule reaches σ/α = ∞ at t = ${schedule.tMax} ` +
            '(a flow-matching model is pure noise there): pass sigmaMax, or use the model’s own grid (flow_match, time_uniform)',
        );
      }
      if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) {
        fail(`timesteps: need 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`);
      }
      const rho = options.rho ?? 7;
      if (!(rho > 0)) fail(`timesteps: rho must be > 0 (Karras et al. use 7), got ${rho}`);
      const sigmas =
        spacing === 'karras'
          ? karrasSigmas(sigmaMin, sigmaMax, spanCount, rho)
          : spacing === 'beta'
            ? betaSigmas(sigmaMin, sigmaMax, spanCount)
            : exponentialSigmas(sigmaMin, sigmaMax, spanCount);
      const times = sigmas.map((s) => timeOfSigma(schedule, s));
      if (options.sigmaMax === undefined) times[0] = schedule.tMax;
      if (options.sigmaMin === undefined && spanCount > 1) times[times.length - 1] = schedule.tMin;
      grid = withTerminal(times);
      break;
    }
    case 'ays':
      grid = aysGrid(schedule, steps, terminal, options);
      break;
    case 'lcm':
      grid = [...lcmGrid(schedule, steps, options.lcmOriginalSteps ?? 50), terminal === 'zero' ? CLEAN_TIME : schedule.tMin];
      break;
    case 'flow_match':
    case 'flow_sigmas': {
      if (!isFlowSchedule(schedule)) fail(`timesteps: spacing "${spacing}" is a flow-matching grid: use it with a flow schedule (flowSchedule())`);
      if (terminal !== 'zero') fail(`timesteps: spacing "${spacing}" ends at the clean end σ = 0: use terminal "zero"`);
      const flow = { numTrainTimesteps: schedule.numTrainTimesteps, ...(options.flow ?? {}) };
      const sigmas =
        spacing === 'flow_match'
          ? flowMatchSigmas(steps, flow)
          : flowSigmasDpm(steps, { numTrainTimesteps: flow.numTrainTimesteps, flowShift: flow.shift ?? 1, ...(flow.dtype ? { dtype: flow.dtype } : {}) });
      sigmas.forEach((t, i) => checkInside(schedule, t, `the ${spacing} grid's σ[${i}] =`));
      grid = [...sigmas, CLEAN_TIME];
      break;
    }
  }
  return grid;
}

function resolveTerminal(schedule: NoiseSchedule, requested: TimestepTerminal | undefined, discreteDefault: TimestepTerminal): TimestepTerminal {
  if (requested !== undefined && requested !== 'zero' && requested !== 'sigma_min') {
    fail(`timesteps: unknown terminal "${String(requested)}"; use "zero" (clean data) or "sigma_min"`);
  }
  if (!hasCleanEnd(schedule)) {
    if (requested === 'zero') {
      fail('timesteps: a continuous schedule has no clean end point (σ > 0 on its whole range); use terminal "sigma_min"');
    }
    return 'sigma_min';
  }
  return requested ?? discreteDefault;
}

/**
 * diffusers' LCMScheduler times: origin = [k·1 − 1, …, k·O − 1] (k = ⌊N/O⌋, O the original steps),
 * reversed, at indices ⌊i·O/S⌋ for i = 0…S−1 (numpy's `linspace(0, O, S, endpoint=False)`).
 */
function lcmGrid(schedule: NoiseSchedule, steps: number, original: number): number[] {
  const n = trainSteps(schedule, 'lcm');
  if (!Number.isInteger(original) || original < 1 || original > n) {
    fail(`timesteps: lcmOriginalSteps must be an integer in [1, ${n}], got ${String(original)}; LCM models use 50`);
  }
  if (steps > original) {
    throw new TimestepCountError(
      `timesteps: the lcm grid picks from ${original} distillation times, so it allows at most ${original} steps: pass steps ≤ ${original}`,
      original,
      steps,
    );
  }
  const k = Math.floor(n / original);
  const reversed = Array.from({ length: original }, (_, j) => (original - j) * k - 1);
  return Array.from({ length: steps }, (_, i) => reversed[Math.floor((i * original) / steps)]!);
}

/** Align Your Steps: the published tables, log-linearly resampled for other step counts. */
function aysGrid(schedule: NoiseSchedule, steps: number, terminal: TimestepTerminal, options: TimestepOptions): number[] {
  const model = options.aysModel ?? 'sd15';
  const table = AYS_TABLES[model];
  if (table === undefined) fail(`timesteps: unknown aysModel "${String(model)}"; use sd15 or sdxl`);
  const domain = options.aysDomain ?? 'timesteps';
  const terminalTime = terminal === 'zero' ? CLEAN_TIME : schedule.tMin;
  if (domain === 'sigmas') {
    // The paper's recipe: resample the 11 noise levels to steps+1, the last (σ_min) becomes the terminal.
    const levels = loglinearResample(table.sigmas, steps + 1).slice(0, steps);
    return [...levels.map((s) => timeOfSigma(schedule, s)), terminalTime];
  }
  if (domain !== 'timesteps') fail(`timesteps: unknown aysDomain "${String(domain)}"; use timesteps or sigmas`);
  // Published times are on a 0…999 scale; other schedules map them by the fraction t/999 of [t_min, t_max].
  const published = steps === table.timesteps.length ? [...table.timesteps] : loglinearResample(table.timesteps, steps);
  const times = published.map((t) => schedule.tMin + (t / 999) * (schedule.tMax - schedule.tMin));
  return [...times, terminalTime];
}

function explicitGrid(schedule: NoiseSchedule, list: readonly number[], options: TimestepOptions): number[] {
  if (!Array.isArray(list) || list.length === 0) fail('timesteps: the explicit list is empty; give at least one time');
  const grid = [...list];
  const hasTerminal = grid.length > 1 && grid[grid.length - 1] === CLEAN_TIME && hasCleanEnd(schedule);
  const nodes = hasTerminal ? grid.slice(0, -1) : grid;
  nodes.forEach((t, i) => checkInside(schedule, t, `explicit time [${i}] =`));
  if (options.steps !== undefined && checkSteps(options.steps) !== nodes.length) {
    fail(`timesteps: steps is ${options.steps} but the explicit list has ${nodes.length} times; drop steps or fix the list`);
  }
  if (!hasTerminal) {
    const terminal = resolveTerminal(schedule, options.terminal, 'zero');
    grid.push(terminal === 'zero' ? CLEAN_TIME : schedule.tMin);
  }
  checkDecreasing(grid, 'the explicit list with its terminal');
  return grid;
}
