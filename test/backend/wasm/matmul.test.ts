/**
 * The wasm backend's matrix products against float64 references computed here, for both element
 * types, both kernel builds (relaxed SIMD and SIMD128), all four transpose combinations, and shapes
 * that are and are not multiples of the kernels' blocks (micro-tiles 6×8 / 6×4, MC 96 / 48,
 * KC 256, NC 1024 / 512) and of the threads' row and column units (24, 8). Threaded,
 * single-threaded and tiled runs must agree bit for bit.
 *
 * Tolerance, per element: |C − C_ref| ≤ tol · ‖op(A) row i‖₂ · ‖op(B) column j‖₂ with tol 1e-5
 * (float32, computed in float32) and 1e-12 (float64); the reference is the float64 product of the
 * same (rounded) inputs.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmBackend, type WasmBackend } from '../../../src/backend/wasm/index.js';
import type { FloatArray, Matrix } from '../../../src/backend/types.js';
import { rng } from '../../../src/core/rng.js';

type Dt = 'f32' | 'f64';
const DTS: readonly Dt[] = ['f32', 'f64'];
const TOL: Record<Dt, number> = { f32: 1e-5, f64: 1e-12 };
const TRANSPOSES: readonly (readonly [boolean, boolean])[] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

/** [m, k, n] of C = op(A) (m×k) · op(B) (k×n). */
const SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [1, 300, 1],
  [1, 17, 33],
  [33, 17, 1],
  [1, 40, 530],
  [530, 40, 1],
  [7, 1, 9],
  [4, 8, 8],
  [5, 9, 9],
  [6, 8, 8],
  [12, 5, 4],
  [48, 256, 48],
  [96, 256, 64],
  [97, 257, 101],
  [130, 300, 70],
  [70, 300, 130],
  [5, 600, 3],
  [9, 20, 2100],
  [203, 513, 37],
];

const single = createWasmBackend({ threads: 1 });
const threaded = createWasmBackend({ threads: 2, minThreadedFlops: 0 });
const plain = createWasmBackend({ threads: 2, simd: 'simd128', minThreadedFlops: 0 });
const plainSingle = createWasmBackend({ threads: 1, simd: 'simd128' });
/** A working limit of 96 KiB forces tiles of C and slices of k (64-multiples) on the larger shapes. */
const tiled = createWasmBackend({ threads: 2, minThreadedFlops: 0, maxWorkingBytes: 96 * 1024 });
const ALL: readonly WasmBackend[] = [single, threaded, plain, plainSingle, tiled];
after(() => {
  for (const b of ALL) b.close();
});

function random(dt: Dt, rows: number, cols: number, seed: number): Matrix {
  const values = rng(seed).fillNormal(new Float64Array(rows * cols));
  return { rows, cols, data: dt === 'f32' ? Float32Array.from(values) : values };
}

/** op(X) as a float64 row-major array. */
function op(x: Matrix, trans: boolean): Float64Array {
  const out = new Float64Array(x.rows * x.cols);
  if (!trans) {
    out.set(x.data);
    return out;
  }
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) out[j * x.rows + i] = x.data[i * x.cols + j];
  return out;
}

/** Checks C against the float64 product element by element, scaled by the row and column norms. */
function checkProduct(dt: Dt, c: Matrix, a: Float64Array, b: Float64Array, m: number, k: number, n: number, label: string): void {
  assert.equal(c.rows, m, `${label}: rows`);
  assert.equal(c.cols, n, `${label}: cols`);
  assert.equal(c.data.length, m * n, `${label}: length`);
  assert.ok(dt === 'f32' ? c.data instanceof Float32Array : c.data instanceof Float64Array, `${label}: element type`);
  const rowNorm = new Float64Array(m);
  const colNorm = new Float64Array(n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) rowNorm[i] += a[i * k + p] ** 2;
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) colNorm[j] += b[p * n + j] ** 2;
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      const scale = Math.sqrt(rowNorm[i] * colNorm[j]);
      const err = Math.abs(c.data[i * n + j] - s) / (scale > 0 ? scale : 1);
      if (!(err <= worst)) worst = err;
    }
  }
  assert.ok(worst <= TOL[dt], `${label}: worst scaled error ${worst} > ${TOL[dt]}`);
}

function sameBits(x: FloatArray, y: FloatArray, label: string): void {
  assert.equal(x.length, y.length, `${label}: lengths`);
  for (let i = 0; i < x.length; i++) {
    if (!Object.is(x[i], y[i])) assert.fail(`${label}: element ${i} differs (${x[i]} vs ${y[i]})`);
  }
}

