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
 *
 * Two plans (`plan`):
 * - `'dpm-solver'` (default): DPM-Solver's own — each interval of the grid is one singlestep of
 *   order k with k − 1 intermediate points at λ_s + r_i·h off the grid (k calls per interval).
 * - `'diffusers'`: diffusers' DPMSolverSinglestepScheduler — one call per grid interval, with the
 *   order list [1, 2, (3), 1, 2, (3), …] ({@link diffusersSinglestepOrders}): an order-1 interval
 *   saves its start state, and the order-k interval that follows k − 1 of them steps from that
 *   saved state across all k intervals, using the k model outputs at their grid points as the
 *   intermediate points (r = the grid's own log-SNR fractions). The intermediate states are
 *   reported as steps, as diffusers' `step()` returns them. Measured on the SD 1.5 parity data the
 *   two plans' final samples differ by 4·10⁻²…3·10⁻¹ at equal calls (docs/diffusers-parity.md).
 * @packageDocumentation
 */
import { defineSolver } from './define-solver.js';
import { lambdaStep, type LambdaStep } from './exponential-integrator.js';
import { checkOption, type OptionRules } from './options.js';
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
  /** DPM-Solver's plan (`'dpm-solver'`, default) or diffusers' one-call-per-interval plan (`'diffusers'`); see the file comment. */
  plan?: 'dpm-solver' | 'diffusers';
  /** The second/third-order form of the `'diffusers'` plan: `'midpoint'` (default, diffusers' default) or `'heun'`. */
  solverType?: 'midpoint' | 'heun';
}

/** The rules of {@link SinglestepOptions} for a solver of order `order`. */
export function singlestepRules(order: number): OptionRules<SinglestepOptions> {
  return {
    orders: { kind: 'integers', min: 1, max: order, doc: `per-interval orders 1…${order}, e.g. stepPlanForCalls(nfe, ${order})` },
    lowerOrderFinal: { kind: 'boolean', doc: 'last interval at order 1, default true' },
    r1: {
      kind: 'number',
      min: 0,
      max: 1,
      minExclusive: true,
      doc: 'first intermediate point as a fraction of h, default 1/2 (order 2) or 1/3 (order 3)',
    },
    r2: { kind: 'number', min: 0, max: 1, minExclusive: true, doc: 'second intermediate point of order-3 intervals, default 2/3' },
    plan: {
      kind: 'enum',
      values: ['dpm-solver', 'diffusers'],
      doc: "'dpm-solver' (k calls per interval, default) or 'diffusers' (1 call per interval, order list 1, 2, 3, …)",
    },
    solverType: { kind: 'enum', values: ['midpoint', 'heun'], doc: "form of the 'diffusers' plan's higher orders, 'midpoint' (default) or 'heun'" },
  };
}

/**
 * diffusers' order list for `steps` intervals (DPMSolverSinglestepScheduler.get_order_list), with
 * `lowerOrderFinal`:
 *   order 3: steps ≡ 0 (mod 3): [1,2,3]×(steps/3 − 1) + [1,2] + [1]; ≡ 1: [1,2,3]×⌊steps/3⌋ + [1]; ≡ 2: … + [1,2]
 *   order 2: even: [1,2]×(steps/2 − 1) + [1,1]; odd: [1,2]×⌊steps/2⌋ + [1]
 * without it [1,…,k] repeated (steps must then be a multiple of k); the interval into σ = 0 is order 1.
 */
export function diffusersSinglestepOrders(steps: number, order: number, lowerOrderFinal: boolean, endsClean: boolean): number[] {
  const cycle = Array.from({ length: order }, (_, j) => j + 1);
  const rep = (n: number): number[] => Array.from({ length: n }, () => cycle).flat();
  let orders: number[];
  if (order === 1) orders = Array<number>(steps).fill(1);
  else if (!lowerOrderFinal) {
    if (steps % order !== 0) {
      throw new RangeError(
        `the diffusers singlestep plan of order ${order} without lowerOrderFinal needs a multiple of ${order} intervals, got ${steps}: set lowerOrderFinal: true or change the steps`,
      );
    }
    orders = rep(steps / order);
  } else if (order === 3) {
    const q = Math.floor(steps / 3);
    orders = steps % 3 === 0 ? [...rep(q - 1), 1, 2, 1] : steps % 3 === 1 ? [...rep(q), 1] : [...rep(q), 1, 2];
  } else {
    const q = Math.floor(steps / 2);
    orders = steps % 2 === 0 ? [...rep(q - 1), 1, 1] : [...rep(q), 1];
  }
  if (endsClean) orders[orders.length - 1] = 1;
  return orders;
}

