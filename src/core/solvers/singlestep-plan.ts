/**
 * Order plans and the step loop shared by the singlestep DPM-Solvers (noise prediction,
 * `dpm_solver_k`) and DPM-Solver++ (data prediction, `dpmpp_2s` / `dpmpp_3s`).
 *
 * A singlestep solver of order k spends k model calls per interval (one at the start, k − 1 at
 * intermediate times placed at λ_s + r_i·h). A plan is the list of per-interval orders.
 *
 * The interval that ends at the clean point (σ = 0, λ = +∞) must be first order: its intermediate
 * log-SNRs λ_s + r·h would all be +∞, and the first-order update's limit there is exact in form,
 * x_t = α_t·x̂0(x_s) (diffusers likewise refuses `final_sigmas_type="zero"` without
 * `lower_order_final`). Hence `lowerOrderFinal` defaults to true, and a plan whose last order is
 * above 1 throws when the grid ends at σ = 0.
 * @packageDocumentation
 */
import { lambdaStep, type LambdaStep } from './exponential-integrator.js';
import { booleanOption, checkOptionKeys, numberOption } from './option-checks.js';
import { checkTimesteps } from './validation.js';
import type { Prediction } from '../prediction.js';
import type { NumArray } from '../tensor.js';
import type { SolverContext, SolverSpec } from './types.js';

/** Options common to every singlestep DPM-Solver. */
export interface SinglestepOptions {
  /**
   * Per-interval orders (each 1…3, at most the solver's order), one per interval, e.g. from
   * {@link stepPlanForCalls}. Overrides the uniform plan and `lowerOrderFinal`.
   */
  orders?: readonly number[];
  /** Take the last interval at order 1 (required when the grid ends at σ = 0). Default true. */
  lowerOrderFinal?: boolean;
  /** First intermediate point, as a fraction of h: default 1/2 for order 2, 1/3 for order 3. */
  r1?: number;
  /** Second intermediate point of order-3 intervals, as a fraction of h: default 2/3. */
  r2?: number;
}

/** Descriptions of {@link SinglestepOptions}, for the unknown-key error. */
export const SINGLESTEP_OPTION_KEYS = {
  orders: 'per-interval orders, e.g. stepPlanForCalls(nfe, order)',
  lowerOrderFinal: 'last interval at order 1, default true',
  r1: 'first intermediate point as a fraction of h, default 1/2 (order 2) or 1/3 (order 3)',
  r2: 'second intermediate point of order-3 intervals, default 2/3',
} as const;

/**
 * DPM-Solver's "fast" plan (Lu et al. 2022, §3.4 and App. D.1): the per-interval orders that use
 * exactly `nfe` model calls with as many order-`order` intervals as possible.
 *   order 3: K = ⌊nfe/3⌋ + 1 intervals; nfe ≡ 0 (mod 3): [3,…,3,2,1]; ≡ 1: [3,…,3,1]; ≡ 2: [3,…,3,2]
 *   order 2: nfe even: [2,…,2]; odd: [2,…,2,1]
 *   order 1: [1,…,1]
 * With `endsAtCleanPoint` (default true) a plan whose last order p exceeds 1 becomes
 * […, p − 1, 1] (same call count), since the interval into σ = 0 must be first order.
 * E.g. nfe = 10, order 3 → [3, 3, 3, 1].
 */
export function stepPlanForCalls(nfe: number, order: number, endsAtCleanPoint = true): number[] {
  if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`stepPlanForCalls: nfe must be an integer ≥ 1, got ${nfe}`);
  if (order !== 1 && order !== 2 && order !== 3) throw new RangeError(`stepPlanForCalls: order must be 1, 2 or 3, got ${order}`);
  let plan: number[];
  if (order === 3) {
    const k = Math.floor(nfe / 3) + 1;
    const rem = nfe % 3;
    if (rem === 0) plan = [...Array<number>(k - 2).fill(3), 2, 1];
    else if (rem === 1) plan = [...Array<number>(k - 1).fill(3), 1];
    else plan = [...Array<number>(k - 1).fill(3), 2];
  } else if (order === 2) {
    plan = nfe % 2 === 0 ? Array<number>(nfe / 2).fill(2) : [...Array<number>((nfe - 1) / 2).fill(2), 1];
  } else {
    plan = Array<number>(nfe).fill(1);
  }
  const last = plan[plan.length - 1]!;
  if (endsAtCleanPoint && last > 1) plan.splice(plan.length - 1, 1, last - 1, 1);
  return plan;
}

/** The per-interval orders a singlestep solver of order `order` uses for `steps` intervals. */
export function singlestepOrders(solver: string, order: number, steps: number, options: Partial<SinglestepOptions> = {}): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`${solver}: steps must be an integer ≥ 1, got ${steps}`);
  if (options.orders !== undefined) {
    const o = options.orders;
    if (!Array.isArray(o) || o.some((v) => !Number.isInteger(v) || v < 1 || v > order)) {
      throw new RangeError(`${solver}: option orders must be a list of integers from 1 to ${order}, got ${JSON.stringify(o)}`);
    }
    if (o.length !== steps) {
      throw new RangeError(
        `${solver}: option orders has ${o.length} entries but the grid has ${steps} intervals; build the grid with orders.length intervals (stepsForCalls does this)`,
      );
    }
    return [...o];
  }
  const plan = Array<number>(steps).fill(order);
  if (booleanOption(solver, 'lowerOrderFinal', options.lowerOrderFinal, true)) plan[steps - 1] = 1;
  return plan;
}

