/**
 * Tucker decompositions (TensorLy's `tucker` and `partial_tucker`): x ≈ core ×ₙ U₀ ×₁ U₁ …, each
 * factor Uₙ (Iₙ × Rₙ) with orthonormal columns. HOSVD takes each factor from an exact SVD of the
 * mode-n unfolding (never its Gram matrix, so small singular values keep their accuracy); HOOI
 * (higher-order orthogonal iteration, the default) starts there and alternates over the modes,
 * each step the best Uₙ for the others fixed. Partial Tucker decomposes some modes only (FLoRA's
 * core for a convolution kernel [out, in, kh, kw] over modes [0, 1]).
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { svd } from '../linalg/decompositions.js';
import { modeProductUnchecked } from './products.js';
import { foldData, unfoldData } from './unfold.js';
import { alloc, frobenius, modeArg, prod, tensorArg } from './check.js';
import type { TuckerTensor } from './types.js';

/**
 * The Tucker ranks: a list (Rₙ for each decomposed mode, in order, each an integer in 1 … Iₙ), or
 * a number in (0, 1], the fraction of x's element count the decomposition may take (see
 * {@link tuckerRanks}).
 */
export type TuckerRanks = readonly number[] | number;

/** Options of {@link tucker}. */
export interface TuckerOptions {
  /**
   * 'hooi' (default, as TensorLy): HOSVD, then alternating sweeps until converged; 'hosvd': the
   * truncated higher-order SVD alone (no iterations).
   */
  method?: 'hosvd' | 'hooi';
  /**
   * HOOI stops when a sweep grows ‖core‖ by less than `tol` relative (default 1e-8; the error
   * √(‖x‖² − ‖core‖²) falls only as ‖core‖ grows, so this is where the error stalls). A sweep
   * that does not grow ‖core‖ at all (HOOI never shrinks it in exact arithmetic: that is
   * rounding, about 1e-7 in f32) is discarded and ends the iteration, so a tol below the dtype's
   * precision does not run to maxIter. On tensors with no low-rank structure HOOI creeps (a
   * Gaussian [50, 40, 30] at ranks [10, 8, 6]: ~300 sweeps to reach 1e-8, ~45 to 1e-4, whose
   * error differs in the fourth digit); a larger tol stops it sooner.
   */
  tol?: number;
  /** The most HOOI sweeps (default 100; 0 returns the HOSVD). */
  maxIter?: number;
  /** How HOOI starts: 'svd', the HOSVD factors (the only choice, and the default). */
  init?: 'svd';
}

/** Options of {@link partialTucker}. */
export interface PartialTuckerOptions extends TuckerOptions {
  /** The modes to decompose (negative counts from the end; default all); ranks[k] is for modes[k]. */
  modes?: readonly number[];
}

/**
 * A Tucker decomposition with how it was computed: the {@link TuckerTensor} plus
 * `iterations` (HOOI sweeps run; 0 for HOSVD) and `errors`.
 */
export interface TuckerResult<F extends FloatDType = FloatDType> extends TuckerTensor<F> {
  /** The HOOI sweeps run, the discarded last one included (0 for HOSVD). */
  readonly iterations: number;
  /**
   * The relative error ‖x − x̂‖/‖x‖ of the HOSVD (first entry) and of each accepted HOOI sweep,
   * non-increasing. Estimated as √(‖x‖² − ‖core‖²)/‖x‖ (exact for orthonormal factors, in exact
   * arithmetic): the subtraction leaves an absolute uncertainty of about √eps (3e-4 in f32, 1e-8 in
   * f64), so compare tiny errors through {@link tuckerToTensor}. 0 when x is all zeros.
   */
  readonly errors: readonly number[];
}

