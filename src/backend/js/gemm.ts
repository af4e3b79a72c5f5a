/** Matrix products in float64: C = op(A)·op(B), row-major, i-k-j loop order (k unrolled by four). */
import type { FloatArray, Matrix } from '../types.js';
import { matrixFromWork, toWork, transpose } from './util.js';

/**
 * C (m×n) = A (m×k) · B (k×n), all float64 row-major. Each row of C is built from rows of B, four
 * at a time (one load and store of C per four multiply-adds), so the inner loop reads and writes
 * memory in order.
 */
export function gemm(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    const ai = i * k;
    let p = 0;
    for (; p + 3 < k; p += 4) {
      const a0 = a[ai + p];
      const a1 = a[ai + p + 1];
      const a2 = a[ai + p + 2];
      const a3 = a[ai + p + 3];
      const b0 = p * n;
      const b1 = b0 + n;
      const b2 = b1 + n;
      const b3 = b2 + n;
      for (let j = 0; j < n; j++) c[ci + j] += a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j];
    }
    for (; p < k; p++) {
      const aip = a[ai + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
    }
  }
  return c;
}

/** op(A)·op(B) with float64 accumulation, rounded to the inputs' element type. */
export function matmul<A extends FloatArray>(a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean): Matrix<A> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const aw = transA ? transpose(toWork(a.data), a.rows, a.cols) : toWork(a.data);
  const bw = transB ? transpose(toWork(b.data), b.rows, b.cols) : toWork(b.data);
  return matrixFromWork(a.data, m, n, gemm(aw, bw, m, k, n));
}

/** C + alpha·op(A)·op(B): the product and the sum in float64, rounded once to C's element type. */
export function matmulAdd<A extends FloatArray>(c: Matrix<A>, a: Matrix<A>, b: Matrix<A>, alpha: number, transA: boolean, transB: boolean): Matrix<A> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const aw = transA ? transpose(toWork(a.data), a.rows, a.cols) : toWork(a.data);
  const bw = transB ? transpose(toWork(b.data), b.rows, b.cols) : toWork(b.data);
  const p = gemm(aw, bw, m, k, n);
  for (let i = 0; i < p.length; i++) p[i] = c.data[i] + alpha * p[i];
  return matrixFromWork(a.data, m, n, p);
}
