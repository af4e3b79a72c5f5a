/**
 * Householder bidiagonalization (Golub–Kahan): A (m×n, m ≥ n) = U·B·Vᵀ with B upper bidiagonal,
 * U = H₀⋯H_{n−1} and Vᵀ = G_{n−2}⋯G₀ accumulated backwards as row operations.
 */
import { applyLeft, applyRight, makeReflector } from './householder.js';
import { identity } from './util.js';

/** B's diagonal `d` (n) and superdiagonal `e` (n−1), with Uᵀ and Vᵀ when asked. */
export interface Bidiagonal {
  d: Float64Array;
  e: Float64Array;
  /** Uᵀ: uRows×m (uRows = n for a thin U, m for a full one); undefined when not asked. */
  ut?: Float64Array;
  /** Vᵀ: n×n; undefined when not asked. */
  vt?: Float64Array;
}

/**
 * Reduces a float64 m×n matrix (m ≥ n; the array is overwritten) to upper bidiagonal form.
 * `uRows` is 0 (no U), n (thin) or m (full); Vᵀ is formed when `wantV`.
 */
export function bidiagonalize(w: Float64Array, m: number, n: number, uRows: number, wantV: boolean): Bidiagonal {
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0));
  const left = new Float64Array(m * n); // reflector k in left[k*m + k .. k*m + m)
  const leftTau = new Float64Array(n);
  const right = new Float64Array(n * n); // reflector k in right[k*n + k+1 .. k*n + n)
  const rightTau = new Float64Array(n);
  const scratch = new Float64Array(Math.max(m, n));
  for (let k = 0; k < n; k++) {
    const len = m - k;
    const off = k * m + k;
    for (let i = 0; i < len; i++) left[off + i] = w[(k + i) * n + k];
    const lr = makeReflector(left, off, len);
    leftTau[k] = lr.tau;
    d[k] = lr.beta;
    applyLeft(w, n, left, off, len, lr.tau, k, k + 1, n, scratch);
    if (k < n - 1) {
      const rlen = n - k - 1;
      const roff = k * n + k + 1;
      for (let j = 0; j < rlen; j++) right[roff + j] = w[k * n + k + 1 + j];
      const rr = makeReflector(right, roff, rlen);
      rightTau[k] = rr.tau;
      e[k] = rr.beta;
      applyRight(w, n, right, roff, rlen, rr.tau, k + 1, m, k + 1);
    }
  }
  const out: Bidiagonal = { d, e };
  if (uRows > 0) {
    // Uᵀ = Eᵀ·H_{n−1}⋯H₀ with E the first uRows columns of I_m; step k touches rows and columns ≥ k.
    const ut = identity(m, uRows);
    for (let k = n - 1; k >= 0; k--) {
      applyRight(ut, m, left, k * m + k, m - k, leftTau[k], k, uRows, k);
    }
    out.ut = ut;
  }
  if (wantV) {
    // Vᵀ = G_{n−2}⋯G₀ (each G_k acts on indices k+1 .. n); step k touches rows and columns > k.
    const vt = identity(n);
    for (let k = n - 2; k >= 0; k--) {
      applyRight(vt, n, right, k * n + k + 1, n - k - 1, rightTau[k], k + 1, n, k + 1);
    }
    out.vt = vt;
  }
  return out;
}
