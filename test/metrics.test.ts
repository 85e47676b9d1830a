/**
 * Metrics against closed forms: Fréchet distance of Gaussians (diagonal, commuting, 2×2 and general
 * non-commuting cases), KID's unbiasedness on finite populations, k-NN precision/recall on point sets
 * with hand-derived answers, accuracy and PSNR of known inputs, and the shipped classifier on real
 * Fashion-MNIST images.
 *
 * Fixture test/fixtures/fmnist-test-200.bin: the first 200 Fashion-MNIST test images (200·784 uint8
 * pixels, row-major 28×28) followed by their 200 uint8 labels; cut from Debian's
 * /usr/share/datasets/fashion-mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { Rng } from '../src/core/rng.js';
import {
  FeatureStatisticsAccumulator,
  featureStatistics,
  frechetDistance,
  frechetDistanceTerms,
  kid,
  precisionRecall,
  classAccuracy,
  trajectoryError,
  psnrFromMse,
  parseReferenceStatistics,
  loadClassifier,
  pixelsToUnitRange,
  type GaussianStatistics,
} from '../src/metrics/index.js';
import { mmdUnbiased } from '../src/metrics/kid.js';
import { argmaxRows } from '../src/metrics/accuracy.js';
import { matMul, sqrtPsd } from '../src/metrics/symmetric-matrix.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadReferenceStatistics } from '../src/node/index.js';
import type { OrtModuleLike, OrtTensorLike } from '../src/model/ort-types.js';

// ---------- helpers ----------

/** A random orthogonal D×D matrix (Gram–Schmidt on Gaussian columns), row-major. */
function randomOrthogonal(d: number, rng: Rng): Float64Array {
  const q = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    const v = new Float64Array(d);
    rng.fillNormal(v);
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[i]! * q[i * d + p]!;
      for (let i = 0; i < d; i++) v[i]! -= dot * q[i * d + p]!;
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < d; i++) q[i * d + c] = v[i]! / norm;
  }
  return q;
}

/** Q diag(a) Qᵀ. */
function rotatedDiagonal(q: Float64Array, a: number[]): Float64Array {
  const d = a.length;
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += q[i * d + k]! * a[k]! * q[j * d + k]!;
      out[i * d + j] = s;
    }
  return out;
}

/** A random SPD matrix A Aᵀ + εI. */
function randomSpd(d: number, rng: Rng, eps = 0.1): Float64Array {
  const a = rng.fillNormal(new Float64Array(d * d));
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = i === j ? eps : 0;
      for (let k = 0; k < d; k++) s += a[i * d + k]! * a[j * d + k]!;
      out[i * d + j] = s;
    }
  return out;
}

function gaussian(mean: number[] | Float64Array, covariance: Float64Array): GaussianStatistics {
  return { dim: mean.length, mean: Float64Array.from(mean), covariance };
}

/** N samples of N(μ, Σ) as [N, D] rows, via x = μ + Σ^{1/2} z. */
function sampleGaussian(mu: Float64Array, cov: Float64Array, n: number, rng: Rng): Float64Array {
  const d = mu.length;
  const root = sqrtPsd(cov, d);
  const out = new Float64Array(n * d);
  const z = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    rng.fillNormal(z);
    for (let i = 0; i < d; i++) {
      let s = mu[i]!;
      for (let k = 0; k < d; k++) s += root[i * d + k]! * z[k]!;
      out[r * d + i] = s;
    }
  }
  return out;
}

function diagonal(a: number[]): Float64Array {
  const d = a.length;
  const out = new Float64Array(d * d);
  a.forEach((v, i) => (out[i * d + i] = v));
  return out;
}

// ---------- Fréchet distance ----------

