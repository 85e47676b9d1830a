/**
 * Trajectory error is only defined between runs from the same start time: the metric refuses a
 * mismatch, and a reference grid aligned to the sample's start (alignReferenceGrid) gives the exact
 * ODE error on the closed-form Gaussian model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLEAN_TIME, discreteSchedule, gaussianBatch, gaussianModel, planSample, sample } from '../src/core/index.js';
import { alignReferenceGrid, trajectoryError, TrajectoryStartError } from '../src/metrics/index.js';

const schedule = discreteSchedule({ betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02 });
const model = gaussianModel({ schedule, mean: 0.5, std: 0.5, sampleShape: [4] });
const batch = 8;
const noise = gaussianBatch(3, batch, 4, 'float64');
const leading = { spacing: 'leading' as const, family: 'ddim' as const };

test('the metric refuses runs that start at different times, naming both starts and the fix', () => {
  const a = new Float64Array(8);
  assert.throws(
    () => trajectoryError(a, a, 2, 2, { sample: 900, reference: 999 }),
    (e: unknown) =>
      e instanceof TrajectoryStartError && /starts at t = 900 but the reference's at t = 999/.test(e.message) && /alignReferenceGrid/.test(e.message),
  );
  // The same start (within float rounding) is accepted.
  assert.equal(trajectoryError(a, a, 2, 2, { sample: 999, reference: 999 + 1e-9 }).mse, 0);
});

test('alignReferenceGrid moves the first time to the start, keeps the last, and keeps an aligned grid as it is', () => {
  const ref = planSample({ schedule, solver: 'dpmpp_2m', nfe: 10, timesteps: { spacing: 'trailing', family: 'dpm' } }).timesteps;
  assert.equal(ref[0], 999);
  const same = alignReferenceGrid(ref, 999);
  assert.deepEqual(same, ref.slice(0, -1));
  const moved = alignReferenceGrid(ref, 900);
  assert.equal(moved.length, 10);
  assert.equal(moved[0], 900);
  assert.equal(moved[9], ref[9]);
  // affine: t' = t_last + (t − t_last)·(900 − t_last)/(999 − t_last)
  const last = ref[9]!;
  assert.ok(Math.abs(moved[5]! - (last + (ref[5]! - last) * ((900 - last) / (999 - last)))) < 1e-12);
  assert.throws(() => alignReferenceGrid(ref, last), /at or below the reference grid's last time/);
});

test('a leading DDIM-10 grid starts at 900; against the aligned exact ODE its error is the discretisation error, an aligned 200-step reference agrees', async () => {
  const ddim = await sample({ model, schedule, solver: 'ddim', nfe: 10, batch, initialNoise: noise, precision: 'float64', timesteps: leading });
  const start = ddim.timesteps[0]!;
  assert.equal(start, 900);
  const exactFromStart = model.exactOdeSolution(noise, start, CLEAN_TIME);
  const exactFrom999 = model.exactOdeSolution(noise, 999, CLEAN_TIME);
  // The exact solver (the closed form itself) from the same start: zero error.
  assert.equal(trajectoryError(exactFromStart, exactFromStart, batch, 2, { sample: start, reference: start }).mse, 0);
  const discretisation = trajectoryError(ddim.samples, exactFromStart, batch, 2, { sample: start, reference: start }).mse;
  const confounded = trajectoryError(ddim.samples, exactFrom999, batch).mse;
  assert.throws(() => trajectoryError(ddim.samples, exactFrom999, batch, 2, { sample: start, reference: 999 }), TrajectoryStartError);
  // Measured: 0.016924 against an ODE from t = 999 vs 0.016947 from the run's own start. On this Gaussian both
  // marginals are nearly N(0, I), so the mismatch is small here; the figure is still not the ODE error.
  assert.ok(Math.abs(confounded - discretisation) > 1e-5, `confounded ${confounded} vs discretisation ${discretisation}`);

  // A 200-step DPM-Solver++ 2M reference on a trailing grid moved to start at 900 lands on the exact ODE end point.
  const refPlan = planSample({ schedule, solver: 'dpmpp_2m', nfe: 200, timesteps: { spacing: 'trailing', family: 'dpm' } });
  const aligned = alignReferenceGrid(refPlan.timesteps, start);
  const ref = await sample({
    model,
    schedule,
    solver: 'dpmpp_2m',
    nfe: 200,
    batch,
    initialNoise: noise,
    precision: 'float64',
    timesteps: { timesteps: aligned },
  });
  assert.equal(ref.timesteps[0], 900);
  assert.equal(ref.calls, 200);
  const refErr = trajectoryError(ref.samples, exactFromStart, batch).mse;
  assert.ok(refErr < 1e-8, `aligned reference vs exact ODE: ${refErr}`);
  // DDIM-10 measured against the aligned reference equals its exact ODE error (to the reference's own error).
  const vsRef = trajectoryError(ddim.samples, ref.samples, batch, 2, { sample: start, reference: ref.timesteps[0]! }).mse;
  assert.ok(Math.abs(vsRef - discretisation) / discretisation < 1e-3, `${vsRef} vs ${discretisation}`);
});
