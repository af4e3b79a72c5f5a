/**
 * Tucker decompositions (HOSVD, HOOI, partial Tucker) on every available backend, f32 and f64:
 * exact recovery of seeded tensors of known Tucker rank (rebuilt here in float64 without the
 * library), HOOI against HOSVD on full-rank tensors, the HOSVD factors and core against numpy's SVD
 * of the unfoldings (float64, with TensorLy's svd_flip sign rule), fraction ranks, and the typed
 * errors. Tolerances are stated where they are used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import * as linalg from '../../src/linalg/index.js';
import { partialTucker, tucker, tuckerParameters, tuckerRanks, tuckerToTensor, type TuckerResult } from '../../src/tensor/tucker.js';
import type { TuckerTensor } from '../../src/tensor/types.js';
import { pythonJson } from '../helpers/python.js';

type Dt = 'f32' | 'f64';
const DTYPES: Dt[] = ['f32', 'f64'];
const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);
/** Relative reconstruction error of an exactly low-rank tensor, and max |UᵀU − I|. */
const TOL: Record<Dt, { recover: number; orth: number }> = { f32: { recover: 1e-5, orth: 1e-5 }, f64: { recover: 1e-10, orth: 1e-12 } };

const prod = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function gaussian(n: number, seed: number): Float64Array {
  return rng(seed).fillNormal(new Float64Array(n));
}

function asTensor(dt: Dt, shape: readonly number[], data: Float64Array): Tensor<Dt> {
  return tensor(dt, shape, dt === 'f32' ? Float32Array.from(data) : Float64Array.from(data)) as Tensor<Dt>;
}

/** x ×ₙ M (M rows × shape[n]) in float64, straight from the definition. */
function modeMul(x: Float64Array, shape: readonly number[], m: ArrayLike<number>, rows: number, n: number): { data: Float64Array; shape: number[] } {
  const before = prod(shape.slice(0, n));
  const dim = shape[n];
  const after = prod(shape.slice(n + 1));
  const out = new Float64Array(before * rows * after);
  for (let a = 0; a < before; a++)
    for (let j = 0; j < rows; j++)
      for (let i = 0; i < dim; i++) {
        const mji = m[j * dim + i];
        for (let b = 0; b < after; b++) out[(a * rows + j) * after + b] += mji * x[(a * dim + i) * after + b];
      }
  return { data: out, shape: shape.map((d, k) => (k === n ? rows : d)) };
}

/** A seeded tensor of Tucker rank `ranks` over `modes`: Gaussian core ×ₙ Gaussian factors (float64). */
function lowRank(shape: readonly number[], ranks: readonly number[], modes: readonly number[], seed: number): Float64Array {
  const coreShape = shape.map((d, k) => (modes.includes(k) ? ranks[modes.indexOf(k)] : d));
  let cur: { shape: number[]; data: Float64Array } = { shape: coreShape, data: gaussian(prod(coreShape), seed) };
  for (const [k, n] of modes.entries()) cur = modeMul(cur.data, cur.shape, gaussian(shape[n] * ranks[k], seed + 1 + k), shape[n], n);
  return cur.data;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

function relError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return Math.sqrt(s) / norm(x);
}

/** max |UᵀU − I| for U rows × cols, in float64. */
function orthError(u: ArrayLike<number>, rows: number, cols: number): number {
  let worst = 0;
  for (let p = 0; p < cols; p++)
    for (let q = 0; q < cols; q++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += u[i * cols + p] * u[i * cols + q];
      worst = Math.max(worst, Math.abs(d - (p === q ? 1 : 0)));
    }
  return worst;
}

/** The shapes, the orthonormality and the sign rule every result must satisfy. */
function checkForm(t: TuckerResult<Dt>, x: Tensor<Dt>, modes: readonly number[], ranks: readonly number[], label: string): void {
  const tol = TOL[x.dtype as Dt];
  assert.equal(t.kind, 'tucker');
  assert.deepEqual(t.shape, x.shape, `${label}: shape`);
  assert.deepEqual(t.modes, modes, `${label}: modes`);
  assert.deepEqual(t.core.shape, x.shape.map((d, k) => (modes.includes(k) ? ranks[modes.indexOf(k)] : d)), `${label}: core shape`);
  assert.equal(t.core.dtype, x.dtype, `${label}: core dtype`);
  for (const [k, f] of t.factors.entries()) {
    const [rows, cols] = [x.shape[modes[k]], ranks[k]];
    assert.deepEqual(f.shape, [rows, cols], `${label}: factor ${k} shape`);
    assert.equal(f.dtype, x.dtype);
    assert.ok(orthError(f.data, rows, cols) <= tol.orth, `${label}: factor ${k} UᵀU − I = ${orthError(f.data, rows, cols)}`);
    for (let j = 0; j < cols; j++) {
      let best = 0;
      for (let i = 0; i < rows; i++) if (Math.abs(f.data[i * cols + j]) > Math.abs(best)) best = f.data[i * cols + j];
      assert.ok(best > 0, `${label}: factor ${k} column ${j} has its largest-magnitude entry negative`);
    }
  }
  assert.equal(tuckerParameters(t), t.core.data.length + t.factors.reduce((a, f) => a + f.data.length, 0));
  for (let i = 1; i < t.errors.length; i++) assert.ok(t.errors[i] <= t.errors[i - 1], `${label}: error history rises at ${i}: [${t.errors}]`);
}