describe('Fréchet distance (FD-classifier)', () => {
  test('diagonal covariances: ‖Δμ‖² + Σ(√a_i − √b_i)²', () => {
    const a = [4, 1, 0.25, 9, 2];
    const b = [1, 1, 1, 16, 0.5];
    const mu1 = [0, 1, 2, 3, 4];
    const mu2 = [1, 1, 0, 3, 5];
    const expected = mu1.reduce((s, v, i) => s + (v - mu2[i]!) ** 2, 0) + a.reduce((s, v, i) => s + (Math.sqrt(v) - Math.sqrt(b[i]!)) ** 2, 0);
    // (1 + 4 + 1) + (1 + 0 + 0.25 + 1 + (√2 − √0.5)²)
    const fd = frechetDistance(gaussian(mu1, diagonal(a)), gaussian(mu2, diagonal(b)));
    assert.ok(Math.abs(fd - expected) < 1e-12, `${fd} vs ${expected}`);
    assert.ok(Math.abs(expected - (6 + 2.25 + 0.5)) < 1e-12);
  });

  test('commuting full covariances Q diag(a) Qᵀ, Q diag(b) Qᵀ have the diagonal answer', () => {
    const rng = new Rng(7);
    const d = 12;
    const q = randomOrthogonal(d, rng);
    const a = Array.from({ length: d }, (_, i) => 0.1 + i * 0.7);
    const b = Array.from({ length: d }, (_, i) => 3 / (1 + i));
    const mu1 = rng.fillNormal(new Float64Array(d));
    const mu2 = rng.fillNormal(new Float64Array(d));
    let expected = 0;
    for (let i = 0; i < d; i++) expected += (mu1[i]! - mu2[i]!) ** 2 + (Math.sqrt(a[i]!) - Math.sqrt(b[i]!)) ** 2;
    const fd = frechetDistance(gaussian(mu1, rotatedDiagonal(q, a)), gaussian(mu2, rotatedDiagonal(q, b)));
    assert.ok(Math.abs(fd - expected) < 1e-9 * expected, `${fd} vs ${expected}`);
  });

  test('non-commuting 2×2: tr√M = √(tr(Σ₁Σ₂) + 2√(det Σ₁ det Σ₂))', () => {
    const s1 = Float64Array.from([2, 0.8, 0.8, 1]);
    const s2 = Float64Array.from([1, -0.3, -0.3, 3]);
    const p = matMul(s1, s2, 2);
    const crossTrace = Math.sqrt(p[0]! + p[3]! + 2 * Math.sqrt((2 - 0.64) * (3 - 0.09)));
    const expected = 0.5 ** 2 + 0 + 3 + 4 - 2 * crossTrace;
    const fd = frechetDistance(gaussian([0.5, 1], s1), gaussian([0, 1], s2));
    assert.ok(Math.abs(fd - expected) < 1e-12, `${fd} vs ${expected}`);
    assert.ok(expected > 0.3); // the covariance term is not trivial
  });

  test('general covariances: cross term equals Σ√eig(Σ₁Σ₂) from a non-symmetric eigensolver', () => {
    const rng = new Rng(11);
    const d = 24;
    const s1 = randomSpd(d, rng);
    const s2 = randomSpd(d, rng);
    const product = new Matrix(Array.from({ length: d }, (_, i) => Array.from(matMul(s1, s2, d).subarray(i * d, (i + 1) * d))));
    const evd = new EigenvalueDecomposition(product);
    let crossTrace = 0;
    for (let k = 0; k < d; k++) {
      assert.ok(Math.abs(evd.imaginaryEigenvalues[k]!) < 1e-8 * Math.abs(evd.realEigenvalues[k]!) + 1e-10);
      crossTrace += Math.sqrt(evd.realEigenvalues[k]!);
    }
    let trace = 0;
    for (let i = 0; i < d; i++) trace += s1[i * d + i]! + s2[i * d + i]!;
    const zero = new Float64Array(d);
    const terms = frechetDistanceTerms(gaussian(zero, s1), gaussian(zero, s2));
    const expected = trace - 2 * crossTrace;
    assert.ok(Math.abs(terms.covarianceTerm - expected) < 1e-9 * trace, `${terms.covarianceTerm} vs ${expected}`);
    assert.equal(terms.meanTerm, 0);
    // symmetric in its arguments
    const swapped = frechetDistance(gaussian(zero, s2), gaussian(zero, s1));
    assert.ok(Math.abs(swapped - terms.distance) < 1e-9 * trace);
  });

  test('identical statistics give 0 within 1e-9 (full rank and rank-deficient)', () => {
    const rng = new Rng(3);
    const d = 32;
    const full = featureStatistics(rng.fillNormal(new Float64Array(500 * d)), d);
    assert.ok(Math.abs(frechetDistance(full, full)) < 1e-9);
    // 6 samples in 32 dimensions: covariance of rank 5, 27 zero eigenvalues that round either way
    const low = featureStatistics(rng.fillNormal(new Float32Array(6 * d)), d);
    const fd = frechetDistance(low, low);
    assert.ok(Math.abs(fd) < 1e-9, `FD of rank-deficient stats with themselves = ${fd}`);
  });

  test('sample-based FD converges to the closed form as N grows', () => {
    const rng = new Rng(2024);
    const d = 3;
    const mu1 = Float64Array.from([0, 0, 0]);
    const mu2 = Float64Array.from([1, -0.5, 0.25]);
    const s1 = Float64Array.from([1, 0.5, 0, 0.5, 2, 0.3, 0, 0.3, 0.5]);
    const s2 = Float64Array.from([2, -0.4, 0.2, -0.4, 1, 0, 0.2, 0, 1.5]);
    const exact = frechetDistance(gaussian(mu1, s1), gaussian(mu2, s2));
    // root-mean-square error over independent replicates, at N and 100·N
    const rms = (n: number) => {
      let s = 0;
      const replicates = 8;
      for (let r = 0; r < replicates; r++) {
        const x = featureStatistics(sampleGaussian(mu1, s1, n, rng), d);
        const y = featureStatistics(sampleGaussian(mu2, s2, n, rng), d);
        s += (frechetDistance(x, y) - exact) ** 2;
      }
      return Math.sqrt(s / replicates);
    };
    const coarse = rms(200);
    const fine = rms(20000);
    // statistical error ~ 1/√N: 100× more samples should cut it ~10×; demand more than 4×
    assert.ok(fine < coarse / 4, `RMS error ${coarse} at N = 200, ${fine} at N = 20000`);
    // leading term: 2Δμᵀ(x̄−ȳ−Δμ), SD 2√(Δμᵀ(Σ₁+Σ₂)Δμ/N) ≈ 0.028 at N = 20000
    assert.ok(fine < 0.06, `RMS error ${fine} at N = 20000 vs FD ${exact}`);
  });

  test('streaming statistics: batch-size independent, N−1 covariance, exact with a large offset', () => {
    const rng = new Rng(5);
    const d = 7;
    const n = 301;
    const x = new Float64Array(n * d);
    for (let i = 0; i < x.length; i++) x[i] = 1e6 + (i % d) + rng.normal();
    const whole = featureStatistics(x, d);
    const acc = new FeatureStatisticsAccumulator(d);
    for (let start = 0; start < n; start += 64) acc.add(x.subarray(start * d, Math.min(n, start + 64) * d));
    const streamed = acc.statistics();
    // two-pass reference
    const mean = new Float64Array(d);
    for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) mean[i]! += x[r * d + i]! / n;
    for (let i = 0; i < d; i++) {
      assert.ok(Math.abs(streamed.mean[i]! - mean[i]!) < 1e-8);
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let r = 0; r < n; r++) s += (x[r * d + i]! - mean[i]!) * (x[r * d + j]! - mean[j]!);
        const cov = s / (n - 1);
        assert.ok(Math.abs(streamed.covariance[i * d + j]! - cov) < 1e-9, `cov[${i},${j}]`);
        assert.ok(Math.abs(whole.covariance[i * d + j]! - cov) < 1e-9);
      }
    }
    assert.equal(streamed.count, n);
  });

  test('errors name the problem: dimension mismatch, not PSD, too few rows', () => {
    const a = gaussian([0, 0], diagonal([1, 1]));
    const b = gaussian([0, 0, 0], diagonal([1, 1, 1]));
    assert.throws(() => frechetDistance(a, b), /dimensions differ \(2 vs 3\)/);
    assert.throws(() => frechetDistance(a, gaussian([0, 0], diagonal([1, -1]))), /not positive semi-definite/);
    assert.throws(() => frechetDistance(a, gaussian([0, 0], Float64Array.from([1, 0.5, 0, 1]))), /not symmetric/);
    assert.throws(() => featureStatistics(new Float32Array(5), 2), /not a whole number of rows/);
    assert.throws(() => featureStatistics(new Float32Array(3), 3), /at least 2 rows/);
  });
});

