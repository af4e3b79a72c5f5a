/**
 * The native backend's kernels for products with a narrow side (native/skinny.c): float32 matmul
 * with at most 32 output columns or rows, orthonormalize by CholeskyQR2, and the residual rounded
 * to bfloat16/float16; each against a float64 reference on seeded inputs, at sizes that take those
 * kernels (the large side at least 4096 elements) and at the edges of their tiles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBackend } from '../../../src/backend/native/index.js';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Backend, Matrix } from '../../../src/backend/types.js';
import { rng } from '../../../src/core/rng.js';
import { bitsToF32, f16BitsToF32Bits, f32BitsToBf16, f32BitsToF16, f32ToBits } from '../../../src/core/dtype.js';

/** A number to bf16/f16 bits (through float32) and back, as src/core/dtype.ts rounds. */
const HALF = {
  bf16: { encode: (x: number) => f32BitsToBf16(f32ToBits(x)), decode: (h: number) => bitsToF32(h << 16) },
  f16: { encode: (x: number) => f32BitsToF16(f32ToBits(x)), decode: (h: number) => bitsToF32(f16BitsToF32Bits(h)) },
};

function native(): Backend {
  const r = loadNativeBackend();
  if (r.backend === undefined) assert.fail(`the native backend is unavailable, and these tests need it (CI installs the libraries): ${r.reason}`);
  return r.backend;
}

function gaussian(seed: number, n: number): Float32Array {
  return Float32Array.from(rng(seed).fillNormal(new Float64Array(n)));
}

/** op(X) as a float64 rows×cols array, X stored row-major with `cols` columns unless transposed. */
function op(x: Float32Array, rows: number, cols: number, trans: boolean): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = trans ? x[j * rows + i] : x[i * cols + j];
  return out;
}

/** Element (i, j) of A·B (A m×k, B k×n, row-major) in float64, and Σ_p |A_ip·B_pj|, its error scale. */
function entry(a: ArrayLike<number>, b: ArrayLike<number>, i: number, j: number, k: number, n: number): { s: number; bound: number } {
  let s = 0;
  let bound = 0;
  for (let p = 0; p < k; p++) {
    s += a[i * k + p] * b[p * n + j];
    bound += Math.abs(a[i * k + p] * b[p * n + j]);
  }
  return { s, bound };
}

/** max |C − A·B| / max (|A|·|B|), the product and the bound in float64. */
function productError(c: Float32Array, a: Float64Array, b: Float64Array, m: number, k: number, n: number): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const { s, bound } = entry(a, b, i, j, k, n);
      err = Math.max(err, Math.abs(c[i * n + j] - s));
      scale = Math.max(scale, bound);
    }
  }
  return err / scale;
}

/** Tolerance of a float32 product against float64: the sums run in order with FMA (error ~ √k·ε). */
const GEMM_TOL = 2e-6;

test('skinny matmul (float32) against float64, every transpose, tile edges', async (t) => {
  const be = native();
  let seed = 1;
  // [m, k, n]: ≤ 32 output columns (A the large side) or ≤ 32 output rows (B the large side).
  const shapes: [number, number, number][] = [[4099, 40, 26], [300, 2048, 1], [777, 513, 32], [9, 5000, 17], [26, 3000, 700], [32, 129, 4096], [2048, 26, 26], [1031, 8, 3]];
  for (const [m, k, n] of shapes) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = gaussian(seed++, m * k);
        const b = gaussian(seed++, k * n);
        const A: Matrix<Float32Array> = ta ? { rows: k, cols: m, data: a } : { rows: m, cols: k, data: a };
        const B: Matrix<Float32Array> = tb ? { rows: n, cols: k, data: b } : { rows: k, cols: n, data: b };
        const c = await be.matmul(A, B, ta, tb);
        await t.test(`(${m}×${k})·(${k}×${n})${ta ? ' transA' : ''}${tb ? ' transB' : ''}`, () => {
          assert.deepEqual([c.rows, c.cols], [m, n]);
          const e = productError(c.data, op(a, m, k, ta), op(b, k, n, tb), m, k, n);
          assert.ok(e <= GEMM_TOL, `max |C − A·B| / max(|A|·|B|) = ${e.toExponential(2)} > ${GEMM_TOL}`);
        });
      }
    }
  }
});

