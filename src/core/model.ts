/**
 * The model interface the sampling core calls: an async function of (x, call, conditioning), where
 * the call descriptor says when and which call it is.
 * @packageDocumentation
 */
import type { NoiseSchedule } from './schedule/noise-schedule.js';
import type { NumArray } from './tensor.js';

/** What the network predicts (diffusers' `prediction_type`). */
export type PredictionType = 'epsilon' | 'sample' | 'v_prediction' | 'flow';

/** Conditioning for one batch. Each field holds one entry per sample of the batch. */
export interface Conditioning {
  /** Class labels, one per sample (the model's null label means "unconditional"). */
  classLabels?: readonly number[];
  /** Text-encoder states `[batch, tokens, dim]`, flattened (Stable-Diffusion-style models). */
  encoderHiddenStates?: Float32Array;
  /** Shape of one sample's encoder states, `[tokens, dim]`. */
  encoderHiddenShape?: readonly number[];
  /**
   * Further per-sample model inputs by input name (e.g. SDXL's pooled `text_embeds` [D] and
   * `time_ids` [6]): `data` holds one row of `sampleSize(shape)` values per sample of the batch.
   * Guidance batches them `[uncond; cond]` as it does the encoder states.
   */
  extra?: Readonly<Record<string, ConditioningInput>>;
}

/** One per-sample extra model input of a {@link Conditioning}: `batch` rows of shape `shape`, flattened. */
export interface ConditioningInput {
  readonly data: Float32Array;
  /** Shape of one sample's row (without the batch dim), e.g. `[1280]` or `[6]`. */
  readonly shape: readonly number[];
}

/** Options of one model call. */
export interface ModelCallOptions {
  /** Abort the call (and the sampling run) when this signal fires. */
  signal?: AbortSignal;
}

/**
 * What one model call is: the point (t, α_t, σ_t) of the VP path x = α_t·x0 + σ_t·ε the state lies
 * on, the value the network receives as its time input, which call of the run it is, and how many
 * samples `x` holds. The solver context builds one per `evaluate`; wrappers pass it on (guidance
 * with `batch` doubled), so no wrapper inverts the time input or counts calls itself.
 */
export interface ModelCall {
  /** Schedule time of the call (the solver's `t`: 0…999 discrete, (0, 1] continuous). */
  t: number;
  /** The network's time input, `schedule.modelTime(t)`. */
  modelTime: number;
  /** α_t of the schedule at `t`. */
  alpha: number;
  /** σ_t of the schedule at `t` (> 0 at every time a model is called). */
  sigma: number;
  /** 0-based index of this call in the sampling run (call i of an N-call run; a guided 2B call is one call). */
  index: number;
  /** Number of samples in `x` (under classifier-free guidance the wrapped network sees 2B). */
  batch: number;
}

/** The {@link ModelCall} of call `index` of a run at schedule time `t` on a batch of `batch` samples. */
export function modelCallAt(schedule: NoiseSchedule, t: number, batch: number, index = 0): ModelCall {
  return { t, modelTime: schedule.modelTime(t), alpha: schedule.alpha(t), sigma: schedule.sigma(t), index, batch };
}

/**
 * A diffusion network. `predict` receives a batch `x` laid out `[call.batch, ...sampleShape]` and
 * the {@link ModelCall} descriptor (the same time for every sample) and returns its prediction of
 * the given {@link PredictionType}, same layout as `x`.
 */
export interface DiffusionModel {
  readonly predictionType: PredictionType;
  /** Shape of one sample, e.g. `[1, 28, 28]`. */
  readonly sampleShape: readonly number[];
  predict(x: NumArray, call: ModelCall, cond?: Conditioning, options?: ModelCallOptions): Promise<NumArray>;
}

/** Number of elements in one sample. */
export function sampleSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
