/**
 * The truncated SVD a tool asks for — the best rank-k approximation, or the smallest rank keeping
 * an energy share — by the cheapest of three methods that delivers it:
 *
 * - `exact`: LAPACK's thin SVD of the whole matrix; every singular value is known.
 * - `randomized`: for a rank small against the matrix, Halko, Martinsson and Tropp's sketch with
 *   power iterations; for an energy share, an incremental blocked QB (Martinsson and Voronin's
 *   randQB_b) that grows the basis until the residual it leaves is small enough. Its cost is a few
 *   passes over the matrix.
 * - `gram`: the eigendecomposition of the smaller Gram matrix (AᵀA or AAᵀ), then one product with
 *   A: for ranks that are a large share of the matrix, where a sketch saves nothing. Singular
 *   values below √ε·σ₁ lose their accuracy this way; the ones kept by an energy share do not.
 *
 * Whatever the method, the approximation is u·diag(s)·vt = P·A or A·P for an orthogonal
 * projection P, so its error is ‖A‖²_F − ‖u·diag(s)·vt‖²_F exactly, and an energy share is met as
 * measured (`retained ≥ energy·total`), never as estimated. What the randomized path cannot know
 * is the Eckart–Young optimum Σ_{i>k} σᵢ² of the whole spectrum: it reports a lower estimate, adds
 * power iterations until the result is within `tolerance` of it, and falls back to the exact SVD
 * when it cannot get there. The estimate: with Q the sketched basis, B = QᵀA, R = A − Q·B and
 * C = B·Rᵀ, AAᵀ in the basis [Q, Q⊥] is [[BBᵀ, C], [Cᵀ, RRᵀ]] ⪯ diag(BBᵀ + CCᵀ/t, RRᵀ + t·I) for
 * every t > 0, so (Ky Fan) Σ_{i≤k} σᵢ(A)² is at most the k largest of eig(BBᵀ + CCᵀ/t) together
 * with k copies of ρ² + t, ρ = ‖R‖₂; minimized over t, and with ρ from a few power steps (a slight
 * underestimate, hence "estimate").
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend, type Matrix } from '../backend/index.js';
import { eps, matrixArg, sumSquares } from './check.js';
import { powerIterations, rangeSketch } from './rsvd.js';
import { energyRank, transpose } from './lowrank.js';
import { rng } from '../core/rng.js';

/** How a truncated SVD was computed. */
export type TruncationMethod = 'exact' | 'randomized' | 'gram';

/**
 * Chooses a rank k ≤ the asked rank from the singular values known — all of them (`complete`) or
 * a leading part (the randomized path's) — and ‖A‖²_F; undefined when a leading part cannot
 * decide, which sends the matrix to the exact SVD.
 */
export type RankCut = (sigma: Float64Array, totalSquares: number, complete: boolean) => number | undefined;

/**
 * What to keep: a rank (or a rule's rank below it), or the smallest rank whose approximation
 * keeps a share of ‖A‖²_F (at most maxRank).
 */
export type Keep = { readonly rank: number; readonly cut?: RankCut } | { readonly energy: number; readonly maxRank?: number };

/** Options of {@link truncatedSvd}. */
export interface TruncatedSvdOptions {
  /** 'auto' (default) picks by shape and target; the others force a method. */
  readonly method?: 'auto' | TruncationMethod;
  /** Sketch columns beyond the rank on the randomized path (default 10). */
  readonly oversample?: number;
  /** Power iterations to start with (default 2); more are added while the result is not within tolerance. */
  readonly niter?: number;
  /** The most power iterations before falling back to the exact SVD (default 8). */
  readonly maxNiter?: number;
  /** How far above the estimated Eckart–Young optimum a randomized result may be, relatively (default 0.01). */
  readonly tolerance?: number;
  /** Seed of the sketches (default 0). */
  readonly seed?: number;
}

