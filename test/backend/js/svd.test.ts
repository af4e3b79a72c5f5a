import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix, SvdJob } from '../../../src/backend/types.js';
import { DTS, frob, frobDiff, logspace, lowRank, mat, mul, numpy, orthColumnsError, orthRowsError, randn, randomOrthonormal, toJson, withSingularValues, within, type Dt } from './util.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng } from '../../../src/core/rng.js';

/** Targets from the issue: reconstruction and value errors relative to ‖A‖_F and σ₁. */
const TOL: Record<Dt, { rec: number; orth: number; val: number }> = {
  f32: { rec: 1e-5, orth: 1e-4, val: 1e-5 },
  f64: { rec: 1e-12, orth: 1e-12, val: 1e-12 },
};

interface Case {
  name: string;
  a: Matrix;
}

function cases(dt: Dt): Case[] {
  return [
    { name: 'random square 100x100', a: randn(dt, 100, 100, 11) },
    { name: 'random tall 300x40', a: randn(dt, 300, 40, 12) },
    { name: 'random wide 40x300', a: randn(dt, 40, 300, 13) },
    { name: '1x1', a: randn(dt, 1, 1, 14) },
    { name: '1x7', a: randn(dt, 1, 7, 15) },
    { name: '7x1', a: randn(dt, 7, 1, 16) },
    { name: '2x2 negative diagonal', a: mat(dt, 2, 2, [-3, 0, 0, -4]) },
    { name: 'rank 5 of 60x50', a: mat(dt, 60, 50, lowRank(17, 60, 50, 5)) },
    { name: 'rank 3 of 20x45 (wide)', a: mat(dt, 20, 45, lowRank(18, 20, 45, 3)) },
    { name: 'ill-conditioned 80x60, s = logspace(0, -6)', a: mat(dt, 80, 60, withSingularValues(19, 80, 60, logspace(0, -6, 60))) },
    { name: 'ill-conditioned 50x70, s = logspace(0, -6)', a: mat(dt, 50, 70, withSingularValues(20, 50, 70, logspace(0, -6, 50))) },
    { name: 'orthogonal 50x50 (all s = 1)', a: mat(dt, 50, 50, randomOrthonormal(rng(21), 50, 50)) },
    { name: 'zero 6x4', a: mat(dt, 6, 4, new Float64Array(24)) },
  ];
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][]>('print(json.dumps([np.linalg.svd(M(x), compute_uv=False).tolist() for x in p]))', ALL.map((c) => toJson(c.a)));

/** ‖A − U·diag(s)·Vᵀ‖_F using the first k columns of U and rows of Vᵀ. */
function reconstructionError(a: Matrix, u: Matrix, s: ArrayLike<number>, vt: Matrix): number {
  const { rows: m, cols: n } = a;
  const k = s.length;
  const us = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * k + j] = u.data[i * u.cols + j] * s[j];
  const vtk = Float64Array.from(vt.data.subarray(0, k * n));
  return frobDiff(mul(us, vtk, m, k, n), a.data);
}

for (const [idx, c] of ALL.entries()) {
  test(`svd ${c.dt} ${c.name}: thin, full and values-only against numpy`, async (t) => {
    const tol = TOL[c.dt];
    const { rows: m, cols: n } = c.a;
    const k = Math.min(m, n);
    const before = Float64Array.from(c.a.data);
    const ref = REF[idx];
    const sigma1 = ref[0];
    const normA = frob(c.a.data);
    const worst = { rec: 0, orthU: 0, orthV: 0, val: 0 };
    const results: Partial<Record<SvdJob, Awaited<ReturnType<typeof jsBackend.svd>>>> = {};
    for (const job of ['thin', 'full', 'values'] as const) {
      const r = await jsBackend.svd(c.a, job);
      results[job] = r;
      assert.equal(r.s.constructor, c.a.data.constructor, 'singular values keep the element type');
      assert.equal(r.s.length, k);
      for (let i = 0; i < k; i++) {
        assert.ok(r.s[i] >= 0, `s[${i}] = ${r.s[i]} is negative`);
        if (i > 0) assert.ok(r.s[i] <= r.s[i - 1], `s not descending at ${i}`);
        const err = Math.abs(r.s[i] - ref[i]);
        worst.val = Math.max(worst.val, sigma1 > 0 ? err / sigma1 : err);
      }
      if (job === 'values') {
        assert.equal(r.u, undefined);
        assert.equal(r.vt, undefined);
        continue;
      }
      assert.ok(r.u !== undefined && r.vt !== undefined);
      const uCols = job === 'full' ? m : k;
      const vRows = job === 'full' ? n : k;
      assert.deepEqual([r.u.rows, r.u.cols, r.vt.rows, r.vt.cols], [m, uCols, vRows, n]);
      assert.equal(r.u.data.constructor, c.a.data.constructor);
      const rec = reconstructionError(c.a, r.u, r.s, r.vt);
      worst.rec = Math.max(worst.rec, normA > 0 ? rec / normA : rec);
      const ou = orthColumnsError(r.u.data, m, uCols);
      const ov = orthRowsError(r.vt.data, vRows, n);
      worst.orthU = Math.max(worst.orthU, ou);
      worst.orthV = Math.max(worst.orthV, ov);
    }
    assert.deepEqual(Array.from(results.values?.s ?? []), Array.from(results.thin?.s ?? []), 'values-only gives the same values');
    assert.deepEqual(Array.from(c.a.data), Array.from(before), 'input not modified');
    t.diagnostic(`rec ${worst.rec.toExponential(2)} orthU ${worst.orthU.toExponential(2)} orthV ${worst.orthV.toExponential(2)} val/s1 ${worst.val.toExponential(2)}`);
    within('reconstruction ‖A − USVᵀ‖_F/‖A‖_F', worst.rec, tol.rec);
    within('orthogonality of U', worst.orthU, tol.orth);
    within('orthogonality of Vᵀ', worst.orthV, tol.orth);
    within('singular values vs numpy, relative to σ₁', worst.val, tol.val);
    if (normA === 0) assert.ok(Array.from(results.thin?.s ?? []).every((v) => v === 0), 'zero matrix: all singular values 0');
  });
}

