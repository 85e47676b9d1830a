/**
 * UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
 * Diffusion Models", Alg. 2/3 and §3.2, B(h) variants of App. C), registry name `unipc`.
 *
 * Work in the model's data prediction m = x̂0 (default; `predictX0: false` uses m = ε̂). Step
 * s0 → t, h = λ_t − λ_{s0}, ĥ = −h for data prediction (ĥ = +h for noise prediction), earlier
 * points s_k with r_k = (λ_{s_k} − λ_{s0})/h < 0 and D_k = (m_k − m0)/r_k:
 *   UniP-p (predictor, p − 1 earlier points):
 *     data:  x_t = (σ_t/σ_{s0})·x − α_t·(e^ĥ − 1)·m0 − α_t·B(h)·Σ_{k<p} ρ_k·D_k
 *     noise: x_t = (α_t/α_{s0})·x − σ_t·(e^ĥ − 1)·m0 − σ_t·B(h)·Σ_{k<p} ρ_k·D_k
 *   UniC-p (corrector, after the model has been called at the predicted x_t, giving m_t):
 *     the same with Σ_{k<p} ρ^c_k·D_k + ρ^c_p·(m_t − m0), applied to the *previous* state x,
 *     raising the order to p + 1 at no extra call (m_t is the next step's model output).
 * ρ solves the order conditions Σ_k ρ_k·r_k^{j−1} = j!·ĥ·φ_{j+1}(ĥ)/B(h), j = 1…n (n = p − 1 for
 * UniP with r_1…r_{p−1}; n = p for UniC with r_p = 1), with B(h) = ĥ ('bh1') or e^ĥ − 1 ('bh2').
 * As in the reference implementation, UniP-2 uses ρ = 1/2 and UniC-1 uses ρ^c = 1/2 (the
 * h → 0 limit of the one-equation system).
 *
 * The corrector runs after every step except the last (no model output follows it) and except the
 * steps listed in `disableCorrector`. Orders warm up (1, 2, …); with `lowerOrderFinal` step i uses at
 * most order `steps − i` (diffusers' UniPC rule); a step into σ = 0 is first order, where the data
 * form's limit is x_t = α_t·m0 and the noise form uses σ_t·(e^h − 1) → α_t·σ_{s0}/α_{s0}. A
 * third-order step whose stencil spans more than 2 in λ (λ_t − λ_{s2} > 2) is taken at order 2, its
 * corrector then being UniC-2: see `MAX_THIRD_ORDER_SPAN` in `exponential-integrator.ts`.
 * @packageDocumentation
 */
import { defineSolver } from './define-solver.js';
import { lambdaStep, noiseStepCoefficient, phi, thirdOrderStencilFits, type LambdaStep } from './exponential-integrator.js';
import { linearCombination, type NumArray } from '../tensor.js';
import type { SolverSpec } from './types.js';

/** Options of {@link unipcSpec}. */
export interface UniPcOptions {
  /** B(h): 'bh1' (B = ĥ) or 'bh2' (B = e^ĥ − 1, default, as diffusers). */
  variant: 'bh1' | 'bh2';
  /** Predictor order p, 1…3 (the corrector raises it by one). Default 2. */
  order: number;
  /** 0-based indices of steps whose result is not corrected. Default none. */
  disableCorrector: readonly number[];
  /** Work on x̂0 (true, default: UniPC with DPM-Solver++-style data prediction) or on ε̂. */
  predictX0: boolean;
  /** Use order ≤ steps − i at step i (lower orders in the final steps). Default true. */
  lowerOrderFinal: boolean;
  /**
   * Take a third-order step only where its stencil spans at most `MAX_THIRD_ORDER_SPAN` in λ
   * (default true, ours); false is diffusers' behaviour (what UniPCMultistepScheduler configs load).
   */
  spanLimit: boolean;
}

/** Solve the small dense system A·y = b (Gaussian elimination with partial pivoting). */
function solveSmall(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const piv = m[c]![c]!;
    if (piv === 0) throw new Error('unipc: singular order-condition system (repeated log-SNR values in the grid); pass distinct timesteps');
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / piv;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const y = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let v = m[r]![n]!;
    for (let k = r + 1; k < n; k++) v -= m[r]![k]! * y[k]!;
    y[r] = v / m[r]![r]!;
  }
  return y;
}

/** ρ from Σ_k ρ_k·r_k^{j−1} = j!·ĥ·φ_{j+1}(ĥ)/B, j = 1…rs.length. */
function rhos(rs: readonly number[], hh: number, bh: number): number[] {
  const n = rs.length;
  const a: number[][] = [];
  const b: number[] = [];
  let fact = 1;
  for (let j = 1; j <= n; j++) {
    fact *= j;
    a.push(rs.map((r) => r ** (j - 1)));
    b.push((fact * hh * phi(j + 1, hh)) / bh);
  }
  return solveSmall(a, b);
}

/** The history the multistep updates read: model outputs m and log-SNRs, newest last. */
interface History {
  m: NumArray[];
  lambdas: number[];
}

