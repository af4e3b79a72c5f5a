/** Cholesky factorization A = L·Lᵀ of a symmetric positive definite matrix, from its lower triangle. */
import { LowrankError } from '../../core/errors.js';
import type { FloatArray, Matrix } from '../types.js';
import { matrixFromWork } from './util.js';

/**
 * The lower Cholesky factor of the float64 n×n matrix `a` (only its lower triangle is read), row by
 * row: L[i][j] = (A[i][j] − L[i, :j]·L[j, :j]) / L[j][j], each a dot product of two rows of L.
 * Throws LowrankError E_NUMERIC at the first pivot that is not positive.
 */
export function choleskyWork(a: FloatArray, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let p = 0; p < j; p++) s -= l[ri + p] * l[rj + p];
      if (i === j) {
        if (!(s > 0)) {
          throw new LowrankError('E_NUMERIC', `cholesky: matrix is not positive definite (pivot k = ${i})`);
        }
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

/** Lower Cholesky factor in float64, rounded to the input's element type. */
export function cholesky<A extends FloatArray>(a: Matrix<A>): Matrix<A> {
  return matrixFromWork(a.data, a.rows, a.rows, choleskyWork(a.data, a.rows));
}
