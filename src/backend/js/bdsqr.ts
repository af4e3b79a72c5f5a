/**
 * Singular values (and vectors) of an upper bidiagonal matrix by implicit-shift QR sweeps
 * (Golub–Kahan), with the zero-shift sweeps and relative convergence tests of Demmel and Kahan
 * ("Accurate singular values of bidiagonal matrices", 1990), so that small singular values keep
 * their relative accuracy. Sweeps chase top-to-bottom or bottom-to-top, whichever suits the
 * grading of the current block.
 */
import { LowrankError } from '../../core/errors.js';
import { givens, type RowOps, type Rotation } from './util.js';

/** Unit roundoff of float64. */
const EPS = Number.EPSILON / 2;
/** Relative tolerance of the convergence tests. */
const TOL = 100 * EPS;
/** Smallest normal float64. */
const SAFE_MIN = 2 ** -1022;
/** Sweeps allowed per singular value (times n, as inner steps). */
const MAX_SWEEPS = 6;

/**
 * The smaller singular value of the 2×2 upper triangular [[f, g], [0, h]], computed without
 * cancellation or overflow.
 */
export function smallerSingularValue2x2(f: number, g: number, h: number): number {
  const fa = Math.abs(f);
  const ga = Math.abs(g);
  const ha = Math.abs(h);
  const lo = Math.min(fa, ha);
  const hi = Math.max(fa, ha);
  if (lo === 0) return 0;
  if (ga < hi) {
    // σmax = hi·(√(as² + au) + √(at² + au))/2 with everything scaled by hi; σmin = lo·hi/σmax.
    const as = 1 + lo / hi;
    const at = (hi - lo) / hi;
    const au = (ga / hi) * (ga / hi);
    const c = 2 / (Math.sqrt(as * as + au) + Math.sqrt(at * at + au));
    return lo * c;
  }
  const au = hi / ga;
  if (au === 0) return (lo * hi) / ga;
  const as = 1 + lo / hi;
  const at = (hi - lo) / hi;
  const c = 1 / (Math.sqrt(1 + as * au * (as * au)) + Math.sqrt(1 + at * au * (at * au)));
  return 2 * (lo * c) * au;
}

/**
 * Diagonalizes the upper bidiagonal B (diagonal `d`, superdiagonal `e`; both overwritten) so that
 * `d` ends as the singular values, descending and non-negative. Every rotation applied to B's
 * rows goes to `u` (the first n rows of Uᵀ), every rotation applied to B's columns to `v` (the
 * rows of Vᵀ); either may be undefined. Sign flips (on `v`) and the final sort (on both) go to
 * them too, after every rotation, so A = Uᵀᵀ·B·Vᵀ keeps holding. Throws LowrankError E_NUMERIC
 * when the sweeps do not converge.
 */
