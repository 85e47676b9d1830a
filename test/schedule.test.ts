/**
 * Noise schedules (discrete and continuous) and the diffusers scheduler_config.json loader.
 * Reference numbers come from numpy in float64; the snippets that produced them are quoted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLEAN_TIME, continuousVpSchedule, discreteSchedule, fromSchedulerConfig, timeOfVeSigma, veSigma } from '../src/core/schedule/index.js';
import type { DiscreteSchedule } from '../src/core/schedule/index.js';
import { buildTimesteps } from '../src/core/timesteps.js';

function close(actual: number, expected: number, rel = 1e-12, label = ''): void {
  const tol = rel * Math.max(1e-300, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${label} expected ${expected}, got ${actual} (|Δ| = ${Math.abs(actual - expected)})`);
}

// numpy:
//   lin = np.linspace(1e-4, 0.02, 1000); sl = np.linspace(0.00085**0.5, 0.012**0.5, 1000)**2
//   f = lambda t: math.cos((t + 0.008)/1.008*math.pi/2)**2
//   cs = np.array([min(1 - f((i+1)/1000)/f(i/1000), 0.999) for i in range(1000)])
//   np.cumprod(1 - b)[[0, 1, 499, 998, 999]]
const ALPHAS_CUMPROD: Record<string, readonly number[]> = {
  linear: [0.9999, 0.9997800920720721, 0.07858724288177824, 4.118193638138445e-5, 4.035829765375676e-5],
  scaled_linear: [0.99915, 0.9982960278384514, 0.27766965045646763, 0.004716698899875748, 0.004660098513077238],
  squaredcos_cap_v2: [0.999958715775178, 0.9999125759273678, 0.4938435904406382, 2.4287669070348544e-6, 2.4287669070348567e-9],
};
const INDICES = [0, 1, 499, 998, 999];

test('alphas_cumprod of linear / scaled_linear / squaredcos_cap_v2 match numpy', () => {
  const opts = {
    linear: { betaSchedule: 'linear' as const },
    scaled_linear: { betaSchedule: 'scaled_linear' as const, betaStart: 0.00085, betaEnd: 0.012 },
    squaredcos_cap_v2: { betaSchedule: 'squaredcos_cap_v2' as const },
  };
  for (const [name, expected] of Object.entries(ALPHAS_CUMPROD)) {
    const s = discreteSchedule(opts[name as keyof typeof opts]);
    INDICES.forEach((n, i) => {
      close(s.alphasCumprod[n]!, expected[i]!, 1e-10, `${name} ᾱ[${n}]`);
      close(s.alpha(n) ** 2, expected[i]!, 1e-10, `${name} α(${n})²`);
    });
  }
});

test('zero-terminal-SNR rescale: first ᾱ unchanged, last stored as 2⁻²⁴, middle as numpy', () => {
  // numpy (Lin et al. Alg. 1 on the scaled_linear betas):
  //   s = np.sqrt(np.cumprod(1 - sl)); s = (s - s[-1])*s[0]/(s[0] - s[-1]); a = s**2
  //   betas = 1 - np.concatenate([a[:1], a[1:]/a[:-1]]); np.cumprod(1 - betas)[[0, 1, 500, 998]]
  const s = discreteSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, rescaleBetasZeroSnr: true });
  close(s.alphasCumprod[0]!, 0.99915, 1e-12, 'first');
  close(s.alphasCumprod[1]!, 0.9982334461401825, 1e-10, 'ᾱ[1]');
  close(s.alphasCumprod[500]!, 0.24101878275731575, 1e-10, 'ᾱ[500]');
  close(s.alphasCumprod[998]!, 1.967888056621292e-7, 1e-8, 'ᾱ[998]');
  assert.equal(s.alphasCumprod[999], 2 ** -24);
  assert.ok(Number.isFinite(veSigma(s, 999)));
});

test('discrete λ and its inverse round-trip at integer and fractional times', () => {
  const s = discreteSchedule({});
  for (const t of [0, 0.25, 1, 17.5, 333, 500.75, 998.5, 999]) {
    close(s.timeOfLambda(s.lambda(t)), t, 1e-9, `t=${t}`);
    close(s.alpha(t) ** 2 + s.sigma(t) ** 2, 1, 1e-14, `α²+σ² at ${t}`);
    close(timeOfVeSigma(s, veSigma(s, t)), t, 1e-9, `VE σ at ${t}`);
  }
  // Fractional λ is the linear interpolation of the integer λs.
  close(s.lambda(10.25), 0.75 * s.lambda(10) + 0.25 * s.lambda(11), 1e-14);
  assert.equal(s.lambda(CLEAN_TIME), Infinity);
  assert.equal(s.alpha(CLEAN_TIME), 1);
  assert.equal(s.sigma(CLEAN_TIME), 0);
  assert.equal(s.timeOfLambda(Infinity), CLEAN_TIME);
  assert.throws(() => s.alpha(1000), /outside the schedule/);
  assert.throws(() => s.timeOfLambda(s.lambda(999) - 1), /outside the schedule's range/);
});

test('continuous VP schedule: α, σ, λ match the closed form; inverse round-trips', () => {
  // python: la = -0.25*t*t*(20-0.1) - 0.5*t*0.1; a = exp(la); s = sqrt(1 - a*a); lam = log(a) - log(s)
  const s = continuousVpSchedule();
  const ref: [number, number, number, number][] = [
    [1e-3, 0.9999450265110976, 0.010485416335095232, 4.557714932729866],
    [0.5, 0.2811828807967524, 0.9596542020680363, -1.2275677344107871],
    [1, 0.006571586494929619, 0.9999784068923386, -5.024978406659204],
  ];
  for (const [t, a, sg, l] of ref) {
    close(s.alpha(t), a, 1e-13, `α(${t})`);
    close(s.sigma(t), sg, 1e-11, `σ(${t})`);
    close(s.lambda(t), l, 1e-11, `λ(${t})`);
    close(s.timeOfLambda(l), t, 1e-9, `t(λ(${t}))`);
  }
  assert.equal(s.tMax, 1);
  assert.equal(s.tMin, 1e-3);
  close(s.modelTime(0.5), 499.5, 1e-15);
  assert.throws(() => s.alpha(0), /must lie in/);
});

// ----- scheduler_config.json --------------------------------------------------------------------

/** runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json */
const SD15_PNDM = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

