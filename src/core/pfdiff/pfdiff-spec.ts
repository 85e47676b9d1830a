/**
 * `pfdiff(spec, { k, h, quantity })`: PFDiff as a spec transformer. The result is a {@link SolverSpec}
 * whose plan lays out PFDiff's base grid for the call budget and whose solver runs the variant that
 * fits the base solver (Wang et al., ICLR 2025):
 * - first-order bases (ddim, dpm_solver_1, dpmpp_1, euler): PFDiff-k_h, Alg. 1 (`pfdiff.ts`);
 * - singlestep bases (dpm_solver_2/3, dpmpp_2s/3s): the past-only variant (`pfdiff-higher-order.ts`);
 * - dpmpp_2m, unipc: our experimental multistep variant (`pfdiff-multistep.ts`);
 * - ipndm_v: our experimental Adams–Bashforth variant (`pfdiff-adams.ts`).
 *
 * Options are checked by the base solver's own resolver first (an unknown key throws, naming it),
 * then against what the variant honours: the past-only variant uses r1/r2, the Adams variant order
 * (default {@link ADAMS_DEFAULT_ORDER}, not ipndm_v's 4) and noiseStart; no variant uses any other
 * option, so a value other than the base default is refused with the fix, never ignored.
 * @packageDocumentation
 */
import { buildPlannedGrid, gridOptions, largestBudget, requestBudget } from '../solvers/define-solver.js';
import type { PfdiffVariant, PlanRequest, Solver, SolverPlan, SolverSpec } from '../solvers/types.js';
import type { SinglestepOptions } from '../solvers/singlestep-plan.js';
import { buildTimesteps, gridEndsClean } from '../timesteps.js';
import { isFlowSchedule } from '../schedule/flow.js';
import type { NoiseSchedule } from '../schedule/noise-schedule.js';
import { checkQuantity, defaultQuantity, FIRST_ORDER_BASES, type FirstOrderBase, type PfdiffQuantity } from './first-order-step.js';
import { checkPfdiffKH, createPfdiffSolver, pfdiffBaseSteps, pfdiffCallsForSteps } from './pfdiff.js';
import {
  createPfdiffHigherOrderSolver,
  pfdiffHigherOrderBaseSteps,
  SINGLESTEP_BASES,
  singlestepBaseInfo,
  type SinglestepBase,
} from './pfdiff-higher-order.js';
import { createPfdiffMultistepSolver, MULTISTEP_BASES } from './pfdiff-multistep.js';
import { ADAMS_BASES, ADAMS_DEFAULT_ORDER, createPfdiffAdamsSolver } from './pfdiff-adams.js';
import type { IpndmOptions } from '../solvers/ipndm.js';

/** PFDiff settings of a run. */
export interface PfdiffSettings {
  /** 1 ≤ k ≤ 3: one call moves k + 1 base intervals. */
  k: number;
  /** 1 ≤ h ≤ k: the springboard offset. */
  h: number;
  /**
   * First-order bases only: the stored, reused quantity. Default: `x0` for `dpmpp_1`, else `epsilon`.
   */
  quantity?: PfdiffQuantity;
}

/** Which PFDiff variant applies to a registry solver name, or an error naming the valid ones. */
export function pfdiffVariant(name: string): PfdiffVariant {
  if ((FIRST_ORDER_BASES as readonly string[]).includes(name)) return 'first-order';
  if ((SINGLESTEP_BASES as readonly string[]).includes(name)) return 'past-only';
  if ((MULTISTEP_BASES as readonly string[]).includes(name)) return 'multistep-experimental';
  if ((ADAMS_BASES as readonly string[]).includes(name)) return 'adams-experimental';
  throw new RangeError(
    `PFDiff has no variant for solver "${name}": use a first-order solver (${FIRST_ORDER_BASES.join(', ')}), ` +
      `a singlestep one (${SINGLESTEP_BASES.join(', ')}) or, experimentally, ${[...MULTISTEP_BASES, ...ADAMS_BASES].join(', ')}`,
  );
}

