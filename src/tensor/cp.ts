/**
 * CP (CANDECOMP/PARAFAC) decomposition by alternating least squares, after TensorLy's `parafac`:
 * x ≈ Σ_r weights[r] · a₀[:, r] ∘ a₁[:, r] ∘ …, with factor k of shape I_k × R.
 *
 * Each ALS sweep updates the factors in mode order. For mode n, with V = ⊛_{k≠n} A_kᵀA_k (the
 * Hadamard product of the other Gram matrices) and the MTTKRP M = X_(n) · khatriRao(A_k, k ≠ n)
 * (the unfolding's columns run over the other modes in order, last fastest; the Khatri–Rao
 * product's first matrix is slowest, so the two orders agree), the update is A_n = M · V⁺.
 */
import { LowrankError } from '../core/errors.js';
import { transpose } from '../linalg/lowrank.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { rng as seededRng, type Rng } from '../core/rng.js';
import { eigh, svd } from '../linalg/decompositions.js';
import { eps } from '../linalg/check.js';
import { alloc, gemm, prod, rankArg, tensorArg } from './check.js';
import { unfoldData } from './unfold.js';
import { khatriRaoUnchecked } from './products.js';
import type { CPTensor } from './types.js';

/** Options of {@link cp}. */
export interface CpOptions {
  /**
   * Initial factors. `'svd'` (default, as TensorLy): factor n is the first R left singular vectors
   * of the mode-n unfolding (exact SVD, signs fixed so each column's largest-magnitude entry is
   * positive; factor 0 scaled by the singular values), and when R > I_n the R − I_n extra columns
   * are seeded standard normal values. `'random'`: seeded uniform values in [0, 1) (TensorLy's
   * `random_cp`).
   */
  init?: 'svd' | 'random';
  /**
   * Stop once the relative change of the fit, |fit_prev − fit| / max(|fit_prev|, 1e-30), is below
   * `tol` (default 1e-8), checked from the second sweep on. `tol: 0` runs exactly `maxIter` sweeps.
   */
  tol?: number;
  /** Most ALS sweeps (default 100); 0 returns the initialization. */
  maxIter?: number;
  /** Seed of the random values (the random init, and the extra SVD-init columns); default 0. */
  seed?: number;
  /**
   * Normalize each factor's columns to unit norm and carry the norms in `weights` (TensorLy's
   * `normalize_factors`); default false: the weights are all 1 and the scale lives in the factors.
   */
  normalize?: boolean;
}

/** The result of {@link cp}: the CP tensor, the fit after each sweep, and the sweeps run. */
export type CpResult<F extends FloatDType = FloatDType> = CPTensor<F> & {
  /** 1 − ‖x − [[weights; factors]]‖ / ‖x‖ after each sweep (see {@link cp} for its accuracy). */
  fitHistory: number[];
  /** ALS sweeps run (the length of fitHistory). */
  iterations: number;
};

/** Floor of the denominator of the relative fit change. */
const TINY = 1e-30;

