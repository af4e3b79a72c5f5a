/**
 * CP-ALS (tensor/cp.ts) against float64 references on seeded inputs: exact recovery of random
 * low-rank CP tensors, recovery under noise, factor congruence, the fit history, ranks above a
 * dimension, normalization, seeds, errors, and numpy references for the SVD init, two ALS sweeps
 * (TensorLy's algorithm) and cpToTensor (np.einsum).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, cpParameters, cpToTensor } from '../../src/tensor/cp.js';
import type { CPTensor } from '../../src/tensor/types.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { pythonJson } from '../helpers/python.js';

/** Relative reconstruction error targets of exact recovery. */
const EXACT = { f32: 1e-5, f64: 1e-10 } as const;
const DTYPES: FloatDType[] = ['f32', 'f64'];

function fro(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s) / fro(b);
}

/** Seeded standard normal factors I_k × R (float64). */
function randomFactors(shape: readonly number[], r: number, seed: number): Float64Array[] {
  const g = rng(seed);
  return shape.map((d) => g.fillNormal(new Float64Array(d * r)));
}

/** Σ_r w_r a₀[:, r] ∘ a₁[:, r] ∘ … in float64 by direct accumulation (independent of cpToTensor). */
function dense(factors: readonly ArrayLike<number>[], weights: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const r = weights.length;
  let cur = Float64Array.from(weights);
  let rows = 1;
  for (const [k, a] of factors.entries()) {
    const d = shape[k];
    const next = new Float64Array(rows * d * r);
    for (let p = 0; p < rows; p++) for (let i = 0; i < d; i++) for (let c = 0; c < r; c++) next[(p * d + i) * r + c] = cur[p * r + c] * a[i * r + c];
    cur = next;
    rows *= d;
  }
  const out = new Float64Array(rows);
  for (let p = 0; p < rows; p++) for (let c = 0; c < r; c++) out[p] += cur[p * r + c];
  return out;
}

function asTensor<F extends FloatDType>(dtype: F, shape: readonly number[], data: Float64Array): Tensor<F> {
  const t = tensor(dtype, shape);
  t.data.set(data);
  return t;
}

/** The model's full tensor in float64 from its (possibly f32) weights and factors. */
function reconstruct(res: CPTensor): Float64Array {
  return dense(res.factors.map((f) => f.data), res.weights.data, res.shape);
}

/**
 * Factor congruence: for each true component, the best over estimated components of Π_k |cos|
 * between their mode-k columns; the best matches must form a permutation.
 */
function congruence(truth: readonly Float64Array[], est: CPTensor, r: number): number[] {
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>, rows: number, p: number, q: number): number => {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = 0; i < rows; i++) {
      ab += a[i * r + p] * b[i * r + q];
      aa += a[i * r + p] ** 2;
      bb += b[i * r + q] ** 2;
    }
    return Math.abs(ab) / Math.sqrt(aa * bb);
  };
  const best: number[] = [];
  const used = new Set<number>();
  for (let p = 0; p < r; p++) {
    let top = -1;
    let arg = -1;
    for (let q = 0; q < r; q++) {
      let c = 1;
      for (const [k, t] of truth.entries()) c *= cos(t, est.factors[k].data, est.shape[k], p, q);
      if (c > top) [top, arg] = [c, q];
    }
    used.add(arg);
    best.push(top);
  }
  assert.equal(used.size, r, 'best matches form a permutation');
  return best.sort((a, b) => a - b);
}

const EXACT_CASES = [
  { shape: [6, 7, 8], r: 3, seed: 11 },
  { shape: [9, 6, 10], r: 5, seed: 12 },
  { shape: [4, 5, 6, 3], r: 3, seed: 13 },
  { shape: [6, 5, 7, 5], r: 5, seed: 14 },
];

