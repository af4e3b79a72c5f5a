/**
 * Spectral metrics of one weight matrix from its singular values σ₁ ≥ σ₂ ≥ … ≥ σ_K (K = min(m, n)),
 * following WeightWatcher's definitions (CalculatedContent/WeightWatcher 0.7.5) where it has one:
 *
 * - frobenius ‖W‖_F = √Σσ²; stableRank = ‖W‖_F² / σ₁²; logNorm = log10 ‖W‖_F² (WeightWatcher's
 *   log_norm, the log of Σλ); logSpectralNorm = log10 λ_max = log10 σ₁².
 * - effectiveRank (Roy and Vetterli 2007): exp(−Σ p_i ln p_i) with p_i = σ_i / Σσ.
 * - energyRanks: for t = 0.90, 0.95, 0.99, the smallest k with Σ_{i≤k} σ_i² / Σσ² ≥ t.
 * - numericalRank: #{σ_i > σ₁ · max(m, n) · eps}, numpy's and WeightWatcher's matrix_rank rule,
 *   with eps of the dtype the values were computed in: float32 for f32/bf16/f16 weights (where
 *   WeightWatcher, computing in float64, uses float64's), float64 for f64 tensors.
 * - alpha, D, xmin, numTail: the power-law fit of the eigenvalues λ = σ² of WᵀW (see powerlaw.ts),
 *   over the eigenvalues above 1e-5 (WeightWatcher's EVALS_THRESH); null with a note when fewer
 *   than 50 eigenvalues take part. warning: 'over-trained' for α < 2, 'under-trained' for α > 6.
 *   alphaWeighted = α · log10 λ_max.
 * - savedAt1pct: the smallest rank r with √(Σ_{i>r} σ_i²) / ‖W‖_F ≤ 0.01, and the parameters a
 *   rank-r factorization (m×r times r×n) saves: m·n − r·(m + n), or 0 when it would not save any.
 *
 * Every tensor of two or more dimensions is analyzed as a matrix: its first dimension by the
 * product of the others (a convolution kernel [out, in, kh, kw] is out × in·kh·kw). Embeddings
 * are 2-D and are analyzed like any other matrix (WeightWatcher analyzes them too).
 *
 * `--fast` (option `fast`): only the top k = min(64, K) singular values, by randomized SVD
 * (linalg.rsvd, 2 power iterations). A matrix with K ≤ 64 is computed exactly anyway. Otherwise:
 * - exact (from the data, not the spectrum): frobenius, logNorm.
 * - estimates as good as rsvd's top singular value: sigmaMax, stableRank, logSpectralNorm.
 * - energyRanks and savedAt1pct: the top-k cumulative energy against the exact ‖W‖_F²; null when
 *   the threshold is not reached within the top k (the rank is then larger than k).
 * - numericalRank: the count when some of the top k fall below the tolerance, else null (> k).
 * - effectiveRank: the entropy of the top k values only (p_i = σ_i / Σ_{i≤k} σ_i).
 * - alpha, D, xmin, numTail: the fit with its xmin candidates among the top k eigenvalues; for
 *   each such candidate α and D equal the full fit's, so this is the full fit when its xmin lies in
 *   the top k.
 * - sigmaMin: null.
 * The record lists these in `approximate` and says how many values were computed in `computed`.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, toFloat, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { eps as dtypeEps } from '../linalg/check.js';
import { rsvd, svdvals } from '../linalg/index.js';
import { EVALS_THRESH, MIN_EVALS, alphaWarning, fitPowerLaw, type PowerLawFit } from './powerlaw.js';

/** The energy fractions of {@link EnergyRanks}. */
export const ENERGY_THRESHOLDS = { r90: 0.9, r95: 0.95, r99: 0.99 } as const;
/** How many singular triplets `--fast` computes (at most). */
export const FAST_K = 64;
/** The relative Frobenius error of the rank behind {@link SpectrumMetrics.savedAt1pct}. */
export const SAVED_TOLERANCE = 0.01;

/** The smallest ranks holding 90, 95 and 99% of Σσ²; null (fast mode) when beyond the computed values. */
export interface EnergyRanks {
  readonly r90: number | null;
  readonly r95: number | null;
  readonly r99: number | null;
}

/** The rank that keeps 99% of the Frobenius norm, and what factorizing at it saves. */
export interface SavedAtRank {
  /** Smallest r with √(Σ_{i>r} σ_i²) / ‖W‖_F ≤ 0.01. */
  readonly rank: number;
  /** m·n − r·(m + n), or 0 when a rank-r factorization would not be smaller. */
  readonly params: number;
}

