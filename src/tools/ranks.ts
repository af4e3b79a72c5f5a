/**
 * Rank rules for truncating a spectrum: a fixed cap, or kohya-ss sd-scripts' dynamic rules
 * (`networks/resize_lora.py`: sv_ratio, sv_fro, sv_cumulative), plus the statistics kohya reports
 * and the Eckart–Young optimum of a truncation. Shared by LoRA extraction and resizing.
 */
import { LowrankError } from '../core/errors.js';

/** The dynamic rank rules of kohya's resize_lora.py. */
export type RankRuleName = 'sv_ratio' | 'sv_fro' | 'sv_cumulative';

/** A dynamic rank rule and its parameter. */
export interface RankRule {
  /**
   * - `sv_ratio`: keep every σ_i > σ_max / value (value ≥ 1);
   * - `sv_fro`: the smallest k with Σ_{i≤k} σ_i² / Σ σ_i² ≥ value² (Frobenius norm retained ≥ value, 0 < value ≤ 1);
   * - `sv_cumulative`: the smallest k with Σ_{i≤k} σ_i / Σ σ_i ≥ value (0 < value ≤ 1).
   */
  readonly rule: RankRuleName;
  readonly value: number;
}

/** kohya resize_lora.py's MIN_SV: a spectrum with σ_max at most this is a zero matrix there. */
export const KOHYA_MIN_SV = 1e-6;

/** The rule names {@link parseRankRule} accepts. */
export const RANK_RULES: readonly RankRuleName[] = ['sv_ratio', 'sv_fro', 'sv_cumulative'];

/**
 * Parses `rule:value` as the CLI takes it (`sv_ratio:4`, `sv_fro:0.9`, `sv_cumulative:0.95`).
 *
 * @example
 * const rule = parseRankRule('sv_fro:0.95'); // { rule: 'sv_fro', value: 0.95 }
 */
export function parseRankRule(text: string): RankRule {
  const m = /^\s*([a-z_]+)\s*[:=]\s*([^\s]+)\s*$/.exec(text);
  if (m === null || !(RANK_RULES as readonly string[]).includes(m[1])) {
    throw new LowrankError('E_USAGE', `dynamic rank rule '${text}' is not one of ${RANK_RULES.map((r) => `${r}:X`).join(', ')}`);
  }
  const rule = { rule: m[1] as RankRuleName, value: Number(m[2]) };
  checkRankRule(rule);
  return rule;
}