for (const dtype of DTYPES) {
  test(`${dtype}: cp recovers random rank-R CP tensors (orders 3 and 4) to ${EXACT[dtype]} with congruent factors`, async () => {
    for (const c of EXACT_CASES) {
      const truth = randomFactors(c.shape, c.r, c.seed);
      const ref = dense(truth, new Float64Array(c.r).fill(1), c.shape);
      const x = asTensor(dtype, c.shape, ref);
      // tol 0: the cheap fit is only resolved to ~√ε, so a fixed sweep count reaches the exact floor.
      const res = await cp(x, c.r, { maxIter: dtype === 'f64' ? 200 : 100, tol: 0 });
      assert.equal(res.kind, 'cp');
      assert.deepEqual(res.factors.map((f) => f.shape), c.shape.map((d) => [d, c.r]));
      assert.deepEqual([res.weights.shape, Array.from(res.weights.data)], [[c.r], new Array(c.r).fill(1)], 'weights are all 1 by default');
      const err = relDiff(reconstruct(res), ref);
      assert.ok(err <= EXACT[dtype], `[${c.shape}] rank ${c.r}: relative error ${err}`);
      const full = await cpToTensor(res);
      assert.equal(full.dtype, dtype);
      assert.ok(relDiff(full.data, ref) <= EXACT[dtype], `[${c.shape}]: cpToTensor relative error ${relDiff(full.data, ref)}`);
      for (const g of congruence(truth, res, c.r)) assert.ok(g >= 0.999, `[${c.shape}] rank ${c.r}: congruence ${g}`);
    }
  });

  test(`${dtype}: on a noisy rank-4 tensor (noise 1e-2) cp reaches the noise level within 10%`, async () => {
    const shape = [12, 10, 9];
    const r = 4;
    const truth = randomFactors(shape, r, 21);
    const clean = dense(truth, new Float64Array(r).fill(1), shape);
    const noise = rng(22).fillNormal(new Float64Array(clean.length));
    const scale = (1e-2 * fro(clean)) / fro(noise);
    const ref = clean.map((v, i) => v + scale * noise[i]);
    const level = (scale * fro(noise)) / fro(ref);
    const res = await cp(asTensor(dtype, shape, ref), r, { maxIter: 500 });
    const err = relDiff(reconstruct(res), ref);
    assert.ok(err <= 1.1 * level, `relative error ${err}, noise level ${level}`);
    for (const g of congruence(truth, res, r)) assert.ok(g >= 0.999, `congruence ${g}`);
  });
}

test('f64: the fit history is recorded, matches cpToTensor at the end, never decreases, and follows the stopping rule', async () => {
  const shape = [10, 8, 7];
  const r = 3;
  const truth = randomFactors(shape, r, 31);
  const clean = dense(truth, new Float64Array(r).fill(1), shape);
  const noise = rng(32).fillNormal(new Float64Array(clean.length));
  const scale = (3e-2 * fro(clean)) / fro(noise);
  const ref = clean.map((v, i) => v + scale * noise[i]);
  const x = asTensor('f64', shape, ref);
  const tol = 1e-8;
  const maxIter = 1000;
  const res = await cp(x, r, { tol, maxIter });
  const h = res.fitHistory;
  assert.equal(h.length, res.iterations);
  assert.ok(res.iterations >= 2 && res.iterations < maxIter, `stopped after ${res.iterations} sweeps`);
  const fit = 1 - relDiff((await cpToTensor(res)).data, ref);
  assert.ok(Math.abs(h[h.length - 1] - fit) <= 1e-6, `last recorded fit ${h[h.length - 1]}, from cpToTensor ${fit}`);
  for (let i = 1; i < h.length; i++) {
    assert.ok(h[i] >= h[i - 1] - 1e-10, `ALS fit decreased at sweep ${i}: ${h[i - 1]} → ${h[i]}`);
    const change = Math.abs(h[i] - h[i - 1]) / Math.abs(h[i - 1]);
    assert.equal(change < tol, i === h.length - 1, `sweep ${i}: relative fit change ${change}`);
  }
  // tol 0 runs exactly maxIter sweeps; maxIter 0 returns the initialization.
  const fixed = await cp(x, r, { tol: 0, maxIter: 7 });
  assert.deepEqual([fixed.iterations, fixed.fitHistory.length], [7, 7]);
  const none = await cp(x, r, { maxIter: 0 });
  assert.deepEqual([none.iterations, none.fitHistory], [0, []]);
});

