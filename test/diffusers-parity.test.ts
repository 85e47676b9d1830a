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
import {
  loadParityData,
  maxDiff,
  pairIntermediates,
  parityModel,
  runOurs,
  type OurRun,
  type ParityRun,
  type ParityVariant,
} from './helpers/diffusers-parity.js';
import { planSample, sample } from '../src/core/sample.js';
import { fromSchedulerConfig } from '../src/core/schedule/config.js';
import { measureOrder, smoothLogSnrGrid } from './helpers/convergence.js';
import type { ConfigSampleOptions } from '../src/core/schedule/config.js';
import { continuousVpSchedule } from '../src/core/schedule/continuous.js';
import { discreteSchedule } from '../src/core/schedule/discrete.js';
import { dpmpp3mSpec } from '../src/core/solvers/dpmpp-multistep.js';

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
    assert.ok(
      ref.final_sample.every((v) => v === null),
      `${name}: the reference final sample was expected to be NaN`,
    );
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

/**
 * rediffuse's paper-faithful choices, kept as named options: each one run on the same fixture runs,
 * with the measured difference of its final sample from diffusers (f64) documented in
 * docs/diffusers-parity.md and asserted here as a range per step count (0 where the choice cannot
 * matter: integer times, or grids whose spacing is ⌊T/N⌋).
 */
const sd15 = { betaSchedule: 'scaled_linear' as const, betaStart: 0.00085, betaEnd: 0.012 };
type Case = {
  scheduler: string;
  option: string;
  solverOptions?: Record<string, unknown>;
  adjust?: (o: ConfigSampleOptions) => ConfigSampleOptions;
  /** Per step count N: [lower, upper] bound of max |ours − diffusers f64| over the final sample. */
  expected: Record<number, [number, number]>;
  /** The model-call times differ from diffusers'. */
  timesDiffer?: boolean;
};
const SAME: [number, number] = [0, 1e-13];
const logSigma = (o: ConfigSampleOptions): ConfigSampleOptions => ({ ...o, schedule: discreteSchedule(sd15) });
const CASES: Case[] = [
  {
    scheduler: 'ddim_trailing',
    option: "stepping: 'grid'",
    solverOptions: { stepping: 'grid' },
    expected: { 4: SAME, 6: [1e-3, 3e-3], 10: SAME, 20: SAME, 25: SAME, 50: SAME },
  },
  {
    scheduler: 'ddim_linspace',
    option: "stepping: 'grid'",
    solverOptions: { stepping: 'grid' },
    expected: { 4: [0.4, 0.8], 6: [0.2, 0.5], 10: [0.1, 0.25], 20: [0.04, 0.1], 25: [0.03, 0.07], 50: [0.01, 0.03] },
  },
  ...['euler', 'euler_trailing', 'heun', 'lms'].map((scheduler) => ({
    scheduler,
    option: "noiseStart: 'unit'",
    solverOptions: { noiseStart: 'unit' },
    expected: { 4: [5e-4, 5e-3], 6: [5e-4, 5e-3], 10: [5e-4, 5e-3], 20: [5e-4, 5e-3], 25: [5e-4, 5e-3], 50: [5e-4, 5e-3] } as Case['expected'],
  })),
  {
    scheduler: 'euler_a',
    option: "noiseStart: 'unit'",
    solverOptions: { noiseStart: 'unit' },
    expected: { 4: [5e-5, 1.2e-4], 6: [5e-5, 1.2e-4], 10: [5e-5, 1.2e-4], 20: [5e-5, 1.2e-4], 25: [5e-5, 1.2e-4], 50: [5e-5, 1.2e-4] },
  },
  ...['euler', 'heun', 'lms'].map((scheduler) => ({
    scheduler,
    option: "sigmaInterpolation: 'log' (schedule)",
    adjust: logSigma,
    // Integer grids (N = 4, 10) are untouched; fractional ones move by 3e-7…1e-5.
    expected: { 4: SAME, 6: [1e-7, 2e-6], 10: SAME, 20: [3e-7, 1e-5], 25: [3e-7, 1e-5], 50: [1e-6, 2e-5] } as Case['expected'],
  })),
  {
    scheduler: 'dpmpp_2m_karras',
    option: 'roundModelTimes: false (schedule)',
    adjust: logSigma,
    timesDiffer: true,
    expected: { 4: [1e-4, 2e-3], 6: [1e-4, 2e-3], 10: [1e-4, 2e-3], 20: [1e-4, 2e-3], 25: [1e-4, 2e-3], 50: [1e-4, 2e-3] },
  },
  {
    scheduler: 'dpmpp_3m',
    option: "d2Weight: 'taylor'",
    solverOptions: { d2Weight: 'taylor' },
    // N = 4 never reaches a third-order step (warm-up 1, 2, then lower-order final steps).
    expected: { 4: SAME, 6: [3e-4, 3e-3], 10: [3e-4, 3e-3], 20: [3e-4, 3e-3], 25: [3e-4, 3e-3], 50: [3e-4, 3e-3] },
  },
  ...['dpmpp_2s', 'dpmpp_3s'].map((scheduler) => ({
    scheduler,
    option: "plan: 'dpm-solver' (same calls)",
    solverOptions: { plan: 'dpm-solver' },
    adjust: (o: ConfigSampleOptions): ConfigSampleOptions => {
      const { steps, ...rest } = o;
      return { ...rest, nfe: steps! };
    },
    timesDiffer: true,
    expected: { 4: [0.03, 0.4], 6: [0.03, 0.4], 10: [0.03, 0.4], 20: [0.03, 0.4], 25: [0.03, 0.4], 50: [0.03, 0.4] } as Case['expected'],
  })),
  {
    scheduler: 'ddpm',
    option: 'varianceFloor: 0',
    solverOptions: { varianceFloor: 0 },
    // diffusers' last step adds √(1e-20)·z = 1e-10·z.
    expected: { 4: [1e-10, 4e-10], 6: [1e-10, 4e-10], 10: [1e-10, 4e-10], 20: [1e-10, 4e-10], 25: [1e-10, 4e-10], 50: [1e-10, 4e-10] },
  },
];

