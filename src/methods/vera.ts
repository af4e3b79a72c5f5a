/**
 * VeRA (Kopiczko et al. 2024): one pair of frozen random matrices shared by every layer, A [r, in_max]
 * and B [out_max, r], and per layer two trained vectors that scale them:
 *   ΔW = diag(λ_b)·B_s·diag(λ_d)·A_s,  A_s = A[:, :in], B_s = B[:out, :]  (no other scaling)
 * λ_b [out] starts at 0 (the layer starts unchanged), λ_d [r] at d_initial. As PEFT's `vera` tuner:
 * A and B kaiming-uniform, U(±√(6/fan_in)), from one generator seeded by projection_prng_key, A first.
 * The values here come from lowrank's generator, not torch's, so the adapter always carries them
 * (PEFT's save_projection true: base_model.vera_A, base_model.vera_B), and PEFT loads them as saved.
 * Trainable parameters per layer: out + r; the shared pair is frozen (r·(in_max + out_max)).
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { LowrankError } from '../core/errors.js';
import { composedTerm, pairDelta, type Pair } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { needShared, sharedState } from './shared.js';
import type { AdapterMethod, InitOptions, LayerInit, Shared } from './types.js';

const OPTIONS = defineOptions({
  d_initial: { kind: 'number', default: 0.1, help: 'the initial value of every λ_d' },
  projection_prng_key: { kind: 'int', default: 0, min: 0, help: 'seed of the shared random matrices A and B' },
});

/** The first `rows` rows and `cols` columns of a row-major matrix. */
function corner<F extends FloatDType>(m: Tensor<F>, rows: number, cols: number): Tensor<F> {
  const n = m.shape[1];
  const out = tensor(m.dtype, [rows, cols]);
  for (let i = 0; i < rows; i++) out.data.set(m.data.subarray(i * n, i * n + cols), i * cols);
  return out;
}

/** A_s, B_s of a layer from the shared pair; E_USAGE when the pair is too small for it. */
function slices<F extends FloatDType>(shared: Shared<F>, r: number, out: number, inF: number): { A: Tensor<F>; B: Tensor<F> } {
  const { A, B } = shared.tensors;
  if (A.shape[0] !== r || B.shape[1] !== r || A.shape[1] < inF || B.shape[0] < out) {
    throw new LowrankError('E_USAGE', `a ${out}×${inF} layer does not fit VeRA's shared A [${A.shape.join(', ')}] and B [${B.shape.join(', ')}] at rank ${r}`);
  }
  return { A: corner(A, r, inF), B: corner(B, out, r) };
}

/** (A_s, diag(λ_b)·B_s·diag(λ_d)). */
function pair<F extends FloatDType>(s: { A: Tensor<F>; B: Tensor<F> }, lb: Tensor<F>, ld: Tensor<F>): Pair<F> {
  const [out, r] = s.B.shape;
  const B = tensor(s.B.dtype, [out, r]);
  for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) B.data[i * r + j] = lb.data[i] * s.B.data[i * r + j] * ld.data[j];
  return { A: s.A, B };
}

export const method: AdapterMethod = {
  name: 'vera',
  summary: 'frozen random A, B shared by all layers, trained scaling vectors λ_d, λ_b per layer (VeRA, PEFT vera)',
  changesBase: false,
  keys: { lambda_b: 'vera_lambda_b', lambda_d: 'vera_lambda_d' },
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const { projection_prng_key: key } = configOf('vera', OPTIONS, opts.options);
    const r = opts.rank;
    if (!Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${r}`);
    const outMax = Math.max(...layers.map((l) => l.shape[0]));
    const inMax = Math.max(...layers.map((l) => l.shape[1]));
    const g = rng(key);
    const A = tensor(dtype, [r, inMax]);
    g.fillUniform(A.data, -Math.sqrt(6 / inMax), Math.sqrt(6 / inMax));
    const B = tensor(dtype, [outMax, r]);
    g.fillUniform(B.data, -Math.sqrt(6 / r), Math.sqrt(6 / r));
    return sharedState({ A, B }, []);
  },
  async init(w, opts) {
    const { d_initial } = configOf('vera', OPTIONS, opts.options);
    const lambda_d = tensor(w.dtype, [opts.rank]);
    lambda_d.data.fill(d_initial);
    return { tensors: { lambda_b: tensor(w.dtype, [w.shape[0]]), lambda_d } };
  },
  trainableParams: (out, _in, r) => out + r,
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions, shared?: Shared<F>) {
    const [out, inF] = w.shape;
    const r = opts.rank;
    const s = slices(needShared(shared, 'vera'), r, out, inF);
    const { lambda_b: lb, lambda_d: ld } = init.tensors as Readonly<Record<'lambda_b' | 'lambda_d', Tensor<F>>>;
    const grads = { lambda_b: tensor(w.dtype, [out]), lambda_d: tensor(w.dtype, [r]) };
    return composedTerm<F>({
      params: { lambda_b: lb, lambda_d: ld },
      grads,
      scaling: 1,
      factors: () => pair(s, lb, ld),
      frozen: 'A',
      pullback(dB) {
        // B' = diag(λ_b)·B_s·diag(λ_d): dλ_b_i = Σ_j dB'_ij·B_s_ij·λ_d_j, dλ_d_j = Σ_i dB'_ij·λ_b_i·B_s_ij.
        for (let i = 0; i < out; i++) {
          for (let j = 0; j < r; j++) {
            const g = dB.data[i * r + j] * s.B.data[i * r + j];
            grads.lambda_b.data[i] += g * ld.data[j];
            grads.lambda_d.data[j] += g * lb.data[i];
          }
        }
      },
    });
  },
  async delta(tensors, shared, opts, [out, inF]) {
    return pairDelta(pair(slices(shared, opts.rank, out, inF), tensors.lambda_b, tensors.lambda_d), 1);
  },
  format: {
    peftType: 'VERA',
    moduleKeys: { lambda_b: 'vera_lambda_b', lambda_d: 'vera_lambda_d' },
    sharedKeys: { A: 'base_model.vera_A', B: 'base_model.vera_B' },
    fields: () => ({ save_projection: true, vera_dropout: 0, init_weights: true }),
  },
};
