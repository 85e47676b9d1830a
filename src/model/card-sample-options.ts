/**
 * The one path from a model card to `sample()` options: a card's sampling setup
 * ({@link cardSamplingSetup}) and what a user asks for (solver, budget, grid spacing, guidance,
 * classes, batch, seed, PFDiff k_h) become {@link SampleOptions} without the model. The command
 * line (`sample`, `autofr`), the bench and the web page all build their runs here, so the same
 * request samples the same images everywhere.
 *
 * Classifier-free guidance (Ho & Salimans 2022, eq. 6): ε̃ = ε(x, ∅) + w·(ε(x, c) − ε(x, ∅)).
 * Two scales need no unconditional branch, and run one network batch of B:
 *  - w = 1 is the conditional model ε(x, c) (the class labels, no guidance);
 *  - w = 0 is the unconditional model ε(x, ∅) (every sample gets the card's null label; class
 *    labels, if given, are not used).
 * Every other w ≥ 0 runs the guided 2B batch [∅; c] (0 < w < 1 interpolates, w > 1 extrapolates;
 * diffusers instead treats every w ≤ 1 as "no guidance", which is the conditional model and so
 * differs from the equation for w < 1). Guidance rescale acts on the guided output only (at w = 0
 * and w = 1 it has nothing to rescale).
 * @packageDocumentation
 */
import { planSample, type PfdiffSettings, type SampleOptions } from '../core/sample.js';
import { CLEAN_TIME } from '../core/schedule/noise-schedule.js';
import { isFlowSchedule } from '../core/schedule/flow.js';
import { checkGuidanceOptions, type GuidanceOptions } from '../core/guidance.js';
import { parseKH } from '../core/pfdiff/kh.js';
import { resolveSamplerName, type ResolvedSampler } from '../core/schedule/sampler-names.js';
import { DEFAULT_NFE } from '../core/solvers/define-solver.js';
import type { TimestepSpacing } from '../core/timesteps.js';
import { solverSettingsFor, type CardSamplingSetup } from './model-card.js';

/** The guidance scale of a class-conditional run when the request names none. */
export const DEFAULT_GUIDANCE_SCALE = 2;

/** What a user asks of one sampling run (every field optional but `batch`). */
export interface CardSampleRequest {
  /** Registry solver name or alias. Default: the card's (`default_solver`, else its scheduler config's). */
  solver?: string;
  /**
   * A sampler name as A1111 / ComfyUI users type it ("DPM++ 2M Karras", "Euler a", "dpmpp_2m karras"):
   * resolved by `resolveSamplerName` to a solver, its options and its grid. Not with `solver`.
   */
  sampler?: string;
  /** Solver options on top of the scheduler config's (which apply when the solver is the config's own). */
  solverOptions?: Record<string, unknown>;
  /** Model-call budget. Default: `steps` when given, else the card's `default_nfe`, else {@link DEFAULT_NFE}. */
  nfe?: number;
  /** Grid intervals instead of an NFE budget. */
  steps?: number;
  /** Timestep spacing instead of the scheduler config's. */
  spacing?: TimestepSpacing;
  /**
   * A `FlowMatchEulerDiscreteScheduler` config with `use_dynamic_shifting`: the image's latent
   * tokens (SD3/FLUX: (h/p)·(w/p), p the patch size), from which its σ grid's shift μ is computed.
   */
  flowImageSeqLen?: number;
  /**
   * Guidance scale w (see the module notes: 0 = unconditional, 1 = conditional, else the guided 2B
   * batch). Default: {@link DEFAULT_GUIDANCE_SCALE} when class labels are given, else 1.
   */
  guidance?: number;
  /** Guidance rescale φ ∈ [0, 1] (Lin et al. 2023). Default 0. */
  guidanceRescale?: number;
  /** One class label per sample; absent or empty = unconditional. */
  classLabels?: readonly number[];
  /**
   * Whether the network takes class labels. Default: the card has classes. A client that has loaded
   * the model passes what its signature says (a card with classes on a label-free network is not
   * class-conditional).
   */
  classConditional?: boolean;
  /** Number of samples. */
  batch: number;
  seed?: number;
  /** PFDiff: `k_h` text (`2_1`) or parsed; `quantity` picks the stored model output (first-order solvers). */
  pfdiff?: string | PfdiffSettings | null;
}

