/**
 * Householder reductions for the decompositions of lowrank's wasm backend, generic over the element
 * type T (f32 or f64), on row-major matrices in the imported memory: QR, bidiagonalization (for the
 * SVD) and tridiagonalization (for eigh), and the accumulation of their orthogonal factors.
 *
 * Conventions, those of the js backend (src/backend/js/householder.ts): a reflector is
 * H = I − τ·v·vᵀ with v[0] = 1; reflector k is stored in row k of a reflector matrix `refl` (row
 * stride ldr) starting at column k + off (off = 0 for reflectors on columns, 1 for those acting
 * on indices after k); τ, and the scalars of the reduced matrices (d, e), are float64 arrays.
 * Reflector norms are computed in float64 whatever T is.
 *
 * The reductions run on one thread (each step depends on the last). Accumulating the factors
 * (formRows) is independent per row, so the caller splits rows among threads.
 */
import { axpy, axpy2, dot, madd, lanesSum, zero } from './vector';

/**
 * Turns x = v[0 .. len) in place into the vector of the reflector that maps x to beta·e₁
 * (v[0] = 1), and writes τ and beta (float64) at out and out + 8. A zero tail gives τ = 0.
 */
function makeReflector<T>(v: usize, len: i32, out: usize): void {
  const alpha = <f64>load<T>(v);
  let scale: f64 = 0;
  for (let i = 1; i < len; i++) scale = Math.max(scale, Math.abs(<f64>load<T>(v + <usize>i * sizeof<T>())));
  if (scale == 0) {
    store<T>(v, <T>1);
    store<f64>(out, 0);
    store<f64>(out + 8, alpha);
    return;
  }
  let ssq: f64 = 0;
  for (let i = 1; i < len; i++) {
    const t = <f64>load<T>(v + <usize>i * sizeof<T>()) / scale;
    ssq += t * t;
  }
  const xnorm = scale * Math.sqrt(ssq);
  const big = Math.max(Math.abs(alpha), xnorm);
  const small = Math.min(Math.abs(alpha), xnorm);
  const r = small / big;
  const norm = big * Math.sqrt(1 + r * r);
  const beta = alpha >= 0 ? -norm : norm;
  // In float64: for a tiny column (float32 denormals) 1/(alpha − beta) overflows float32.
  const f = 1 / (alpha - beta);
  for (let i = 1; i < len; i++) {
    const p = v + <usize>i * sizeof<T>();
    store<T>(p, <T>(<f64>load<T>(p) * f));
  }
  store<T>(v, <T>1);
  store<f64>(out, (beta - alpha) / beta);
  store<f64>(out + 8, beta);
}

/** Address of element (i, j) of a row-major matrix at x with row stride ld. */
function at<T>(x: usize, ld: i32, i: i32, j: i32): usize {
  return x + (<usize>i * <usize>ld + <usize>j) * sizeof<T>();
}

/**
 * Four rows (at x0…x3, each len long) ← row·(I − τ·v·vᵀ): four dot products sharing the loads of
 * v, then four updates sharing them again.
 */
