/**
 * OLoRA (Büyükakyüz 2024): B = Q[:, :r], A = R[:r, :] from the QR factorization W = Q·R, and
 * W ← W − scaling·B·A, as PEFT's `init_lora_weights="olora"` (no division by the scaling: B keeps
 * orthonormal columns).
 */
import { qr } from '../linalg/decompositions.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkRank, loraParams, LORA_KEYS } from './split.js';
import { scalingOf, type AdapterMethod } from './types.js';
import { residualLoraTerm } from './lora.js';

type F = Tensor<FloatDType>;

export const method: AdapterMethod = {
  name: 'olora',
  summary: 'orthonormal B and upper-triangular A from the QR of W, the rest in the base (PEFT olora)',
  changesBase: true,
  keys: LORA_KEYS,
  async init(w, opts) {
    const [out, inF] = w.shape;
    const k = Math.min(out, inF);
    const r = opts.rank;
    checkRank(w, r);
    const f = (await qr(w as Tensor<'f64'>)) as { q: F; r: F };
    const B = tensor(w.dtype, [out, r]);
    for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) B.data[i * r + j] = f.q.data[i * k + j];
    const A = tensor(w.dtype, [r, inF], f.r.data.slice(0, r * inF));
    return { tensors: { A, B }, removed: { left: B, right: A, scale: scalingOf(opts) } };
  },
  trainableParams: loraParams,
  trainTerm: residualLoraTerm,
};