/** The metrics of one matrix. Numbers that cannot be defined (log of 0, α of too few values) are null. */
export interface SpectrumMetrics {
  /** The singular values used, descending (all K, or the top ones in fast mode); only with keepValues. */
  readonly values?: readonly number[];
  /** [m, n] as analyzed (a tensor of more dimensions is flattened to its first × the rest). */
  readonly shape: readonly [number, number];
  /** K = min(m, n): how many singular values the matrix has. */
  readonly numEvals: number;
  /** How many singular values were computed: K, or the top k in fast mode. */
  readonly computed: number;
  readonly sigmaMax: number;
  /** σ_K; null when not computed (fast mode). */
  readonly sigmaMin: number | null;
  /** ‖W‖_F. */
  readonly frobenius: number;
  /** ‖W‖_F² / σ_max² (0 for a zero matrix). */
  readonly stableRank: number;
  /** Roy–Vetterli effective rank, exp of the entropy of σ / Σσ (0 for a zero matrix). */
  readonly effectiveRank: number;
  readonly energyRanks: EnergyRanks;
  /** #{σ > σ_max · max(m, n) · eps}; null in fast mode when every computed value is above the tolerance. */
  readonly numericalRank: number | null;
  /** The tolerance numericalRank counted against. */
  readonly rankTolerance: number;
  /** Power-law exponent of the eigenvalues λ = σ² (WeightWatcher's alpha), or null with a note. */
  readonly alpha: number | null;
  /** The fit's Kolmogorov–Smirnov distance. */
  readonly D: number | null;
  /** The fit's xmin (an eigenvalue). */
  readonly xmin: number | null;
  /** How many eigenvalues are ≥ xmin. */
  readonly numTail: number | null;
  /** 'over-trained' (α < 2), 'under-trained' (α > 6), or null. */
  readonly warning: 'over-trained' | 'under-trained' | null;
  /** α · log10 λ_max. */
  readonly alphaWeighted: number | null;
  /** log10 ‖W‖_F² (null for a zero matrix). */
  readonly logNorm: number | null;
  /** log10 λ_max = log10 σ_max² (null for a zero matrix). */
  readonly logSpectralNorm: number | null;
  /** The rank at 1% relative Frobenius error and the parameters it saves; null (fast mode) when beyond the computed values. */
  readonly savedAt1pct: SavedAtRank | null;
  /** The metrics that are estimates (fast mode); empty when every metric is exact. */
  readonly approximate: readonly string[];
  /** Why a metric is null, or how it was computed. */
  readonly notes: readonly string[];
}

/** Options of {@link spectrumMetrics}. */
export interface SpectrumOptions {
  /**
   * What lies beyond the values given: 'zero' (the spectrum is complete; missing values are exact
   * zeros, as for a rank-r product) or 'unknown' (only the top values were computed). Default 'zero'.
   */
  rest?: 'zero' | 'unknown';
  /** ‖W‖_F², required when `rest` is 'unknown' (computed from the data). */
  frobenius2?: number;
  /** Machine epsilon of the numerical-rank tolerance (default float32's, 2^-23). */
  eps?: number;
  /** Fewest eigenvalues for a power-law fit (default 50). */
  minEvals?: number;
  /** Eigenvalues at or below this are left out of the fit (default 1e-5). */
  evalsThresh?: number;
  /** Keep the singular values in the result's `values` (for plots). */
  keepValues?: boolean;
}

/**
 * The metrics of an m×n matrix from its singular values (any order; at most min(m, n) of them).
 *
 * @example
 * const m = spectrumMetrics(s.data, [4096, 4096]); // m.stableRank, m.alpha, ...
 */