/** max |QᵀQ − I| and ‖Y − Q·QᵀY‖_F / ‖Y‖_F in float64. */
function basisErrors(q: Float32Array | Float64Array, y: Float32Array | Float64Array, m: number, l: number): { orth: number; span: number } {
  let orth = 0;
  for (let a = 0; a < l; a++) {
    for (let b = 0; b < l; b++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += q[i * l + a] * q[i * l + b];
      orth = Math.max(orth, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  const qty = new Float64Array(l * l);
  for (let a = 0; a < l; a++) for (let b = 0; b < l; b++) for (let i = 0; i < m; i++) qty[a * l + b] += q[i * l + a] * y[i * l + b];
  let res = 0;
  let norm = 0;
  for (let i = 0; i < m; i++) {
    for (let b = 0; b < l; b++) {
      let p = 0;
      for (let a = 0; a < l; a++) p += q[i * l + a] * qty[a * l + b];
      res += (y[i * l + b] - p) ** 2;
      norm += y[i * l + b] ** 2;
    }
  }
  return { orth, span: Math.sqrt(res / norm) };
}

/** Columns of a Gaussian m×l matrix scaled from 1 down to 1/cond, geometrically. */
function graded(seed: number, m: number, l: number, cond: number): Float32Array {
  const y = gaussian(seed, m * l);
  for (let i = 0; i < m; i++) for (let j = 0; j < l; j++) y[i * l + j] *= cond ** (-j / Math.max(1, l - 1));
  return y;
}

test('orthonormalize: an orthonormal basis of the columns (CholeskyQR2, and Householder where it is ill-conditioned)', async (t) => {
  const be = native();
  const dependent = graded(11, 3000, 20, 10);
  for (let i = 0; i < 3000; i++) dependent[i * 20 + 5] = dependent[i * 20 + 1] + dependent[i * 20 + 2]; // rank 19
  const cases: { name: string; m: number; l: number; y: Float32Array; tol: { orth: number; span: number } }[] = [
    { name: '5632×26, cond 10', m: 5632, l: 26, y: graded(1, 5632, 26, 10), tol: { orth: 1e-6, span: 1e-6 } },
    { name: '2048×32, cond 1e4', m: 2048, l: 32, y: graded(2, 2048, 32, 1e4), tol: { orth: 1e-6, span: 1e-6 } },
    { name: '300×1', m: 300, l: 1, y: graded(3, 300, 1, 1), tol: { orth: 1e-6, span: 1e-6 } },
    { name: '40×40 (square)', m: 40, l: 40, y: graded(4, 40, 40, 10), tol: { orth: 1e-5, span: 1e-5 } },
    // Beyond CholeskyQR2's reach in float32 (cond 1e9): Householder, still orthonormal.
    { name: '1000×12, cond 1e9', m: 1000, l: 12, y: graded(5, 1000, 12, 1e9), tol: { orth: 1e-5, span: 1e-5 } },
    { name: '3000×20 of rank 19', m: 3000, l: 20, y: dependent, tol: { orth: 1e-5, span: 1e-5 } },
    { name: '500×40 (wider than 32)', m: 500, l: 40, y: graded(6, 500, 40, 100), tol: { orth: 1e-5, span: 1e-5 } },
  ];
  for (const c of cases) {
    const q = await be.orthonormalize({ rows: c.m, cols: c.l, data: c.y });
    await t.test(c.name, () => {
      assert.deepEqual([q.rows, q.cols], [c.m, c.l]);
      const e = basisErrors(q.data, c.y, c.m, c.l);
      assert.ok(e.orth <= c.tol.orth, `max |QᵀQ − I| = ${e.orth.toExponential(2)}`);
      assert.ok(e.span <= c.tol.span, `‖Y − QQᵀY‖/‖Y‖ = ${e.span.toExponential(2)}`);
    });
  }
  await t.test('float64 input (Householder)', async () => {
    const y = Float64Array.from(graded(7, 700, 10, 100));
    const q = await be.orthonormalize({ rows: 700, cols: 10, data: y });
    assert.ok(q.data instanceof Float64Array);
    const e = basisErrors(q.data, y, 700, 10);
    assert.ok(e.orth <= 1e-13 && e.span <= 1e-13, JSON.stringify(e));
  });
  await t.test('the js backend', async () => {
    const y = graded(8, 400, 9, 10);
    const e = basisErrors((await jsBackend.orthonormalize({ rows: 400, cols: 9, data: y })).data, y, 400, 9);
    assert.ok(e.orth <= 1e-6 && e.span <= 1e-6, JSON.stringify(e));
  });
});

test('matmulAddHalf: C + alpha·A·B rounded to bf16/f16, within one storable gap (plus float32 rounding) of the float64 value', async (t) => {
  const be = native();
  for (const format of ['bf16', 'f16'] as const) {
    const { encode, decode } = HALF[format];
    for (const [m, n, k] of [[37, 100, 16], [8, 32, 1], [5, 7, 32], [300, 2048, 26], [64, 96, 33]] as const) {
      const c = gaussian(100 + m, m * n);
      c[3] = Number.NaN;
      c[4] = Number.POSITIVE_INFINITY;
      const a = gaussian(200 + n, m * k);
      const b = gaussian(300 + k, k * n);
      const alpha = -0.7;
      const out = await be.matmulAddHalf({ rows: m, cols: n, data: c }, { rows: m, cols: k, data: a }, { rows: k, cols: n, data: b }, alpha, false, false, format);
      await t.test(`${format} ${m}×${n}, k ${k}`, () => {
        let worst = 0;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            const { s, bound } = entry(a, b, i, j, k, n);
            const exact = c[i * n + j] + alpha * s;
            const got = decode(out[i * n + j]);
            if (Number.isNaN(exact)) {
              assert.ok(Number.isNaN(got), `(${i}, ${j}) should be NaN, got ${got}`);
              continue;
            }
            if (!Number.isFinite(exact)) {
              assert.equal(got, exact);
              continue;
            }
            // Rounded once: at most one gap between neighbouring storable values from the float64
            // result, plus the float32 sum's own error (a few ε32 of the terms' magnitudes), which
            // near a cancellation is many gaps.
            const nearest = decode(encode(exact));
            const gap = Math.abs(decode(encode(exact) + 1) - nearest);
            const f32Error = 4 * 2 ** -24 * (Math.abs(c[i * n + j]) + Math.abs(alpha) * bound);
            worst = Math.max(worst, Math.abs(got - exact) / (gap + f32Error));
          }
        }
        assert.ok(worst <= 1, `an output is ${worst.toFixed(2)} × (one ${format} gap + the float32 error bound) from the float64 result`);
      });
    }
  }
});
