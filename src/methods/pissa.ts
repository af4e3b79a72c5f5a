/**
 * PiSSA (Meng et al. 2024): the adapter starts on W's principal singular triplets and the base
 * keeps the rest. A = diag(√(S_r/scaling))·Vh_r, B = U_r·diag(√(S_r/scaling)), W ← W − scaling·B·A,
 * as PEFT's `init_lora_weights="pissa"`. With `niter` the triplets come from a randomized SVD
 * (PEFT's "pissa_niter_N", which uses torch.svd_lowrank with a sketch of exactly r columns; here
 * the sketch has 10 more, so niter = 4 lands closer to the exact triplets).
 */
import { svd } from '../linalg/decompositions.js';
import { rsvd } from '../linalg/rsvd.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkRank, loraParams, LORA_KEYS, splitInit } from './split.js';
import { scalingOf, type AdapterMethod } from './types.js';
import { residualLoraTerm } from './lora.js';

type F = Tensor<FloatDType>;

/** The top r triplets: exact thin SVD, or randomized with niter power iterations. */
export async function topTriplets(w: F, r: number, niter: number | undefined, seed = 0): Promise<{ u: F; s: F; vt: F }> {
  const [out, inF] = w.shape;
  checkRank(w, r);
  if (niter !== undefined) return (await rsvd(w as Tensor<'f64'>, r, { niter, seed })) as { u: F; s: F; vt: F };
  const f = (await svd(w as Tensor<'f64'>)) as { u: F; s: F; vt: F };
  const k = f.s.data.length;
  const u = tensor(w.dtype, [out, r]);
  for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) u.data[i * r + j] = f.u.data[i * k + j];
  return { u, s: tensor(w.dtype, [r], f.s.data.slice(0, r)), vt: tensor(w.dtype, [r, inF], f.vt.data.slice(0, r * inF)) };
}

export const method: AdapterMethod = {
  name: 'pissa',
  summary: 'principal singular triplets in A and B, the rest in the base (PEFT pissa / pissa_niter_N)',
  changesBase: true,
  keys: LORA_KEYS,
  async init(w, opts) {
    const { u, s, vt } = await topTriplets(w, opts.rank, opts.niter, opts.seed);
    return splitInit(u, s, vt, scalingOf(opts));
  },
  trainableParams: loraParams,
  trainTerm: residualLoraTerm,
};
