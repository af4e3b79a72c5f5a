/** Triangular solves op(T)·X = B by substitution on whole rows of X. */
import { LowrankError } from '../../core/errors.js';
import type { FloatArray, Matrix } from '../types.js';
import { matrixFromWork, toWork } from './util.js';

/** Which triangle of T is used, whether op(T) = Tᵀ, and whether T's diagonal is taken as ones. */
export interface TriangularOptions {
  lower: boolean;
  trans: boolean;
  unitDiagonal: boolean;
}

/**
 * Solves op(T)·X = B in place on `x` (B on entry, n×k row-major) for the float64 n×n triangular
 * `t`. The elements of T outside its triangle are never read. Throws LowrankError E_NUMERIC on a
 * zero diagonal element (T singular) unless the diagonal is unit.
 */
export function solveTriangularWork(t: FloatArray, n: number, x: Float64Array, k: number, opts: TriangularOptions): void {
  const { lower, trans, unitDiagonal } = opts;
  const diag = (i: number): number => {
    if (unitDiagonal) return 1;
    const v = t[i * n + i];
    if (v === 0) throw new LowrankError('E_NUMERIC', `solveTriangular: matrix is singular (zero diagonal element at k = ${i})`);
    return v;
  };
  const axpy = (dst: number, src: number, f: number): void => {
    if (f === 0) return;
    const od = dst * k;
    const os = src * k;
    for (let c = 0; c < k; c++) x[od + c] -= f * x[os + c];
  };
  const scale = (i: number): void => {
    const dv = diag(i);
    if (dv === 1) return;
    const inv = 1 / dv;
    const o = i * k;
    for (let c = 0; c < k; c++) x[o + c] *= inv;
  };
  // op(T) lower: forward substitution; op(T) upper: backward.
  const forward = lower !== trans;
  if (!trans) {
    // Row form: X[i] = (B[i] − Σ T[i][j]·X[j]) / T[i][i] over the solved rows j.
    if (forward) {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < i; j++) axpy(i, j, t[i * n + j]);
        scale(i);
      }
    } else {
      for (let i = n - 1; i >= 0; i--) {
        for (let j = i + 1; j < n; j++) axpy(i, j, t[i * n + j]);
        scale(i);
      }
    }
  } else if (forward) {
    // Tᵀ lower (T upper): once X[i] is final, remove it from the later equations j > i.
    for (let i = 0; i < n; i++) {
      scale(i);
      for (let j = i + 1; j < n; j++) axpy(j, i, t[i * n + j]);
    }
  } else {
    // Tᵀ upper (T lower): the same, backwards, for the equations j < i.
    for (let i = n - 1; i >= 0; i--) {
      scale(i);
      for (let j = 0; j < i; j++) axpy(j, i, t[i * n + j]);
    }
  }
}

/** Solves op(T)·X = B in float64, rounded to the input's element type. */
export function solveTriangular<A extends FloatArray>(t: Matrix<A>, b: Matrix<A>, opts: TriangularOptions): Matrix<A> {
  const x = toWork(b.data);
  solveTriangularWork(t.data, t.rows, x, b.cols, opts);
  return matrixFromWork(b.data, b.rows, b.cols, x);
}
