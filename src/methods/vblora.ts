/**
 * VB-LoRA (Li, Han & Ji 2024, "VB-LoRA: Extreme Parameter Efficient Fine-Tuning with Vector
 * Banks"): every LoRA factor of every layer is cut into sub-vectors of length L, and each
 * sub-vector is a sparse top-k mixture of one vector bank [N, L] shared by all the layers.
 *   per sub-vector, logits z ∈ R^N:  S = topk(z, K),  w = softmax(z_S),  v = Σ_{k∈S} w_k·bank_k
 *   A [r, in]:  A[i, t·L + l] = v_A[i, t][l]   (logits_A [r, in/L, N]: a row of A is in/L sub-vectors)
 *   B [out, r]: B[t·L + l, i] = v_B[t, i][l]   (logits_B [out/L, r, N]: a column of B is out/L sub-vectors)
 *   forward   y += x·Aᵀ·Bᵀ   (no scaling: PEFT's VB-LoRA has no alpha)
 *   backward  dA, dB as LoRA's (composed.ts), then per sub-vector with g_k = ⟨dv, bank_k⟩:
 *             dbank_k += w_k·dv,   dz_k = w_k·(g_k − Σ_j w_j·g_j) for k ∈ S,   dz = 0 off S
 * Trainable parameters per layer: r·(in/L)·N + (out/L)·r·N; shared: the bank, N·L.
 * Defaults and key names are PEFT's (tuner `vblora`, peft_type VBLORA); saved with full logits
 * (save_only_topk_weights false).
 * †Choices left open: top-k ties go to the lower bank index (torch.topk leaves the order of ties
 * unspecified); the bank is U(±init_vector_bank_bound) from the seed mixed with a salt (its stream
 * differs from the logits'), the logits N(0, init_logits_std²) from the layer's seed, A's then B's
 * (PEFT's draw order); for a shape not divisible by L, which init rejects, trainableParams counts
 * the shape rounded up to multiples of L so a parameter table over every method still prints.
 * VB-LoRA does not start at ΔW = 0: the logits and the bank are both random.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { composedTerm, pairDelta, type Pair } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { needShared, sharedState } from './shared.js';
import type { AdapterMethod, InitOptions, LayerInit, Shared } from './types.js';

const OPTIONS = defineOptions({
  num_vectors: { kind: 'int', default: 256, min: 1, max: 2 ** 20, help: 'N, the vectors of the shared bank' },
  vector_length: { kind: 'int', default: 256, min: 1, max: 2 ** 16, help: 'L, the length of a bank vector; every layer\'s in and out must be multiples of it' },
  topk: { kind: 'int', default: 2, min: 1, help: 'K, the bank vectors mixed into each sub-vector (≤ num_vectors)' },
  init_vector_bank_bound: { kind: 'number', default: 0.02, min: 0, help: 'the bank starts U(−bound, bound)' },
  init_logits_std: { kind: 'number', default: 0.1, min: 0, help: 'the logits start N(0, std²)' },
});
interface Config {
  readonly n: number;
  readonly len: number;
  readonly k: number;
  readonly bound: number;
  readonly std: number;
}
function config(opts: InitOptions | undefined): Config {
  const c = configOf('vblora', OPTIONS, opts?.options);
  if (c.topk > c.num_vectors) throw new LowrankError('E_USAGE', `vblora option topk must be ≤ num_vectors (${c.num_vectors}), got ${c.topk}`);
  return { n: c.num_vectors, len: c.vector_length, k: c.topk, bound: c.init_vector_bank_bound, std: c.init_logits_std };
}

/** Salt of the bank's seed, so the bank's stream is not layer 0's logits' stream. */
const BANK_SALT = 0x5eedba4c;

function checkShape(shape: readonly number[], len: number, what: string): void {
  const [out, inF] = shape;
  if (out % len !== 0 || inF % len !== 0) {
    throw new LowrankError('E_USAGE', `vblora: ${what} is ${out}×${inF} (out×in), and both must be multiples of vector_length ${len}`);
  }
}

