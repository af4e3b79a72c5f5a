/**
 * DoRA (Liu et al. 2024): the weight as magnitude times direction, W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖
 * with the norm of each output row; m starts at ‖W‖_row and B at 0, so the layer starts unchanged.
 * Saved as PEFT saves it (lora_A, lora_B, lora_magnitude_vector; use_dora true).
 *
 * The training term never forms B·A: with G = A·Aᵀ (r × r) and WAᵀ (out × r),
 * ‖W_i + s·b_i·A‖² = ‖W_i‖² + 2s·b_i·(WAᵀ)_iᵀ + s²·b_i·G·b_iᵀ. Its gradient is exact — the norm is
 * differentiated too, where PEFT (following the paper's §4.3 to save memory) detaches it.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import { LowrankError } from '../core/errors.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import { rowNorms } from '../linalg/lowrank.js';
import { checkRank, copyOf, kaimingA, LORA_KEYS } from './split.js';
import { scalingOf, type AdapterMethod, type InitOptions, type LayerInit, type TrainTerm } from './types.js';

export const method: AdapterMethod = {
  name: 'dora',
  summary: 'magnitude ⊙ direction with a LoRA on the direction; m = ‖W‖_row, B = 0 at init (DoRA)',
  changesBase: false,
  keys: { ...LORA_KEYS, magnitude: 'lora_magnitude_vector' },
  async init(w, opts) {
    checkRank(w, opts.rank);
    const [out, inF] = w.shape;
    return { tensors: { A: kaimingA(w.dtype, opts.rank, inF, opts.seed ?? 0), B: tensor(w.dtype, [out, opts.rank]), magnitude: rowNorms(w) } };
  },
  trainableParams: (out, inF, r) => r * (out + inF) + out,
  trainTerm: <F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions) => {
    const t = init.tensors as Record<'A' | 'B' | 'magnitude', Tensor<F>>;
    return doraTerm(w, copyOf(t.A), copyOf(t.B), copyOf(t.magnitude), scalingOf(opts));
  },
};

/** The trainable DoRA term of one layer W [out, in] and its gradient buffers. */
export interface DoraTerm<F extends FloatDType> extends TrainTerm<F> {
  readonly A: Tensor<F>;
  readonly B: Tensor<F>;
  readonly magnitude: Tensor<F>;
  readonly dA: Tensor<F>;
  readonly dB: Tensor<F>;
  readonly dMagnitude: Tensor<F>;
}

