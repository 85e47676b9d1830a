/**
 * Fréchet distance between two Gaussians (the 2-Wasserstein distance squared):
 *
 *   d²((μ₁,Σ₁),(μ₂,Σ₂)) = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})
 *
 * (Dowson & Landau 1982). Fitting Gaussians to a feature network's activations of generated and real
 * images gives the FID of Heusel et al. (2017) when the network is Inception-v3. rediffuse measures
 * in the feature space of its own shipped Fashion-MNIST classifier, so the figure is called
 * **FD-classifier**: it is not comparable with any published FID.
 *
 * The cross term is evaluated in the symmetric form: S = Σ₁^{1/2} by eigendecomposition, then the
 * eigenvalues of S Σ₂ S (symmetric PSD, same spectrum as Σ₁Σ₂), so every step is a symmetric
 * eigenproblem in float64 and tiny negative eigenvalues from rounding are clamped to 0.
 * @packageDocumentation
 */
import type { FeatureStatistics } from './feature-statistics.js';
import { matMul, sqrtPsd, traceSqrtPsd } from './symmetric-matrix.js';

/** The name of the Fréchet distance measured in the shipped classifier's feature space. */
export const FD_CLASSIFIER = 'FD-classifier';

/** The Fréchet distance split into its two terms. */
export interface FrechetDistanceTerms {
  /** d² = meanTerm + covarianceTerm (clamped at 0 against rounding). */
  distance: number;
  /** ‖μ₁ − μ₂‖². */
  meanTerm: number;
  /** tr(Σ₁) + tr(Σ₂) − 2 tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}). */
  covarianceTerm: number;
}

/** Mean/covariance pair accepted by the Fréchet distance (a {@link FeatureStatistics} fits). */
export type GaussianStatistics = Pick<FeatureStatistics, 'dim' | 'mean' | 'covariance'>;

function check(s: GaussianStatistics, which: string): void {
  if (s.mean.length !== s.dim || s.covariance.length !== s.dim * s.dim) {
    throw new RangeError(
      `frechetDistance: ${which} statistics are inconsistent (dim ${s.dim}, mean of length ${s.mean.length}, ` +
        `covariance of length ${s.covariance.length}); the covariance must be dim×dim row-major`,
    );
  }
}

/** Fréchet distance between two Gaussians, with its mean and covariance terms. */
export function frechetDistanceTerms(a: GaussianStatistics, b: GaussianStatistics): FrechetDistanceTerms {
  check(a, 'first');
  check(b, 'second');
  if (a.dim !== b.dim) {
    throw new RangeError(`frechetDistance: feature dimensions differ (${a.dim} vs ${b.dim}); compare statistics from the same feature layer`);
  }
  const n = a.dim;
  let meanTerm = 0;
  for (let i = 0; i < n; i++) {
    const d = a.mean[i]! - b.mean[i]!;
    meanTerm += d * d;
  }
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a.covariance[i * n + i]! + b.covariance[i * n + i]!;
  const rootA = sqrtPsd(a.covariance, n);
  const inner = matMul(matMul(rootA, b.covariance, n), rootA, n);
  const covarianceTerm = trace - 2 * traceSqrtPsd(inner, n);
  return { distance: Math.max(0, meanTerm + covarianceTerm), meanTerm, covarianceTerm };
}

/** Fréchet distance d² between two Gaussians (see the module notes). */
export function frechetDistance(a: GaussianStatistics, b: GaussianStatistics): number {
  return frechetDistanceTerms(a, b).distance;
}
