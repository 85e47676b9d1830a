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
import type { TimestepFamily } from '../timesteps.js';

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

/** Static description of a solver: its name, order, cost and how to build it. */
export interface SolverSpec<O extends object = Record<string, unknown>> {
  /** Registry name, e.g. `ddim`, `dpmpp_2m`. */
  readonly name: string;
  /** Other accepted names (e.g. diffusers class names). */
  readonly aliases?: readonly string[];
  /** One line for `--help`. */
  readonly description: string;
  /** Convergence order of the deterministic solver (measured in the test suite). */
  readonly order: number;
  /** True if it injects fresh noise. */
  readonly stochastic: boolean;
  /** Default grid family. */
  readonly gridFamily: GridFamily;
  /** Model calls used for `steps` intervals. */
  callsForSteps(steps: number, options?: Partial<O>): number;
  /** The most intervals whose call count stays within `nfe` (≥ 1). */
  stepsForCalls(nfe: number, options?: Partial<O>): number;
  /** Bind options. Unknown or out-of-range options throw an error naming the fix. */
  create(options?: Partial<O>): Solver;
}