/** Model calls of a singlestep solver for `steps` intervals (the sum of its plan). */
export function singlestepCalls(solver: string, order: number, steps: number, options: Partial<SinglestepOptions> = {}): number {
  return singlestepOrders(solver, order, steps, options).reduce((a, b) => a + b, 0);
}

/** The most intervals whose singlestep call count stays within `nfe`. */
export function singlestepStepsForCalls(solver: string, order: number, nfe: number, options: Partial<SinglestepOptions> = {}): number {
  if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`${solver}: nfe must be an integer ≥ 1, got ${nfe}`);
  if (options.orders !== undefined) {
    const calls = singlestepCalls(solver, order, options.orders.length, options);
    if (calls > nfe) {
      throw new RangeError(`${solver}: the orders plan needs ${calls} calls but the budget is ${nfe}; use stepPlanForCalls(${nfe}, ${order})`);
    }
    return options.orders.length;
  }
  if (booleanOption(solver, 'lowerOrderFinal', options.lowerOrderFinal, true)) return 1 + Math.floor((nfe - 1) / order);
  const k = Math.floor(nfe / order);
  if (k < 1) throw new RangeError(`${solver}: ${nfe} calls cannot pay one order-${order} interval; raise nfe or set lowerOrderFinal: true`);
  return k;
}

/** Resolved intermediate fractions (r1 for order 2; r1 < r2 for order 3). */
export interface IntermediateFractions {
  r1Order2: number;
  r1Order3: number;
  r2Order3: number;
}

/** Validate r1/r2 and fill the paper's defaults (Lu et al. 2022, Alg. 1 and 2); r1 < r2 is checked when `maxOrder` is 3. */
export function intermediateFractions(solver: string, options: Partial<SinglestepOptions>, maxOrder = 3): IntermediateFractions {
  const r1 = options.r1 === undefined ? undefined : numberOption(solver, 'r1', options.r1, 0.5, 0, 1, { lo: true });
  const r2 = numberOption(solver, 'r2', options.r2, 2 / 3, 0, 1, { lo: true });
  const r1Order3 = r1 ?? 1 / 3;
  if (maxOrder >= 3 && !(r1Order3 < r2)) throw new RangeError(`${solver}: order-3 intervals need r1 < r2, got r1 = ${r1Order3}, r2 = ${r2}`);
  return { r1Order2: r1 ?? 0.5, r1Order3, r2Order3: r2 };
}

/**
 * One singlestep update of the given order from (x, s) to t, given the model output at the start;
 * it may call `ctx.evaluate` order − 1 more times.
 */
export type SinglestepUpdate = (
  order: number,
  x: NumArray,
  g: LambdaStep,
  start: Prediction,
  s: number,
  ctx: SolverContext,
  r: IntermediateFractions,
) => Promise<NumArray>;

/** The time whose log-SNR is λ_s + r·h (an intermediate point of a singlestep interval). */
export function intermediateTime(ctx: SolverContext, g: LambdaStep, r: number): number {
  return ctx.schedule.timeOfLambda(g.lambdaS + r * g.h);
}

/** Run a singlestep solver over `timesteps` with the per-interval `orders`. */
export async function runSinglestep(
  solver: string,
  x: NumArray,
  timesteps: readonly number[],
  ctx: SolverContext,
  orders: readonly number[],
  r: IntermediateFractions,
  update: SinglestepUpdate,
): Promise<NumArray> {
  checkTimesteps(solver, ctx.schedule, timesteps);
  const steps = timesteps.length - 1;
  for (let i = 0; i < steps; i++) {
    const s = timesteps[i]!;
    const t = timesteps[i + 1]!;
    const g = lambdaStep(ctx.schedule, s, t);
    const order = orders[i]!;
    if (g.clean && order > 1) {
      throw new RangeError(
        `${solver}: interval ${i} ends at the clean point (σ = 0), where only a first-order step is defined, but its order is ${order}; set lowerOrderFinal: true or end the orders plan with 1 (stepPlanForCalls does)`,
      );
    }
    const start = await ctx.evaluate(x, s);
    x = await update(order, x, g, start, s, ctx, r);
    await ctx.step({ step: i, steps, t, x, x0: start.x0 });
  }
  return x;
}

/**
 * Build the {@link SolverSpec} of a singlestep solver of fixed order from its update.
 * Call counts are exact: `callsForSteps` is the sum of the plan.
 */
export function singlestepSpec(def: {
  name: string;
  aliases?: readonly string[];
  description: string;
  order: number;
  update: SinglestepUpdate;
}): SolverSpec<SinglestepOptions> {
  const { name, order, update } = def;
  const check = (options: Partial<SinglestepOptions> | undefined): Partial<SinglestepOptions> => {
    checkOptionKeys(name, options, SINGLESTEP_OPTION_KEYS);
    return options ?? {};
  };
  return {
    name,
    ...(def.aliases ? { aliases: def.aliases } : {}),
    description: def.description,
    order,
    stochastic: false,
    gridFamily: 'dpm',
    callsForSteps: (steps, options) => singlestepCalls(name, order, steps, check(options)),
    stepsForCalls: (nfe, options) => singlestepStepsForCalls(name, order, nfe, check(options)),
    create(options) {
      const opts = check(options);
      const r = intermediateFractions(name, opts, order);
      if (opts.orders !== undefined) singlestepOrders(name, order, opts.orders.length, opts);
      else booleanOption(name, 'lowerOrderFinal', opts.lowerOrderFinal, true);
      return (x, timesteps, ctx) => {
        checkTimesteps(name, ctx.schedule, timesteps);
        const orders = singlestepOrders(name, order, timesteps.length - 1, opts);
        return runSinglestep(name, x, timesteps, ctx, orders, r, update);
      };
    },
  };
}
