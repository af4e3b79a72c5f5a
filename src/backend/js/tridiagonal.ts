/**
 * Householder tridiagonalization of a symmetric matrix: A = Q·T·Qᵀ with T symmetric tridiagonal and
 * Q = H₀⋯H_{n−3}; Qᵀ is accumulated backwards as row operations.
 */
import { applyRight, makeReflector } from './householder.js';
import { identity } from './util.js';

/** T's diagonal `d` (n) and off-diagonal `e` (n−1), with Qᵀ (n×n) when asked. */
export interface Tridiagonal {
  d: Float64Array;
  e: Float64Array;
  qt?: Float64Array;
}

/**
 * Reduces the full symmetric float64 n×n matrix `s` (overwritten; both triangles must be set) to
 * tridiagonal form. Each step applies H·S·H to the trailing block as the symmetric rank-2 update
 * S − v·wᵀ − w·vᵀ with p = τ·S·v and w = p − (τ/2)(pᵀv)·v.
 */
export function tridiagonalize(s: Float64Array, n: number, wantQ: boolean): Tridiagonal {
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0));
  const vs = new Float64Array(n * n); // reflector k in vs[k*n + k+1 .. k*n + n)
  const taus = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const len = n - k - 1;
    const off = k * n + k + 1;
    for (let i = 0; i < len; i++) vs[off + i] = s[k * n + k + 1 + i];
    const { tau, beta } = makeReflector(vs, off, len);
    taus[k] = tau;
    e[k] = beta;
    if (tau === 0) continue;
    const b0 = k + 1;
    // p = τ·S₂·v, S₂ the trailing block rows/cols b0..n.
    let pv = 0;
    for (let i = 0; i < len; i++) {
      const row = (b0 + i) * n + b0;
      let acc = 0;
      for (let j = 0; j < len; j++) acc += s[row + j] * vs[off + j];
      p[i] = tau * acc;
      pv += p[i] * vs[off + i];
    }
    const alpha = -0.5 * tau * pv;
    for (let i = 0; i < len; i++) p[i] += alpha * vs[off + i];
    for (let i = 0; i < len; i++) {
      const row = (b0 + i) * n + b0;
      const vi = vs[off + i];
      const wi = p[i];
      for (let j = 0; j < len; j++) s[row + j] -= vi * p[j] + wi * vs[off + j];
    }
  }
  for (let i = 0; i < n; i++) d[i] = s[i * n + i];
  if (n >= 2) e[n - 2] = s[(n - 1) * n + n - 2];
  const out: Tridiagonal = { d, e };
  if (wantQ) {
    // Qᵀ = H_{n−3}⋯H₀: right-multiply I by H_{n−3} first; step k touches rows and columns > k.
    const qt = identity(n);
    for (let k = n - 3; k >= 0; k--) {
      applyRight(qt, n, vs, k * n + k + 1, n - k - 1, taus[k], k + 1, n, k + 1);
    }
    out.qt = qt;
  }
  return out;
}
