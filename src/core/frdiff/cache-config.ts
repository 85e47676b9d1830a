/**
 * Feature-cache methods as plain, typed configurations (one object per method, as diffusers'
 * `hooks/` configs: `FasterCacheConfig`, `FirstBlockCacheConfig`, `TaylorSeerCacheConfig`), so a
 * tuner can enumerate a search space, write the pick to JSON and hand it to a run:
 * - `uniform`: FRDiff keyframes every `interval` calls (§4.1), optional score mixing (§4.2), and an
 *   optional forecast of the cached features (order 0 = FRDiff, 1–2 = TaylorSeer-style Newton forecast);
 * - `adaptive`: First-Block-Cache / TeaCache recompute on a probe signal with threshold δ, and an
 *   optional forecast;
 * - `policy`: an explicit keyframe policy (e.g. found by Auto-FR), and an optional forecast.
 * {@link cacheConfigChoice} turns one into the reuse choice `featureReuseFor` / `createFeatureReuseSetup`
 * take; {@link enumerateCacheConfigs} lists the cross product of a search space.
 * @packageDocumentation
 */
import { validateAdaptiveRecompute, type AdaptiveRecompute, type RecomputeAccumulation } from './adaptive-policy.js';
import { validateForecastConfig, type FeatureForecastConfig, type ForecastOrder, type ForecastTime } from './feature-forecast.js';
import { validateReusePolicy, type ReuseChoice, type ReusePolicy } from './reuse-policy.js';
import { validateScoreMixing, type ScoreMixing } from './score-mixing.js';

/** FRDiff keyframes every `interval` calls. */
export interface UniformCacheConfig {
  method: 'uniform';
  interval: number;
  /** Score mixing, or null for pure feature reuse. */
  mixing: ScoreMixing | null;
  /** Reuse points: a preset (`frdiff`, `residual`, `deepcache`, `deepcache:N`) or tensor names. */
  points: string | string[];
  forecast?: FeatureForecastConfig;
}

/** Adaptive recompute (no score mixing). */
export interface AdaptiveCacheConfig {
  method: 'adaptive';
  adaptive: AdaptiveRecompute;
  points: string | string[];
  /** The probe's signal tensor (default the first block's residual). */
  probe?: string;
  forecast?: FeatureForecastConfig;
}

/** An explicit keyframe policy (e.g. written by Auto-FR). */
export interface PolicyCacheConfig {
  method: 'policy';
  policy: ReusePolicy;
  forecast?: FeatureForecastConfig;
}

/** One feature-cache configuration of a run. */
export type FeatureCacheConfig = UniformCacheConfig | AdaptiveCacheConfig | PolicyCacheConfig;

/** What {@link cacheConfigChoice} returns: a reuse choice with the forecast and probe (the model layer's `FeatureReuseChoice`). */
export type CacheConfigChoice = ReuseChoice & { forecast?: FeatureForecastConfig; probe?: string };

/** The reuse choice of a configuration (validated; errors name the field and the fix). */
export function cacheConfigChoice(config: FeatureCacheConfig): CacheConfigChoice {
  const forecast = config.forecast ? { forecast: validateForecastConfig(config.forecast) } : {};
  switch (config.method) {
    case 'uniform':
      if (!Number.isInteger(config.interval) || config.interval < 1)
        throw new RangeError(`uniform cache: interval must be an integer ≥ 1, got ${config.interval}`);
      if (config.mixing) validateScoreMixing(config.mixing);
      return { keyframes: { interval: config.interval }, mixing: config.mixing, points: config.points, ...forecast };
    case 'adaptive':
      return {
        keyframes: { adaptive: validateAdaptiveRecompute(config.adaptive) },
        points: config.points,
        ...(config.probe !== undefined ? { probe: config.probe } : {}),
        ...forecast,
      };
    case 'policy':
      return { keyframes: { policy: validateReusePolicy(config.policy) }, ...forecast };
    default:
      throw new Error(`unknown feature-cache method ${JSON.stringify((config as { method?: unknown }).method)}: use uniform, adaptive or policy`);
  }
}

/** A search space over the uniform and adaptive methods (each list crossed with the others of its method). */
export interface CacheSearchSpace {
  /** Reuse points to try. Default `['frdiff']`. */
  points?: (string | string[])[];
  /** Forecast orders (and times) to try. Default order 0 only. */
  forecastOrders?: ForecastOrder[];
  forecastTimes?: ForecastTime[];
  /** Uniform keyframe intervals (none: no uniform configs). */
  intervals?: number[];
  /** Mixing settings of uniform configs. Default `[null]`. */
  mixings?: (ScoreMixing | null)[];
  /** Adaptive thresholds δ (none: no adaptive configs). */
  thresholds?: number[];
  accumulations?: RecomputeAccumulation[];
}

/** Every configuration of a search space (order 0 is written without a forecast). */
export function enumerateCacheConfigs(space: CacheSearchSpace): FeatureCacheConfig[] {
  const out: FeatureCacheConfig[] = [];
  const forecasts: (FeatureForecastConfig | undefined)[] = [];
  for (const order of space.forecastOrders ?? [0]) {
    if (order === 0) forecasts.push(undefined);
    else for (const time of space.forecastTimes ?? ['t']) forecasts.push({ order, time });
  }
  for (const points of space.points ?? ['frdiff'])
    for (const forecast of forecasts) {
      const fc = forecast ? { forecast } : {};
      for (const interval of space.intervals ?? [])
        for (const mixing of space.mixings ?? [null]) out.push({ method: 'uniform', interval, mixing, points, ...fc });
      for (const threshold of space.thresholds ?? [])
        for (const accumulate of space.accumulations ?? ['plain']) out.push({ method: 'adaptive', adaptive: { threshold, accumulate }, points, ...fc });
    }
  return out;
}
