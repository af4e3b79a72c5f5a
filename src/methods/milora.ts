/**
 * MiLoRA (Wang et al. 2024): like PiSSA but on the r smallest singular triplets — the adapter
 * starts on W's minor components and the base keeps the principal ones:
 * A = diag(√(S_min/scaling))·Vh_min, B = U_min·diag(√(S_min/scaling)), W ← W − scaling·B·A.
 * Not in PEFT (its closest, MiCA, freezes B and zeroes A); saved as a plain LoRA over the residual
 * with init_lora_weights "milora". The minor triplets come from an exact SVD (a randomized sketch
 * cannot resolve the bottom of a spectrum), so they are as accurate as the dtype allows.
 */
import { svdSmallest } from '../linalg/decompositions.js';
import { LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { loraParams, LORA_KEYS, sqrtSplit } from './split.js';
import { scalingOf, type AdapterMethod } from './types.js';

type F = Tensor<FloatDType>;

export const method: AdapterMethod = {
  name: 'milora',
  summary: 'minor singular triplets in A and B, the principal ones in the base (MiLoRA)',
  changesBase: true,
  keys: LORA_KEYS,
  async init(w, opts) {
    const [out, inF] = w.shape;
    if (!Number.isInteger(opts.rank) || opts.rank < 1 || opts.rank > Math.min(out, inF)) throw new LowrankError('E_USAGE', `rank must be an integer in 1..${Math.min(out, inF)} for a ${out}×${inF} weight, got ${opts.rank}`);
    const { u, s, vt } = (await svdSmallest(w as Tensor<'f64'>, opts.rank)) as { u: F; s: F; vt: F };
    return sqrtSplit(w, u, s, vt, scalingOf(opts));
  },
  trainableParams: loraParams,
};