/**
 * CP decomposition of rank `rank` by alternating least squares (TensorLy's `parafac` without its
 * regularization, masking and line-search extras).
 *
 * The R×R system V·A_nᵀ = Mᵀ is solved in float64 by a Cholesky factorization when V is well
 * conditioned (every pivot above √(R·ε)·max Vᵢᵢ, ε the dtype's machine epsilon); otherwise
 * (singular or ill-conditioned V, e.g. a rank above a dimension) through the pseudo-inverse from
 * V's symmetric eigendecomposition, dropping eigenvalues at or below R·ε·λ_max, so that the
 * minimum-norm least-squares update is taken and nothing becomes NaN.
 *
 * The fit is computed cheaply after each sweep, as TensorLy does: ‖x − [[A]]‖² = ‖x‖² + ‖[[A]]‖² −
 * 2⟨x, [[A]]⟩, ‖[[A]]‖² from the Hadamard product of all the Gram matrices and ⟨x, [[A]]⟩ from the
 * last mode's MTTKRP. The cancellation limits its accuracy to about √ε relative to ‖x‖ (≈1e-8 in
 * f64, ≈3e-4 in f32), so a `tol` below the change that noise makes (≈1e-8 f64, ≈1e-4 f32) runs
 * `maxIter` sweeps; for an exact reconstruction error use {@link cpToTensor}. The stopping rule is
 * the relative change of the fit, a relative variant of TensorLy's `cvg_criterion='abs_rec_error'`.
 *
 * The unfoldings of x are made once, before the sweeps (modes 0 and N − 1 need no copy: x's data is
 * the first, and the transpose of the last); each sweep does one Khatri–Rao product and one matrix
 * product (the MTTKRP) per mode, plus R×R work and I_n×R² Gram updates.
 *
 * @example
 * const { weights, factors, fitHistory } = await tensor.cp(x, 5); // x: [I, J, K] → factors [I,5], [J,5], [K,5]
 * const approx = await tensor.cpToTensor({ kind: 'cp', weights, factors, shape: x.shape });
 */
