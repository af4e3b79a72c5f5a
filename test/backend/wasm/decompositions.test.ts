/**
 * The wasm decompositions beyond what test/linalg checks on every backend: the same results,
 * bit for bit, on one thread and on two, on both kernel builds, and when the rotation log fills up
 * and is applied on the calling thread mid-iteration; and agreement with the float64 js reference
 * (singular values and eigenvalues within 1e-5 of the largest in float32, 1e-12 in float64).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import { createWasmBackend } from '../../../src/backend/wasm/index.js';
import type { FloatArray, Matrix, SvdJob } from '../../../src/backend/types.js';
import { rng } from '../../../src/core/rng.js';

type Dt = 'f32' | 'f64';
const TOL: Record<Dt, number> = { f32: 1e-5, f64: 1e-12 };

const single = createWasmBackend({ threads: 1 });
const threaded = createWasmBackend({ threads: 2 });
const plain = createWasmBackend({ threads: 2, simd: 'simd128' });
const plainSingle = createWasmBackend({ threads: 1, simd: 'simd128' });
/** A log of 1000 rotations fills many times over on these sizes. */
const shortLog = createWasmBackend({ threads: 2, maxRotationLog: 1000 });
after(() => {
  for (const b of [single, threaded, plain, plainSingle, shortLog]) b.close();
});

function random(dt: Dt, rows: number, cols: number, seed: number): Matrix {
  const values = rng(seed).fillNormal(new Float64Array(rows * cols));
  return { rows, cols, data: dt === 'f32' ? Float32Array.from(values) : values };
}

function symmetric(dt: Dt, n: number, seed: number): Matrix {
  const values = rng(seed).fillNormal(new Float64Array(n * n));
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) values[j * n + i] = values[i * n + j];
  return { rows: n, cols: n, data: dt === 'f32' ? Float32Array.from(values) : values };
}

function sameBits(x: FloatArray | undefined, y: FloatArray | undefined, label: string): void {
  assert.ok(x !== undefined && y !== undefined, `${label}: present`);
  assert.equal(x.length, y.length, `${label}: lengths`);
  for (let i = 0; i < x.length; i++) {
    if (!Object.is(x[i], y[i])) assert.fail(`${label}: element ${i} differs (${x[i]} vs ${y[i]})`);
  }
}

function closeToReference(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, label: string): void {
  let big = 0;
  for (let i = 0; i < ref.length; i++) big = Math.max(big, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(got[i] - ref[i]) <= tol * big, `${label}: value ${i} is ${got[i]}, reference ${ref[i]} (tolerance ${tol}·${big})`);
  }
}