function reflectFourRows<T>(x0: usize, x1: usize, x2: usize, x3: usize, v: usize, len: i32, tau: T): void {
  const lanes = 16 / sizeof<T>();
  let a0 = v128.splat<T>(0);
  let a1 = v128.splat<T>(0);
  let a2 = v128.splat<T>(0);
  let a3 = v128.splat<T>(0);
  let i = 0;
  for (; i + lanes <= len; i += lanes) {
    const o = <usize>i * sizeof<T>();
    const vv = v128.load(v + o);
    a0 = madd<T>(v128.load(x0 + o), vv, a0);
    a1 = madd<T>(v128.load(x1 + o), vv, a1);
    a2 = madd<T>(v128.load(x2 + o), vv, a2);
    a3 = madd<T>(v128.load(x3 + o), vv, a3);
  }
  let s0 = lanesSum<T>(a0);
  let s1 = lanesSum<T>(a1);
  let s2 = lanesSum<T>(a2);
  let s3 = lanesSum<T>(a3);
  for (let j = i; j < len; j++) {
    const o = <usize>j * sizeof<T>();
    const vj = load<T>(v + o);
    s0 += load<T>(x0 + o) * vj;
    s1 += load<T>(x1 + o) * vj;
    s2 += load<T>(x2 + o) * vj;
    s3 += load<T>(x3 + o) * vj;
  }
  const f0 = v128.splat<T>(-tau * s0);
  const f1 = v128.splat<T>(-tau * s1);
  const f2 = v128.splat<T>(-tau * s2);
  const f3 = v128.splat<T>(-tau * s3);
  i = 0;
  for (; i + lanes <= len; i += lanes) {
    const o = <usize>i * sizeof<T>();
    const vv = v128.load(v + o);
    v128.store(x0 + o, madd<T>(f0, vv, v128.load(x0 + o)));
    v128.store(x1 + o, madd<T>(f1, vv, v128.load(x1 + o)));
    v128.store(x2 + o, madd<T>(f2, vv, v128.load(x2 + o)));
    v128.store(x3 + o, madd<T>(f3, vv, v128.load(x3 + o)));
  }
  for (let j = i; j < len; j++) {
    const o = <usize>j * sizeof<T>();
    const vj = load<T>(v + o);
    store<T>(x0 + o, load<T>(x0 + o) - tau * s0 * vj);
    store<T>(x1 + o, load<T>(x1 + o) - tau * s1 * vj);
    store<T>(x2 + o, load<T>(x2 + o) - tau * s2 * vj);
    store<T>(x3 + o, load<T>(x3 + o) - tau * s3 * vj);
  }
}

/** One row (at x, len long) ← row·(I − τ·v·vᵀ). */
function reflectRow<T>(x: usize, v: usize, len: i32, tau: T): void {
  const s = dot<T>(x, v, len);
  axpy<T>(-tau * s, v, x, len);
}

/**
 * X[r, c0 .. c1) for r = r0 … r0+len ← (I − τ·v·vᵀ)·X (X row-major with row stride ld; v len
 * long): w = vᵀX two rows at a time, then X −= τ·v·wᵀ row by row. `w` is scratch of c1 − c0.
 */
function reflectColumns<T>(x: usize, ld: i32, r0: i32, len: i32, c0: i32, c1: i32, v: usize, tau: T, w: usize): void {
  const cols = c1 - c0;
  if (cols <= 0 || tau == 0) return;
  zero<T>(w, cols);
  let i = 0;
  for (; i + 1 < len; i += 2) {
    axpy2<T>(load<T>(v + <usize>i * sizeof<T>()), at<T>(x, ld, r0 + i, c0), load<T>(v + <usize>(i + 1) * sizeof<T>()), at<T>(x, ld, r0 + i + 1, c0), w, cols);
  }
  if (i < len) axpy<T>(load<T>(v + <usize>i * sizeof<T>()), at<T>(x, ld, r0 + i, c0), w, cols);
  for (i = 0; i < len; i++) axpy<T>(-tau * load<T>(v + <usize>i * sizeof<T>()), w, at<T>(x, ld, r0 + i, c0), cols);
}

/**
 * Rows r0 … r1 of Qᵀ for Q = H₀·H₁⋯H_{nrefl−1} restricted to its first `rows` columns: x (row
 * stride ld = the order of Q) gets, in row r, e_rᵀ·H_{nrefl−1}⋯H₀ (applied right to left, so
 * reflector k first touches row r when k + off ≤ r). Rows are taken four at a time, which stay in
 * cache while every reflector streams past them.
 */
function formRows<T>(x: usize, ld: i32, r0: i32, r1: i32, refl: usize, ldr: i32, taus: usize, nrefl: i32, off: i32): void {
  for (let r = r0; r < r1; r++) {
    zero<T>(at<T>(x, ld, r, 0), ld);
    store<T>(at<T>(x, ld, r, r), <T>1);
  }
  let r = r0;
  for (; r + 3 < r1; r += 4) {
    const top = min(r + 3 - off, nrefl - 1);
    for (let k = top; k >= 0; k--) {
      const tau = <T>load<f64>(taus + <usize>k * 8);
      if (tau == 0) continue;
      const c = k + off;
      reflectFourRows<T>(at<T>(x, ld, r, c), at<T>(x, ld, r + 1, c), at<T>(x, ld, r + 2, c), at<T>(x, ld, r + 3, c), at<T>(refl, ldr, k, c), ld - c, tau);
    }
  }
  for (; r < r1; r++) {
    for (let k = min(r - off, nrefl - 1); k >= 0; k--) {
      const tau = <T>load<f64>(taus + <usize>k * 8);
      if (tau == 0) continue;
      const c = k + off;
      reflectRow<T>(at<T>(x, ld, r, c), at<T>(refl, ldr, k, c), ld - c, tau);
    }
  }
}

