/**
 * Name lookups in long lists without a Map: a Map of two million strings takes seconds and
 * hundreds of MB to build, and a hostile safetensors header can name two million tensors. Pure (no
 * file system), so the browser can use it too.
 */
import { LowrankError } from '../core/errors.js';

/** Positions take the low 27 bits of a key, the hash the 26 above them (53 in all: exact in a double). */
const POSITIONS = 2 ** 27;

/** FNV-1a over UTF-16 code units, cut to 26 bits (exported for the tests that make names collide). */
export function hash26(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 6;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The positions of a list of names, ordered by (hash, name, position) as packed doubles sorted
 * natively. Names that share a hash are ordered by the names themselves, so building is
 * O(n log n) and a lookup O(log n) even when every hash collides; 8 bytes per name.
 */
export class NameIndex {
  private readonly keys: Float64Array;

  constructor(private readonly names: readonly string[]) {
    const n = names.length;
    if (n >= POSITIONS) throw new LowrankError('E_UNSUPPORTED', `${n} names are more than a name index holds (${POSITIONS - 1})`);
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = hash26(names[i]) * POSITIONS + i;
    keys.sort();
    for (let a = 0; a < n; ) {
      const h = Math.floor(keys[a] / POSITIONS);
      let b = a + 1;
      while (b < n && Math.floor(keys[b] / POSITIONS) === h) b++;
      if (b - a > 1) {
        const run = Array.from(keys.subarray(a, b));
        run.sort((x, y) => compareNames(names[x % POSITIONS], names[y % POSITIONS]) || x - y);
        keys.set(run, a);
      }
      a = b;
    }
    this.keys = keys;
  }

  /** The position of `name` in the list (its first, when it is there more than once), or -1. */
  find(name: string): number {
    const h = hash26(name);
    const lo = this.lowerBound(h * POSITIONS);
    const hi = this.lowerBound((h + 1) * POSITIONS);
    let a = lo;
    let b = hi;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (compareNames(this.names[this.keys[mid] % POSITIONS], name) < 0) a = mid + 1;
      else b = mid;
    }
    return a < hi && this.names[this.keys[a] % POSITIONS] === name ? this.keys[a] % POSITIONS : -1;
  }

  /**
   * The first name in list order that an earlier one repeats: the positions of its first and
   * second occurrence, or undefined when all names differ.
   */
  firstDuplicate(): { first: number; second: number } | undefined {
    const k = this.keys;
    let best: { first: number; second: number } | undefined;
    for (let i = 1; i < k.length; i++) {
      const a = k[i - 1] % POSITIONS;
      const b = k[i] % POSITIONS;
      if (Math.floor(k[i - 1] / POSITIONS) !== Math.floor(k[i] / POSITIONS) || this.names[a] !== this.names[b]) continue;
      // Equal names sit together in position order, so `a` precedes `b`; the earliest `b` wins.
      if (best === undefined || b < best.second) best = { first: a, second: b };
    }
    if (best === undefined) return undefined;
    return { first: this.find(this.names[best.second]), second: best.second };
  }

  /**
   * For each name of this list, its position in `other` (its first), or -1: one merge of the two
   * sorted orders, without a lookup per name.
   */
  positionsIn(other: NameIndex): Int32Array {
    const out = new Int32Array(this.names.length).fill(-1);
    const theirs = other.keys;
    let j = 0;
    for (let i = 0; i < this.keys.length; i++) {
      const h = Math.floor(this.keys[i] / POSITIONS);
      const name = this.names[this.keys[i] % POSITIONS];
      while (j < theirs.length) {
        const hj = Math.floor(theirs[j] / POSITIONS);
        if (hj > h || (hj === h && compareNames(other.names[theirs[j] % POSITIONS], name) >= 0)) break;
        j++;
      }
      if (j < theirs.length && Math.floor(theirs[j] / POSITIONS) === h && other.names[theirs[j] % POSITIONS] === name) out[this.keys[i] % POSITIONS] = theirs[j] % POSITIONS;
    }
    return out;
  }

  /** The first index whose key is at least `key`. */
  private lowerBound(key: number): number {
    let a = 0;
    let b = this.keys.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (this.keys[mid] < key) a = mid + 1;
      else b = mid;
    }
    return a;
  }
}
