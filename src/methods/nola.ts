/**
 * NOLA (Koohpayegani et al. 2024): LoRA's factors as linear combinations of random bases,
 * A = Σ_{i≤k} α_i·A_i and B = Σ_{j≤l} β_j·B_j, ΔW = s·B·A (s = alpha/r). The bases are regenerated
 * from the seed, never stored, so an adapter is its k + l coefficients per layer — a count that
 * depends neither on the rank nor on the layer's shape.
 * †Choices the paper leaves open: one set of bases per distinct input (A_i [r, in]) and output
 * (B_j [out, r]) size, shared by the layers of that size (regenerated, so sharing costs nothing on
 * disk and bounds memory); A_i ~ U(−1/√in, 1/√in) (LoRA's A), B_j ~ U(−1/√r, 1/√r); α ~ N(0, 1/k)
 * so that A starts at LoRA's scale, and β = 0 so that the layer starts unchanged.
 * Trainable parameters per layer: k + l.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { matmul } from '../linalg/matmul.js';
import { checkRank } from './split.js';
import { composedTerm, pairDelta, type Pair } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { LOWRANK_TYPE, needShared, sharedState } from './shared.js';
import { scalingOf, type AdapterMethod, type InitOptions, type Shared } from './types.js';

const OPTIONS = defineOptions({
  num_basis_A: { kind: 'int', default: 64, min: 1, max: 4096, help: 'k, the random bases A_i of A (coefficients α)' },
  num_basis_B: { kind: 'int', default: 64, min: 1, max: 4096, help: 'l, the random bases B_j of B (coefficients β)' },
});
const config = (opts: InitOptions): { k: number; l: number } => {
  const c = configOf('nola', OPTIONS, opts.options);
  return { k: c.num_basis_A, l: c.num_basis_B };
};

/** The shared roles of the bases for one input size and one output size. */
const roleA = (inF: number): string => `A_in${inF}`;
const roleB = (out: number): string => `B_out${out}`;

/** A seeded basis set [count, rows·cols], uniform in ±bound; the stream depends on the seed and the role. */
function basis<F extends FloatDType>(dtype: F, seed: number, role: string, count: number, size: number, bound: number): Tensor<F> {
  let h = seed >>> 0;
  for (const ch of role) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const t = tensor(dtype, [count, size]);
  rng(h).fillUniform(t.data, -bound, bound);
  return t;
}

/** Σ_i c_i·bases_i as a [rows, cols] matrix. */
async function combine<F extends FloatDType>(c: Tensor<F>, bases: Tensor<F>, rows: number, cols: number): Promise<Tensor<F>> {
  const flat = await matmul(tensor(c.dtype, [1, c.data.length], c.data), bases);
  return tensor(c.dtype, [rows, cols], flat.data);
}

/** ∂L/∂c_i = ⟨dX, bases_i⟩, added into g. */
async function pull<F extends FloatDType>(dX: Tensor<F>, bases: Tensor<F>, g: Tensor<F>): Promise<void> {
  const d = await matmul(bases, tensor(dX.dtype, [dX.data.length, 1], dX.data));
  for (let i = 0; i < g.data.length; i++) g.data[i] += d.data[i];
}

async function pair<F extends FloatDType>(t: Readonly<Record<string, Tensor<F>>>, shared: Shared<F>, r: number, shape: readonly [number, number]): Promise<Pair<F>> {
  const [out, inF] = shape;
  return { A: await combine(t.alpha, shared.tensors[roleA(inF)], r, inF), B: await combine(t.beta, shared.tensors[roleB(out)], out, r) };
}

export const method: AdapterMethod = {
  name: 'nola',
  summary: 'A and B as trained combinations of seeded random bases; k + l numbers per layer whatever the rank (NOLA)',
  changesBase: false,
  keys: { alpha: 'nola_alpha', beta: 'nola_beta' },
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const { k, l } = config(opts);
    const r = opts.rank;
    const seed = opts.seed ?? 0;
    const tensors: Record<string, Tensor<typeof dtype>> = {};
    for (const { shape: [out, inF] } of layers) {
      tensors[roleA(inF)] ??= basis(dtype, seed, roleA(inF), k, r * inF, 1 / Math.sqrt(inF));
      tensors[roleB(out)] ??= basis(dtype, seed, roleB(out), l, out * r, 1 / Math.sqrt(r));
    }
    return sharedState(tensors, []);
  },
  async init(w, opts) {
    checkRank(w, opts.rank);
    const { k, l } = config(opts);
    const alpha = tensor(w.dtype, [k]);
    rng(opts.seed ?? 0).fillNormal(alpha.data, 0, 1 / Math.sqrt(k));
    return { tensors: { alpha, beta: tensor(w.dtype, [l]) } };
  },
  trainableParams: (_out, _in, _r, opts) => {
    const { k, l } = config(opts ?? { rank: 1 });
    return k + l;
  },
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: { tensors: Readonly<Record<string, Tensor<FloatDType>>> }, opts: InitOptions, shared?: Shared<F>) {
    const [out, inF] = w.shape;
    const t = init.tensors as Readonly<Record<'alpha' | 'beta', Tensor<F>>>;
    const sh = needShared(shared, 'nola');
    const grads = { alpha: tensor(w.dtype, t.alpha.shape), beta: tensor(w.dtype, t.beta.shape) };
    return composedTerm<F>({
      params: { alpha: t.alpha, beta: t.beta },
      grads,
      scaling: scalingOf(opts),
      factors: () => pair(t, sh, opts.rank, [out, inF]),
      async pullback(dA, dB) {
        await pull(dA, sh.tensors[roleA(inF)], grads.alpha);
        await pull(dB, sh.tensors[roleB(out)], grads.beta);
      },
    });
  },
  async delta(tensors, shared, opts, shape) {
    return pairDelta(await pair(tensors, shared, opts.rank, shape), scalingOf(opts));
  },
  format: { peftType: LOWRANK_TYPE, moduleKeys: { alpha: 'nola_alpha', beta: 'nola_beta' }, sharedKeys: {} },
};
