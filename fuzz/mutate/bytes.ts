/** Byte-level mutations: they know nothing of the format, so they reach what structure-aware ones do not. */
import type { Rand } from '../rand.js';

/** Values that tend to sit on boundaries when read as lengths, counts or offsets. */
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

function insertAt(b: Uint8Array, at: number, piece: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + piece.length);
  out.set(b.subarray(0, at));
  out.set(piece, at);
  out.set(b.subarray(at), at + piece.length);
  return out;
}

/** One random byte-level change of `b` (a new array; `b` is not modified). `donor` is another file to splice from. */
export function mutateBytes(r: Rand, b: Uint8Array, donor?: Uint8Array): { bytes: Uint8Array; what: string } {
  const at = (): number => r.below(b.length + 1);
  const op = r.below(9);
  if (b.length === 0 && op !== 3) return { bytes: r.bytes(r.between(1, 16)), what: 'random bytes into an empty file' };
  const out = new Uint8Array(b);
  switch (op) {
    case 0: {
      const n = r.between(1, 8);
      for (let k = 0; k < n; k++) out[r.below(out.length)] ^= 1 << r.below(8);
      return { bytes: out, what: `flip ${n} bits` };
    }
    case 1: {
      const i = r.below(out.length);
      out[i] = r.pick([0, 0xff, 0x7f, 0x80, r.below(256), 0x22, 0x5c, 0x7b, 0x5b]);
      return { bytes: out, what: `replace byte ${i}` };
    }
    case 2: {
      // A 32- or 64-bit little-endian boundary value: lengths and offsets in binary headers.
      const i = r.below(Math.max(1, out.length - 3));
      const v = r.pick(INTERESTING_32);
      const view = new DataView(out.buffer);
      if (i + 4 <= out.length) view.setUint32(i, v, true);
      if (r.chance(0.3) && i + 8 <= out.length) view.setBigUint64(i, r.pick([0n, 2n ** 63n, 2n ** 64n - 1n, BigInt(v) << 32n]), true);
      return { bytes: out, what: `write ${v} at ${i}` };
    }
    case 3: {
      const i = at();
      return { bytes: insertAt(b, i, r.bytes(r.between(1, 32))), what: `insert random bytes at ${i}` };
    }
    case 4: {
      const i = r.below(b.length);
      const n = r.between(1, Math.min(64, b.length - i));
      const cut = new Uint8Array(b.length - n);
      cut.set(b.subarray(0, i));
      cut.set(b.subarray(i + n), i);
      return { bytes: cut, what: `delete ${n} bytes at ${i}` };
    }
    case 5: {
      const n = r.below(b.length);
      return { bytes: b.slice(0, n), what: `truncate to ${n}` };
    }
    case 6: {
      const i = r.below(b.length);
      const n = r.between(1, Math.min(256, b.length - i));
      return { bytes: insertAt(b, at(), b.slice(i, i + n)), what: `duplicate ${n} bytes from ${i}` };
    }
    case 7: {
      if (donor === undefined || donor.length === 0) return { bytes: b.slice(0, at()), what: 'truncate' };
      const cut = r.below(b.length);
      const from = r.below(donor.length);
      const spliced = new Uint8Array(cut + donor.length - from);
      spliced.set(b.subarray(0, cut));
      spliced.set(donor.subarray(from), cut);
      return { bytes: spliced, what: `splice at ${cut} with a donor from ${from}` };
    }
    default: {
      const extra = r.between(1, 4096);
      return { bytes: insertAt(b, b.length, r.chance(0.5) ? new Uint8Array(extra) : r.bytes(extra)), what: `append ${extra} bytes` };
    }
  }
}