/**
 * Householder QR of the m×n matrix a (overwritten by R in its upper triangle, zeros below):
 * reflector j (j < k = min(m, n)) zeroes column j below the diagonal and is stored in row j of
 * refl (k×m, off = 0) with τ in taus. `w` is scratch of n elements; `out` of two float64.
 */
function qr<T>(a: usize, m: i32, n: i32, refl: usize, taus: usize, w: usize, out: usize): void {
  const k = min(m, n);
  for (let j = 0; j < k; j++) {
    const v = at<T>(refl, m, j, j);
    const len = m - j;
    for (let i = 0; i < len; i++) store<T>(v + <usize>i * sizeof<T>(), load<T>(at<T>(a, n, j + i, j)));
    makeReflector<T>(v, len, out);
    const tau = load<f64>(out);
    store<f64>(taus + <usize>j * 8, tau);
    store<T>(at<T>(a, n, j, j), <T>load<f64>(out + 8));
    for (let i = 1; i < len; i++) store<T>(at<T>(a, n, j + i, j), <T>0);
    reflectColumns<T>(a, n, j, len, j + 1, n, v, <T>tau, w);
  }
}

/**
 * Golub–Kahan bidiagonalization of the m×n matrix w (m ≥ n; overwritten): d (n) and e (n − 1),
 * float64, get B's diagonal and superdiagonal. Left reflector k is stored in row k of left (n×m,
 * off = 0), right reflector k in row k of right (n×n, off = 1), their τ in leftTau and rightTau.
 * Each step reads the trailing block twice: once for wᵀ = vᵀ·X, once to apply the left and then
 * the right reflector to each row while it is in cache. `scratch` holds n elements; `out` two
 * float64.
 */
function bidiagonalize<T>(w: usize, m: i32, n: i32, d: usize, e: usize, left: usize, leftTau: usize, right: usize, rightTau: usize, scratch: usize, out: usize): void {
  for (let k = 0; k < n; k++) {
    const v = at<T>(left, m, k, k);
    const len = m - k;
    for (let i = 0; i < len; i++) store<T>(v + <usize>i * sizeof<T>(), load<T>(at<T>(w, n, k + i, k)));
    makeReflector<T>(v, len, out);
    const tau = <T>load<f64>(out);
    store<f64>(leftTau + <usize>k * 8, load<f64>(out));
    store<f64>(d + <usize>k * 8, load<f64>(out + 8));
    if (k == n - 1) break;
    const c0 = k + 1;
    const cols = n - c0;
    // wᵀ = vᵀ·X over rows k … m, columns k+1 … n.
    zero<T>(scratch, cols);
    if (tau != 0) {
      let i = 0;
      for (; i + 1 < len; i += 2) {
        axpy2<T>(load<T>(v + <usize>i * sizeof<T>()), at<T>(w, n, k + i, c0), load<T>(v + <usize>(i + 1) * sizeof<T>()), at<T>(w, n, k + i + 1, c0), scratch, cols);
      }
      if (i < len) axpy<T>(load<T>(v + <usize>i * sizeof<T>()), at<T>(w, n, k + i, c0), scratch, cols);
    }
    // Row k first: it defines the right reflector.
    axpy<T>(-tau, scratch, at<T>(w, n, k, c0), cols);
    const u = at<T>(right, n, k, c0);
    memory.copy(u, at<T>(w, n, k, c0), <usize>cols * sizeof<T>());
    makeReflector<T>(u, cols, out);
    const rtau = <T>load<f64>(out);
    store<f64>(rightTau + <usize>k * 8, load<f64>(out));
    store<f64>(e + <usize>k * 8, load<f64>(out + 8));
    for (let i = 1; i < len; i++) {
      const row = at<T>(w, n, k + i, c0);
      if (tau != 0) axpy<T>(-tau * load<T>(v + <usize>i * sizeof<T>()), scratch, row, cols);
      if (rtau != 0) reflectRow<T>(row, u, cols, rtau);
    }
  }
}

