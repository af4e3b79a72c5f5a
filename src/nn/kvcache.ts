/**
 * The key/value cache of inference: per layer, the keys (after RoPE) and values of every token seen
 * so far, [batch, capacity, kvHeads·headDim], so each new token attends to them without recomputing
 * them. Sequences of a batch are left-padded to one length: `start[b]` is the first row of sequence
 * b that is a real token (rows before it are masked out), and positions count from there.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

export interface KvCache<F extends FloatDType> {
  readonly batch: number;
  /** Rows per sequence. */
  readonly capacity: number;
  /** Width of a row: kvHeads·headDim. */
  readonly width: number;
  /** Per sequence, its first row that is not padding. */
  readonly start: Int32Array;
  /** Per layer, keys and values [batch, capacity, width]. */
  readonly k: readonly Tensor<F>[];
  readonly v: readonly Tensor<F>[];
  /** Rows filled per sequence (the same for all: padding fills the short ones). */
  length: number;
}

/** An empty cache; `start` defaults to no padding. */
export function kvCache<F extends FloatDType>(dtype: F, dims: { batch: number; capacity: number; layers: number; width: number }, start?: Int32Array): KvCache<F> {
  const { batch, capacity, layers, width } = dims;
  const s = start ?? new Int32Array(batch);
  if (s.length !== batch) throw new LowrankError('E_SHAPE', `kv cache: ${s.length} start rows for ${batch} sequences`);
  for (const x of s) if (x < 0 || x >= capacity) throw new LowrankError('E_SHAPE', `kv cache: start row ${x} is outside 0..${capacity - 1}`);
  const make = () => Array.from({ length: layers }, () => tensor(dtype, [batch, capacity, width]));
  return { batch, capacity, width, start: s, k: make(), v: make(), length: 0 };
}

/** The number of new tokens per sequence in `ids` [batch·t], checked against the room left. */
export function newTokens(cache: KvCache<FloatDType>, ids: Int32Array): number {
  const t = ids.length / cache.batch;
  if (!Number.isInteger(t) || t < 1) throw new LowrankError('E_SHAPE', `${ids.length} token ids do not split into ${cache.batch} sequences of at least one token`);
  if (cache.length + t > cache.capacity) throw new LowrankError('E_SHAPE', `the kv cache holds ${cache.capacity} tokens per sequence; ${cache.length} + ${t} do not fit`);
  return t;
}

/** The position of each new row b·t + i: its row in the cache less the sequence's padding (0 for padding). */
export function positions(cache: KvCache<FloatDType>, t: number): Int32Array {
  const out = new Int32Array(cache.batch * t);
  for (let b = 0; b < cache.batch; b++) for (let i = 0; i < t; i++) out[b * t + i] = Math.max(0, cache.length + i - cache.start[b]);
  return out;
}

/** Writes the new rows of layer `layer`, k and v [batch·t, width], after the filled ones. */
export function kvWrite<F extends FloatDType>(cache: KvCache<F>, layer: number, k: Tensor<F>, v: Tensor<F>, t: number): void {
  const { width: w, capacity } = cache;
  for (let b = 0; b < cache.batch; b++) {
    const [from, to] = [b * t * w, (b * capacity + cache.length) * w];
    cache.k[layer].data.set(k.data.subarray(from, from + t * w), to);
    cache.v[layer].data.set(v.data.subarray(from, from + t * w), to);
  }
}

/** Row t − 1 of each sequence of x [batch·t, C]: the rows whose next token is wanted. */
export function lastRows<F extends FloatDType>(x: Tensor<F>, batch: number, t: number): Tensor<F> {
  if (t === 1) return x;
  const c = x.shape[1];
  const out = tensor(x.dtype, [batch, c]);
  for (let b = 0; b < batch; b++) out.data.set(x.data.subarray(((b + 1) * t - 1) * c, (b + 1) * t * c), b * c);
  return out;
}
