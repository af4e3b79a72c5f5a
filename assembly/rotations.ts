/**
 * Sequences of plane rotations applied to the rows of a row-major matrix, the O(n³) part of the
 * bidiagonal and tridiagonal QR iterations. The iteration itself (float64, in JavaScript) only logs
 * its rotations; this kernel applies a log to a range of columns, in strips narrow enough that
 * every row of the strip stays in cache while the whole log streams past, so threads can take
 * disjoint column ranges of one log without talking to each other.
 *
 * A log entry t is rows[t] = 2·a + (b == a − 1 ? 1 : 0) (the rotated rows are a and b = a ± 1) and
 * cs[2t], cs[2t + 1] = c, s of element type T: row_a ← c·row_a + s·row_b, row_b ← c·row_b − s·row_a.
 * A QR sweep logs chains (a, b) then (b, b ± 1); two chained rotations are applied in one pass, so
 * the shared row is loaded and stored once.
 */
import { madd } from './vector';

/** Bytes of one row of a strip: 512 keeps a 2048-row strip within a 1 MiB slice of L2. */
const STRIP_BYTES: i32 = 512;

function rotate<T>(x: usize, ld: i32, c0: i32, c1: i32, rows: usize, cs: usize, count: i32): void {
  const lanes = 16 / sizeof<T>();
  const strip = STRIP_BYTES / sizeof<T>();
  const ldBytes = <usize>ld * sizeof<T>();
  for (let s0 = c0; s0 < c1; s0 += strip) {
    const width = min(strip, c1 - s0);
    const base = x + <usize>s0 * sizeof<T>();
    let t = 0;
    while (t < count) {
      const code = load<i32>(rows + (<usize>t << 2));
      const a = code >> 1;
      const b = code & 1 ? a - 1 : a + 1;
      const c = load<T>(cs + <usize>(2 * t) * sizeof<T>());
      const s = load<T>(cs + <usize>(2 * t + 1) * sizeof<T>());
      const pa = base + <usize>a * ldBytes;
      const pb = base + <usize>b * ldBytes;
      const vc = v128.splat<T>(c);
      const vs = v128.splat<T>(s);
      const vns = v128.splat<T>(-s);
      if (t + 1 < count && load<i32>(rows + (<usize>(t + 1) << 2)) == 2 * b + (code & 1)) {
        // Chained: (a, b) then (b, e) with e = b ± 1 in the same direction.
        const e = code & 1 ? b - 1 : b + 1;
        const c2 = load<T>(cs + <usize>(2 * t + 2) * sizeof<T>());
        const s2 = load<T>(cs + <usize>(2 * t + 3) * sizeof<T>());
        const pe = base + <usize>e * ldBytes;
        const vc2 = v128.splat<T>(c2);
        const vs2 = v128.splat<T>(s2);
        const vns2 = v128.splat<T>(-s2);
        let j = 0;
        for (; j + lanes <= width; j += lanes) {
          const o = <usize>j * sizeof<T>();
          const xa = v128.load(pa + o);
          const xb = v128.load(pb + o);
          const xe = v128.load(pe + o);
          v128.store(pa + o, madd<T>(vc, xa, v128.mul<T>(vs, xb)));
          const yb = madd<T>(vc, xb, v128.mul<T>(vns, xa));
          v128.store(pb + o, madd<T>(vc2, yb, v128.mul<T>(vs2, xe)));
          v128.store(pe + o, madd<T>(vc2, xe, v128.mul<T>(vns2, yb)));
        }
        for (; j < width; j++) {
          const o = <usize>j * sizeof<T>();
          const xa = load<T>(pa + o);
          const xb = load<T>(pb + o);
          const xe = load<T>(pe + o);
          store<T>(pa + o, c * xa + s * xb);
          const yb = c * xb - s * xa;
          store<T>(pb + o, c2 * yb + s2 * xe);
          store<T>(pe + o, c2 * xe - s2 * yb);
        }
        t += 2;
        continue;
      }
      let j = 0;
      for (; j + lanes <= width; j += lanes) {
        const o = <usize>j * sizeof<T>();
        const xa = v128.load(pa + o);
        const xb = v128.load(pb + o);
        v128.store(pa + o, madd<T>(vc, xa, v128.mul<T>(vs, xb)));
        v128.store(pb + o, madd<T>(vc, xb, v128.mul<T>(vns, xa)));
      }
      for (; j < width; j++) {
        const o = <usize>j * sizeof<T>();
        const xa = load<T>(pa + o);
        const xb = load<T>(pb + o);
        store<T>(pa + o, c * xa + s * xb);
        store<T>(pb + o, c * xb - s * xa);
      }
      t++;
    }
  }
}

/** Applies a float32 rotation log (count entries) to columns c0 … c1 of x (row stride ld). */
export function srotate(x: usize, ld: i32, c0: i32, c1: i32, rows: usize, cs: usize, count: i32): void {
  rotate<f32>(x, ld, c0, c1, rows, cs, count);
}

/** The same for float64. */
export function drotate(x: usize, ld: i32, c0: i32, c1: i32, rows: usize, cs: usize, count: i32): void {
  rotate<f64>(x, ld, c0, c1, rows, cs, count);
}
