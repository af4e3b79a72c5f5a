/**
 * MiLoRA (Wang et al. 2024): like PiSSA but on the r smallest singular triplets — the adapter
 * starts on W's minor components and the base keeps the principal ones:
 * A = diag(√(S_min/scaling))·Vh_min, B = U_min·diag(√(S_min/scaling)), W ← W − scaling·B·A.
 * Not in PEFT (its closest, MiCA, freezes B and zeroes A); saved as a plain LoRA over the residual
 * with init_lora_weights "milora". The minor triplets come from an exact SVD (a randomized sketch
 * cannot resolve the bottom of a spectrum), so they are as accurate as the dtype allows.
 */
import { svdSmallest } from '../linalg/decompositions.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkRank, loraParams, LORA_KEYS, splitInit } from './split.js';
import { scalingOf, type AdapterMethod } from './types.js';
import { residualLoraTerm } from './lora.js';

type F = Tensor<FloatDType>;

export const method: AdapterMethod = {
  name: 'milora',
  summary: 'minor singular triplets in A and B, the principal ones in the base (MiLoRA)',
  changesBase: true,
  keys: LORA_KEYS,
  async init(w, opts) {
    checkRank(w, opts.rank);
    const { u, s, vt } = (await svdSmallest(w as Tensor<'f64'>, opts.rank)) as { u: F; s: F; vt: F };
    return splitInit(u, s, vt, scalingOf(opts));
  },
  trainableParams: loraParams,
  trainTerm: residualLoraTerm,
};
