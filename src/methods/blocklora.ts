/**
 * Block-LoRA (Zhou et al. 2025, "One Head Eight Arms: Block Matrix based Low Rank Adaptation for
 * CLIP-based Few-Shot Learning"): LoRA's factors split into sub-matrices, every down-projection
 * sub-matrix shared, so that products with the input become additions of its blocks.
 * With x = [x_1; …; x_n] (n blocks of m = in/n), A = [A_1 | … | A_n] (A_j [r, m]) and
 * B = [B_1; …; B_n] (B_i the output rows of block i), LoRA's ΔW is the block matrix (B_i·A_j)_ij; sharing
 * A_1 = … = A_n = A_s makes its block (i, j) B_i·A_s, i.e. ΔW = s·B·[A_s | A_s | … | A_s], and
 *   ΔW·x = s·Σ_j B·A_s·x_j = s·B·A_s·(Σ_j x_j):
 * the n products A_j·x_j become n − 1 additions and one product with A_s [r, m].
 *   forward   x̄ = Σ_j x_j [N, m];  u = x̄·A_sᵀ [N, r];  y += s·u·Bᵀ
 *   backward  g = s·dy·B [N, r];  dA_s += gᵀ·x̄;  dB += s·dyᵀ·u;  dx̄ = g·A_s;  dx_j += dx̄ for every j
 * Trainable parameters per layer: r·in/n + out·r (LoRA: r·in + out·r). `in` must be a multiple of n;
 * B's split into row blocks B_i changes neither ΔW nor the count, so `out` need not be.
 * †Choices the paper leaves open (its method section was not at hand here; the form above is the one
 * that fits its abstract: a partition of LoRA's own product, fewer parameters than LoRA, products
 * turned into additions): the split of A is along the input (A_s [r, in/n]), not along the rank
 * (that would make ΔW = (Σ_i B_i)·A_s, a plain LoRA of rank r/n), and B is LoRA's one B (a separate
 * B_j [out, r] per input block would train n·out·r + r·in/n numbers, more than LoRA);
 * A_s is shared within a layer only (every layer has its own A_s and B); n = 8 by default (the
 * title's eight arms); A_s ~ LoRA's kaiming-uniform on its own shape, U(−1/√m, 1/√m), and B = 0 so
 * that the layer starts unchanged; s = alpha/r (alpha/√r with rsLoRA) as in PEFT's LoRA.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import type { LowRank } from '../linalg/lowrank.js';
import { checkRank, copyOf, kaimingA } from './split.js';
import { configOf, defineOptions } from './options.js';
import { LOWRANK_TYPE } from './shared.js';
import { scalingOf, type AdapterMethod, type InitOptions, type LayerInit, type TrainTerm } from './types.js';

const OPTIONS = defineOptions({
  num_blocks: { kind: 'int', default: 8, min: 1, help: 'n, the blocks the input is split into; A_s [r, in/n] is shared by all of them (in must be a multiple of n)' },
});

const KEYS = { A: 'block_lora_A', B: 'block_lora_B' } as const;

/** n, checked to divide the layer's input size; the block width m = in/n. */
function blocks(opts: InitOptions | undefined, out: number, inF: number): { n: number; m: number } {
  const n = configOf('blocklora', OPTIONS, opts?.options).num_blocks;
  if (inF % n !== 0) throw new LowrankError('E_USAGE', `blocklora: a ${out}×${inF} weight's input size ${inF} is not a multiple of num_blocks=${n}`, { shape: [out, inF] });
  return { n, m: inF / n };
}

/** Σ_j x_j: the n column blocks [rows, m] of x [..., n·m] added up. */
function foldBlocks<F extends FloatDType>(x: Tensor<F>, n: number, m: number): Tensor<F> {
  const rows = x.data.length / (n * m);
  const s = tensor(x.dtype, [...x.shape.slice(0, -1), m]);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) {
      const from = i * n * m + j * m;
      for (let c = 0; c < m; c++) s.data[i * m + c] += x.data[from + c];
    }
  }
  return s;
}

