/**
 * Symmetric eigendecomposition: Householder tridiagonalization, then implicit QR sweeps with the
 * Wilkinson shift on the tridiagonal, the rotations accumulated into the rows of Qᵀ (which end as
 * the eigenvectors). Values ascending.
 */
import { LowrankError } from '../../core/errors.js';
import type { FloatArray, Matrix } from '../types.js';
import { tridiagonalize } from './tridiagonal.js';
import { fromWork, givens, hypot, matrixFromWork, maxAbs, rowsOf, transpose, type RowOps, type Rotation } from './util.js';

/** Unit roundoff of float64. */
const EPS = Number.EPSILON / 2;
/** Smallest normal float64. */
const SAFE_MIN = 2 ** -1022;
/** QR sweeps allowed per eigenvalue. */
const MAX_SWEEPS = 30;

/**
 * Diagonalizes the symmetric tridiagonal (d, e) in place (`d` ends as the eigenvalues, ascending).
 * Every rotation applied to T's rows, and the final sort, go to `q` (the rows of Qᵀ) when given. Throws
 * LowrankError E_NUMERIC when the sweeps do not converge.
 */
export function tridiagonalEigen(d: Float64Array, e: Float64Array, q?: RowOps): void {
  const n = d.length;
  const rot: Rotation = { c: 1, s: 0, r: 0 };
  const negligible = (i: number): boolean => Math.abs(e[i]) <= EPS * (Math.abs(d[i]) + Math.abs(d[i + 1])) + SAFE_MIN;
  const maxIter = MAX_SWEEPS * n;
  let iter = 0;
  let end = n - 1;
  while (end > 0) {
    if (negligible(end - 1)) {
      e[end - 1] = 0;
      end--;
      continue;
    }
    let lo = end - 1;
    while (lo > 0 && !negligible(lo - 1)) lo--;
    if (lo > 0) e[lo - 1] = 0;
    if (++iter > maxIter) {
      throw new LowrankError('E_NUMERIC', `eigh: tridiagonal QR iteration did not converge in ${maxIter} sweeps (n = ${n})`);
    }
    // Wilkinson shift: the eigenvalue of the trailing 2×2 nearer to its last diagonal entry.
    const dd = (d[end - 1] - d[end]) / 2;
    const em = e[end - 1];
    const mu = d[end] - (em / (dd + (dd >= 0 ? 1 : -1) * hypot(dd, em))) * em;
    let x = d[lo] - mu;
    let z = e[lo];
    for (let k = lo; k < end; k++) {
      // Rotation of rows/columns k, k+1: the first one from T − μI's first column, the others
      // zero the bulge at (k−1, k+1).
      givens(x, z, rot);
      const c = rot.c;
      const s = rot.s;
      if (k > lo) e[k - 1] = rot.r;
      const a = d[k];
      const b = e[k];
      const cc = d[k + 1];
      const cs2b = 2 * c * s * b;
      d[k] = c * c * a + cs2b + s * s * cc;
      d[k + 1] = s * s * a - cs2b + c * c * cc;
      e[k] = c * s * (cc - a) + (c * c - s * s) * b;
      if (k < end - 1) {
        x = e[k];
        z = s * e[k + 1];
        e[k + 1] = c * e[k + 1];
      }
      if (q !== undefined && (s !== 0 || c !== 1)) q.rotate(k, k + 1, c, s);
    }
  }
  // Ascending order.
  for (let i = 0; i < n - 1; i++) {
    let best = i;
    for (let j = i + 1; j < n; j++) if (d[j] < d[best]) best = j;
    if (best !== i) {
      const t = d[i];
      d[i] = d[best];
      d[best] = t;
      q?.swap(i, best);
    }
  }
}

/** Eigenvalues (ascending) and optionally eigenvectors (columns of an n×n matrix) in float64. */
export function eighWork(a: Float64Array, n: number, vectors: boolean): { values: Float64Array; vectors?: Float64Array } {
  // Symmetric working copy from the lower triangle, scaled to unit max-norm.
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = a[i * n + j];
      s[i * n + j] = v;
      s[j * n + i] = v;
    }
  }
  const scale = maxAbs(s);
  const rescale = scale > 0 && scale !== 1;
  if (rescale) for (let i = 0; i < s.length; i++) s[i] /= scale;
  const t = tridiagonalize(s, n, vectors);
  tridiagonalEigen(t.d, t.e, t.qt === undefined ? undefined : rowsOf(t.qt, n));
  if (rescale) for (let i = 0; i < n; i++) t.d[i] *= scale;
  if (!vectors || t.qt === undefined) return { values: t.d };
  return { values: t.d, vectors: transpose(t.qt, n, n) };
}

/** Symmetric eigendecomposition from the lower triangle, rounded to the input's element type. */
export function eigh<A extends FloatArray>(a: Matrix<A>, vectors: boolean): { values: A; vectors?: Matrix<A> } {
  const n = a.rows;
  const r = eighWork(Float64Array.from(a.data), n, vectors);
  const values = fromWork(a.data, r.values);
  if (r.vectors === undefined) return { values };
  return { values, vectors: matrixFromWork(a.data, n, n, r.vectors) };
}