const EXACT: { shape: number[]; ranks: number[] }[] = [
  { shape: [12, 9, 7], ranks: [3, 4, 2] },
  { shape: [6, 5, 4, 3], ranks: [2, 3, 2, 2] },
  // R₀ = 8 > R₁·R₂ = 6 columns of the unfolding: the factor needs the full SVD's completion.
  { shape: [12, 2, 3], ranks: [8, 2, 3] },
];

for (const be of BACKENDS) {
  for (const dt of DTYPES) {
    test(`${be} ${dt}: HOSVD and HOOI recover tensors of known Tucker rank (orders 3 and 4, non-cubic)`, async () => {
      linalg.useBackend(be);
      for (const [ci, { shape, ranks }] of EXACT.entries()) {
        const modes = shape.map((_, k) => k);
        const x = asTensor(dt, shape, lowRank(shape, ranks, modes, 100 + ci));
        for (const method of ['hosvd', 'hooi'] as const) {
          const label = `[${shape}] ranks [${ranks}] ${method}`;
          const t = await tucker(x, ranks, { method });
          checkForm(t, x, modes, ranks, label);
          const err = relError(x.data, (await tuckerToTensor(t)).data);
          assert.ok(err <= TOL[dt].recover, `${label}: relative error ${err}`);
          if (method === 'hosvd') assert.deepEqual([t.iterations, t.errors.length], [0, 1], `${label}: HOSVD does not iterate`);
          assert.ok(t.errors.at(-1)! <= (dt === 'f32' ? 3e-3 : 1e-6), `${label}: estimated error ${t.errors.at(-1)}`);
          assert.ok(t.iterations <= 10, `${label}: ${t.iterations} sweeps on an exact tensor`);
        }
      }
      const again = await tucker(x0(dt), [3, 4, 2]);
      const first = await tucker(x0(dt), [3, 4, 2]);
      assert.deepEqual(Array.from(again.core.data), Array.from(first.core.data), 'the same input gives the same result');
    });

    test(`${be} ${dt}: on full-rank tensors HOOI's error is never above HOSVD's and its history does not rise`, async () => {
      linalg.useBackend(be);
      const cases: [number[], number[]][] = [
        [[10, 8, 7], [4, 3, 3]],
        [[6, 5, 4, 3], [3, 2, 2, 2]],
      ];
      for (const [ci, [shape, ranks]] of cases.entries()) {
        // A low-rank tensor plus noise of comparable size: no exact Tucker structure to find.
        const base = lowRank(shape, ranks, shape.map((_, k) => k), 200 + ci);
        const noise = gaussian(base.length, 300 + ci);
        const scale = norm(base) / norm(noise);
        const x = asTensor(dt, shape, base.map((v, i) => v + 0.5 * scale * noise[i]));
        const label = `[${shape}] ranks [${ranks}]`;
        const hosvd = await tucker(x, ranks, { method: 'hosvd' });
        const hooi = await tucker(x, ranks);
        checkForm(hosvd, x, shape.map((_, k) => k), ranks, `${label} hosvd`);
        checkForm(hooi, x, shape.map((_, k) => k), ranks, `${label} hooi`);
        const eHosvd = relError(x.data, (await tuckerToTensor(hosvd)).data);
        const eHooi = relError(x.data, (await tuckerToTensor(hooi)).data);
        // f32: the two errors are equal up to rounding at worst (1e-6 relative slack).
        assert.ok(eHooi <= eHosvd * (1 + (dt === 'f32' ? 1e-6 : 1e-12)), `${label}: HOOI ${eHooi} > HOSVD ${eHosvd}`);
        if (dt === 'f64') assert.ok(eHooi < eHosvd - 1e-6, `${label}: HOOI ${eHooi} did not improve on HOSVD ${eHosvd}`);
        assert.ok(hooi.iterations >= 1 && hooi.iterations < 100, `${label}: ${hooi.iterations} sweeps`);
        assert.ok(hooi.errors.length >= 2, `${label}: history [${hooi.errors}]`);
        // The history's estimate √(‖x‖² − ‖core‖²)/‖x‖ agrees with the true errors (to √eps in f32).
        const estTol = dt === 'f32' ? 1e-3 : 1e-8;
        assert.ok(Math.abs(hooi.errors.at(-1)! - eHooi) <= estTol, `${label}: estimate ${hooi.errors.at(-1)} vs ${eHooi}`);
        assert.ok(Math.abs(hooi.errors[0] - eHosvd) <= estTol, `${label}: HOSVD estimate ${hooi.errors[0]} vs ${eHosvd}`);
        // maxIter bounds the sweeps; maxIter 0 is the HOSVD.
        const one = await tucker(x, ranks, { maxIter: 1 });
        assert.equal(one.iterations, 1);
        const none = await tucker(x, ranks, { maxIter: 0 });
        assert.deepEqual(Array.from(none.core.data), Array.from(hosvd.core.data), `${label}: maxIter 0`);
      }
    });

    test(`${be} ${dt}: partialTucker over modes [0, 1] recovers a low-rank [8, 6, 3, 3] kernel`, async () => {
      linalg.useBackend(be);
      const shape = [8, 6, 3, 3];
      const x = asTensor(dt, shape, lowRank(shape, [3, 2], [0, 1], 400));
      for (const method of ['hosvd', 'hooi'] as const) {
        const t = await partialTucker(x, [3, 2], { modes: [0, 1], method });
        checkForm(t, x, [0, 1], [3, 2], `partial ${method}`);
        assert.deepEqual(t.core.shape, [3, 2, 3, 3]);
        const rec = await tuckerToTensor(t);
        assert.deepEqual(rec.shape, shape);
        const err = relError(x.data, rec.data);
        assert.ok(err <= TOL[dt].recover, `partial ${method}: relative error ${err}`);
        assert.equal(tuckerParameters(t), 3 * 2 * 9 + 8 * 3 + 6 * 2);
      }
      // Modes in another order (and counted from the end) pair with the ranks in that order.
      const swapped = await partialTucker(x, [2, 3], { modes: [-3, 0] });
      checkForm(swapped, x, [1, 0], [2, 3], 'partial, modes [1, 0]');
      assert.ok(relError(x.data, (await tuckerToTensor(swapped)).data) <= TOL[dt].recover, 'partial, modes [1, 0]');
      // One mode: nothing to alternate, HOOI is the HOSVD.
      const single = await partialTucker(x, [3], { modes: [0] });
      assert.equal(single.iterations, 0);
      assert.ok(relError(x.data, (await tuckerToTensor(single)).data) <= TOL[dt].recover, 'partial, mode 0 only');
      // No modes given: all of them, as tucker.
      const all = await partialTucker(x, [3, 2, 3, 3], { method: 'hosvd' });
      assert.deepEqual(all.modes, [0, 1, 2, 3]);
    });
  }
}

