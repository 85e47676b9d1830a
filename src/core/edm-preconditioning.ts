/**
 * EDM preconditioning (Karras et al. 2022, Table 1 and §5; diffusers' `EDMEulerScheduler`
 * `precondition_inputs` / `precondition_outputs`) as a model conversion, so every solver runs an
 * EDM network on {@link edmSchedule} without a special case.
 *
 * With x the VP state (x_VE = x/α = x·√(1 + σ²)) and σ the EDM noise level σ_VP/α, the network F
 * gets the input c_in·x_VE at time input c_noise = ¼·ln σ (the schedule's model time) and gives
 *   D = c_skip·x_VE + c_out·F,   c_in = 1/√(σ² + σ_d²),   c_skip = σ_d²/(σ² + σ_d²),
 *   c_out = ±σ·σ_d/√(σ² + σ_d²)   (+ for diffusers' prediction_type "epsilon", − for "v_prediction"),
 * the denoised x̂0, which the wrapped model returns as a `sample` prediction.
 *
 * How it relates to the VP types: with the data scaled by 1/σ_d (σ' = σ/σ_d, α' = σ_d/√(σ² + σ_d²)),
 * c_in·x_VE is the VP state of the scaled process and F = ∓v' its v-prediction; for σ_d = 1 the
 * wrapper is exactly a VP v-prediction model (c_out < 0) on x itself.
 * @packageDocumentation
 */
import type { DiffusionModel } from './model.js';
import { axpby, scale } from './tensor.js';
import type { EdmSchedule } from './schedule/edm.js';

/** Options of {@link edmPreconditionedModel}. */
export interface EdmPreconditioningOptions {
  /** σ_data (default 0.5, or the schedule's when `schedule` is given). */
  sigmaData?: number;
  /** Take σ_data from this schedule. */
  schedule?: Pick<EdmSchedule, 'sigmaData'>;
}

/**
 * Wrap a raw EDM network F (its `predictionType` names the sign of c_out as diffusers' config does:
 * `epsilon` → +, `v_prediction` → −) into a model that takes the VP state and returns x̂0 (`sample`).
 */
export function edmPreconditionedModel(network: DiffusionModel, opts: EdmPreconditioningOptions = {}): DiffusionModel {
  const sigmaData = opts.sigmaData ?? opts.schedule?.sigmaData ?? 0.5;
  if (!(Number.isFinite(sigmaData) && sigmaData > 0)) throw new RangeError(`edmPreconditionedModel: sigmaData must be > 0, got ${sigmaData}`);
  const type = network.predictionType;
  if (type !== 'epsilon' && type !== 'v_prediction') {
    throw new RangeError(
      `edmPreconditionedModel: an EDM network's output is F with c_out of the sign its prediction_type names ("epsilon" or "v_prediction"), ` +
        `got "${type}": set the network's predictionType to one of those`,
    );
  }
  const sign = type === 'epsilon' ? 1 : -1;
  const sd2 = sigmaData * sigmaData;
  return {
    predictionType: 'sample',
    sampleShape: network.sampleShape,
    async predict(x, call, cond, options) {
      const s = call.sigma / call.alpha;
      const r = Math.sqrt(s * s + sd2);
      const invAlpha = 1 / call.alpha; // x_VE = x/α
      const f = await network.predict(scale(invAlpha / r, x), call, cond, options);
      return axpby((sd2 / (r * r)) * invAlpha, x, (sign * s * sigmaData) / r, f);
    },
  };
}
