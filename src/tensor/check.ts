/** Argument checks shared by the tensor routines, and small helpers over the backend's products. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend, type Matrix } from '../backend/index.js';
import { checkFinite, diffSquares, sumSquares } from '../linalg/check.js';

/** A float32 or float64 tensor. */
export type FloatTensor<F extends FloatDType = FloatDType> = Tensor<F>;

/**
 * Checks that `t` is a finite f32/f64 tensor of at least `minOrder` dimensions, none of them zero,
 * and returns it.
 */
export function tensorArg<F extends FloatDType>(routine: string, name: string, t: Tensor<F>, minOrder = 1): Tensor<F> {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') {
    throw new LowrankError('E_USAGE', `${routine}: ${name} has dtype ${String(t.dtype)}; convert it to f32 or f64 first (toFloat)`);
  }
  if (t.shape.length < minOrder) throw new LowrankError('E_SHAPE', `${routine}: ${name} must have at least ${minOrder} dimensions, got [${t.shape}]`, { shape: t.shape });
  if (t.shape.some((d) => !Number.isInteger(d) || d < 1)) throw new LowrankError('E_SHAPE', `${routine}: ${name} has an empty or invalid dimension in [${t.shape}]`, { shape: t.shape });
  checkFinite(routine, name, t.data);
  return t;
}

/** Checks that `mode` is an integer in 0 … order − 1 (negative counts from the end) and returns it non-negative. */
export function modeArg(routine: string, mode: number, order: number): number {
  const m = mode < 0 ? mode + order : mode;
  if (!Number.isInteger(mode) || m < 0 || m >= order) throw new LowrankError('E_USAGE', `${routine}: mode ${mode} is not a dimension of an order-${order} tensor`);
  return m;
}

/** Checks that a rank is an integer ≥ 1 and returns it. */
export function rankArg(routine: string, name: string, r: number): number {
  if (!Number.isInteger(r) || r < 1) throw new LowrankError('E_USAGE', `${routine}: ${name} must be a positive integer, got ${r}`);
  return r;
}

/** The product of a list of dimensions. */
export function prod(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** A tensor's data viewed as a rows×cols matrix (no copy). */
export function asMatrix<F extends FloatDType>(t: Tensor<F>, rows: number, cols: number): Matrix<Storage<F>> {
  return { rows, cols, data: t.data };
}

/** op(a)·op(b) on the backend in use, without the finiteness checks (the callers checked their inputs once). */
export function gemm<F extends FloatDType>(_dtype: F, a: Matrix<Storage<F>>, b: Matrix<Storage<F>>, transA = false, transB = false): Promise<Matrix<Storage<F>>> {
  return backend().matmul(a, b, transA, transB);
}

/** A new zeroed array of the dtype. */
export function alloc<F extends FloatDType>(dtype: F, length: number): Storage<F> {
  return (dtype === 'f32' ? new Float32Array(length) : new Float64Array(length)) as Storage<F>;
}

/** A matrix result as a tensor. */
export function matrixTensor<F extends FloatDType>(dtype: F, m: Matrix<Storage<F>>): Tensor<F> {
  return tensor(dtype, [m.rows, m.cols], m.data);
}

/** ‖x‖_F, accumulated in float64. */
export function frobenius(data: ArrayLike<number>): number {
  return Math.sqrt(sumSquares(data));
}

/** ‖x − y‖_F, accumulated in float64. */
export function frobeniusDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return Math.sqrt(diffSquares(x, y));
}
