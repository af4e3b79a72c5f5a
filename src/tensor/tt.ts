/**
 * Tensor trains (matrix product states) by TT-SVD (Oseledets 2011, TensorLy's `tensor_train`), and
 * tensor-train matrices (matrix product operators, TensorLy's `tensor_train_matrix`) for
 * tensorized weight matrices.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import { alloc, frobenius, gemm, prod, tensorArg } from './check.js';
import { matrixFromTensorizedUnchecked, tensorizeArgs, tensorizeUnchecked } from './tensorize.js';
import type { TTMatrix, TTTensor } from './types.js';

/** Options of {@link tensorTrain}. */
export interface TensorTrainOptions {
  /**
   * The largest rank of each bond: one number for all, or a list of the d − 1 inner ranks
   * [r₁, …, r_{d−1}] (TensorLy's full list [1, r₁, …, r_{d−1}, 1] is accepted too). A rank above
   * what the bond can hold is lowered to it.
   */
  maxRank?: number | readonly number[];
  /**
   * Relative accuracy in (0, 1): each bond drops its smallest singular values while the dropped
   * energy √Σσ² stays ≤ tol/√(d − 1)·‖x‖_F, which guarantees ‖x − tt‖_F ≤ tol·‖x‖_F (a
   * `maxRank` that cuts further voids the guarantee).
   */
  tol?: number;
}

/** Options of {@link ttMatrix}. */
export interface TTMatrixOptions extends TensorTrainOptions {
  /** The factors of the row count, M = Π rowDims (one per core). */
  rowDims: readonly number[];
  /** The factors of the column count, N = Π colDims (as many as rowDims). */
  colDims: readonly number[];
}

/**
 * The tensor train of x by TT-SVD: a left-to-right sweep of truncated SVDs of the reshaped
 * remainder (exact thin SVDs, no Gram matrix), computed in x's dtype. Core k has shape
 * [r_k, I_k, r_{k+1}], r₀ = r_d = 1; cores 0 … d − 2 have orthonormal columns as
 * [r_k·I_k, r_{k+1}] matrices (left-orthogonal), the last core carries the norm. With neither
 * `maxRank` nor `tol` the train is exact with the full ranks r_k = min(Π_{<k} I, Π_{≥k} I)
 * (up to rounding); with `tol`, ‖x − tt‖_F ≤ tol·‖x‖_F; a bond never drops below rank 1.
 *
 * @example
 * const tt = await tensor.tensorTrain(x, { tol: 0.05 });       // ≤ 5% relative error
 * const tt8 = await tensor.tensorTrain(x, { maxRank: 8 });     // every bond rank ≤ 8
 * tensor.ttRanks(tt);                                          // [1, r₁, …, 1]
 */
export async function tensorTrain<F extends FloatDType>(x: Tensor<F>, opts: TensorTrainOptions = {}): Promise<TTTensor<F>> {
  const routine = 'tensorTrain';
  tensorArg(routine, 'x', x);
  const limits = ttOptionsArg(routine, x.shape.length, opts);
  const cores = await ttSvd(x.dtype, x.data, x.shape, limits);
  return { kind: 'tt', cores, shape: [...x.shape] };
}

/**
 * The tensor-train matrix (MPO) of a [M, N] matrix w, M = Π rowDims, N = Π colDims: TT-SVD (as
 * {@link tensorTrain}, same `maxRank` and `tol`) of w tensorized with interleaved factors and
 * merged pairs, [m₀·n₀, m₁·n₁, …], its cores reshaped to [r_k, m_k, n_k, r_{k+1}] (TensorLy's
 * `tensor_train_matrix`). W[(i₀ i₁ …), (j₀ j₁ …)] = G₀[:, i₀, j₀, :]·G₁[:, i₁, j₁, :]⋯ with row and
 * column indices row-major over their factors; a Kronecker product A₀ ⊗ A₁ ⊗ … of m_k × n_k
 * matrices has all ranks 1.
 *
 * @example
 * const ttm = await tensor.ttMatrix(w, { rowDims: [16, 16, 16], colDims: [16, 16, 16], tol: 0.1 }); // w: [4096, 4096]
 * const w2 = await tensor.ttMatrixToMatrix(ttm); // ‖w − w2‖_F ≤ 0.1·‖w‖_F
 */
