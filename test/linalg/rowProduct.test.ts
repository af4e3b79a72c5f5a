/**
 * One-row products (a decoding step's x·Wᵀ, which the native backend runs as its own small
 * kernel up to 2^17 weight elements and as OpenBLAS's gemv above) on every backend, float32 and
 * float64, each transpose combination and the C + α·A·B form, against a float64 reference
 * product; sizes below and above that threshold, with rows and columns that are not multiples of
 * the kernel's 4 rows and 16 lanes, and fewer columns than lanes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as linalg from '../../src/linalg/index.js';
import { backend } from '../../src/backend/index.js';
import type { FloatArray, Matrix } from '../../src/backend/types.js';
import { rng } from '../../src/core/rng.js';
import { referenceProduct } from '../helpers/reference.js';

const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);
// |Δ_j| ≤ k·u · Σ_p |a_p b_pj|: the worst-case rounding bound of a sum of k products.
const UNIT = { f32: 6e-8, f64: 1.2e-16 } as const;
// [k, n]: a small weight (the native kernel), one of 5 columns, one over 2^17 elements (OpenBLAS).
const SIZES = [[300, 77], [5, 3], [520, 300]] as const;

function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

for (const be of BACKENDS) {
  for (const dtype of ['f32', 'f64'] as const) {
    test(`${be} ${dtype}: one-row products, every transpose, plain and C + α·A·B, equal a float64 reference`, async () => {
      linalg.useBackend(be);
      for (const [k, n] of SIZES) {
        const tol = k * UNIT[dtype];
        const g = rng(3);
        const a = Float64Array.from({ length: k }, () => Math.fround(g.normal()));
        const b = Float64Array.from({ length: k * n }, () => Math.fround(g.normal())); // [k, n]
        const c = Float64Array.from({ length: n }, () => Math.fround(g.normal()));
        const want = referenceProduct(a, 1, k, b, n);
        const bound = referenceProduct(a.map(Math.abs), 1, k, b.map(Math.abs), n);
        const arr = (x: Float64Array): FloatArray => (dtype === 'f32' ? Float32Array.from(x) : Float64Array.from(x));
        const m = (rows: number, cols: number, x: Float64Array): Matrix => ({ rows, cols, data: arr(x) });
        for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const A = transA ? m(k, 1, a) : m(1, k, a);
          const B = transB ? m(n, k, transpose(b, k, n)) : m(k, n, b);
          const got = await backend().matmul(A, B, transA, transB);
          assert.deepEqual([got.rows, got.cols], [1, n]);
          const sum = await backend().matmulAdd(m(1, n, c), A, B, -0.5, transA, transB);
          for (let j = 0; j < n; j++) {
            assert.ok(Math.abs(got.data[j] - want[j]) <= tol * bound[j], `${k}×${n} transA ${transA} transB ${transB} [${j}]: ${got.data[j]} vs ${want[j]}`);
            assert.ok(Math.abs(sum.data[j] - (c[j] - 0.5 * want[j])) <= tol * (0.5 * bound[j] + Math.abs(c[j])), `${k}×${n} C + αAB, transA ${transA} transB ${transB} [${j}]`);
          }
        }
      }
    });
  }
}