for (const dt of DTS) {
  test(`svd ${dt} empty matrices: shapes of every job`, async () => {
    for (const [m, n] of [[0, 3], [3, 0], [0, 0]] as const) {
      const a = mat(dt, m, n, []);
      const thin = await jsBackend.svd(a, 'thin');
      assert.equal(thin.s.length, 0);
      assert.deepEqual([thin.u?.rows, thin.u?.cols, thin.vt?.rows, thin.vt?.cols], [m, 0, 0, n]);
      const full = await jsBackend.svd(a, 'full');
      assert.deepEqual([full.u?.rows, full.u?.cols, full.vt?.rows, full.vt?.cols], [m, m, n, n]);
      assert.ok(full.u !== undefined && full.vt !== undefined);
      assert.equal(orthColumnsError(full.u.data, m, m), 0);
      assert.equal(orthColumnsError(full.vt.data, n, n), 0);
      const values = await jsBackend.svd(a, 'values');
      assert.equal(values.s.length, 0);
      assert.equal(values.s.constructor, a.data.constructor);
    }
  });
}

test('svd f64 of a 2x2 with known singular values', async () => {
  // [[3, 0], [4, 5]]: AᵀA = [[25, 20], [20, 25]], eigenvalues 45 and 5.
  const r = await jsBackend.svd(mat('f64', 2, 2, [3, 0, 4, 5]), 'values');
  const tol = 1e-15;
  within('σ₁ − √45', Math.abs(r.s[0] - Math.sqrt(45)), tol * Math.sqrt(45));
  within('σ₂ − √5', Math.abs(r.s[1] - Math.sqrt(5)), tol * Math.sqrt(45));
});

test('svd f64 keeps relative accuracy of tiny singular values of a graded matrix', async () => {
  // diag(1, 1e-20, 1e-40) scrambled by exact row/column permutations: the values are exact.
  const a = mat('f64', 3, 3, [0, 1e-20, 0, 0, 0, 1e-40, 1, 0, 0]);
  const r = await jsBackend.svd(a, 'thin');
  const relTol = 1e-15;
  for (const [i, want] of [1, 1e-20, 1e-40].entries()) within(`relative error of σ${i + 1}`, Math.abs(r.s[i] - want) / want, relTol);
});

test('svd f64 of a matrix scaled by 1e150 and 1e-150: no overflow or underflow', async () => {
  for (const scale of [1e150, 1e-150]) {
    const base = randn('f64', 30, 20, 22);
    const a = mat('f64', 30, 20, Array.from(base.data, (v) => v * scale));
    const r = await jsBackend.svd(a, 'thin');
    const ref = await jsBackend.svd(base, 'values');
    const tol = 1e-13;
    for (let i = 0; i < 20; i++) within(`scaled σ${i}`, Math.abs(r.s[i] / scale - ref.s[i]), tol * ref.s[0]);
    assert.ok(r.u !== undefined && r.vt !== undefined);
    within('orthogonality of U', orthColumnsError(r.u.data, 30, 20), 1e-12);
  }
});

test('svd iterations are bounded: a NaN input ends (result or E_NUMERIC), never hangs', async () => {
  const a = mat('f64', 4, 3, [1, 2, NaN, 4, 5, 6, 7, 8, 9, 1, 0, 1]);
  try {
    const r = await jsBackend.svd(a, 'thin');
    assert.equal(r.s.length, 3);
  } catch (err) {
    assert.ok(err instanceof LowrankError && err.code === 'E_NUMERIC');
  }
});