export async function ttMatrix<F extends FloatDType>(w: Tensor<F>, opts: TTMatrixOptions): Promise<TTMatrix<F>> {
  const routine = 'ttMatrix';
  if (opts === undefined || opts === null || typeof opts !== 'object') throw new LowrankError('E_USAGE', `${routine}: options { rowDims, colDims } are required`);
  const { rowDims, colDims } = opts;
  tensorizeArgs(routine, w, rowDims, colDims, true);
  const d = rowDims.length;
  const limits = ttOptionsArg(routine, d, opts);
  const sites = rowDims.map((m, k) => m * colDims[k]);
  const t = tensorizeUnchecked(w, rowDims, colDims, true);
  const cores = await ttSvd(w.dtype, t.data, sites, limits);
  return {
    kind: 'ttMatrix',
    cores: cores.map((g, k) => tensor(g.dtype, [g.shape[0], rowDims[k], colDims[k], g.shape[2]], g.data)),
    rowDims: [...rowDims],
    colDims: [...colDims],
  };
}

/**
 * The full tensor of a tensor train (TensorLy's `tt_to_tensor`), in the cores' dtype.
 *
 * @example
 * const y = await tensor.ttToTensor(tt); // y.shape equals tt.shape
 */
export async function ttToTensor<F extends FloatDType>(tt: TTTensor<F>): Promise<Tensor<F>> {
  const routine = 'ttToTensor';
  const cores = coresArg(routine, tt, 3);
  const shape = cores.map((g) => g.shape[1]);
  if (Array.isArray(tt.shape) && (tt.shape.length !== shape.length || tt.shape.some((s, k) => s !== shape[k]))) {
    throw new LowrankError('E_SHAPE', `${routine}: the cores' dimensions [${shape}] do not match the shape [${tt.shape}]`, { shape: tt.shape });
  }
  return tensor(cores[0].dtype, shape, await contract(cores));
}

/**
 * The full [Π rowDims, Π colDims] matrix of a tensor-train matrix (TensorLy's
 * `tt_matrix_to_matrix`), in the cores' dtype.
 *
 * @example
 * const w2 = await tensor.ttMatrixToMatrix(ttm); // [M, N]
 */
export async function ttMatrixToMatrix<F extends FloatDType>(ttm: TTMatrix<F>): Promise<Tensor<F>> {
  const routine = 'ttMatrixToMatrix';
  const cores = coresArg(routine, ttm, 4);
  const rowDims = cores.map((g) => g.shape[1]);
  const colDims = cores.map((g) => g.shape[2]);
  const same = (a: readonly number[] | undefined, b: number[]): boolean => a === undefined || (a.length === b.length && a.every((v, k) => v === b[k]));
  if (!same(ttm.rowDims, rowDims) || !same(ttm.colDims, colDims)) {
    throw new LowrankError('E_SHAPE', `${routine}: the cores' dimensions (rows [${rowDims}], columns [${colDims}]) do not match rowDims [${ttm.rowDims}] and colDims [${ttm.colDims}]`);
  }
  const merged = cores.map((g) => tensor(g.dtype, [g.shape[0], g.shape[1] * g.shape[2], g.shape[3]], g.data));
  const t = tensor(cores[0].dtype, rowDims.flatMap((m, k) => [m, colDims[k]]), await contract(merged));
  return matrixFromTensorizedUnchecked(t, rowDims, colDims, true);
}

/**
 * The bond ranks [1, r₁, …, r_{d−1}, 1] of a tensor train or tensor-train matrix.
 *
 * @example
 * tensor.ttRanks(tt); // e.g. [1, 3, 4, 2, 1]
 */
