/**
 * The Tensor: a row-major array with a shape, an element type and typed-array storage.
 */
import { LowrankError } from './errors.js';
import { decodeInto, dtypeBytes, f32ToBf16, f32ToF16, f64ToHalf, makeStorage, type DType, type FloatDType, type Storage } from './dtype.js';

/** A row-major tensor. `data.length` equals the product of `shape`. */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: Storage<D>;
}

/** A tensor's name, element type and shape, without its data. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** The number of elements of a shape (1 for a scalar). Throws when it is not a safe integer. */
export function numel(shape: readonly number[]): number {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new LowrankError('E_SHAPE', `shape dimension ${String(d)} is not a non-negative integer`, { shape });
    }
  }
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new LowrankError('E_SHAPE', 'element count overflows', { shape });
  }
  return n;
}

/** Bytes taken by a tensor of this dtype and shape. */
export function byteSize(dtype: DType, shape: readonly number[]): number {
  return numel(shape) * dtypeBytes(dtype);
}

/** A tensor over existing storage (checked against the shape), or zeros when `data` is omitted. */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data?: Storage<D>): Tensor<D> {
  const n = numel(shape);
  const storage = data ?? makeStorage(dtype, n);
  if (storage.length !== n) {
    throw new LowrankError('E_SHAPE', `storage has ${storage.length} elements, shape needs ${n}`, { shape });
  }
  return { dtype, shape: [...shape], data: storage };
}

/** A float32 tensor from numbers. */
export function fromArray(shape: readonly number[], values: ArrayLike<number>, dtype: FloatDType = 'f32'): Tensor<FloatDType> {
  const t = tensor(dtype, shape);
  if (values.length !== t.data.length) {
    throw new LowrankError('E_SHAPE', `${values.length} values for ${t.data.length} elements`, { shape });
  }
  t.data.set(Array.from(values));
  return t;
}

/** The tensor's values as f32 or f64 (a copy; decodes bf16/f16/fp8 exactly, integers by value). */
export function toFloat<F extends FloatDType>(t: Tensor, dtype: F): Tensor<F> {
  const out = tensor(dtype, t.shape);
  decodeInto(t.dtype, t.data, out.data);
  return out;
}

/**
 * Encodes a float tensor into a storage float type: f32/f64 by value, f16/bf16 rounding to nearest
 * even. Returns the input itself when the dtype already matches.
 */
export function encodeFloat<D extends 'f64' | 'f32' | 'f16' | 'bf16'>(t: Tensor<FloatDType>, dtype: D): Tensor<D> {
  if ((t.dtype as DType) === dtype) return t as unknown as Tensor<D>;
  let data: Storage;
  if (dtype === 'f64') data = Float64Array.from(t.data);
  else if (dtype === 'f32') data = Float32Array.from(t.data);
  else if (t.dtype === 'f32') data = dtype === 'bf16' ? f32ToBf16(t.data as Float32Array) : f32ToF16(t.data as Float32Array);
  else data = f64ToHalf(t.data as Float64Array, dtype);
  return tensor(dtype, t.shape, data as Storage<D>);
}

/** True when every element of a float tensor is finite. */
export function allFinite(t: Tensor<FloatDType>): boolean {
  const d = t.data;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  return true;
}
