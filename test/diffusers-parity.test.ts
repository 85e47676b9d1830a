/**
 * diffusers parity: every run of `fixtures/diffusers-parity/sd15-closed-form.json` (18 scheduler
 * variants × 6 step counts, diffusers 58eb52c, closed-form model; see the fixture README),
 * reproduced from its `scheduler_config` through the public loader `fromSchedulerConfig` → its
 * `sampleOptions(N)` → `sample()`:
 * - the model is called exactly as often, at exactly the recorded times;
 * - the final sample and every recorded intermediate state lie within 1e-10 of the float64-promoted
 *   diffusers run (`f64`) and within 1e-5 of diffusers as shipped (`stock`, float32 tables).
 * Where diffusers' grid is float32 (Euler-family `linspace`), the stock comparison runs on that grid
 * (our default, `timeDtype: 'float32'`) and the f64 one on its float64 twin (`timeDtype: 'float64'`).
 * Stochastic runs (DDPM, Euler ancestral) replay the recorded `step_noise` through `sample({ noise })`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadParityData, maxDiff, pairIntermediates, runOurs, type OurRun, type ParityRun, type ParityVariant } from './helpers/diffusers-parity.js';

const data = loadParityData();

/** Runs whose last diffusers step is NaN by a diffusers bug (UniPC bh1 into σ = 0, B(h) = −∞ · 0). */
const NAN_FINAL = new Set(['unipc_bh1']);

function check(run: ParityRun, ref: ParityVariant, ours: OurRun, tol: number, label: string): void {
  const name = `${run.scheduler} N=${run.num_inference_steps} vs ${label}`;
  assert.equal(ours.calls, ref.model_calls, `${name}: model calls`);
  assert.deepEqual(ours.times, ref.model_call_timesteps, `${name}: model-call times`);
  const pairs = pairIntermediates(ref, ours.steps);
  let compared = 0;
  for (const { ref: m, ours: o } of pairs) {
    if (m.sample_vp === null || m.sample_vp.some((v) => v === null)) {
      // diffusers' NaN: our state there is finite, the σ → 0 limit x̂0 of the last call.
      assert.ok(NAN_FINAL.has(run.scheduler), `${name}: unexpected non-finite reference at step call ${m.step_call}`);
      continue;
    }
    assert.ok(o, `${name}: no state of ours at σ = ${m.landing_sigma} (step call ${m.step_call})`);
    const d = maxDiff(o.x, m.sample_vp);
    assert.ok(d <= tol, `${name}: step call ${m.step_call} (t=${m.timestep} → σ=${m.landing_sigma}) differs by ${d.toExponential(2)} > ${tol}`);
    compared++;
  }
  assert.ok(compared >= Math.min(ref.intermediates.length, run.num_inference_steps) / 2, `${name}: only ${compared} intermediates compared`);
  if (NAN_FINAL.has(run.scheduler)) {
    assert.ok(ref.final_sample.every((v) => v === null), `${name}: the reference final sample was expected to be NaN`);
    assert.ok(ours.final.every(Number.isFinite), `${name}: our final sample must be finite`);
    const last = ours.steps.at(-1)!;
    assert.ok(last.x0, `${name}: the last step reports x̂0`);
    assert.ok(maxDiff(ours.final, [...last.x0!]) <= 1e-12, `${name}: the final sample is the x̂0 limit`);
    return;
  }
  const d = maxDiff(ours.final, ref.final_sample);
  assert.ok(d <= tol, `${name}: final sample differs by ${d.toExponential(2)} > ${tol}`);
}

describe('diffusers parity: every fixture run from its scheduler_config', () => {
  for (const run of data.runs) {
    it(`${run.scheduler} (${run.class}) N=${run.num_inference_steps}`, async () => {
      const stockGrid = run.stock.model_call_timesteps.some((t, i) => t !== run.f64.model_call_timesteps[i]);
      const ours = await runOurs(data, run);
      check(run, run.stock, ours, 1e-5, 'stock');
      const ours64 = stockGrid ? await runOurs(data, run, {}, { timeDtype: 'float64' }) : ours;
      check(run, run.f64, ours64, 1e-10, 'f64');
    });
  }
});