/**
 * Tucker decomposition of x over all its modes: x ≈ core ×₀ U₀ ×₁ U₁ … ×_{N−1} U_{N−1}, with
 * core R₀ × … × R_{N−1} and Uₙ Iₙ × Rₙ with orthonormal columns. Each factor's columns have their
 * largest-magnitude entry positive (TensorLy's svd_flip), so results reproduce. Works in x's dtype.
 *
 * `ranks` is a list (one per mode, each in 1 … Iₙ) or a fraction in (0, 1] of x's element count
 * ({@link tuckerRanks}); a single integer rank for all modes is not accepted (pass a list), since
 * 1 already means the fraction 1.
 *
 * @example
 * const t = await tensor.tucker(x, [8, 8, 4]); // HOOI from the HOSVD
 * const y = await tensor.tuckerToTensor(t);
 * console.log(t.errors.at(-1), t.iterations, tensor.tuckerParameters(t));
 */
export async function tucker<F extends FloatDType>(x: Tensor<F>, ranks: TuckerRanks, opts: TuckerOptions = {}): Promise<TuckerResult<F>> {
  const routine = 'tucker';
  tensorArg(routine, 'x', x);
  const modes = x.shape.map((_, k) => k);
  return decompose(routine, x, modes, ranksArg(routine, x.shape, modes, ranks), optionsArg(routine, opts));
}

/**
 * Tucker decomposition over the given modes only: x ≈ core ×_{modes[0]} U₀ ×_{modes[1]} U₁ …, the
 * core keeping x's size in every other dimension. `ranks` has one entry per listed mode, or is a
 * fraction in (0, 1] of x's element count ({@link tuckerRanks}). Otherwise as {@link tucker}; the
 * result's `modes` lists the decomposed modes in the order given.
 *
 * @example
 * // A conv kernel [out, in, kh, kw]: Tucker-2 over the channels (FLoRA): core [r₀, r₁, kh, kw]
 * const t = await tensor.partialTucker(kernel, [16, 8], { modes: [0, 1] });
 */
export async function partialTucker<F extends FloatDType>(x: Tensor<F>, ranks: TuckerRanks, opts: PartialTuckerOptions = {}): Promise<TuckerResult<F>> {
  const routine = 'partialTucker';
  tensorArg(routine, 'x', x);
  const modes = modesArg(routine, opts.modes, x.shape.length);
  return decompose(routine, x, modes, ranksArg(routine, x.shape, modes, ranks), optionsArg(routine, opts));
}

/**
 * The Tucker ranks a fraction in (0, 1] of a tensor's element count stands for: Rₙ = max(1, ⌊c·Iₙ⌋)
 * over the decomposed modes, for the largest common fraction c ≤ 1 of the dimensions whose
 * parameters (numel(core) + Σ Iₙ·Rₙ, the core keeping the other dimensions whole) are at most
 * fraction·numel(x). (TensorLy solves the same balance for a real c and rounds, so its ranks may
 * go a little over the budget; these never do.) Throws E_USAGE when even all ranks 1 go over.
 *
 * @example
 * tensor.tuckerRanks([64, 64, 3, 3], 0.25, [0, 1]); // ranks for modes 0 and 1
 */
export function tuckerRanks(shape: readonly number[], fraction: number, modes?: readonly number[]): number[] {
  const routine = 'tuckerRanks';
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new LowrankError('E_SHAPE', `${routine}: invalid shape [${shape}]`, { shape });
  return fractionRanks(routine, shape, modesArg(routine, modes, shape.length), fraction);
}

/**
 * The full tensor of a Tucker decomposition: core ×_{modes[k]} factors[k] for every k.
 *
 * @example
 * const y = await tensor.tuckerToTensor(t); // shape t.shape
 */
export async function tuckerToTensor<F extends FloatDType>(t: TuckerTensor<F>): Promise<Tensor<F>> {
  tuckerArg('tuckerToTensor', t);
  // Growing products last: the smallest growth ratio Iₙ/Rₙ first keeps intermediates small.
  const order = t.factors.map((_, k) => k).sort((p, q) => t.factors[p].shape[0] / t.factors[p].shape[1] - t.factors[q].shape[0] / t.factors[q].shape[1]);
  let y = t.core;
  for (const k of order) y = await modeProductUnchecked(y, t.factors[k], t.modes[k], false);
  return y;
}

/**
 * The number of stored values of a Tucker decomposition: numel(core) + Σ numel(factors[k]).
 *
 * @example
 * const ratio = tensor.tuckerParameters(t) / x.data.length;
 */
