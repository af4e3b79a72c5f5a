/**
 * Per-layer rank policies for SVD compression of weight matrices: pure functions of the shapes and
 * singular values (descending) of the targeted layers.
 *
 * - `rank:K`: k = min(K, min(m, n)).
 * - `ratio:F`: k = ⌈F·min(m, n)⌉ (a product within 1e-9 of an integer counts as that integer, so
 *   0.3·10 is 3, not 4), at least 1.
 * - `energy:E`: the smallest k with Σ_{i≤k} σᵢ² / Σ σᵢ² ≥ E (1 for an all-zero matrix).
 * - `budget:F`: a global parameter budget, F·Σ m·n over the targeted layers. Every layer that can
 *   save parameters starts at rank 1 (a layer that cannot, see {@link usefulRank}, stays dense and
 *   its m·n counts against the budget); then rank-1 components are added greedily, the one with the
 *   largest *relative* energy gained per parameter, σ_k² / ‖W‖_F² / (m + n), first (ties: lower
 *   layer index, then lower k), while the total fits; a component that does not fit retires its
 *   layer (its later components cost the same and gain no more). A layer's rank never passes its
 *   useful rank. Relative gains make every layer's relative error count alike, whatever its scale.
 * - `heavy-tail[:F]`: after WeLore ("From GaLore to WeLore", METHODS.md #42): one global threshold
 *   τ on the normalised singular values σᵢ/σ₁ of every layer sets k = #{i : σᵢ/σ₁ ≥ τ} (≥ 1); a
 *   layer whose k does not save parameters stays dense (WeLore's non-low-rank components). The
 *   design notes give no value for the threshold, so τ is chosen, as WeLore does to reach a target
 *   compression, as the smallest value among all normalised singular values whose total
 *   (Σ k(m+n) for factored layers + Σ m·n for dense ones) is at most F·Σ m·n; F defaults to 0.5.
 *   This is a documented approximation of WeLore's rule, not a reproduction of its code.
 *
 * A layer is factored only when k·(m + n) < m·n; otherwise the compressor leaves it dense.
 */
import { LowrankError } from '../core/errors.js';
import { sumSquares } from '../linalg/check.js';

/** A rank policy. */
export type RankPolicy =
  | { readonly kind: 'rank'; readonly rank: number }
  | { readonly kind: 'ratio'; readonly ratio: number }
  | { readonly kind: 'energy'; readonly energy: number }
  | { readonly kind: 'budget'; readonly fraction: number }
  | { readonly kind: 'heavy-tail'; readonly fraction: number };

/** One targeted layer as the global policies see it: its shape and singular values (descending). */
export interface LayerSpectrum {
  readonly m: number;
  readonly n: number;
  readonly sigma: ArrayLike<number>;
}

/** The fraction `heavy-tail` keeps when none is given. */
export const HEAVY_TAIL_DEFAULT = 0.5;

/**
 * Parses `rank:64`, `ratio:0.5`, `energy:0.95`, `budget:0.5`, `heavy-tail` or `heavy-tail:0.4`.
 *
 * @example
 * parsePolicy('energy:0.95'); // { kind: 'energy', energy: 0.95 }
 */
export function parsePolicy(text: string): RankPolicy {
  const m = /^\s*([a-z-]+)\s*(?::\s*(\S+)\s*)?$/.exec(text);
  const usage = `policy '${text}' is not one of rank:K, ratio:F, energy:E, budget:F, heavy-tail[:F]`;
  if (m === null) throw new LowrankError('E_USAGE', usage);
  const [, kind, raw] = m;
  const value = raw === undefined ? undefined : Number(raw);
  if (raw !== undefined && !Number.isFinite(value)) throw new LowrankError('E_USAGE', `${usage} ('${raw}' is not a number)`);
  let policy: RankPolicy;
  if (kind === 'heavy-tail') policy = { kind, fraction: value ?? HEAVY_TAIL_DEFAULT };
  else if (value === undefined) throw new LowrankError('E_USAGE', `${usage} (${kind} needs a value)`);
  else if (kind === 'rank') policy = { kind, rank: value };
  else if (kind === 'ratio') policy = { kind, ratio: value };
  else if (kind === 'energy') policy = { kind, energy: value };
  else if (kind === 'budget') policy = { kind, fraction: value };
  else throw new LowrankError('E_USAGE', usage);
  checkPolicy(policy);
  return policy;
}