/** A request that cannot be sampled, with the fix; `field` names the request field at fault. */
export class SampleRequestError extends Error {
  constructor(
    readonly field: keyof CardSampleRequest,
    message: string,
  ) {
    super(message);
    this.name = 'SampleRequestError';
  }
}

/** How a request's guidance and labels were read (also for reports). */
export interface CardConditioning {
  /** `guided` = the 2B batch; `conditional` = labels, one batch; `unconditional` = null labels or a label-free model. */
  mode: 'guided' | 'conditional' | 'unconditional';
  /** The scale w as read (after the default). */
  scale: number;
}

/** The guidance mode of a request (see the module notes); throws {@link SampleRequestError} naming the fix. */
export function cardConditioning(
  setup: CardSamplingSetup,
  request: Pick<CardSampleRequest, 'guidance' | 'classLabels' | 'classConditional'>,
): CardConditioning {
  const conditional = request.classConditional ?? setup.numClasses > 0;
  const labels = request.classLabels ?? [];
  const scale = request.guidance ?? (conditional && labels.length > 0 ? DEFAULT_GUIDANCE_SCALE : 1);
  try {
    checkGuidanceOptions({ scale }); // the core's rule for a scale, stated once
  } catch (err) {
    throw new SampleRequestError('guidance', (err as Error).message);
  }
  if (!conditional) {
    if (labels.length > 0) throw new SampleRequestError('classLabels', `model ${setup.card.name} is not class-conditional: sample without class labels`);
    if (scale !== 0 && scale !== 1) {
      throw new SampleRequestError(
        'guidance',
        `classifier-free guidance needs a class-conditional model, but ${setup.card.name} is not one: use guidance 1 (or 0)`,
      );
    }
    return { mode: 'unconditional', scale };
  }
  if (scale === 0) {
    if (setup.nullLabel === undefined) {
      throw new SampleRequestError(
        'guidance',
        `model card ${setup.card.source} has no null_label, so guidance 0 (unconditional) has no unconditional branch: give class labels and guidance 1`,
      );
    }
    return { mode: 'unconditional', scale };
  }
  if (labels.length === 0) {
    if (scale !== 1)
      throw new SampleRequestError(
        'guidance',
        'classifier-free guidance needs class labels: give classes, or use guidance 1 (or 0) for unconditional samples',
      );
    return { mode: 'unconditional', scale };
  }
  if (scale === 1) return { mode: 'conditional', scale };
  if (setup.nullLabel === undefined) {
    throw new SampleRequestError(
      'guidance',
      `model card ${setup.card.source} has no null_label, so classifier-free guidance has no unconditional branch: use guidance 1`,
    );
  }
  return { mode: 'guided', scale };
}

/**
 * `sample()` options (all but `model`) for a request on a card: the solver settings of
 * {@link solverSettingsFor} (the request's solver options and spacing on top), the NFE or step
 * budget, PFDiff, and the guidance/label rule of the module notes. Throws
 * {@link SampleRequestError} (or the solver registry's error) naming the fix.
 */