// ---------- KID ----------

/** Biased (V-statistic) MMD², which includes the i = j kernel terms: positive on average even for P = Q. */
function mmdBiased(x: Float64Array, y: Float64Array, d: number): number {
  const m = x.length / d;
  const k = (a: Float64Array, i: number, b: Float64Array, j: number) => {
    let s = 0;
    for (let t = 0; t < d; t++) s += a[i * d + t]! * b[j * d + t]!;
    return (s / d + 1) ** 3;
  };
  let v = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) v += k(x, i, x, j) + k(y, i, y, j) - 2 * k(x, i, y, j);
  return v / (m * m);
}

/** Population MMD² of two finite uniform distributions: E k(x,x') + E k(y,y') − 2 E k(x,y), independent draws. */
function populationMmd(a: Float64Array, b: Float64Array, d: number): number {
  const mean = (p: Float64Array, q: Float64Array) => {
    const np = p.length / d;
    const nq = q.length / d;
    let s = 0;
    for (let i = 0; i < np; i++)
      for (let j = 0; j < nq; j++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += p[i * d + t]! * q[j * d + t]!;
        s += (dot / d + 1) ** 3;
      }
    return s / (np * nq);
  };
  return mean(a, a) + mean(b, b) - 2 * mean(a, b);
}