function x0(dt: Dt): Tensor<Dt> {
  return asTensor(dt, [12, 9, 7], lowRank([12, 9, 7], [3, 4, 2], [0, 1, 2], 100));
}

for (const dt of DTYPES) {
  test(`${dt}: the HOSVD factors and core match numpy's SVD of the unfoldings (svd_flip signs)`, async () => {
    const cases: [number[], number[]][] = [
      [[10, 8, 7], [4, 3, 5]],
      [[5, 6, 4, 3], [2, 3, 4, 2]],
      [[3, 40], [3, 2]],
    ];
    for (const [ci, [shape, ranks]] of cases.entries()) {
      const x = asTensor(dt, shape, gaussian(prod(shape), 500 + ci));
      const t = await tucker(x, ranks, { method: 'hosvd' });
      const ref = pythonJson<{ factors: number[][]; core: number[] }>(
        `import json, sys
d = json.loads(sys.stdin.read())
x = np.array(d['x'], dtype=np.float64).reshape(d['shape'])
factors = []
for n, r in enumerate(d['ranks']):
    u = np.linalg.svd(np.moveaxis(x, n, 0).reshape(x.shape[n], -1), full_matrices=False)[0][:, :r]
    at = np.argmax(np.abs(u), axis=0)
    u = u * np.sign(u[at, np.arange(r)])
    factors.append(u)
core = x
for n, u in enumerate(factors):
    core = np.moveaxis(np.tensordot(u.T, core, axes=([1], [n])), 0, n)
print(json.dumps({'factors': [u.ravel().tolist() for u in factors], 'core': core.ravel().tolist()}))`,
        [],
        JSON.stringify({ x: Array.from(x.data), shape, ranks }),
      );
      // Singular vectors of Gaussian unfoldings (separated singular values): f32 to 1e-4, f64 to 1e-10.
      const tol = dt === 'f32' ? 1e-4 : 1e-10;
      for (const [k, f] of t.factors.entries()) {
        const worst = Math.max(...Array.from(f.data, (v, i) => Math.abs(v - ref.factors[k][i])));
        assert.ok(worst <= tol, `[${shape}] factor ${k}: max difference from numpy ${worst}`);
      }
      const big = Math.max(...ref.core.map(Math.abs));
      const worst = Math.max(...Array.from(t.core.data, (v, i) => Math.abs(v - ref.core[i])));
      assert.ok(worst <= tol * big, `[${shape}] core: max difference from numpy ${worst}`);
    }
  });
}

