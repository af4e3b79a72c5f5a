/** Seeded test matrices and numpy references shared by the linalg suites. */
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';
import { pythonJson } from '../helpers/python.js';
import { plantedSpectrum } from '../helpers/reference.js';

/** A named test matrix, stored in float64 (cast to the dtype under test by {@link as}). */
export interface Case {
  name: string;
  rows: number;
  cols: number;
  data: Float64Array;
}

function gaussian(rows: number, cols: number, seed: number): Float64Array {
  return rng(seed).fillNormal(new Float64Array(rows * cols));
}

/** U · diag(s) · Vᵀ with random orthonormal U (m×k) and V (n×k). */
export function withSpectrum(name: string, m: number, n: number, s: readonly number[], seed: number): Case {
  return { name, rows: m, cols: n, data: plantedSpectrum(m, n, s, seed).data };
}

/** The general cases every routine is run on. */
export function generalCases(): Case[] {
  const logspace = Array.from({ length: 40 }, (_, i) => 10 ** (-6 * (i / 39)));
  return [
    { name: 'square 64', rows: 64, cols: 64, data: gaussian(64, 64, 1) },
    { name: 'tall 120x30', rows: 120, cols: 30, data: gaussian(120, 30, 2) },
    { name: 'wide 30x120', rows: 30, cols: 120, data: gaussian(30, 120, 3) },
    { name: 'tiny 1x1', rows: 1, cols: 1, data: Float64Array.of(-2.5) },
    { name: 'row 1x7', rows: 1, cols: 7, data: gaussian(1, 7, 4) },
    { name: 'column 7x1', rows: 7, cols: 1, data: gaussian(7, 1, 5) },
    withSpectrum('rank 5 of 60x50', 60, 50, [5, 4, 3, 2, 1], 6),
    withSpectrum('ill-conditioned 40x40, σ in 1..1e-6', 40, 40, logspace, 7),
    { name: 'zero 5x4', rows: 5, cols: 4, data: new Float64Array(20) },
  ];
}

/** A case as a tensor of the dtype under test. */
export function as<F extends FloatDType>(c: Case, dtype: F): Tensor<F> {
  const t = tensor(dtype, [c.rows, c.cols]);
  t.data.set(c.data);
  return t;
}

/** numpy's float64 singular values of each case (of its values rounded to `dtype`). */
export function numpySvdvals(cases: readonly Case[], dtype: FloatDType): number[][] {
  return pythonJson<number[][]>(
    `import sys, json
cases = json.loads(sys.stdin.read())
out = []
for c in cases:
    a = np.array(c['data'], dtype=np.${dtype === 'f32' ? 'float32' : 'float64'}).reshape(c['rows'], c['cols']).astype(np.float64)
    out.append(np.linalg.svd(a, compute_uv=False).tolist() if a.size else [])
print(json.dumps(out))`,
    [],
    JSON.stringify(cases.map((c) => ({ rows: c.rows, cols: c.cols, data: Array.from(c.data) }))),
  );
}

/** ‖x‖_F. */
export function fro(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** X·Y for plain row-major arrays, in float64 (the test's own oracle for products). */
export function mul(x: ArrayLike<number>, xr: number, xc: number, y: ArrayLike<number>, yc: number): Float64Array {
  const out = new Float64Array(xr * yc);
  for (let i = 0; i < xr; i++)
    for (let k = 0; k < xc; k++) {
      const v = x[i * xc + k];
      for (let j = 0; j < yc; j++) out[i * yc + j] += v * y[k * yc + j];
    }
  return out;
}

/** max |QᵀQ − I| for the columns of q (rows×cols). */
export function orthError(q: ArrayLike<number>, rows: number, cols: number): number {
  let worst = 0;
  for (let a = 0; a < cols; a++)
    for (let b = a; b < cols; b++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += q[i * cols + a] * q[i * cols + b];
      worst = Math.max(worst, Math.abs(d - (a === b ? 1 : 0)));
    }
  return worst;
}

/** The transpose of a rows×cols array. */
export function transpose(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}
