/**
 * Randomized SVD (Halko, Martinsson and Tropp 2011): a Gaussian sketch of the range, power
 * iterations re-orthonormalized by QR at every step, then an exact SVD of the small projection.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { matrixArg, sliceData } from './check.js';
import { qr, svd } from './decompositions.js';
import { matmul } from './matmul.js';

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
  const omega = tensor(a.dtype, [n, l]);
  rng(opts.seed ?? 0).fillNormal(omega.data);
  let q = (await qr(await matmul(a, omega))).q; // m×l
  for (let i = 0; i < niter; i++) {
    const z = (await qr(await matmul(a, q, { transA: true }))).q; // n×l
    q = (await qr(await matmul(a, z))).q;
  }
  const b = await matmul(q, a, { transA: true }); // l×n
  const small = await svd(b);
  const u = await matmul(q, small.u); // m×l
  return { u: columns(u, rank), s: tensor(a.dtype, [rank], sliceData(small.s, 0, rank)), vt: tensor(a.dtype, [rank, n], sliceData(small.vt, 0, rank * n)) };
}

function columns<F extends FloatDType>(t: Tensor<F>, k: number): Tensor<F> {
  const [m, c] = t.shape;
  const out = tensor(t.dtype, [m, k]);
  for (let i = 0; i < m; i++) out.data.set(t.data.subarray(i * c, i * c + k), i * k);
  return out;
}