export function sampleOptionsFromCard(setup: CardSamplingSetup, request: CardSampleRequest): Omit<SampleOptions, 'model'> {
  if (request.nfe !== undefined && request.steps !== undefined) throw new SampleRequestError('steps', 'give an NFE budget or a step count, not both');
  const labels = request.classLabels ?? [];
  if (labels.length > 0 && labels.length !== request.batch) {
    throw new SampleRequestError('classLabels', `give one class label per sample: ${labels.length} labels for ${request.batch} samples`);
  }
  if (request.sampler !== undefined && request.solver !== undefined) {
    throw new SampleRequestError(
      'sampler',
      `give a sampler name or a solver, not both (got sampler "${request.sampler}" and solver "${request.solver}")`,
    );
  }
  let named: ResolvedSampler | undefined;
  try {
    named = request.sampler !== undefined ? resolveSamplerName(request.sampler) : undefined;
  } catch (err) {
    throw new SampleRequestError('sampler', (err as Error).message);
  }
  const settings = solverSettingsFor(setup, named?.solver ?? request.solver);
  const conditioning = cardConditioning(setup, request);
  // On a flow model, a sampler name without a schedule word runs on the model's own σ grid.
  const namedGrid = named && !(named.normalGrid && isFlowSchedule(setup.schedule)) ? named.timesteps : {};
  const timesteps = {
    ...settings.timesteps,
    ...namedGrid,
    ...(request.spacing !== undefined ? { spacing: request.spacing } : {}),
  };
  const requested = { ...(named?.solverOptions ?? {}), ...(request.solverOptions ?? {}) };
  const nfe = request.steps === undefined ? (request.nfe ?? setup.defaultNfe ?? DEFAULT_NFE) : undefined;
  const pfdiff = typeof request.pfdiff === 'string' ? parseKH(request.pfdiff) : (request.pfdiff ?? undefined);
  const nullLabels = () => Array.from({ length: request.batch }, () => setup.nullLabel!);
  let guidance: GuidanceOptions | undefined;
  let classLabels: number[] | undefined;
  if (conditioning.mode === 'guided') {
    guidance = { scale: conditioning.scale, rescale: request.guidanceRescale ?? 0, nullLabel: setup.nullLabel! };
    classLabels = [...labels];
  } else if (conditioning.mode === 'conditional') {
    classLabels = [...labels];
  } else if ((request.classConditional ?? setup.numClasses > 0) && setup.nullLabel !== undefined) {
    classLabels = nullLabels();
  }
  const options: Omit<SampleOptions, 'model'> = {
    schedule: setup.schedule,
    solver: settings.solver,
    // PFDiff refuses base options its variant does not use; the card's own (diffusers-mode) options
    // are defaults, not the user's words, so under PFDiff only the request's options are passed.
    solverOptions: pfdiff ? requested : { ...settings.solverOptions, ...requested },
    ...(nfe !== undefined ? { nfe } : { steps: request.steps! }),
    timesteps,
    ...(pfdiff ? { pfdiff } : {}),
    ...(guidance ? { guidance } : {}),
    ...(classLabels ? { cond: { classLabels } } : {}),
    batch: request.batch,
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(settings.clipSample !== undefined ? { clipSample: settings.clipSample } : {}),
    ...(settings.thresholding ? { thresholding: settings.thresholding } : {}),
  };
  if (request.flowImageSeqLen !== undefined && timesteps.spacing === 'flow_match' && timesteps.flow?.dynamic && timesteps.flow.mu === undefined) {
    useDynamicFlowMatchGrid(setup, options, request.flowImageSeqLen);
  }
  return options;
}

/**
 * A `FlowMatchEulerDiscreteScheduler` config with `use_dynamic_shifting`: its `flow_match` spacing
 * needs μ, which the config computes from the image's latent tokens (diffusers' `calculate_shift`);
 * the run gets the config's own `set_timesteps(N)` σ list for the N intervals its solver and budget make.
 */
function useDynamicFlowMatchGrid(setup: CardSamplingSetup, options: Omit<SampleOptions, 'model'>, imageSeqLen: number): void {
  // the run's intervals for its budget (the count does not depend on the spacing; time_uniform is valid on every schedule)
  const steps = planSample({ ...options, timesteps: { ...options.timesteps, spacing: 'time_uniform' } }).steps;
  const grid = setup.scheduler.sampleOptions(steps, { imageSeqLen }).timesteps;
  delete options.nfe;
  delete options.steps;
  options.timesteps = { ...options.timesteps, timesteps: (grid?.timesteps ?? []).filter((t) => t !== CLEAN_TIME), terminal: 'zero' };
}