/** The policy written back as text (`energy:0.95`). */
export function formatPolicy(p: RankPolicy): string {
  switch (p.kind) {
    case 'rank':
      return `rank:${p.rank}`;
    case 'ratio':
      return `ratio:${p.ratio}`;
    case 'energy':
      return `energy:${p.energy}`;
    default:
      return `${p.kind}:${p.fraction}`;
  }
}

/** Checks a policy's value range; throws E_USAGE naming what is wrong. */
export function checkPolicy(p: RankPolicy): void {
  const frac = (x: number, what: string): void => {
    if (!(typeof x === 'number' && x > 0 && x <= 1)) throw new LowrankError('E_USAGE', `${what} must be a number in (0, 1], got ${String(x)}`);
  };
  switch (p.kind) {
    case 'rank':
      if (!Number.isSafeInteger(p.rank) || p.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${String(p.rank)}`);
      return;
    case 'ratio':
      return frac(p.ratio, 'ratio');
    case 'energy':
      return frac(p.energy, 'energy');
    case 'budget':
    case 'heavy-tail':
      return frac(p.fraction, `${p.kind} fraction`);
    default:
      throw new LowrankError('E_USAGE', `unknown policy kind '${String((p as { kind: unknown }).kind)}'`);
  }
}

/** True when the policy needs the singular values of the layers before choosing ranks. */
export function needsSpectra(p: RankPolicy): boolean {
  return p.kind !== 'rank' && p.kind !== 'ratio';
}

/**
 * The largest rank whose factors save parameters: the largest k with k·(m + n) < m·n (0 when even
 * rank 1 saves nothing).
 *
 * @example
 * usefulRank(64, 64); // 31
 */
export function usefulRank(m: number, n: number): number {
  return Math.ceil((m * n) / (m + n)) - 1;
}

/** k = min(K, min(m, n)). @example fixedRank(64, 32, 16); // 16 */
export function fixedRank(rank: number, m: number, n: number): number {
  return Math.min(rank, m, n);
}

/** k = ⌈F·min(m, n)⌉, at least 1. @example ratioRank(0.5, 48, 96); // 24 */
export function ratioRank(ratio: number, m: number, n: number): number {
  const q = Math.min(m, n);
  return Math.max(1, Math.min(q, Math.ceil(ratio * q - 1e-9)));
}

/**
 * The smallest k with Σ_{i≤k} σᵢ² / Σ σᵢ² ≥ E (1 for an all-zero spectrum).
 *
 * @example
 * energyRank([3, 1, 0.1], 0.9); // 1 (9 / 10.01 ≥ 0.9)
 */
export function energyRank(sigma: ArrayLike<number>, energy: number): number {
  let total = 0;
  for (let i = 0; i < sigma.length; i++) total += sigma[i] * sigma[i];
  if (total === 0) return 1;
  let acc = 0;
  for (let i = 0; i < sigma.length; i++) {
    acc += sigma[i] * sigma[i];
    if (acc / total >= energy) return i + 1;
  }
  return sigma.length;
}

/** The cost in parameters of a layer at rank k: k·(m + n) when that saves, else m·n (dense). */
export function layerCost(k: number, m: number, n: number): number {
  return k * (m + n) < m * n ? k * (m + n) : m * n;
}

/**
 * Ranks under a global parameter budget F·Σ m·n, greedily by relative energy per parameter (see
 * the module notes). A layer that cannot save parameters gets rank min(m, n) (left dense).
 *
 * @example
 * const ranks = budgetRanks(layers.map((l) => ({ m: l.m, n: l.n, sigma: l.s })), 0.5);
 */
export function budgetRanks(layers: readonly LayerSpectrum[], fraction: number): number[] {
  const budget = fraction * layers.reduce((s, l) => s + l.m * l.n, 0);
  const ranks = layers.map((l) => (usefulRank(l.m, l.n) >= 1 ? 1 : Math.min(l.m, l.n)));
  let used = layers.reduce((s, l, i) => s + layerCost(ranks[i], l.m, l.n), 0);
  if (used > budget) throw new LowrankError('E_USAGE', `budget ${fraction} is too small: rank 1 in every layer already needs ${used} parameters of ${Math.floor(budget)}`);
  const cand: { layer: number; k: number; ratio: number }[] = [];
  layers.forEach((l, layer) => {
    const norm = sumSquares(l.sigma);
    const max = Math.min(usefulRank(l.m, l.n), l.sigma.length);
    for (let k = 2; k <= max; k++) cand.push({ layer, k, ratio: norm === 0 ? 0 : (l.sigma[k - 1] * l.sigma[k - 1]) / norm / (l.m + l.n) });
  });
  cand.sort((a, b) => b.ratio - a.ratio || a.layer - b.layer || a.k - b.k);
  const retired = new Set<number>();
  for (const c of cand) {
    if (retired.has(c.layer)) continue;
    const cost = layers[c.layer].m + layers[c.layer].n;
    if (used + cost <= budget) {
      ranks[c.layer] = c.k;
      used += cost;
    } else retired.add(c.layer);
  }
  return ranks;
}

/**
 * WeLore-style ranks (see the module notes): one global threshold on σᵢ/σ₁, the smallest that keeps
 * the total within F·Σ m·n. Layers whose rank saves nothing get their full count and stay dense.
 *
 * @example
 * const ranks = heavyTailRanks(layers, 0.5);
 */
export function heavyTailRanks(layers: readonly LayerSpectrum[], fraction: number): number[] {
  const budget = fraction * layers.reduce((s, l) => s + l.m * l.n, 0);
  const normed = layers.map((l) => {
    const top = l.sigma.length > 0 ? l.sigma[0] : 0;
    return Array.from(l.sigma, (s) => (top > 0 ? s / top : 0));
  });
  const ranksAt = (tau: number): number[] => normed.map((v) => Math.max(1, v.filter((x) => x >= tau).length));
  const total = (ks: number[]): number => ks.reduce((s, k, i) => s + layerCost(k, layers[i].m, layers[i].n), 0);
  // Candidate thresholds, ascending; the total is non-increasing in τ, so search for the smallest that fits.
  const taus = [...new Set(normed.flat().filter((x) => x > 0))].sort((a, b) => a - b);
  if (taus.length === 0) return layers.map(() => 1);
  let lo = 0;
  let hi = taus.length - 1;
  if (total(ranksAt(taus[hi])) > budget) {
    throw new LowrankError('E_USAGE', `heavy-tail fraction ${fraction} is too small: the highest threshold already needs ${total(ranksAt(taus[hi]))} parameters of ${Math.floor(budget)}`);
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (total(ranksAt(taus[mid])) <= budget) hi = mid;
    else lo = mid + 1;
  }
  return ranksAt(taus[lo]).map((k, i) => (layerCost(k, layers[i].m, layers[i].n) === layers[i].m * layers[i].n ? Math.min(layers[i].m, layers[i].n) : k));
}

/**
 * Every layer's rank under a policy. `rank` and `ratio` use only the shapes; the others need each
 * layer's singular values.
 *
 * @example
 * const ranks = chooseRanks(parsePolicy('energy:0.95'), layers);
 */
export function chooseRanks(p: RankPolicy, layers: readonly LayerSpectrum[]): number[] {
  checkPolicy(p);
  switch (p.kind) {
    case 'rank':
      return layers.map((l) => fixedRank(p.rank, l.m, l.n));
    case 'ratio':
      return layers.map((l) => ratioRank(p.ratio, l.m, l.n));
    case 'energy':
      return layers.map((l) => energyRank(l.sigma, p.energy));
    case 'budget':
      return budgetRanks(layers, p.fraction);
    case 'heavy-tail':
      return heavyTailRanks(layers, p.fraction);
  }
}