test('config: SD 1.5 PNDM → plms, scaled_linear, leading + offset 1, terminal at t = 0', () => {
  const c = fromSchedulerConfig(SD15_PNDM);
  assert.equal(c.solver, 'plms');
  assert.equal(c.predictionType, 'epsilon');
  assert.equal(c.spacing, 'leading');
  assert.equal(c.family, 'ddim');
  assert.equal(c.stepsOffset, 1);
  assert.equal(c.terminal, 'sigma_min');
  assert.equal(c.clipSample, false);
  assert.equal(c.diffusersVersion, '0.6.0');
  assert.deepEqual(c.unknownFields, {});
  assert.deepEqual(c.notes, []);
  close((c.schedule as DiscreteSchedule).alphasCumprod[999]!, 0.004660098513077238, 1e-10);
  // diffusers PNDM leading, 10 steps: (arange(10)·100)[::-1] + 1, then ᾱ_0 at the end.
  assert.deepEqual(buildTimesteps(c.schedule, { ...c.timestepOptions, steps: 10 }), [901, 801, 701, 601, 501, 401, 301, 201, 101, 1, 0]);
});

test('config: DDIM with class defaults (clip_sample, set_alpha_to_one) and unknown fields kept', () => {
  const c = fromSchedulerConfig({
    _class_name: 'DDIMScheduler',
    _diffusers_version: '0.8.0',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    num_train_timesteps: 1000,
    prediction_type: 'v_prediction',
    timestep_spacing: 'trailing',
    rescale_betas_zero_snr: true,
    my_custom_field: [1, 2],
  });
  assert.equal(c.solver, 'ddim');
  // Deliberate default (issue 14): diffusers' t → t − ⌊T/N⌋ stepping; the grid-aligned DDIM is stepping 'grid'.
  assert.deepEqual(c.solverOptions, { eta: 0, stepping: 'ratio' });
  assert.equal(c.predictionType, 'v_prediction');
  assert.equal(c.clipSample, true); // DDIMScheduler's default
  assert.equal(c.clipSampleRange, 1);
  assert.equal(c.terminal, 'zero'); // set_alpha_to_one defaults to true
  assert.equal(c.rescaleBetasZeroSnr, true);
  assert.equal((c.schedule as DiscreteSchedule).alphasCumprod[999], 2 ** -24);
  assert.equal(c.timestepSpacing, 'trailing');
  assert.deepEqual(c.unknownFields, { my_custom_field: [1, 2] });
  assert.deepEqual(buildTimesteps(c.schedule, { ...c.timestepOptions, steps: 4 }), [999, 749, 499, 249, CLEAN_TIME]);
});