describe('diffusers parity: the paper-faithful named options differ as documented', () => {
  for (const c of CASES) {
    it(`${c.scheduler}: ${c.option}`, async () => {
      for (const run of data.runs.filter((r) => r.scheduler === c.scheduler)) {
        const n = run.num_inference_steps;
        const ours = await runOurs(data, run, c.solverOptions ?? {}, { timeDtype: 'float64' }, c.adjust);
        const d = maxDiff(ours.final, run.f64.final_sample);
        const [lo, hi] = c.expected[n]!;
        assert.ok(
          d >= lo && d <= hi,
          `${c.scheduler} N=${n} ${c.option}: final differs from diffusers by ${d.toExponential(2)}, documented [${lo}, ${hi}]`,
        );
        const sameTimes = ours.times.length === run.f64.model_call_timesteps.length && ours.times.every((t, i) => t === run.f64.model_call_timesteps[i]);
        assert.equal(sameTimes, !c.timesDiffer, `${c.scheduler} N=${n}: model-call times ${c.timesDiffer ? 'should' : 'should not'} differ`);
      }
    });
  }

  it('repeatedTerminal: false refuses the DDIM linspace grid (t = 0 twice) that diffusers runs', async () => {
    const run = data.runs.find((r) => r.scheduler === 'ddim_linspace' && r.num_inference_steps === 10)!;
    await assert.rejects(runOurs(data, run, {}, { repeatedTerminal: false }), /not strictly decreasing at position 10 \(0 then 0\)/);
    // And a solver whose update is not the identity on a zero-length interval refuses it by name.
    await assert.rejects(
      runOurs(data, run, {}, {}, (o) => ({ ...o, solver: 'dpmpp_2m', solverOptions: {} })),
      /zero-length last interval.*only ddim and plms/,
    );
  });

  it("d2Weight: 'taylor' converges at order 3, diffusers' weight at order ≈ 2 (smooth log-SNR grid, VP)", async () => {
    const vp = continuousVpSchedule();
    const order = async (d2Weight: 'taylor' | 'diffusers') =>
      (
        await measureOrder(dpmpp3mSpec.create({ lowerOrderFinal: false, d2Weight }), (m) => smoothLogSnrGrid(vp, m), [24, 32, 48, 64, 96], {
          schedule: vp,
        })
      ).order;
    const taylor = await order('taylor');
    const diffusers = await order('diffusers');
    assert.ok(taylor > 2.8 && taylor < 3.5, `taylor order ${taylor}`);
    assert.ok(diffusers > 1.7 && diffusers < 2.5, `diffusers order ${diffusers}`);
  });

  it('UniPC bh1 into σ = 0: diffusers returns NaN (B(h) = −∞ times a zero sum), we return the finite limit x̂0', async () => {
    // bh1's B(h) = −h is −∞ on the step into the clean point (h = λ_t − λ_s = +∞); with the
    // lower-order final step the predictor's correction sum is empty (0), and −∞·0 = NaN. The limit
    // of the update as h → ∞ is x_t = α_t·x̂0 = x̂0: that is what we return (asserted in check()).
    for (const run of data.runs.filter((r) => r.scheduler === 'unipc_bh1')) {
      assert.ok(run.f64.final_sample.every((v) => v === null));
      const ours = await runOurs(data, run);
      assert.ok(ours.final.every(Number.isFinite));
      // Every earlier step matches diffusers (the main test); the bh2 run, whose B(h) = e^{−h} − 1 → −1
      // stays finite, lands on x̂0 of its own last call the same way.
      const bh2 = data.runs.find((r) => r.scheduler === 'unipc_bh2' && r.num_inference_steps === run.num_inference_steps)!;
      const oursBh2 = await runOurs(data, bh2);
      assert.ok(maxDiff(oursBh2.final, [...oursBh2.steps.at(-1)!.x0!]) <= 1e-12);
    }
  });
});

