/**
 * The shared arithmetic of the SVD-derived LoRA inits: factors from singular triplets and the
 * residual weight.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import type { LayerInit } from './types.js';

type F = Tensor<FloatDType>;

/**
 * From r triplets (u [out, r], s [r], vt [r, in]): A = diag(√(s/scaling))·vt, B = u·diag(√(s/scaling)),
 * so that scaling·B·A = u·diag(s)·vt (PiSSA's split, PEFT's pissa_init); residual W − scaling·B·A.
 */
export async function sqrtSplit(w: F, u: F, s: F, vt: F, scaling: number): Promise<LayerInit> {
  const [out, inF] = w.shape;
  const r = s.data.length;
  const A = tensor(w.dtype, [r, inF]);
  const B = tensor(w.dtype, [out, r]);
  for (let k = 0; k < r; k++) {
    const root = Math.sqrt(s.data[k] / scaling);
    for (let j = 0; j < inF; j++) A.data[k * inF + j] = root * vt.data[k * inF + j];
    for (let i = 0; i < out; i++) B.data[i * r + k] = root * u.data[i * r + k];
  }
  return { tensors: { A, B }, residual: await residual(w, B, A, scaling) };
}

/** W − scaling·B·A, in W's dtype. */
export async function residual(w: F, B: F, A: F, scaling: number): Promise<F> {
  const ba = (await matmul(B as Tensor<'f64'>, A as Tensor<'f64'>)) as F;
  const res = tensor(w.dtype, w.shape);
  for (let i = 0; i < res.data.length; i++) res.data[i] = w.data[i] - scaling * ba.data[i];
  return res;
}

/** The LoRA keys PEFT saves (without the base_model.model.<module>. prefix). */
export const LORA_KEYS = { A: 'lora_A.weight', B: 'lora_B.weight' } as const;

/** A LoRA pair's trainable parameters: r·(out + in). */
export function loraParams(out: number, inF: number, rank: number): number {
  return rank * (out + inF);
}
