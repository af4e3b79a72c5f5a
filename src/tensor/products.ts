/** Mode products, Khatri–Rao and Kronecker products. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { foldData, unfoldData } from './unfold.js';
import { alloc, gemm, modeArg, prod, tensorArg } from './check.js';

/** Options of {@link modeProduct}. */
export interface ModeProductOptions {
  /** Multiply by the transpose of the matrix (an I_n × J matrix then maps mode n from I_n to J). */
  transpose?: boolean;
}

/**
 * The mode-n product x ×ₙ M: mode n of x (size I) is replaced by M's rows (M is J×I), i.e.
 * y[…, j, …] = Σᵢ M[j, i]·x[…, i, …] (TensorLy's `mode_dot`); with `transpose`, M is I×J and Mᵀ is
 * used.
 *
 * @example
 * const y = await tensor.modeProduct(x, u, 0, { transpose: true }); // x ×₀ uᵀ: project mode 0 onto u's columns
 */
export async function modeProduct<F extends FloatDType>(x: Tensor<F>, matrix: Tensor<F>, mode: number, opts: ModeProductOptions = {}): Promise<Tensor<F>> {
  const routine = 'modeProduct';
  tensorArg(routine, 'x', x);
  tensorArg(routine, 'matrix', matrix, 2);
  if (matrix.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: matrix must be 2-D, got [${matrix.shape}]`, { shape: matrix.shape });
  if (matrix.dtype !== x.dtype) throw new LowrankError('E_USAGE', `${routine}: x is ${x.dtype} and matrix ${matrix.dtype}; convert one so they match`);
  const n = modeArg(routine, mode, x.shape.length);
  const trans = opts.transpose ?? false;
  const [rows, cols] = matrix.shape;
  const inner = trans ? rows : cols;
  if (inner !== x.shape[n]) {
    throw new LowrankError('E_SHAPE', `${routine}: a [${matrix.shape}]${trans ? 'ᵀ' : ''} matrix cannot multiply mode ${n} of size ${x.shape[n]}`, { shape: x.shape });
  }
  return modeProductUnchecked(x, matrix, n, trans);
}

/** {@link modeProduct} without the argument checks (mode non-negative, shapes and dtypes valid). */
export async function modeProductUnchecked<F extends FloatDType>(x: Tensor<F>, matrix: Tensor<F>, n: number, trans: boolean): Promise<Tensor<F>> {
  const [rows, cols] = matrix.shape;
  const dim = x.shape[n];
  const outDim = trans ? cols : rows;
  const before = prod(x.shape.slice(0, n));
  const after = prod(x.shape.slice(n + 1));
  const shape = x.shape.map((d, k) => (k === n ? outDim : d));
  const m = { rows, cols, data: matrix.data };
  if (after === 1) {
    // y (before × J) = X (before × I) · op(M)ᵀ
    const c = await gemm(x.dtype, { rows: before, cols: dim, data: x.data }, m, false, !trans);
    return tensor(x.dtype, shape, c.data);
  }
  if (before === 1) {
    const c = await gemm(x.dtype, m, { rows: dim, cols: after, data: x.data }, trans, false);
    return tensor(x.dtype, shape, c.data);
  }
  if (after >= 32) {
    // One product per leading index: y_a (J × after) = op(M) · X_a (I × after).
    const out = alloc(x.dtype, before * outDim * after);
    for (let a = 0; a < before; a++) {
      const xa = x.data.subarray(a * dim * after, (a + 1) * dim * after) as Storage<F>;
      const c = await gemm(x.dtype, m, { rows: dim, cols: after, data: xa }, trans, false);
      out.set(c.data, a * outDim * after);
    }
    return tensor(x.dtype, shape, out);
  }
  // Narrow trailing block: through the unfolding, one product.
  const c = await gemm(x.dtype, m, { rows: dim, cols: before * after, data: unfoldData(x, n) }, trans, false);
  return tensor(x.dtype, shape, foldData(x.dtype, c.data, n, shape));
}

/**
 * x multiplied along several modes: matrices[k] along modes[k] (default: mode k), each with
 * `transpose` as in {@link modeProduct}. Modes that shrink are done first, to keep the
 * intermediate tensors small.
 *
 * @example
 * const core = await tensor.multiModeProduct(x, factors, { transpose: true }); // x ×₀ U₀ᵀ ×₁ U₁ᵀ …
 */
export async function multiModeProduct<F extends FloatDType>(
  x: Tensor<F>,
  matrices: readonly Tensor<F>[],
  opts: ModeProductOptions & { modes?: readonly number[] } = {},
): Promise<Tensor<F>> {
  const routine = 'multiModeProduct';
  const modes = opts.modes ?? matrices.map((_, k) => k);
  if (modes.length !== matrices.length) throw new LowrankError('E_USAGE', `${routine}: ${matrices.length} matrices for ${modes.length} modes`);
  if (new Set(modes.map((m) => modeArg(routine, m, x.shape.length))).size !== modes.length) throw new LowrankError('E_USAGE', `${routine}: a mode is listed twice in [${modes}]`);
  const trans = opts.transpose ?? false;
  // Shrinking products first (largest reduction ratio first).
  const order = modes.map((m, k) => k).sort((p, q) => ratio(matrices[p], trans) - ratio(matrices[q], trans));
  let y = x;
  for (const k of order) y = await modeProduct(y, matrices[k], modes[k], { transpose: trans });
  return y;
}

function ratio(m: Tensor, trans: boolean): number {
  const [r, c] = m.shape;
  return trans ? c / r : r / c;
}

/**
 * The Khatri–Rao (column-wise Kronecker) product of matrices with the same number of columns R:
 * row (i₀, i₁, …) (the first matrix's index slowest) of the result is the elementwise product of
 * their rows; shape [Π rows, R] (TensorLy's `khatri_rao`).
 *
 * @example
 * const kr = tensor.khatriRao([b, c]); // [J·K, R]
 */
export function khatriRao<F extends FloatDType>(matrices: readonly Tensor<F>[]): Tensor<F> {
  const routine = 'khatriRao';
  if (matrices.length === 0) throw new LowrankError('E_USAGE', `${routine}: no matrices`);
  for (const [k, m] of matrices.entries()) {
    tensorArg(routine, `matrices[${k}]`, m, 2);
    if (m.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: matrices[${k}] must be 2-D, got [${m.shape}]`);
    if (m.dtype !== matrices[0].dtype) throw new LowrankError('E_USAGE', `${routine}: matrices have dtypes ${matrices[0].dtype} and ${m.dtype}`);
    if (m.shape[1] !== matrices[0].shape[1]) throw new LowrankError('E_SHAPE', `${routine}: matrices have ${matrices[0].shape[1]} and ${m.shape[1]} columns`);
  }
  return khatriRaoUnchecked(matrices);
}

