import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { DTS, frob, frobDiff, lowRank, mat, mul, randn, within, type Dt } from './util.js';

/** ‖P·A − L·U‖_F / ‖A‖_F. */
const TOL: Record<Dt, number> = { f32: 1e-6, f64: 1e-13 };

interface Case {
  name: string;
  a: Matrix;
}

function cases(dt: Dt): Case[] {
  return [
    { name: 'random square 120x120', a: randn(dt, 120, 120, 401) },
    { name: 'random tall 200x30', a: randn(dt, 200, 30, 402) },
    { name: 'random wide 30x200', a: randn(dt, 30, 200, 403) },
    { name: '1x1', a: randn(dt, 1, 1, 404) },
    { name: '1x6', a: randn(dt, 1, 6, 405) },
    { name: '6x1', a: randn(dt, 6, 1, 406) },
    { name: 'singular: rank 5 of 40x40', a: mat(dt, 40, 40, lowRank(407, 40, 40, 5)) },
    { name: 'zero column first', a: mat(dt, 3, 3, [0, 1, 2, 0, 3, 4, 0, 5, 7]) },
    { name: 'zero 4x3', a: mat(dt, 4, 3, new Float64Array(12)) },
  ];
}

/** Unpacks L (m×k, unit diagonal) and U (k×n) from the packed m×n LU. */
function unpack(lu: Matrix): { l: Float64Array; u: Float64Array; k: number } {
  const { rows: m, cols: n } = lu;
  const k = Math.min(m, n);
  const l = new Float64Array(m * k);
  const u = new Float64Array(k * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = lu.data[i * n + j];
      if (j < i && j < k) l[i * k + j] = v;
      else if (i < k && j >= i) u[i * n + j] = v;
    }
    if (i < k) l[i * k + i] = 1;
  }
  return { l, u, k };
}

for (const dt of DTS) {
  for (const c of cases(dt)) {
    test(`lu ${dt} ${c.name}: P·A = L·U, |L| ≤ 1, perm a permutation`, async (t) => {
      const { rows: m, cols: n } = c.a;
      const before = Float64Array.from(c.a.data);
      const r = await jsBackend.lu(c.a);
      assert.deepEqual([r.lu.rows, r.lu.cols], [m, n]);
      assert.equal(r.lu.data.constructor, c.a.data.constructor);
      assert.ok(r.perm instanceof Int32Array);
      assert.deepEqual(Array.from(r.perm).sort((x, y) => x - y), Array.from({ length: m }, (_, i) => i));
      const { l, u, k } = unpack(r.lu);
      for (let i = 0; i < l.length; i++) assert.ok(Math.abs(l[i]) <= 1, 'partial pivoting keeps |L| ≤ 1');
      const pa = new Float64Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) pa[i * n + j] = c.a.data[r.perm[i] * n + j];
      const normA = frob(c.a.data);
      const errAbs = frobDiff(mul(l, u, m, k, n), pa);
      const err = normA > 0 ? errAbs / normA : errAbs;
      t.diagnostic(`‖PA − LU‖/‖A‖ ${err.toExponential(2)}`);
      within('‖PA − LU‖_F/‖A‖_F', err, TOL[dt]);
      // The first pivot is the largest element of column 0.
      if (m > 0 && n > 0) {
        let best = 0;
        for (let i = 0; i < m; i++) best = Math.max(best, Math.abs(c.a.data[i * n]));
        assert.equal(Math.abs(c.a.data[r.perm[0] * n]), best);
      }
      assert.deepEqual(Array.from(c.a.data), Array.from(before), 'input not modified');
    });
  }

  test(`lu ${dt} of a 3x3 with a known factorization`, async () => {
    // Pivot 4 (row 1), then 2 (row 2, beating |−0.5|): P·A = [[4, 3, 1], [0, 2, 4], [2, 1, 1]],
    // L = [[1, 0, 0], [0, 1, 0], [0.5, −0.25, 1]], U = [[4, 3, 1], [0, 2, 4], [0, 0, 1.5]].
    const r = await jsBackend.lu(mat(dt, 3, 3, [2, 1, 1, 4, 3, 1, 0, 2, 4]));
    assert.deepEqual(Array.from(r.perm), [1, 2, 0]);
    assert.deepEqual(Array.from(r.lu.data), [4, 3, 1, 0, 2, 4, 0.5, -0.25, 1.5]);
  });
}
