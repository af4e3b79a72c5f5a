/**
 * Element types, their typed-array storage, and the bit-exact conversions between the float
 * formats (f16, bf16 and fp8 are stored as raw bits; conversions round to nearest, ties to even,
 * and keep NaN and Inf).
 */
import { LowrankError } from './errors.js';

/** The typed array that stores each element type. f16, bf16 and fp8 are stored as their bits. */
export interface StorageMap {
  f64: Float64Array;
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  f8_e4m3: Uint8Array;
  f8_e5m2: Uint8Array;
  i64: BigInt64Array;
  i32: Int32Array;
  i16: Int16Array;
  i8: Int8Array;
  u64: BigUint64Array;
  u32: Uint32Array;
  u16: Uint16Array;
  u8: Uint8Array;
  bool: Uint8Array;
}

/** An element type. */
export type DType = keyof StorageMap;
/** The storage of element type `D`. */
export type Storage<D extends DType = DType> = StorageMap[D];
/** The float types arithmetic runs in. */
export type FloatDType = 'f32' | 'f64';

interface DTypeInfo {
  bytes: number;
  safetensors: string;
  make: (n: number) => Storage;
  view: (buf: ArrayBufferLike, byteOffset: number, length: number) => Storage;
}

const INFO: { [D in DType]: DTypeInfo } = {
  f64: { bytes: 8, safetensors: 'F64', make: (n) => new Float64Array(n), view: (b, o, n) => new Float64Array(b, o, n) },
  f32: { bytes: 4, safetensors: 'F32', make: (n) => new Float32Array(n), view: (b, o, n) => new Float32Array(b, o, n) },
  f16: { bytes: 2, safetensors: 'F16', make: (n) => new Uint16Array(n), view: (b, o, n) => new Uint16Array(b, o, n) },
  bf16: { bytes: 2, safetensors: 'BF16', make: (n) => new Uint16Array(n), view: (b, o, n) => new Uint16Array(b, o, n) },
  f8_e4m3: { bytes: 1, safetensors: 'F8_E4M3', make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n) },
  f8_e5m2: { bytes: 1, safetensors: 'F8_E5M2', make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n) },
  i64: { bytes: 8, safetensors: 'I64', make: (n) => new BigInt64Array(n), view: (b, o, n) => new BigInt64Array(b, o, n) },
  i32: { bytes: 4, safetensors: 'I32', make: (n) => new Int32Array(n), view: (b, o, n) => new Int32Array(b, o, n) },
  i16: { bytes: 2, safetensors: 'I16', make: (n) => new Int16Array(n), view: (b, o, n) => new Int16Array(b, o, n) },
  i8: { bytes: 1, safetensors: 'I8', make: (n) => new Int8Array(n), view: (b, o, n) => new Int8Array(b, o, n) },
  u64: { bytes: 8, safetensors: 'U64', make: (n) => new BigUint64Array(n), view: (b, o, n) => new BigUint64Array(b, o, n) },
  u32: { bytes: 4, safetensors: 'U32', make: (n) => new Uint32Array(n), view: (b, o, n) => new Uint32Array(b, o, n) },
  u16: { bytes: 2, safetensors: 'U16', make: (n) => new Uint16Array(n), view: (b, o, n) => new Uint16Array(b, o, n) },
  u8: { bytes: 1, safetensors: 'U8', make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n) },
  bool: { bytes: 1, safetensors: 'BOOL', make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n) },
};

/** Every element type, in a stable order. */
export const DTYPES = Object.keys(INFO) as DType[];

/** Bytes per element. */
export function dtypeBytes(d: DType): number {
  return INFO[d].bytes;
}

/** True for the formats whose elements are floating point numbers. */
export function isFloatDType(d: DType): boolean {
  return d === 'f64' || d === 'f32' || d === 'f16' || d === 'bf16' || d === 'f8_e4m3' || d === 'f8_e5m2';
}