export function bidiagonalSvd(d: Float64Array, e: Float64Array, u?: RowOps, v?: RowOps): void {
  const n = d.length;
  if (n === 0) return;
  const rot: Rotation = { c: 1, s: 0, r: 0 };
  const rotU = (a: number, b: number, c: number, s: number): void => {
    if (u !== undefined && (s !== 0 || c !== 1)) u.rotate(a, b, c, s);
  };
  const rotV = (a: number, b: number, c: number, s: number): void => {
    if (v !== undefined && (s !== 0 || c !== 1)) v.rotate(a, b, c, s);
  };

  // Absolute threshold: TOL times an underestimate of the smallest singular value.
  let sminoa = Math.abs(d[0]);
  if (sminoa !== 0) {
    let mu = sminoa;
    for (let i = 1; i < n; i++) {
      mu = Math.abs(d[i]) * (mu / (mu + Math.abs(e[i - 1])));
      if (mu < sminoa) sminoa = mu;
      if (sminoa === 0) break;
    }
  }
  sminoa /= Math.sqrt(n);
  const thresh = Math.max(TOL * sminoa, MAX_SWEEPS * n * n * SAFE_MIN);

  const maxIter = MAX_SWEEPS * n * n;
  let iter = 0;
  let end = n - 1;
  let oldLo = -1;
  let oldEnd = -1;
  let down = true; // chase direction: top to bottom when true

  outer: while (end > 0) {
    if (iter > maxIter) {
      throw new LowrankError('E_NUMERIC', `svd: bidiagonal QR iteration did not converge in ${maxIter} steps (n = ${n})`);
    }
    // The unreduced block lo..end: every e in it is above the absolute threshold.
    let lo = end - 1;
    while (lo >= 0 && Math.abs(e[lo]) > thresh) lo--;
    if (lo === end - 1) {
      e[lo] = 0;
      end--;
      continue;
    }
    if (lo >= 0) e[lo] = 0;
    lo++;
    let smax = 0;
    for (let i = lo; i <= end; i++) smax = Math.max(smax, Math.abs(d[i]));
    for (let i = lo; i < end; i++) smax = Math.max(smax, Math.abs(e[i]));

    // A new block: chase from its larger end.
    if (lo > oldEnd || end < oldLo) down = Math.abs(d[lo]) >= Math.abs(d[end]);

    // Relative convergence tests, and an estimate of the block's smallest singular value.
    let sminl: number;
    if (down) {
      if (Math.abs(e[end - 1]) <= TOL * Math.abs(d[end])) {
        e[end - 1] = 0;
        continue;
      }
      let mu = Math.abs(d[lo]);
      sminl = mu;
      for (let i = lo; i < end; i++) {
        if (Math.abs(e[i]) <= TOL * mu) {
          e[i] = 0;
          continue outer;
        }
        mu = Math.abs(d[i + 1]) * (mu / (mu + Math.abs(e[i])));
        if (mu < sminl) sminl = mu;
      }
    } else {
      if (Math.abs(e[lo]) <= TOL * Math.abs(d[lo])) {
        e[lo] = 0;
        continue;
      }
      let mu = Math.abs(d[end]);
      sminl = mu;
      for (let i = end - 1; i >= lo; i--) {
        if (Math.abs(e[i]) <= TOL * mu) {
          e[i] = 0;
          continue outer;
        }
        mu = Math.abs(d[i]) * (mu / (mu + Math.abs(e[i])));
        if (mu < sminl) sminl = mu;
      }
    }
    oldLo = lo;
    oldEnd = end;

    // Shift: zero when it would spoil the relative accuracy of the smallest singular value.
    let shift = 0;
    if (n * TOL * (sminl / smax) > Math.max(EPS, 0.01 * TOL)) {
      let sll: number;
      if (down) {
        sll = Math.abs(d[lo]);
        shift = smallerSingularValue2x2(d[end - 1], e[end - 1], d[end]);
      } else {
        sll = Math.abs(d[end]);
        shift = smallerSingularValue2x2(d[lo], e[lo], d[lo + 1]);
      }
      if (sll > 0 && (shift / sll) * (shift / sll) < EPS) shift = 0;
    }
    iter += end - lo;

    if (shift === 0) {
      if (down) zeroShiftDown(d, e, lo, end, rot, rotU, rotV, thresh);
      else zeroShiftUp(d, e, lo, end, rot, rotU, rotV, thresh);
    } else if (down) {
      shiftedDown(d, e, lo, end, shift, rot, rotU, rotV, thresh);
    } else {
      shiftedUp(d, e, lo, end, shift, rot, rotU, rotV, thresh);
    }
  }

  // Non-negative values (a sign moves into the row of Vᵀ), then descending order.
  for (let i = 0; i < n; i++) {
    if (d[i] < 0) {
      d[i] = -d[i];
      v?.negate(i);
    }
  }
  for (let i = 0; i < n - 1; i++) {
    let best = i;
    for (let j = i + 1; j < n; j++) if (d[j] > d[best]) best = j;
    if (best !== i) {
      const t = d[i];
      d[i] = d[best];
      d[best] = t;
      u?.swap(i, best);
      v?.swap(i, best);
    }
  }
}

type RowRotation = (a: number, b: number, c: number, s: number) => void;

/** One zero-shift sweep over lo..end, chasing downwards. */
function zeroShiftDown(d: Float64Array, e: Float64Array, lo: number, end: number, rot: Rotation, rotU: RowRotation, rotV: RowRotation, thresh: number): void {
  let cs = 1;
  let oldcs = 1;
  let oldsn = 0;
  for (let i = lo; i < end; i++) {
    givens(d[i] * cs, e[i], rot);
    cs = rot.c;
    const sn = rot.s;
    const r = rot.r;
    if (i > lo) e[i - 1] = oldsn * r;
    givens(oldcs * r, d[i + 1] * sn, rot);
    oldcs = rot.c;
    oldsn = rot.s;
    d[i] = rot.r;
    rotV(i, i + 1, cs, sn);
    rotU(i, i + 1, oldcs, oldsn);
  }
  const h = d[end] * cs;
  d[end] = h * oldcs;
  e[end - 1] = h * oldsn;
  if (Math.abs(e[end - 1]) <= thresh) e[end - 1] = 0;
}