export async function cp<F extends FloatDType>(x: Tensor<F>, rank: number, opts: CpOptions = {}): Promise<CpResult<F>> {
  const routine = 'cp';
  tensorArg(routine, 'x', x, 2);
  const r = rankArg(routine, 'rank', rank);
  const init = opts.init ?? 'svd';
  if (init !== 'svd' && init !== 'random') throw new LowrankError('E_USAGE', `${routine}: init must be 'svd' or 'random', got ${String(init)}`);
  const tol = opts.tol ?? 1e-8;
  if (typeof tol !== 'number' || !(tol >= 0)) throw new LowrankError('E_USAGE', `${routine}: tol must be a number ≥ 0, got ${String(tol)}`);
  const maxIter = opts.maxIter ?? 100;
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new LowrankError('E_USAGE', `${routine}: maxIter must be an integer ≥ 0, got ${String(maxIter)}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LowrankError('E_USAGE', `${routine}: seed must be an integer, got ${String(seed)}`);
  const normalize = opts.normalize ?? false;

  const { dtype, shape } = x;
  const order = shape.length;
  const total = x.data.length;
  // Unfoldings, once. Mode 0's is x's own data, and the last mode's is x's data viewed as
  // (Π others) × I_last, transposed in the product; the modes between are copied.
  const unf = shape.map((_, n) => (n === 0 || n === order - 1 ? x.data : unfoldData(x, n)));
  const random = seededRng(seed);
  const factors = init === 'svd' ? await svdInit(x, unf, r, random) : shape.map((d) => random.fillUniform(alloc(dtype, d * r)));
  const weights = alloc(dtype, r);
  weights.fill(1);
  if (normalize) {
    for (const [k, a] of factors.entries()) {
      const norms = normalizeColumns(a, shape[k], r);
      for (let c = 0; c < r; c++) weights[c] *= norms[c];
    }
  }
  const grams = factors.map((a, k) => gram(a, shape[k], r));
  let normX2 = 0;
  for (let i = 0; i < total; i++) normX2 += x.data[i] * x.data[i];
  const normX = Math.sqrt(normX2);

  const fitHistory: number[] = [];
  const pinvCut = r * eps(dtype);
  const cholCut = Math.sqrt(pinvCut);
  for (let it = 0; it < maxIter; it++) {
    let v: Float64Array = new Float64Array(0);
    let m = alloc(dtype, 0);
    for (let n = 0; n < order; n++) {
      const rows = shape[n];
      const cols = total / rows;
      v = hadamardExcept(grams, n, r);
      const others = factors.flatMap((a, k) => (k === n ? [] : [tensor(dtype, [shape[k], r], a)]));
      const kr = khatriRaoUnchecked(others);
      const xn = n === order - 1 ? { rows: cols, cols: rows, data: unf[n] } : { rows, cols, data: unf[n] };
      m = (await gemm(dtype, xn, { rows: cols, cols: r, data: kr.data }, n === order - 1)).data;
      const b = await solveGram(v, m, rows, r, cholCut, pinvCut);
      const a = factors[n];
      if (normalize) {
        const norms = normalizeColumns(b, rows, r);
        for (let c = 0; c < r; c++) weights[c] = norms[c];
      }
      a.set(b);
      grams[n] = gram(a, rows, r);
    }
    // Fit from the last mode: v is the Hadamard of the other Grams, m its MTTKRP.
    const last = factors[order - 1];
    const gLast = grams[order - 1];
    let modelNorm2 = 0;
    for (let p = 0; p < r; p++) for (let q = 0; q < r; q++) modelNorm2 += weights[p] * weights[q] * v[p * r + q] * gLast[p * r + q];
    let iprod = 0;
    for (let i = 0; i < m.length; i++) iprod += weights[i % r] * m[i] * last[i];
    const fit = 1 - Math.sqrt(Math.abs(normX2 + modelNorm2 - 2 * iprod)) / (normX > 0 ? normX : 1);
    if (!Number.isFinite(fit)) throw new LowrankError('E_NUMERIC', `${routine}: sweep ${it + 1} produced non-finite factors`);
    fitHistory.push(fit);
    if (it >= 1) {
      const prev = fitHistory[it - 1];
      if (Math.abs(prev - fit) / Math.max(Math.abs(prev), TINY) < tol) break;
    }
  }
  return {
    kind: 'cp',
    weights: tensor(dtype, [r], weights),
    factors: factors.map((a, k) => tensor(dtype, [shape[k], r], a)),
    shape: [...shape],
    fitHistory,
    iterations: fitHistory.length,
  };
}

/**
 * The full tensor of a CP tensor: Σ_r weights[r] · a₀[:, r] ∘ a₁[:, r] ∘ …, computed as the mode-0
 * unfolding A₀·diag(weights)·khatriRao(A₁, …)ᵀ (one matrix product) folded back (a no-op for mode 0).
 *
 * @example
 * const y = await tensor.cpToTensor(await tensor.cp(x, 8)); // y approximates x
 */
export async function cpToTensor<F extends FloatDType>(t: CPTensor<F>): Promise<Tensor<F>> {
  const routine = 'cpToTensor';
  const { factors, weights, shape } = cpArg(routine, t);
  const { dtype } = weights;
  const r = weights.data.length;
  const a0 = alloc(dtype, shape[0] * r);
  for (let i = 0; i < a0.length; i++) a0[i] = factors[0].data[i] * weights.data[i % r];
  if (factors.length === 1) {
    const out = alloc(dtype, shape[0]);
    for (let i = 0; i < shape[0]; i++) {
      let s = 0;
      for (let c = 0; c < r; c++) s += a0[i * r + c];
      out[i] = s;
    }
    return tensor(dtype, shape, out);
  }
  const kr = khatriRaoUnchecked(factors.slice(1));
  const cols = prod(shape.slice(1));
  const res = await gemm(dtype, { rows: shape[0], cols: r, data: a0 }, { rows: cols, cols: r, data: kr.data }, false, true);
  return tensor(dtype, shape, res.data);
}

/**
 * The number of stored parameters of a CP tensor: R·Σ I_k for the factors, plus R for the weights
 * when any weight differs from 1 (normalized factors); all-ones weights are implied, as in TensorLy's
 * parameter count, and not counted.
 *
 * @example
 * tensor.cpParameters(await tensor.cp(x, 8)); // 8 · (I + J + K) for x: [I, J, K]
 */
export function cpParameters(t: CPTensor): number {
  const { factors, weights } = cpArg('cpParameters', t);
  const r = weights.data.length;
  let n = 0;
  for (const f of factors) n += f.shape[0] * r;
  return weights.data.some((w) => w !== 1) ? n + r : n;
}

/** Checks a CP tensor's parts against each other (once, at entry). */
function cpArg<F extends FloatDType>(routine: string, t: CPTensor<F>): CPTensor<F> {
  if (t === null || typeof t !== 'object' || t.kind !== 'cp') throw new LowrankError('E_USAGE', `${routine}: expected a CP tensor (kind 'cp')`);
  const { factors, weights, shape } = t;
  if (!Array.isArray(factors) || factors.length === 0) throw new LowrankError('E_SHAPE', `${routine}: a CP tensor needs at least one factor`);
  tensorArg(routine, 'weights', weights);
  if (weights.shape.length !== 1) throw new LowrankError('E_SHAPE', `${routine}: weights must be 1-D, got [${weights.shape}]`, { shape: weights.shape });
  const r = weights.shape[0];
  if (shape.length !== factors.length) throw new LowrankError('E_SHAPE', `${routine}: shape [${shape}] has ${shape.length} dimensions but there are ${factors.length} factors`, { shape });
  for (const [k, f] of factors.entries()) {
    tensorArg(routine, `factors[${k}]`, f, 2);
    if (f.dtype !== weights.dtype) throw new LowrankError('E_USAGE', `${routine}: factors[${k}] is ${f.dtype} and weights ${weights.dtype}`);
    if (f.shape.length !== 2 || f.shape[0] !== shape[k] || f.shape[1] !== r) {
      throw new LowrankError('E_SHAPE', `${routine}: factors[${k}] is [${f.shape}], expected [${shape[k]}, ${r}]`, { shape: f.shape });
    }
  }
  return t;
}

/**
 * The SVD initialization (see {@link CpOptions.init}); unf[n] is the mode-n unfolding, except the
 * last mode's, which is its transpose.
 */
async function svdInit<F extends FloatDType>(x: Tensor<F>, unf: readonly Storage<F>[], r: number, random: Rng): Promise<Storage<F>[]> {
  const { dtype, shape } = x;
  const total = x.data.length;
  const factors: Storage<F>[] = [];
  for (const [n, rows] of shape.entries()) {
    const cols = total / rows;
    const k = Math.min(r, rows);
    const mat = tensor(dtype, [rows, cols], n === shape.length - 1 ? transpose(tensor(dtype, [cols, rows], unf[n])).data : unf[n]);
    // Thin SVD when it gives k vectors; the full one when k > cols (then k ≤ rows ≤ … is small).
    const { u, s } = await svd(mat, { full: k > Math.min(rows, cols) });
    const uc = u.shape[1];
    const a = alloc(dtype, rows * r);
    for (let c = 0; c < k; c++) {
      let big = 0;
      for (let i = 1; i < rows; i++) if (Math.abs(u.data[i * uc + c]) > Math.abs(u.data[big * uc + c])) big = i;
      const sign = u.data[big * uc + c] < 0 ? -1 : 1;
      const scale = n === 0 && c < s.data.length ? sign * s.data[c] : sign;
      for (let i = 0; i < rows; i++) a[i * r + c] = scale * u.data[i * uc + c];
    }
    for (let i = 0; i < rows; i++) for (let c = k; c < r; c++) a[i * r + c] = random.normal();
    factors.push(a);
  }
  return factors;
}

/** AᵀA (R×R, float64) of an I×R factor. */
function gram(a: ArrayLike<number>, rows: number, r: number): Float64Array {
  const g = new Float64Array(r * r);
  for (let i = 0; i < rows; i++) {
    const o = i * r;
    for (let p = 0; p < r; p++) {
      const ap = a[o + p];
      if (ap === 0) continue;
      for (let q = p; q < r; q++) g[p * r + q] += ap * a[o + q];
    }
  }
  for (let p = 0; p < r; p++) for (let q = 0; q < p; q++) g[p * r + q] = g[q * r + p];
  return g;
}

/** The Hadamard product of the Gram matrices of every mode but n. */
function hadamardExcept(grams: readonly Float64Array[], n: number, r: number): Float64Array {
  const v = new Float64Array(r * r).fill(1);
  for (const [k, g] of grams.entries()) {
    if (k === n) continue;
    for (let i = 0; i < v.length; i++) v[i] *= g[i];
  }
  return v;
}

/**
 * B = M·V⁺ (I×R, float64) for the symmetric positive semi-definite R×R matrix V: by Cholesky when
 * every pivot exceeds cholCut·max Vᵢᵢ, else by V's eigendecomposition with eigenvalues at or below
 * pinvCut·λ_max dropped.
 */
async function solveGram(v: Float64Array, m: ArrayLike<number>, rows: number, r: number, cholCut: number, pinvCut: number): Promise<Float64Array> {
  const b = new Float64Array(rows * r);
  const l = cholesky(v, r, cholCut);
  if (l !== undefined) {
    const y = new Float64Array(r);
    for (let i = 0; i < rows; i++) {
      const o = i * r;
      // L·y = mᵢ, then Lᵀ·bᵢ = y.
      for (let p = 0; p < r; p++) {
        let s = m[o + p];
        for (let q = 0; q < p; q++) s -= l[p * r + q] * y[q];
        y[p] = s / l[p * r + p];
      }
      for (let p = r - 1; p >= 0; p--) {
        let s = y[p];
        for (let q = p + 1; q < r; q++) s -= l[q * r + p] * b[o + q];
        b[o + p] = s / l[p * r + p];
      }
    }
    return b;
  }
  const pinv = await pseudoInverse(v, r, pinvCut);
  for (let i = 0; i < rows; i++) {
    const o = i * r;
    for (let p = 0; p < r; p++) {
      const mp = m[o + p];
      if (mp === 0) continue;
      for (let q = 0; q < r; q++) b[o + q] += mp * pinv[p * r + q];
    }
  }
  return b;
}

/** The lower Cholesky factor of v, or undefined when a pivot is at or below cut·max vᵢᵢ. */
function cholesky(v: Float64Array, r: number, cut: number): Float64Array | undefined {
  let maxDiag = 0;
  for (let p = 0; p < r; p++) maxDiag = Math.max(maxDiag, v[p * r + p]);
  const floor = cut * maxDiag;
  const l = new Float64Array(r * r);
  for (let j = 0; j < r; j++) {
    let d = v[j * r + j];
    for (let k = 0; k < j; k++) d -= l[j * r + k] * l[j * r + k];
    if (!(d > floor)) return undefined;
    const ljj = Math.sqrt(d);
    l[j * r + j] = ljj;
    for (let i = j + 1; i < r; i++) {
      let s = v[i * r + j];
      for (let k = 0; k < j; k++) s -= l[i * r + k] * l[j * r + k];
      l[i * r + j] = s / ljj;
    }
  }
  return l;
}

/** V⁺ from V's eigendecomposition (float64), eigenvalues at or below cut·λ_max dropped. */
async function pseudoInverse(v: Float64Array, r: number, cut: number): Promise<Float64Array> {
  const pinv = new Float64Array(r * r);
  const { values, vectors } = await eigh(tensor('f64', [r, r], v.slice()));
  const lmax = values.data[r - 1];
  if (!(lmax > 0)) return pinv;
  const floor = cut * lmax;
  for (let j = 0; j < r; j++) {
    const lam = values.data[j];
    if (!(lam > floor)) continue;
    for (let p = 0; p < r; p++) {
      const qp = vectors.data[p * r + j] / lam;
      if (qp === 0) continue;
      for (let q = 0; q < r; q++) pinv[p * r + q] += qp * vectors.data[q * r + j];
    }
  }
  return pinv;
}

/** Divides each column of an I×R matrix by its norm (zero columns are left) and returns the norms. */
function normalizeColumns(a: Float32Array | Float64Array, rows: number, r: number): Float64Array {
  const norms = new Float64Array(r);
  for (let i = 0; i < rows * r; i++) norms[i % r] += a[i] * a[i];
  for (let c = 0; c < r; c++) norms[c] = Math.sqrt(norms[c]);
  for (let i = 0; i < rows * r; i++) {
    const nc = norms[i % r];
    if (nc > 0) a[i] /= nc;
  }
  return norms;
}
