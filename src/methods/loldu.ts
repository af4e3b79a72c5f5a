/**
 * LoLDU (Shi et al. 2024): LU with partial pivoting written as W = P·L·diag(d)·U (L unit lower,
 * U unit upper); the rank-r slices P·L[:, :r] and U[:r, :] are frozen and only the diagonal d_r and
 * one scalar (init 1) are trained: W' = W_res + scale·(P·L_r)·diag(d_r)·U_r, with the frozen
 * residual W_res = W − (P·L_r)·diag(d_r)·U_r (†). Saved keys: loldu_L [out, r] (rows already in W's
 * order), loldu_D [r], loldu_U [r, in], loldu_scale [1]. Trainable: r + 1 per layer.
 */
import { ldu } from '../linalg/decompositions.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkRank, copyOf, svdPart } from './split.js';
import type { AdapterMethod, LayerInit } from './types.js';
import { diagonalTerm } from './diagonal.js';

export const method: AdapterMethod = {
  name: 'loldu',
  summary: 'frozen rank-r LDU slices of W, trainable diagonal and scale (LoLDU)',
  changesBase: true,
  keys: { L: 'loldu_L', D: 'loldu_D', U: 'loldu_U', scale: 'loldu_scale' },
  async init(w, opts) {
    checkRank(w, opts.rank);
    const r = opts.rank;
    const f = (await ldu(w as Tensor<'f64'>)) as { l: Tensor<FloatDType>; d: Tensor<FloatDType>; u: Tensor<FloatDType>; perm: Int32Array };
    const [out, inF] = w.shape;
    const k = f.l.shape[1];
    const L = tensor(w.dtype, [out, r]);
    for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) L.data[f.perm[i] * r + j] = f.l.data[i * k + j];
    const D = tensor(w.dtype, [r], f.d.data.slice(0, r));
    const U = tensor(w.dtype, [r, inF], f.u.data.slice(0, r * inF));
    return { tensors: { L, D, U, scale: tensor(w.dtype, [1], w.dtype === 'f64' ? Float64Array.of(1) : Float32Array.of(1)) }, removed: svdPart(L, D.data, U) };
  },
  trainableParams: (_out, _in, r) => r + 1,
  frozenParams: (out, inF, r) => r * (out + inF),
  trainTerm: <F extends FloatDType>(_w: Tensor<F>, init: LayerInit) => {
    const t = init.tensors as Record<'L' | 'D' | 'U' | 'scale', Tensor<F>>;
    return diagonalTerm(t.L, copyOf(t.D), t.U, { d: 'D', scale: 'scale' }, copyOf(t.scale));
  },
};
