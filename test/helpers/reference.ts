/** Plain float64 reference computations for the tests (no backend involved). */
import { rng } from '../../src/core/rng.js';

/** C = A (m×k) · B (k×n), row-major, accumulated in float64. */
export function referenceProduct(a: ArrayLike<number>, m: number, k: number, b: ArrayLike<number>, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

/** Makes the k columns of the n×k row-major q orthonormal in place (Gram–Schmidt, twice) and returns q. */
export function orthonormalize(q: Float64Array, n: number, k: number): Float64Array {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < k; j++) {
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i * k + j] * q[i * k + p];
        for (let i = 0; i < n; i++) q[i * k + j] -= d * q[i * k + p];
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += q[i * k + j] ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < n; i++) q[i * k + j] /= norm;
    }
  }
  return q;
}

/**
 * U·diag(s)·Vᵀ (m×n, float64) with U (m×k) and V (n×k) orthonormalized from seeded Gaussian
 * columns (seeds `seed` and `seed + 1`): a matrix with exactly the singular values s.
 */
export function plantedSpectrum(m: number, n: number, s: readonly number[], seed: number): { data: Float64Array; u: Float64Array; v: Float64Array } {
  const k = s.length;
  const u = orthonormalize(rng(seed).fillNormal(new Float64Array(m * k)), m, k);
  const v = orthonormalize(rng(seed + 1).fillNormal(new Float64Array(n * k)), n, k);
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += u[i * k + t] * s[t] * v[j * k + t];
      data[i * n + j] = acc;
    }
  }
  return { data, u, v };
}
