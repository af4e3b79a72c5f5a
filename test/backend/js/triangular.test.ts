import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng } from '../../../src/core/rng.js';
import { DTS, frob, frobDiff, mat, mul, numpy, randn, toJson, tr, within, type Dt } from './util.js';

/** ‖op(T)·X − B‖_F / (‖T‖_F·‖X‖_F) and ‖X − X_numpy‖_F/‖X_numpy‖_F. */
const TOL: Record<Dt, { res: number; ref: number }> = {
  f32: { res: 1e-6, ref: 1e-5 },
  f64: { res: 1e-14, ref: 1e-12 },
};
const N = 60;
const K = 7;

interface Case {
  lower: boolean;
  trans: boolean;
  unitDiagonal: boolean;
  t: Matrix;
  /** T as the solve sees it: the other triangle zero, the diagonal 1 when unit. */
  clean: Float64Array;
  b: Matrix;
}

function cases(dt: Dt): Case[] {
  const out: Case[] = [];
  let seed = 600;
  for (const lower of [true, false]) {
    for (const trans of [false, true]) {
      for (const unitDiagonal of [false, true]) {
        const r = rng(seed++);
        const raw = new Float64Array(N * N);
        const clean = new Float64Array(N * N);
        for (let i = 0; i < N; i++) {
          for (let j = 0; j < N; j++) {
            const inside = lower ? j < i : j > i;
            if (i === j) {
              // Well-conditioned diagonal; NaN when unit (it must not be read).
              raw[i * N + j] = unitDiagonal ? NaN : (r.uniform() < 0.5 ? -1 : 1) * (2 + r.uniform());
              clean[i * N + j] = unitDiagonal ? 1 : raw[i * N + j];
            } else if (inside) {
              raw[i * N + j] = clean[i * N + j] = (0.5 * r.normal()) / Math.sqrt(N);
            } else {
              raw[i * N + j] = NaN; // the other triangle must not be read
            }
          }
        }
        const t = mat(dt, N, N, raw);
        // Re-read the clean triangle through the element type so it matches what the solve uses.
        for (let i = 0; i < N * N; i++) if (!Number.isNaN(t.data[i])) clean[i] = t.data[i];
        out.push({ lower, trans, unitDiagonal, t, clean, b: randn(dt, N, K, seed++) });
      }
    }
  }
  return out;
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][][]>(
  `out = []
for c in p:
    t = M(c["t"])
    if c["trans"]: t = t.T
    out.append(np.linalg.solve(t, M(c["b"])).tolist())
print(json.dumps(out))`,
  ALL.map((c) => ({ t: toJson({ rows: N, cols: N, data: c.clean }), b: toJson(c.b), trans: c.trans })),
);

for (const [idx, c] of ALL.entries()) {
  test(`solveTriangular ${c.dt} lower=${c.lower} trans=${c.trans} unitDiagonal=${c.unitDiagonal}`, async (t) => {
    const before = Float64Array.from(c.b.data);
    const x = await jsBackend.solveTriangular(c.t, c.b, { lower: c.lower, trans: c.trans, unitDiagonal: c.unitDiagonal });
    assert.deepEqual([x.rows, x.cols], [N, K]);
    assert.equal(x.data.constructor, c.b.data.constructor);
    const op = c.trans ? tr(c.clean, N, N) : c.clean;
    const res = frobDiff(mul(op, x.data, N, N, K), c.b.data) / (frob(c.clean) * frob(x.data));
    const ref = REF[idx].flat();
    const refErr = frobDiff(x.data, ref) / frob(ref);
    t.diagnostic(`res ${res.toExponential(2)} vs numpy ${refErr.toExponential(2)}`);
    within('‖op(T)X − B‖_F/(‖T‖_F‖X‖_F)', res, TOL[c.dt].res);
    within('‖X − X_numpy‖_F/‖X_numpy‖_F', refErr, TOL[c.dt].ref);
    assert.deepEqual(Array.from(c.b.data), Array.from(before), 'B not modified');
  });
}

for (const dt of DTS) {
  test(`solveTriangular ${dt} small exact solve and empty shapes`, async () => {
    // [[2, 0], [1, 4]]·X = [[2, 4], [5, 10]] → X = [[1, 2], [1, 2]].
    const x = await jsBackend.solveTriangular(mat(dt, 2, 2, [2, 0, 1, 4]), mat(dt, 2, 2, [2, 4, 5, 10]), { lower: true, trans: false, unitDiagonal: false });
    assert.deepEqual(Array.from(x.data), [1, 2, 1, 2]);
    const e1 = await jsBackend.solveTriangular(mat(dt, 3, 3, [1, 0, 0, 1, 1, 0, 1, 1, 1]), mat(dt, 3, 0, []), { lower: true, trans: true, unitDiagonal: false });
    assert.deepEqual([e1.rows, e1.cols], [3, 0]);
    const e2 = await jsBackend.solveTriangular(mat(dt, 0, 0, []), mat(dt, 0, 4, []), { lower: false, trans: false, unitDiagonal: false });
    assert.deepEqual([e2.rows, e2.cols], [0, 4]);
  });

  test(`solveTriangular ${dt} throws E_NUMERIC on a zero diagonal element`, async () => {
    await assert.rejects(
      jsBackend.solveTriangular(mat(dt, 2, 2, [1, 0, 3, 0]), mat(dt, 2, 1, [1, 1]), { lower: true, trans: false, unitDiagonal: false }),
      (e: unknown) => e instanceof LowrankError && e.code === 'E_NUMERIC' && /k = 1/.test(e.message),
    );
  });
}
