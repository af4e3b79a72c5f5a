/**
 * KaSA (Wang et al. 2024): W = U·diag(σ)·Vᵀ; the r minor singular components are truncated as
 * noisy knowledge (the base becomes W − U_min·diag(σ_min)·V_minᵀ: unlike the other inits this
 * changes the layer's output, by design), and a task update in SVD form ΔW = B·diag(d)·A is
 * trained (B = 0, A as PEFT's kaiming-uniform, d ~ N(0, 1); ΔW = 0 at init), with KaSA's
 * orthogonality penalty on A and B at training time (†). Saved keys: kasa_A [r, in], kasa_B
 * [out, r], kasa_diag [r].
 */
import { svdSmallest } from '../linalg/decompositions.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { checkRank, kaimingA, svdPart } from './split.js';
import type { AdapterMethod } from './types.js';

export const method: AdapterMethod = {
  name: 'kasa',
  summary: 'truncate the r minor singular components, train an SVD-form update B·diag(d)·A (KaSA)',
  changesBase: true,
  keys: { A: 'kasa_A', B: 'kasa_B', diag: 'kasa_diag' },
  async init(w, opts) {
    checkRank(w, opts.rank);
    const [out, inF] = w.shape;
    const r = opts.rank;
    const minor = (await svdSmallest(w as Tensor<'f64'>, r)) as { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> };
    const diag = tensor(w.dtype, [r]);
    rng((opts.seed ?? 0) + 1).fillNormal(diag.data);
    return {
      tensors: { A: kaimingA(w.dtype, r, inF, opts.seed ?? 0), B: tensor(w.dtype, [out, r]), diag },
      removed: svdPart(minor.u, minor.s.data, minor.vt),
    };
  },
  trainableParams: (out, inF, r) => r * (out + inF + 1),
};
