/**
 * Feature forecasting for feature reuse (in the spirit of TaylorSeer, Liu et al., ICCV 2025): at a
 * reuse call, feed the reuse graph an extrapolation of the cached feature from the last keyframes
 * instead of the stale value of the latest one.
 *
 * With keyframes at solver times τ_0, …, τ_k (any spacing, distinct) holding features F_0, …, F_k,
 * the order-k forecast at τ is the value of the interpolating polynomial in Newton's form
 *   P_k(τ) = Σ_{j=0..k} F[τ_0, …, τ_j] · Π_{m<j} (τ − τ_m),
 *   F[τ_i, …, τ_{i+j}] = (F[τ_{i+1}, …, τ_{i+j}] − F[τ_i, …, τ_{i+j−1}]) / (τ_{i+j} − τ_i),
 * so order 0 is FRDiff (the latest keyframe's feature), order 1 the secant through the last two and
 * order 2 the parabola through the last three. P_k is exact for features that are polynomials of
 * degree ≤ k in τ, and for smooth features its error is O(h^{k+1}) in the keyframe spacing h.
 * TaylorSeer writes the same extrapolation as a Taylor series with finite differences over uniformly
 * spaced steps; the divided differences here are exact for the non-uniform spacing that schedules,
 * adaptive recompute and PFDiff produce.
 *
 * The time τ is the solver's: the schedule time t (the default), or λ = log(α_t/σ_t) (the half
 * log-SNR, in which DPM-Solver's and DDIM's updates are exact exponential integrators).
 *
 * Because the forecast is linear in the F_j, it is applied as one weighted sum per element:
 * P_k(τ) = Σ_j w_j F_j, where w_j is the coefficient of F_j in the Newton form (the Lagrange weight
 * Π_{m≠j} (τ − τ_m)/(τ_j − τ_m)); {@link forecastWeights} runs Newton's divided-difference table on the
 * weights, {@link forecastFeature} applies them to Float32Array features.
 * @packageDocumentation
 */

/** Order of the forecast: 0 = stale keyframe value (FRDiff), 1 = linear, 2 = quadratic in the solver's time. */
export type ForecastOrder = 0 | 1 | 2;

/** The time in which features are extrapolated: `lambda` = log(α_t/σ_t), `t` = schedule time. */
export type ForecastTime = 'lambda' | 't';

/** Forecast orders accepted. */
export const FORECAST_ORDERS: readonly ForecastOrder[] = [0, 1, 2];
/** Forecast times accepted. */
export const FORECAST_TIMES: readonly ForecastTime[] = ['lambda', 't'];

/**
 * How cached features are forecast at reuse calls (plain JSON, so a tuner can enumerate it and a
 * policy or grid file can hold it).
 */
export interface FeatureForecastConfig {
  /** Order for every reuse point without an entry in `points`. */
  order: ForecastOrder;
  /**
   * Time variable of the extrapolation. Default `t`: on both bundled models the features are
   * smoother in t than in λ (bench/forecast.md; under DDIM on the DiT a λ forecast is worse than none).
   */
  time?: ForecastTime;
  /**
   * Per reuse point: the order for a tensor name, or for a point kind (`resnet-conv1`,
   * `attention-branch`, `gated-attention`, `residual-branch`, `deep-feature`, `explicit`); a name
   * entry wins over a kind entry.
   */
  points?: Record<string, ForecastOrder>;
}

/** Validate a forecast config, throwing an error that names the field and the fix. Returns it typed. */
export function validateForecastConfig(c: unknown): FeatureForecastConfig {
  const bad = (msg: string): never => {
    throw new RangeError(`feature forecast: ${msg}`);
  };
  if (typeof c !== 'object' || c === null) bad('expected {order: 0|1|2, time?: "lambda"|"t", points?: {name: order}}');
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['order', 'time', 'points'].includes(k)) bad(`unknown field "${k}"; allowed: order, time, points`);
  if (!(FORECAST_ORDERS as readonly unknown[]).includes(o.order)) bad(`"order" must be 0, 1 or 2, got ${JSON.stringify(o.order)}`);
  if (o.time !== undefined && !(FORECAST_TIMES as readonly unknown[]).includes(o.time)) {
    bad(`"time" must be "lambda" (log(α/σ)) or "t" (schedule time), got ${JSON.stringify(o.time)}`);
  }
  if (o.points !== undefined) {
    if (typeof o.points !== 'object' || o.points === null || Array.isArray(o.points)) bad('"points" must map tensor names or point kinds to orders');
    for (const [k, v] of Object.entries(o.points as Record<string, unknown>)) {
      if (!(FORECAST_ORDERS as readonly unknown[]).includes(v)) bad(`"points.${k}" must be 0, 1 or 2, got ${JSON.stringify(v)}`);
    }
  }
  return o as unknown as FeatureForecastConfig;
}