test('numpy: the SVD init, two ALS sweeps (TensorLy algorithm) and their fit match a float64 numpy implementation', async () => {
  const shape = [5, 4, 6, 3];
  const r = 3;
  const x = asTensor('f64', shape, rng(41).fillNormal(new Float64Array(5 * 4 * 6 * 3)));
  const ref = pythonJson<{ init: number[][]; als: number[][]; fit: number[] }>(
    `import sys, json
from functools import reduce
d = json.loads(sys.stdin.read()); shape = d['shape']; r = d['r']
x = np.array(d['x'], dtype=np.float64).reshape(shape)
N = len(shape)
unfold = lambda t, n: np.moveaxis(t, n, 0).reshape(t.shape[n], -1)
def kr(ms):
    return reduce(lambda a, b: (a[:, None, :] * b[None, :, :]).reshape(-1, a.shape[1]), ms)
fs = []
for n in range(N):
    u, s, _ = np.linalg.svd(unfold(x, n), full_matrices=False)
    u = u[:, :r]
    u = u * np.sign(u[np.argmax(np.abs(u), axis=0), range(r)])
    if n == 0: u = u * s[:r]
    fs.append(u)
init = [f.ravel().tolist() for f in fs]
fits = []
for it in range(2):
    for n in range(N):
        v = reduce(lambda a, b: a * b, [f.T @ f for k, f in enumerate(fs) if k != n])
        m = unfold(x, n) @ kr([f for k, f in enumerate(fs) if k != n])
        fs[n] = np.linalg.solve(v.T, m.T).T
    rec = np.einsum('ir,jr,kr,lr->ijkl', *fs)
    fits.append(1 - np.linalg.norm(x - rec) / np.linalg.norm(x))
print(json.dumps({'init': init, 'als': [f.ravel().tolist() for f in fs], 'fit': fits}))`,
    [],
    JSON.stringify({ shape, r, x: Array.from(x.data) }),
  );
  const init = await cp(x, r, { maxIter: 0 });
  init.factors.forEach((f, k) => assert.ok(relDiff(f.data, ref.init[k]) <= 1e-10, `init factor ${k}: ${relDiff(f.data, ref.init[k])}`));
  const two = await cp(x, r, { maxIter: 2, tol: 0 });
  two.factors.forEach((f, k) => assert.ok(relDiff(f.data, ref.als[k]) <= 1e-9, `factor ${k} after two sweeps: ${relDiff(f.data, ref.als[k])}`));
  two.fitHistory.forEach((f, i) => assert.ok(Math.abs(f - ref.fit[i]) <= 1e-8, `fit ${i}: ${f}, numpy ${ref.fit[i]}`));
});

test('numpy: cpToTensor matches np.einsum (float64, weights not 1, orders 3 and 4)', async () => {
  for (const [seed, shape] of [
    [51, [3, 4, 2]],
    [52, [2, 3, 4, 5]],
  ] as const) {
    const r = 3;
    const factors = randomFactors(shape, r, seed);
    const w = Float64Array.from([0.5, -2, 3]);
    const t: CPTensor<'f64'> = { kind: 'cp', weights: tensor('f64', [r], w), factors: factors.map((f, k) => tensor('f64', [shape[k], r], f)), shape };
    const letters = 'ijkl'.slice(0, shape.length);
    const ref = pythonJson<number[]>(
      `import sys, json
d = json.loads(sys.stdin.read()); r = d['r']
fs = [np.array(f, dtype=np.float64).reshape(s, r) for f, s in zip(d['factors'], d['shape'])]
print(json.dumps(np.einsum('r,' + ','.join(c + 'r' for c in '${letters}') + '->${letters}', np.array(d['w']), *fs).ravel().tolist()))`,
      [],
      JSON.stringify({ r, shape, w: Array.from(w), factors: factors.map((f) => Array.from(f)) }),
    );
    const full = await cpToTensor(t);
    assert.deepEqual(full.shape, shape);
    const scale = fro(ref);
    full.data.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-12 * scale, `[${shape}] element ${i}: ${v}, numpy ${ref[i]}`));
    assert.equal(cpParameters(t), r * shape.reduce((a, b) => a + b, 0) + r, 'weights not all 1 are counted');
    assert.equal(cpParameters({ ...t, weights: tensor('f64', [r], new Float64Array(r).fill(1)) }), r * shape.reduce((a, b) => a + b, 0), 'all-ones weights are not');
  }
});

for (const dtype of DTYPES) {
  test(`${dtype}: a rank above the smallest dimension (and a singular Gram system) gives finite factors and a lower error than rank 2`, async () => {
    // [2, 2, 3] at rank 5: the mode-2 system G₀ ∘ G₁ has rank ≤ 4 < 5, so it is singular (the
    // pseudo-inverse path); the generic rank of 2×2×3 tensors is 3, so rank 5 fits exactly.
    for (const [shape, big, exact] of [
      [[4, 5, 6], 8, false],
      [[2, 2, 3], 5, true],
    ] as const) {
      const ref = rng(61).fillNormal(new Float64Array(shape.reduce((a, b) => a * b, 1)));
      const x = asTensor(dtype, shape, ref);
      const low = relDiff(reconstruct(await cp(x, 2)), ref);
      for (const normalize of [false, true]) {
        const res = await cp(x, big, { normalize });
        const values = [...res.factors.flatMap((f) => Array.from(f.data)), ...res.weights.data, ...res.fitHistory];
        assert.ok(values.every(Number.isFinite), `[${shape}] rank ${big}: non-finite values`);
        const err = relDiff(reconstruct(res), ref);
        assert.ok(err < low, `[${shape}] rank ${big} (normalize ${normalize}): error ${err}, rank 2: ${low}`);
        if (exact) assert.ok(err <= EXACT[dtype], `[${shape}] rank ${big} (normalize ${normalize}): error ${err} of an exact fit`);
      }
    }
  });
}