export function tuckerParameters(t: TuckerTensor): number {
  let n = t.core.data.length;
  for (const f of t.factors) n += f.data.length;
  return n;
}

interface Settings {
  method: 'hosvd' | 'hooi';
  tol: number;
  maxIter: number;
}

/** HOSVD, then HOOI sweeps when asked; x, modes and ranks already checked. */
async function decompose<F extends FloatDType>(routine: string, x: Tensor<F>, modes: readonly number[], ranks: readonly number[], s: Settings): Promise<TuckerResult<F>> {
  const normX = frobenius(x.data);
  const relError = (coreNorm: number): number => (normX === 0 ? 0 : Math.sqrt(Math.max(0, normX * normX - coreNorm * coreNorm)) / normX);

  // HOSVD: factor k from the SVD of the mode-n unfolding of x itself.
  let factors: Tensor<F>[] = [];
  for (const [k, n] of modes.entries()) {
    const cols = x.data.length / x.shape[n];
    const a = tensor(x.dtype, [x.shape[n], cols], n === 0 ? x.data : unfoldData(x, n));
    factors.push((await leading(routine, a, ranks[k], false)).u);
  }
  let core = await project(x, factors, modes, -1);
  let coreNorm = frobenius(core.data);
  const errors = [relError(coreNorm)];
  let iterations = 0;

  // One mode has nothing to alternate with: its HOSVD factor is already the optimum.
  if (s.method === 'hooi' && modes.length > 1) {
    while (iterations < s.maxIter) {
      iterations++;
      const next = factors.slice();
      let nextCore = core;
      let nextNorm = coreNorm;
      for (const [k, n] of modes.entries()) {
        // Y = x ×_{j≠k} Uⱼᵀ; Uₖ = the top Rₖ left singular vectors of Y's mode-n unfolding.
        const y = await project(x, next, modes, k);
        const a = tensor(x.dtype, [y.shape[n], y.data.length / y.shape[n]], n === 0 ? y.data : unfoldData(y, n));
        const last = k === modes.length - 1;
        const top = await leading(routine, a, ranks[k], last);
        next[k] = top.u;
        if (last && top.coreUnfolded !== undefined) {
          // The core Y ×ₙ Uₙᵀ has the mode-n unfolding Uₙᵀ·Y₍ₙ₎ = Σ·Vᵀ (rows signed as Uₙ's columns).
          const shape = y.shape.map((d, j) => (j === n ? ranks[k] : d));
          nextCore = tensor(x.dtype, shape, n === 0 ? top.coreUnfolded : foldData(x.dtype, top.coreUnfolded, n, shape));
          nextNorm = top.norm;
        }
      }
      // HOOI never shrinks ‖core‖ in exact arithmetic: a sweep that does not grow it is rounding.
      if (!(nextNorm > coreNorm)) break;
      const change = (nextNorm - coreNorm) / nextNorm;
      factors = next;
      core = nextCore;
      coreNorm = nextNorm;
      errors.push(relError(coreNorm));
      if (change <= s.tol) break;
    }
  }
  return { kind: 'tucker', core, factors, modes: [...modes], shape: [...x.shape], iterations, errors };
}

/**
 * x ×ₙ Uₙᵀ over the given modes, skipping factor `skip` (−1: none). Shrinking products first (the
 * smallest ratio Rₙ/Iₙ first), as in multiModeProduct, without re-checking x at each step.
 */
async function project<F extends FloatDType>(x: Tensor<F>, factors: readonly Tensor<F>[], modes: readonly number[], skip: number): Promise<Tensor<F>> {
  const ratio = (k: number): number => factors[k].shape[1] / factors[k].shape[0];
  const order = modes.map((_, k) => k).filter((k) => k !== skip).sort((p, q) => ratio(p) - ratio(q));
  let y = x;
  for (const k of order) y = await modeProductUnchecked(y, factors[k], modes[k], true);
  return y;
}

/**
 * The top r left singular vectors of a (rows × cols, r ≤ rows), each column signed so that its
 * largest-magnitude entry is positive. r beyond min(rows, cols) takes the columns of a full SVD
 * (the complement, with zero singular values). With `withCore`, also the r × cols matrix Uᵀ·a
 * (= Σ·Vᵀ with the same signs) and its norm.
 */