/** A zeroed storage array of `n` elements. */
export function makeStorage<D extends DType>(d: D, n: number): Storage<D> {
  if (!(n <= MAX_ELEMENTS)) throw new LowrankError('E_UNSUPPORTED', `a tensor of ${n} elements is more than JavaScript's typed arrays hold (${MAX_ELEMENTS})`);
  return INFO[d].make(n) as Storage<D>;
}

/** The most elements of a typed array (V8's limit in Node 20: 2^32 − 1). */
export const MAX_ELEMENTS = 2 ** 32 - 1;

/** A typed-array view of `length` elements of type `d` over bytes of `buf` (byteOffset must be aligned). */
export function viewStorage<D extends DType>(d: D, buf: ArrayBufferLike, byteOffset: number, length: number): Storage<D> {
  return INFO[d].view(buf, byteOffset, length) as Storage<D>;
}

/** The safetensors name of a dtype (`F32`, `BF16`, ...). */
export function toSafetensorsDType(d: DType): string {
  return INFO[d].safetensors;
}

const FROM_SAFETENSORS = new Map<string, DType>(DTYPES.map((d) => [INFO[d].safetensors, d]));

/** The dtypes the safetensors format defines that lowrank does not read (sub-byte, complex, exotic fp8). */
export const FOREIGN_SAFETENSORS_DTYPES = ['F4', 'F6_E2M3', 'F6_E3M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'C64'];

/** The dtype of a safetensors name, or undefined for a name lowrank does not read. */
export function fromSafetensorsDType(name: string): DType | undefined {
  return FROM_SAFETENSORS.get(name);
}

/** The host must be little-endian: every format lowrank reads is. */
export function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new LowrankError('E_UNSUPPORTED', 'lowrank needs a little-endian host');
  }
}

// ---- scalar bit conversions -------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 bits → bf16 bits, round to nearest even; NaN stays NaN (quieted), Inf stays Inf. */
export function f32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) >>> 0 > 0x7f800000) return ((b >>> 16) | 0x0040) & 0xffff;
  return (((b >>> 0) + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 bits → f16 bits, round to nearest even, with subnormals; NaN stays NaN, overflow → Inf. */
export function f32BitsToF16(b: number): number {
  const s = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e === 255) return m === 0 ? s | 0x7c00 : s | 0x7e00 | (m >>> 13);
  const exp = e - 127;
  if (exp > 15) return s | 0x7c00;
  if (exp >= -14) {
    let h = ((exp + 15) << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
    return s | h;
  }
  if (exp < -25) return s;
  const full = m | 0x800000;
  const shift = -exp - 1;
  let h = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1) === 1)) h++;
  return s | h;
}

/** f16 bits → f32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const s = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return (s | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (s | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return s >>> 0;
  scratchF32[0] = m * 2 ** -24;
  return (scratchU32[0] | s) >>> 0;
}

/** A float32 value as its bits. */
export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** Bits as a float32 value. */
export function bitsToF32(b: number): number {
  scratchU32[0] = b;
  return scratchF32[0];
}

function fp8Table(expBits: number, bias: number, ieeeSpecials: boolean): Float32Array {
  const t = new Float32Array(256);
  const manBits = 7 - expBits;
  for (let v = 0; v < 256; v++) {
    const sign = v & 0x80 ? -1 : 1;
    const e = (v >> manBits) & ((1 << expBits) - 1);
    const m = v & ((1 << manBits) - 1);
    const maxE = (1 << expBits) - 1;
    let x: number;
    if (ieeeSpecials && e === maxE) x = m === 0 ? Infinity : NaN;
    else if (!ieeeSpecials && e === maxE && m === (1 << manBits) - 1) x = NaN;
    else if (e === 0) x = m * 2 ** (1 - bias - manBits);
    else x = (1 + m / (1 << manBits)) * 2 ** (e - bias);
    t[v] = sign * x;
  }
  return t;
}

let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;
let f16Table: Uint32Array | undefined;

