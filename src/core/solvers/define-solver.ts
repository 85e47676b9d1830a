/**
 * `defineSolver`: a solver file gives its update and its equations; this supplies the rest — the
 * loop over the grid intervals, progress reporting through `ctx.step`, option resolution through
 * the solver's rules, the cost (one call per interval unless the solver says otherwise) with its
 * closed-form inverse, and the plan: the grid for an NFE budget or a step count, built once with
 * the terminal known up front (a plan that depends on it, such as a lower-order final step, asks
 * {@link gridEndsClean} first).
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import type { NumArray } from '../tensor.js';
import { buildTimesteps, gridEndsClean, TimestepCountError, type TimestepOptions } from '../timesteps.js';
import { resolveOptions, type OptionSchema } from './options.js';
import type { GridFamily, PlanRequest, Solver, SolverContext, SolverPlan, SolverSpec } from './types.js';

/** The NFE budget when a request gives neither `nfe` nor `steps`. */
export const DEFAULT_NFE = 20;

/** What one step of the loop is given: interval `i` of `steps`, from time `s` (noisier) to `t`. */
export interface StepArgs {
  readonly i: number;
  readonly steps: number;
  readonly s: number;
  readonly t: number;
  /** The state at `s`. */
  readonly x: NumArray;
  readonly ctx: SolverContext;
}

/** The state at `t` and the latest x̂0 (reported to `onStep`). */
export interface StepResult {
  readonly x: NumArray;
  readonly x0?: NumArray;
  /** The time the state lies at, when the step landed off the grid (DDIM's diffusers stepping t → t − ⌊T/N⌋). */
  readonly t?: number;
}

/** One interval's update. A multistep solver keeps its history in the closure that made it. */
export type StepFunction = (args: StepArgs) => Promise<StepResult>;

/** The run a step function is made for. */
export interface RunInfo {
  readonly steps: number;
  readonly timesteps: readonly number[];
  readonly schedule: NoiseSchedule;
}

/** Call count of a solver that does not spend exactly one call per interval, with its inverse. */
export interface SolverCost<O> {
  /** Model calls for `steps` intervals (non-decreasing in `steps`). */
  callsForSteps(steps: number, options: O): number;
  /** The most intervals whose call count stays within `nfe`, in closed form (0 when one interval costs more). */
  stepsForCalls(nfe: number, options: O): number;
}

/**
 * The cost of a two-stage step (two model calls per interval) whose last interval is taken with one
 * call when `lowerOrderFinal` is set (a step into σ = 0 has no second stage):
 * N = 2M − [lowerOrderFinal], so M = ⌊(N + [lowerOrderFinal])/2⌋.
 */
export const TWO_STAGE_COST: SolverCost<{ lowerOrderFinal: boolean }> = {
  callsForSteps: (steps, o) => 2 * steps - (o.lowerOrderFinal ? 1 : 0),
  stepsForCalls: (nfe, o) => Math.floor((nfe + (o.lowerOrderFinal ? 1 : 0)) / 2),
};

/**
 * A `checkGrid` for two-stage solvers: with `lowerOrderFinal: false` the last interval needs its
 * second stage, which a step into σ = 0 cannot have (`why` says what is missing there).
 */
export function requireFinalSecondStage(name: string, why: string) {
  return (timesteps: readonly number[], schedule: NoiseSchedule, o: { lowerOrderFinal: boolean }): void => {
    if (!o.lowerOrderFinal && schedule.sigma(timesteps[timesteps.length - 1]!) === 0) {
      throw new RangeError(`${name} with lowerOrderFinal: false ${why}: set lowerOrderFinal: true or end the grid at a time with σ > 0`);
    }
  };
}

/** What a solver file declares (see {@link defineSolver}). */
export interface SolverDefinition<O extends object> {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly description: string;
  /** Convergence order of the deterministic solver (a number, or a function of the options, e.g. LMS's `order`). */
  readonly order: number | ((options: O) => number);
  /** Whether the run injects fresh noise (default false; DDIM: `o => o.eta > 0`). */
  readonly stochastic?: boolean | ((options: O) => boolean);
  readonly gridFamily: GridFamily;
  /** Rules and defaults of the options (left out: the solver takes none). */
  readonly options?: OptionSchema<O>;
  /** Checks across options after each value passed its rule (e.g. r1 < r2). */
  readonly checkOptions?: (options: O) => void;
  /** Default: one call per interval. */
  readonly cost?: SolverCost<O>;
  /**
   * How an NFE budget becomes a grid size and a step plan (default: the most intervals within the
   * budget, {@link SolverCost.stepsForCalls}). `endsClean`: the grid ends at σ = 0.
   */
  readonly spend?: (nfe: number, options: O, endsClean: boolean) => { steps: number; options: O };
  /**
   * The update is the identity on a zero-length interval, so a grid whose last time repeats (the
   * terminal equals the last grid time, `repeatedTerminal`) is accepted. Default false.
   */
  readonly identityFinalStep?: boolean;
  /**
   * The update is finite at α = 0 (σ = 1, the pure-noise start of flow grids): it works in (α, σ) or
   * in the flow's own (x, σ) coordinates, not in σ/α or log-SNR. Default false: such a grid is refused.
   */
  readonly pureNoiseStart?: boolean;
  /** Checks of a grid against the options before any call (e.g. a corrected last step cannot end at σ = 0). */
  readonly checkGrid?: (timesteps: readonly number[], schedule: NoiseSchedule, options: O) => void;
  /** The update: given the options and the run, the function that takes one interval. */
  readonly step: (options: O, run: RunInfo) => StepFunction;
}