test('wasm backends report their kernel build and threads', () => {
  assert.ok(single.info.simd === 'relaxed' || single.info.simd === 'simd128');
  assert.equal(single.info.threads, 1);
  assert.equal(plain.info.simd, 'simd128');
  assert.equal(single.name, 'wasm');
  if (threaded.info.sharedMemory) assert.equal(threaded.info.threads, 2);
});

for (const dt of DTS) {
  for (const [m, k, n] of SHAPES) {
    test(`wasm matmul ${dt} ${m}x${k} · ${k}x${n}, all transposes, all builds and thread counts agree`, async () => {
      for (const [ta, tb] of TRANSPOSES) {
        const seed = m * 1_000_003 + k * 1009 + n * 7 + (ta ? 1 : 0) + (tb ? 2 : 0) + (dt === 'f32' ? 0 : 5);
        const a = ta ? random(dt, k, m, seed) : random(dt, m, k, seed);
        const b = tb ? random(dt, n, k, seed + 1) : random(dt, k, n, seed + 1);
        const aBefore = a.data.slice();
        const bBefore = b.data.slice();
        const label = `${dt} ${m}x${k}x${n} transA=${ta} transB=${tb}`;
        const opA = op(a, ta);
        const opB = op(b, tb);

        const c1 = await single.matmul(a, b, ta, tb);
        checkProduct(dt, c1, opA, opB, m, k, n, `${label} (relaxed/auto, 1 thread)`);
        const c2 = await threaded.matmul(a, b, ta, tb);
        sameBits(c2.data, c1.data, `${label}: 2 threads vs 1`);
        const c3 = await tiled.matmul(a, b, ta, tb);
        sameBits(c3.data, c1.data, `${label}: tiled vs whole`);

        const p1 = await plainSingle.matmul(a, b, ta, tb);
        checkProduct(dt, p1, opA, opB, m, k, n, `${label} (simd128, 1 thread)`);
        const p2 = await plain.matmul(a, b, ta, tb);
        sameBits(p2.data, p1.data, `${label}: simd128 2 threads vs 1`);

        sameBits(a.data, aBefore, `${label}: A unchanged`);
        sameBits(b.data, bBefore, `${label}: B unchanged`);
        assert.notEqual(c1.data, a.data);
      }
    });
  }
}

test('wasm matmul of empty shapes: m, n or k = 0', async () => {
  for (const dt of DTS) {
    const c = await threaded.matmul(random(dt, 3, 0, 1), random(dt, 0, 4, 2), false, false);
    assert.equal(c.rows, 3);
    assert.equal(c.cols, 4);
    assert.deepEqual(Array.from(c.data), new Array<number>(12).fill(0));
    const e = await single.matmul(random(dt, 0, 5, 3), random(dt, 5, 6, 4), false, false);
    assert.equal(e.rows, 0);
    assert.equal(e.cols, 6);
    assert.equal(e.data.length, 0);
    const f = await single.matmul(random(dt, 5, 2, 5), random(dt, 0, 2, 6), false, true);
    assert.equal(f.cols, 0);
  }
});

test('wasm matmul of subarray views and of concurrent calls', async () => {
  const buffer = rng(77).fillNormal(new Float32Array(10 + 40 * 30 + 30 * 20));
  const a: Matrix = { rows: 40, cols: 30, data: buffer.subarray(10, 10 + 1200) };
  const b: Matrix = { rows: 30, cols: 20, data: buffer.subarray(1210) };
  const results = await Promise.all([threaded.matmul(a, b, false, false), threaded.matmul(b, a, true, true), single.matmul(a, b, false, false)]);
  checkProduct('f32', results[0], op(a, false), op(b, false), 40, 30, 20, 'subarray A·B');
  checkProduct('f32', results[1], op(b, true), op(a, true), 20, 30, 40, 'subarray Bᵀ·Aᵀ');
  sameBits(results[2].data, results[0].data, 'concurrent single vs threaded');
});

test('wasm matmul 512x512 threaded equals single-threaded above the default threshold', async () => {
  const big = createWasmBackend({ threads: 2 });
  try {
    for (const dt of DTS) {
      const a = random(dt, 512, 384, 91);
      const b = random(dt, 384, 520, 92);
      sameBits((await big.matmul(a, b, false, false)).data, (await single.matmul(a, b, false, false)).data, `${dt} 512x384x520`);
    }
  } finally {
    big.close();
  }
});
