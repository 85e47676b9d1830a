/**
 * The checks {@link sample} applies to its options, without running the model: the page refuses bad
 * settings with the library's own rules (solver name and options, NFE, PFDiff k_h, guidance, seed,
 * batch, labels, the grid for that budget) before it loads a session or starts a worker run.
 * @packageDocumentation
 */
import { sample, type DiffusionModel, type SampleOptions } from '../src/core/index.js';

/** Thrown by the stand-in model: `sample()` got past every check to its first model call. */
const REACHED_FIRST_CALL = Symbol('reached the first model call');

/**
 * Resolve when `sample(options)` would get to its first model call, reject with its error otherwise.
 * The options run up to that call against a stand-in with the model's prediction type and sample
 * shape, so the cost is the initial noise and the timestep grid, not a model call.
 */
export async function checkSampleOptions(options: SampleOptions): Promise<void> {
  const { model } = options;
  const stand: DiffusionModel = {
    predictionType: model.predictionType,
    sampleShape: model.sampleShape,
    predict: () => Promise.reject(REACHED_FIRST_CALL),
  };
  const { onStep: _onStep, signal: _signal, ...rest } = options;
  try {
    await sample({ ...rest, model: stand });
  } catch (err) {
    if (err === REACHED_FIRST_CALL) return;
    throw err;
  }
}
