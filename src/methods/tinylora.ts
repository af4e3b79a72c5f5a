/**
 * TinyLoRA ("Learning to Reason in 13 Parameters", arXiv:2602.04118; PEFT tuner `tinylora`):
 * LoRA-XS (loraxs.ts) with its r×r core spanned by fixed random matrices, R = Σ_i v_i·P_i, and one
 * trained vector v ∈ R^u shared by the tied layers — the whole adapter can be a dozen numbers.
 *   W = U·S·Vᵀ;  A = diag(√S_r)·V_rᵀ [r, in], B = U_r·diag(√S_r) [out, r], P [u, r, r], frozen
 *   W' = W + B·R·A,  R = Σ_i v_i·P_i  (no scaling; the base is kept; v starts at 0)
 * Training is composedTerm's LoRA pair (A, B') with B' = B·R:
 *   forward   y += ((x·Aᵀ)·Rᵀ)·Bᵀ
 *   backward  composedTerm gives dB' = dyᵀ·(x·Aᵀ); dR = Bᵀ·dB';  dv_i += ⟨dR, P_i⟩  (summed over layers)
 * Trainable parameters: u per group of tied layers, none per layer; frozen per layer r·(out + in) + u·r².
 * Format: PEFT's TINYLORA, as PEFT saves it: per layer tinylora_A, tinylora_B and tinylora_P
 * (save_projection true), the group's v at base_model.tinylora_v.0.
 * †Choices where this differs from PEFT or PEFT leaves it open:
 *  - P ~ N(0, 1/r) is drawn from lowrank's generator, not torch's, so PEFT could not regenerate it:
 *    it is always saved (save_projection true; no option). Its seed is projection_seed + the layer's
 *    seed; training gives layer i seed + i, PEFT's projection_seed + layer_idx scheme (`lowrank init`
 *    gives every layer one seed, so one P, as PEFT 0.19.1 did; either way P is saved, so ΔW is exact).
 *  - weight_tying defaults to 1 (PEFT: 0, one v per layer), and only values that tie every layer
 *    into one group are served: AdapterFormat.sharedKeys is a fixed map, with no way to name one key
 *    per group (base_model.tinylora_v.<g>). Full tying is the paper's
 *    13-parameter setting.
 *  - A rank above min(out, in) is an error; PEFT lowers it to min(out, in) for that layer.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { matmul } from '../linalg/matmul.js';
import { sqrtSplit } from '../linalg/lowrank.js';
import { composedTerm } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { topTriplets } from './pissa.js';
import { needShared, sharedState } from './shared.js';
import type { AdapterMethod, InitOptions, LayerInit, Shared } from './types.js';

const OPTIONS = defineOptions({
  u: { kind: 'int', default: 64, min: 1, max: 2 ** 24, help: 'length of the trained vector v (R = Σ_i v_i·P_i)' },
  weight_tying: { kind: 'number', default: 1, min: 0, max: 1, help: 'fraction of layers tied to one v; only full tying (one group) is served' },
  projection_seed: { kind: 'int', default: 42, min: 0, help: 'seed of the random matrices P (plus the layer\'s seed)' },
});
const config = (opts: InitOptions): { u: number; tying: number; seed: number } => {
  const c = configOf('tinylora', OPTIONS, opts.options);
  return { u: c.u, tying: c.weight_tying, seed: c.projection_seed };
};

/** PEFT's group count: max(1, round(N·(1 − weight_tying))), Python's round (half to even). */
function groups(n: number, tying: number): number {
  const x = n * (1 - tying);
  const f = Math.floor(x);
  const rounded = x - f > 0.5 || (x - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.max(1, rounded);
}

/** R = Σ_i v_i·P_i [r, r] from v [u] and P [u, r, r]. */
async function core<F extends FloatDType>(v: Tensor<F>, p: Tensor<F>): Promise<Tensor<F>> {
  const [u, r] = p.shape;
  const flat = await matmul(tensor(v.dtype, [1, u], v.data), tensor(p.dtype, [u, r * r], p.data));
  return tensor(v.dtype, [r, r], flat.data);
}

export const method: AdapterMethod = {
  name: 'tinylora',
  summary: 'LoRA-XS with its r×r core a combination Σ v_i·P_i of seeded matrices; u numbers for all the tied layers (TinyLoRA)',
  changesBase: false,
  keys: { A: 'tinylora_A', B: 'tinylora_B', P: 'tinylora_P' },
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const { u, tying } = config(opts);
    const g = groups(layers.length, tying);
    if (g > 1) throw new LowrankError('E_USAGE', `tinylora option weight_tying=${tying} makes ${g} groups of the ${layers.length} layers; only weight_tying that ties them into one group is served (1 always does)`);
    return sharedState({ v: tensor(dtype, [u]) }, ['v']);
  },
  async init(w, opts) {
    const r = opts.rank;
    const { u, seed } = config(opts);
    const split = sqrtSplit(await topTriplets(w, r, opts.niter, opts.seed));
    const P = tensor(w.dtype, [u, r, r]);
    rng(seed + (opts.seed ?? 0)).fillNormal(P.data, 0, 1 / Math.sqrt(r));
    return { tensors: { A: split.right, B: split.left, P } };
  },
  trainableParams: () => 0,
  frozenParams: (out, inF, r, opts) => r * (out + inF) + config(opts ?? { rank: r }).u * r * r,
  sharedParams: (layers, opts) => {
    const { u, tying } = config(opts);
    return u * groups(layers.length, tying);
  },
  trainTerm<F extends FloatDType>(_w: Tensor<F>, init: LayerInit, _opts: InitOptions, shared?: Shared<F>) {
    const t = init.tensors as Readonly<Record<'A' | 'B' | 'P', Tensor<F>>>;
    const sh = needShared(shared, 'tinylora');
    const [v, dv] = [sh.tensors.v, sh.grads.v];
    const [u, r] = t.P.shape;
    return composedTerm<F>({
      params: {},
      grads: {},
      scaling: 1,
      factors: async () => ({ A: t.A, B: await matmul(t.B, await core(v, t.P)) }),
      frozen: 'A',
      async pullback(dB) {
        const dR = await matmul(t.B, dB, { transA: true });
        const d = await matmul(tensor(dR.dtype, [u, r * r], t.P.data), tensor(dR.dtype, [r * r, 1], dR.data));
        for (let i = 0; i < u; i++) dv.data[i] += d.data[i];
      },
    });
  },
  async delta(tensors, shared) {
    return { left: await matmul(tensors.B, await core(shared.tensors.v, tensors.P)), right: tensors.A, scale: 1 };
  },
  format: {
    peftType: 'TINYLORA',
    moduleKeys: { A: 'tinylora_A', B: 'tinylora_B', P: 'tinylora_P' },
    sharedKeys: { v: 'base_model.tinylora_v.0' },
    fields: () => ({ save_projection: true, init_weights: true, init_v_bound: 0.02, tinylora_dropout: 0 }),
  },
};
