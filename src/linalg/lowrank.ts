/**
 * One low-rank value, scale·left·right (left [m, k], right [k, n]), and the few operations every
 * tool and method needs of it: the √σ split from singular triplets, its SVD through a QR core (the
 * m × n product is never formed), truncation, concatenation, transpose, the dense matrix. The
 * matrix helpers the same code needs (transpose, row norms) live here once.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { qr, svd } from './decompositions.js';
import { matmul } from './matmul.js';
import { diffSquares } from './check.js';

/** scale·left·right: left [m, k], right [k, n]. */
export interface LowRank<F extends FloatDType = FloatDType> {
  readonly left: Tensor<F>;
  readonly right: Tensor<F>;
  readonly scale: number;
}

/** Singular triplets u [m, k], s [k] (descending), vt [k, n]. */
export interface Triplets<F extends FloatDType = FloatDType> {
  readonly u: Tensor<F>;
  readonly s: Tensor<F>;
  readonly vt: Tensor<F>;
}

/** Xᵀ of a matrix (by 32×32 tiles, so neither side is walked with a long stride for long). */
export function transpose<F extends FloatDType>(x: Tensor<F>): Tensor<F> {
  const [m, n] = x.shape;
  const out = tensor(x.dtype, [n, m]);
  const [a, b] = [x.data, out.data];
  for (let i0 = 0; i0 < m; i0 += 32) {
    const i1 = Math.min(m, i0 + 32);
    for (let j0 = 0; j0 < n; j0 += 32) {
      const j1 = Math.min(n, j0 + 32);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) b[j * m + i] = a[i * n + j];
    }
  }
  return out;
}

/** ‖W_i‖₂ of every row of W [m, n]. */
export function rowNorms<F extends FloatDType>(w: Tensor<F>): Tensor<F> {
  const [m, n] = w.shape;
  const out = tensor(w.dtype, [m]);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += w.data[i * n + j] ** 2;
    out.data[i] = Math.sqrt(s);
  }
  return out;
}

/**
 * The √σ split of triplets: left = u·diag(√(s/scale)), right = diag(√(s/scale))·vt, so that
 * scale·left·right = u·diag(s)·vt (PiSSA's A and B, PEFT's pissa_init; mergekit's extraction with
 * scale 1).
 */
export function sqrtSplit<F extends FloatDType>(t: Triplets<F>, scale = 1): LowRank<F> {
  const [m, k] = t.u.shape;
  const n = t.vt.shape[1];
  const left = tensor(t.u.dtype, [m, k]);
  const right = tensor(t.vt.dtype, [k, n]);
  const roots = Array.from(t.s.data, (s) => Math.sqrt(s / scale));
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) left.data[i * k + j] = roots[j] * t.u.data[i * k + j];
  for (let j = 0; j < k; j++) for (let c = 0; c < n; c++) right.data[j * n + c] = roots[j] * t.vt.data[j * n + c];
  return { left, right, scale };
}

/**
 * The thin SVD of scale·left·right from the factors: with left = Q_L·R_L and rightᵀ = Q_R·R_R,
 * the product is Q_L·(R_L·R_Rᵀ)·Q_Rᵀ, so the SVD of the small core gives it exactly in
 * O((m + n)·k²). q = min(k, m, n) triplets, s descending and ≥ 0 (a negative scale flips u).
 */
export async function lowRankSvd<F extends FloatDType>(x: LowRank<F>): Promise<Triplets<F>> {
  const { left, right } = x;
  if (left.shape.length !== 2 || right.shape.length !== 2 || left.shape[1] !== right.shape[0]) {
    throw new LowrankError('E_SHAPE', `low-rank factors [${left.shape.join(', ')}] and [${right.shape.join(', ')}] do not multiply`);
  }
  const { q: ql, r: rl } = await qr(left);
  const { q: qr_, r: rr } = await qr(transpose(right));
  const core = await svd(await matmul(rl, rr, { transB: true }));
  const sign = x.scale < 0 ? -1 : 1;
  const u = await matmul(ql, core.u);
  if (sign < 0) for (let i = 0; i < u.data.length; i++) u.data[i] = -u.data[i];
  const s = tensor(core.s.dtype, core.s.shape, core.s.data.map((v) => v * Math.abs(x.scale)) as Tensor<F>['data']);
  return { u, s, vt: await matmul(core.vt, qr_, { transB: true }) };
}

