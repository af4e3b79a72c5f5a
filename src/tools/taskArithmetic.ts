/**
 * Merging task vectors (the updates ΔW_k of several fine-tunes of one weight) elementwise, with the
 * definitions of PEFT's `utils/merge_utils.py` (the TIES-Merging and DARE papers):
 *
 * - `magnitude_prune`: keep the ⌊density·n⌋ largest-magnitude entries of each ΔW_k, then Σ w_k·ΔW_k.
 * - `ties`: magnitude-prune each ΔW_k; elect a sign per entry, the sign of Σ_k ΔW_k (`total`) or of
 *   Σ_k sign(ΔW_k) (`frequency`), ties to +; average the weighted entries that agree with it:
 *   Σ_k [sign agrees]·w_k·ΔW_k / max(1, #agreeing).
 * - `dare_linear`: drop each entry with probability 1 − density and divide the kept ones by
 *   density (so the expectation is ΔW_k), then Σ w_k·ΔW_k.
 * - `dare_ties`: DARE's random drop and rescale, then TIES's sign election and disjoint mean.
 *
 * One difference from PEFT: its `random_pruning` calls `torch.div(pruned, density)` and drops the
 * result, so PEFT's DARE does not rescale; here the kept entries are rescaled as the DARE paper
 * (and mergekit) define it.
 */
import { LowrankError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';

/** The elementwise merges. */
export type TaskMerge = 'ties' | 'dare_linear' | 'dare_ties' | 'magnitude_prune';
/** The elementwise merges, for validation. */
export const TASK_MERGES: readonly TaskMerge[] = ['ties', 'dare_linear', 'dare_ties', 'magnitude_prune'];

/** How TIES elects the sign of an entry. */
export type MajoritySign = 'total' | 'frequency';

/** Options of {@link mergeTasks}. */
export interface TaskMergeOptions {
  /** The fraction of entries each task keeps, in (0, 1]; 1 prunes nothing. */
  readonly density: number;
  /** TIES's sign election. Default `total`. */
  readonly majoritySign?: MajoritySign;
  /** The random stream of DARE's drops (required by dare_linear and dare_ties). */
  readonly rng?: Rng;
}

/** Checks a density: a number in (0, 1]. */
export function checkDensity(density: number): void {
  if (!(density > 0 && density <= 1)) throw new LowrankError('E_USAGE', `density must be in (0, 1], got ${density}`);
}

/**
 * Keeps the ⌊density·n⌋ entries of largest magnitude (the first in index order among equal
 * magnitudes at the threshold) and zeroes the rest, in place.
 */
export function magnitudePrune(x: Float64Array, density: number): Float64Array {
  checkDensity(density);
  if (density >= 1) return x;
  const k = Math.floor(density * x.length);
  if (k === 0) return x.fill(0);
  const mags = Float64Array.from(x, Math.abs).sort();
  const threshold = mags[x.length - k];
  let atThreshold = 0;
  for (let i = x.length - k; i < x.length && mags[i] === threshold; i++) atThreshold++;
  for (let i = 0; i < x.length; i++) {
    const m = Math.abs(x[i]);
    if (m > threshold) continue;
    if (m === threshold && atThreshold > 0) atThreshold--;
    else x[i] = 0;
  }
  return x;
}

/** Keeps each entry with probability `density`, divided by density; zeroes the rest; in place. */
export function randomPrune(x: Float64Array, density: number, rng: Rng): Float64Array {
  checkDensity(density);
  if (density >= 1) return x;
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform() < density ? x[i] / density : 0;
  return x;
}

/**
 * Merges equal-length task vectors by one of {@link TASK_MERGES}; the inputs are pruned in place.
 *
 * @example
 * const merged = mergeTasks('ties', [d1, d2], [1, 1], { density: 0.2 });
 */
export function mergeTasks(method: TaskMerge, tasks: Float64Array[], weights: readonly number[], opts: TaskMergeOptions): Float64Array {
  checkDensity(opts.density);
  if (tasks.length !== weights.length) throw new LowrankError('E_USAGE', `${tasks.length} tasks for ${weights.length} weights`);
  const n = tasks[0]?.length ?? 0;
  if (tasks.some((t) => t.length !== n)) throw new LowrankError('E_SHAPE', 'the task vectors differ in length');
  const random = method === 'dare_linear' || method === 'dare_ties';
  if (random && opts.rng === undefined) throw new LowrankError('E_USAGE', `${method} needs a random stream (rng)`);
  for (const t of tasks) {
    if (random) randomPrune(t, opts.density, opts.rng as Rng);
    else magnitudePrune(t, opts.density);
  }
  const out = new Float64Array(n);
  if (method === 'magnitude_prune' || method === 'dare_linear') {
    tasks.forEach((t, k) => {
      for (let i = 0; i < n; i++) out[i] += weights[k] * t[i];
    });
    return out;
  }
  const bySign = (opts.majoritySign ?? 'total') === 'frequency';
  for (let i = 0; i < n; i++) {
    let vote = 0;
    for (const t of tasks) vote += bySign ? Math.sign(t[i]) : t[i];
    const elected = vote >= 0 ? 1 : -1;
    let sum = 0;
    let count = 0;
    tasks.forEach((t, k) => {
      if (Math.sign(t[i]) === elected) {
        sum += weights[k] * t[i];
        count++;
      }
    });
    out[i] = sum / Math.max(1, count);
  }
  return out;
}
