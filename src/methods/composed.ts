/**
 * The training term of every method whose update is a LoRA pair built from other parameters —
 * shared random bases and coefficients (NOLA), scaled shared projections (VeRA), a frozen SVD
 * basis around a small trained core (LoRA-XS), one projected vector (Uni-LoRA), a vector bank
 * (VB-LoRA), summed random bases (RandLoRA): ΔW = s·B·A with (A [k, in], B [out, k]) = factors(θ).
 *   forward   y += s·(x·Aᵀ)·Bᵀ
 *   backward  g = s·dy·B;  dA = gᵀ·x;  dB = s·dyᵀ·(x·Aᵀ);  dx = g·A;  then θ's gradients from dA, dB
 * The method gives `factors` (A and B from the current parameters) and `pullback` (adds ∂L/∂θ from
 * dA and dB into its gradient buffers; only the one it needs when a factor is frozen); A and B are
 * built once per forward and once per backward.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import type { LowRank } from '../linalg/lowrank.js';
import type { TrainTerm } from './types.js';

/** A LoRA pair: A [k, in], B [out, k]. */
export interface Pair<F extends FloatDType> {
  readonly A: Tensor<F>;
  readonly B: Tensor<F>;
}

interface CompositionBase<F extends FloatDType> {
  /** The per-layer trained tensors by role, and their gradient buffers (shared ones are the method's). */
  readonly params: Readonly<Record<string, Tensor<F>>>;
  readonly grads: Readonly<Record<string, Tensor<F>>>;
  readonly scaling: number;
  factors(): Pair<F> | Promise<Pair<F>>;
}

/**
 * What a method gives: its factors and how their gradients reach its parameters. A factor that no
 * trained parameter moves (`frozen`: VeRA's, LoRA-XS's and TinyLoRA's A) gets no gradient, so its
 * product with the layer input is not computed.
 */
export type Composition<F extends FloatDType> = CompositionBase<F> &
  (
    | { readonly frozen?: undefined; pullback(dA: Tensor<F>, dB: Tensor<F>, pair: Pair<F>): void | Promise<void> }
    | { readonly frozen: 'A'; pullback(dB: Tensor<F>, pair: Pair<F>): void | Promise<void> }
    | { readonly frozen: 'B'; pullback(dA: Tensor<F>, pair: Pair<F>): void | Promise<void> }
  );

export function composedTerm<F extends FloatDType>(c: Composition<F>): TrainTerm<F> {
  const s = c.scaling;
  const scaled = (t: Tensor<F>): Tensor<F> => {
    if (s !== 1) for (let i = 0; i < t.data.length; i++) t.data[i] *= s;
    return t;
  };
  return {
    params: c.params,
    grads: c.grads,
    async forward(x) {
      const { A, B } = await c.factors();
      return scaled(await matmul(await matmul(x, A, { transB: true }), B, { transB: true }));
    },
    async backward(x, dy) {
      const pair = await c.factors();
      const g = scaled(await matmul(dy, pair.B)); // s·dy·B [N, k]
      const dA = async (): Promise<Tensor<F>> => matmul(g, x, { transA: true });
      const dB = async (): Promise<Tensor<F>> => scaled(await matmul(dy, await matmul(x, pair.A, { transB: true }), { transA: true }));
      if (c.frozen === 'A') await c.pullback(await dB(), pair);
      else if (c.frozen === 'B') await c.pullback(await dA(), pair);
      else await c.pullback(await dA(), await dB(), pair);
      return matmul(g, pair.A);
    },
  };
}

/** A pair's ΔW as a low-rank value s·B·A. */
export function pairDelta<F extends FloatDType>(pair: Pair<F>, scaling: number): LowRank<F> {
  return { left: pair.B, right: pair.A, scale: scaling };
}