test('fraction ranks: the largest common fraction of the dimensions within the parameter budget', async () => {
  // [12, 9, 7] at 0.25 (budget 189): c = 4/9 gives [5, 4, 3] (60 + 60 + 36 + 21 = 177); the next
  // step, c = 1/2, gives [6, 4, 3] (72 + 72 + 36 + 21 = 201).
  assert.deepEqual(tuckerRanks([12, 9, 7], 0.25), [5, 4, 3]);
  // [8, 6, 3, 3] over modes [0, 1] at 0.5 (budget 216): c = 5/8 gives [5, 3] (9·15 + 40 + 18 = 193);
  // c = 4/6 gives [5, 4] (9·20 + 40 + 24 = 244).
  assert.deepEqual(tuckerRanks([8, 6, 3, 3], 0.5, [0, 1]), [5, 3]);
  const shapes = [[12, 9, 7], [6, 5, 4, 3], [20, 3, 11], [64, 64, 3, 3]];
  for (const shape of shapes) {
    for (const fraction of [0.1, 0.25, 0.5, 0.75, 1]) {
      for (const modes of [shape.map((_, k) => k), [0, 1]]) {
        const numel = prod(shape);
        const kept = prod(shape.filter((_, k) => !modes.includes(k)));
        const count = (rs: number[]): number => kept * prod(rs) + rs.reduce((a, r, k) => a + r * shape[modes[k]], 0);
        let ranks: number[];
        try {
          ranks = tuckerRanks(shape, fraction, modes);
        } catch (e) {
          // Only when ranks of 1 already go over the budget.
          assert.ok(e instanceof LowrankError && e.code === 'E_USAGE', String(e));
          assert.ok(count(modes.map(() => 1)) > fraction * numel, `[${shape}] ${fraction}: refused a feasible fraction`);
          continue;
        }
        assert.ok(count(ranks) <= fraction * numel, `[${shape}] modes [${modes}] ${fraction}: ${count(ranks)} parameters`);
        ranks.forEach((r, k) => assert.ok(Number.isInteger(r) && r >= 1 && r <= shape[modes[k]], `[${shape}] rank ${r}`));
        // Maximal: every larger common fraction (a step j/Iₖ above) goes over the budget.
        const c = Math.max(...ranks.map((r, k) => r / shape[modes[k]]));
        for (const d of modes.map((m) => shape[m])) {
          for (let j = 1; j <= d; j++) {
            if (j / d <= c + 1e-12) continue;
            const rs = modes.map((m) => Math.max(1, Math.floor((j * shape[m]) / d)));
            assert.ok(count(rs) > fraction * numel, `[${shape}] ${fraction}: c = ${j}/${d} also fits (${rs})`);
          }
        }
      }
    }
  }
  const x = asTensor('f64', [12, 9, 7], gaussian(756, 600));
  const t = await tucker(x, 0.5, { method: 'hosvd' });
  assert.ok(tuckerParameters(t) <= 0.5 * 756, `${tuckerParameters(t)} parameters`);
  assert.deepEqual(t.factors.map((f) => f.shape[1]), tuckerRanks([12, 9, 7], 0.5));
  const p = await partialTucker(asTensor('f32', [8, 6, 3, 3], gaussian(432, 601)), 0.5, { modes: [0, 1] });
  assert.deepEqual(p.core.shape, [5, 3, 3, 3]);
  assert.ok(tuckerParameters(p) <= 0.5 * 432);
});

