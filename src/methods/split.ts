/**
 * The shared arithmetic of the SVD-derived LoRA inits: factors from singular triplets and the
 * residual weight.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmulAdd, matmulAddAs } from '../linalg/matmul.js';
import { encodeAs } from '../linalg/cast.js';
import { LowrankError } from '../core/errors.js';
import { rng } from '../core/rng.js';
import { sqrtSplit, transpose } from '../linalg/lowrank.js';
export { energyRank } from '../linalg/lowrank.js';
import type { LayerInit, Removed } from './types.js';

type F = Tensor<FloatDType>;

/**
 * From r triplets (u [out, r], s [r], vt [r, in]): A = diag(√(s/scaling))·vt, B = u·diag(√(s/scaling)),
 * so that scaling·B·A = u·diag(s)·vt (PiSSA's split, PEFT's pissa_init); residual W − scaling·B·A.
 */
export function splitInit(u: F, s: F, vt: F, scaling: number): LayerInit {
  const part = sqrtSplit({ u, s, vt }, scaling);
  return { tensors: { A: part.right, B: part.left }, removed: part };
}

/** W − removed, in W's dtype (a low-rank part in one pass over W: a gemm adding to a copy of it). */
export async function residual(w: F, removed: Removed): Promise<F> {
  if ('dense' in removed) return subtract(w, removed.dense);
  return (await matmulAdd(w as Tensor<'f64'>, removed.left as Tensor<'f64'>, removed.right as Tensor<'f64'>, { alpha: -removed.scale })) as F;
}

/**
 * W − removed rounded once into a storage dtype; a float32 W minus a low-rank part goes straight to
 * bf16/f16 on the backend (no float32 residual is made in full). With `transposed`, `stored` is Wᵀ
 * (GPT-2's Conv1D layout) and so is the result.
 */
export async function residualAs<D extends 'f64' | 'f32' | 'f16' | 'bf16'>(stored: F, removed: Removed, dtype: D, opts: { transposed?: boolean } = {}): Promise<Tensor<D>> {
  const t = opts.transposed === true;
  if ('dense' in removed) return encodeAs(subtract(stored, t ? transpose(removed.dense) : removed.dense), dtype);
  // (W − s·L·R)ᵀ = Wᵀ − s·Rᵀ·Lᵀ
  const [a, b] = (t ? [removed.right, removed.left] : [removed.left, removed.right]) as [Tensor<'f32'>, Tensor<'f32'>];
  const mm = { alpha: -removed.scale, transA: t, transB: t };
  if (stored.dtype === 'f32' && (dtype === 'bf16' || dtype === 'f16')) return (await matmulAddAs(stored as Tensor<'f32'>, a, b, dtype, mm)) as Tensor<D>;
  return encodeAs(await matmulAdd(stored as Tensor<'f32'>, a, b, mm), dtype);
}


/** A copy of a tensor (the trained copy of an init's factor, which the init keeps). */
export function copyOf<F extends FloatDType>(t: Tensor<FloatDType>): Tensor<F> {
  return tensor(t.dtype, t.shape, t.data.slice() as Tensor<FloatDType>['data']) as Tensor<F>;
}

/** The LoRA keys PEFT saves (without the base_model.model.<module>. prefix). */
export const LORA_KEYS = { A: 'lora_A.weight', B: 'lora_B.weight' } as const;

/** A LoRA pair's trainable parameters: r·(out + in). */
export function loraParams(out: number, inF: number, rank: number): number {
  return rank * (out + inF);
}

/** Checks 1 ≤ r ≤ min(out, in). */
export function checkRank(w: { shape: readonly number[] }, r: number): void {
  const [out, inF] = w.shape;
  const k = Math.min(out, inF);
  if (!Number.isInteger(r) || r < 1 || r > k) throw new LowrankError('E_USAGE', `rank must be an integer in 1..${k} for a ${out}×${inF} weight, got ${r}`);
}

/**
 * The elbow of a descending spectrum: the index (as a rank, ≥ 1) of the point farthest from the
 * straight line through the first and the last point of (i, σ_i), both axes scaled to [0, 1].
 */
export function elbowRank(s: ArrayLike<number>): number {
  const n = s.length;
  if (n <= 2) return 1;
  const [hi, lo] = [s[0], s[n - 1]];
  const span = hi - lo || 1;
  let best = 0;
  let rank = 1;
  for (let i = 0; i < n; i++) {
    const x = i / (n - 1);
    const y = (s[i] - lo) / span;
    const d = 1 - x - y; // distance (up to √2) below the chord from (0, 1) to (1, 0)
    if (d > best) {
      best = d;
      rank = i + 1;
    }
  }
  return rank;
}

/** u·diag(s)·vt as the part an init removes from W (u [out, r], s [r], vt [r, in]). */
export function svdPart(u: F, s: ArrayLike<number>, vt: F): Removed {
  const [out, r] = u.shape;
  const us = tensor(u.dtype, [out, r]);
  for (let i = 0; i < out; i++) for (let k = 0; k < r; k++) us.data[i * r + k] = u.data[i * r + k] * s[k];
  return { left: us, right: vt, scale: 1 };
}

/** Triplets from..to−1 of a thin SVD (u [out, k], s [k], vt [k, in]). */
export function triplets(f: { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> }, from: number, to: number): { u: Tensor<FloatDType>; s: Tensor<FloatDType>; vt: Tensor<FloatDType> } {
  const [out, k] = f.u.shape;
  const inF = f.vt.shape[1];
  const r = to - from;
  const u = tensor(f.u.dtype, [out, r]);
  for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) u.data[i * r + j] = f.u.data[i * k + from + j];
  return { u, s: tensor(f.s.dtype, [r], f.s.data.slice(from, to)), vt: tensor(f.vt.dtype, [r, inF], f.vt.data.slice(from * inF, to * inF)) };
}

/** W − P for two tensors of one shape, in W's dtype. */
export function subtract(w: Tensor<FloatDType>, p: Tensor<FloatDType>): Tensor<FloatDType> {
  const res = tensor(w.dtype, w.shape);
  for (let i = 0; i < res.data.length; i++) res.data[i] = w.data[i] - p.data[i];
  return res;
}

/** PEFT's default lora_A init, kaiming_uniform(a=√5) on [r, in]: U(−1/√in, 1/√in), seeded. */
export function kaimingA(dtype: FloatDType, r: number, inF: number, seed: number): Tensor<FloatDType> {
  const bound = 1 / Math.sqrt(inF);
  const a = tensor(dtype, [r, inF]);
  rng(seed).fillUniform(a.data, -bound, bound);
  return a;
}