/** The f32 value of each of the 256 F8_E4M3 (e4m3fn: no Inf, one NaN pattern per sign) codes. */
export function f8e4m3Table(): Float32Array {
  return (e4m3Table ??= fp8Table(4, 7, false));
}

/** The f32 value of each of the 256 F8_E5M2 (IEEE-like) codes. */
export function f8e5m2Table(): Float32Array {
  return (e5m2Table ??= fp8Table(5, 15, true));
}

// ---- bulk conversions -------------------------------------------------------------------------

/** bf16 bits → f32, exactly. Writes into `out` when given. */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const n = src.length;
  const o = new Uint32Array(out.buffer, out.byteOffset, n);
  let i = 0;
  if (src.byteOffset % 4 === 0) {
    // Two bf16 per 32-bit load (little-endian: the low half is the first element): ~1.5x faster.
    const pairs = new Uint32Array(src.buffer, src.byteOffset, n >>> 1);
    for (let j = 0; j < pairs.length; j++) {
      const x = pairs[j];
      o[2 * j] = x << 16;
      o[2 * j + 1] = x & 0xffff0000;
    }
    i = pairs.length * 2;
  }
  for (; i < n; i++) o[i] = src[i] << 16;
  return out;
}

/** f32 → bf16 bits, round to nearest even. */
export function f32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) out[i] = f32BitsToBf16(s[i]);
  return out;
}

/** f16 bits → f32, exactly (through a 64k-entry table of f32 bits, so NaN payloads survive). */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  const t = f16Table;
  const o = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]];
  return out;
}

/** f32 → f16 bits, round to nearest even. */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) out[i] = f32BitsToF16(s[i]);
  return out;
}

/**
 * f64 → f32 bits rounded to odd (truncate toward zero, set the last bit when inexact). Rounding that
 * result to nearest even in a narrower format (bf16, f16) equals rounding the f64 directly, which
 * going through a plain f64 → f32 rounding does not (double rounding).
 */
export function f64ToF32BitsRoundToOdd(x: number): number {
  const f = Math.fround(x);
  if (f === x || Number.isNaN(x)) return f32ToBits(f);
  let bits = f32ToBits(f);
  if (Math.abs(f) > Math.abs(x)) bits -= 1; // one step toward zero (Inf steps to the largest finite)
  return (bits | 1) >>> 0;
}

/** f64 → bf16 or f16 bits, rounded to nearest even once. */
export function f64ToHalf(src: Float64Array, format: 'bf16' | 'f16', out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const narrow = format === 'bf16' ? f32BitsToBf16 : f32BitsToF16;
  for (let i = 0; i < src.length; i++) out[i] = narrow(f64ToF32BitsRoundToOdd(src[i]));
  return out;
}

/** fp8 codes → f32 through the format's 256-entry table. */
export function f8ToF32(src: Uint8Array, format: 'f8_e4m3' | 'f8_e5m2', out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = format === 'f8_e4m3' ? f8e4m3Table() : f8e5m2Table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/**
 * Any storage → float values written into `out` (f32 or f64). Integers convert exactly where the
 * target can hold them; 64-bit integers above 2^53 round.
 */
export function decodeInto(d: DType, src: Storage, out: Float32Array | Float64Array): void {
  if (out instanceof Float32Array) {
    if (d === 'bf16') return void bf16ToF32(src as Uint16Array, out);
    if (d === 'f16') return void f16ToF32(src as Uint16Array, out);
    if (d === 'f8_e4m3' || d === 'f8_e5m2') return void f8ToF32(src as Uint8Array, d, out);
  } else if (d === 'bf16' || d === 'f16' || d === 'f8_e4m3' || d === 'f8_e5m2') {
    const tmp = new Float32Array(src.length);
    decodeInto(d, src, tmp);
    out.set(tmp);
    return;
  }
  if (src instanceof BigInt64Array || src instanceof BigUint64Array) {
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
    return;
  }
  out.set(src as Exclude<Storage, BigInt64Array | BigUint64Array>);
}