/** m draws with replacement from the rows of a population. */
function drawWithReplacement(pop: Float64Array, d: number, m: number, rng: Rng): Float64Array {
  const n = pop.length / d;
  const out = new Float64Array(m * d);
  for (let r = 0; r < m; r++) {
    const i = Math.floor(rng.uniform() * n);
    out.set(pop.subarray(i * d, (i + 1) * d), r * d);
  }
  return out;
}

describe('KID (unbiased MMD², cubic polynomial kernel)', () => {
  test('hand-computed value on two 1-D pairs', () => {
    // k(x,y) = (xy + 1)³: k(0,1) = 1, k(2,3) = 343, cross 1 + 1 + 27 + 64 = 93 → 1 + 343 − 2·93/4
    const v = mmdUnbiased(Float64Array.from([0, 1]), Float64Array.from([2, 3]), 1);
    assert.equal(v, 297.5);
    const r = kid([0, 1], [2, 3], 1, { subsets: 3, seed: 1 });
    assert.equal(r.mean, 297.5);
    assert.equal(r.std, 0);
    assert.equal(r.subsetSize, 2);
  });

  test('expectation equals the population MMD² (0 for one distribution), unlike the biased estimate', () => {
    const d = 2;
    const popA = Float64Array.from([0, 0, 1, 0, 0, 1, -1, 0.5, 0.5, -1, 1.5, 1.5]);
    const popB = Float64Array.from([0.5, 0, 1.5, 0.5, 0, 1.5, -0.5, 1, 1, -0.5, 2, 2]);
    const rng = new Rng(99);
    const m = 10;
    const replicates = 600;
    for (const [other, label] of [
      [popA, 'same'],
      [popB, 'shifted'],
    ] as const) {
      const exact = populationMmd(popA, other, d);
      const u: number[] = [];
      const v: number[] = [];
      for (let r = 0; r < replicates; r++) {
        const x = drawWithReplacement(popA, d, m, rng);
        const y = drawWithReplacement(other, d, m, rng);
        u.push(kid(x, y, d, { subsetSize: m, subsets: 1, seed: r }).mean);
        v.push(mmdBiased(x, y, d));
      }
      const meanU = u.reduce((s, t) => s + t, 0) / replicates;
      const sdU = Math.sqrt(u.reduce((s, t) => s + (t - meanU) ** 2, 0) / (replicates - 1));
      const se = sdU / Math.sqrt(replicates);
      assert.ok(Math.abs(meanU - exact) < 4 * se, `${label}: mean ${meanU} vs exact ${exact} (SE ${se})`);
      const meanV = v.reduce((s, t) => s + t, 0) / replicates;
      // the biased V-statistic overshoots by many standard errors: the test can tell the two apart
      assert.ok(meanV - exact > 8 * se, `${label}: biased mean ${meanV} should exceed ${exact} clearly`);
      if (label === 'shifted') assert.ok(exact > 10 * se);
      else assert.equal(exact, 0);
    }
  });

  test('same-distribution subsets average ≈ 0, a shift is clearly positive', () => {
    const d = 8;
    const n = 400;
    const rng = new Rng(17);
    const x = rng.fillNormal(new Float32Array(n * d));
    const y = rng.fillNormal(new Float32Array(n * d));
    const z = rng.fillNormal(new Float32Array(n * d)).map((v) => v + 0.5);
    const same = kid(x, y, d, { subsetSize: 100, subsets: 50, seed: 3 });
    const shifted = kid(x, z, d, { subsetSize: 100, subsets: 50, seed: 3 });
    assert.ok(Math.abs(same.mean) < 3 * same.std, `same: ${same.mean} ± ${same.std}`);
    assert.ok(shifted.mean > 3 * shifted.std, `shifted: ${shifted.mean} ± ${shifted.std}`);
    assert.ok(shifted.mean > 20 * Math.abs(same.mean));
    // seeded: the same call gives the same subsets
    assert.deepEqual(kid(x, z, d, { subsetSize: 100, subsets: 5, seed: 3 }).values, shifted.values.slice(0, 5));
    // the precomputed-kernel path and the per-subset path agree exactly
    const direct = kid(x, z, d, { subsetSize: 100, subsets: 5, seed: 3, maxCachedKernels: 0 });
    assert.deepEqual(direct.values, shifted.values.slice(0, 5));
  });

  test('errors', () => {
    assert.throws(() => kid([1, 2, 3], [1, 2], 2), /not a whole number of rows/);
    assert.throws(() => kid([1, 2], [1, 2], 1, { subsetSize: 1 }), /subsetSize/);
    assert.throws(() => kid([1], [1, 2], 1), /at least 2 rows/);
  });
});

