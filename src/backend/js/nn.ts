/**
 * The training kernels in plain TypeScript: the float64 reference the native kernels (native/nn.c)
 * are checked against, and what the js and wasm backends run. Sums and products are taken in
 * float64 (Number) and rounded once to the input's element type. Rows are [N, width], N = batch·T.
 */
import type { AttentionShape, Backend, CachedAttentionShape, FloatArray, Matrix } from '../types.js';

/** A zeroed array of the same element type as x. */
function like<A extends FloatArray>(x: A, n: number): A {
  return (x instanceof Float32Array ? new Float32Array(n) : new Float64Array(n)) as A;
}

/**
 * Causal attention with grouped-query heads (query head h reads key/value head h / (H/KV)): per
 * sequence and head, P = softmax(Q·Kᵀ/√D masked to j ≤ i), O = P·V. Returns O and P [B, H, T, T].
 */
export function attention<A extends FloatArray>(q: A, k: A, v: A, s: AttentionShape): { o: A; p: A } {
  const { batch, t, heads, kvHeads, headDim: D } = s;
  const [qw, kw, group, scale] = [heads * D, kvHeads * D, heads / kvHeads, 1 / Math.sqrt(D)];
  const o = like(q, q.length);
  const p = like(q, batch * heads * t * t);
  const row = new Float64Array(t);
  const acc = new Float64Array(D);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const [qh, kg] = [h * D, Math.floor(h / group) * D];
      const base = (b * heads + h) * t * t;
      for (let i = 0; i < t; i++) {
        const qi = (b * t + i) * qw + qh;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const kj = (b * t + j) * kw + kg;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qi + d] * k[kj + d];
          row[j] = dot * scale;
          if (row[j] > max) max = row[j];
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += row[j] = Math.exp(row[j] - max);
        acc.fill(0);
        for (let j = 0; j <= i; j++) {
          const pj = row[j] / sum;
          p[base + i * t + j] = pj;
          const vj = (b * t + j) * kw + kg;
          for (let d = 0; d < D; d++) acc[d] += pj * v[vj + d];
        }
        for (let d = 0; d < D; d++) o[qi + d] = acc[d];
      }
    }
  }
  return { o, p };
}

/**
 * Attention of t new queries per sequence over a KV cache [batch, capacity, kvHeads·D]: query i of
 * sequence b sits at cache row past + i and reads rows start[b] .. past + i (earlier rows are left
 * padding); an empty range gives zeros.
 */
export function attentionCached<A extends FloatArray>(q: A, kc: A, vc: A, start: Int32Array, s: CachedAttentionShape): A {
  const { batch, t, past, capacity, heads, kvHeads, headDim: D } = s;
  const [qw, kw, group, scale] = [heads * D, kvHeads * D, heads / kvHeads, 1 / Math.sqrt(D)];
  const o = like(q, q.length);
  const row = new Float64Array(past + t);
  const acc = new Float64Array(D);
  for (let b = 0; b < batch; b++) {
    const base = b * capacity * kw;
    for (let h = 0; h < heads; h++) {
      const [qh, kg] = [h * D, Math.floor(h / group) * D];
      for (let i = 0; i < t; i++) {
        const [qi, last] = [(b * t + i) * qw + qh, past + i];
        let max = -Infinity;
        for (let j = start[b]; j <= last; j++) {
          const kj = base + j * kw + kg;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qi + d] * kc[kj + d];
          row[j] = dot * scale;
          if (row[j] > max) max = row[j];
        }
        let sum = 0;
        for (let j = start[b]; j <= last; j++) sum += row[j] = Math.exp(row[j] - max);
        acc.fill(0);
        for (let j = start[b]; j <= last; j++) {
          const vj = base + j * kw + kg;
          for (let d = 0; d < D; d++) acc[d] += (row[j] / sum) * vc[vj + d];
        }
        for (let d = 0; d < D; d++) o[qi + d] = acc[d];
      }
    }
  }
  return o;
}

/** dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P))/√D, dQ = dS·K, dK += dSᵀ·Q. */
export function attentionBackward<A extends FloatArray>(q: A, k: A, v: A, p: A, dout: A, s: AttentionShape): { dq: A; dk: A; dv: A } {
  const { batch, t, heads, kvHeads, headDim: D } = s;
  const [qw, kw, group, scale] = [heads * D, kvHeads * D, heads / kvHeads, 1 / Math.sqrt(D)];
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const ds = new Float64Array(t);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const [qh, kg] = [h * D, Math.floor(h / group) * D];
      const base = (b * heads + h) * t * t;
      for (let i = 0; i < t; i++) {
        const qi = (b * t + i) * qw + qh;
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          const vj = (b * t + j) * kw + kg;
          let dp = 0;
          for (let d = 0; d < D; d++) dp += dout[qi + d] * v[vj + d];
          ds[j] = dp;
          dot += dp * p[base + i * t + j];
        }
        for (let j = 0; j <= i; j++) {
          const pij = p[base + i * t + j];
          const dsj = pij * (ds[j] - dot) * scale;
          const kj = (b * t + j) * kw + kg;
          for (let d = 0; d < D; d++) {
            dq[qi + d] += dsj * k[kj + d];
            dk[kj + d] += dsj * q[qi + d];
            dv[kj + d] += pij * dout[qi + d];
          }
        }
      }
    }
  }
  const round = (x: Float64Array): A => {
    const out = like(q, x.length);
    out.set(x);
    return out;
  };
  return { dq: round(dq), dk: round(dk), dv: round(dv) };
}

