/**
 * Small helpers shared by the js backend's kernels: float64 working copies, rounding back to the
 * input's element type, transposes, plane rotations and a safe hypotenuse.
 */
import type { FloatArray, Matrix } from '../types.js';

/** A fresh float64 copy of an array (the working precision of every js kernel). */
export function toWork(src: FloatArray): Float64Array {
  return Float64Array.from(src);
}

/**
 * The result array of the input's element type: float64 work is returned as is (it must be a
 * fresh array, never an input), float32 is rounded to nearest.
 */
export function fromWork<A extends FloatArray>(like: A, work: Float64Array): A {
  return (like instanceof Float32Array ? Float32Array.from(work) : work) as A;
}

/** A matrix of the input's element type from float64 work data. */
export function matrixFromWork<A extends FloatArray>(like: A, rows: number, cols: number, work: Float64Array): Matrix<A> {
  return { rows, cols, data: fromWork(like, work) };
}

/** The transpose of a rows×cols row-major matrix, as a new cols×rows array. */
export function transpose(src: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const ri = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = src[ri + j];
  }
  return out;
}

/** The n×n identity, or the first `rows` rows of it when `rows` is given. */
export function identity(n: number, rows = n): Float64Array {
  const out = new Float64Array(rows * n);
  for (let i = 0; i < Math.min(rows, n); i++) out[i * n + i] = 1;
  return out;
}

/** The largest absolute value in an array (0 for an empty one). */
export function maxAbs(x: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i]);
    if (v > m) m = v;
  }
  return m;
}

/** sqrt(a² + b²) without overflow or harmful underflow. */
export function hypot(a: number, b: number): number {
  let x = Math.abs(a);
  let y = Math.abs(b);
  if (x < y) {
    const t = x;
    x = y;
    y = t;
  }
  if (x === 0) return 0;
  const r = y / x;
  return x * Math.sqrt(1 + r * r);
}

/** A plane rotation: c·f + s·g = r and −s·f + c·g = 0. */
export interface Rotation {
  c: number;
  s: number;
  r: number;
}

/** The rotation that maps (f, g) to (r, 0); writes into `out` and returns it. */
export function givens(f: number, g: number, out: Rotation): Rotation {
  if (g === 0) {
    out.c = 1;
    out.s = 0;
    out.r = f;
  } else if (f === 0) {
    out.c = 0;
    out.s = 1;
    out.r = g;
  } else {
    const r = hypot(f, g);
    out.c = f / r;
    out.s = g / r;
    out.r = r;
  }
  return out;
}

/**
 * Applies a plane rotation to rows `a` and `b` (each `len` long) of a row-major matrix:
 * row_a ← c·row_a + s·row_b and row_b ← c·row_b − s·row_a.
 */
export function rotateRows(x: Float64Array, len: number, a: number, b: number, c: number, s: number): void {
  if (s === 0 && c === 1) return;
  const oa = a * len;
  const ob = b * len;
  for (let j = 0; j < len; j++) {
    const xa = x[oa + j];
    const xb = x[ob + j];
    x[oa + j] = c * xa + s * xb;
    x[ob + j] = c * xb - s * xa;
  }
}

/** Swaps rows `a` and `b` (each `len` long) of a row-major matrix. */
export function swapRows(x: Float64Array, len: number, a: number, b: number): void {
  if (a === b) return;
  const oa = a * len;
  const ob = b * len;
  for (let j = 0; j < len; j++) {
    const t = x[oa + j];
    x[oa + j] = x[ob + j];
    x[ob + j] = t;
  }
}

/**
 * The row operations of a QR iteration on the matrix that accumulates its transformations: the
 * js backend applies them at once ({@link rowsOf}); the wasm backend logs the rotations and applies
 * them in bulk.
 */
export interface RowOps {
  /** row_a ← c·row_a + s·row_b and row_b ← c·row_b − s·row_a, for b = a ± 1. */
  rotate(a: number, b: number, c: number, s: number): void;
  /** Swaps rows a and b (only after every rotation). */
  swap(a: number, b: number): void;
  /** Negates row a (only after every rotation). */
  negate(a: number): void;
}

/** Row operations applied at once to a row-major matrix whose rows are `len` long. */
export function rowsOf(x: Float64Array, len: number): RowOps {
  return {
    rotate: (a, b, c, s) => rotateRows(x, len, a, b, c, s),
    swap: (a, b) => swapRows(x, len, a, b),
    negate: (a) => {
      for (let j = a * len; j < (a + 1) * len; j++) x[j] = -x[j];
    },
  };
}
