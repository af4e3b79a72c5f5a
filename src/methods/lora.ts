/**
 * LoRA (Hu et al. 2021): a frozen W plus a trainable s·B·A, B [out, r] = 0 and A [r, in] from PEFT's
 * kaiming-uniform at init, so the layer starts unchanged; s = alpha/r (alpha/√r with rsLoRA). The
 * training-time term (loraTerm) is the adapter every LoRA-pair method (PiSSA, MiLoRA, OLoRA, SoMA)
 * trains with: y += s·(x·Aᵀ)·Bᵀ; dA += s·(dy·B)ᵀ·x, dB += s·dyᵀ·(x·Aᵀ), dx += s·(dy·B)·A.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import { checkRank, copyOf, kaimingA, loraParams, LORA_KEYS } from './split.js';
import { scalingOf, type AdapterMethod, type InitOptions, type LayerInit, type LoraUpdate, type TrainTerm } from './types.js';

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
  trainTerm: (_w, init, opts) => loraTerm(copyOf(init.tensors.A), copyOf(init.tensors.B), scalingOf(opts)),
};

/**
 * The training term of the LoRA-pair methods that start from W's own components and move them out
 * of the base (PiSSA, MiLoRA, OLoRA, SoMA): LoRA over the residual, exported on the original weight
 * as PEFT converts such an adapter, ΔW = s·(B·A − B0·A0) = s·[B | −B0]·[A ; A0] (rank 2r).
 */
export function residualLoraTerm<F extends FloatDType>(_w: Tensor<F>, init: LayerInit, opts: InitOptions): LoraTerm<F> {
  const A = init.tensors.A as Tensor<F>;
  const B = init.tensors.B as Tensor<F>;
  return loraTerm(copyOf(A), copyOf(B), scalingOf(opts), { A: copyOf(A), B: copyOf(B) });
}


/** The trainable LoRA term of one layer and its gradient buffers. */
export interface LoraTerm<F extends FloatDType> extends TrainTerm<F> {
  readonly A: Tensor<F>;
  readonly B: Tensor<F>;
  readonly scaling: number;
  readonly dA: Tensor<F>;
  readonly dB: Tensor<F>;
}

/**
 * A LoRA term over factors A [r, in], B [out, r] with scaling s; gradients accumulate into dA, dB.
 * With `start` (the factors the base's residual was made with) it exports as ΔW on the original
 * weight, [B | −B0]·[A ; A0].
 */
export function loraTerm<F extends FloatDType>(A: Tensor<F>, B: Tensor<F>, scaling: number, start?: { A: Tensor<F>; B: Tensor<F> }): LoraTerm<F> {
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
    params: { A, B },
    grads: { A: dA, B: dB },
    toLora: () => (start === undefined ? { A, B, scaling } : concatenated(A, B, start, scaling)),
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

/** [A ; A0] and [B | −B0]: B·A − B0·A0 as one LoRA pair of rank 2r. */
function concatenated<F extends FloatDType>(A: Tensor<F>, B: Tensor<F>, start: { A: Tensor<F>; B: Tensor<F> }, scaling: number): LoraUpdate {
  const [r, inF] = A.shape;
  const out = B.shape[0];
  const a = tensor(A.dtype, [2 * r, inF]);
  a.data.set(A.data, 0);
  a.data.set(start.A.data, r * inF);
  const b = tensor(B.dtype, [out, 2 * r]);
  for (let i = 0; i < out; i++) {
    for (let k = 0; k < r; k++) {
      b.data[i * 2 * r + k] = B.data[i * r + k];
      b.data[i * 2 * r + r + k] = -start.B.data[i * r + k];
    }
  }
  return { A: a, B: b, scaling };
}