export function doraTerm<F extends FloatDType>(w: Tensor<F>, A: Tensor<F>, B: Tensor<F>, magnitude: Tensor<F>, scaling: number): DoraTerm<F> {
  const out = w.shape[0];
  const r = A.shape[0];
  const dA = tensor(A.dtype, A.shape);
  const dB = tensor(B.dtype, B.shape);
  const dMagnitude = tensor(magnitude.dtype, magnitude.shape);
  const wNormSq = rowNorms(w).data.map((x) => x * x);
  /** ‖W + s·B·A‖_row without B·A, and the WAᵀ and G it used. */
  const norms = async (): Promise<{ n: Float64Array; wa: Tensor<F>; g: Tensor<F> }> => {
    const wa = await matmul(w, A, { transB: true }); // [out, r]
    const g = await matmul(A, A, { transB: true }); // [r, r]
    const n = new Float64Array(out);
    for (let i = 0; i < out; i++) {
      let cross = 0;
      let quad = 0;
      for (let k = 0; k < r; k++) {
        const b = B.data[i * r + k];
        cross += b * wa.data[i * r + k];
        let gb = 0;
        for (let l = 0; l < r; l++) gb += g.data[k * r + l] * B.data[i * r + l];
        quad += b * gb;
      }
      n[i] = Math.sqrt(wNormSq[i] + 2 * scaling * cross + scaling * scaling * quad);
    }
    return { n, wa, g };
  };
  const rowScale = (t: Tensor<F>, f: (i: number) => number): Tensor<F> => {
    const o = t.shape[1];
    for (let row = 0; row < t.shape[0]; row++) for (let i = 0; i < o; i++) t.data[row * o + i] *= f(i);
    return t;
  };
  return {
    A,
    B,
    magnitude,
    dA,
    dB,
    dMagnitude,
    params: { A, B, magnitude },
    grads: { A: dA, B: dB, magnitude: dMagnitude },
    toLora: () => ({ A, B, scaling, magnitude }),
    async forward(x) {
      const { n } = await norms();
      const p = await matmul(x, w, { transB: true });
      const q = await matmul(await matmul(x, A, { transB: true }), B, { transB: true });
      const o = p.shape[1];
      for (let row = 0; row < p.shape[0]; row++) {
        for (let i = 0; i < o; i++) {
          const c = magnitude.data[i] / n[i];
          p.data[row * o + i] = (c - 1) * p.data[row * o + i] + c * scaling * q.data[row * o + i];
        }
      }
      return p;
    },
    async backward(x, dy) {
      const { n, wa, g } = await norms();
      const xa = await matmul(x, A, { transB: true }); // [N, r]
      const full = await matmul(x, w, { transB: true }); // P, then P + Q
      const q = await matmul(xa, B, { transB: true });
      for (let i = 0; i < full.data.length; i++) full.data[i] += scaling * q.data[i];
      const N = dy.shape[0];
      const k = new Float64Array(out); // dn_i / n_i
      for (let i = 0; i < out; i++) {
        let dc = 0;
        for (let row = 0; row < N; row++) dc += dy.data[row * out + i] * full.data[row * out + i];
        dMagnitude.data[i] += dc / n[i];
        k[i] = (-dc * magnitude.data[i]) / (n[i] * n[i]) / n[i];
      }
      // Through the LoRA path with coefficient c = m/n.
      const cdy = rowScale(tensor(dy.dtype, dy.shape, dy.data.slice() as typeof dy.data), (i) => magnitude.data[i] / n[i]);
      const dxa = await matmul(cdy, B); // [N, r], times s below
      for (let i = 0; i < dxa.data.length; i++) dxa.data[i] *= scaling;
      const gB = await matmul(cdy, xa, { transA: true }); // [out, r]
      const gA = await matmul(dxa, x, { transA: true }); // [r, in]
      // Through the norm: dV = diag(k)·(W + s·B·A).
      const kB = tensor(B.dtype, B.shape);
      for (let i = 0; i < out; i++) for (let c = 0; c < r; c++) kB.data[i * r + c] = k[i] * B.data[i * r + c];
      const bg = await matmul(B, g); // [out, r]
      for (let i = 0; i < out; i++) {
        for (let c = 0; c < r; c++) dB.data[i * r + c] += scaling * gB.data[i * r + c] + scaling * k[i] * (wa.data[i * r + c] + scaling * bg.data[i * r + c]);
      }
      const kBtW = await matmul(kB, w, { transA: true }); // Bᵀ·diag(k)·W, [r, in]
      const kBtB = await matmul(kB, B, { transA: true }); // Bᵀ·diag(k)·B, [r, r]
      const kBtBA = await matmul(kBtB, A); // [r, in]
      for (let i = 0; i < dA.data.length; i++) dA.data[i] += gA.data[i] + scaling * (kBtW.data[i] + scaling * kBtBA.data[i]);
      // dx: ((c − 1)⊙dy)·W + s·((c⊙dy)·B)·A (the linear layer adds dy·W itself).
      const cm1 = rowScale(tensor(dy.dtype, dy.shape, dy.data.slice() as typeof dy.data), (i) => magnitude.data[i] / n[i] - 1);
      const dx = await matmul(cm1, w);
      const lora = await matmul(dxa, A);
      for (let i = 0; i < dx.data.length; i++) dx.data[i] += lora.data[i];
      return dx;
    },
  };
}

/**
 * DoRA's merge, in place: each output's weights of the merged W + s·B·A scaled to norm m[o]
 * (PEFT's dora_factor = m / ‖W + s·B·A‖ over the input dimension; outputs are rows, or columns of
 * a weight stored [in, out]). An all-zero output stays zero (PEFT would divide 0 by 0).
 */
export function applyDoraMagnitude(w: Tensor<FloatDType>, magnitude: ArrayLike<number>, fanInFanOut: boolean): void {
  const [m, n] = w.shape;
  const outs = fanInFanOut ? n : m;
  if (magnitude.length !== outs) throw new LowrankError('E_SHAPE', `DoRA magnitude has ${magnitude.length} entries for ${outs} outputs`);
  const norms = new Float64Array(outs);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) norms[fanInFanOut ? j : i] += w.data[i * n + j] ** 2;
  for (let o = 0; o < outs; o++) norms[o] = norms[o] > 0 ? magnitude[o] / Math.sqrt(norms[o]) : 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w.data[i * n + j] *= norms[fanInFanOut ? j : i];
}