/**
 * The UniPC update from (x, s0) over geometry `g` using history `hist` (m0 = newest) at order p;
 * with `mt` it is UniC-p (corrector), without it UniP-p (predictor).
 */
function unipcUpdate(x: NumArray, g: LambdaStep, hist: History, p: number, opts: UniPcOptions, mt?: NumArray): NumArray {
  const n = hist.m.length;
  const m0 = hist.m[n - 1]!;
  const hh = opts.predictX0 ? -g.h : g.h;
  // Linear part and first-order term: data σ_t/σ_s·x − α_t(e^ĥ − 1)·m0, noise α_t/α_s·x − σ_t(e^h − 1)·m0.
  const [lin, c0, scale] = opts.predictX0
    ? [g.clean ? 0 : g.sigmaT / g.sigmaS, -g.alphaT * Math.expm1(hh), g.alphaT]
    : [g.alphaT / g.alphaS, -noiseStepCoefficient(g), g.sigmaT];
  const coeffs = [lin, c0];
  const arrays: NumArray[] = [x, m0];
  const older = p - 1;
  if (mt === undefined && p === 1) return linearCombination(coeffs, arrays);
  const bh = opts.variant === 'bh1' ? hh : Math.expm1(hh);
  const rs: number[] = [];
  for (let k = 1; k <= older; k++) rs.push((hist.lambdas[n - 1 - k]! - hist.lambdas[n - 1]!) / g.h);
  let rho: number[];
  if (mt === undefined) rho = p === 2 ? [0.5] : rhos(rs, hh, bh);
  else rho = p === 1 ? [0.5] : rhos([...rs, 1], hh, bh);
  // −scale·B·Σ ρ_k·D_k with D_k = (m_k − m0)/r_k (and D_p = m_t − m0 for the corrector).
  for (let k = 1; k <= older; k++) {
    const w = (-scale * bh * rho[k - 1]!) / rs[k - 1]!;
    coeffs.push(w, -w);
    arrays.push(hist.m[n - 1 - k]!, m0);
  }
  if (mt !== undefined) {
    const w = -scale * bh * rho[p - 1]!;
    coeffs.push(w, -w);
    arrays.push(mt, m0);
  }
  return linearCombination(coeffs, arrays);
}

/** `unipc`: UniPC (bh1/bh2, orders 1–3, corrector), one call per step. */
export const unipcSpec: SolverSpec<UniPcOptions> = defineSolver<UniPcOptions>({
  name: 'unipc',
  aliases: ['UniPCMultistepScheduler'],
  description: 'UniPC predictor-corrector (Zhao et al. 2023), bh1/bh2, order 1–3, 1 call per step',
  // UniP-p corrected by UniC-p: order p + 1 (measured, test/solvers-unipc.test.ts).
  order: (o) => o.order + 1,
  gridFamily: 'dpm',
  options: {
    defaults: { variant: 'bh2', order: 2, disableCorrector: [], predictX0: true, lowerOrderFinal: true, spanLimit: true },
    rules: {
      variant: { kind: 'enum', values: ['bh1', 'bh2'], doc: "'bh1' or 'bh2' (default)" },
      order: { kind: 'number', min: 1, max: 3, integer: true, doc: 'predictor order 1…3, default 2' },
      disableCorrector: { kind: 'integers', min: 0, doc: 'list of 0-based step indices whose result is not corrected' },
      predictX0: { kind: 'boolean', doc: 'data prediction (default true) or noise prediction (false)' },
      lowerOrderFinal: { kind: 'boolean', doc: 'lower orders in the final steps, default true' },
      spanLimit: { kind: 'boolean', doc: 'third order only over stencils spanning ≤ 2 in log-SNR (default true; false as diffusers)' },
    },
  },
  step: (opts, { steps }) => {
    const disabled = new Set(opts.disableCorrector);
    const hist: History = { m: [], lambdas: [] };
    let last: { x: NumArray; g: LambdaStep; order: number } | undefined;
    return async ({ i, s, t, x, ctx }) => {
      const g = lambdaStep(ctx.schedule, s, t);
      const pred = await ctx.evaluate(x, s);
      const m = opts.predictX0 ? pred.x0 : pred.eps;
      // UniC: correct the previous step's result with this step's model output (no extra call).
      if (last && !disabled.has(i - 1)) x = unipcUpdate(last.x, last.g, hist, last.order, opts, m);
      hist.m.push(m);
      hist.lambdas.push(g.lambdaS);
      if (hist.m.length > opts.order) {
        hist.m.shift();
        hist.lambdas.shift();
      }
      let order = Math.min(opts.order, i + 1);
      if (opts.lowerOrderFinal) order = Math.min(order, steps - i);
      if (g.clean) order = 1;
      // UniP-3/UniC-3 over a stencil wider than 2 in λ amplify x̂0's error (see MAX_THIRD_ORDER_SPAN).
      if (order === 3 && opts.spanLimit && !thirdOrderStencilFits(g, hist.lambdas[hist.lambdas.length - 3]!)) order = 2;
      last = { x, g, order };
      return { x: unipcUpdate(x, g, hist, order, opts), x0: pred.x0 };
    };
  },
});
