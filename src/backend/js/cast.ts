/** The float32 ↔ bfloat16/float16 conversions of src/core/dtype.ts behind the Backend interface. */
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../core/dtype.js';
import type { HalfFormat } from '../types.js';

export async function encodeHalf(data: Float32Array, format: HalfFormat): Promise<Uint16Array> {
  return format === 'bf16' ? f32ToBf16(data) : f32ToF16(data);
}

export async function decodeHalf(bits: Uint16Array, format: HalfFormat): Promise<Float32Array> {
  return format === 'bf16' ? bf16ToF32(bits) : f16ToF32(bits);
}