for (const dt of ['f32', 'f64'] as const) {
  // Shapes large enough that every step is split between the threads.
  for (const [m, n] of [
    [300, 260],
    [260, 300],
  ] as const) {
    test(`wasm svd ${dt} ${m}x${n}: threads, builds and a short rotation log give identical results`, async () => {
      const a = random(dt, m, n, m * 31 + n + (dt === 'f32' ? 0 : 1));
      const ref = await jsBackend.svd({ rows: m, cols: n, data: Float64Array.from(a.data) }, 'values');
      for (const job of ['thin', 'full', 'values'] as SvdJob[]) {
        const one = await single.svd(a, job);
        closeToReference(one.s, ref.s, TOL[dt], `${job} singular values`);
        for (const [other, name] of [
          [threaded, '2 threads'],
          [shortLog, 'short log'],
        ] as const) {
          const r = await other.svd(a, job);
          sameBits(r.s, one.s, `${job} s, ${name}`);
          if (job !== 'values') {
            sameBits(r.u?.data, one.u?.data, `${job} U, ${name}`);
            sameBits(r.vt?.data, one.vt?.data, `${job} Vt, ${name}`);
          }
        }
        const p1 = await plainSingle.svd(a, job);
        const p2 = await plain.svd(a, job);
        closeToReference(p1.s, ref.s, TOL[dt], `${job} singular values, simd128`);
        sameBits(p2.s, p1.s, `${job} s, simd128 2 threads vs 1`);
        if (job !== 'values') sameBits(p2.u?.data, p1.u?.data, `${job} U, simd128 2 threads vs 1`);
      }
    });

    test(`wasm qr ${dt} ${m}x${n}: one thread and two give identical results`, async () => {
      const a = random(dt, m, n, m * 17 + n + (dt === 'f32' ? 0 : 1));
      const one = await single.qr(a);
      const two = await threaded.qr(a);
      sameBits(two.q.data, one.q.data, 'Q');
      sameBits(two.r.data, one.r.data, 'R');
      const ref = await jsBackend.qr({ rows: m, cols: n, data: Float64Array.from(a.data) });
      // R is unique up to the signs of its rows; both use Householder's sign rule, so compare |R|.
      closeToReference(Array.from(one.r.data, Math.abs), Array.from(ref.r.data, Math.abs), 10 * TOL[dt], 'R against the js reference');
    });
  }

  test(`wasm eigh ${dt} 280x280: threads and a short rotation log give identical results`, async () => {
    const a = symmetric(dt, 280, dt === 'f32' ? 7 : 8);
    const ref = await jsBackend.eigh({ rows: 280, cols: 280, data: Float64Array.from(a.data) }, false);
    const one = await single.eigh(a, true);
    closeToReference(one.values, ref.values, TOL[dt], 'eigenvalues');
    for (const [other, name] of [
      [threaded, '2 threads'],
      [shortLog, 'short log'],
    ] as const) {
      const r = await other.eigh(a, true);
      sameBits(r.values, one.values, `values, ${name}`);
      sameBits(r.vectors?.data, one.vectors?.data, `vectors, ${name}`);
    }
    const values = await threaded.eigh(a, false);
    closeToReference(values.values, ref.values, TOL[dt], 'eigenvalues only');
  });
}

test('wasm backend: several decompositions started at once all finish correctly', async () => {
  const a = random('f64', 120, 90, 3);
  const [s1, q, s2] = await Promise.all([threaded.svd(a, 'thin'), threaded.qr(a), threaded.svd(a, 'values')]);
  sameBits(s1.s, s2.s, 'singular values of the two concurrent calls');
  assert.equal(q.q.rows, 120);
  assert.equal(q.q.cols, 90);
});

test('wasm float32 decompositions of rank-one matrices stay finite (the trailing blocks underflow to float32 denormals)', async () => {
  // u·vᵀ with ±1 and ±0.5/−0.25 patterns: the reduction leaves blocks of 1e-20 … 1e-45 behind it.
  const n = 64;
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) data[i * n + j] = (i % 2 === 0 ? 1 : -1) * (j % 3 === 0 ? 0.5 : -0.25);
  const a: Matrix = { rows: n, cols: n, data };
  const ref = await jsBackend.svd({ rows: n, cols: n, data: Float64Array.from(data) }, 'values');
  for (const be of [single, threaded]) {
    for (const job of ['values', 'thin'] as SvdJob[]) {
      const r = await be.svd(a, job);
      closeToReference(r.s, ref.s, TOL.f32, `rank-one svd ${job}`);
      for (const x of [r.u?.data ?? [], r.vt?.data ?? []]) assert.ok(Array.from(x).every(Number.isFinite), `rank-one svd ${job}: finite vectors`);
    }
    const sym: Matrix = { rows: n, cols: n, data: new Float32Array(n * n) };
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sym.data[i * n + j] = data[i] * data[j]; // (first row)ᵀ(first row): rank one
    const e = await be.eigh(sym, true);
    const eref = await jsBackend.eigh({ rows: n, cols: n, data: Float64Array.from(sym.data) }, false);
    closeToReference(e.values, eref.values, TOL.f32, 'rank-one eigh');
    assert.ok(Array.from(e.vectors?.data ?? []).every(Number.isFinite), 'rank-one eigh: finite vectors');
    const q = await be.qr(a);
    assert.ok(Array.from(q.q.data).every(Number.isFinite) && Array.from(q.r.data).every(Number.isFinite), 'rank-one qr: finite');
  }
});