describe('sample({ noise }): an injected noise stream', () => {
  it('replays draw i as noise(i), and a draw of the wrong size is refused by name', async () => {
    const run = data.runs.find((r) => r.scheduler === 'ddpm' && r.num_inference_steps === 4)!;
    const stream = run.f64.step_noise!;
    const config = fromSchedulerConfig(run.scheduler_config);
    const base = {
      model: parityModel(data),
      ...config.sampleOptions(4),
      batch: 2,
      initialNoise: Float64Array.from(data.initial_noise.values.flat()),
      precision: 'float64' as const,
    };
    const asked: number[] = [];
    const replay = await sample({ ...base, noise: (i) => (asked.push(i), Float64Array.from(stream[i]!)) });
    assert.deepEqual(asked, [0, 1, 2, 3]);
    assert.ok(maxDiff(replay.samples, run.f64.final_sample) <= 1e-10);
    const seeded = await sample({ ...base, seed: 1 });
    assert.ok(maxDiff(seeded.samples, run.f64.final_sample) > 1e-2, 'the seeded stream is another chain');
    await assert.rejects(sample({ ...base, noise: () => new Float64Array(3) }), /injected noise draw 0 has 3 values, expected batch 2 × 16/);
    await assert.rejects(sample({ ...base, noise: 5 as never }), /options.noise must be a function/);
  });
});

describe("ddim stepping 'ratio' guards", () => {
  it('refuses fractional grids and continuous schedules, naming the fix', async () => {
    const sd = discreteSchedule(sd15);
    assert.throws(
      () => planSample({ schedule: sd, solver: 'ddim', solverOptions: { stepping: 'ratio' }, steps: 6, timesteps: { spacing: 'karras' } }),
      /stepping 'ratio' .* needs integer times of a discrete schedule, got timesteps\[1\] = .*: use stepping 'grid'/,
    );
    assert.throws(
      () =>
        planSample({
          schedule: continuousVpSchedule(),
          solver: 'ddim',
          solverOptions: { stepping: 'ratio' },
          steps: 6,
          timesteps: { spacing: 'time_uniform' },
        }),
      /got a continuous schedule/,
    );
    const p = planSample({
      schedule: sd,
      solver: 'ddim',
      solverOptions: { stepping: 'ratio' },
      steps: 10,
      timesteps: { spacing: 'leading', family: 'ddim', stepsOffset: 1 },
    });
    assert.equal(p.calls, 10);
  });
});
