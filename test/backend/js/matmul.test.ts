import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../../src/backend/js/index.js';
import type { Matrix } from '../../../src/backend/types.js';
import { DTS, frob, frobDiff, mat, numpy, randn, toJson, within, type Dt } from './util.js';

/** ‖C − C_numpy‖_F / (‖A‖_F·‖B‖_F): float32 results are rounded once, float64 ones accumulate in order. */
const TOL: Record<Dt, number> = { f32: 1e-6, f64: 1e-14 };

interface Case {
  name: string;
  a: Matrix;
  b: Matrix;
  transA: boolean;
  transB: boolean;
}

function cases(dt: Dt): Case[] {
  const out: Case[] = [];
  let seed = 100;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const [m, k, n] = [37, 53, 29];
      out.push({
        name: `37x53 · 53x29 transA=${transA} transB=${transB}`,
        a: transA ? randn(dt, k, m, seed++) : randn(dt, m, k, seed++),
        b: transB ? randn(dt, n, k, seed++) : randn(dt, k, n, seed++),
        transA,
        transB,
      });
    }
  }
  out.push({ name: 'square 120x120', a: randn(dt, 120, 120, seed++), b: randn(dt, 120, 120, seed++), transA: false, transB: false });
  out.push({ name: 'row times column 1x50 · 50x1', a: randn(dt, 1, 50, seed++), b: randn(dt, 50, 1, seed++), transA: false, transB: false });
  out.push({ name: 'outer product 50x1 · 1x40', a: randn(dt, 50, 1, seed++), b: randn(dt, 1, 40, seed++), transA: false, transB: false });
  out.push({ name: 'AᵀA of a 60x20', a: randn(dt, 60, 20, seed), b: randn(dt, 60, 20, seed), transA: true, transB: false });
  return out;
}

const ALL = DTS.flatMap((dt) => cases(dt).map((c) => ({ dt, ...c })));
const REF = numpy<number[][][]>(
  `out = []
for c in p:
    a = M(c["a"]); b = M(c["b"])
    if c["ta"]: a = a.T
    if c["tb"]: b = b.T
    out.append((a @ b).tolist())
print(json.dumps(out))`,
  ALL.map((c) => ({ a: toJson(c.a), b: toJson(c.b), ta: c.transA, tb: c.transB })),
);

for (const [idx, c] of ALL.entries()) {
  test(`matmul ${c.dt} ${c.name} against numpy`, async (t) => {
    const before = [Float64Array.from(c.a.data), Float64Array.from(c.b.data)];
    const r = await jsBackend.matmul(c.a, c.b, c.transA, c.transB);
    const ref = REF[idx];
    assert.deepEqual([r.rows, r.cols], [ref.length, ref[0].length]);
    assert.equal(r.data.constructor, c.a.data.constructor);
    const err = frobDiff(r.data, ref.flat()) / (frob(c.a.data) * frob(c.b.data));
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    within('‖C − C_ref‖_F / (‖A‖_F‖B‖_F)', err, TOL[c.dt]);
    assert.deepEqual(Array.from(c.a.data), Array.from(before[0]), 'A not modified');
    assert.deepEqual(Array.from(c.b.data), Array.from(before[1]), 'B not modified');
  });
}

for (const dt of DTS) {
  test(`matmul ${dt} empty dimensions`, async () => {
    const r1 = await jsBackend.matmul(mat(dt, 0, 5, []), mat(dt, 5, 3, new Float64Array(15).fill(1)), false, false);
    assert.deepEqual([r1.rows, r1.cols, r1.data.length], [0, 3, 0]);
    const r2 = await jsBackend.matmul(mat(dt, 4, 0, []), mat(dt, 0, 3, []), false, false);
    assert.deepEqual([r2.rows, r2.cols], [4, 3]);
    assert.deepEqual(Array.from(r2.data), new Array(12).fill(0));
    const r3 = await jsBackend.matmul(mat(dt, 0, 4, []), mat(dt, 3, 0, []), true, true);
    assert.deepEqual([r3.rows, r3.cols], [4, 3]);
  });

  test(`matmul ${dt} small exact product`, async () => {
    const r = await jsBackend.matmul(mat(dt, 2, 3, [1, 2, 3, 4, 5, 6]), mat(dt, 2, 3, [1, 0, -1, 2, 1, 0]), false, true);
    assert.deepEqual(Array.from(r.data), [-2, 4, -2, 13]);
  });
}