/** A truncated SVD and what it is known to keep. */
export interface Truncation<F extends FloatDType = FloatDType> {
  /** u [m, k], s [k] descending, vt [k, n]. */
  readonly u: Tensor<F>;
  readonly s: Tensor<F>;
  readonly vt: Tensor<F>;
  readonly rank: number;
  readonly method: TruncationMethod;
  /** ‖A‖²_F, summed in float64. */
  readonly total: number;
  /** ‖A − u·diag(s)·vt‖²_F, measured (not a difference of large sums). */
  readonly errorSq: number;
  /** Σ_{i>k} σᵢ²: exact when `optimumExact`, else the lower estimate described above. */
  readonly optimumSq: number;
  readonly optimumExact: boolean;
  /** The singular values known: all of them (exact, gram) or the sketched ones (randomized), descending. */
  readonly spectrum: Float64Array;
  /** Power iterations the randomized path ran. */
  readonly niter?: number;
  /** Why the method differs from the one asked or chosen first. */
  readonly note?: string;
}

const DEFAULTS = { method: 'auto' as const, oversample: 10, niter: 2, maxNiter: 8, tolerance: 0.01, seed: 0 };
/** Below this many rows or columns the exact SVD is cheap enough to be the default. */
const EXACT_BELOW = 512;
/** The energy path's QB grows to at most this share of min(m, n) before handing over to gram. */
const QB_SHARE = 1 / 8;
const QB_FIRST_BLOCK = 16;
/** The smallest kept λ/λ₁ the Gram path trusts, in units of the dtype's epsilon. */
const GRAM_FLOOR = 1000;
/** Power steps of the residual's spectral-norm estimate, and its block width. */
const RHO_STEPS = 3;
const RHO_BLOCK = 4;

/**
 * The truncated SVD of a to a rank or an energy share (see the module notes for the methods and
 * what each result guarantees).
 *
 * @example
 * const t = await truncatedSvd(w, { rank: 16 });            // randomized on a large w
 * const e = await truncatedSvd(w, { energy: 0.9 });         // retained ≥ 0.9·‖w‖²_F, measured
 * const x = await truncatedSvd(w, { rank: 16 }, { method: 'exact' });
 */