/** Check a `'diffusers'`-plan order list: each order is 1 or one more than the order before. */
function checkDiffusersOrders(solver: string, orders: readonly number[]): void {
  orders.forEach((k, i) => {
    if (k !== 1 && k !== (orders[i - 1] ?? 0) + 1) {
      throw new RangeError(
        `${solver}: in the 'diffusers' plan interval ${i} has order ${k} after order ${orders[i - 1] ?? 'none'}; each order is 1 or one more than the one before (e.g. [1, 2, 3, 1, 2, 1])`,
      );
    }
  });
}

/**
 * One interval of the `'diffusers'` plan of order k: from the state `x` saved k − 1 intervals ago
 * at `times[0]`, over the grid points `times[0…k−1]` whose model outputs are `outputs` (oldest
 * first), to `t`.
 */
export type DiffusersSinglestepUpdate = (
  order: number,
  x: NumArray,
  times: readonly number[],
  outputs: readonly Prediction[],
  t: number,
  ctx: SolverContext,
  solverType: 'midpoint' | 'heun',
) => NumArray;

/** The singlestep defaults: the fast plan for an NFE budget, lower order final, the paper's r1/r2. */
const SINGLESTEP_DEFAULTS: SinglestepOptions = { lowerOrderFinal: true };

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
    checkOption(solver, 'orders', singlestepRules(order).orders, o);
    if (o.length !== steps) {
      throw new RangeError(
        `${solver}: option orders has ${o.length} entries but the grid has ${steps} intervals; build the grid with orders.length intervals (stepsForCalls does this)`,
      );
    }
    return [...o];
  }
  const plan = Array<number>(steps).fill(order);
  if (options.lowerOrderFinal ?? true) plan[steps - 1] = 1;
  return plan;
}

/** Model calls of a singlestep solver for `steps` intervals (the sum of its plan). */
export function singlestepCalls(solver: string, order: number, steps: number, options: Partial<SinglestepOptions> = {}): number {
  return singlestepOrders(solver, order, steps, options).reduce((a, b) => a + b, 0);
}

/**
 * The most intervals whose singlestep call count stays within `nfe`, in closed form: with a final
 * order-1 interval N = (M − 1)·p + 1, so M = 1 + ⌊(N − 1)/p⌋; without it M = ⌊N/p⌋.
 */
export function singlestepStepsForCalls(solver: string, order: number, nfe: number, options: Partial<SinglestepOptions> = {}): number {
  if (!Number.isInteger(nfe) || nfe < 1) throw new RangeError(`${solver}: nfe must be an integer ≥ 1, got ${nfe}`);
  if (options.orders !== undefined) {
    const calls = singlestepCalls(solver, order, options.orders.length, options);
    if (calls > nfe) {
      throw new RangeError(`${solver}: the orders plan needs ${calls} calls but the budget is ${nfe}; use stepPlanForCalls(${nfe}, ${order})`);
    }
    return options.orders.length;
  }
  if (options.lowerOrderFinal ?? true) return 1 + Math.floor((nfe - 1) / order);
  const k = Math.floor(nfe / order);
  if (k < 1) throw new RangeError(`${solver}: ${nfe} calls cannot pay one order-${order} interval; raise nfe or set lowerOrderFinal: true`);
  return k;
}

/** The `'diffusers'` plan's orders for `steps` intervals: the given `orders`, or diffusers' list. */
function diffusersPlanOrders(solver: string, order: number, steps: number, endsClean: boolean, o: SinglestepOptions): number[] {
  if (o.orders === undefined) return diffusersSinglestepOrders(steps, order, o.lowerOrderFinal ?? true, endsClean);
  if (o.orders.length !== steps) {
    throw new RangeError(`${solver}: option orders has ${o.orders.length} entries but the grid has ${steps} intervals; give one order per interval`);
  }
  return [...o.orders];
}

/** Resolved intermediate fractions (r1 for order 2; r1 < r2 for order 3). */
export interface IntermediateFractions {
  r1Order2: number;
  r1Order3: number;
  r2Order3: number;
}

