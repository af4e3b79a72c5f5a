/**
 * The dense factorizations: QR, SVD (thin, full, values only), symmetric eigendecomposition, LU,
 * LDU and Cholesky. Every routine takes a finite 2-D f32/f64 tensor and returns tensors of the
 * same dtype, computed on the current backend. All return Promises.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import { matrixArg, toTensor, vector } from './check.js';

/**
 * Thin QR by Householder reflections: a (m×n) = q (m×k) · r (k×n), k = min(m, n).
 *
 * @example
 * const { q, r } = await linalg.qr(a);
 */
export async function qr<F extends FloatDType>(a: Tensor<F>): Promise<{ q: Tensor<F>; r: Tensor<F> }> {
  const res = await backend().qr(matrixArg('qr', 'a', a));
  return { q: toTensor(a.dtype, res.q), r: toTensor(a.dtype, res.r) };
}

/** Options of {@link svd}. */
export interface SvdOptions {
  /** Square U (m×m) and Vᵀ (n×n) instead of the thin m×k and k×n. */
  full?: boolean;
}

/**
 * Singular value decomposition a = u · diag(s) · vt, s descending. Thin by default (k = min(m, n));
 * `{ full: true }` completes u and vt to square orthogonal matrices; {@link svdvals} computes the
 * values only. Small singular values are as accurate as the dtype allows (no Gram-matrix shortcut).
 *
 * @example
 * const { u, s, vt } = await linalg.svd(w);
 */
export async function svd<F extends FloatDType>(a: Tensor<F>, opts: SvdOptions = {}): Promise<{ u: Tensor<F>; s: Tensor<F>; vt: Tensor<F> }> {
  const res = await backend().svd(matrixArg('svd', 'a', a), opts.full ? 'full' : 'thin');
  if (res.u === undefined || res.vt === undefined) throw new LowrankError('E_INTERNAL', 'svd: backend returned no singular vectors');
  return { u: toTensor(a.dtype, res.u), s: vector(a.dtype, res.s), vt: toTensor(a.dtype, res.vt) };
}

/**
 * The singular values of a, descending.
 *
 * @example
 * const s = await linalg.svdvals(w);
 */
export async function svdvals<F extends FloatDType>(a: Tensor<F>): Promise<Tensor<F>> {
  const res = await backend().svd(matrixArg('svdvals', 'a', a), 'values');
  return vector(a.dtype, res.s);
}

/**
 * The r smallest singular triplets, accurately: an exact thin SVD whose last r triplets are kept
 * (randomized sketches resolve the top of a spectrum, not its bottom), returned ascending by value.
 *
 * @example
 * const { u, s, vt } = await linalg.svdSmallest(w, 16); // MiLoRA's minor components
 */
export async function svdSmallest<F extends FloatDType>(a: Tensor<F>, r: number): Promise<{ u: Tensor<F>; s: Tensor<F>; vt: Tensor<F> }> {
  const k = Math.min(...a.shape);
  if (!Number.isInteger(r) || r < 1 || r > k) throw new LowrankError('E_USAGE', `svdSmallest: r must be an integer in 1..${k}, got ${r}`);
  const { u, s, vt } = await svd(a);
  const [m, n] = a.shape;
  const order = Array.from({ length: r }, (_, i) => k - 1 - i);
  const uo = tensor(a.dtype, [m, r]);
  const vo = tensor(a.dtype, [r, n]);
  const so = tensor(a.dtype, [r]);
  order.forEach((src, dst) => {
    so.data[dst] = s.data[src];
    for (let i = 0; i < m; i++) uo.data[i * r + dst] = u.data[i * k + src];
    vo.data.set(vt.data.subarray(src * n, (src + 1) * n), dst * n);
  });
  return { u: uo, s: so, vt: vo };
}

/**
 * Symmetric eigendecomposition from the lower triangle of a: values ascending, vectors as columns.
 *
 * @example
 * const { values, vectors } = await linalg.eigh(cov);
 */
export async function eigh<F extends FloatDType>(a: Tensor<F>): Promise<{ values: Tensor<F>; vectors: Tensor<F> }> {
  const m = matrixArg('eigh', 'a', a);
  square('eigh', a);
  const res = await backend().eigh(m, true);
  if (res.vectors === undefined) throw new LowrankError('E_INTERNAL', 'eigh: backend returned no vectors');
  return { values: vector(a.dtype, res.values), vectors: toTensor(a.dtype, res.vectors) };
}

/**
 * LU with partial pivoting: a[perm] = l · u, l unit lower (m×k), u upper (k×n), k = min(m, n); row
 * i of a[perm] is row perm[i] of a.
 *
 * @example
 * const { l, u, perm } = await linalg.lu(a);
 */
export async function lu<F extends FloatDType>(a: Tensor<F>): Promise<{ l: Tensor<F>; u: Tensor<F>; perm: Int32Array }> {
  const res = await backend().lu(matrixArg('lu', 'a', a));
  const [m, n] = a.shape;
  const k = Math.min(m, n);
  const l = tensor(a.dtype, [m, k]);
  const u = tensor(a.dtype, [k, n]);
  const p = res.lu.data;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = p[i * n + j];
      if (j < i && j < k) l.data[i * k + j] = v;
      else if (i < k) u.data[i * n + j] = v;
    }
    if (i < k) l.data[i * k + i] = 1;
  }
  return { l, u, perm: res.perm };
}

/**
 * LDU with partial pivoting: a[perm] = l · diag(d) · u with l unit lower and u unit upper (the
 * factorization LoLDU starts from). Throws E_NUMERIC at a zero pivot (a singular leading block).
 *
 * @example
 * const { l, d, u, perm } = await linalg.ldu(w);
 */
export async function ldu<F extends FloatDType>(a: Tensor<F>): Promise<{ l: Tensor<F>; d: Tensor<F>; u: Tensor<F>; perm: Int32Array }> {
  const { l, u, perm } = await lu(a);
  const [k, n] = u.shape;
  const d = tensor(a.dtype, [k]);
  for (let i = 0; i < k; i++) {
    const piv = u.data[i * n + i];
    if (piv === 0) throw new LowrankError('E_NUMERIC', `ldu: zero pivot at ${i}: the leading ${i + 1}×${i + 1} block is singular`);
    d.data[i] = piv;
    for (let j = i; j < n; j++) u.data[i * n + j] /= piv;
  }
  return { l, d, u, perm };
}

/**
 * Lower Cholesky factor of a symmetric positive definite matrix (from its lower triangle);
 * E_NUMERIC when it is not positive definite.
 *
 * @example
 * const l = await linalg.cholesky(gram);
 */
export async function cholesky<F extends FloatDType>(a: Tensor<F>): Promise<Tensor<F>> {
  const m = matrixArg('cholesky', 'a', a);
  square('cholesky', a);
  return toTensor(a.dtype, await backend().cholesky(m));
}

function square(routine: string, a: Tensor): void {
  if (a.shape[0] !== a.shape[1]) throw new LowrankError('E_SHAPE', `${routine}: matrix must be square`, { shape: a.shape });
}