/** Options each variant uses (the rest must keep the base solver's default). */
const HONOURED: Readonly<Record<PfdiffVariant, readonly string[]>> = {
  'first-order': [],
  'past-only': ['r1', 'r2'],
  'multistep-experimental': [],
  'adams-experimental': ['order', 'noiseStart'],
};

/** Why a variant cannot honour the other options. */
const WHY: Readonly<Record<PfdiffVariant, string>> = {
  'first-order': 'it takes first-order steps φ with the stored output',
  'past-only': 'it lays out its own blocks of p calls (remainder last) and ends with a zero-call first-order step',
  'multistep-experimental': "it runs its own data-prediction predictor (the line through the last two x̂0), not the solver's own update",
  'adams-experimental': 'it runs the Adams–Bashforth extrapolation of ipndm_v with its order and noiseStart only',
};

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The base solver wrapped in PFDiff-k_h (see the module comment). Throws for a base without a
 * variant, bad k/h, or a `quantity` the variant does not store.
 */
export function pfdiff<O extends object>(base: SolverSpec<O>, settings: PfdiffSettings): SolverSpec<O> {
  const { k, h } = settings;
  checkPfdiffKH(k, h);
  const name = base.name;
  const variant = pfdiffVariant(name);
  let quantity: PfdiffQuantity | undefined;
  if (variant === 'first-order') {
    quantity = settings.quantity ?? defaultQuantity(name as FirstOrderBase);
    checkQuantity(quantity);
  } else if (variant === 'past-only' && settings.quantity !== undefined) {
    throw new RangeError(
      `pfdiff.quantity applies to first-order solvers; ${name} reuses its own outputs (${singlestepBaseInfo(name as SinglestepBase).form} prediction): drop quantity`,
    );
  } else if (variant === 'multistep-experimental' && settings.quantity !== undefined && settings.quantity !== 'x0') {
    throw new RangeError(`the multistep PFDiff variant reuses x̂0 (data prediction), got quantity "${settings.quantity}": drop quantity`);
  } else if (variant === 'adams-experimental' && settings.quantity !== undefined && settings.quantity !== 'epsilon') {
    throw new RangeError(`the Adams PFDiff variant around ${name} reuses ε̂ (noise prediction), got quantity "${settings.quantity}": drop quantity`);
  }
  const defaults = base.resolveOptions() as Record<string, unknown>;

  /** The base solver's own checks, then a refusal of every non-default value the variant would not use. */
  const resolve = (options: Partial<O> | undefined): O => {
    const o = base.resolveOptions(options);
    const resolved = o as Record<string, unknown>;
    const refused = Object.keys(options ?? {}).filter((key) => !HONOURED[variant].includes(key) && !same(resolved[key], defaults[key]));
    if (refused.includes('eta')) {
      throw new RangeError(`PFDiff wraps the deterministic ${name} (eta = 0), got eta = ${String(resolved['eta'])}: drop eta or set it to 0`);
    }
    if (refused.length > 0) {
      const list = refused.map((key) => `"${key}" = ${JSON.stringify(resolved[key])}`).join(', ');
      throw new RangeError(
        `PFDiff's ${variant} variant around ${name} cannot honour option ${list} (${WHY[variant]}): ` +
          `drop ${refused.join(', ')}, or sample with ${name} without PFDiff`,
      );
    }
    if (variant === 'adams-experimental' && (options as { order?: unknown } | undefined)?.order === undefined) {
      return { ...o, order: ADAMS_DEFAULT_ORDER };
    }
    return o;
  };
  const pastOnly = (what: string): RangeError =>
    new RangeError(`PFDiff's past-only variant around ${name} ${what} depends on the NFE budget (its remainder block): plan it with nfe`);
  // The first-order variant's quantity: as asked, else the base's default on the run's schedule (the
  // velocity on flow schedules); without a schedule (create), decided when the run sees its schedule.
  const quantityOn = (schedule: NoiseSchedule): PfdiffQuantity => settings.quantity ?? defaultQuantity(name as FirstOrderBase, isFlowSchedule(schedule));
  const firstOrMultistep = (o: O, schedule?: NoiseSchedule): Solver => {
    if (variant === 'adams-experimental') {
      const { order, noiseStart } = o as unknown as IpndmOptions;
      return createPfdiffAdamsSolver({ k, h, order, noiseStart });
    }
    if (variant !== 'first-order') return createPfdiffMultistepSolver({ k, h });
    const q = schedule !== undefined ? quantityOn(schedule) : (settings.quantity ?? (name === 'dpmpp_1' ? 'x0' : undefined));
    return createPfdiffSolver({ k, h, ...(q !== undefined ? { quantity: q } : {}) });
  };

  return {
    name,
    ...(base.aliases ? { aliases: base.aliases } : {}),
    description: `PFDiff-${k}_${h} (${variant}) around ${name}: ${base.description}`,
    order: base.order,
    gridFamily: base.gridFamily,
    stochastic: () => false,
    resolveOptions: resolve,
    callsForSteps(steps, options) {
      resolve(options);
      if (variant === 'past-only') throw pastOnly('call count');
      return pfdiffCallsForSteps(steps, k);
    },
    stepsForCalls(nfe, options) {
      resolve(options);
      if (variant === 'past-only') throw pastOnly('base grid');
      return pfdiffBaseSteps(nfe, k);
    },
    plan(request: PlanRequest<O>): SolverPlan<O> {
      const { schedule } = request;
      const budget = requestBudget(request);
      const o = resolve(request.options);
      const grid = gridOptions(base.gridFamily, request.timesteps);
      const explicit = grid.timesteps !== undefined;
      let timesteps: number[];
      let calls: number;
      let run: Solver;
      if (variant === 'past-only') {
        if (budget.nfe === undefined)
          throw new RangeError(`PFDiff with ${name} needs an nfe budget (the remainder rule depends on it): pass nfe instead of steps`);
        const nfe = budget.nfe;
        const { order } = singlestepBaseInfo(name as SinglestepBase);
        const clean = gridEndsClean(schedule, grid);
        // The resolved options go through whole: r1/r2 are used, every other key was checked above to be the default.
        run = createPfdiffHigherOrderSolver({ k, h, base: name as SinglestepBase, nfe, solverOptions: o as SinglestepOptions });
        const want = pfdiffHigherOrderBaseSteps(nfe, k, order, clean);
        timesteps = explicit
          ? buildTimesteps(schedule, grid)
          : buildPlannedGrid(name, schedule, grid, want, nfe, (max) => largestBudget(max, (n) => pfdiffHigherOrderBaseSteps(n, k, order, clean)));
        if (timesteps.length - 1 !== want) {
          throw new RangeError(
            `the PFDiff past-only variant with N = ${nfe}, p = ${order}, k = ${k} needs a base grid of ${want} intervals, ` +
              `got an explicit list of ${timesteps.length - 1}: give ${want} intervals or leave the list out`,
          );
        }
        calls = nfe;
      } else {
        run = firstOrMultistep(o, schedule);
        if (explicit) timesteps = buildTimesteps(schedule, grid);
        else if (budget.steps !== undefined) timesteps = buildTimesteps(schedule, { ...grid, steps: budget.steps });
        else {
          timesteps = buildPlannedGrid(name, schedule, grid, pfdiffBaseSteps(budget.nfe, k), budget.nfe, (max) =>
            largestBudget(max, (n) => pfdiffBaseSteps(n, k)),
          );
        }
        calls = pfdiffCallsForSteps(timesteps.length - 1, k);
      }
      return {
        solver: name,
        timesteps,
        steps: timesteps.length - 1,
        calls,
        options: o,
        order: base.order,
        stochastic: false,
        pfdiff: { k, h, variant, ...(quantity !== undefined ? { quantity: quantityOn(schedule)! } : {}) },
        run,
      };
    },
    create(options) {
      const o = resolve(options);
      if (variant === 'past-only') throw pastOnly('solver');
      return firstOrMultistep(o);
    },
  };
}
