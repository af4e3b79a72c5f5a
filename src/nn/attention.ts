/**
 * Causal multi-head attention with grouped-query heads: q [N, H·D], k and v [N, KV·D] (N = B·T,
 * rows batch-major), query head h reading key/value head h / (H/KV). Per sequence and head,
 * S = Q·Kᵀ/√D with the future masked, P = softmax(S), O = P·V; the forward pass caches P.
 * Backward: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS·K/√D, dK += dSᵀ·Q/√D.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';

export interface AttentionShape {
  readonly batch: number;
  readonly t: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

export interface AttentionCache {
  /** softmax probabilities, [B, H, T, T] flattened. */
  readonly p: Float64Array;
}

/** Copies head h of sequence b out of x [N, width] into [T, D]. */
function head<F extends FloatDType>(x: Tensor<F>, s: AttentionShape, b: number, h: number): Tensor<F> {
  const width = x.shape[1];
  const out = tensor(x.dtype, [s.t, s.headDim]);
  for (let i = 0; i < s.t; i++) out.data.set(x.data.subarray((b * s.t + i) * width + h * s.headDim, (b * s.t + i) * width + (h + 1) * s.headDim), i * s.headDim);
  return out;
}

/** Adds [T, D] into head h of sequence b of x [N, width]. */
function addHead<F extends FloatDType>(x: Tensor<F>, s: AttentionShape, b: number, h: number, part: Tensor<F>): void {
  const width = x.shape[1];
  for (let i = 0; i < s.t; i++) {
    const o = (b * s.t + i) * width + h * s.headDim;
    for (let d = 0; d < s.headDim; d++) x.data[o + d] += part.data[i * s.headDim + d];
  }
}

export async function attentionForward<F extends FloatDType>(q: Tensor<F>, k: Tensor<F>, v: Tensor<F>, s: AttentionShape): Promise<{ o: Tensor<F>; cache: AttentionCache }> {
  const { batch, t, heads, kvHeads, headDim } = s;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const o = tensor(q.dtype, q.shape);
  const p = new Float64Array(batch * heads * t * t);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const scores = await matmul(head(q, s, b, h), head(k, s, b, g), { transB: true });
      const probs = tensor(q.dtype, [t, t]);
      const base = (b * heads + h) * t * t;
      for (let i = 0; i < t; i++) {
        let max = -Infinity;
        for (let j = 0; j <= i; j++) if (scores.data[i * t + j] * scale > max) max = scores.data[i * t + j] * scale;
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          const e = Math.exp(scores.data[i * t + j] * scale - max);
          p[base + i * t + j] = e;
          sum += e;
        }
        for (let j = 0; j <= i; j++) {
          p[base + i * t + j] /= sum;
          probs.data[i * t + j] = p[base + i * t + j];
        }
      }
      addHead(o, s, b, h, await matmul(probs, head(v, s, b, g)));
    }
  }
  return { o, cache: { p } };
}

export async function attentionBackward<F extends FloatDType>(q: Tensor<F>, k: Tensor<F>, v: Tensor<F>, s: AttentionShape, cache: AttentionCache, dout: Tensor<F>): Promise<{ dq: Tensor<F>; dk: Tensor<F>; dv: Tensor<F> }> {
  const { batch, t, heads, kvHeads, headDim } = s;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const dq = tensor(q.dtype, q.shape);
  const dk = tensor(k.dtype, k.shape);
  const dv = tensor(v.dtype, v.shape);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const base = (b * heads + h) * t * t;
      const probs = tensor(q.dtype, [t, t]);
      for (let i = 0; i < t * t; i++) probs.data[i] = cache.p[base + i];
      const dO = head(dout, s, b, h);
      addHead(dv, s, b, g, await matmul(probs, dO, { transA: true }));
      const dP = await matmul(dO, head(v, s, b, g), { transB: true });
      const dS = tensor(q.dtype, [t, t]);
      for (let i = 0; i < t; i++) {
        let dot = 0;
        for (let j = 0; j <= i; j++) dot += dP.data[i * t + j] * probs.data[i * t + j];
        for (let j = 0; j <= i; j++) dS.data[i * t + j] = probs.data[i * t + j] * (dP.data[i * t + j] - dot) * scale;
      }
      addHead(dq, s, b, h, await matmul(dS, head(k, s, b, g)));
      addHead(dk, s, b, g, await matmul(dS, head(q, s, b, h), { transA: true }));
    }
  }
  return { dq, dk, dv };
}