async function leading<F extends FloatDType>(
  routine: string,
  a: Tensor<F>,
  r: number,
  withCore: boolean,
): Promise<{ u: Tensor<F>; coreUnfolded?: Storage<F>; norm: number }> {
  const [rows, cols] = a.shape;
  const full = r > Math.min(rows, cols);
  const res = await svd(a, { full });
  const uc = res.u.shape[1];
  const k = res.s.data.length;
  if (uc < r) throw new LowrankError('E_INTERNAL', `${routine}: the SVD gave ${uc} singular vectors for rank ${r}`);
  const u = alloc(a.dtype, rows * r);
  const signs = new Array<number>(r);
  for (let j = 0; j < r; j++) {
    // svd_flip: the first entry of largest magnitude becomes positive.
    let best = 0;
    let at = 0;
    for (let i = 0; i < rows; i++) {
      const v = Math.abs(res.u.data[i * uc + j]);
      if (v > best) {
        best = v;
        at = i;
      }
    }
    signs[j] = res.u.data[at * uc + j] < 0 ? -1 : 1;
    for (let i = 0; i < rows; i++) u[i * r + j] = signs[j] * res.u.data[i * uc + j];
  }
  const out: { u: Tensor<F>; coreUnfolded?: Storage<F>; norm: number } = { u: tensor(a.dtype, [rows, r], u), norm: 0 };
  if (withCore) {
    const c = alloc(a.dtype, r * cols);
    let ss = 0;
    for (let j = 0; j < Math.min(r, k); j++) {
      const sj = res.s.data[j];
      ss += sj * sj;
      const f = signs[j] * sj;
      for (let i = 0; i < cols; i++) c[j * cols + i] = f * res.vt.data[j * cols + i];
    }
    out.coreUnfolded = c;
    out.norm = Math.sqrt(ss);
  }
  return out;
}

function optionsArg(routine: string, opts: TuckerOptions): Settings {
  const method = opts.method ?? 'hooi';
  if (method !== 'hosvd' && method !== 'hooi') throw new LowrankError('E_USAGE', `${routine}: method must be 'hosvd' or 'hooi', got ${String(method)}`);
  const tol = opts.tol ?? 1e-8;
  if (typeof tol !== 'number' || !(tol >= 0) || !Number.isFinite(tol)) throw new LowrankError('E_USAGE', `${routine}: tol must be a finite number ≥ 0, got ${String(tol)}`);
  const maxIter = opts.maxIter ?? 100;
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new LowrankError('E_USAGE', `${routine}: maxIter must be a non-negative integer, got ${String(maxIter)}`);
  const init = opts.init ?? 'svd';
  if (init !== 'svd') throw new LowrankError('E_USAGE', `${routine}: init must be 'svd' (the HOSVD), got ${String(init)}`);
  return { method, tol, maxIter };
}

/** The decomposed modes, non-negative and distinct (default all). */
function modesArg(routine: string, modes: readonly number[] | undefined, order: number): number[] {
  if (modes === undefined) return Array.from({ length: order }, (_, k) => k);
  if (!Array.isArray(modes) || modes.length === 0) throw new LowrankError('E_USAGE', `${routine}: modes must be a non-empty list of dimensions`);
  const out = modes.map((m) => modeArg(routine, m, order));
  if (new Set(out).size !== out.length) throw new LowrankError('E_USAGE', `${routine}: a mode is listed twice in [${modes}]`);
  return out;
}

/** The ranks, one per decomposed mode, from a list or a fraction. */
function ranksArg(routine: string, shape: readonly number[], modes: readonly number[], ranks: TuckerRanks): number[] {
  if (typeof ranks === 'number') return fractionRanks(routine, shape, modes, ranks);
  if (!Array.isArray(ranks)) throw new LowrankError('E_USAGE', `${routine}: ranks must be a list of ${modes.length} integers or a fraction in (0, 1]`);
  if (ranks.length !== modes.length) {
    throw new LowrankError('E_USAGE', `${routine}: ${ranks.length} ranks for ${modes.length} decomposed modes of a [${shape}] tensor`, { shape });
  }
  return ranks.map((r: number, k) => {
    const dim = shape[modes[k]];
    if (!Number.isInteger(r) || r < 1 || r > dim) {
      throw new LowrankError('E_USAGE', `${routine}: the rank of mode ${modes[k]} must be an integer in 1..${dim}, got ${r}`, { shape });
    }
    return r;
  });
}