/**
 * Check that a grid runs from noisy to clean: at least two times, each a valid time of the
 * schedule, with log-SNR strictly increasing (the terminal may be the clean end point, λ = +∞).
 */
export function checkTimesteps(solver: string, schedule: NoiseSchedule, timesteps: readonly number[], repeatedTerminal = false): void {
  if (!Array.isArray(timesteps) || timesteps.length < 2) {
    throw new RangeError(`solver "${solver}" needs a grid of at least 2 times (start and terminal), got ${timesteps?.length ?? 0}`);
  }
  let prev = -Infinity;
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i]!;
    if (typeof t !== 'number' || Number.isNaN(t)) throw new TypeError(`timesteps[${i}] is not a number (${String(t)})`);
    const l = schedule.lambda(t);
    if (repeatedTerminal && i === timesteps.length - 1 && i > 1 && t === timesteps[i - 1]) continue;
    // The pure-noise end of a flow schedule (σ = 1, α = 0) has λ = −∞: allowed as the first time only.
    if (i === 0 && l === -Infinity) continue;
    if (!(l > prev)) {
      if (i === timesteps.length - 1 && t === timesteps[i - 1]) {
        throw new RangeError(
          `solver "${solver}" cannot take the zero-length last interval of this grid (timesteps[${i - 1}] = timesteps[${i}] = ${t}): ` +
            'only ddim and plms run that identity step; end the grid before the terminal or use another terminal',
        );
      }
      throw new RangeError(
        `timesteps must go from noisy to clean with strictly decreasing noise level, but timesteps[${i - 1}] = ` +
          `${timesteps[i - 1]} and timesteps[${i}] = ${t} do not: pass the grid noisiest first, without repeats`,
      );
    }
    prev = l;
  }
}

/** Refuse a grid that starts at α = 0 (λ = −∞) for a solver whose update is infinite there. */
export function checkPureNoiseStart(solver: string, schedule: NoiseSchedule, timesteps: readonly number[], allowed: boolean): void {
  if (allowed || schedule.alpha(timesteps[0]!) !== 0) return;
  throw new RangeError(
    `solver "${solver}" works in σ/α or log-SNR coordinates, which are infinite at the grid's first time ${timesteps[0]} (α = 0: ` +
      "the pure-noise end σ = 1 of a flow schedule): use ddim, euler or heun there (they step in (α, σ) or in the flow's (x, σ)), " +
      'or start the grid below σ = 1 (e.g. the use_flow_sigmas grid of DPMSolverMultistepScheduler / UniPCMultistepScheduler)',
  );
}