test('config: DPMSolverMultistep with Karras sigmas and thresholding', () => {
  const c = fromSchedulerConfig({
    _class_name: 'DPMSolverMultistepScheduler',
    _diffusers_version: '0.21.0',
    algorithm_type: 'dpmsolver++',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    dynamic_thresholding_ratio: 0.995,
    euler_at_final: false,
    lambda_min_clipped: null,
    lower_order_final: true,
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    sample_max_value: 1.5,
    solver_order: 2,
    solver_type: 'midpoint',
    steps_offset: 1,
    thresholding: true,
    timestep_spacing: 'linspace',
    trained_betas: null,
    use_karras_sigmas: true,
    variance_type: null,
  });
  assert.equal(c.solver, 'dpmpp_2m');
  assert.deepEqual(c.solverOptions, { solverType: 'midpoint', lowerOrderFinal: true, eulerAtFinal: false });
  assert.equal(c.spacing, 'karras');
  assert.equal(c.karras, true);
  assert.equal(c.family, 'dpm');
  assert.equal(c.terminal, 'zero');
  assert.deepEqual(c.thresholding, { ratio: 0.995, maxValue: 1.5 });
  const grid = buildTimesteps(c.schedule, { ...c.timestepOptions, steps: 8 });
  assert.equal(grid.length, 9);
  assert.equal(grid[0], 999);
  assert.equal(grid[7], 0);
  assert.equal(grid[8], CLEAN_TIME);
  // σ_max / σ_min of SD: sqrt((1−ᾱ)/ᾱ) at 999 and 0 (numpy: 14.614641229333639, 0.029167158151720367).
  close(veSigma(c.schedule, grid[0]!), 14.614641229333639, 1e-9);
  close(veSigma(c.schedule, grid[7]!), 0.029167158151720367, 1e-9);

  const order3 = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', solver_order: 3, final_sigmas_type: 'sigma_min' });
  assert.equal(order3.solver, 'dpmpp_3m');
  assert.equal(order3.terminal, 'sigma_min');
  const sde = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'sde-dpmsolver++' });
  assert.equal(sde.solver, 'dpmpp_2m_sde');
  const noisePred = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'dpmsolver' });
  assert.equal(noisePred.solver, 'dpmpp_2m');
  assert.equal(noisePred.notes.length, 1);
  const single = fromSchedulerConfig({ _class_name: 'DPMSolverSinglestepScheduler', algorithm_type: 'dpmsolver', solver_order: 3 });
  assert.equal(single.solver, 'dpm_solver_3');
  assert.equal(fromSchedulerConfig({ _class_name: 'DPMSolverSinglestepScheduler' }).solver, 'dpmpp_2s');
});

