/**
 * Float conversions between the compute types (f32, f64) and the 16-bit storage types (bf16, f16)
 * on the backend: on the native backend a C loop on a pool thread, so converting a large weight
 * neither costs a JavaScript pass over it nor holds the event loop. Same results as
 * `encodeFloat` / `toFloat` of core/tensor.
 */
import { encodeFloat, tensor, toFloat, type Tensor } from '../core/tensor.js';
import type { DType, FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';

/** {@link encodeFloat}, with f32 → bf16/f16 on the backend. */
export async function encodeAs<D extends 'f64' | 'f32' | 'f16' | 'bf16'>(t: Tensor<FloatDType>, dtype: D): Promise<Tensor<D>> {
  if (t.dtype === 'f32' && (dtype === 'bf16' || dtype === 'f16')) {
    return tensor(dtype, t.shape, (await backend().encodeHalf(t.data as Float32Array, dtype)) as Tensor<D>['data']);
  }
  return encodeFloat(t, dtype);
}

/** {@link toFloat}, with bf16/f16 → f32 on the backend. */
export async function decodeAs<F extends FloatDType>(t: Tensor, dtype: F): Promise<Tensor<F>> {
  const from: DType = t.dtype;
  if (dtype === 'f32' && (from === 'bf16' || from === 'f16')) {
    return tensor(dtype, t.shape, (await backend().decodeHalf(t.data as Uint16Array, from)) as Tensor<F>['data']);
  }
  return toFloat(t, dtype);
}
