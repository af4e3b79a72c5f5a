/**
 * Householder reflectors H = I − τ·v·vᵀ with v[0] = 1, and their application to blocks of
 * row-major matrices from the left (a row-wise rank-1 update) and from the right (a dot product
 * and an axpy per row), both walking rows so that memory is read in order.
 */
import { hypot } from './util.js';

/** What {@link makeReflector} found: H·x = beta·e₁. τ = 0 means H = I. */
export interface Reflector {
  tau: number;
  beta: number;
}

/**
 * Turns x = v[off .. off+len) in place into the Householder vector v (v[off] = 1) of the reflector
 * that maps x to beta·e₁, and returns τ and beta. A zero tail gives τ = 0 (H = I) and beta = x₀.
 */
export function makeReflector(v: Float64Array, off: number, len: number): Reflector {
  const alpha = v[off];
  let scale = 0;
  for (let i = 1; i < len; i++) {
    const a = Math.abs(v[off + i]);
    if (a > scale) scale = a;
  }
  if (scale === 0) {
    v[off] = 1;
    return { tau: 0, beta: alpha };
  }
  let ssq = 0;
  for (let i = 1; i < len; i++) {
    const t = v[off + i] / scale;
    ssq += t * t;
  }
  const xnorm = scale * Math.sqrt(ssq);
  const beta = alpha >= 0 ? -hypot(alpha, xnorm) : hypot(alpha, xnorm);
  const tau = (beta - alpha) / beta;
  const f = 1 / (alpha - beta);
  for (let i = 1; i < len; i++) v[off + i] *= f;
  v[off] = 1;
  return { tau, beta };
}

/**
 * X[r0 .. r0+len, c0 .. c1) ← H·X for the reflector (v[voff .. voff+len), τ), X row-major with
 * `cols` columns. `w` is scratch of at least `cols` elements. w = vᵀX and X −= τ·v·wᵀ, both
 * passes taking four rows of X at a time.
 */
export function applyLeft(
  x: Float64Array,
  cols: number,
  v: Float64Array,
  voff: number,
  len: number,
  tau: number,
  r0: number,
  c0: number,
  c1: number,
  w: Float64Array,
): void {
  if (tau === 0 || c1 <= c0) return;
  w.fill(0, c0, c1);
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const v0 = v[voff + i];
    const v1 = v[voff + i + 1];
    const v2 = v[voff + i + 2];
    const v3 = v[voff + i + 3];
    const o0 = (r0 + i) * cols;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    for (let j = c0; j < c1; j++) w[j] += v0 * x[o0 + j] + v1 * x[o1 + j] + v2 * x[o2 + j] + v3 * x[o3 + j];
  }
  for (; i < len; i++) {
    const vi = v[voff + i];
    const o = (r0 + i) * cols;
    for (let j = c0; j < c1; j++) w[j] += vi * x[o + j];
  }
  i = 0;
  for (; i + 3 < len; i += 4) {
    const f0 = tau * v[voff + i];
    const f1 = tau * v[voff + i + 1];
    const f2 = tau * v[voff + i + 2];
    const f3 = tau * v[voff + i + 3];
    const o0 = (r0 + i) * cols;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    for (let j = c0; j < c1; j++) {
      const wj = w[j];
      x[o0 + j] -= f0 * wj;
      x[o1 + j] -= f1 * wj;
      x[o2 + j] -= f2 * wj;
      x[o3 + j] -= f3 * wj;
    }
  }
  for (; i < len; i++) {
    const f = tau * v[voff + i];
    const o = (r0 + i) * cols;
    for (let j = c0; j < c1; j++) x[o + j] -= f * w[j];
  }
}

/**
 * X[r0 .. r1, c0 .. c0+len) ← X·H for the reflector (v[voff .. voff+len), τ), X row-major with
 * `cols` columns: per row s = x·v and x −= τ·s·v, four rows at a time so that v is read once
 * per four rows.
 */
export function applyRight(
  x: Float64Array,
  cols: number,
  v: Float64Array,
  voff: number,
  len: number,
  tau: number,
  r0: number,
  r1: number,
  c0: number,
): void {
  if (tau === 0) return;
  let i = r0;
  for (; i + 3 < r1; i += 4) {
    const o0 = i * cols + c0;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < len; j++) {
      const vj = v[voff + j];
      s0 += x[o0 + j] * vj;
      s1 += x[o1 + j] * vj;
      s2 += x[o2 + j] * vj;
      s3 += x[o3 + j] * vj;
    }
    s0 *= tau;
    s1 *= tau;
    s2 *= tau;
    s3 *= tau;
    for (let j = 0; j < len; j++) {
      const vj = v[voff + j];
      x[o0 + j] -= s0 * vj;
      x[o1 + j] -= s1 * vj;
      x[o2 + j] -= s2 * vj;
      x[o3 + j] -= s3 * vj;
    }
  }
  for (; i < r1; i++) {
    const o = i * cols + c0;
    let s = 0;
    for (let j = 0; j < len; j++) s += x[o + j] * v[voff + j];
    s *= tau;
    for (let j = 0; j < len; j++) x[o + j] -= s * v[voff + j];
  }
}
