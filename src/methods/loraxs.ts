/**
 * LoRA-XS (Bałazy et al. 2024, arXiv:2405.17604): a trained r×r matrix R between two frozen bases
 * from the truncated SVD of W, so a layer trains r² numbers whatever its shape. The base is kept.
 *   W = U·Σ·Vᵀ;  B = U_r [out, r] and A = Σ_r·V_rᵀ [r, in], frozen;  W' = W + s·B·R·A,  s = alpha/r
 * Σ sits on the input side, as in the authors' code (it takes the SVD of Wᵀ, puts U·Σ of that into
 * lora_A and Vᵀ into lora_B); with niter the triplets come from a randomized SVD (pissa.ts).
 * Training is composedTerm's LoRA pair (A, B') with B' = B·R:
 *   forward   y += s·((x·Aᵀ)·Rᵀ)·Bᵀ
 *   backward  composedTerm gives dB' = s·dyᵀ·(x·Aᵀ); dR = Bᵀ·dB'  (dA is dropped: A is frozen)
 * Trainable parameters per layer: r²; frozen: r·(out + in).
 * †R starts at 0, so the layer starts unchanged; the authors draw R ~ N(0, 1e-5²), which starts it
 * off by a negligible amount instead. With B and A nonzero, R's gradient is nonzero from the first step.
 *
 * Format: lowrank's LOWRANK layout (loraxs_A [r, in], loraxs_B [out, r], loraxs_R [r, r]), not
 * PEFT's TINYLORA. TinyLoRA's ΔW = B·(Σ_i v_i·P_i)·A with saved frozen A, B and P can hold a LoRA-XS
 * ΔW exactly — u = r², P_{r·j+k} = E_jk, one v per layer (weight_tying 0) holding s·vec(R) — but:
 * that v is saved at model level as base_model.tinylora_v.<position of the module among the
 * targets>, one key per layer, which a static AdapterFormat.sharedKeys cannot name; the identity-like P costs r⁴ frozen numbers per layer to carry
 * r² trained ones; the other exact encoding (u = 1, P = s·R, one tied v = 1) freezes R into P, so
 * PEFT would train one scalar, not R; and a TINYLORA folder reads back as the tinylora method, the
 * one method that peft_type names, not as loraxs.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import { composedTerm } from './composed.js';
import { topTriplets } from './pissa.js';
import { LOWRANK_TYPE } from './shared.js';
import { scalingOf, type AdapterMethod, type InitOptions, type LayerInit } from './types.js';

const KEYS = { A: 'loraxs_A', B: 'loraxs_B', R: 'loraxs_R' } as const;

export const method: AdapterMethod = {
  name: 'loraxs',
  summary: 'a trained r×r matrix between frozen truncated-SVD bases of W; r² numbers per layer (LoRA-XS)',
  changesBase: false,
  keys: KEYS,
  async init(w, opts) {
    const r = opts.rank;
    const { u, s, vt } = await topTriplets(w, r, opts.niter, opts.seed);
    const inF = w.shape[1];
    const A = tensor(w.dtype, [r, inF]);
    for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) A.data[k * inF + j] = s.data[k] * vt.data[k * inF + j];
    return { tensors: { A, B: u, R: tensor(w.dtype, [r, r]) } };
  },
  trainableParams: (_out, _in, r) => r * r,
  frozenParams: (out, inF, r) => r * (out + inF),
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions) {
    const t = init.tensors as Readonly<Record<keyof typeof KEYS, Tensor<F>>>;
    const grads = { R: tensor(w.dtype, t.R.shape) };
    return composedTerm<F>({
      params: { R: t.R },
      grads,
      scaling: scalingOf(opts),
      factors: async () => ({ A: t.A, B: await matmul(t.B, t.R) }),
      frozen: 'A',
      async pullback(dB) {
        const dR = await matmul(t.B, dB, { transA: true });
        for (let i = 0; i < dR.data.length; i++) grads.R.data[i] += dR.data[i];
      },
    });
  },
  async delta(tensors, _shared, opts) {
    return { left: await matmul(tensors.B, tensors.R), right: tensors.A, scale: scalingOf(opts) };
  },
  format: { peftType: LOWRANK_TYPE, moduleKeys: KEYS, sharedKeys: {} },
};