export async function truncatedSvd<F extends FloatDType>(a: Tensor<F>, keep: Keep, opts: TruncatedSvdOptions = {}): Promise<Truncation<F>> {
  const A = matrixArg('truncatedSvd', 'a', a);
  const o = { ...DEFAULTS, ...withoutUndefined(opts) };
  checkKeep(keep, Math.min(A.rows, A.cols));
  for (const [name, v] of [['oversample', o.oversample], ['niter', o.niter], ['maxNiter', o.maxNiter]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowrankError('E_USAGE', `truncatedSvd: ${name} must be a non-negative integer, got ${v}`);
  }
  if (!(o.tolerance >= 0)) throw new LowrankError('E_USAGE', `truncatedSvd: tolerance must be ≥ 0, got ${o.tolerance}`);
  const method = o.method === 'auto' ? autoMethod(A, keep, o.oversample) : o.method;
  if (method === 'exact') return exact(A, a.dtype, keep);
  if (method === 'gram') {
    const t = await gram(A, a.dtype, keep);
    return typeof t === 'string' ? { ...(await exact(A, a.dtype, keep)), note: t } : t;
  }
  if ('rank' in keep) {
    const t = await sketched(A, a.dtype, keep, o);
    return typeof t === 'string' ? { ...(await exact(A, a.dtype, keep)), note: t } : t;
  }
  const qb = await blockedQb(A, a.dtype, keep, o);
  if (qb !== undefined) return qb;
  const g = await gram(A, a.dtype, keep);
  return typeof g === 'string' ? { ...(await exact(A, a.dtype, keep)), note: g } : { ...g, note: 'the energy needs a rank above an eighth of min(m, n); computed from the Gram matrix' };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkKeep(keep: Keep, q: number): void {
  if ('rank' in keep) {
    if (!Number.isInteger(keep.rank) || keep.rank < 1 || keep.rank > q) throw new LowrankError('E_USAGE', `truncatedSvd: rank must be an integer in 1..${q}, got ${keep.rank}`);
    return;
  }
  if (!(keep.energy > 0 && keep.energy <= 1)) throw new LowrankError('E_USAGE', `truncatedSvd: energy must be in (0, 1], got ${keep.energy}`);
  if (keep.maxRank !== undefined && !(Number.isInteger(keep.maxRank) && keep.maxRank >= 1)) throw new LowrankError('E_USAGE', `truncatedSvd: maxRank must be a positive integer, got ${keep.maxRank}`);
}

/** exact on small matrices; randomized for a rank (with its oversampling) within a quarter of min(m, n); else gram. Energy shares try the QB first. */
export function autoMethod(a: { rows: number; cols: number }, keep: Keep, oversample = DEFAULTS.oversample): TruncationMethod {
  const q = Math.min(a.rows, a.cols);
  if (q < EXACT_BELOW) return 'exact';
  if ('rank' in keep) return keep.rank + oversample <= q / 4 ? 'randomized' : 'gram';
  return 'randomized';
}

// ---------------------------------------------------------------------------------------------
// exact

async function exact<F extends FloatDType>(A: Matrix<Storage<F>>, dtype: F, keep: Keep): Promise<Truncation<F>> {
  const res = await backend().svd(A, 'thin');
  if (res.u === undefined || res.vt === undefined) throw new LowrankError('E_INTERNAL', 'truncatedSvd: backend returned no singular vectors');
  const spectrum = Float64Array.from(res.s);
  const total = sumSquares(A.data);
  const k = chooseRank(spectrum, keep, total, true) ?? 1;
  const tail = tailSquares(spectrum, k);
  return finish(dtype, res.u, res.s, res.vt, k, 'exact', { total, errorSq: tail, optimumSq: tail, optimumExact: true, spectrum });
}

// ---------------------------------------------------------------------------------------------
// gram

/**
 * The Gram path, or why it cannot serve: a kept σ² below GRAM_FLOOR·ε·σ₁² is lost in the rounding
 * of AᵀA's eigenvalues, and its vector with it.
 */
async function gram<F extends FloatDType>(A: Matrix<Storage<F>>, dtype: F, keep: Keep): Promise<Truncation<F> | string> {
  const be = backend();
  const tall = A.rows >= A.cols;
  const p = Math.min(A.rows, A.cols);
  const g = await be.matmul(A, A, tall, !tall); // p×p: AᵀA or AAᵀ
  const eig = await be.eigh(g, true);
  if (eig.vectors === undefined) throw new LowrankError('E_INTERNAL', 'truncatedSvd: backend returned no eigenvectors');
  const lambda = new Float64Array(p);
  for (let i = 0; i < p; i++) lambda[i] = Math.max(0, eig.values[p - 1 - i]);
  const spectrum = lambda.map(Math.sqrt);
  const total = sumSquares(A.data);
  let k = chooseRank(spectrum, keep, total, true) ?? 1;
  if (lambda[k - 1] < GRAM_FLOOR * eps(dtype) * lambda[0]) return `σ_${k} is below the Gram matrix's accuracy; computed exactly`;
  const vecs = eig.vectors;
  // The top-k eigenvectors as columns, descending: V [p, k].
  const top = (count: number): Matrix<Storage<F>> => {
    const v = tensor(dtype, [p, count]);
    for (let i = 0; i < p; i++) for (let j = 0; j < count; j++) v.data[i * count + j] = vecs.data[i * p + (p - 1 - j)];
    return { rows: p, cols: count, data: v.data };
  };
  for (;;) {
    const v = top(k);
    const y = await be.matmul(A, v, !tall, false); // A·V [m, k] (tall) or Aᵀ·V [n, k]
    const norms = columnNorms(y);
    const retained = norms.reduce((s, x) => s + x * x, 0);
    // Eigenvectors off by rounding can keep a little less than the eigenvalues promised: add one.
    if ('energy' in keep && retained < keep.energy * total && k < Math.min(p, keep.maxRank ?? p)) {
      k++;
      continue;
    }
    // u = y / σ (tall) with vt = Vᵀ; or u = V with vt = (y / σ)ᵀ; columns ordered by σ descending
    // (written row by row: a column at a time strides through memory).
    const order = Array.from(norms.keys()).sort((i, j) => norms[j] - norms[i]);
    const s = tensor(dtype, [k]);
    const scale = order.map((src) => (norms[src] === 0 ? 0 : 1 / norms[src]));
    order.forEach((src, dst) => (s.data[dst] = norms[src]));
    const other = tensor(dtype, [y.rows, k]);
    const basis = tensor(dtype, [p, k]);
    for (let i = 0; i < y.rows; i++) for (let dst = 0; dst < k; dst++) other.data[i * k + dst] = y.data[i * k + order[dst]] * scale[dst];
    for (let i = 0; i < p; i++) for (let dst = 0; dst < k; dst++) basis.data[i * k + dst] = v.data[i * k + order[dst]];
    const [u, vtT] = tall ? [other, basis] : [basis, other];
    return {
      u,
      s,
      vt: transpose(vtT),
      rank: k,
      method: 'gram',
      total,
      errorSq: Math.max(0, total - retained),
      optimumSq: tailSquares(spectrum, k),
      optimumExact: true,
      spectrum,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// randomized, fixed rank

interface Resolved {
  oversample: number;
  niter: number;
  maxNiter: number;
  tolerance: number;
  seed: number;
}

async function sketched<F extends FloatDType>(A: Matrix<Storage<F>>, dtype: F, keep: { rank: number; cut?: RankCut }, o: Resolved): Promise<Truncation<F> | string> {
  const be = backend();
  const l = Math.min(keep.rank + o.oversample, A.rows, A.cols);
  const total = sumSquares(A.data);
  let q = await powerIterations(A, await rangeSketch(A, dtype, l, o.seed), o.niter);
  let niter = o.niter;
  for (;;) {
    const b = await be.matmul(q, A, true, false); // l×n
    const residual = await be.matmulAdd(A, q, b, -1, false, false); // R = A − Q·B
    const small = await be.svd(b, 'thin');
    if (small.u === undefined || small.vt === undefined) throw new LowrankError('E_INTERNAL', 'truncatedSvd: backend returned no singular vectors');
    const spectrum = Float64Array.from(small.s);
    const k = chooseRank(spectrum, keep, total, false);
    if (k === undefined) return 'the rank rule needs the whole spectrum; computed exactly';
    const rSq = sumSquares(residual.data);
    const dropped = tailSquares(spectrum, k);
    const errorSq = rSq + dropped;
    const optimumSq = Math.max(dropped, errorSq - (await deficitBound(b, residual, k, dtype, o.seed)));
    if (errorSq <= (1 + o.tolerance) ** 2 * optimumSq || errorSq === 0) {
      const u = await be.matmul(q, small.u, false, false);
      return { ...finish(dtype, u, small.s, small.vt, k, 'randomized', { total, errorSq, optimumSq, optimumExact: false, spectrum }), niter };
    }
    if (niter + 2 > o.maxNiter) return `the randomized result stayed above the tolerance after ${niter} power iterations; computed exactly`;
    q = await powerIterations(A, q, 2);
    niter += 2;
  }
}

/** ≈ ‖R‖₂ by a few steps of block power iteration from a seeded Gaussian block (a slight underestimate). */
async function spectralNormEstimate<F extends FloatDType>(r: Matrix<Storage<F>>, dtype: F, seed: number): Promise<number> {
  const be = backend();
  const b = Math.min(RHO_BLOCK, r.rows, r.cols);
  const x0 = tensor(dtype, [r.cols, b]);
  rng(seed + 0x5eed).fillNormal(x0.data);
  let x = (await be.qr({ rows: r.cols, cols: b, data: x0.data })).q;
  let est = 0;
  for (let i = 0; i < RHO_STEPS; i++) {
    const y = await be.matmul(r, x, false, false); // m×b
    // With x orthonormal, σ_max(R·x) ≤ ‖R‖₂ (Rayleigh–Ritz), approaching it as x does.
    const small = await be.svd(y, 'values');
    est = small.s.length > 0 ? small.s[0] : 0;
    if (i + 1 < RHO_STEPS) x = (await be.qr(await be.matmul(r, y, true, false))).q;
  }
  return est;
}

/**
 * An upper estimate of Σ_{i≤k} σᵢ(A)² − Σ_{i≤k} σ̃ᵢ², the top-k energy the basis Q missed, from
 * B = QᵀA (l×n) and R = A − Q·B (see the module notes). The l×l parts are formed in float64.
 */
async function deficitBound<F extends FloatDType>(b: Matrix<Storage<F>>, r: Matrix<Storage<F>>, k: number, dtype: F, seed: number): Promise<number> {
  const be = backend();
  const l = b.rows;
  const rho = await spectralNormEstimate(r, dtype, seed);
  const rhoSq = rho * rho;
  const t = gramRows(b); // BBᵀ
  const rb = await be.matmul(r, b, false, true); // R·Bᵀ = Cᵀ, m×l
  const cc = gramCols(rb); // CCᵀ
  const topK = async (extra: number, scale: number): Promise<number> => {
    const m = new Float64Array(l * l);
    for (let i = 0; i < m.length; i++) m[i] = t[i] + scale * cc[i];
    const vals = Array.from((await be.eigh({ rows: l, cols: l, data: m }, false)).values);
    for (let i = 0; i < k; i++) vals.push(extra);
    vals.sort((x, y) => y - x);
    return vals.slice(0, k).reduce((s, v) => s + Math.max(0, v), 0);
  };
  const captured = await topK(-Infinity, 0);
  let best = k * rhoSq; // Weyl, index by index
  if (rhoSq > 0 || cc.some((v) => v !== 0)) {
    const unit = rhoSq > 0 ? rhoSq : Math.sqrt(cc.reduce((s, v) => s + v * v, 0)) || 1;
    for (let j = -30; j <= 6; j++) {
      const tj = unit * 2 ** j;
      best = Math.min(best, (await topK(rhoSq + tj, 1 / tj)) - captured);
    }
  } else best = 0;
  return Math.max(0, best);
}

/** X·Xᵀ of a row-major matrix, in float64. */
function gramRows(x: Matrix): Float64Array {
  const { rows: l, cols: n, data } = x;
  const out = new Float64Array(l * l);
  for (let i = 0; i < l; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let c = 0; c < n; c++) s += data[i * n + c] * data[j * n + c];
      out[i * l + j] = s;
      out[j * l + i] = s;
    }
  }
  return out;
}

/** Xᵀ·X of a row-major matrix, in float64. */
function gramCols(x: Matrix): Float64Array {
  const { rows: m, cols: l, data } = x;
  const out = new Float64Array(l * l);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < l; i++) {
      const xi = data[r * l + i];
      for (let j = 0; j <= i; j++) out[i * l + j] += xi * data[r * l + j];
    }
  }
  for (let i = 0; i < l; i++) for (let j = 0; j < i; j++) out[j * l + i] = out[i * l + j];
  return out;
}

// ---------------------------------------------------------------------------------------------
// randomized, energy share

async function blockedQb<F extends FloatDType>(A: Matrix<Storage<F>>, dtype: F, keep: { energy: number; maxRank?: number }, o: Resolved): Promise<Truncation<F> | undefined> {
  const be = backend();
  const q = Math.min(A.rows, A.cols);
  const cap = Math.min(Math.floor(q * QB_SHARE), keep.maxRank === undefined ? q : keep.maxRank + o.oversample);
  const total = sumSquares(A.data);
  const target = (1 - keep.energy) * total; // the most ‖A − QB‖² may be
  let residual = A; // replaced, never written: matmulAdd returns a new matrix
  let rSq = total;
  const qs: Matrix<Storage<F>>[] = [];
  const bs: Matrix<Storage<F>>[] = [];
  let width = 0;
  let block = QB_FIRST_BLOCK;
  let maxRankReached = false;
  while (rSq > target && width < cap) {
    const bw = Math.min(block, cap - width);
    // One power step per block, on the residual (which is orthogonal to every earlier block).
    let qi = await rangeSketch(residual, dtype, bw, o.seed + qs.length);
    qi = await powerIterations(residual, qi, 1);
    qi = await reorthogonalize(qi, qs);
    const bi = await be.matmul(qi, residual, true, false);
    residual = await be.matmulAdd(residual, qi, bi, -1, false, false);
    const before = rSq;
    rSq = sumSquares(residual.data);
    qs.push(qi);
    bs.push(bi);
    width += bw;
    block *= 2;
    if (keep.maxRank !== undefined && width >= keep.maxRank + o.oversample) maxRankReached = true;
    // Later directions carry less energy than this block's average: when even that much per
    // direction up to the cap falls short, the Gram path is cheaper than growing the basis.
    else if (rSq > target && before - rSq > 0 && rSq - (cap - width) * ((before - rSq) / bw) > target) return undefined;
  }
  if (rSq > target && !maxRankReached) return undefined;
  const Q = hcat(dtype, qs, A.rows, width);
  const B = vcat(dtype, bs, width, A.cols);
  const small = await be.svd(B, 'thin');
  if (small.u === undefined || small.vt === undefined) throw new LowrankError('E_INTERNAL', 'truncatedSvd: backend returned no singular vectors');
  const spectrum = Float64Array.from(small.s);
  // The smallest k whose error ‖R‖² + Σ_{i>k} σ̃ᵢ² is within the target.
  let k = width;
  let tail = 0;
  while (k > 1 && rSq + tail + spectrum[k - 1] ** 2 <= target) tail += spectrum[--k] ** 2;
  if (keep.maxRank !== undefined) k = Math.min(k, keep.maxRank);
  const errorSq = rSq + tailSquares(spectrum, k);
  const optimumSq = Math.max(tailSquares(spectrum, k), errorSq - (await deficitBound(B, residual, k, dtype, o.seed)));
  const u = await be.matmul(Q, small.u, false, false);
  return { ...finish(dtype, u, small.s, small.vt, k, 'randomized', { total, errorSq, optimumSq, optimumExact: false, spectrum }), niter: 1 };
}

/** q with its component in the span of the earlier blocks removed twice (classical Gram–Schmidt, reapplied), then orthonormalized. */
async function reorthogonalize<A extends Float32Array | Float64Array>(q: Matrix<A>, earlier: readonly Matrix<A>[]): Promise<Matrix<A>> {
  const be = backend();
  for (let pass = 0; pass < 2; pass++) {
    for (const e of earlier) q = await be.matmulAdd(q, e, await be.matmul(e, q, true, false), -1, false, false);
  }
  return be.orthonormalize(q);
}

// ---------------------------------------------------------------------------------------------
// shared

/** The rank a target keeps from a descending spectrum (all of it, or a leading part) and the exact total ‖A‖²_F. */
function chooseRank(sigma: Float64Array, keep: Keep, total: number, complete: boolean): number | undefined {
  if ('rank' in keep) {
    const k = Math.min(keep.rank, sigma.length);
    if (keep.cut === undefined) return k;
    const c = keep.cut(sigma, total, complete);
    return c === undefined ? undefined : Math.max(1, Math.min(c, k));
  }
  const k = energyRank(sigma, keep.energy, total);
  return Math.min(k, keep.maxRank ?? k);
}

/** What a truncation knows besides its triplets. */
type Known = Pick<Truncation, 'total' | 'errorSq' | 'optimumSq' | 'optimumExact' | 'spectrum'>;

/** The first k triplets of u [m, c], s, vt [c', n] (c, c' ≥ k) as tensors, with what is known of them. */
function finish<F extends FloatDType>(dtype: F, u: Matrix<Storage<F>>, s: Storage<F>, vt: Matrix<Storage<F>>, k: number, method: TruncationMethod, known: Known): Truncation<F> {
  const m = u.rows;
  const n = vt.cols;
  const uk = tensor(dtype, [m, k]);
  for (let i = 0; i < m; i++) uk.data.set(u.data.subarray(i * u.cols, i * u.cols + k), i * k);
  return {
    u: uk,
    s: tensor(dtype, [k], s.slice(0, k) as Storage<F>),
    vt: tensor(dtype, [k, n], vt.data.slice(0, k * n) as Storage<F>),
    rank: k,
    method,
    ...known,
  };
}

/** Σ_{i≥k} σᵢ², smallest first. */
function tailSquares(sigma: ArrayLike<number>, k: number): number {
  let t = 0;
  for (let i = sigma.length - 1; i >= k; i--) t += sigma[i] * sigma[i];
  return t;
}

function columnNorms(y: Matrix): number[] {
  const out = new Array<number>(y.cols).fill(0);
  for (let i = 0; i < y.rows; i++) for (let j = 0; j < y.cols; j++) out[j] += y.data[i * y.cols + j] ** 2;
  return out.map(Math.sqrt);
}

function hcat<F extends FloatDType>(dtype: F, blocks: readonly Matrix<Storage<F>>[], rows: number, cols: number): Matrix<Storage<F>> {
  const out = tensor(dtype, [rows, cols]).data;
  let off = 0;
  for (const b of blocks) {
    for (let i = 0; i < rows; i++) out.set(b.data.subarray(i * b.cols, (i + 1) * b.cols), i * cols + off);
    off += b.cols;
  }
  return { rows, cols, data: out };
}

function vcat<F extends FloatDType>(dtype: F, blocks: readonly Matrix<Storage<F>>[], rows: number, cols: number): Matrix<Storage<F>> {
  const out = tensor(dtype, [rows, cols]).data;
  let off = 0;
  for (const b of blocks) {
    out.set(b.data, off);
    off += b.data.length;
  }
  return { rows, cols, data: out };
}
