import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { DTS, frob, frobDiff, logspace, lowRank, mat, maxAbs, mul, numpy, orthColumnsError, randn, toJson, withSingularValues, within, type Dt } from './util.js';

/** ‖A − QR‖_F/‖A‖_F, max|QᵀQ − I|, and max | |R_ii| − |R_ii,numpy| | / max|R| (full-rank cases). */
const TOL: Record<Dt, { rec: number; orth: number; diag: number }> = {
  f32: { rec: 1e-6, orth: 1e-5, diag: 1e-6 },
  f64: { rec: 1e-13, orth: 1e-13, diag: 1e-13 },
};

interface Case {
  name: string;
  a: Matrix;
  /** Whether R is unique up to signs (full rank, well conditioned), so |diag R| can be compared. */
  compareR: boolean;
}

function cases(dt: Dt): Case[] {
  return [
    { name: 'random square 80x80', a: randn(dt, 80, 80, 201), compareR: true },
    { name: 'random tall 300x40', a: randn(dt, 300, 40, 202), compareR: true },
    { name: 'random wide 40x300', a: randn(dt, 40, 300, 203), compareR: true },
    { name: '1x1', a: randn(dt, 1, 1, 204), compareR: true },
    { name: '1x7', a: randn(dt, 1, 7, 205), compareR: true },
    { name: '7x1', a: randn(dt, 7, 1, 206), compareR: true },
    { name: 'rank 5 of 60x50', a: mat(dt, 60, 50, lowRank(207, 60, 50, 5)), compareR: false },
    { name: 'ill-conditioned 80x60', a: mat(dt, 80, 60, withSingularValues(208, 80, 60, logspace(0, -6, 60))), compareR: false },
    { name: 'zero 5x3', a: mat(dt, 5, 3, new Float64Array(15)), compareR: false },
  ];
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][]>('print(json.dumps([np.abs(np.diag(np.linalg.qr(M(x), mode="r"))).tolist() for x in p]))', ALL.map((c) => toJson(c.a)));

for (const [idx, c] of ALL.entries()) {
  test(`qr ${c.dt} ${c.name}`, async (t) => {
    const tol = TOL[c.dt];
    const { rows: m, cols: n } = c.a;
    const k = Math.min(m, n);
    const before = Float64Array.from(c.a.data);
    const { q, r } = await jsBackend.qr(c.a);
    assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [m, k, k, n]);
    assert.equal(q.data.constructor, c.a.data.constructor);
    assert.equal(r.data.constructor, c.a.data.constructor);
    for (let i = 0; i < k; i++) for (let j = 0; j < Math.min(i, n); j++) assert.equal(r.data[i * n + j], 0, `R[${i}][${j}] below the diagonal`);
    const normA = frob(c.a.data);
    const recAbs = frobDiff(mul(q.data, r.data, m, k, n), c.a.data);
    const rec = normA > 0 ? recAbs / normA : recAbs;
    const orth = orthColumnsError(q.data, m, k);
    let diag = 0;
    if (c.compareR) {
      const rmax = maxAbs(r.data);
      for (let i = 0; i < k; i++) diag = Math.max(diag, Math.abs(Math.abs(r.data[i * n + i]) - REF[idx][i]) / rmax);
    }
    t.diagnostic(`rec ${rec.toExponential(2)} orth ${orth.toExponential(2)} |diag R| ${c.compareR ? diag.toExponential(2) : 'n/a'}`);
    within('‖A − QR‖_F/‖A‖_F', rec, tol.rec);
    within('max|QᵀQ − I|', orth, tol.orth);
    within('|diag R| vs numpy', diag, tol.diag);
    assert.deepEqual(Array.from(c.a.data), Array.from(before), 'input not modified');
  });
}

for (const dt of DTS) {
  test(`qr ${dt} empty matrices`, async () => {
    for (const [m, n] of [[0, 3], [3, 0]] as const) {
      const { q, r } = await jsBackend.qr(mat(dt, m, n, []));
      assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [m, 0, 0, n]);
    }
  });
}