export function ttRanks(tt: TTTensor | TTMatrix): number[] {
  if (tt.cores.length === 0) throw new LowrankError('E_USAGE', 'ttRanks: a tensor train has at least one core');
  return [...tt.cores.map((g) => g.shape[0]), tt.cores[tt.cores.length - 1].shape[tt.cores[tt.cores.length - 1].shape.length - 1]];
}

/**
 * The number of stored values of a tensor train, Σ_k r_k·I_k·r_{k+1}.
 *
 * @example
 * tensor.ttParameters(tt) / tt.shape.reduce((a, b) => a * b); // compression ratio
 */
export function ttParameters(tt: TTTensor): number {
  return tt.cores.reduce((s, g) => s + prod(g.shape), 0);
}

/**
 * The number of stored values of a tensor-train matrix, Σ_k r_k·m_k·n_k·r_{k+1}.
 *
 * @example
 * tensor.ttMatrixParameters(ttm) / (4096 * 4096); // compression ratio of a 4096×4096 weight
 */
export function ttMatrixParameters(ttm: TTMatrix): number {
  return ttm.cores.reduce((s, g) => s + prod(g.shape), 0);
}

/** How each bond is truncated: the rank caps (d − 1 of them) and the per-bond dropped-energy bound factor. */
interface Limits {
  maxRank: readonly number[] | undefined;
  /** tol/√(d − 1), or undefined. */
  bondTol: number | undefined;
}

/** Checks maxRank and tol against an order-d train. */
function ttOptionsArg(routine: string, d: number, opts: TensorTrainOptions): Limits {
  const { maxRank, tol } = opts;
  let caps: number[] | undefined;
  if (maxRank !== undefined) {
    let list: readonly number[];
    if (typeof maxRank === 'number') list = new Array<number>(Math.max(d - 1, 0)).fill(maxRank);
    else if (Array.isArray(maxRank) && maxRank.length === d - 1) list = maxRank;
    else if (Array.isArray(maxRank) && maxRank.length === d + 1 && maxRank[0] === 1 && maxRank[d] === 1) list = maxRank.slice(1, d);
    else throw new LowrankError('E_USAGE', `${routine}: maxRank must be a number or a list of the ${d - 1} inner ranks (or [1, …, 1] of ${d + 1}), got ${JSON.stringify(maxRank)}`);
    for (const r of list) {
      if (!Number.isInteger(r) || r < 1) throw new LowrankError('E_USAGE', `${routine}: maxRank must be positive integers, got ${JSON.stringify(maxRank)}`);
    }
    caps = [...list];
  }
  if (tol !== undefined && !(typeof tol === 'number' && tol > 0 && tol < 1)) {
    throw new LowrankError('E_USAGE', `${routine}: tol must be a number in (0, 1), got ${String(tol)} (leave it out for an exact train)`);
  }
  return { maxRank: caps, bondTol: tol !== undefined && d > 1 ? tol / Math.sqrt(d - 1) : undefined };
}

/**
 * The rank a bond keeps: the smallest r ≥ 1 whose dropped tail √Σ_{i≥r} σᵢ² is ≤ delta (all of s
 * when delta is undefined), then capped.
 */
function truncationRank(s: ArrayLike<number>, delta: number | undefined, cap: number | undefined): number {
  let r = s.length;
  if (delta !== undefined) {
    const bound = delta * delta;
    let dropped = 0;
    while (r > 1) {
      const next = dropped + s[r - 1] * s[r - 1];
      if (next > bound) break;
      dropped = next;
      r--;
    }
  }
  return cap === undefined ? r : Math.max(1, Math.min(r, cap));
}

