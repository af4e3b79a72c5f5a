/**
 * Every linalg routine on every available backend, f32 and f64, against float64 references
 * (numpy, or the test's own float64 products) on seeded inputs. Tolerances are the targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as linalg from '../../src/linalg/index.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { pythonJson } from '../helpers/python.js';
import { as, fro, generalCases, mul, numpySvdvals, orthError, transpose, withSpectrum } from './cases.js';

const TOL = {
  f32: { recon: 1e-5, orth: 1e-4, sv: 1e-5, resid: 1e-5 },
  f64: { recon: 1e-12, orth: 1e-12, sv: 1e-12, resid: 1e-12 },
} as const;
const DTYPES: FloatDType[] = ['f32', 'f64'];
const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);

test('the backends CI expects are available', () => {
  const expected = (process.env.LOWRANK_EXPECT_BACKENDS ?? 'js').split(',').filter(Boolean);
  for (const name of expected) assert.ok(BACKENDS.includes(name as linalg.BackendName), `backend ${name} is unavailable: ${JSON.stringify(linalg.backendStatus())}`);
});

for (const be of BACKENDS) {
  for (const dtype of DTYPES) {
    const tol = TOL[dtype];

    test(`${be} ${dtype}: svd reconstructs, is orthogonal, and matches numpy's singular values`, async () => {
      linalg.useBackend(be);
      const cases = generalCases();
      const ref = numpySvdvals(cases, dtype);
      for (const [ci, c] of cases.entries()) {
        const a = as(c, dtype);
        const { u, s, vt } = await linalg.svd(a);
        const k = Math.min(c.rows, c.cols);
        assert.deepEqual([u.shape, s.shape, vt.shape], [[c.rows, k], [k], [k, c.cols]], c.name);
        const us = Float64Array.from(u.data, (v, i) => v * s.data[i % k]);
        const rec = mul(us, c.rows, k, vt.data, c.cols);
        const err = fro(rec.map((v, i) => v - a.data[i]));
        assert.ok(err <= tol.recon * (fro(a.data) || 1), `${c.name}: reconstruction ${err / (fro(a.data) || 1)}`);
        assert.ok(orthError(u.data, c.rows, k) <= tol.orth, `${c.name}: UᵀU − I = ${orthError(u.data, c.rows, k)}`);
        assert.ok(orthError(transpose(vt.data, k, c.cols), c.cols, k) <= tol.orth, `${c.name}: VᵀV − I`);
        const s1 = ref[ci][0] ?? 0;
        for (let i = 0; i < k; i++) {
          assert.ok(Math.abs(s.data[i] - ref[ci][i]) <= tol.sv * s1 + 1e-300, `${c.name}: σ${i} = ${s.data[i]}, numpy ${ref[ci][i]}`);
          if (i > 0) assert.ok(s.data[i] <= s.data[i - 1], `${c.name}: descending`);
        }
        const vals = await linalg.svdvals(a);
        for (let i = 0; i < k; i++) assert.ok(Math.abs(vals.data[i] - ref[ci][i]) <= tol.sv * s1 + 1e-300, `${c.name}: svdvals σ${i}`);
      }
    });

    test(`${be} ${dtype}: full svd gives square orthogonal factors`, async () => {
      linalg.useBackend(be);
      for (const c of generalCases().filter((x) => x.rows !== x.cols)) {
        const { u, s, vt } = await linalg.svd(as(c, dtype), { full: true });
        assert.deepEqual([u.shape, vt.shape, s.shape], [[c.rows, c.rows], [c.cols, c.cols], [Math.min(c.rows, c.cols)]], c.name);
        assert.ok(orthError(u.data, c.rows, c.rows) <= tol.orth, `${c.name}: U`);
        assert.ok(orthError(transpose(vt.data, c.cols, c.cols), c.cols, c.cols) <= tol.orth, `${c.name}: V`);
      }
    });

    test(`${be} ${dtype}: qr, lu, ldu reconstruct; cholesky, solve, solveTriangular, lstsq solve`, async () => {
      linalg.useBackend(be);
      for (const c of generalCases()) {
        const a = as(c, dtype);
        const na = fro(a.data) || 1;
        const { q, r } = await linalg.qr(a);
        const k = Math.min(c.rows, c.cols);
        assert.ok(fro(mul(q.data, c.rows, k, r.data, c.cols).map((v, i) => v - a.data[i])) <= tol.recon * na, `${c.name}: QR = A`);
        assert.ok(orthError(q.data, c.rows, k) <= tol.orth, `${c.name}: Q orthonormal`);
        for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) assert.equal(r.data[i * c.cols + j], 0, `${c.name}: R upper`);
        const { l, u, perm } = await linalg.lu(a);
        const pa = Float64Array.from({ length: c.rows * c.cols }, (_, idx) => a.data[perm[Math.floor(idx / c.cols)] * c.cols + (idx % c.cols)]);
        assert.ok(fro(mul(l.data, c.rows, k, u.data, c.cols).map((v, i) => v - pa[i])) <= tol.recon * na, `${c.name}: PA = LU`);
      }
      const n = 30;
      const g = rng(20);
      const m = g.fillNormal(new Float64Array(n * n));
      const spd = tensor(dtype, [n, n], (dtype === 'f32' ? Float32Array : Float64Array).from(mul(m, n, n, transpose(m, n, n), n).map((v, i) => v + (i % (n + 1) === 0 ? n : 0))));
      const L = await linalg.cholesky(spd);
      assert.ok(fro(mul(L.data, n, n, transpose(L.data, n, n), n).map((v, i) => v - spd.data[i])) <= tol.recon * fro(spd.data), 'L·Lᵀ = A');
      const b = tensor(dtype, [n, 3], (dtype === 'f32' ? Float32Array : Float64Array).from(g.fillNormal(new Float64Array(n * 3))));
      const resid = (x: Tensor<FloatDType>, mat: ArrayLike<number>): number => fro(mul(mat, n, n, x.data, 3).map((v, i) => v - b.data[i])) / fro(b.data);
      assert.ok(resid(await linalg.solve(spd, b), spd.data) <= tol.resid * 100, 'solve');
      assert.ok(resid(await linalg.solveTriangular(L, b, { lower: true }), L.data) <= tol.resid * 100, 'lower solve');
      assert.ok(resid(await linalg.solveTriangular(L, b, { lower: true, trans: true }), transpose(L.data, n, n)) <= tol.resid * 100, 'transposed solve');
      const { d, perm } = await linalg.ldu(spd);
      assert.equal(d.shape[0], n);
      assert.ok(perm.length === n);
      const ls = await linalg.lstsq(as(generalCases()[1], dtype), tensor(dtype, [120], (dtype === 'f32' ? Float32Array : Float64Array).from(g.fillNormal(new Float64Array(120)))));
      assert.equal(ls.rank, 30);
      assert.deepEqual(ls.x.shape, [30]);
      const notPd = tensor(dtype, [2, 2], (dtype === 'f32' ? Float32Array : Float64Array).of(1, 2, 2, 1));
      await assert.rejects(linalg.cholesky(notPd), (e: unknown) => e instanceof LowrankError && e.code === 'E_NUMERIC');
    });

    test(`${be} ${dtype}: eigh matches numpy and its vectors satisfy A·v = λ·v`, async () => {
      linalg.useBackend(be);
      const n = 48;
      const m = rng(30).fillNormal(new Float64Array(n * n));
      const sym = mul(m, n, n, transpose(m, n, n), n);
      const a = tensor(dtype, [n, n], (dtype === 'f32' ? Float32Array : Float64Array).from(sym));
      const ref = pythonJson<number[]>(`import sys, json; a = np.array(json.loads(sys.stdin.read()), dtype=np.${dtype === 'f32' ? 'float32' : 'float64'}).astype(np.float64).reshape(${n}, ${n}); print(json.dumps(np.linalg.eigvalsh(a).tolist()))`, [], JSON.stringify(Array.from(sym)));
      const { values, vectors } = await linalg.eigh(a);
      const top = Math.max(...ref.map(Math.abs));
      ref.forEach((v, i) => assert.ok(Math.abs(values.data[i] - v) <= tol.sv * top * 10, `λ${i} = ${values.data[i]}, numpy ${v}`));
      const av = mul(a.data, n, n, vectors.data, n);
      const vl = Float64Array.from(vectors.data, (v, i) => v * values.data[i % n]);
      assert.ok(fro(av.map((v, i) => v - vl[i])) <= tol.resid * 10 * fro(a.data), 'A·V = V·Λ');
      assert.ok(orthError(vectors.data, n, n) <= tol.orth, 'V orthonormal');
    });

    test(`${be} ${dtype}: rsvd with niter=4 captures the top-r energy within 1e-3 of exact SVD`, async () => {
      linalg.useBackend(be);
      const spectrum = Array.from({ length: 80 }, (_, i) => Math.exp(-i / 8));
      const a = as(withSpectrum('decaying 200x150', 200, 150, spectrum, 40), dtype);
      const r = 16;
      const { u, s, vt } = await linalg.rsvd(a, r, { niter: 4, seed: 3 });
      assert.deepEqual([u.shape, s.shape, vt.shape], [[200, r], [r], [r, 150]]);
      const exact = await linalg.svdvals(a);
      const energy = (x: ArrayLike<number>, k: number): number => Array.from(x).slice(0, k).reduce((acc, v) => acc + v * v, 0);
      const rel = Math.abs(energy(s.data, r) - energy(exact.data, r)) / energy(exact.data, r);
      assert.ok(rel <= 1e-3, `energy captured differs by ${rel}`);
      const again = await linalg.rsvd(a, r, { niter: 4, seed: 3 });
      assert.deepEqual(again.s.data, s.data, 'same seed, same result');
      const small = await linalg.svdSmallest(a, 3);
      assert.ok(Math.abs(small.s.data[0] - exact.data[exact.data.length - 1]) <= tol.sv * exact.data[0], 'svdSmallest gives the bottom triplet');
    });

    test(`${be} ${dtype}: matmul (transposes, batches), kronSvd, principalAngles, dctBasis`, async () => {
      linalg.useBackend(be);
      const g = rng(50);
      const A = Float64Array.from(g.fillNormal(new Float64Array(2 * 5 * 4)));
      const B = Float64Array.from(g.fillNormal(new Float64Array(2 * 4 * 3)));
      const F = dtype === 'f32' ? Float32Array : Float64Array;
      const c = await linalg.matmul(tensor(dtype, [2, 5, 4], F.from(A)), tensor(dtype, [2, 4, 3], F.from(B)));
      assert.deepEqual(c.shape, [2, 5, 3]);
      for (let bi = 0; bi < 2; bi++) {
        const want = mul(F.from(A.subarray(bi * 20, bi * 20 + 20)), 5, 4, F.from(B.subarray(bi * 12, bi * 12 + 12)), 3);
        want.forEach((v, i) => assert.ok(Math.abs(c.data[bi * 15 + i] - v) <= tol.resid * 10 * (1 + Math.abs(v)), 'batched product'));
      }
      const at = await linalg.matmul(tensor(dtype, [4, 5], F.from(transpose(A.subarray(0, 20), 5, 4))), tensor(dtype, [3, 4], F.from(transpose(B.subarray(0, 12), 4, 3))), { transA: true, transB: true });
      at.data.forEach((v, i) => assert.ok(Math.abs(v - c.data[i]) <= tol.resid * 10 * (1 + Math.abs(v)), 'transposes'));

      // A planted sum of two Kronecker products is recovered exactly.
      const k1 = [g.fillNormal(new Float64Array(6)), g.fillNormal(new Float64Array(6))];
      const k2 = [g.fillNormal(new Float64Array(20)), g.fillNormal(new Float64Array(20))];
      const w = new Float64Array(12 * 10); // (2·... ) a: 3×2, b: 4×5 → w: 12×10
      for (let t = 0; t < 2; t++)
        for (let i1 = 0; i1 < 3; i1++) for (let j1 = 0; j1 < 2; j1++) for (let i2 = 0; i2 < 4; i2++) for (let j2 = 0; j2 < 5; j2++) w[(i1 * 4 + i2) * 10 + j1 * 5 + j2] += k1[t][i1 * 2 + j1] * k2[t][i2 * 5 + j2];
      const ks = await linalg.kronSvd(tensor(dtype, [12, 10], F.from(w)), [3, 2], [4, 5], 2);
      const rec = new Float64Array(120);
      for (let t = 0; t < 2; t++)
        for (let i1 = 0; i1 < 3; i1++) for (let j1 = 0; j1 < 2; j1++) for (let i2 = 0; i2 < 4; i2++) for (let j2 = 0; j2 < 5; j2++) rec[(i1 * 4 + i2) * 10 + j1 * 5 + j2] += ks.a[t].data[i1 * 2 + j1] * ks.b[t].data[i2 * 5 + j2];
      assert.ok(fro(rec.map((v, i) => v - w[i])) <= tol.recon * 10 * fro(w), 'kronSvd recovers a planted Kronecker sum');

      // Principal angles: a basis and the same basis turned by known angles in orthogonal planes.
      const n = 20;
      const angles = [1e-3, 0.3, 1.2];
      const u1 = new Float64Array(n * 3);
      const u2 = new Float64Array(n * 3);
      for (let j = 0; j < 3; j++) {
        u1[j * 3 + j] = 1;
        u2[j * 3 + j] = Math.cos(angles[j]);
        u2[(3 + j) * 3 + j] = Math.sin(angles[j]);
      }
      const th = await linalg.principalAngles(tensor(dtype, [n, 3], F.from(u1)), tensor(dtype, [n, 3], F.from(u2)));
      angles.forEach((v, i) => assert.ok(Math.abs(th.data[i] - v) <= (dtype === 'f32' ? 1e-5 : 1e-12) + 1e-6 * v, `angle ${i}: ${th.data[i]} vs ${v}`));

      const dct = linalg.dctBasis(16, dtype);
      assert.ok(orthError(transpose(dct.data, 16, 16), 16, 16) <= tol.orth, 'DCT basis orthonormal');
      assert.ok(Math.abs(dct.data[0] - 1 / 4) <= tol.resid && Math.abs(dct.data[16 + 0] - Math.sqrt(2 / 16) * Math.cos(Math.PI / 32)) <= tol.resid, 'DCT-II definition');
    });

    test(`${be} ${dtype}: NaN/Inf and shape errors are typed and name the routine`, async () => {
      linalg.useBackend(be);
      const F = dtype === 'f32' ? Float32Array : Float64Array;
      const bad = tensor(dtype, [3, 3], F.of(1, 2, 3, 4, Number.NaN, 6, 7, 8, 9));
      const good = tensor(dtype, [3, 3], F.of(4, 1, 0, 1, 4, 1, 0, 1, 4));
      const calls: [string, () => Promise<unknown>][] = [
        ['svd', () => linalg.svd(bad)], ['svdvals', () => linalg.svdvals(bad)], ['qr', () => linalg.qr(bad)], ['eigh', () => linalg.eigh(bad)],
        ['lu', () => linalg.lu(bad)], ['cholesky', () => linalg.cholesky(bad)], ['matmul', () => linalg.matmul(good, bad)],
        ['solve', () => linalg.solve(good, bad)], ['rsvd', () => linalg.rsvd(bad, 1)], ['lstsq', () => linalg.lstsq(bad, good)],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE' && e.message.startsWith(`${name}:`), name);
      }
      const scan = linalg.backend();
      for (const n of [1, 2, 3, 4, 5, 17, 1000]) {
        for (const pos of [0, Math.floor(n / 2), n - 1]) {
          for (const v of [Number.NaN, Infinity, -Infinity]) {
            const x = new F(n).map((_v: number, i: number) => i - 3.5);
            assert.ok(scan.allFinite(x), `${be}: finite ${n}`);
            x[pos] = v;
            assert.ok(!scan.allFinite(x), `${be}: ${v} at ${pos} of ${n}`);
          }
        }
      }
      assert.ok(scan.allFinite(F.of(dtype === 'f32' ? 3.4e38 : 1.7e308, -0, 1e-45)), 'largest finite, -0 and subnormals are finite');
      const inf = tensor(dtype, [2, 2], F.of(1, Infinity, 0, 1));
      await assert.rejects(linalg.svd(inf), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE');
      await assert.rejects(linalg.matmul(good, tensor(dtype, [2, 3])), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
      await assert.rejects(linalg.eigh(tensor(dtype, [2, 3])), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
      await assert.rejects(linalg.svd(tensor(dtype, [2, 2, 2])), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
      await assert.rejects(linalg.rsvd(good, 4), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
      await assert.rejects(linalg.solve(tensor(dtype, [2, 2]), tensor(dtype, [2])), (e: unknown) => e instanceof LowrankError && e.code === 'E_NUMERIC');
      const empty = await linalg.svd(tensor(dtype, [0, 3]));
      assert.deepEqual([empty.u.shape, empty.s.shape, empty.vt.shape], [[0, 0], [0], [0, 3]], 'empty input: empty factors');
    });
  }
}