/** Per row of logits [rows, N]: the K largest (ties: the lower index) and their softmax weights. */
function select(z: ArrayLike<number>, n: number, k: number): { idx: Int32Array; w: Float64Array } {
  const rows = z.length / n;
  const idx = new Int32Array(rows * k);
  const w = new Float64Array(rows * k);
  for (let row = 0; row < rows; row++) {
    const o = row * n;
    const at = row * k;
    let kept = 0; // idx[at..at+kept) sorted by descending logit
    for (let j = 0; j < n; j++) {
      const v = z[o + j];
      if (kept === k && !(v > z[o + idx[at + k - 1]])) continue;
      let p = kept < k ? kept++ : k - 1;
      while (p > 0 && v > z[o + idx[at + p - 1]]) {
        idx[at + p] = idx[at + p - 1];
        p--;
      }
      idx[at + p] = j;
    }
    const top = z[o + idx[at]];
    let sum = 0;
    for (let q = 0; q < k; q++) {
      w[at + q] = Math.exp(z[o + idx[at + q]] - top);
      sum += w[at + q];
    }
    for (let q = 0; q < k; q++) w[at + q] /= sum;
  }
  return { idx, w };
}

/** The sub-vectors [rows, L] of a logits tensor: v = Σ_k w_k·bank[idx_k]. */
function subVectors(z: Tensor<FloatDType>, bank: Tensor<FloatDType>, k: number): Float64Array {
  const [n, len] = bank.shape;
  const { idx, w } = select(z.data, n, k);
  const rows = z.data.length / n;
  const v = new Float64Array(rows * len);
  for (let row = 0; row < rows; row++) {
    for (let q = 0; q < k; q++) {
      const b = idx[row * k + q] * len;
      const wq = w[row * k + q];
      for (let l = 0; l < len; l++) v[row * len + l] += wq * bank.data[b + l];
    }
  }
  return v;
}

/** Adds ∂L/∂z and ∂L/∂bank from the sub-vectors' gradient dv [rows, L]. */
function pullSubVectors(dv: ArrayLike<number>, z: Tensor<FloatDType>, dz: Tensor<FloatDType>, bank: Tensor<FloatDType>, dbank: Tensor<FloatDType>, k: number): void {
  const [n, len] = bank.shape;
  const { idx, w } = select(z.data, n, k);
  const rows = z.data.length / n;
  const g = new Float64Array(k);
  for (let row = 0; row < rows; row++) {
    let mean = 0;
    for (let q = 0; q < k; q++) {
      const b = idx[row * k + q] * len;
      const wq = w[row * k + q];
      let s = 0;
      for (let l = 0; l < len; l++) {
        s += dv[row * len + l] * bank.data[b + l];
        dbank.data[b + l] += wq * dv[row * len + l];
      }
      g[q] = s;
      mean += wq * s;
    }
    for (let q = 0; q < k; q++) dz.data[row * n + idx[row * k + q]] += w[row * k + q] * (g[q] - mean);
  }
}

/** A [r, in] and B [out, r] from the logits and the bank. */
function pair<F extends FloatDType>(t: Readonly<Record<string, Tensor<F>>>, bank: Tensor<F>, c: Config, r: number, shape: readonly [number, number]): Pair<F> {
  const [out, inF] = shape;
  const L = c.len;
  const A = tensor(bank.dtype, [r, inF]);
  A.data.set(subVectors(t.logits_A, bank, c.k)); // [r, in/L, L] is A's own layout
  const vB = subVectors(t.logits_B, bank, c.k); // [out/L, r, L]
  const B = tensor(bank.dtype, [out, r]);
  for (let tt = 0; tt < out / L; tt++) for (let i = 0; i < r; i++) for (let l = 0; l < L; l++) B.data[(tt * L + l) * r + i] = vB[(tt * r + i) * L + l];
  return { A, B };
}

