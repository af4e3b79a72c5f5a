/**
 * Causal multi-head attention with grouped-query heads: q [N, H·D], k and v [N, KV·D] (N = B·T,
 * rows batch-major), query head h reading key/value head h / (H/KV). Per sequence and head,
 * S = Q·Kᵀ/√D with the future masked, P = softmax(S), O = P·V; the forward pass caches P.
 * Backward: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS·K/√D, dK += dSᵀ·Q/√D.
 * The arithmetic is the backend's (src/backend/js/nn.ts is the reference, native/nn.c the C).
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import type { AttentionShape } from '../backend/types.js';
import type { KvCache } from './kvcache.js';

export type { AttentionShape } from '../backend/types.js';

export interface AttentionCache<F extends FloatDType> {
  /** softmax probabilities, [B, H, T, T] flattened. */
  readonly p: Tensor<F>['data'];
}

function check(q: Tensor<FloatDType>, k: Tensor<FloatDType>, v: Tensor<FloatDType>, s: AttentionShape): void {
  const n = s.batch * s.t;
  const ok = s.heads % s.kvHeads === 0 && q.shape[0] === n && k.shape[0] === n && v.shape[0] === n && q.shape[1] === s.heads * s.headDim && k.shape[1] === s.kvHeads * s.headDim && v.shape[1] === k.shape[1];
  if (!ok) throw new LowrankError('E_SHAPE', `attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not fit ${s.batch}×${s.t} tokens, ${s.heads} heads, ${s.kvHeads} kv heads of ${s.headDim}`);
}

export async function attentionForward<F extends FloatDType>(q: Tensor<F>, k: Tensor<F>, v: Tensor<F>, s: AttentionShape): Promise<{ o: Tensor<F>; cache: AttentionCache<F> }> {
  check(q, k, v, s);
  const { o, p } = await backend().attention(q.data, k.data, v.data, s);
  return { o: tensor(q.dtype, q.shape, o), cache: { p } };
}

export async function attentionBackward<F extends FloatDType>(q: Tensor<F>, k: Tensor<F>, v: Tensor<F>, s: AttentionShape, cache: AttentionCache<F>, dout: Tensor<F>): Promise<{ dq: Tensor<F>; dk: Tensor<F>; dv: Tensor<F> }> {
  check(q, k, v, s);
  const { dq, dk, dv } = await backend().attentionBackward(q.data, k.data, v.data, cache.p, dout.data, s);
  return { dq: tensor(q.dtype, q.shape, dq), dk: tensor(k.dtype, k.shape, dk), dv: tensor(v.dtype, v.shape, dv) };
}

/**
 * Inference attention of t new queries per sequence, q [batch·t, heads·headDim], over layer
 * `layer` of the cache (the new keys and values already written): causal, padding masked.
 */
export async function attentionCachedForward<F extends FloatDType>(q: Tensor<F>, cache: KvCache<F>, layer: number, t: number, heads: number): Promise<Tensor<F>> {
  const headDim = q.shape[1] / heads;
  const kvHeads = cache.width / headDim;
  if (!Number.isInteger(kvHeads) || heads % kvHeads !== 0 || q.shape[0] !== cache.batch * t) throw new LowrankError('E_SHAPE', `attention: q [${q.shape}] does not fit ${cache.batch}×${t} tokens, ${heads} heads over kv rows of ${cache.width}`);
  const shape = { batch: cache.batch, t, past: cache.length, capacity: cache.capacity, heads, kvHeads, headDim };
  return tensor(q.dtype, q.shape, await backend().attentionCached(q.data, cache.k[layer].data, cache.v[layer].data, cache.start, shape));
}
