/**
 * LoRA (Hu et al. 2021): a frozen W plus a trainable s·B·A, B [out, r] = 0 and A [r, in] from PEFT's
 * kaiming-uniform at init, so the layer starts unchanged; s = alpha/r (alpha/√r with rsLoRA). The
 * training-time term (loraTerm) is the adapter every LoRA-pair method (PiSSA, MiLoRA, OLoRA, SoMA)
 * trains with: y += s·(x·Aᵀ)·Bᵀ; dA += s·(dy·B)ᵀ·x, dB += s·dyᵀ·(x·Aᵀ), dx += s·(dy·B)·A.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import type { LinearAdapter } from '../nn/linear.js';
import { checkRank, kaimingA, loraParams, LORA_KEYS } from './split.js';
import type { AdapterMethod } from './types.js';

export const method: AdapterMethod = {
  name: 'lora',
  summary: 'B = 0, A kaiming-uniform: the layer starts unchanged, the base is untouched (LoRA, PEFT default)',
  changesBase: false,
  keys: LORA_KEYS,
  async init(w, opts) {
    checkRank(w, opts.rank);
    const [out, inF] = w.shape;
    return { tensors: { A: kaimingA(w.dtype, opts.rank, inF, opts.seed ?? 0), B: tensor(w.dtype, [out, opts.rank]) } };
  },
  trainableParams: loraParams,
};

/** The trainable LoRA term of one layer and its gradient buffers. */
export interface LoraTerm<F extends FloatDType> extends LinearAdapter<F> {
  readonly A: Tensor<F>;
  readonly B: Tensor<F>;
  readonly scaling: number;
  readonly dA: Tensor<F>;
  readonly dB: Tensor<F>;
}

/** A LoRA term over factors A [r, in], B [out, r] with scaling s; gradients accumulate into dA, dB. */
export function loraTerm<F extends FloatDType>(A: Tensor<F>, B: Tensor<F>, scaling: number): LoraTerm<F> {
  const dA = tensor(A.dtype, A.shape);
  const dB = tensor(B.dtype, B.shape);
  const scaled = (t: Tensor<F>): Tensor<F> => {
    for (let i = 0; i < t.data.length; i++) t.data[i] *= scaling;
    return t;
  };
  return {
    A,
    B,
    scaling,
    dA,
    dB,
    async forward(x) {
      return scaled(await matmul(await matmul(x, A, { transB: true }), B, { transB: true }));
    },
    async backward(x, dy) {
      const xa = await matmul(x, A, { transB: true }); // [N, r]
      const dxa = scaled(await matmul(dy, B)); // s·dy·B, [N, r]
      const gB = scaled(await matmul(dy, xa, { transA: true }));
      const gA = await matmul(dxa, x, { transA: true });
      for (let i = 0; i < gA.data.length; i++) dA.data[i] += gA.data[i];
      for (let i = 0; i < gB.data.length; i++) dB.data[i] += gB.data[i];
      return matmul(dxa, A);
    },
  };
}