export const method: AdapterMethod = {
  name: 'vblora',
  summary: 'every sub-vector of A and B a top-k softmax mixture of one shared vector bank; logits per layer, the bank trained (VB-LoRA)',
  changesBase: false,
  keys: { logits_A: 'vblora_logits_A', logits_B: 'vblora_logits_B' },
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const c = config(opts);
    for (const l of layers) checkShape(l.shape, c.len, `module ${l.name}`);
    const bank = tensor(dtype, [c.n, c.len]);
    rng(((opts.seed ?? 0) ^ BANK_SALT) >>> 0).fillUniform(bank.data, -c.bound, c.bound);
    return sharedState({ bank }, ['bank']);
  },
  async init(w, opts): Promise<LayerInit> {
    const c = config(opts);
    const r = opts.rank;
    if (!Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `vblora: rank must be a positive integer, got ${r}`);
    checkShape(w.shape, c.len, 'the weight');
    const [out, inF] = w.shape;
    const logitsA = tensor(w.dtype, [r, inF / c.len, c.n]);
    const logitsB = tensor(w.dtype, [out / c.len, r, c.n]);
    const g = rng(opts.seed ?? 0);
    g.fillNormal(logitsA.data, 0, c.std);
    g.fillNormal(logitsB.data, 0, c.std);
    return { tensors: { logits_A: logitsA, logits_B: logitsB } };
  },
  trainableParams(out, inF, r, opts) {
    const { n, len } = config(opts);
    return r * n * (Math.ceil(inF / len) + Math.ceil(out / len));
  },
  sharedParams(_layers, opts) {
    const { n, len } = config(opts);
    return n * len;
  },
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions, shared?: Shared<F>) {
    const c = config(opts);
    const [out, inF] = w.shape;
    const L = c.len;
    const r = opts.rank;
    const t = init.tensors as Readonly<Record<'logits_A' | 'logits_B', Tensor<F>>>;
    const sh = needShared(shared, 'vblora');
    const bank = sh.tensors.bank;
    const dbank = sh.grads.bank;
    const grads = { logits_A: tensor(w.dtype, t.logits_A.shape), logits_B: tensor(w.dtype, t.logits_B.shape) };
    return composedTerm<F>({
      params: { logits_A: t.logits_A, logits_B: t.logits_B },
      grads,
      scaling: 1,
      factors: () => pair(t, bank, c, r, [out, inF]),
      pullback(dA, dB) {
        pullSubVectors(dA.data, t.logits_A, grads.logits_A, bank, dbank, c.k);
        const dvB = new Float64Array(dB.data.length); // dB [out, r] back to the sub-vector layout [out/L, r, L]
        for (let tt = 0; tt < out / L; tt++) for (let i = 0; i < r; i++) for (let l = 0; l < L; l++) dvB[(tt * r + i) * L + l] = dB.data[(tt * L + l) * r + i];
        pullSubVectors(dvB, t.logits_B, grads.logits_B, bank, dbank, c.k);
      },
    });
  },
  async delta(tensors, shared, opts, shape) {
    return pairDelta(pair(tensors, shared.tensors.bank, config(opts), opts.rank, shape), 1);
  },
  format: {
    peftType: 'VBLORA',
    moduleKeys: { logits_A: 'vblora_logits_A', logits_B: 'vblora_logits_B' },
    sharedKeys: { bank: 'base_model.vblora_vector_bank' },
    fields: () => ({ save_only_topk_weights: false, vblora_dropout: 0 }),
    readOptions(cfg) {
      if (cfg.save_only_topk_weights === true) {
        throw new LowrankError('E_UNSUPPORTED', 'is a VB-LoRA adapter saved with save_only_topk_weights (top-k indices and weights instead of logits); lowrank reads VB-LoRA adapters saved with full logits');
      }
      return {};
    },
  },
};