test('f64: normalize moves the column norms into the weights and reconstructs the same tensor', async () => {
  const shape = [6, 7, 8];
  const r = 3;
  const clean = dense(randomFactors(shape, r, 71), new Float64Array(r).fill(1), shape);
  const noise = rng(72).fillNormal(new Float64Array(clean.length));
  const ref = clean.map((v, i) => v + 0.05 * noise[i]);
  const x = asTensor('f64', shape, ref);
  const plain = await cp(x, r, { maxIter: 30, tol: 0 });
  const normed = await cp(x, r, { maxIter: 30, tol: 0, normalize: true });
  for (const f of normed.factors) {
    for (let c = 0; c < r; c++) {
      let s = 0;
      for (let i = 0; i < f.shape[0]; i++) s += f.data[i * r + c] ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - 1) <= 1e-12, `column norm ${Math.sqrt(s)}`);
    }
  }
  assert.ok(normed.weights.data.every((w) => w > 0) && normed.weights.data.some((w) => Math.abs(w - 1) > 1e-3), `weights ${normed.weights.data}`);
  const a = (await cpToTensor(plain)).data;
  const b = (await cpToTensor(normed)).data;
  assert.ok(relDiff(b, a) <= 1e-9, `normalized and plain reconstructions differ by ${relDiff(b, a)}`);
  normed.fitHistory.forEach((f, i) => assert.ok(Math.abs(f - plain.fitHistory[i]) <= 1e-9, `fit ${i}: ${f} vs ${plain.fitHistory[i]}`));
  assert.equal(cpParameters(normed), cpParameters(plain) + r);
});

test('f64: the random init is reproducible by seed and also recovers an exact CP tensor', async () => {
  const shape = [6, 7, 8];
  const r = 3;
  const ref = dense(randomFactors(shape, r, 81), new Float64Array(r).fill(1), shape);
  const x = asTensor('f64', shape, ref);
  const a = await cp(x, r, { init: 'random', seed: 5, maxIter: 5, tol: 0 });
  const b = await cp(x, r, { init: 'random', seed: 5, maxIter: 5, tol: 0 });
  const c = await cp(x, r, { init: 'random', seed: 6, maxIter: 5, tol: 0 });
  assert.deepEqual(b.factors.map((f) => Array.from(f.data)), a.factors.map((f) => Array.from(f.data)), 'same seed, same factors');
  assert.ok(relDiff(c.factors[0].data, a.factors[0].data) > 1e-6, 'another seed, other factors');
  const start = await cp(x, r, { init: 'random', seed: 5, maxIter: 0 });
  assert.ok(start.factors.every((f) => f.data.every((v) => v >= 0 && v < 1)), 'random init is uniform in [0, 1)');
  const res = await cp(x, r, { init: 'random', seed: 5, maxIter: 500, tol: 0 });
  const err = relDiff(reconstruct(res), ref);
  assert.ok(err <= EXACT.f64, `random init: relative error ${err}`);
});

test('cp and cpToTensor reject bad arguments with typed errors', async () => {
  const x = asTensor('f64', [3, 4, 5], rng(91).fillNormal(new Float64Array(60)));
  const code = async (f: () => Promise<unknown>, expected: string): Promise<void> => {
    await assert.rejects(f, (e: unknown) => e instanceof LowrankError && e.code === expected);
  };
  await code(() => cp(x, 0), 'E_USAGE');
  await code(() => cp(x, 1.5), 'E_USAGE');
  await code(() => cp(asTensor('f64', [7], new Float64Array(7).fill(1)), 1), 'E_SHAPE');
  const bad = asTensor('f64', [3, 4, 5], x.data.slice());
  bad.data[17] = NaN;
  await code(() => cp(bad, 2), 'E_NONFINITE');
  await code(() => cp(x, 2, { init: 'hosvd' as 'svd' }), 'E_USAGE');
  await code(() => cp(x, 2, { tol: -1 }), 'E_USAGE');
  await code(() => cp(x, 2, { tol: NaN }), 'E_USAGE');
  await code(() => cp(x, 2, { maxIter: 2.5 }), 'E_USAGE');
  await code(() => cp(x, 2, { seed: 0.5 }), 'E_USAGE');
  const good = await cp(x, 2, { maxIter: 3 });
  await code(() => cpToTensor({ ...good, shape: [3, 4, 6] }), 'E_SHAPE');
  await code(() => cpToTensor({ ...good, weights: tensor('f64', [3]) }), 'E_SHAPE');
});