/** Checks a rule's name and value range; throws E_USAGE naming what is wrong. */
export function checkRankRule(rule: RankRule): void {
  const { rule: name, value } = rule;
  if (!(RANK_RULES as readonly string[]).includes(name)) throw new LowrankError('E_USAGE', `unknown rank rule '${String(name)}' (use ${RANK_RULES.join(', ')})`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new LowrankError('E_USAGE', `${name} needs a number, got ${String(value)}`);
  if (name === 'sv_ratio' && value < 1) throw new LowrankError('E_USAGE', `sv_ratio keeps σ > σ_max / value, so value must be ≥ 1, got ${value}`);
  if (name !== 'sv_ratio' && !(value > 0 && value <= 1)) throw new LowrankError('E_USAGE', `${name} is a retained fraction in (0, 1], got ${value}`);
}

/** Checks that σ is a non-empty, finite, non-negative, non-increasing sequence. */
function checkSpectrum(sigma: ArrayLike<number>): void {
  if (sigma.length === 0) throw new LowrankError('E_USAGE', 'the spectrum is empty');
  for (let i = 0; i < sigma.length; i++) {
    const s = sigma[i];
    if (!Number.isFinite(s)) throw new LowrankError('E_NONFINITE', `singular value ${i} is ${s}`);
    if (s < 0) throw new LowrankError('E_USAGE', `singular value ${i} is negative (${s})`);
    if (i > 0 && s > sigma[i - 1]) throw new LowrankError('E_USAGE', `singular values must be in descending order (σ_${i} = ${s} > σ_${i - 1} = ${sigma[i - 1]})`);
  }
}

/** The first index i with cum[i] ≥ target (torch/numpy searchsorted, side 'left'), or cum.length. */
function searchLeft(cum: Float64Array, target: number): number {
  let lo = 0;
  let hi = cum.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Running sums of f(σ_i), divided by their total, or by a total known for the whole spectrum when σ is its leading part (sequential float64 sums). */
function normalizedCumsum(sigma: ArrayLike<number>, f: (s: number) => number, total?: number): Float64Array {
  const cum = new Float64Array(sigma.length);
  let acc = 0;
  for (let i = 0; i < sigma.length; i++) {
    acc += f(sigma[i]);
    cum[i] = acc;
  }
  for (let i = 0; i < cum.length; i++) cum[i] /= total ?? acc;
  return cum;
}

/**
 * The rank a dynamic rule keeps from a descending spectrum σ, as kohya's resize_lora.py computes it:
 * sv_ratio keeps the σ_i > σ_max / value; sv_cumulative and sv_fro take the smallest k whose share
 * of Σσ (resp. Σσ²) reaches value (resp. value²), found by a left binary search over the float64
 * running sums divided by their total. The result is at least 1 and at most #σ, then capped at
 * `maxRank`; a zero spectrum gives 1. "Zero" means σ_max ≤ `zeroSv`: 0 by default, since the scale
 * of a weight difference says nothing about whether it matters; kohya's resize uses
 * {@link KOHYA_MIN_SV} (1e-6).
 *
 * @example
 * dynamicRank([10, 5, 2, 1, 0.5], { rule: 'sv_ratio', value: 4 });       // 2 (σ > 2.5)
 * dynamicRank([10, 5, 2, 1, 0.5], { rule: 'sv_cumulative', value: 0.9 }); // 3 (17/18.5 ≥ 0.9)
 * dynamicRank(s, { rule: 'sv_fro', value: 0.95 }, 64);                    // at most 64
 */
export function dynamicRank(sigma: ArrayLike<number>, rule: RankRule, maxRank = Infinity, zeroSv = 0): number {
  checkRankRule(rule);
  checkSpectrum(sigma);
  if (!(maxRank >= 1)) throw new LowrankError('E_USAGE', `maxRank must be at least 1, got ${maxRank}`);
  if (!(zeroSv >= 0)) throw new LowrankError('E_USAGE', `zeroSv must be a non-negative number, got ${zeroSv}`);
  const n = sigma.length;
  if (sigma[0] <= zeroSv) return 1;
  let k: number;
  if (rule.rule === 'sv_ratio') {
    const min = sigma[0] / rule.value;
    k = 0;
    for (let i = 0; i < n; i++) if (sigma[i] > min) k++;
  } else if (rule.rule === 'sv_cumulative') {
    k = searchLeft(normalizedCumsum(sigma, (s) => s), rule.value) + 1;
  } else {
    k = searchLeft(normalizedCumsum(sigma, (s) => s * s), rule.value * rule.value) + 1;
  }
  return Math.min(Math.max(1, Math.min(k, n)), Math.floor(maxRank));
}

/**
 * {@link dynamicRank} from the leading part of a spectrum (a randomized SVD's) and the exact Σσ²
 * of the whole one (‖M‖²_F): sv_ratio needs only σ₁ and is decided when its cut or the cap falls
 * inside the part; sv_fro measures the part's running Σσ² against the exact total (the part's
 * values are lower estimates, so the rank is at least the exact rule's); sv_cumulative needs Σσ
 * of the whole spectrum, which no leading part gives: undefined, as for any rule the part cannot
 * decide.
 *
 * @example
 * dynamicRankOfLeading(sketched, normSq, { rule: 'sv_fro', value: 0.9 }, 16); // ≤ 16
 */
export function dynamicRankOfLeading(leading: ArrayLike<number>, totalSquares: number, rule: RankRule, maxRank: number): number | undefined {
  checkRankRule(rule);
  checkSpectrum(leading);
  const n = leading.length;
  if (leading[0] === 0) return 1;
  const cap = Math.floor(maxRank);
  if (rule.rule === 'sv_cumulative') return undefined;
  if (rule.rule === 'sv_ratio') {
    const min = leading[0] / rule.value;
    let k = 0;
    while (k < n && leading[k] > min) k++;
    return k < n || cap <= n ? Math.max(1, Math.min(k, cap)) : undefined;
  }
  const i = searchLeft(normalizedCumsum(leading, (s) => s * s, totalSquares), rule.value * rule.value);
  return i < n || cap <= n ? Math.max(1, Math.min(i + 1, cap)) : undefined;
}

/** What a truncation to rank r keeps of a spectrum (kohya's resize report, plus Eckart–Young). */
export interface RankStats {
  readonly rank: number;
  /** Σ_{i≤r} σ_i / Σ σ_i (kohya's `sum_retained`). */
  readonly sumRetained: number;
  /** √(Σ_{i≤r} σ_i² / Σ σ_i²): the share of the Frobenius norm kept (kohya's `fro_retained`). */
  readonly froRetained: number;
  /** Σ_{i≤r} σ_i² / Σ σ_i²: the share of the energy kept. */
  readonly energyRetained: number;
  /** σ_1 / σ_r (kohya's `max_ratio`); Infinity when σ_r = 0 < σ_1, 1 for a zero spectrum. */
  readonly maxRatio: number;
  /** √(Σ σ_i²) = ‖M‖_F. */
  readonly norm: number;
  /** √(Σ_{i>r} σ_i²): the Eckart–Young optimum ‖M − M_r‖_F, the least error of any rank-r approximation. */
  readonly tailNorm: number;
}

/**
 * The statistics of keeping the first r singular values of σ (descending). A zero spectrum keeps
 * everything of nothing: the retained shares are 1 and the tail 0.
 *
 * @example
 * const st = rankStats(s, 16);
 * console.log(st.froRetained, st.tailNorm); // share of ‖M‖_F kept, best possible error
 */
export function rankStats(sigma: ArrayLike<number>, r: number): RankStats {
  checkSpectrum(sigma);
  if (!Number.isInteger(r) || r < 1 || r > sigma.length) throw new LowrankError('E_USAGE', `rank must be an integer in 1..${sigma.length}, got ${r}`);
  let sum = 0;
  let sumR = 0;
  let sq = 0;
  let sqR = 0;
  let tail = 0;
  for (let i = 0; i < sigma.length; i++) {
    const s = sigma[i];
    sum += s;
    sq += s * s;
    if (i < r) {
      sumR += s;
      sqR += s * s;
    }
  }
  // The tail summed on its own, smallest first, so it keeps its accuracy when it is tiny.
  for (let i = sigma.length - 1; i >= r; i--) tail += sigma[i] * sigma[i];
  const zero = sigma[0] === 0;
  return {
    rank: r,
    sumRetained: zero ? 1 : sumR / sum,
    froRetained: zero ? 1 : Math.sqrt(sqR / sq),
    energyRetained: zero ? 1 : sqR / sq,
    maxRatio: zero ? 1 : sigma[r - 1] === 0 ? Infinity : sigma[0] / sigma[r - 1],
    norm: Math.sqrt(sq),
    tailNorm: Math.sqrt(tail),
  };
}
