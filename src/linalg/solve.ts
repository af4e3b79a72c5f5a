/** Linear systems: triangular solves, square solves by LU, and least squares by SVD. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import { eps, matrixArg, sameDtype, toTensor } from './check.js';
import { svd } from './decompositions.js';
import { matmul } from './matmul.js';

/** Options of {@link solveTriangular}. */
export interface TriangularOptions {
  /** t is lower triangular (default) or upper. */
  lower?: boolean;
  /** Solve tᵀ · x = b instead. */
  trans?: boolean;
  /** Take t's diagonal as ones. */
  unitDiagonal?: boolean;
}

/** b as a matrix: a vector of length n becomes n×1. */
function rhs<F extends FloatDType>(routine: string, b: Tensor<F>): Tensor<F> {
  return b.shape.length === 1 ? tensor(b.dtype, [b.shape[0], 1], b.data) : b;
}

function likeB<F extends FloatDType>(b: Tensor<F>, x: Tensor<F>): Tensor<F> {
  return b.shape.length === 1 ? tensor(x.dtype, [x.shape[0]], x.data) : x;
}

/**
 * Solves op(t) · x = b for a square triangular t; b is a vector or an n×k matrix.
 *
 * @example
 * const x = await linalg.solveTriangular(l, b, { lower: true });
 */
export async function solveTriangular<F extends FloatDType>(t: Tensor<F>, b: Tensor<F>, opts: TriangularOptions = {}): Promise<Tensor<F>> {
  const routine = 'solveTriangular';
  sameDtype(routine, t, b);
  const tm = matrixArg(routine, 't', t);
  const bm = matrixArg(routine, 'b', rhs(routine, b));
  if (tm.rows !== tm.cols || bm.rows !== tm.rows) throw new LowrankError('E_SHAPE', `${routine}: t [${t.shape}] must be square with as many rows as b [${b.shape}]`);
  const x = await backend().solveTriangular(tm, bm, { lower: opts.lower ?? true, trans: opts.trans ?? false, unitDiagonal: opts.unitDiagonal ?? false });
  return likeB(b, toTensor(t.dtype, x));
}

/**
 * Solves a · x = b for square a by LU with partial pivoting; E_NUMERIC when a is singular.
 *
 * @example
 * const x = await linalg.solve(a, b);
 */
export async function solve<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>): Promise<Tensor<F>> {
  const routine = 'solve';
  sameDtype(routine, a, b);
  const am = matrixArg(routine, 'a', a);
  const b2 = rhs(routine, b);
  const bm = matrixArg(routine, 'b', b2);
  const n = am.rows;
  if (am.cols !== n || bm.rows !== n) throw new LowrankError('E_SHAPE', `${routine}: a [${a.shape}] must be square with as many rows as b [${b.shape}]`);
  const { lu: packed, perm } = await backend().lu(am);
  for (let i = 0; i < n; i++) {
    if (packed.data[i * n + i] === 0) throw new LowrankError('E_NUMERIC', `${routine}: a is singular (zero pivot at ${i})`);
  }
  const k = bm.cols;
  const pb = tensor(b.dtype, [n, k]);
  for (let i = 0; i < n; i++) pb.data.set(bm.data.subarray(perm[i] * k, (perm[i] + 1) * k), i * k);
  const be = backend();
  const y = await be.solveTriangular(packed, { rows: n, cols: k, data: pb.data as Storage<F> }, { lower: true, trans: false, unitDiagonal: true });
  const x = await be.solveTriangular(packed, y, { lower: false, trans: false, unitDiagonal: false });
  return likeB(b, toTensor(a.dtype, x));
}

/**
 * Least squares min ‖a·x − b‖ with the minimum-norm solution when a is rank-deficient, by SVD:
 * singular values below `rcond · σ₁` (default eps · max(m, n)) count as zero.
 *
 * @example
 * const { x, rank } = await linalg.lstsq(a, b);
 */
export async function lstsq<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>, opts: { rcond?: number } = {}): Promise<{ x: Tensor<F>; rank: number; s: Tensor<F> }> {
  const routine = 'lstsq';
  sameDtype(routine, a, b);
  matrixArg(routine, 'a', a);
  const b2 = rhs(routine, b);
  matrixArg(routine, 'b', b2);
  const [m, n] = a.shape;
  if (b2.shape[0] !== m) throw new LowrankError('E_SHAPE', `${routine}: a [${a.shape}] and b [${b.shape}] have different row counts`);
  const { u, s, vt } = await svd(a);
  const k = s.data.length;
  const cutoff = (opts.rcond ?? eps(a.dtype) * Math.max(m, n)) * (k > 0 ? s.data[0] : 0);
  let rank = 0;
  while (rank < k && s.data[rank] > cutoff) rank++;
  const utb = await matmul(u, b2, { transA: true }); // k×c
  const c = b2.shape[1];
  for (let i = 0; i < k; i++) for (let j = 0; j < c; j++) utb.data[i * c + j] = i < rank ? utb.data[i * c + j] / s.data[i] : 0;
  const x = n === 0 ? tensor(a.dtype, [0, c]) : await matmul(vt, utb, { transA: true });
  return { x: likeB(b, x), rank, s };
}
