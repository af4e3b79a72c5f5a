/**
 * SALT (Elsayed et al. 2025): W = U·diag(σ)·Vᵀ; the top k = r singular values get a trainable scale
 * and shift, σ_i' = α_i·σ_i + β_i (α = 1, β = 0 at init), and the remaining subspace a LoRA update
 * B·A (B = 0, A as PEFT's kaiming-uniform): W' = W_tail + U_k·diag(α·σ_k + β)·V_kᵀ + B·A with the
 * frozen tail W_tail = W − U_k·diag(σ_k)·V_kᵀ. Saved keys: salt_U [out, k], salt_S [k], salt_Vt
 * [k, in] (frozen), salt_alpha [k], salt_beta [k], lora_A.weight [r, in], lora_B.weight [out, r].
 */
import type { Tensor } from '../core/tensor.js';
import { tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { topTriplets } from './pissa.js';
import { kaimingA, svdPart } from './split.js';
import type { AdapterMethod } from './types.js';

export const method: AdapterMethod = {
  name: 'salt',
  summary: 'scale and shift on the top-r singular values plus a LoRA on the rest (SALT)',
  changesBase: true,
  keys: { U: 'salt_U', S: 'salt_S', Vt: 'salt_Vt', alpha: 'salt_alpha', beta: 'salt_beta', A: 'lora_A.weight', B: 'lora_B.weight' },
  async init(w, opts) {
    const [out, inF] = w.shape;
    const r = opts.rank;
    const { u, s, vt } = (await topTriplets(w, r, opts.niter, opts.seed)) as { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> };
    const alpha = tensor(w.dtype, [r]);
    alpha.data.fill(1);
    return {
      tensors: { U: u, S: s, Vt: vt, alpha, beta: tensor(w.dtype, [r]), A: kaimingA(w.dtype, r, inF, opts.seed ?? 0), B: tensor(w.dtype, [out, r]) },
      removed: svdPart(u, s.data, vt),
    };
  },
  trainableParams: (out, inF, r) => 2 * r + r * (out + inF),
  frozenParams: (out, inF, r) => r * (out + inF + 1),
};
