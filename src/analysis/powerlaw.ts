/**
 * The power-law fit of an eigenvalue spectrum (the empirical spectral density, ESD, of WᵀW), as
 * WeightWatcher 0.7.5 fits it (`WW_powerlaw.py`, class WWFit, its default `pl_package`): the
 * continuous maximum-likelihood estimator of Clauset, Shalizi and Newman (2009) with xmin chosen by
 * the Kolmogorov–Smirnov distance.
 *
 * With the values sorted ascending, x_0 ≤ … ≤ x_{N−1}, every value but the largest is a candidate
 * xmin = x_i. Its tail holds the n = N − i values x_i … x_{N−1}, and
 *
 *   α_i = 1 + n / Σ_{j ≥ i} ln(x_j / x_i)
 *   D_i = max_{j ≥ i} | 1 − (x_j / x_i)^(1 − α_i) − (j − i)/n |     (D_i = 1 when α_i ≤ 1)
 *
 * (the empirical CDF is taken as (j − i)/n at the j-th tail value, as WeightWatcher and the
 * `powerlaw` package do). The fit is the first i with the smallest D_i.
 */

/** WeightWatcher's EVALS_THRESH: eigenvalues at or below it are left out of the fit. */
export const EVALS_THRESH = 1e-5;
/** WeightWatcher's documented minimum number of eigenvalues for a power-law fit. */
export const MIN_EVALS = 50;
/** WeightWatcher's OVER_TRAINED_THRESH: α below it draws the 'over-trained' warning. */
export const OVER_TRAINED_THRESH = 2;
/** WeightWatcher's UNDER_TRAINED_THRESH: α above it draws the 'under-trained' warning. */
export const UNDER_TRAINED_THRESH = 6;

/** A power-law fit of a tail. */
export interface PowerLawFit {
  /** The exponent α of p(x) ∝ x^(−α) for x ≥ xmin. */
  readonly alpha: number;
  /** The Kolmogorov–Smirnov distance between the tail's empirical CDF and the fitted one. */
  readonly D: number;
  /** The lower end of the tail. */
  readonly xmin: number;
  /** The largest value (the top of the tail). */
  readonly xmax: number;
  /** How many values are ≥ xmin (WeightWatcher's num_pl_spikes). */
  readonly numTail: number;
  /** The standard error of α, (α − 1)/√numTail. */
  readonly sigma: number;
}

/**
 * Fits a power law to the tail of `values` (all must be positive and finite; any order). Needs at
 * least two values; returns null with fewer. α_i and D_i depend only on the values ≥ x_i, so a fit
 * of the top k values of a spectrum is the full fit with its xmin candidates restricted to those k
 * (what `--fast` does).
 *
 * @example
 * const fit = fitPowerLaw(sigma.map((s) => s * s)); // { alpha, D, xmin, numTail, ... }
 */
export function fitPowerLaw(values: ArrayLike<number>): PowerLawFit | null {
  const x = Float64Array.from(values).sort();
  const N = x.length;
  if (N < 2) return null;
  for (let i = 0; i < N; i++) {
    if (!(x[i] > 0) || !Number.isFinite(x[i])) throw new RangeError(`fitPowerLaw: values must be positive and finite, got ${x[i]}`);
  }
  const logx = new Float64Array(N);
  for (let i = 0; i < N; i++) logx[i] = Math.log(x[i]);
  // suffix[i] = Σ_{j ≥ i} ln x_j, summed from the top so each candidate's sum is one step.
  const suffix = new Float64Array(N + 1);
  for (let i = N - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + logx[i];

  let best = -1;
  let bestD = Infinity;
  let bestAlpha = NaN;
  for (let i = 0; i < N - 1; i++) {
    const n = N - i;
    const denom = suffix[i] - n * logx[i];
    const alpha = 1 + n / denom;
    let D: number;
    if (!(denom > 0)) {
      // Every tail value equals x_i: numpy gives α = inf and a theoretical CDF of 0 throughout.
      D = (n - 1) / n;
    } else if (alpha <= 1) {
      D = 1;
    } else {
      // D_i, stopped early once it cannot beat the best so far (argmin keeps the first minimum).
      const e = 1 - alpha;
      D = 0;
      for (let j = i; j < N; j++) {
        const diff = Math.abs(1 - Math.exp(e * (logx[j] - logx[i])) - (j - i) / n);
        if (diff > D) {
          D = diff;
          if (D >= bestD) break;
        }
      }
    }
    if (D < bestD) {
      bestD = D;
      best = i;
      bestAlpha = alpha;
    }
  }
  const numTail = N - best;
  return { alpha: bestAlpha, D: bestD, xmin: x[best], xmax: x[N - 1], numTail, sigma: (bestAlpha - 1) / Math.sqrt(numTail) };
}

/** WeightWatcher's warning for a layer's α: 'over-trained' below 2, 'under-trained' above 6. */
export function alphaWarning(alpha: number | null): 'over-trained' | 'under-trained' | null {
  if (alpha === null) return null;
  if (alpha < OVER_TRAINED_THRESH) return 'over-trained';
  if (alpha > UNDER_TRAINED_THRESH) return 'under-trained';
  return null;
}
