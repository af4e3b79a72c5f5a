/** Plain float64 reference computations for the tests (no backend involved). */

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
