/**
 * The model interface the sampling core calls: an async function of (x, t, conditioning).
 * @packageDocumentation
 */
import type { NumArray } from './tensor.js';

/** What the network predicts (diffusers' `prediction_type`). */
export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';

/** Conditioning for one batch. Each field holds one entry per sample of the batch. */
export interface Conditioning {
  /** Class labels, one per sample (the model's null label means "unconditional"). */
  classLabels?: readonly number[];
  /** Text-encoder states `[batch, tokens, dim]`, flattened (Stable-Diffusion-style models). */
  encoderHiddenStates?: Float32Array;
  /** Shape of one sample's encoder states, `[tokens, dim]`. */
  encoderHiddenShape?: readonly number[];
}

/** Options of one model call. */
export interface ModelCallOptions {
  /** Abort the call (and the sampling run) when this signal fires. */
  signal?: AbortSignal;
}

/**
 * A diffusion network. `predict` receives a batch `x` laid out `[batch, ...sampleShape]` and the
 * model time `t` (the schedule's {@link NoiseSchedule.modelTime} of the step, the same for every
 * sample) and returns its prediction of the given {@link PredictionType}, same layout as `x`.
 */
export interface DiffusionModel {
  readonly predictionType: PredictionType;
  /** Shape of one sample, e.g. `[1, 28, 28]`. */
  readonly sampleShape: readonly number[];
  predict(
    x: NumArray,
    t: number,
    batch: number,
    cond?: Conditioning,
    options?: ModelCallOptions,
  ): Promise<NumArray>;
}

/** Number of elements in one sample. */
export function sampleSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
