/** The fuzzer's random choices, all from one seeded stream, so a case reproduces from (seed, index). */
import { rng } from '../src/core/rng.js';

export interface Rand {
  /** Uniform integer in [0, n). */
  below(n: number): number;
  /** Uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Uint8Array;
}

export function rand(seed: number): Rand {
  const g = rng(seed);
  const below = (n: number): number => Math.floor(g.uniform() * n);
  return {
    below,
    between: (lo, hi) => lo + below(hi - lo + 1),
    chance: (p) => g.uniform() < p,
    pick: (items) => items[below(items.length)],
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = g.uint32() & 0xff;
      return out;
    },
  };
}

/** The seed of case `index` of a run seeded `seed` (splitmix-style mixing, so neighbours differ). */
export function caseSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}