/** See {@link tuckerRanks}. */
function fractionRanks(routine: string, shape: readonly number[], modes: readonly number[], fraction: number): number[] {
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1)) {
    throw new LowrankError('E_USAGE', `${routine}: a rank given as a number is a fraction of the parameters, in (0, 1]; got ${fraction} (pass a list for per-mode ranks)`);
  }
  const dims = modes.map((m) => shape[m]);
  const kept = prod(shape.filter((_, j) => !modes.includes(j)));
  const budget = fraction * prod(shape);
  const at = (num: number, den: number): number[] => dims.map((d) => Math.max(1, Math.floor((num * d) / den)));
  const params = (rs: readonly number[]): number => kept * prod(rs) + rs.reduce((acc, r, k) => acc + r * dims[k], 0);
  // The candidate fractions c are the steps of the ranks, j/Iₖ; the parameter count grows with c.
  const steps: [number, number][] = [];
  for (const d of new Set(dims)) for (let j = 1; j <= d; j++) steps.push([j, d]);
  steps.sort((p, q) => p[0] * q[1] - q[0] * p[1]);
  let lo = -1;
  let hi = steps.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (params(at(...steps[mid])) <= budget) lo = mid;
    else hi = mid;
  }
  if (lo < 0) {
    const ones = dims.map(() => 1);
    throw new LowrankError('E_USAGE', `${routine}: the fraction ${fraction} is too small for a [${shape}] tensor: ranks of 1 already take ${params(ones)} parameters, over ${fraction}·${prod(shape)}`, { shape });
  }
  return at(...steps[lo]);
}

/** Checks that t is a consistent Tucker decomposition. */
function tuckerArg<F extends FloatDType>(routine: string, t: TuckerTensor<F>): void {
  if (t === null || typeof t !== 'object' || t.kind !== 'tucker') throw new LowrankError('E_USAGE', `${routine}: not a Tucker decomposition (kind 'tucker')`);
  const { core, factors, modes, shape } = t;
  tensorArg(routine, 'core', core);
  if (!Array.isArray(shape) || shape.length !== core.shape.length || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new LowrankError('E_SHAPE', `${routine}: shape [${shape}] does not fit a core of order ${core.shape.length}`, { shape: core.shape });
  }
  if (!Array.isArray(factors) || !Array.isArray(modes) || factors.length !== modes.length) throw new LowrankError('E_USAGE', `${routine}: one mode is needed for each factor`);
  const seen = new Set<number>();
  for (const [k, f] of factors.entries()) {
    const n = modes[k];
    if (!Number.isInteger(n) || n < 0 || n >= shape.length || seen.has(n)) throw new LowrankError('E_USAGE', `${routine}: modes [${modes}] are not distinct dimensions of [${shape}]`);
    seen.add(n);
    tensorArg(routine, `factors[${k}]`, f, 2);
    if (f.dtype !== core.dtype) throw new LowrankError('E_USAGE', `${routine}: the core is ${core.dtype} and factors[${k}] ${f.dtype}`);
    if (f.shape.length !== 2 || f.shape[0] !== shape[n] || f.shape[1] !== core.shape[n]) {
      throw new LowrankError('E_SHAPE', `${routine}: factors[${k}] is [${f.shape}], mode ${n} needs [${shape[n]}, ${core.shape[n]}]`, { shape: f.shape });
    }
  }
  for (let j = 0; j < shape.length; j++) {
    if (!seen.has(j) && core.shape[j] !== shape[j]) throw new LowrankError('E_SHAPE', `${routine}: the core is [${core.shape}] but dimension ${j} of [${shape}] has no factor`, { shape: core.shape });
  }
}
