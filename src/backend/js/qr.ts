/** Thin Householder QR of any shape: A (m×n) = Q (m×k) · R (k×n), k = min(m, n). */
import type { FloatArray, Matrix } from '../types.js';
import { applyLeft, makeReflector } from './householder.js';
import { identity, matrixFromWork, toWork } from './util.js';

/** The factors of a thin QR in float64. */
export interface QrWork {
  q: Float64Array;
  r: Float64Array;
}

/**
 * Thin QR of a float64 m×n matrix (not modified): one reflector per column k < min(m, n) zeroes
 * the column below the diagonal; Q is accumulated backwards from the first k columns of I.
 */
export function qrWork(a: Float64Array, m: number, n: number): QrWork {
  const k = Math.min(m, n);
  const w = Float64Array.from(a);
  const vs = new Float64Array(m * k); // reflector j in vs[j*m + j .. j*m + m)
  const taus = new Float64Array(k);
  const scratch = new Float64Array(Math.max(n, k));
  for (let j = 0; j < k; j++) {
    const len = m - j;
    const off = j * m + j;
    for (let i = 0; i < len; i++) vs[off + i] = w[(j + i) * n + j];
    const { tau, beta } = makeReflector(vs, off, len);
    taus[j] = tau;
    w[j * n + j] = beta;
    for (let i = 1; i < len; i++) w[(j + i) * n + j] = 0;
    applyLeft(w, n, vs, off, len, tau, j, j + 1, n, scratch);
  }
  const r = new Float64Array(k * n);
  for (let i = 0; i < k; i++) {
    for (let j = i; j < n; j++) r[i * n + j] = w[i * n + j];
  }
  const q = identity(k, m); // m×k: first k columns of I_m
  for (let j = k - 1; j >= 0; j--) {
    applyLeft(q, k, vs, j * m + j, m - j, taus[j], j, j, k, scratch);
  }
  return { q, r };
}

/** Thin Householder QR, computed in float64 and rounded to the input's element type. */
export function qr<A extends FloatArray>(a: Matrix<A>): { q: Matrix<A>; r: Matrix<A> } {
  const k = Math.min(a.rows, a.cols);
  const { q, r } = qrWork(toWork(a.data), a.rows, a.cols);
  return { q: matrixFromWork(a.data, a.rows, k, q), r: matrixFromWork(a.data, k, a.cols, r) };
}