// ---------- precision / recall ----------

describe('k-NN precision and recall (Kynkäänniemi et al. 2019)', () => {
  // real: (0,0), (1,0), …, (9,0)
  const real = Float64Array.from(Array.from({ length: 10 }, (_, i) => [i, 0]).flat());

  test('k = 1: hand-derived balls', () => {
    // real radii all 1. Generated: (0,±0.3) and (4,±0.3) inside, (50,0), (50,0.2) outside → precision 4/6.
    // generated radii: 0.6, 0.6, 0.6, 0.6, 0.2, 0.2 → only real (0,0) and (4,0) covered → recall 2/10.
    const gen = Float64Array.from([0, 0.3, 0, -0.3, 4, 0.3, 4, -0.3, 50, 0, 50, 0.2]);
    const r = precisionRecall(real, gen, 2, { k: 1 });
    assert.equal(r.precision, 4 / 6);
    assert.equal(r.recall, 2 / 10);
  });

  test('k = 3 (default): boundary point counts, far points do not', () => {
    // real radii (3rd neighbour): 3 at the ends, 2 inside. (12,0) is exactly 3 from (9,0): inside (≤);
    // (12.5,0) is 3.5 from (9,0) and 4.5 from (8,0): outside. Precision 5/8.
    // Generated radii reach ≈4.05 around x = 0 and ≈8 around x = 12, covering every real point: recall 1.
    const gen = Float64Array.from([0, 0.3, 0, -0.3, 4, 0.3, 4, -0.3, 12, 0, 12.5, 0, 50, 0, 50, 0.2]);
    const r = precisionRecall(real, gen, 2);
    assert.equal(r.k, 3);
    assert.equal(r.precision, 5 / 8);
    assert.equal(r.recall, 1);
  });

  test('identical sets: precision = recall = 1; disjoint far sets: 0', () => {
    const rng = new Rng(1);
    const x = rng.fillNormal(new Float32Array(50 * 4));
    assert.deepEqual(precisionRecall(x, x, 4), { precision: 1, recall: 1, k: 3 });
    const far = x.map((v) => v + 100);
    const r = precisionRecall(x, far, 4);
    assert.equal(r.precision, 0);
    assert.equal(r.recall, 0);
  });

  test('errors', () => {
    assert.throws(() => precisionRecall(real, Float64Array.from([0, 0, 1, 1]), 2), /no 3-th nearest neighbour/);
    assert.throws(() => precisionRecall(real, Float64Array.from([0, 0, 1]), 2), /whole number of rows/);
  });
});

