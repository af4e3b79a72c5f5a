/**
 * Level-1 building blocks of the decomposition kernels, generic over the element type T (f32 or
 * f64): dot products and axpys in v128 lanes (four f32 or two f64), with scalar tails. Pointers are
 * byte addresses; lengths are in elements.
 */

/** a·b + c in lanes of T: fused where relaxed SIMD is enabled. */
export function madd<T>(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (sizeof<T>() == 4) return f32x4.relaxed_madd(a, b, c);
    return f64x2.relaxed_madd(a, b, c);
  }
  return v128.add<T>(v128.mul<T>(a, b), c);
}

/** The sum of the lanes of v. */
export function lanesSum<T>(v: v128): T {
  if (sizeof<T>() == 4) {
    return <T>(f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3)));
  }
  return <T>(f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1));
}

/** Σ x[i]·y[i] for i < len. */
export function dot<T>(x: usize, y: usize, len: i32): T {
  const step = 32 / sizeof<T>();
  let a0 = v128.splat<T>(0);
  let a1 = v128.splat<T>(0);
  let i = 0;
  for (; i + step <= len; i += step) {
    const o = <usize>i * sizeof<T>();
    a0 = madd<T>(v128.load(x + o), v128.load(y + o), a0);
    a1 = madd<T>(v128.load(x + o, 16), v128.load(y + o, 16), a1);
  }
  let s = lanesSum<T>(v128.add<T>(a0, a1));
  for (; i < len; i++) {
    const o = <usize>i * sizeof<T>();
    s += load<T>(x + o) * load<T>(y + o);
  }
  return s;
}

/** y[i] += a·x[i] for i < len. */
export function axpy<T>(a: T, x: usize, y: usize, len: i32): void {
  const lanes = 16 / sizeof<T>();
  const va = v128.splat<T>(a);
  let i = 0;
  for (; i + lanes <= len; i += lanes) {
    const o = <usize>i * sizeof<T>();
    v128.store(y + o, madd<T>(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < len; i++) {
    const o = <usize>i * sizeof<T>();
    store<T>(y + o, load<T>(y + o) + a * load<T>(x + o));
  }
}

/** y[i] += a0·x0[i] + a1·x1[i] for i < len (one pass over y for two updates). */
export function axpy2<T>(a0: T, x0: usize, a1: T, x1: usize, y: usize, len: i32): void {
  const lanes = 16 / sizeof<T>();
  const v0 = v128.splat<T>(a0);
  const v1 = v128.splat<T>(a1);
  let i = 0;
  for (; i + lanes <= len; i += lanes) {
    const o = <usize>i * sizeof<T>();
    v128.store(y + o, madd<T>(v1, v128.load(x1 + o), madd<T>(v0, v128.load(x0 + o), v128.load(y + o))));
  }
  for (; i < len; i++) {
    const o = <usize>i * sizeof<T>();
    store<T>(y + o, load<T>(y + o) + a0 * load<T>(x0 + o) + a1 * load<T>(x1 + o));
  }
}

/** x[i] = 0 for i < len. */
export function zero<T>(x: usize, len: i32): void {
  memory.fill(x, 0, <usize>len * sizeof<T>());
}