/** Throw unless `v` is an integer ≥ 1, naming what it is and the fix. */
export function checkCount(v: unknown, what: string, fix: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be an integer ≥ 1, got ${String(v)}: ${fix}`);
  return v;
}

/** The budget of a request: exactly one of `nfe` / `steps` (neither: {@link DEFAULT_NFE} calls). */
export function requestBudget(request: { nfe?: number; steps?: number }): { nfe: number; steps?: undefined } | { nfe?: undefined; steps: number } {
  if (request.nfe !== undefined && request.steps !== undefined) {
    throw new RangeError('give either nfe (a call budget) or steps (grid intervals), not both');
  }
  if (request.steps !== undefined) return { steps: checkCount(request.steps, 'steps', 'a grid needs at least one interval') };
  return { nfe: checkCount(request.nfe ?? DEFAULT_NFE, 'nfe', 'the budget is at least one model call') };
}

/** The grid options of a request over the solver's defaults (spacing `linspace` in its own family). */
export function gridOptions(family: GridFamily, timesteps: Omit<TimestepOptions, 'steps'> | undefined): Omit<TimestepOptions, 'steps'> {
  return { spacing: 'linspace', family, ...(timesteps ?? {}) };
}

/**
 * Build the grid of `steps` intervals; a grid too long for its spacing is reported in model calls
 * when the steps came from an NFE budget (`maxNfe(maxSteps)`: the largest budget that fits).
 */
export function buildPlannedGrid(
  solver: string,
  schedule: NoiseSchedule,
  grid: Omit<TimestepOptions, 'steps'>,
  steps: number,
  nfe: number | undefined,
  maxNfe: (maxSteps: number) => number,
): number[] {
  try {
    return buildTimesteps(schedule, { ...grid, steps });
  } catch (e) {
    if (!(e instanceof TimestepCountError) || nfe === undefined) throw e;
    const most = e.maxSteps > 0 ? maxNfe(e.maxSteps) : 0;
    throw new TimestepCountError(
      `${solver} with nfe = ${nfe} needs a grid of ${steps} intervals, and ${e.message.replace(/^timesteps: /, '')}` +
        (most > 0 ? `; the largest budget on this grid is nfe = ${most}` : ''),
      e.maxSteps,
      steps,
    );
  }
}

/**
 * The largest budget `nfe` whose grid (`stepsFor(nfe)` intervals, non-decreasing in `nfe`) fits in
 * `maxSteps`; 0 when none does. Only error messages ask this, so a bisection is enough: no solver
 * here spends more than 3 calls per interval, so 4·maxSteps + 4 bounds the answer.
 */
export function largestBudget(maxSteps: number, stepsFor: (nfe: number) => number): number {
  let lo = 0;
  let hi = 4 * maxSteps + 4;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    let fits: boolean;
    try {
      fits = stepsFor(mid) <= maxSteps;
    } catch {
      fits = false;
    }
    if (fits) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Build a {@link SolverSpec} from a {@link SolverDefinition}. */
export function defineSolver<O extends object>(def: SolverDefinition<O>): SolverSpec<O> {
  const { name } = def;
  const resolve = (options: Partial<O> | undefined): O => {
    const o = resolveOptions(name, options, def.options ?? ({ defaults: {}, rules: {} } as unknown as OptionSchema<O>));
    def.checkOptions?.(o);
    return o;
  };
  const orderOf = (o: O): number => (typeof def.order === 'function' ? def.order(o) : def.order);
  const stochasticOf = (o: O): boolean => (typeof def.stochastic === 'function' ? def.stochastic(o) : (def.stochastic ?? false));
  const calls = (steps: number, o: O): number => {
    checkCount(steps, `${name}: steps`, 'a grid needs at least one interval');
    return def.cost ? def.cost.callsForSteps(steps, o) : steps;
  };
  const stepsWithin = (nfe: number, o: O): number => {
    if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`the NFE budget must be an integer ≥ 1, got ${nfe}: pass nfe ≥ 1`);
    const m = def.cost ? def.cost.stepsForCalls(nfe, o) : nfe;
    if (m < 1) {
      throw new RangeError(
        `solver "${name}" needs ${calls(1, o)} model calls for one step, more than the budget of ${nfe}: raise the NFE or pick another solver`,
      );
    }
    return m;
  };
  const spend = (nfe: number, o: O, endsClean: boolean): { steps: number; options: O } =>
    def.spend ? def.spend(nfe, o, endsClean) : { steps: stepsWithin(nfe, o), options: o };
  const bind =
    (o: O): Solver =>
    async (x, timesteps, ctx) => {
      checkTimesteps(name, ctx.schedule, timesteps, def.identityFinalStep === true);
      checkPureNoiseStart(name, ctx.schedule, timesteps, def.pureNoiseStart === true);
      def.checkGrid?.(timesteps, ctx.schedule, o);
      const steps = timesteps.length - 1;
      const step = def.step(o, { steps, timesteps, schedule: ctx.schedule });
      for (let i = 0; i < steps; i++) {
        const t = timesteps[i + 1]!;
        const r = await step({ i, steps, s: timesteps[i]!, t, x, ctx });
        x = r.x;
        await ctx.step({ step: i, steps, t: r.t ?? t, x, ...(r.x0 ? { x0: r.x0 } : {}) });
      }
      return x;
    };
  const defaults = resolve(undefined);
  return {
    name,
    ...(def.aliases ? { aliases: def.aliases } : {}),
    description: def.description,
    order: orderOf(defaults),
    gridFamily: def.gridFamily,
    stochastic: (options) => stochasticOf(resolve(options)),
    resolveOptions: resolve,
    callsForSteps: (steps, options) => calls(steps, resolve(options)),
    stepsForCalls: (nfe, options) => stepsWithin(nfe, resolve(options)),
    plan(request: PlanRequest<O>): SolverPlan<O> {
      const { schedule } = request;
      const budget = requestBudget(request);
      let o = resolve(request.options);
      const grid = gridOptions(def.gridFamily, request.timesteps);
      let timesteps: number[];
      if (grid.timesteps !== undefined) timesteps = buildTimesteps(schedule, grid);
      else if (budget.steps !== undefined) timesteps = buildTimesteps(schedule, { ...grid, steps: budget.steps });
      else {
        const endsClean = gridEndsClean(schedule, grid);
        const asked = o;
        const spent = spend(budget.nfe, asked, endsClean);
        o = spent.options;
        timesteps = buildPlannedGrid(name, schedule, grid, spent.steps, budget.nfe, (max) => largestBudget(max, (n) => spend(n, asked, endsClean).steps));
      }
      checkTimesteps(name, schedule, timesteps, def.identityFinalStep === true);
      checkPureNoiseStart(name, schedule, timesteps, def.pureNoiseStart === true);
      def.checkGrid?.(timesteps, schedule, o);
      const steps = timesteps.length - 1;
      return { solver: name, timesteps, steps, calls: calls(steps, o), options: o, order: orderOf(o), stochastic: stochasticOf(o), run: bind(o) };
    },
    create: (options) => bind(resolve(options)),
  };
}
