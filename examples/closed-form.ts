// Runnable: `npx tsx examples/closed-form.ts`. Samples Gaussian data with DDIM and with
// DDIM + PFDiff-2_1 at the same 6 model calls and compares both with the exact ODE end point.
import { discreteSchedule, gaussianModel, sample, gaussianBatch, CLEAN_TIME } from 'rediffuse/core';

const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02 });
const model = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [4] });
const noise = gaussianBatch(7, 8, 4, 'float64');
const exact = model.exactOdeSolution(noise, schedule.tMax, CLEAN_TIME);
const rms = (x: ArrayLike<number>) => Math.sqrt(Array.from(x, (v, i) => (v - exact[i]!) ** 2).reduce((a, b) => a + b, 0) / x.length);

for (const pfdiff of [undefined, { k: 2, h: 1 }]) {
  const run = await sample({ model, schedule, solver: 'ddim', nfe: 6, batch: 8, initialNoise: noise, precision: 'float64', pfdiff });
  console.log(`${pfdiff ? 'DDIM + PFDiff-2_1' : 'DDIM            '}  calls=${run.calls}  rms error=${rms(run.samples).toExponential(3)}`);
}