/** One zero-shift sweep over lo..end, chasing upwards. */
function zeroShiftUp(d: Float64Array, e: Float64Array, lo: number, end: number, rot: Rotation, rotU: RowRotation, rotV: RowRotation, thresh: number): void {
  let cs = 1;
  let oldcs = 1;
  let oldsn = 0;
  for (let i = end; i > lo; i--) {
    givens(d[i] * cs, e[i - 1], rot);
    cs = rot.c;
    const sn = rot.s;
    const r = rot.r;
    if (i < end) e[i] = oldsn * r;
    givens(oldcs * r, d[i - 1] * sn, rot);
    oldcs = rot.c;
    oldsn = rot.s;
    d[i] = rot.r;
    rotU(i, i - 1, cs, sn);
    rotV(i, i - 1, oldcs, oldsn);
  }
  const h = d[lo] * cs;
  d[lo] = h * oldcs;
  e[lo] = h * oldsn;
  if (Math.abs(e[lo]) <= thresh) e[lo] = 0;
}

/** One shifted sweep over lo..end, chasing the bulge downwards. */
function shiftedDown(d: Float64Array, e: Float64Array, lo: number, end: number, shift: number, rot: Rotation, rotU: RowRotation, rotV: RowRotation, thresh: number): void {
  // First column of BᵀB − shift²·I, scaled: (d₀² − shift², d₀·e₀).
  let f = (Math.abs(d[lo]) - shift) * ((d[lo] >= 0 ? 1 : -1) + shift / d[lo]);
  let g = e[lo];
  for (let i = lo; i < end; i++) {
    // Right rotation of columns i, i+1 (zeroes the bulge above the superdiagonal).
    givens(f, g, rot);
    const cr = rot.c;
    const sr = rot.s;
    if (i > lo) e[i - 1] = rot.r;
    f = cr * d[i] + sr * e[i];
    e[i] = cr * e[i] - sr * d[i];
    g = sr * d[i + 1];
    d[i + 1] = cr * d[i + 1];
    rotV(i, i + 1, cr, sr);
    // Left rotation of rows i, i+1 (zeroes the bulge below the diagonal).
    givens(f, g, rot);
    const cl = rot.c;
    const sl = rot.s;
    d[i] = rot.r;
    f = cl * e[i] + sl * d[i + 1];
    d[i + 1] = cl * d[i + 1] - sl * e[i];
    if (i < end - 1) {
      g = sl * e[i + 1];
      e[i + 1] = cl * e[i + 1];
    }
    rotU(i, i + 1, cl, sl);
  }
  e[end - 1] = f;
  if (Math.abs(e[end - 1]) <= thresh) e[end - 1] = 0;
}

/** One shifted sweep over lo..end, chasing the bulge upwards. */
function shiftedUp(d: Float64Array, e: Float64Array, lo: number, end: number, shift: number, rot: Rotation, rotU: RowRotation, rotV: RowRotation, thresh: number): void {
  let f = (Math.abs(d[end]) - shift) * ((d[end] >= 0 ? 1 : -1) + shift / d[end]);
  let g = e[end - 1];
  for (let i = end; i > lo; i--) {
    // Rotation of rows i, i−1.
    givens(f, g, rot);
    const cr = rot.c;
    const sr = rot.s;
    if (i < end) e[i] = rot.r;
    f = cr * d[i] + sr * e[i - 1];
    e[i - 1] = cr * e[i - 1] - sr * d[i];
    g = sr * d[i - 1];
    d[i - 1] = cr * d[i - 1];
    rotU(i, i - 1, cr, sr);
    // Rotation of columns i, i−1.
    givens(f, g, rot);
    const cl = rot.c;
    const sl = rot.s;
    d[i] = rot.r;
    f = cl * e[i - 1] + sl * d[i - 1];
    d[i - 1] = cl * d[i - 1] - sl * e[i - 1];
    if (i > lo + 1) {
      g = sl * e[i - 2];
      e[i - 2] = cl * e[i - 2];
    }
    rotV(i, i - 1, cl, sl);
  }
  e[lo] = f;
  if (Math.abs(e[lo]) <= thresh) e[lo] = 0;
}
