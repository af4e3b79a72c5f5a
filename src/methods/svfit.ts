/**
 * SVFit (Sun et al. 2024): train only the top singular values. W = U·diag(σ)·Vᵀ; the rank r is the
 * smallest keeping `energy` (default 0.99, the paper's "over 99% of the matrix's information") of
 * Σσ², capped at the rank asked for; U_r and V_r are frozen and σ_r (r numbers) is trained:
 * W' = W_res + U_r·diag(σ)·V_rᵀ with the frozen residual W_res = W − U_r·diag(σ_r)·V_rᵀ (†: the
 * paper does not say what happens to the tail; keeping it frozen leaves the output unchanged).
 * Saved keys: svfit_U [out, r], svfit_sigma [r] (trainable), svfit_Vt [r, in].
 */
import { svd } from '../linalg/decompositions.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkRank, copyOf, energyRank, svdPart, triplets } from './split.js';
import type { AdapterMethod, LayerInit } from './types.js';
import { diagonalTerm } from './diagonal.js';

export const method: AdapterMethod = {
  name: 'svfit',
  summary: 'train the top singular values only, U_r and V_r frozen; rank by 99% energy (SVFit)',
  changesBase: true,
  keys: { U: 'svfit_U', sigma: 'svfit_sigma', Vt: 'svfit_Vt' },
  async init(w, opts) {
    checkRank(w, opts.rank);
    const f = (await svd(w as Tensor<'f64'>)) as { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> };
    const r = Math.min(opts.rank, energyRank(f.s.data, opts.energy ?? 0.99));
    const t = triplets(f, 0, r);
    return { tensors: { U: t.u, sigma: t.s, Vt: t.vt }, removed: svdPart(t.u, t.s.data, t.vt), rank: r };
  },
  trainableParams: (_out, _in, r) => r,
  frozenParams: (out, inF, r) => r * (out + inF),
  trainTerm: <F extends FloatDType>(_w: Tensor<F>, init: LayerInit) => {
    const t = init.tensors as Record<'U' | 'sigma' | 'Vt', Tensor<F>>;
    return diagonalTerm(t.U, copyOf<F>(t.sigma), t.Vt, { d: 'sigma' });
  },
};