// ---------- accuracy ----------

describe('class accuracy of conditional samples', () => {
  test('argmax vs intended labels, per class, ties to the lowest class', () => {
    const logits = [
      [5, 1, 0], // 0
      [0, 2, 1], // 1
      [1, 1, 0], // tie → 0
      [0, 0, 3], // 2
      [9, 0, 0], // 0
      [0, 1, 0.5], // 1
    ].flat();
    assert.deepEqual(Array.from(argmaxRows(logits, 3)), [0, 1, 0, 2, 0, 1]);
    const r = classAccuracy(logits, [0, 1, 1, 2, 2, 1], 3);
    assert.equal(r.correct, 4);
    assert.equal(r.accuracy, 4 / 6);
    assert.deepEqual(
      r.perClass.map((c) => [c.label, c.correct, c.total]),
      [
        [0, 1, 1],
        [1, 2, 3],
        [2, 1, 2],
      ],
    );
    assert.equal(r.perClass[1]!.accuracy, 2 / 3);
    const big = classAccuracy(logits, BigInt64Array.from([0n, 1n, 0n, 2n, 0n, 1n]), 3);
    assert.equal(big.accuracy, 1);
  });

  test('errors', () => {
    assert.throws(() => classAccuracy([1, 2, 3, 4], [0], 2), /2 rows of logits but 1 labels/);
    assert.throws(() => classAccuracy([1, 2], [10], 2), /not a class in 0\.\.1/);
    assert.throws(() => argmaxRows([1, 2, 3], 2), /not a whole number of rows/);
  });
});

// ---------- trajectory error ----------

describe('trajectory error (MSE, PSNR)', () => {
  test('PSNR of a known MSE with data range 2', () => {
    assert.ok(Math.abs(psnrFromMse(0.01) - 10 * Math.log10(400)) < 1e-12);
    assert.ok(Math.abs(psnrFromMse(4) - 0) < 1e-12); // MSE = R² → 0 dB
    assert.equal(psnrFromMse(0), Infinity);
    const rng = new Rng(8);
    const ref = rng.fillNormal(new Float64Array(2 * 784));
    const off = ref.map((v, i) => v + (i < 784 ? 0.1 : 0.2)); // sample MSEs 0.01 and 0.04
    const r = trajectoryError(off, ref, 2);
    assert.ok(Math.abs(r.sampleMse[0]! - 0.01) < 1e-12 && Math.abs(r.sampleMse[1]! - 0.04) < 1e-12);
    assert.ok(Math.abs(r.mse - 0.025) < 1e-12);
    assert.ok(Math.abs(r.psnr - 10 * Math.log10(4 / 0.025)) < 1e-9);
    assert.ok(Math.abs(r.meanSamplePsnr - (10 * Math.log10(400) + 10 * Math.log10(100)) / 2) < 1e-9);
    assert.equal(trajectoryError(ref, ref, 2).psnr, Infinity);
  });

  test('errors', () => {
    assert.throws(() => trajectoryError([1, 2], [1], 1), /differ in size/);
    assert.throws(() => trajectoryError([1, 2, 3], [1, 2, 3], 2), /do not split into 2 samples/);
  });
});