/** TT-SVD of `data` (already checked) over `shape`: the cores, in the dtype. */
async function ttSvd<F extends FloatDType>(dtype: F, data: Storage<F>, shape: readonly number[], limits: Limits): Promise<Tensor<F>[]> {
  const d = shape.length;
  const delta = limits.bondTol === undefined ? undefined : limits.bondTol * frobenius(data);
  const cores: Tensor<F>[] = [];
  let rest: Storage<F> = data;
  let rPrev = 1;
  for (let k = 0; k < d - 1; k++) {
    const rows = rPrev * shape[k];
    const cols = rest.length / rows;
    // The remainder's unfolding is its row-major reshape: no copy.
    const res = await backend().svd({ rows, cols, data: rest }, 'thin');
    if (res.u === undefined || res.vt === undefined) throw new LowrankError('E_INTERNAL', 'tensorTrain: backend returned no singular vectors');
    const full = res.s.length;
    const r = truncationRank(res.s, delta, limits.maxRank?.[k]);
    cores.push(tensor(dtype, [rPrev, shape[k], r], leadingColumns(dtype, res.u.data as Storage<F>, rows, full, r)));
    // rest ← diag(s[:r])·Vt[:r, :] (r × cols).
    const next = alloc(dtype, r * cols);
    const vt = res.vt.data;
    for (let i = 0; i < r; i++) {
      const si = res.s[i];
      const o = i * cols;
      for (let j = 0; j < cols; j++) next[o + j] = si * vt[o + j];
    }
    rest = next;
    rPrev = r;
  }
  cores.push(tensor(dtype, [rPrev, shape[d - 1], 1], d === 1 ? (rest.slice() as Storage<F>) : rest));
  return cores;
}

/** The first r columns of a rows × cols row-major matrix (a copy). */
function leadingColumns<F extends FloatDType>(dtype: F, a: Storage<F>, rows: number, cols: number, r: number): Storage<F> {
  if (r === cols) return a;
  const out = alloc(dtype, rows * r);
  for (let i = 0; i < rows; i++) out.set(a.subarray(i * cols, i * cols + r), i * r);
  return out;
}

/** Checks a train's cores: `order`-D, one finite dtype, chained ranks, end ranks 1. */
function coresArg<F extends FloatDType>(routine: string, tt: { cores: readonly Tensor<F>[] }, order: number): readonly Tensor<F>[] {
  const cores = tt?.cores;
  if (!Array.isArray(cores) || cores.length === 0) throw new LowrankError('E_USAGE', `${routine}: a tensor train has at least one core`);
  for (const [k, g] of cores.entries()) {
    tensorArg(routine, `cores[${k}]`, g, order);
    if (g.shape.length !== order) throw new LowrankError('E_SHAPE', `${routine}: cores[${k}] must have ${order} dimensions, got [${g.shape}]`, { shape: g.shape });
    if (g.dtype !== cores[0].dtype) throw new LowrankError('E_USAGE', `${routine}: cores have dtypes ${cores[0].dtype} and ${g.dtype}`);
    const left = k === 0 ? 1 : cores[k - 1].shape[order - 1];
    if (g.shape[0] !== left) {
      throw new LowrankError('E_SHAPE', `${routine}: cores[${k}] has left rank ${g.shape[0]}, expected ${left}${k === 0 ? ' (the first rank is 1)' : ` (the right rank of cores[${k - 1}])`}`, { shape: g.shape });
    }
  }
  const last = cores[cores.length - 1];
  if (last.shape[order - 1] !== 1) throw new LowrankError('E_SHAPE', `${routine}: the last core's right rank must be 1, got [${last.shape}]`, { shape: last.shape });
  return cores;
}

/** The contraction of chained [r_k, I_k, r_{k+1}] cores: the row-major data of the [I₀, I₁, …] tensor. */
async function contract<F extends FloatDType>(cores: readonly Tensor<F>[]): Promise<Storage<F>> {
  const dtype = cores[0].dtype;
  // acc: (I₀⋯I_{k−1}) × r_k; times core k as r_k × (I_k·r_{k+1}) gives (I₀⋯I_k) × r_{k+1} row-major.
  let acc: Storage<F> = cores[0].data.slice() as Storage<F>;
  let rows = cores[0].shape[1];
  for (let k = 1; k < cores.length; k++) {
    const [r, dim, rNext] = cores[k].shape;
    const c = await gemm(dtype, { rows, cols: r, data: acc }, { rows: r, cols: dim * rNext, data: cores[k].data });
    acc = c.data;
    rows *= dim;
  }
  return acc;
}
