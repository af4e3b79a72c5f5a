import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng } from '../../../src/core/rng.js';
import { DTS, frob, frobDiff, logspace, mat, maxAbs, mul, numpy, randomOrthonormal, toJson, tr, within, type Dt } from './util.js';

/** ‖A − LLᵀ‖_F/‖A‖_F and max|L − L_numpy| / max|L_numpy| (well-conditioned cases). */
const TOL: Record<Dt, { rec: number; ref: number }> = {
  f32: { rec: 1e-6, ref: 1e-6 },
  f64: { rec: 1e-14, ref: 1e-13 },
};

/** B·Bᵀ + n·I for a Gaussian n×n B: symmetric positive definite and well conditioned. */
function spd(n: number, seed: number): Float64Array {
  const b = rng(seed).fillNormal(new Float64Array(n * n));
  const a = mul(b, tr(b, n, n), n, n, n);
  for (let i = 0; i < n; i++) a[i * n + i] += n;
  return a;
}

/** Q·diag(values)·Qᵀ for a random orthogonal Q. */
function withEigenvalues(values: ArrayLike<number>, seed: number): Float64Array {
  const n = values.length;
  const q = randomOrthonormal(rng(seed), n, n);
  return mul(
    q.map((v, i) => v * values[i % n]),
    tr(q, n, n),
    n,
    n,
    n,
  );
}

interface Case {
  name: string;
  a: Matrix;
  compare: boolean;
}

function cases(dt: Dt): Case[] {
  const spoiled = spd(30, 503);
  for (let i = 0; i < 30; i++) for (let j = i + 1; j < 30; j++) spoiled[i * 30 + j] = -1e9;
  return [
    { name: 'SPD 150x150', a: mat(dt, 150, 150, spd(150, 501)), compare: true },
    { name: '1x1', a: mat(dt, 1, 1, [6.25]), compare: true },
    { name: 'identity 5x5', a: mat(dt, 5, 5, Array.from({ length: 25 }, (_, i) => (i % 6 === 0 ? 1 : 0))), compare: true },
    { name: 'ill-conditioned SPD, λ = logspace(0, -5)', a: mat(dt, 40, 40, withEigenvalues(logspace(0, -5, 40), 502)), compare: false },
    { name: 'upper triangle ignored', a: mat(dt, 30, 30, spoiled), compare: false },
  ];
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][][]>(
  'print(json.dumps([np.linalg.cholesky(np.tril(M(x)) + np.tril(M(x), -1).T).tolist() for x in p]))',
  ALL.map((c) => toJson(c.a)),
);

for (const [idx, c] of ALL.entries()) {
  test(`cholesky ${c.dt} ${c.name}`, async (t) => {
    const n = c.a.rows;
    const before = Float64Array.from(c.a.data);
    const l = await jsBackend.cholesky(c.a);
    assert.deepEqual([l.rows, l.cols], [n, n]);
    assert.equal(l.data.constructor, c.a.data.constructor);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(l.data[i * n + j], 0, 'L is lower triangular');
    const full = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) full[i * n + j] = full[j * n + i] = c.a.data[i * n + j];
    const rec = frobDiff(mul(l.data, tr(l.data, n, n), n, n, n), full) / frob(full);
    const ref = REF[idx].flat();
    const refErr = maxDiff(l.data, ref) / maxAbs(ref);
    t.diagnostic(`rec ${rec.toExponential(2)} vs numpy ${refErr.toExponential(2)}`);
    within('‖A − LLᵀ‖_F/‖A‖_F', rec, TOL[c.dt].rec);
    if (c.compare) within('max|L − L_numpy|/max|L_numpy|', refErr, TOL[c.dt].ref);
    assert.deepEqual(Array.from(c.a.data), Array.from(before), 'input not modified');
  });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const dt of DTS) {
  test(`cholesky ${dt} throws E_NUMERIC naming the pivot when not positive definite`, async () => {
    const notPd = mat(dt, 3, 3, [4, 0, 0, 2, 5, 0, 1, 1, -3]);
    await assert.rejects(jsBackend.cholesky(notPd), (e: unknown) => {
      assert.ok(e instanceof LowrankError);
      assert.equal(e.code, 'E_NUMERIC');
      assert.equal(e.message, 'cholesky: matrix is not positive definite (pivot k = 2)');
      return true;
    });
    // Semidefinite (a zero pivot) is not positive definite either.
    await assert.rejects(jsBackend.cholesky(mat(dt, 2, 2, [1, 1, 1, 1])), /pivot k = 1/);
    await assert.rejects(jsBackend.cholesky(mat(dt, 1, 1, [0])), /pivot k = 0/);
  });

  test(`cholesky ${dt} 0x0`, async () => {
    const l = await jsBackend.cholesky(mat(dt, 0, 0, []));
    assert.deepEqual([l.rows, l.cols, l.data.length], [0, 0, 0]);
  });
}
