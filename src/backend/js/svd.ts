/**
 * Singular value decomposition: Householder bidiagonalization, then implicit-shift QR on the
 * bidiagonal (see bdsqr.ts). No Gram matrix is ever formed, so small singular values are as
 * accurate as the backward-stable reduction allows. Wide matrices are handled through their
 * transpose; the input is scaled to unit max-norm so that nothing overflows.
 */
import type { FloatArray, Matrix, SvdJob, SvdResult } from '../types.js';
import { bidiagonalSvd } from './bdsqr.js';
import { bidiagonalize } from './bidiagonal.js';
import { fromWork, identity, matrixFromWork, maxAbs, rowsOf, toWork, transpose } from './util.js';

/** A float64 SVD: U (m×uCols), s, Vᵀ (vRows×n); U and Vᵀ absent for 'values'. */
export interface SvdWork {
  u?: Float64Array;
  s: Float64Array;
  vt?: Float64Array;
}

/** SVD of a float64 m×n matrix (not modified) for the given job. */
export function svdWork(a: Float64Array, m: number, n: number, job: SvdJob): SvdWork {
  const k = Math.min(m, n);
  const vectors = job !== 'values';
  if (k === 0) {
    const s = new Float64Array(0);
    if (!vectors) return { s };
    if (job === 'full') return { u: identity(m), s, vt: identity(n) };
    return { u: new Float64Array(0), s, vt: new Float64Array(0) };
  }
  const tall = m >= n;
  // Work on the tall one of A and Aᵀ: M×N with M ≥ N.
  const M = tall ? m : n;
  const N = tall ? n : m;
  const w = tall ? Float64Array.from(a) : transpose(a, m, n);
  const scale = maxAbs(w);
  if (scale > 0 && scale !== 1) {
    const inv = 1 / scale;
    for (let i = 0; i < w.length; i++) w[i] *= inv;
  }
  const uRows = !vectors ? 0 : job === 'full' ? M : N;
  const b = bidiagonalize(w, M, N, uRows, vectors);
  bidiagonalSvd(b.d, b.e, b.ut === undefined ? undefined : rowsOf(b.ut, M), b.vt === undefined ? undefined : rowsOf(b.vt, N));
  const s = b.d;
  if (scale > 0 && scale !== 1) for (let i = 0; i < N; i++) s[i] *= scale;
  if (!vectors || b.ut === undefined || b.vt === undefined) return { s };
  // Tall: A = Utᵀ·S·Vt. Wide: Aᵀ = Utᵀ·S·Vt, so A = Vtᵀ·S·Ut.
  if (tall) return { u: transpose(b.ut, uRows, M), s, vt: b.vt };
  return { u: transpose(b.vt, N, N), s, vt: b.ut };
}

/** SVD computed in float64 and rounded to the input's element type. */
export function svd<A extends FloatArray>(a: Matrix<A>, job: SvdJob): SvdResult<A> {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const r = svdWork(toWork(a.data), m, n, job);
  const s = fromWork(a.data, r.s);
  if (r.u === undefined || r.vt === undefined) return { s };
  const uCols = job === 'full' ? m : k;
  const vRows = job === 'full' ? n : k;
  return { u: matrixFromWork(a.data, m, uCols, r.u), s, vt: matrixFromWork(a.data, vRows, n, r.vt) };
}
