/**
 * Structured bases and subspace geometry: the orthonormal DCT-II basis, the nearest Kronecker
 * product by SVD of the Van Loan–Pitsianis rearrangement, and principal angles between subspaces.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matrixArg, sameDtype, sliceData } from './check.js';
import { qr, svd, svdvals } from './decompositions.js';
import { matmul } from './matmul.js';

/**
 * The orthonormal DCT-II matrix C (n×n): row k is the k-th cosine basis vector,
 * C[k][i] = s_k · cos(π (2i + 1) k / 2n), s_0 = √(1/n), s_k = √(2/n); C · Cᵀ = I.
 *
 * @example
 * const c = linalg.dctBasis(64); // project a gradient with c · g
 */
export function dctBasis<F extends FloatDType = 'f64'>(n: number, dtype: F = 'f64' as F): Tensor<F> {
  if (!Number.isInteger(n) || n < 1) throw new LowrankError('E_USAGE', `dctBasis: n must be a positive integer, got ${n}`);
  const c = tensor(dtype, [n, n]);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt((k === 0 ? 1 : 2) / n);
    for (let i = 0; i < n; i++) c.data[k * n + i] = s * Math.cos((Math.PI * (2 * i + 1) * k) / (2 * n));
  }
  return c;
}

/** The terms of a Kronecker approximation w ≈ Σ_i a[i] ⊗ b[i]. */
export interface KronSvd<F extends FloatDType> {
  /** The left factors, each m1×n1. */
  a: Tensor<F>[];
  /** The right factors, each m2×n2. */
  b: Tensor<F>[];
  /** The singular values of the rearranged matrix: term i carries √s[i] in each factor. */
  s: Tensor<F>;
}

/**
 * The nearest sum of `rank` Kronecker products to w ((m1·m2)×(n1·n2)) in Frobenius norm
 * (Van Loan and Pitsianis): rearrange w so each m2×n2 block becomes a row, take its SVD, and fold
 * the top singular vectors back into factors.
 *
 * @example
 * const { a, b } = await linalg.kronSvd(w, [16, 16], [64, 64], 2); // w ≈ a[0]⊗b[0] + a[1]⊗b[1]
 */
export async function kronSvd<F extends FloatDType>(w: Tensor<F>, aShape: readonly [number, number], bShape: readonly [number, number], rank = 1): Promise<KronSvd<F>> {
  matrixArg('kronSvd', 'w', w);
  const [m1, n1] = aShape;
  const [m2, n2] = bShape;
  if (w.shape[0] !== m1 * m2 || w.shape[1] !== n1 * n2) {
    throw new LowrankError('E_SHAPE', `kronSvd: w [${w.shape}] is not [${m1}·${m2}, ${n1}·${n2}]`, { shape: w.shape });
  }
  const kmax = Math.min(m1 * n1, m2 * n2);
  if (!Number.isInteger(rank) || rank < 1 || rank > kmax) throw new LowrankError('E_USAGE', `kronSvd: rank must be an integer in 1..${kmax}, got ${rank}`);
  const cols = n1 * n2;
  const r = tensor(w.dtype, [m1 * n1, m2 * n2]);
  for (let i1 = 0; i1 < m1; i1++)
    for (let j1 = 0; j1 < n1; j1++)
      for (let i2 = 0; i2 < m2; i2++)
        for (let j2 = 0; j2 < n2; j2++) r.data[(i1 * n1 + j1) * m2 * n2 + i2 * n2 + j2] = w.data[(i1 * m2 + i2) * cols + j1 * n2 + j2];
  const { u, s, vt } = await svd(r);
  const k = s.data.length;
  const a: Tensor<F>[] = [];
  const b: Tensor<F>[] = [];
  for (let t = 0; t < rank; t++) {
    const root = Math.sqrt(s.data[t]);
    const at = tensor(w.dtype, [m1, n1]);
    for (let i = 0; i < m1 * n1; i++) at.data[i] = root * u.data[i * k + t];
    const bt = tensor(w.dtype, [m2, n2]);
    for (let i = 0; i < m2 * n2; i++) bt.data[i] = root * vt.data[t * m2 * n2 + i];
    a.push(at);
    b.push(bt);
  }
  return { a, b, s: tensor(w.dtype, [rank], sliceData(s, 0, rank)) };
}

/**
 * Principal angles (radians, ascending) between the column spaces of u1 (n×k1) and u2 (n×k2),
 * min(k1, k2) of them. Columns need not be orthonormal. Small angles come from sines
 * (Björck–Golub), so nearly equal subspaces give accurate near-zero angles.
 *
 * @example
 * const theta = await linalg.principalAngles(uBase, uTuned);
 */
export async function principalAngles<F extends FloatDType>(u1: Tensor<F>, u2: Tensor<F>): Promise<Tensor<F>> {
  sameDtype('principalAngles', u1, u2);
  matrixArg('principalAngles', 'u1', u1);
  matrixArg('principalAngles', 'u2', u2);
  if (u1.shape[0] !== u2.shape[0]) throw new LowrankError('E_SHAPE', `principalAngles: u1 [${u1.shape}] and u2 [${u2.shape}] have different row counts`);
  let q1 = (await qr(u1)).q;
  let q2 = (await qr(u2)).q;
  if (q1.shape[1] < q2.shape[1]) [q1, q2] = [q2, q1];
  const m = await matmul(q1, q2, { transA: true }); // k1×k2, k2 ≤ k1
  const cos = await svdvals(m); // descending
  const resid = await matmul(q1, m); // q2 − q1·q1ᵀ·q2
  for (let i = 0; i < resid.data.length; i++) resid.data[i] = q2.data[i] - resid.data[i];
  const sin = await svdvals(resid); // descending: the largest sine pairs with the smallest cosine
  const k = cos.data.length;
  const out = tensor(u1.dtype, [k]);
  for (let i = 0; i < k; i++) {
    const c = Math.min(1, cos.data[i]);
    const sn = Math.min(1, sin.data[k - 1 - i] ?? 0);
    out.data[i] = c > Math.SQRT1_2 ? Math.asin(sn) : Math.acos(c);
  }
  return out;
}