// ---------- reference statistics ----------

describe('reference statistics', () => {
  test('parses flat and nested covariances, checks dimensions and PSD', () => {
    const flat = parseReferenceStatistics({ dim: 2, count: 10, mean: [1, 2], covariance: [2, 1, 1, 2], dataset: 'x' });
    assert.equal(flat.dim, 2);
    assert.equal(flat.count, 10);
    assert.deepEqual(flat.metadata, { dataset: 'x' });
    const nested = parseReferenceStatistics({
      mean: [1, 2],
      covariance: [
        [2, 1],
        [1, 2],
      ],
    });
    assert.deepEqual(Array.from(nested.covariance), [2, 1, 1, 2]);
    assert.throws(
      () => parseReferenceStatistics({ mean: [1, 2], covariance: [2, 1, 1, 2] }, undefined, { expectedDim: 128 }),
      /statistics are 2-dimensional but the classifier's features are 128-dimensional/,
    );
    assert.throws(() => parseReferenceStatistics({ mean: [1, 2], covariance: [1, 0, 0] }), /needs 2×2 = 4/);
    assert.throws(() => parseReferenceStatistics({ dim: 3, mean: [1, 2], covariance: [1, 0, 0, 1] }), /'dim' says 3/);
    assert.throws(() => parseReferenceStatistics({ mean: [1, 2], covariance: [1, 0, 0, -1] }), /not positive semi-definite/);
    assert.throws(() => parseReferenceStatistics({ mean: [1, 'a'], covariance: [1, 0, 0, 1] }), /'mean'\[1\]/);
  });

  test('binary layout: mean then covariance, little-endian', () => {
    const values = Float64Array.from([1, 2, 2, 1, 1, 2]);
    const bytes = new Uint8Array(values.buffer);
    const s = parseReferenceStatistics({ dim: 2, binary: { file: 'x.bin', dtype: 'float64' } }, bytes);
    assert.deepEqual(Array.from(s.mean), [1, 2]);
    assert.deepEqual(Array.from(s.covariance), [2, 1, 1, 2]);
    assert.throws(() => parseReferenceStatistics({ dim: 3, binary: { file: 'x.bin', dtype: 'float64' } }, bytes), /do not belong together/);
  });

  test('missing files name the fix', async () => {
    await assert.rejects(loadReferenceStatistics('/nonexistent/stats.json'), /not found; pass the path/);
    await assert.rejects(loadFashionMnist('t10k', '/nonexistent'), /dataset-fashion-mnist/);
  });

  const shipped = 'models/fashion-test-stats.json';
  test('the shipped file loads and is a valid covariance', { skip: !existsSync(shipped) && `${shipped} not shipped yet` }, async () => {
    const s = await loadReferenceStatistics(shipped);
    assert.ok(s.dim >= 2 && s.count >= 1000, `dim ${s.dim}, count ${s.count}`);
    assert.ok(Math.abs(frechetDistance(s, s)) < 1e-9);
  });
});

// ---------- classifier ----------

/**
 * A stand-in onnxruntime: logits[c] = mean of image row c (c < 10), features = [mean, max, min];
 * it records the batch sizes it was asked for.
 */
function fakeOrt(outputs = ['logits', 'features']): { ort: OrtModuleLike; batches: number[] } {
  const batches: number[] = [];
  class Tensor implements OrtTensorLike {
    constructor(
      readonly type: string,
      readonly data: unknown,
      readonly dims: readonly number[] = [],
    ) {}
  }
  const session = {
    inputNames: ['images'],
    outputNames: outputs,
    async run(feeds: Record<string, OrtTensorLike>) {
      const x = feeds['images']!.data as Float32Array;
      const b = feeds['images']!.dims[0]!;
      batches.push(b);
      const logits = new Float32Array(b * 10);
      const features = new Float32Array(b * 3);
      for (let n = 0; n < b; n++) {
        const img = x.subarray(n * 784, (n + 1) * 784);
        for (let c = 0; c < 10; c++) logits[n * 10 + c] = img.subarray(c * 28, (c + 1) * 28).reduce((s, v) => s + v, 0) / 28;
        features[n * 3] = img.reduce((s, v) => s + v, 0) / 784;
        features[n * 3 + 1] = Math.max(...img);
        features[n * 3 + 2] = Math.min(...img);
      }
      return { logits: new Tensor('float32', logits, [b, 10]), features: new Tensor('float32', features, [b, 3]) };
    },
  };
  const ort = {
    InferenceSession: { create: async () => session },
    Tensor,
  } as unknown as OrtModuleLike;
  return { ort, batches };
}