/** {@link khatriRao} without the argument checks. */
export function khatriRaoUnchecked<F extends FloatDType>(matrices: readonly Tensor<F>[]): Tensor<F> {
  const r = matrices[0].shape[1];
  let rows = 1;
  let acc: Float64Array = new Float64Array(r).fill(1);
  for (const m of matrices) {
    const mr = m.shape[0];
    const next = new Float64Array(rows * mr * r);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < mr; j++) {
        const o = (i * mr + j) * r;
        for (let c = 0; c < r; c++) next[o + c] = acc[i * r + c] * m.data[j * r + c];
      }
    }
    acc = next;
    rows *= mr;
  }
  const dtype = matrices[0].dtype;
  return tensor(dtype, [rows, r], dtype === 'f64' ? (acc as Storage<F>) : (Float32Array.from(acc) as Storage<F>));
}

/**
 * The Kronecker product a ⊗ b of two matrices: shape [rows(a)·rows(b), cols(a)·cols(b)], block
 * (i, j) equal to a[i, j]·b.
 *
 * @example
 * const w = tensor.kron(a, b); // [p·r, q·s]
 */
export function kron<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>): Tensor<F> {
  const routine = 'kron';
  tensorArg(routine, 'a', a, 2);
  tensorArg(routine, 'b', b, 2);
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: a and b must be 2-D, got [${a.shape}] and [${b.shape}]`);
  if (a.dtype !== b.dtype) throw new LowrankError('E_USAGE', `${routine}: a is ${a.dtype} and b ${b.dtype}`);
  const [p, q] = a.shape;
  const [r, s] = b.shape;
  const out = alloc(a.dtype, p * r * q * s);
  const cols = q * s;
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < q; j++) {
      const aij = a.data[i * q + j];
      for (let k = 0; k < r; k++) {
        const o = (i * r + k) * cols + j * s;
        for (let l = 0; l < s; l++) out[o + l] = aij * b.data[k * s + l];
      }
    }
  }
  return tensor(a.dtype, [p * r, q * s], out);
}
