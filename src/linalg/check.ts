/** Argument checks shared by the linalg routines, and conversions between Tensor and Matrix. */
import { LowrankError, type ErrorContext } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend, type Matrix } from '../backend/index.js';

/** A float32 or float64 tensor. */
export type FloatTensor<F extends FloatDType = FloatDType> = Tensor<F>;

/** Checks that `t` is a finite 2-D f32/f64 tensor and views it as a matrix (no copy). */
export function matrixArg<F extends FloatDType>(routine: string, name: string, t: Tensor<F>): Matrix<Storage<F>> {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') {
    throw new LowrankError('E_USAGE', `${routine}: ${name} has dtype ${String(t.dtype)}; convert it to f32 or f64 first (toFloat)`);
  }
  if (t.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: ${name} must be a matrix (2-D)`, { shape: t.shape });
  checkFinite(routine, name, t.data);
  return { rows: t.shape[0], cols: t.shape[1], data: t.data };
}

/** Throws E_NONFINITE naming the routine, the argument and the first bad element (and where, when given). */
export function checkFinite(routine: string, name: string, data: Float32Array | Float64Array, where?: ErrorContext): void {
  if (backend().allFinite(data)) return;
  const i = data.findIndex((v) => !Number.isFinite(v));
  throw new LowrankError('E_NONFINITE', `${routine}: ${name} holds ${data[i]} at element ${i}; inputs must be finite`, where);
}

/** Checks that two arguments share a dtype. */
export function sameDtype(routine: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new LowrankError('E_USAGE', `${routine}: arguments have dtypes ${a.dtype} and ${b.dtype}; convert one so they match`);
}

/** A matrix result as a tensor of the given dtype. */
export function toTensor<F extends FloatDType>(dtype: F, m: Matrix<Storage<F>>): Tensor<F> {
  return tensor(dtype, [m.rows, m.cols], m.data);
}

/** A 1-D result as a tensor. */
export function vector<F extends FloatDType>(dtype: F, data: Storage<F>): Tensor<F> {
  return tensor(dtype, [data.length], data);
}

/** The machine epsilon of a dtype. */
export function eps(dtype: FloatDType): number {
  return dtype === 'f32' ? 2 ** -23 : 2 ** -52;
}

/** A copy of elements [start, end) of a tensor's storage, keeping its type. */
export function sliceData<F extends FloatDType>(t: Tensor<F>, start: number, end: number): Storage<F> {
  return t.data.slice(start, end) as Storage<F>;
}

/** Σ xᵢ², accumulated in float64. */
export function sumSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** Σ (xᵢ − yᵢ)², accumulated in float64. */
export function diffSquares(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    s += d * d;
  }
  return s;
}