test('config: UniPC with variant, order and disable_corrector', () => {
  const c = fromSchedulerConfig({
    _class_name: 'UniPCMultistepScheduler',
    _diffusers_version: '0.19.0',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    disable_corrector: [0],
    lower_order_final: true,
    num_train_timesteps: 1000,
    predict_x0: true,
    prediction_type: 'epsilon',
    solver_order: 3,
    solver_type: 'bh1',
    timestep_spacing: 'linspace',
  });
  assert.equal(c.solver, 'unipc');
  assert.deepEqual(c.solverOptions, { variant: 'bh1', order: 3, disableCorrector: [0], predictX0: true, lowerOrderFinal: true, spanLimit: false });
  assert.deepEqual(buildTimesteps(c.schedule, { ...c.timestepOptions, steps: 6 }), [999, 832, 666, 500, 333, 166, CLEAN_TIME]);
});

test('config: class names map to the registry; bad input names the field', () => {
  const names: Record<string, string> = {
    DDPMScheduler: 'ddpm',
    EulerDiscreteScheduler: 'euler',
    EulerAncestralDiscreteScheduler: 'euler_a',
    HeunDiscreteScheduler: 'heun',
    LMSDiscreteScheduler: 'lms',
  };
  for (const [cls, solver] of Object.entries(names)) assert.equal(fromSchedulerConfig({ _class_name: cls }).solver, solver);
  assert.equal(fromSchedulerConfig({ _class_name: 'EulerDiscreteScheduler' }).family, 'euler');
  assert.throws(() => fromSchedulerConfig({ _class_name: 'KarrasVeScheduler' }), /_class_name.*DDIMScheduler/);
  assert.throws(() => fromSchedulerConfig({}), /"_class_name" is missing/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', beta_start: '0.1' }), /"beta_start" must be a finite number/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', clip_sample: 1 }), /"clip_sample" must be true or false/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', timestep_spacing: 'even' }), /"timestep_spacing" must be one of/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', prediction_type: 'flow' }), /"prediction_type"/);
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler', steps_offset: 1.5 }), /"steps_offset" must be an integer/);
  assert.throws(() => fromSchedulerConfig([1]), /JSON object/);
});