/** The highest order a config uses (how many keyframes, minus one, must be kept). */
export function maxForecastOrder(c: FeatureForecastConfig | undefined): ForecastOrder {
  if (!c) return 0;
  return Math.max(c.order, ...Object.values(c.points ?? {})) as ForecastOrder;
}

/** The order of one reuse point under `c` (a name entry, else a kind entry, else `c.order`). */
export function forecastOrderFor(c: FeatureForecastConfig | undefined, point: { name: string; kind?: string }): ForecastOrder {
  if (!c) return 0;
  const p = c.points;
  if (p && point.name in p) return p[point.name]!;
  if (p && point.kind !== undefined && point.kind in p) return p[point.kind]!;
  return c.order;
}

/**
 * The solver time of a call: λ = log(α_t) − log(σ_t), or t. Throws when λ is not finite (σ_t = 0 or
 * α_t = 0), naming the fix.
 */
export function forecastTimeOf(time: ForecastTime, call: { t: number; alpha: number; sigma: number }): number {
  if (time === 't') return call.t;
  const lam = Math.log(call.alpha) - Math.log(call.sigma);
  if (!Number.isFinite(lam)) {
    throw new RangeError(`feature forecast in λ: log(α/σ) is not finite at t = ${call.t} (α = ${call.alpha}, σ = ${call.sigma}); forecast in time "t"`);
  }
  return lam;
}

/**
 * The weights w_j with P_k(at) = Σ_j w_j F_j for the interpolating polynomial through (τ_j, F_j),
 * j = 0…k (k = knots.length − 1), computed with Newton's divided-difference table on the unit vectors.
 * Knots need not be sorted or uniform, but must be distinct and finite.
 */
export function forecastWeights(knots: readonly number[], at: number): Float64Array {
  const n = knots.length;
  if (n === 0) throw new RangeError('feature forecast needs at least one keyframe');
  if (!Number.isFinite(at) || knots.some((k) => !Number.isFinite(k)))
    throw new RangeError(`feature forecast: knots and time must be finite, got ${knots} → ${at}`);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++)
      if (knots[i] === knots[j]) throw new RangeError(`feature forecast: two keyframes at the same time ${knots[i]}; knots must be distinct`);
  // dd[i] holds the coefficients (over F_0…F_{n−1}) of F[τ_i, …, τ_{i+level}]; level 0 is the unit vectors.
  let dd: Float64Array[] = knots.map((_, i) => {
    const e = new Float64Array(n);
    e[i] = 1;
    return e;
  });
  const w = new Float64Array(n);
  let basis = 1; // Π_{m<level} (at − τ_m)
  for (let level = 0; level < n; level++) {
    const lead = dd[0]!;
    for (let j = 0; j < n; j++) w[j]! += basis * lead[j]!;
    basis *= at - knots[level]!;
    const next: Float64Array[] = [];
    for (let i = 0; i + 1 < dd.length; i++) {
      const h = knots[i + level + 1]! - knots[i]!;
      const c = new Float64Array(n);
      for (let j = 0; j < n; j++) c[j] = (dd[i + 1]![j]! - dd[i]![j]!) / h;
      next.push(c);
    }
    dd = next;
  }
  return w;
}

/**
 * The forecast Σ_j w_j F_j at time `at` of features `values[j]` held at `knots[j]` (order =
 * `values.length − 1`), into `out` (allocated when absent). With one knot the result is a bit-exact
 * copy of `values[0]`.
 */
export function forecastFeature(values: readonly Float32Array[], knots: readonly number[], at: number, out?: Float32Array): Float32Array {
  if (values.length !== knots.length) throw new RangeError(`feature forecast: ${values.length} features but ${knots.length} knots`);
  const len = values[0]?.length ?? 0;
  for (const v of values)
    if (v.length !== len)
      throw new RangeError(`feature forecast: features of different sizes (${len} vs ${v.length}); the keyframes must share one batch`);
  const dst = out ?? new Float32Array(len);
  if (dst.length !== len) throw new RangeError(`feature forecast: output holds ${dst.length} values, the features ${len}`);
  if (values.length === 1) {
    dst.set(values[0]!);
    return dst;
  }
  const w = forecastWeights(knots, at);
  if (values.length === 2) {
    const [a, b] = values as [Float32Array, Float32Array];
    const wa = w[0]!;
    const wb = w[1]!;
    for (let i = 0; i < len; i++) dst[i] = wa * a[i]! + wb * b[i]!;
    return dst;
  }
  if (values.length === 3) {
    const [a, b, c] = values as [Float32Array, Float32Array, Float32Array];
    const wa = w[0]!;
    const wb = w[1]!;
    const wc = w[2]!;
    for (let i = 0; i < len; i++) dst[i] = wa * a[i]! + wb * b[i]! + wc * c[i]!;
    return dst;
  }
  for (let i = 0; i < len; i++) {
    let s = 0;
    for (let j = 0; j < values.length; j++) s += w[j]! * values[j]![i]!;
    dst[i] = s;
  }
  return dst;
}