export function spectrumMetrics(singularValues: ArrayLike<number>, shape: readonly [number, number], opts: SpectrumOptions = {}): SpectrumMetrics {
  const [m, n] = shape;
  const K = Math.min(m, n);
  if (!Number.isInteger(m) || !Number.isInteger(n) || K < 1) throw new LowrankError('E_SHAPE', `spectrumMetrics: shape [${shape.join(', ')}] is not a non-empty matrix`);
  if (singularValues.length > K) throw new LowrankError('E_SHAPE', `spectrumMetrics: ${singularValues.length} singular values for a ${m}×${n} matrix (at most ${K})`);
  const s = Float64Array.from(singularValues);
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i])) throw new LowrankError('E_NONFINITE', `spectrumMetrics: singular value ${i} is ${s[i]}`);
    s[i] = Math.abs(s[i]);
  }
  s.sort().reverse();
  const known = s.length;
  const complete = (opts.rest ?? 'zero') === 'zero' || known === K;
  const notes: string[] = [];

  // Cumulative energy from the top, and the tail energies Σ_{i>r} σ² summed from the bottom.
  const cum = new Float64Array(known + 1);
  for (let i = 0; i < known; i++) cum[i + 1] = cum[i] + s[i] * s[i];
  const sumSq = cum[known];
  let fro2: number;
  if (complete) fro2 = sumSq;
  else {
    if (opts.frobenius2 === undefined || !Number.isFinite(opts.frobenius2)) throw new LowrankError('E_USAGE', 'spectrumMetrics: frobenius2 is required when rest is unknown');
    fro2 = Math.max(opts.frobenius2, sumSq);
  }
  const frobenius = Math.sqrt(fro2);
  const sigmaMax = known > 0 ? s[0] : 0;
  const lambdaMax = sigmaMax * sigmaMax;

  let nuclear = 0;
  for (let i = 0; i < known; i++) nuclear += s[i];
  let entropy = 0;
  if (nuclear > 0) {
    for (let i = 0; i < known; i++) {
      const p = s[i] / nuclear;
      if (p > 0) entropy -= p * Math.log(p);
    }
  }

  const energyRank = (t: number): number | null => {
    if (fro2 === 0) return 0;
    for (let k = 1; k <= known; k++) if (cum[k] / fro2 >= t) return k;
    return complete ? known : null;
  };

  const eps = opts.eps ?? dtypeEps('f32');
  const rankTolerance = sigmaMax * Math.max(m, n) * eps;
  let above = 0;
  for (let i = 0; i < known; i++) if (s[i] > rankTolerance) above++;
  const numericalRank = complete || above < known ? above : null;

  let savedAt1pct: SavedAtRank | null = null;
  const tail = new Float64Array(known + 1);
  for (let i = known - 1; i >= 0; i--) tail[i] = tail[i + 1] + s[i] * s[i];
  for (let r = 0; r <= known; r++) {
    const rest = complete ? tail[r] : Math.max(0, fro2 - cum[r]);
    if (fro2 === 0 || Math.sqrt(rest) / frobenius <= SAVED_TOLERANCE) {
      savedAt1pct = { rank: r, params: Math.max(0, m * n - r * (m + n)) };
      break;
    }
  }

  const minEvals = opts.minEvals ?? MIN_EVALS;
  const thresh = opts.evalsThresh ?? EVALS_THRESH;
  const evals: number[] = [];
  for (let i = 0; i < known; i++) if (s[i] * s[i] > thresh) evals.push(s[i] * s[i]);
  let fit: PowerLawFit | null = null;
  if (evals.length < minEvals) {
    notes.push(`alpha needs at least ${minEvals} eigenvalues above ${thresh}; ${complete ? 'the matrix has' : 'the computed top values have'} ${evals.length}`);
  } else {
    fit = fitPowerLaw(evals);
    if (fit !== null && !Number.isFinite(fit.alpha)) {
      notes.push('alpha is undefined: the eigenvalues of the best tail are all equal (e.g. an orthogonal matrix)');
      fit = null;
    }
  }
  const alpha = fit?.alpha ?? null;

  const approximate: string[] = [];
  if (!complete) {
    approximate.push('sigmaMax', 'stableRank', 'logSpectralNorm', 'effectiveRank', 'energyRanks', 'numericalRank', 'alpha', 'D', 'xmin', 'numTail', 'alphaWeighted', 'savedAt1pct');
    notes.push(`fast: top ${known} of ${K} singular values by randomized SVD; frobenius and logNorm are exact, sigmaMin is not computed`);
  }

  return {
    ...(opts.keepValues === true ? { values: Array.from(s) } : {}),
    shape: [m, n],
    numEvals: K,
    computed: complete ? K : known,
    sigmaMax,
    sigmaMin: complete ? (known === K ? s[K - 1] : 0) : null,
    frobenius,
    stableRank: lambdaMax > 0 ? fro2 / lambdaMax : 0,
    effectiveRank: nuclear > 0 ? Math.exp(entropy) : 0,
    energyRanks: { r90: energyRank(ENERGY_THRESHOLDS.r90), r95: energyRank(ENERGY_THRESHOLDS.r95), r99: energyRank(ENERGY_THRESHOLDS.r99) },
    numericalRank,
    rankTolerance,
    alpha,
    D: fit?.D ?? null,
    xmin: fit?.xmin ?? null,
    numTail: fit?.numTail ?? null,
    warning: alphaWarning(alpha),
    alphaWeighted: alpha !== null && lambdaMax > 0 ? alpha * Math.log10(lambdaMax) : null,
    logNorm: fro2 > 0 ? Math.log10(fro2) : null,
    logSpectralNorm: lambdaMax > 0 ? Math.log10(lambdaMax) : null,
    savedAt1pct,
    approximate,
    notes,
  };
}

