/**
 * LoRA-FA (Zhang et al. 2023): LoRA with A frozen at its random init, only B trained, so the
 * activations x·Aᵀ are all the backward pass needs of x; B starts at 0 (the layer starts
 * unchanged). Trainable parameters per layer: out·r. The README's example of a whole method.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { composedTerm, pairDelta } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { LOWRANK_TYPE } from './shared.js';
import { kaimingA } from './split.js';
import { scalingOf, type AdapterMethod, type InitOptions, type LayerInit } from './types.js';

const OPTIONS = defineOptions({ a_seed: { kind: 'int', default: 0, min: 0, help: 'seed of the frozen A' } });

export const method: AdapterMethod = {
  name: 'lorafa',
  summary: 'LoRA with A frozen at its random init; only B trains (LoRA-FA)',
  changesBase: false,
  keys: { A: 'lorafa_A', B: 'lorafa_B' },
  options: OPTIONS,
  async init(w, opts) {
    const { a_seed } = configOf('lorafa', OPTIONS, opts.options);
    return { tensors: { A: kaimingA(w.dtype, opts.rank, w.shape[1], a_seed + (opts.layer?.index ?? 0)), B: tensor(w.dtype, [w.shape[0], opts.rank]) } };
  },
  trainableParams: (out, _in, r) => out * r,
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions) {
    const { A, B } = init.tensors as Readonly<Record<'A' | 'B', Tensor<F>>>;
    const dB = tensor(w.dtype, B.shape);
    return composedTerm<F>({ params: { B }, grads: { B: dB }, scaling: scalingOf(opts), factors: () => ({ A, B }), frozen: 'A', pullback: (g) => g.data.forEach((v, i) => (dB.data[i] += v)) });
  },
  delta: async (t, _shared, opts) => pairDelta({ A: t.A, B: t.B }, scalingOf(opts)),
  format: { peftType: LOWRANK_TYPE, moduleKeys: { A: 'lorafa_A', B: 'lorafa_B' }, sharedKeys: {} },
};