/**
 * Householder tridiagonalization of the symmetric n×n matrix s (both triangles set; overwritten):
 * d (n) and e (n − 1), float64, get T's diagonal and off-diagonal. Reflector k (k < n − 2) is
 * stored in row k of refl (n×n, off = 1) with τ in taus. Each step applies H·S·H to the trailing
 * block as S − v·wᵀ − w·vᵀ with p = τ·S·v and w = p − (τ/2)(pᵀv)·v. `p` is scratch of n; `out`
 * of two float64.
 */
function tridiagonalize<T>(s: usize, n: i32, d: usize, e: usize, refl: usize, taus: usize, p: usize, out: usize): void {
  for (let k = 0; k < n - 2; k++) {
    const b0 = k + 1;
    const len = n - b0;
    const v = at<T>(refl, n, k, b0);
    memory.copy(v, at<T>(s, n, k, b0), <usize>len * sizeof<T>());
    makeReflector<T>(v, len, out);
    const tau = <T>load<f64>(out);
    store<f64>(taus + <usize>k * 8, load<f64>(out));
    store<f64>(e + <usize>k * 8, load<f64>(out + 8));
    if (tau == 0) continue;
    let pv: T = 0;
    for (let i = 0; i < len; i++) {
      const pi = tau * dot<T>(at<T>(s, n, b0 + i, b0), v, len);
      store<T>(p + <usize>i * sizeof<T>(), pi);
      pv += pi * load<T>(v + <usize>i * sizeof<T>());
    }
    axpy<T>(<T>-0.5 * tau * pv, v, p, len);
    for (let i = 0; i < len; i++) {
      axpy2<T>(-load<T>(v + <usize>i * sizeof<T>()), p, -load<T>(p + <usize>i * sizeof<T>()), v, at<T>(s, n, b0 + i, b0), len);
    }
  }
  for (let i = 0; i < n; i++) store<f64>(d + <usize>i * 8, <f64>load<T>(at<T>(s, n, i, i)));
  if (n >= 2) store<f64>(e + <usize>(n - 2) * 8, <f64>load<T>(at<T>(s, n, n - 1, n - 2)));
}

// ---------------------------------------------------------------------------------------------
// Exports: one float32 and one float64 instance of each

export function sqr(a: usize, m: i32, n: i32, refl: usize, taus: usize, w: usize, out: usize): void {
  qr<f32>(a, m, n, refl, taus, w, out);
}
export function dqr(a: usize, m: i32, n: i32, refl: usize, taus: usize, w: usize, out: usize): void {
  qr<f64>(a, m, n, refl, taus, w, out);
}
export function sbidiagonalize(w: usize, m: i32, n: i32, d: usize, e: usize, left: usize, leftTau: usize, right: usize, rightTau: usize, scratch: usize, out: usize): void {
  bidiagonalize<f32>(w, m, n, d, e, left, leftTau, right, rightTau, scratch, out);
}
export function dbidiagonalize(w: usize, m: i32, n: i32, d: usize, e: usize, left: usize, leftTau: usize, right: usize, rightTau: usize, scratch: usize, out: usize): void {
  bidiagonalize<f64>(w, m, n, d, e, left, leftTau, right, rightTau, scratch, out);
}
export function stridiagonalize(s: usize, n: i32, d: usize, e: usize, refl: usize, taus: usize, p: usize, out: usize): void {
  tridiagonalize<f32>(s, n, d, e, refl, taus, p, out);
}
export function dtridiagonalize(s: usize, n: i32, d: usize, e: usize, refl: usize, taus: usize, p: usize, out: usize): void {
  tridiagonalize<f64>(s, n, d, e, refl, taus, p, out);
}
export function sformRows(x: usize, ld: i32, r0: i32, r1: i32, refl: usize, ldr: i32, taus: usize, nrefl: i32, off: i32): void {
  formRows<f32>(x, ld, r0, r1, refl, ldr, taus, nrefl, off);
}
export function dformRows(x: usize, ld: i32, r0: i32, r1: i32, refl: usize, ldr: i32, taus: usize, nrefl: i32, off: i32): void {
  formRows<f64>(x, ld, r0, r1, refl, ldr, taus, nrefl, off);
}