test('tuckerToTensor rebuilds a hand-made decomposition; an all-zero tensor decomposes to zeros', async () => {
  const core = tensor('f64', [2, 3, 2], gaussian(12, 700));
  const u0 = tensor('f64', [4, 2], gaussian(8, 701));
  const u2 = tensor('f64', [5, 2], gaussian(10, 702));
  const t: TuckerTensor<'f64'> = { kind: 'tucker', core, factors: [u2, u0], modes: [2, 0], shape: [4, 3, 5] };
  let want = modeMul(core.data, core.shape, u0.data, 4, 0);
  want = modeMul(want.data, want.shape, u2.data, 5, 2);
  const got = await tuckerToTensor(t);
  assert.deepEqual(got.shape, [4, 3, 5]);
  assert.ok(relError(want.data, got.data) <= 1e-14, 'core ×₀ U₀ ×₂ U₂');
  assert.equal(tuckerParameters(t), 12 + 8 + 10);

  const zero = tensor('f32', [4, 3, 5]);
  const z = await tucker(zero, [2, 2, 2]);
  assert.ok(z.core.data.every((v) => v === 0));
  assert.deepEqual(z.errors, [0]);
  assert.ok((await tuckerToTensor(z)).data.every((v) => v === 0));
});

test('typed errors: ranks, fractions, modes, options, NaN input, malformed decompositions', async () => {
  const x = asTensor('f32', [6, 5, 4], gaussian(120, 800));
  const x4 = asTensor('f32', [8, 6, 3, 3], gaussian(432, 801));
  const usage: [string, () => Promise<unknown>][] = [
    ['rank above its dimension', () => tucker(x, [7, 2, 2])],
    ['rank 0', () => tucker(x, [2, 0, 2])],
    ['non-integer rank', () => tucker(x, [2, 2.5, 2])],
    ['too few ranks', () => tucker(x, [2, 2])],
    ['too many ranks', () => tucker(x, [2, 2, 2, 2])],
    ['partial: ranks for other modes', () => partialTucker(x4, [2, 2, 2], { modes: [0, 1] })],
    ['fraction 0', () => tucker(x, 0)],
    ['negative fraction', () => tucker(x, -0.5)],
    ['fraction above 1', () => tucker(x, 1.5)],
    ['an integer above 1 is not a rank for all modes', () => tucker(x, 3)],
    ['NaN fraction', () => tucker(x, Number.NaN)],
    ['fraction too small for ranks of 1', () => tucker(x, 0.01)],
    ['mode out of range', () => partialTucker(x4, [2, 2], { modes: [0, 4] })],
    ['negative mode out of range', () => partialTucker(x4, [2, 2], { modes: [-5, 0] })],
    ['mode listed twice', () => partialTucker(x4, [2, 2], { modes: [1, -3] })],
    ['no modes', () => partialTucker(x4, [], { modes: [] })],
    ['unknown method', () => tucker(x, [2, 2, 2], { method: 'als' as 'hooi' })],
    ['negative tol', () => tucker(x, [2, 2, 2], { tol: -1 })],
    ['negative maxIter', () => tucker(x, [2, 2, 2], { maxIter: -1 })],
    ['unknown init', () => tucker(x, [2, 2, 2], { init: 'random' as 'svd' })],
  ];
  for (const [label, call] of usage) {
    await assert.rejects(call(), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE', label);
  }
  const bad = asTensor('f64', [4, 3, 2], gaussian(24, 802));
  bad.data[5] = Number.NaN;
  await assert.rejects(tucker(bad, [2, 2, 2]), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE' && e.message.startsWith('tucker:'));
  await assert.rejects(partialTucker(bad, [2], { modes: [0] }), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE' && e.message.startsWith('partialTucker:'));

  const t = await tucker(x, [2, 3, 2], { method: 'hosvd' });
  const wrongFactor: TuckerTensor<Dt> = { ...t, factors: [t.factors[0], t.factors[2], t.factors[1]] };
  await assert.rejects(tuckerToTensor(wrongFactor), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
  const wrongModes: TuckerTensor<Dt> = { ...t, modes: [0, 1, 1] };
  await assert.rejects(tuckerToTensor(wrongModes), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
  const missing: TuckerTensor<Dt> = { ...t, factors: t.factors.slice(0, 2), modes: [0, 1] };
  await assert.rejects(tuckerToTensor(missing), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
});