/** [t | t | … | t]: t [..., m] repeated n times along its last dimension. */
function tileBlocks<F extends FloatDType>(t: Tensor<F>, n: number, shape: readonly number[]): Tensor<F> {
  const m = t.shape[t.shape.length - 1];
  const rows = t.data.length / m;
  const out = tensor(t.dtype, shape);
  for (let i = 0; i < rows; i++) {
    const row = t.data.subarray(i * m, (i + 1) * m);
    for (let j = 0; j < n; j++) out.data.set(row, i * n * m + j * m);
  }
  return out;
}

function blockTerm<F extends FloatDType>(A: Tensor<F>, B: Tensor<F>, n: number, s: number): TrainTerm<F> {
  const m = A.shape[1];
  const grads = { A: tensor(A.dtype, A.shape), B: tensor(B.dtype, B.shape) };
  const scaled = (t: Tensor<F>): Tensor<F> => {
    if (s !== 1) for (let i = 0; i < t.data.length; i++) t.data[i] *= s;
    return t;
  };
  return {
    params: { A, B },
    grads,
    async forward(x) {
      const u = await matmul(foldBlocks(x, n, m), A, { transB: true }); // [N, r]
      return scaled(await matmul(u, B, { transB: true }));
    },
    async backward(x, dy) {
      const xs = foldBlocks(x, n, m); // [N, m]
      const u = await matmul(xs, A, { transB: true }); // [N, r]
      const g = scaled(await matmul(dy, B)); // [N, r]
      const dA = await matmul(g, xs, { transA: true });
      const dB = scaled(await matmul(dy, u, { transA: true }));
      for (let i = 0; i < dA.data.length; i++) grads.A.data[i] += dA.data[i];
      for (let i = 0; i < dB.data.length; i++) grads.B.data[i] += dB.data[i];
      return tileBlocks(await matmul(g, A), n, x.shape);
    },
  };
}

export const method: AdapterMethod = {
  name: 'blocklora',
  summary: 'LoRA with the down-projection shared by n input blocks: ΔW·x = s·B·A_s·Σ_j x_j, r·in/n + out·r per layer (Block-LoRA)',
  changesBase: false,
  keys: KEYS,
  options: OPTIONS,
  async init(w, opts): Promise<LayerInit> {
    checkRank(w, opts.rank);
    const [out, inF] = w.shape;
    const { m } = blocks(opts, out, inF);
    return { tensors: { A: kaimingA(w.dtype, opts.rank, m, opts.seed ?? 0), B: tensor(w.dtype, [out, opts.rank]) } };
  },
  trainableParams(out, inF, rank, opts) {
    return rank * blocks(opts, out, inF).m + out * rank;
  },
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: { tensors: Readonly<Record<string, Tensor<FloatDType>>> }, opts: InitOptions) {
    const [out, inF] = w.shape;
    const { n } = blocks(opts, out, inF);
    const t = init.tensors as Readonly<Record<'A' | 'B', Tensor<F>>>;
    return blockTerm<F>(copyOf(t.A), copyOf(t.B), n, scalingOf(opts));
  },
  async delta<F extends FloatDType>(tensors: Readonly<Record<string, Tensor<F>>>, _shared: unknown, opts: InitOptions, shape: readonly [number, number]): Promise<LowRank<F>> {
    const [out, inF] = shape;
    const { n, m } = blocks(opts, out, inF);
    const [r, width] = tensors.A.shape;
    if (width !== m || tensors.B.shape[0] !== out || tensors.B.shape[1] !== r) {
      throw new LowrankError('E_SHAPE', `blocklora: A [${tensors.A.shape.join(', ')}] and B [${tensors.B.shape.join(', ')}] do not fit a ${out}×${inF} layer with num_blocks=${n} (A [r, ${m}], B [${out}, r])`);
    }
    return { left: tensors.B, right: tileBlocks(tensors.A, n, [r, inF]), scale: scalingOf(opts) };
  },
  format: {
    peftType: LOWRANK_TYPE,
    moduleKeys: KEYS,
    sharedKeys: {},
  },
};
