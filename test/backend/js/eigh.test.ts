import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { tridiagonalEigen } from '../../../src/backend/js/eigh.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng } from '../../../src/core/rng.js';
import { DTS, frob, frobDiff, logspace, lowRank, mat, mul, numpy, orthColumnsError, randomOrthonormal, toJson, tr, within, type Dt } from './util.js';

/** ‖AV − VΛ‖_F/‖A‖_F, max|VᵀV − I|, and max|λ − λ_numpy| / max|λ_numpy|. */
const TOL: Record<Dt, { res: number; orth: number; val: number }> = {
  f32: { res: 1e-5, orth: 1e-4, val: 1e-5 },
  f64: { res: 1e-12, orth: 1e-12, val: 1e-12 },
};

/** A symmetric n×n matrix from (B + Bᵀ)/2, B Gaussian. */
function symmetric(n: number, seed: number): Float64Array {
  const b = rng(seed).fillNormal(new Float64Array(n * n));
  const bt = tr(b, n, n);
  return b.map((v, i) => (v + bt[i]) / 2);
}

/** Q·diag(values)·Qᵀ for a random orthogonal Q. */
function withEigenvalues(values: ArrayLike<number>, seed: number): Float64Array {
  const n = values.length;
  const q = randomOrthonormal(rng(seed), n, n);
  const ql = q.map((v, i) => v * values[i % n]);
  return mul(ql, tr(q, n, n), n, n, n);
}

/** The same matrix with its strict upper triangle overwritten (eigh must read only the lower one). */
function spoilUpper(a: Float64Array, n: number): Float64Array {
  const out = Float64Array.from(a);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) out[i * n + j] = 1e6 * (i - j);
  return out;
}

interface Case {
  name: string;
  a: Matrix;
}

function cases(dt: Dt): Case[] {
  const clustered = Array.from({ length: 40 }, (_, i) => (i < 10 ? 1 : i < 25 ? 2 : i < 30 ? -1 : 1 + 1e-9 * i));
  return [
    { name: 'random symmetric 100x100', a: mat(dt, 100, 100, symmetric(100, 301)) },
    { name: 'random symmetric 200x200', a: mat(dt, 200, 200, symmetric(200, 302)) },
    { name: '1x1', a: mat(dt, 1, 1, [-2.5]) },
    { name: '2x2 [[0, 1], [1, 0]]', a: mat(dt, 2, 2, [0, 1, 1, 0]) },
    { name: 'rank 5 Gram 60x60 (55 zero eigenvalues)', a: mat(dt, 60, 60, (() => { const x = lowRank(303, 60, 5, 5); return mul(x, tr(x, 60, 5), 60, 5, 60); })()) },
    { name: 'repeated and clustered eigenvalues 40x40', a: mat(dt, 40, 40, withEigenvalues(clustered, 304)) },
    { name: 'ill-conditioned SPD, λ = logspace(0, -6)', a: mat(dt, 50, 50, withEigenvalues(logspace(0, -6, 50), 305)) },
    { name: 'upper triangle ignored', a: mat(dt, 30, 30, spoilUpper(symmetric(30, 306), 30)) },
    { name: 'diagonal 5x5', a: mat(dt, 5, 5, [3, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]) },
    { name: 'zero 4x4', a: mat(dt, 4, 4, new Float64Array(16)) },
  ];
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][]>('print(json.dumps([np.linalg.eigvalsh(M(x), UPLO="L").tolist() for x in p]))', ALL.map((c) => toJson(c.a)));

/** The full symmetric matrix that the lower triangle of `a` stands for, in float64. */
function fromLower(a: Matrix): Float64Array {
  const n = a.rows;
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) s[i * n + j] = s[j * n + i] = a.data[i * n + j];
  return s;
}

for (const [idx, c] of ALL.entries()) {
  test(`eigh ${c.dt} ${c.name}`, async (t) => {
    const tol = TOL[c.dt];
    const n = c.a.rows;
    const before = Float64Array.from(c.a.data);
    const ref = REF[idx];
    const lmax = Math.max(...ref.map(Math.abs));
    const r = await jsBackend.eigh(c.a, true);
    const vOnly = await jsBackend.eigh(c.a, false);
    assert.equal(vOnly.vectors, undefined);
    assert.deepEqual(Array.from(vOnly.values), Array.from(r.values), 'values-only gives the same values');
    assert.equal(r.values.constructor, c.a.data.constructor);
    assert.ok(r.vectors !== undefined);
    assert.deepEqual([r.vectors.rows, r.vectors.cols], [n, n]);
    assert.equal(r.vectors.data.constructor, c.a.data.constructor);
    let val = 0;
    for (let i = 0; i < n; i++) {
      if (i > 0) assert.ok(r.values[i] >= r.values[i - 1], `values not ascending at ${i}`);
      val = Math.max(val, Math.abs(r.values[i] - ref[i]) / (lmax > 0 ? lmax : 1));
    }
    const s = fromLower(c.a);
    const v = r.vectors.data;
    const vl = Float64Array.from(v, (x, i) => x * r.values[i % n]);
    const normA = frob(s);
    const resAbs = frobDiff(mul(s, v, n, n, n), vl);
    const res = normA > 0 ? resAbs / normA : resAbs;
    const orth = orthColumnsError(v, n, n);
    t.diagnostic(`res ${res.toExponential(2)} orth ${orth.toExponential(2)} val/max|λ| ${val.toExponential(2)}`);
    within('‖AV − VΛ‖_F/‖A‖_F', res, tol.res);
    within('max|VᵀV − I|', orth, tol.orth);
    within('eigenvalues vs numpy, relative to max|λ|', val, tol.val);
    assert.deepEqual(Array.from(c.a.data), Array.from(before), 'input not modified');
  });
}

for (const dt of DTS) {
  test(`eigh ${dt} 0x0`, async () => {
    const r = await jsBackend.eigh(mat(dt, 0, 0, []), true);
    assert.equal(r.values.length, 0);
    assert.deepEqual([r.vectors?.rows, r.vectors?.cols], [0, 0]);
  });
}

test('eigh iterations are bounded: a NaN tridiagonal never converges and throws E_NUMERIC', () => {
  const d = Float64Array.from([1, NaN, 2, 3]);
  const e = Float64Array.from([1, 1, 1]);
  assert.throws(
    () => tridiagonalEigen(d, e, undefined),
    (err: unknown) => err instanceof LowrankError && err.code === 'E_NUMERIC' && err.message.startsWith('eigh: '),
  );
});
