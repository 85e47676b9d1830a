/**
 * The one interface every solver implements.
 *
 * A solver integrates from `timesteps[0]` (noisiest) to `timesteps[timesteps.length - 1]` (the
 * terminal: `CLEAN_TIME` = −1 for discrete schedules, or a small time), i.e. over
 * `timesteps.length − 1` intervals, calling the model only through `ctx.evaluate`. Like
 * k-diffusion's `sampling.py`, each solver is one short function checkable against its paper.
 * @packageDocumentation
 */
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import type { Prediction } from '../prediction.js';
import type { NumArray } from '../tensor.js';
import type { PfdiffQuantity } from '../pfdiff/first-order-step.js';
import type { TimestepFamily, TimestepOptions } from '../timesteps.js';

/** Progress of a sampling run, reported after each solver step. */
export interface StepInfo {
  /** Index of the step just taken, 0-based. */
  step: number;
  /** Number of steps (intervals) of the run. */
  steps: number;
  /** Time reached by this step. */
  t: number;
  /** State after the step. */
  x: NumArray;
  /** The latest x̂0 prediction, when the solver has one. */
  x0?: NumArray;
}

/** What a solver may use: the schedule, the model (counted), noise and a progress hook. */
export interface SolverContext {
  readonly schedule: NoiseSchedule;
  /**
   * One model call at (x, t): the prediction as ε̂ and x̂0 (after clip_sample / dynamic
   * thresholding, when enabled, with ε̂ recomputed from the processed x̂0). Counted as one NFE.
   */
  evaluate(x: NumArray, t: number): Promise<Prediction>;
  /** Fresh seeded standard-normal noise shaped like the state (for stochastic solvers). */
  noise(): NumArray;
  /** Report a finished step; throws if the run was aborted. */
  step(info: StepInfo): Promise<void>;
}

/** A solver bound to its options. Returns the state at the terminal time. */
export type Solver = (x: NumArray, timesteps: readonly number[], ctx: SolverContext) => Promise<NumArray>;

/** Which family of diffusers timestep formulas a solver uses by default (see `timesteps.ts`). */
export type GridFamily = TimestepFamily;

/** What a plan is asked for: a call budget or a grid size, the schedule, grid options and solver options. */
export interface PlanRequest<O extends object = Record<string, unknown>> {
  /** The noise schedule the grid is built on. */
  readonly schedule: NoiseSchedule;
  /** Model-call budget N (give `nfe` or `steps`, not both; neither: 20 calls). */
  readonly nfe?: number;
  /** Grid intervals (with PFDiff: base-grid intervals). */
  readonly steps?: number;
  /** Grid options (spacing, family, terminal, …, or an explicit `timesteps` list); default spacing `linspace` in the solver's family. */
  readonly timesteps?: Omit<TimestepOptions, 'steps'>;
  /** The solver's options, checked by its own rules. */
  readonly options?: Partial<O>;
}

/** The PFDiff variant a plan runs (see `pfdiff/`). */
export type PfdiffVariant = 'first-order' | 'past-only' | 'multistep-experimental' | 'adams-experimental';

/** What a plan runs with PFDiff. */
export interface PfdiffPlanInfo {
  readonly k: number;
  readonly h: number;
  readonly variant: PfdiffVariant;
  /** The stored quantity (first-order variant only). */
  readonly quantity?: PfdiffQuantity;
}

/**
 * A run laid out before it starts (as diffusers' `set_timesteps` owns the grid): the grid, the exact
 * number of model calls, the resolved options (including a step plan such as singlestep `orders`)
 * and the solver bound to them.
 */
export interface SolverPlan<O extends object = Record<string, unknown>> {
  /** Registry name of the solver. */
  readonly solver: string;
  /** The grid, noisiest first, terminal last. */
  readonly timesteps: number[];
  /** Intervals of the grid (`timesteps.length − 1`). */
  readonly steps: number;
  /** Model calls the run will make (a guided call counts once). */
  readonly calls: number;
  /** The resolved options the run uses. */
  readonly options: O;
  /** Convergence order of the deterministic solver with these options. */
  readonly order: number;
  /** True if the run injects fresh noise (e.g. DDIM with η > 0). */
  readonly stochastic: boolean;
  /** PFDiff settings, when the plan runs PFDiff. */
  readonly pfdiff?: PfdiffPlanInfo;
  /** The solver bound to `options`; run it on `timesteps`. */
  readonly run: Solver;
}

/** Static description of a solver: its name, order, cost, plan and how to build it. */
export interface SolverSpec<O extends object = Record<string, unknown>> {
  /** Registry name, e.g. `ddim`, `dpmpp_2m`. */
  readonly name: string;
  /** Other accepted names (e.g. diffusers class names). */
  readonly aliases?: readonly string[];
  /** One line for `--help`. */
  readonly description: string;
  /** Convergence order of the deterministic solver with its default options (measured in the test suite). */
  readonly order: number;
  /** Default grid family. */
  readonly gridFamily: GridFamily;
  /** True if the solver with these options injects fresh noise (DDIM only when η > 0). */
  stochastic(options?: Partial<O>): boolean;
  /** The options merged over the defaults; unknown or out-of-range options throw an error naming the fix. */
  resolveOptions(options?: Partial<O>): O;
  /** Model calls used for `steps` intervals. */
  callsForSteps(steps: number, options?: Partial<O>): number;
  /** The most intervals whose call count stays within `nfe` (≥ 1), in closed form. */
  stepsForCalls(nfe: number, options?: Partial<O>): number;
  /** Lay out a run: grid, calls, resolved options and the bound solver (all checks happen here, before any call). */
  plan(request: PlanRequest<O>): SolverPlan<O>;
  /** Bind options. Unknown or out-of-range options throw an error naming the fix. */
  create(options?: Partial<O>): Solver;
}

/**
 * A solver spec of any option type: what the registry holds and returns (each spec checks its own
 * options at run time through its option schema, so the static option type is erased here).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySolverSpec = SolverSpec<any>;