/** Validate r1/r2 and fill the paper's defaults (Lu et al. 2022, Alg. 1 and 2); r1 < r2 is checked when `maxOrder` is 3. */
export function intermediateFractions(solver: string, options: Partial<SinglestepOptions>, maxOrder = 3): IntermediateFractions {
  const rules = singlestepRules(maxOrder);
  checkOption(solver, 'r1', rules.r1, options.r1);
  checkOption(solver, 'r2', rules.r2, options.r2, 2 / 3);
  const r1 = options.r1;
  const r2 = options.r2 ?? 2 / 3;
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

/** The clean-point rule: the interval into σ = 0 must be first order. */
function checkCleanInterval(solver: string, i: number, order: number, clean: boolean): void {
  if (clean && order > 1) {
    throw new RangeError(
      `${solver}: interval ${i} ends at the clean point (σ = 0), where only a first-order step is defined, but its order is ${order}; set lowerOrderFinal: true or end the orders plan with 1 (stepPlanForCalls does)`,
    );
  }
}

/**
 * Build the {@link SolverSpec} of a singlestep solver of fixed order from its update. Call counts
 * are exact (`callsForSteps` is the sum of the plan); an NFE budget is spent with
 * {@link stepPlanForCalls} unless the options give `orders`.
 */
export function singlestepSpec(def: {
  name: string;
  aliases?: readonly string[];
  description: string;
  order: number;
  update: SinglestepUpdate;
  /** The `'diffusers'` plan's update (solvers without one refuse that plan). */
  diffusersUpdate?: DiffusersSinglestepUpdate;
}): SolverSpec<SinglestepOptions> {
  const { name, order, update } = def;
  const isDiffusers = (o: SinglestepOptions): boolean => o.plan === 'diffusers';
  return defineSolver<SinglestepOptions>({
    name,
    ...(def.aliases ? { aliases: def.aliases } : {}),
    description: def.description,
    order,
    gridFamily: 'dpm',
    options: { defaults: SINGLESTEP_DEFAULTS, rules: singlestepRules(order) },
    checkOptions: (o) => {
      intermediateFractions(name, o, order);
      if (isDiffusers(o) && !def.diffusersUpdate) throw new RangeError(`${name} has no 'diffusers' plan: use plan 'dpm-solver' (or dpmpp_2s / dpmpp_3s)`);
      if (isDiffusers(o) && o.orders !== undefined) checkDiffusersOrders(name, o.orders);
    },
    cost: {
      callsForSteps: (steps, o) => (isDiffusers(o) ? steps : singlestepCalls(name, order, steps, o)),
      stepsForCalls: (nfe, o) => (isDiffusers(o) ? nfe : singlestepStepsForCalls(name, order, nfe, o)),
    },
    // A budget is spent whole with DPM-Solver's adaptive plan (e.g. 10 calls at order 3 → [3, 3, 3, 1]).
    spend(nfe, o, endsClean) {
      if (isDiffusers(o)) return { steps: nfe, options: o };
      if (o.orders !== undefined) return { steps: singlestepStepsForCalls(name, order, nfe, o), options: o };
      const orders = stepPlanForCalls(nfe, order, endsClean);
      return { steps: orders.length, options: { ...o, orders } };
    },
    checkGrid(timesteps, schedule, o) {
      const clean = schedule.sigma(timesteps[timesteps.length - 1]!) === 0;
      const orders = isDiffusers(o)
        ? diffusersPlanOrders(name, order, timesteps.length - 1, clean, o)
        : singlestepOrders(name, order, timesteps.length - 1, o);
      checkCleanInterval(name, orders.length - 1, orders[orders.length - 1]!, schedule.sigma(timesteps[timesteps.length - 1]!) === 0);
    },
    step(o, { steps, timesteps, schedule }) {
      if (isDiffusers(o)) {
        const orders = diffusersPlanOrders(name, order, steps, schedule.sigma(timesteps[steps]!) === 0, o);
        const outputs: Prediction[] = [];
        let saved: NumArray | undefined;
        return async ({ i, s, t, x, ctx }) => {
          const pred = await ctx.evaluate(x, s);
          outputs.push(pred);
          if (outputs.length > order) outputs.shift();
          const k = orders[i]!;
          if (k === 1) saved = x;
          const times = timesteps.slice(i - k + 1, i + 1);
          return { x: def.diffusersUpdate!(k, saved!, times, outputs.slice(-k), t, ctx, o.solverType ?? 'midpoint'), x0: pred.x0 };
        };
      }
      const r = intermediateFractions(name, o, order);
      const orders = singlestepOrders(name, order, steps, o);
      return async ({ i, s, t, x, ctx }) => {
        const g = lambdaStep(ctx.schedule, s, t);
        checkCleanInterval(name, i, orders[i]!, g.clean);
        const start = await ctx.evaluate(x, s);
        return { x: await update(orders[i]!, x, g, start, s, ctx, r), x0: start.x0 };
      };
    },
  });
}