/**
 * The matrix a tensor is analyzed as: [first dimension, product of the others], or null for a
 * tensor of fewer than two dimensions or no elements.
 */
export function matrixShape(shape: readonly number[]): [number, number] | null {
  if (shape.length < 2) return null;
  const m = shape[0];
  const n = shape.slice(1).reduce((a, d) => a * d, 1);
  return m > 0 && n > 0 ? [m, n] : null;
}

/** A tensor as an f32/f64 matrix (flattened as {@link matrixShape} says; other dtypes decoded to f32). */
export function asMatrix(w: Tensor): Tensor<FloatDType> {
  const shape = matrixShape(w.shape);
  if (shape === null) throw new LowrankError('E_SHAPE', 'a spectrum needs a tensor of at least two non-empty dimensions', { shape: w.shape });
  const f = w.dtype === 'f32' || w.dtype === 'f64' ? (w as Tensor<FloatDType>) : toFloat(w, 'f32');
  return tensor(f.dtype, shape, f.data);
}

/** Options of {@link analyzeMatrix} and the comparisons. */
export interface MatrixOptions {
  /** Only the top k = min(64, min(m, n)) singular values, by randomized SVD (see the module notes). */
  fast?: boolean;
  /** The k of fast mode (default 64). */
  fastK?: number;
  /** rsvd's power iterations in fast mode (default 2). */
  niter?: number;
  /** rsvd's seed in fast mode (default 0). */
  seed?: number;
  /** Fewest eigenvalues for a power-law fit (default 50). */
  minEvals?: number;
  /** Eigenvalues at or below this are left out of the fit (default 1e-5). */
  evalsThresh?: number;
  /** Keep the singular values in each result's `values` (for plots; analyzeModel's keepSpectra). */
  keepValues?: boolean;
}

/** Σ w² in float64. */
export function sumOfSquares(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return s;
}

/** How many singular values fast mode computes for a matrix of this shape (K when that is all of them). */
export function fastRank(shape: readonly [number, number], opts: MatrixOptions): number {
  const k = opts.fastK ?? FAST_K;
  if (!Number.isInteger(k) || k < 1) throw new LowrankError('E_USAGE', `fastK must be a positive integer, got ${k}`);
  return Math.min(k, shape[0], shape[1]);
}

/** The spectrum options for values computed from `w` (exact, or the top k with ‖W‖_F² from the data). */
export function spectrumOptions(w: Tensor<FloatDType>, exact: boolean, opts: MatrixOptions): SpectrumOptions {
  return {
    rest: exact ? 'zero' : 'unknown',
    frobenius2: exact ? undefined : sumOfSquares(w.data),
    eps: dtypeEps(w.dtype),
    minEvals: opts.minEvals,
    evalsThresh: opts.evalsThresh,
    keepValues: opts.keepValues,
  };
}

/**
 * The spectral metrics of a matrix (a tensor of two or more dimensions, flattened to first × rest;
 * f32/f64 as given, other float types decoded to f32): singular values by linalg.svdvals, or the top
 * 64 by linalg.rsvd with `fast`.
 *
 * @example
 * const m = await analyzeMatrix(await model.readAs('model.layers.0.mlp.down_proj.weight', 'f32'));
 */
export async function analyzeMatrix(w: Tensor, opts: MatrixOptions = {}): Promise<SpectrumMetrics> {
  const a = asMatrix(w);
  const shape = a.shape as [number, number];
  const K = Math.min(...shape);
  const k = opts.fast === true ? fastRank(shape, opts) : K;
  if (k === K) return spectrumMetrics((await svdvals(a)).data, shape, spectrumOptions(a, true, opts));
  const { s } = await rsvd(a, k, { niter: opts.niter ?? 2, seed: opts.seed ?? 0 });
  return spectrumMetrics(s.data, shape, spectrumOptions(a, false, opts));
}
