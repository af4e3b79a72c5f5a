/**
 * SORSA (Cao 2024): the principal part W_p = U_p·diag(σ_p)·V_pᵀ (top r) is trainable in SVD form
 * and the rest W_r = W − W_p is frozen; training adds the orthonormality penalty
 * ‖U_pᵀU_p − I‖²_F + ‖V_pᵀV_p − I‖²_F (†form). Saved keys: sorsa_U [out, r], sorsa_S [r],
 * sorsa_Vt [r, in], all trainable.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { topTriplets } from './pissa.js';
import { svdPart } from './split.js';
import type { AdapterMethod } from './types.js';

export const method: AdapterMethod = {
  name: 'sorsa',
  summary: 'top-r singular triplets trainable in SVD form with an orthonormality penalty, the rest frozen (SORSA)',
  changesBase: true,
  keys: { U: 'sorsa_U', S: 'sorsa_S', Vt: 'sorsa_Vt' },
  async init(w, opts) {
    const { u, s, vt } = (await topTriplets(w, opts.rank, opts.niter, opts.seed)) as { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> };
    return { tensors: { U: u, S: s, Vt: vt }, removed: svdPart(u, s.data, vt) };
  },
  trainableParams: (out, inF, r) => r * (out + inF + 1),
};
