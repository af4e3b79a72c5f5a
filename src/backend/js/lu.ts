/** LU factorization with partial (row) pivoting of an m×n matrix of any shape. */
import type { FloatArray, Matrix } from '../types.js';
import { matrixFromWork, swapRows, toWork } from './util.js';

/**
 * P·A = L·U in place on a float64 m×n row-major matrix: L (unit lower, multipliers below the
 * diagonal) and U (upper) packed together; returns perm with row i of P·A = row perm[i] of A.
 * A zero pivot column is left as it is (no elimination, no error).
 */
export function luWork(w: Float64Array, m: number, n: number): Int32Array {
  const perm = new Int32Array(m);
  for (let i = 0; i < m; i++) perm[i] = i;
  const k = Math.min(m, n);
  for (let j = 0; j < k; j++) {
    let p = j;
    let best = Math.abs(w[j * n + j]);
    for (let i = j + 1; i < m; i++) {
      const v = Math.abs(w[i * n + j]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (p !== j) {
      swapRows(w, n, j, p);
      const t = perm[j];
      perm[j] = perm[p];
      perm[p] = t;
    }
    const pivot = w[j * n + j];
    if (pivot === 0) continue;
    const rj = j * n;
    for (let i = j + 1; i < m; i++) {
      const ri = i * n;
      const l = w[ri + j] / pivot;
      w[ri + j] = l;
      if (l === 0) continue;
      for (let c = j + 1; c < n; c++) w[ri + c] -= l * w[rj + c];
    }
  }
  return perm;
}

/** LU with partial pivoting in float64, rounded to the input's element type. */
export function lu<A extends FloatArray>(a: Matrix<A>): { lu: Matrix<A>; perm: Int32Array } {
  const w = toWork(a.data);
  const perm = luWork(w, a.rows, a.cols);
  return { lu: matrixFromWork(a.data, a.rows, a.cols, w), perm };
}