/** The committed fixture: 200 test images in [−1, 1] and their labels. */
function fixture(): { images: Float32Array; labels: Uint8Array } {
  const raw = new Uint8Array(readFileSync('test/fixtures/fmnist-test-200.bin'));
  assert.equal(raw.length, 200 * 785, 'fixture size');
  return { images: pixelsToUnitRange(raw.subarray(0, 200 * 784)), labels: raw.subarray(200 * 784) };
}

describe('feature classifier', () => {
  test('batches, clamps and reassembles outputs in order (stand-in runtime)', async () => {
    const { ort, batches } = fakeOrt();
    const clf = await loadClassifier(ort, 'unused.onnx', { batchSize: 4 });
    assert.equal(clf.numClasses, 10);
    assert.equal(clf.featureDim, 3);
    const images = new Float32Array(10 * 784);
    for (let n = 0; n < 10; n++) images.fill(n / 10, n * 784, (n + 1) * 784);
    images[5 * 784] = 7; // clamped to 1
    const out = await clf.classify(images);
    assert.deepEqual(batches.slice(1), [4, 4, 2]); // after the probe run of 1
    assert.equal(out.count, 10);
    for (let n = 0; n < 10; n++) assert.ok(Math.abs(out.features[n * 3]! - (n === 5 ? (0.5 * 783 + 1) / 784 : n / 10)) < 1e-6);
    assert.equal(out.features[5 * 3 + 1], 1);
    const raw = await clf.classify(images, { clamp: false });
    assert.equal(raw.features[5 * 3 + 1], 7);
    await assert.rejects(clf.classify(new Float32Array(100)), /not a whole, non-zero number of 1×28×28 images/);
    await assert.rejects(clf.classify(new Float32Array(784).fill(NaN)), /must be finite/);
  });

  test('rejects a model without the classifier signature', async () => {
    const { ort } = fakeOrt(['out_sample']);
    await assert.rejects(loadClassifier(ort, 'x.onnx'), /lacks output 'logits', output 'features'/);
  });

  const model = 'models/fashion-classifier.onnx';
  const noModel = !existsSync(model) && `${model} not shipped yet`;

  test('shipped classifier: ≥ 90% on the 200-image fixture', { skip: noModel }, async () => {
    const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
    const clf = await loadClassifier(ort, model, { threads: 1 });
    const { images, labels } = fixture();
    const out = await clf.classify(images);
    const acc = classAccuracy(out.logits, labels, clf.numClasses);
    assert.ok(acc.accuracy >= 0.9, `accuracy ${acc.accuracy} on 200 fixture images`);
    await clf.release();
  });

  const noData =
    !existsSync(`${FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz`) &&
    `Fashion-MNIST not installed at ${FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)`;
  test('shipped classifier: ≥ 90% on the first 1000 test images', { skip: noModel || noData }, async () => {
    const ort = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
    const clf = await loadClassifier(ort, model, { threads: 1 });
    const data = await loadFashionMnist('t10k');
    const images = pixelsToUnitRange(data.pixels.subarray(0, 1000 * 784));
    const out = await clf.classify(images);
    const acc = classAccuracy(out.logits, data.labels.subarray(0, 1000), clf.numClasses);
    assert.ok(acc.accuracy >= 0.9, `accuracy ${acc.accuracy} on 1000 test images`);
    // the fixture is the head of this split
    const fx = fixture();
    assert.deepEqual(Array.from(fx.labels), Array.from(data.labels.subarray(0, 200)));
    await clf.release();
  });
});
