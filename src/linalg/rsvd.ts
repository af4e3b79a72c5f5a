/**
 * Randomized SVD (Halko, Martinsson and Tropp 2011): a Gaussian sketch of the range, power
 * iterations re-orthonormalized by QR at every step, then an exact SVD of the small projection.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { matrixArg } from './check.js';
import { backend, type Matrix } from '../backend/index.js';

/** Options of {@link rsvd}. */
export interface RsvdOptions {
  /** Extra sketch columns beyond the rank (default 10). */
  oversample?: number;
  /** Power iterations (default 2; 4 or more for slowly decaying spectra). */
  niter?: number;
  /** Seed of the Gaussian sketch (default 0): the same seed gives the same result on a backend. */
  seed?: number;
}

/**
 * The top `rank` singular triplets of a, approximately: a ≈ u · diag(s) · vt. Cost is a few
 * products with a plus an exact SVD of a (rank + oversample)×n matrix. For the smallest triplets
 * use {@link svdSmallest}: a sketch cannot resolve the bottom of a spectrum.
 *
 * @example
 * const { u, s, vt } = await linalg.rsvd(w, 64, { niter: 4, seed: 1 });
 */
export async function rsvd<F extends FloatDType>(a: Tensor<F>, rank: number, opts: RsvdOptions = {}): Promise<{ u: Tensor<F>; s: Tensor<F>; vt: Tensor<F> }> {
  matrixArg('rsvd', 'a', a);
  const [m, n] = a.shape;
  const kmax = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 1 || rank > kmax) throw new LowrankError('E_USAGE', `rsvd: rank must be an integer in 1..${kmax}, got ${rank}`);
  const oversample = opts.oversample ?? 10;
  const niter = opts.niter ?? 2;
  if (!Number.isInteger(oversample) || oversample < 0) throw new LowrankError('E_USAGE', `rsvd: oversample must be a non-negative integer, got ${oversample}`);
  if (!Number.isInteger(niter) || niter < 0) throw new LowrankError('E_USAGE', `rsvd: niter must be a non-negative integer, got ${niter}`);
  const l = Math.min(rank + oversample, kmax);
  // a was checked once above; the steps call the backend directly, so a large a is not rescanned
  // for NaN at each of its 2·niter + 2 products.
  const be = backend();
  const A: Matrix<Storage<F>> = { rows: m, cols: n, data: a.data };
  const q = await powerIterations(A, await rangeSketch(A, a.dtype, l, opts.seed ?? 0), niter);
  const b = await be.matmul(q, A, true, false); // l×n
  const small = await be.svd(b, 'thin');
  if (small.u === undefined || small.vt === undefined) throw new LowrankError('E_INTERNAL', 'rsvd: backend returned no singular vectors');
  const u = await be.matmul(q, small.u, false, false); // m×l
  return {
    u: columns(tensor(a.dtype, [m, l], u.data), rank),
    s: tensor(a.dtype, [rank], small.s.slice(0, rank) as Storage<F>),
    vt: tensor(a.dtype, [rank, n], small.vt.data.slice(0, rank * n) as Storage<F>),
  };
}

/** An orthonormal basis of the range of A·Ω for the seed's Gaussian Ω (n × l): Halko's first step. */
export async function rangeSketch<F extends FloatDType>(a: Matrix<Storage<F>>, dtype: F, l: number, seed: number): Promise<Matrix<Storage<F>>> {
  const omega = sketch(dtype, a.cols, l, seed);
  const be = backend();
  return be.orthonormalize(await be.matmul(a, { rows: a.cols, cols: l, data: omega.data }, false, false));
}

/** `count` power iterations q ← orth(A·orth(Aᵀ·q)), re-orthonormalized at every product. */
export async function powerIterations<A extends Float32Array | Float64Array>(a: Matrix<A>, q: Matrix<A>, count: number): Promise<Matrix<A>> {
  const be = backend();
  for (let i = 0; i < count; i++) {
    const z = await be.orthonormalize(await be.matmul(a, q, true, false)); // n×l
    q = await be.orthonormalize(await be.matmul(a, z, false, false)); // m×l
  }
  return q;
}

function columns<F extends FloatDType>(t: Tensor<F>, k: number): Tensor<F> {
  const [m, c] = t.shape;
  const out = tensor(t.dtype, [m, k]);
  for (let i = 0; i < m; i++) out.data.set(t.data.subarray(i * c, i * c + k), i * k);
  return out;
}

/**
 * The Gaussian sketch n×l of a seed. A model's layers share a few shapes and one seed, so the last
 * few sketches are kept: drawing 5632 × 26 normals costs about as much as a product with the sketch.
 */
const sketches = new Map<string, Tensor<FloatDType>>();
const SKETCHES_KEPT = 4;

function sketch<F extends FloatDType>(dtype: F, n: number, l: number, seed: number): Tensor<F> {
  const key = `${dtype} ${n} ${l} ${seed}`;
  const got = sketches.get(key);
  if (got !== undefined) return got as Tensor<F>;
  const omega = tensor(dtype, [n, l]);
  rng(seed).fillNormal(omega.data);
  if (sketches.size >= SKETCHES_KEPT) sketches.delete(sketches.keys().next().value as string);
  sketches.set(key, omega);
  return omega;
}