/** The first k of a set of triplets. */
export function leading<F extends FloatDType>(t: Triplets<F>, k: number): Triplets<F> {
  const [m, q] = t.u.shape;
  const n = t.vt.shape[1];
  const u = tensor(t.u.dtype, [m, k]);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) u.data[i * k + j] = t.u.data[i * q + j];
  return { u, s: tensor(t.s.dtype, [k], t.s.data.slice(0, k) as Tensor<F>['data']), vt: tensor(t.vt.dtype, [k, n], t.vt.data.slice(0, k * n) as Tensor<F>['data']) };
}

/**
 * The smallest rank whose values keep `fraction` of the total energy (values descending), at least
 * 1: of Σσ² by default, or of a total known exactly (‖A‖²_F) when only part of the spectrum is.
 */
export function energyRank(s: ArrayLike<number>, fraction: number, total?: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new LowrankError('E_USAGE', `energy must be in (0, 1], got ${fraction}`);
  if (total === undefined) {
    total = 0;
    for (let i = 0; i < s.length; i++) total += s[i] * s[i];
  }
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc += s[i] * s[i];
    if (acc >= fraction * total * (1 - 1e-12)) return i + 1;
  }
  return Math.max(1, s.length);
}

/** √(Σ_{j≥k} σ_j² / Σ σ_j²): the relative Frobenius error of keeping k values (0 for all zero). */
export function tailError(s: ArrayLike<number>, k: number): number {
  let total = 0;
  let tail = 0;
  for (let j = 0; j < s.length; j++) {
    total += s[j] * s[j];
    if (j >= k) tail += s[j] * s[j];
  }
  return total === 0 ? 0 : Math.sqrt(tail / total);
}

/**
 * The best approximation of x at a fixed rank or at the smallest rank keeping an energy fraction
 * (capped at `rank` when both are given), √σ split with scale 1, and its relative error.
 */
export async function truncate<F extends FloatDType>(x: LowRank<F>, keep: { rank?: number; energy?: number }): Promise<{ value: LowRank<F>; rank: number; relError: number; s: Tensor<F> }> {
  const t = await lowRankSvd(x);
  const q = t.s.data.length;
  let k = keep.energy === undefined ? q : energyRank(t.s.data, keep.energy);
  if (keep.rank !== undefined) k = Math.min(k, keep.rank);
  k = Math.max(1, Math.min(k, q));
  return { value: sqrtSplit(leading(t, k)), rank: k, relError: tailError(t.s.data, k), s: t.s };
}

/** [a.scale·a.left | b.scale·b.left]·[a.right ; b.right] with scale 1: a + b at rank k_a + k_b. */
export function concat<F extends FloatDType>(a: LowRank<F>, b: LowRank<F>): LowRank<F> {
  const [m, ka] = a.left.shape;
  const kb = b.left.shape[1];
  const n = a.right.shape[1];
  if (b.left.shape[0] !== m || b.right.shape[1] !== n) throw new LowrankError('E_SHAPE', `cannot add a [${m}, ${n}] and a [${b.left.shape[0]}, ${b.right.shape[1]}] low-rank value`);
  const k = ka + kb;
  const left = tensor(a.left.dtype, [m, k]);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ka; j++) left.data[i * k + j] = a.scale * a.left.data[i * ka + j];
    for (let j = 0; j < kb; j++) left.data[i * k + ka + j] = b.scale * b.left.data[i * kb + j];
  }
  const right = tensor(a.right.dtype, [k, n]);
  right.data.set(a.right.data, 0);
  right.data.set(b.right.data, ka * n);
  return { left, right, scale: 1 };
}

/** (scale·L·R)ᵀ = scale·Rᵀ·Lᵀ. */
export function transposeLowRank<F extends FloatDType>(x: LowRank<F>): LowRank<F> {
  return { left: transpose(x.right), right: transpose(x.left), scale: x.scale };
}

/** The dense matrix scale·left·right. */
export async function toDense<F extends FloatDType>(x: LowRank<F>): Promise<Tensor<F>> {
  const d = await matmul(x.left, x.right);
  if (x.scale !== 1) for (let i = 0; i < d.data.length; i++) d.data[i] *= x.scale;
  return d;
}

/**
 * ‖W − X‖²_F for X a dense matrix or a low-rank value (its product formed once), summed in
 * float64: the error of factors as they were stored.
 */
export async function residualSquares<F extends FloatDType>(w: Tensor<F>, x: Tensor<F> | LowRank<F>): Promise<number> {
  const approx = 'data' in x ? x : await toDense(x);
  if (approx.shape.join() !== w.shape.join()) throw new LowrankError('E_SHAPE', `cannot compare a [${w.shape.join(', ')}] matrix with a [${approx.shape.join(', ')}] one`);
  return diffSquares(w.data, approx.data);
}