test('fractional times: sigmaInterpolation linear (diffusers Euler family) and roundModelTimes (DPM family on σ grids)', () => {
  const sd = { betaSchedule: 'scaled_linear' as const, betaStart: 0.00085, betaEnd: 0.012 };
  const log = discreteSchedule(sd);
  const lin = discreteSchedule({ ...sd, sigmaInterpolation: 'linear' });
  // Integer times are the table in both; between them σ/α is linear in t (numpy.interp of the sigmas).
  assert.equal(veSigma(lin, 799), veSigma(log, 799));
  const s799 = veSigma(log, 799);
  const s800 = veSigma(log, 800);
  close(veSigma(lin, 799.2), 0.8 * s799 + 0.2 * s800, 1e-13);
  close(veSigma(lin, 799.2) - veSigma(log, 799.2), 8.487e-6, 1e-3);
  close(veSigma(lin, 0.5) - veSigma(log, 0.5), 5.273e-4, 1e-3);
  close(lin.timeOfLambda(lin.lambda(0.5)), 0.5, 1e-12);
  close(lin.timeOfLambda(lin.lambda(998.5)), 998.5, 1e-12);
  assert.throws(() => discreteSchedule({ ...sd, sigmaInterpolation: 'cubic' as never }), /sigmaInterpolation must be 'log' or 'linear'/);
  const rounded = discreteSchedule({ ...sd, roundModelTimes: true });
  assert.deepEqual([686.5, 687.5, 3.2, CLEAN_TIME].map(rounded.modelTime), [686, 688, 3, CLEAN_TIME]); // half to even
  assert.equal(rounded.alpha(686.5), log.alpha(686.5)); // the solver still steps at t
  // The loader picks them per class: Euler family on linspace grids → linear; DPM family on Karras → rounded.
  const euler = fromSchedulerConfig({
    _class_name: 'EulerDiscreteScheduler',
    ...{ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 },
  });
  close(veSigma(euler.schedule, 799.2), veSigma(lin, 799.2), 1e-15);
  assert.equal(euler.solverOptions['noiseStart'], 'sigma_max');
  const eulerLeading = fromSchedulerConfig({ _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'leading' });
  assert.equal(eulerLeading.solverOptions['noiseStart'], undefined); // init_noise_sigma √(σ_max² + 1): the VP start z
  const eulerKarras = fromSchedulerConfig({ _class_name: 'EulerDiscreteScheduler', use_karras_sigmas: true });
  assert.equal(eulerKarras.schedule.modelTime(686.5), 686.5);
  const dpmKarras = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', use_karras_sigmas: true });
  assert.equal(dpmKarras.schedule.modelTime(686.5), 686);
  assert.equal(fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler' }).schedule.modelTime(686.5), 686.5);
});

test('config: sampleOptions(N) counts N as diffusers does; DEIS, LCM, TCD and 3M load', () => {
  const sd = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
  const single = fromSchedulerConfig({ _class_name: 'DPMSolverSinglestepScheduler', solver_order: 3, ...sd }).sampleOptions(10);
  assert.equal(single.solver, 'dpmpp_3s');
  assert.deepEqual(single.solverOptions, { lowerOrderFinal: true, plan: 'diffusers', solverType: 'midpoint' });
  assert.equal(single.steps, 10);
  const own = fromSchedulerConfig({ _class_name: 'DPMSolverSinglestepScheduler', algorithm_type: 'dpmsolver', ...sd }).sampleOptions(10);
  assert.equal(own.nfe, 10); // DPM-Solver's own plan spends a budget of N calls
  const ddim = fromSchedulerConfig({ _class_name: 'DDIMScheduler', timestep_spacing: 'linspace', set_alpha_to_one: false, ...sd }).sampleOptions(4);
  assert.deepEqual(buildTimesteps(ddim.schedule, { ...ddim.timesteps, steps: 4 }), [999, 666, 333, 0, 0]);
  const deis = fromSchedulerConfig({ _class_name: 'DEISMultistepScheduler', solver_order: 3, ...sd });
  assert.equal(deis.solver, 'deis');
  assert.deepEqual(deis.solverOptions, { order: 3, lowerOrderFinal: true });
  assert.equal(deis.terminal, 'sigma_min');
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DEISMultistepScheduler', solver_type: 'bh2' }), /"solver_type" must be one of "logrho"/);
  const lcm = fromSchedulerConfig({ _class_name: 'LCMScheduler', original_inference_steps: 25, ...sd }).sampleOptions(4);
  assert.deepEqual(buildTimesteps(lcm.schedule, { ...lcm.timesteps, steps: 4 }), [999, 759, 519, 279, CLEAN_TIME]); // k = 40: 999 − 40·⌊i·25/4⌋
  const tcd = fromSchedulerConfig({ _class_name: 'TCDScheduler', ...sd }).sampleOptions(2);
  assert.deepEqual(buildTimesteps(tcd.schedule, { ...tcd.timesteps, steps: 2 }), [999, 499, 0]);
  const m3 = fromSchedulerConfig({ _class_name: 'DPMSolverMultistepScheduler', solver_order: 3 });
  assert.equal(m3.solverOptions['d2Weight'], 'diffusers');
  assert.throws(() => fromSchedulerConfig({ _class_name: 'DDIMScheduler' }).sampleOptions(0), /numInferenceSteps must be an integer ≥ 1/);
});

test('config: KDPM2 classes load as the k-diffusion DPM2 samplers, with a note on the midpoint time', () => {
  const c = fromSchedulerConfig({ _class_name: 'KDPM2DiscreteScheduler' });
  assert.equal(c.solver, 'dpm_2');
  assert.deepEqual(c.solverOptions, { noiseStart: 'sigma_max' });
  assert.equal(c.notes.length, 1);
  assert.match(c.notes[0]!, /midpoint/);
  assert.equal(fromSchedulerConfig({ _class_name: 'KDPM2AncestralDiscreteScheduler' }).solver, 'dpm_2_a');
});