/** y = x·r·g per row with r = 1/√(mean(x²) + ε) (rstd, for the backward pass). */
export function rmsNorm<A extends FloatArray>(x: Matrix<A>, g: A, eps: number): { y: A; rstd: A } {
  const { rows: n, cols: c, data } = x;
  const y = like(data, data.length);
  const rstd = like(data, n);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += data[i * c + j] ** 2;
    const r = 1 / Math.sqrt(ss / c + eps);
    rstd[i] = r;
    for (let j = 0; j < c; j++) y[i * c + j] = data[i * c + j] * r * g[j];
  }
  return { y, rstd };
}

/** dx = r·(g⊙dy) − r³/C·x·Σ(g⊙dy⊙x); dg = Σ_rows dy⊙x·r. */
export function rmsNormBackward<A extends FloatArray>(dy: Matrix<A>, x: A, g: A, rstd: A): { dx: A; dg: A } {
  const { rows: n, cols: c, data } = dy;
  const dx = like(x, x.length);
  const dg = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    const r = rstd[i];
    let dot = 0;
    for (let j = 0; j < c; j++) dot += g[j] * data[i * c + j] * x[i * c + j];
    const k = (r * r * r * dot) / c;
    for (let j = 0; j < c; j++) {
      const o = i * c + j;
      dx[o] = r * g[j] * data[o] - k * x[o];
      dg[j] += data[o] * x[o] * r;
    }
  }
  const dgOut = like(x, c);
  dgOut.set(dg);
  return { dx, dg: dgOut };
}

/** h = silu(gate) ⊙ up, silu(a) = a / (1 + e^(−a)). */
export function swiglu<A extends FloatArray>(gate: A, up: A): A {
  const h = like(gate, gate.length);
  for (let i = 0; i < h.length; i++) h[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return h;
}

/** dgate = dh ⊙ up ⊙ σ(a)(1 + a(1 − σ(a))), dup = dh ⊙ silu(a). */
export function swigluBackward<A extends FloatArray>(dh: A, gate: A, up: A): { dgate: A; dup: A } {
  const dgate = like(gate, gate.length);
  const dup = like(gate, gate.length);
  for (let i = 0; i < dh.length; i++) {
    const a = gate[i];
    const s = 1 / (1 + Math.exp(-a));
    dgate[i] = dh[i] * up[i] * s * (1 + a * (1 - s));
    dup[i] = dh[i] * a * s;
  }
  return { dgate, dup };
}

/**
 * Softmax cross-entropy of rows of logits against targets (rows whose target is `ignore` count for
 * nothing; the others are in range): the summed loss of the counted rows and
 * dlogits = (softmax − onehot)/count on counted rows, 0 elsewhere.
 */
export function crossEntropy<A extends FloatArray>(logits: Matrix<A>, targets: Int32Array, ignore: number): { lossSum: number; dlogits: A } {
  const { rows: n, cols: vocab, data: x } = logits;
  const d = like(x, x.length);
  const count = targets.reduce((c, id) => c + (id === ignore ? 0 : 1), 0);
  const e = new Float64Array(vocab);
  let lossSum = 0;
  for (let i = 0; i < n; i++) {
    const target = targets[i];
    if (target === ignore) continue;
    const o = i * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) if (x[o + j] > max) max = x[o + j];
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += e[j] = Math.exp(x[o + j] - max);
    lossSum += Math.log(sum) - (x[o + target] - max);
    for (let j = 0; j < vocab; j++) d[o + j] = e[j] / (sum * count);
    d[o + target] -= 1 / count;
  }
  return { lossSum, dlogits: d };
}

/** The training kernels of the Backend interface, as the js backend (and wasm, which shares them) runs them. */
export const nnKernels: Pick<Backend, 'attention' | 'attentionBackward' | 'attentionCached' | 'rmsNorm' | 'rmsNormBackward' | 'swiglu' | 'swigluBackward' | 'crossEntropy' | 'retainFreedMemory'> = {
  attention: async (q, k, v, shape) => attention(q, k, v, shape),
  attentionBackward: async (q, k, v, p, dout, shape) => attentionBackward(q, k, v, p, dout, shape),
  attentionCached: async (q, kc, vc, start, shape) => attentionCached(q, kc, vc, start, shape),
  rmsNorm: async (x, g, eps) => rmsNorm(x, g, eps),
  rmsNormBackward: async (dy, x, g, rstd) => rmsNormBackward(dy, x, g, rstd),
  swiglu: async (gate, up) => swiglu(gate, up),
  swigluBackward: async (dh, gate, up) => swigluBackward(dh, gate, up),
  crossEntropy: async (logits, targets, ignore) => crossEntropy(logits, targets, ignore),
  retainFreedMemory: () => () => {},
};
