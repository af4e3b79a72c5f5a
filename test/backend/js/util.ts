/**
 * Helpers for the js backend tests: seeded matrices of both float types, float64 products and
 * norms written independently of the backend, structured test matrices (ill-conditioned,
 * rank-deficient) and numpy references.
 */
import type { FloatArray, Matrix } from '../../../src/backend/types.js';
import { rng, type Rng } from '../../../src/core/rng.js';
import { pythonJson } from '../../helpers/python.js';

/** The two element types every kernel is tested in. */
export type Dt = 'f32' | 'f64';

/** Both element types, for loops over test cases. */
export const DTS: readonly Dt[] = ['f32', 'f64'];

/** A matrix of the given type holding `values` (rounded to float32 for 'f32'). */
export function mat(dt: Dt, rows: number, cols: number, values: ArrayLike<number>): Matrix {
  const data: FloatArray = dt === 'f32' ? Float32Array.from(values) : Float64Array.from(values);
  if (data.length !== rows * cols) throw new Error(`mat: ${data.length} values for ${rows}x${cols}`);
  return { rows, cols, data };
}

/** A rows×cols matrix of N(0, 1) samples from the seed. */
export function randn(dt: Dt, rows: number, cols: number, seed: number): Matrix {
  return mat(dt, rows, cols, rng(seed).fillNormal(new Float64Array(rows * cols)));
}

/** C = A·B in float64 by the textbook triple loop (independent of the backend). */
export function mul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** The transpose of a rows×cols row-major array, in float64. */
export function tr(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

/** Frobenius norm. */
export function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** Frobenius norm of a − b. */
export function frobDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`frobDiff: lengths ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** Largest absolute element. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |QᵀQ − I| over the columns of a rows×cols Q (0 for no columns). */
export function orthColumnsError(q: ArrayLike<number>, rows: number, cols: number): number {
  let worst = 0;
  for (let p = 0; p < cols; p++) {
    for (let r = p; r < cols; r++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += q[i * cols + p] * q[i * cols + r];
      worst = Math.max(worst, Math.abs(s - (p === r ? 1 : 0)));
    }
  }
  return worst;
}

/** max |Q·Qᵀ − I| over the rows of a rows×cols Q. */
export function orthRowsError(q: ArrayLike<number>, rows: number, cols: number): number {
  return orthColumnsError(tr(q, rows, cols), cols, rows);
}

/** An m×k matrix with orthonormal columns: Gaussian, then modified Gram–Schmidt twice (k ≤ m). */
export function randomOrthonormal(r: Rng, m: number, k: number): Float64Array {
  const cols: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const v = r.fillNormal(new Float64Array(m));
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        let d = 0;
        for (let i = 0; i < m; i++) d += q[i] * v[i];
        for (let i = 0; i < m; i++) v[i] -= d * q[i];
      }
    }
    const nv = frob(v);
    for (let i = 0; i < m; i++) v[i] /= nv;
    cols.push(v);
  }
  const out = new Float64Array(m * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < m; i++) out[i * k + j] = cols[j][i];
  return out;
}

/** The values 10^(lo + (hi − lo)·i/(count − 1)), i = 0 .. count−1 (numpy's logspace). */
export function logspace(hi: number, lo: number, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = 10 ** (count === 1 ? hi : hi + ((lo - hi) * i) / (count - 1));
  return out;
}

/** U·diag(s)·Vᵀ for random orthonormal U (m×k) and V (n×k), k = s.length, in float64. */
export function withSingularValues(seed: number, m: number, n: number, s: ArrayLike<number>): Float64Array {
  const r = rng(seed);
  const k = s.length;
  const u = randomOrthonormal(r, m, k);
  const v = randomOrthonormal(r, n, k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) u[i * k + j] *= s[j];
  return mul(u, tr(v, n, k), m, k, n);
}

/** A random m×n matrix of the given rank: (m×rank Gaussian)·(rank×n Gaussian). */
export function lowRank(seed: number, m: number, n: number, rank: number): Float64Array {
  const r = rng(seed);
  const x = r.fillNormal(new Float64Array(m * rank));
  const y = r.fillNormal(new Float64Array(rank * n));
  return mul(x, y, m, rank, n);
}

/** A matrix as numpy reference scripts receive it. */
export interface JsonMatrix {
  rows: number;
  cols: number;
  data: number[];
}

/** The JSON form of a matrix (float32 values convert to float64 exactly). */
export function toJson(a: Matrix): JsonMatrix {
  return { rows: a.rows, cols: a.cols, data: Array.from(a.data) };
}

/**
 * Runs a numpy script on a JSON payload: the script sees `p` (the parsed payload), a helper
 * `M(x)` that turns a JsonMatrix into a float64 array, and must print one JSON value.
 */
export function numpy<T>(script: string, payload: unknown): T {
  const prelude = [
    'import json, sys',
    'p = json.load(sys.stdin)',
    'def M(x): return np.array(x["data"], dtype=np.float64).reshape(x["rows"], x["cols"])',
  ].join('\n');
  return pythonJson<T>(`${prelude}\n${script}`, [], JSON.stringify(payload));
}

/** Asserts `value <= limit` with a message naming what was measured. */
export function within(what: string, value: number, limit: number): void {
  if (!(value <= limit)) throw new Error(`${what}: ${value.toExponential(3)} exceeds ${limit.toExponential(1)}`);
}
