/**
 * Tensor trains (TT-SVD), tensor-train matrices and the tensorization helpers, f32 and f64, on
 * seeded inputs against float64 references: the tensors the tests build in float64, and a numpy
 * TT-SVD with the same truncation rule. Tolerances are the ones written in each test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { kron } from '../../src/tensor/products.js';
import { factorizeDim, matrixFromTensorized, tensorizeMatrix } from '../../src/tensor/tensorize.js';
import { tensorTrain, ttMatrix, ttMatrixParameters, ttMatrixToMatrix, ttParameters, ttRanks, ttToTensor } from '../../src/tensor/tt.js';
import { pythonJson } from '../helpers/python.js';

const DTYPES: FloatDType[] = ['f32', 'f64'];

function gaussian(n: number, seed: number): Float64Array {
  return rng(seed).fillNormal(new Float64Array(n));
}

function as<F extends FloatDType>(dtype: F, shape: readonly number[], data: Float64Array): Tensor<F> {
  return tensor(dtype, shape, (dtype === 'f32' ? Float32Array.from(data) : Float64Array.from(data)) as Tensor<F>['data']);
}

function fro(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(a.length, ref.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - ref[i]) ** 2;
  return Math.sqrt(s) / fro(ref);
}

/** Random cores [r_k, I_k, r_{k+1}] (float64) and their contraction, by plain loops in float64. */
function randomTT(shape: readonly number[], ranks: readonly number[], seed: number): { cores: Float64Array[]; x: Float64Array } {
  const cores = shape.map((dim, k) => gaussian(ranks[k] * dim * ranks[k + 1], seed + k));
  const total = shape.reduce((a, b) => a * b, 1);
  const x = new Float64Array(total);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    for (let k = shape.length - 1; k >= 0; k--) {
      idx[k] = rem % shape[k];
      rem = Math.floor(rem / shape[k]);
    }
    let v = new Float64Array([1]);
    for (let k = 0; k < shape.length; k++) {
      const [r, rn] = [ranks[k], ranks[k + 1]];
      const next = new Float64Array(rn);
      for (let a = 0; a < r; a++) for (let b = 0; b < rn; b++) next[b] += v[a] * cores[k][(a * shape[k] + idx[k]) * rn + b];
      v = next;
    }
    x[flat] = v[0];
  }
  return { cores, x };
}

function codeOf(fn: () => unknown): Promise<string> {
  return (async () => {
    try {
      await fn();
    } catch (e) {
      assert.ok(e instanceof LowrankError, `not a LowrankError: ${String(e)}`);
      return e.code;
    }
    assert.fail('no error thrown');
  })();
}

/** A float64 numpy TT-SVD with the same rule (drop while √Σσ² ≤ tol/√(d−1)·‖x‖): ranks and relative errors. */
function numpyTT(cases: { shape: number[]; x: number[] }[], tols: number[]): { ranks: number[]; err: number }[][] {
  const script = `
import json, sys
data = json.load(sys.stdin)
out = []
for c in data['cases']:
    x = np.array(c['x'], dtype=np.float64).reshape(c['shape'])
    d = x.ndim
    row = []
    for tol in data['tols']:
        delta = tol / np.sqrt(d - 1) * np.linalg.norm(x)
        rest = x.reshape(-1)
        r_prev = 1
        cores = []
        ranks = [1]
        for k in range(d - 1):
            m = rest.reshape(r_prev * x.shape[k], -1)
            u, s, vt = np.linalg.svd(m, full_matrices=False)
            r = len(s)
            dropped = 0.0
            while r > 1 and dropped + s[r - 1] ** 2 <= delta ** 2:
                dropped += s[r - 1] ** 2
                r -= 1
            cores.append(u[:, :r].reshape(r_prev, x.shape[k], r))
            rest = (s[:r, None] * vt[:r]).reshape(-1)
            r_prev = r
            ranks.append(r)
        cores.append(rest.reshape(r_prev, x.shape[-1], 1))
        ranks.append(1)
        y = cores[0]
        for g in cores[1:]:
            y = np.tensordot(y, g, axes=([-1], [0]))
        err = np.linalg.norm(y.reshape(-1) - x.reshape(-1)) / np.linalg.norm(x)
        row.append({'ranks': ranks, 'err': float(err)})
    out.append(row)
print(json.dumps(out))
`;
  return pythonJson(script, [], JSON.stringify({ cases, tols }));
}

const TT_SHAPE = [5, 6, 7, 4];
const TT_RANKS = [1, 3, 4, 2, 1];

for (const dtype of DTYPES) {
  test(`${dtype}: TT-SVD recovers a random TT-rank-(1, 3, 4, 2, 1) tensor`, async () => {
    const { x: x64 } = randomTT(TT_SHAPE, TT_RANKS, 100);
    const x = as(dtype, TT_SHAPE, x64);
    const tol = dtype === 'f32' ? 1e-5 : 1e-10;

    const tt = await tensorTrain(x, { maxRank: 4 });
    assert.deepEqual(ttRanks(tt), [1, 4, 4, 4, 1]);
    assert.deepEqual(tt.cores.map((g) => g.shape), [[1, 5, 4], [4, 6, 4], [4, 7, 4], [4, 4, 1]]);
    assert.ok(tt.cores.every((g) => g.dtype === dtype));
    const y = await ttToTensor(tt);
    assert.deepEqual(y.shape, TT_SHAPE);
    const err = relErr(y.data, x64);
    assert.ok(err <= tol, `maxRank 4: relative error ${err}`);

    const rankTol = dtype === 'f32' ? 1e-4 : 1e-6;
    const ttTol = await tensorTrain(x, { tol: rankTol });
    assert.deepEqual(ttRanks(ttTol), TT_RANKS, `tol ${rankTol}`);
    assert.equal(ttParameters(ttTol), 1 * 5 * 3 + 3 * 6 * 4 + 4 * 7 * 2 + 2 * 4 * 1);
    const errTol = relErr((await ttToTensor(ttTol)).data, x64);
    assert.ok(errTol <= tol, `tol ${rankTol}: relative error ${errTol}`);

    // maxRank as a per-bond list (and TensorLy's full list) caps each bond.
    assert.deepEqual(ttRanks(await tensorTrain(x, { maxRank: [2, 3, 1] })), [1, 2, 3, 1, 1]);
    assert.deepEqual(ttRanks(await tensorTrain(x, { maxRank: [1, 2, 3, 1, 1] })), [1, 2, 3, 1, 1]);
    // Both: the smaller of the two ranks.
    assert.deepEqual(ttRanks(await tensorTrain(x, { tol: rankTol, maxRank: 3 })), [1, 3, 3, 2, 1]);
  });

  test(`${dtype}: the TT-SVD error bound ‖x − tt‖ ≤ tol·‖x‖ holds on 10 random tensors, ranks shrinking as tol grows`, async () => {
    const shape = [4, 5, 6, 5];
    const tols = [0.1, 0.3, 0.5];
    const cases = Array.from({ length: 10 }, (_, i) => ({ shape, x: Array.from(gaussian(600, 200 + i)) }));
    const ref = dtype === 'f64' ? numpyTT(cases, tols) : undefined;
    // Rounding slack on top of the bound (the guarantee is for exact arithmetic).
    const slack = dtype === 'f32' ? 1e-5 : 1e-12;
    let shrank = 0;
    for (const [ci, c] of cases.entries()) {
      const x = as(dtype, shape, Float64Array.from(c.x));
      const xs = Float64Array.from(x.data);
      let prev: number[] | undefined;
      const sums: number[] = [];
      for (const [ti, tol] of tols.entries()) {
        const tt = await tensorTrain(x, { tol });
        const err = relErr((await ttToTensor(tt)).data, xs);
        assert.ok(err <= tol * (1 + slack), `case ${ci}, tol ${tol}: relative error ${err}`);
        const ranks = ttRanks(tt);
        if (ref !== undefined) {
          assert.deepEqual(ranks, ref[ci][ti].ranks, `case ${ci}, tol ${tol}: ranks against numpy`);
          assert.ok(Math.abs(err - ref[ci][ti].err) <= 1e-10, `case ${ci}, tol ${tol}: error ${err}, numpy ${ref[ci][ti].err}`);
        }
        if (prev !== undefined) {
          assert.ok(ranks.every((r, k) => r <= prev![k]), `case ${ci}: ranks [${ranks}] at tol ${tol} above [${prev}]`);
          if (ranks.some((r, k) => r < prev![k])) shrank++;
        }
        prev = ranks;
        sums.push(ranks.reduce((p, q) => p + q, 0));
      }
      assert.ok(sums[2] < sums[0], `case ${ci}: ranks at tol 0.5 (sum ${sums[2]}) not below those at 0.1 (sum ${sums[0]})`);
    }
    assert.ok(shrank >= 10, `ranks shrank in only ${shrank} of 20 tol steps`);
  });
}

test('f64: exact TT-SVD (no options) reproduces x with the full ranks', async () => {
  const shape = [3, 4, 5, 6, 2];
  const x64 = gaussian(720, 300);
  const tt = await tensorTrain(as('f64', shape, x64));
  // r_k = min(Π_{<k} I, Π_{≥k} I), further capped by the previous rank times I.
  assert.deepEqual(ttRanks(tt), [1, 3, 12, 12, 2, 1]);
  const err = relErr((await ttToTensor(tt)).data, x64);
  assert.ok(err <= 1e-12, `relative error ${err}`);
  // Cores 0 … d − 2 are left-orthogonal: GᵀG = I as [r_k·I_k, r_{k+1}] matrices.
  for (const g of tt.cores.slice(0, -1)) {
    const [r, n, rn] = g.shape;
    for (let a = 0; a < rn; a++) {
      for (let b = 0; b < rn; b++) {
        let s = 0;
        for (let i = 0; i < r * n; i++) s += g.data[i * rn + a] * g.data[i * rn + b];
        assert.ok(Math.abs(s - (a === b ? 1 : 0)) <= 1e-12, `core [${g.shape}]: (GᵀG)[${a}, ${b}] = ${s}`);
      }
    }
  }
  // A 1-D tensor is its own single core; a 2-D one is a matrix SVD.
  const v = await tensorTrain(as('f64', [7], x64.subarray(0, 7)), { tol: 0.5 });
  assert.deepEqual(ttRanks(v), [1, 1]);
  assert.deepEqual(Array.from((await ttToTensor(v)).data), Array.from(x64.subarray(0, 7)));
  const m = await tensorTrain(as('f64', [6, 8], x64.subarray(0, 48)));
  assert.deepEqual(ttRanks(m), [1, 6, 1]);
  assert.ok(relErr((await ttToTensor(m)).data, x64.subarray(0, 48)) <= 1e-12);
});

/** W[(i₀ i₁ i₂), (j₀ j₁ j₂)] from the cores' slices G_k[:, i_k, j_k, :], multiplied out in float64. */
function ttmEntries(cores: readonly Tensor<FloatDType>[], rowDims: number[], colDims: number[]): Float64Array {
  const m = rowDims.reduce((a, b) => a * b, 1);
  const n = colDims.reduce((a, b) => a * b, 1);
  const out = new Float64Array(m * n);
  const digits = (v: number, dims: number[]): number[] => {
    const d = new Array<number>(dims.length);
    for (let k = dims.length - 1; k >= 0; k--) {
      d[k] = v % dims[k];
      v = Math.floor(v / dims[k]);
    }
    return d;
  };
  for (let i = 0; i < m; i++) {
    const ii = digits(i, rowDims);
    for (let j = 0; j < n; j++) {
      const jj = digits(j, colDims);
      let vec = new Float64Array([1]);
      for (const [k, g] of cores.entries()) {
        const [r, mk, nk, rn] = g.shape;
        const next = new Float64Array(rn);
        for (let a = 0; a < r; a++) for (let b = 0; b < rn; b++) next[b] += vec[a] * g.data[((a * mk + ii[k]) * nk + jj[k]) * rn + b];
        vec = next;
      }
      out[i * n + j] = vec[0];
    }
  }
  return out;
}

for (const dtype of DTYPES) {
  test(`${dtype}: ttMatrix of a [64, 48] matrix: exact with full ranks, rank 1 for a Kronecker product`, async () => {
    const tol = dtype === 'f32' ? 1e-5 : 1e-10;
    const rowDims = [4, 4, 4];
    const colDims = [4, 4, 3];
    const w64 = gaussian(64 * 48, 400);
    const w = as(dtype, [64, 48], w64);
    const ttm = await ttMatrix(w, { rowDims, colDims });
    assert.equal(ttm.kind, 'ttMatrix');
    assert.deepEqual(ttRanks(ttm), [1, 16, 12, 1]);
    assert.deepEqual(ttm.cores.map((g) => g.shape), [[1, 4, 4, 16], [16, 4, 4, 12], [12, 4, 3, 1]]);
    assert.equal(ttMatrixParameters(ttm), 256 + 3072 + 144);
    const back = await ttMatrixToMatrix(ttm);
    assert.deepEqual(back.shape, [64, 48]);
    const err = relErr(back.data, w64);
    assert.ok(err <= tol, `full ranks: relative error ${err}`);
    // The cores' layout, read independently of ttMatrixToMatrix.
    const errEntries = relErr(ttmEntries(ttm.cores, rowDims, colDims), w64);
    assert.ok(errEntries <= tol, `entries from core slices: relative error ${errEntries}`);

    // Truncated: the same error bound as tensorTrain.
    const t3 = await ttMatrix(w, { rowDims, colDims, tol: 0.3 });
    const err3 = relErr((await ttMatrixToMatrix(t3)).data, Float64Array.from(w.data));
    assert.ok(err3 <= 0.3 * (1 + 1e-5), `tol 0.3: relative error ${err3}`);
    assert.ok(ttMatrixParameters(t3) < ttMatrixParameters(ttm));

    // kron(A, kron(B, C)): A 4×4, B 4×4, C 4×3 — an MPO of ranks 1.
    const a = as('f64', [4, 4], gaussian(16, 401));
    const b = as('f64', [4, 4], gaussian(16, 402));
    const c = as('f64', [4, 3], gaussian(12, 403));
    const k64 = kron(a, kron(b, c)).data as Float64Array;
    const kw = as(dtype, [64, 48], k64);
    const kt = await ttMatrix(kw, { rowDims, colDims, tol: dtype === 'f32' ? 1e-4 : 1e-8 });
    assert.deepEqual(ttRanks(kt), [1, 1, 1, 1]);
    const kerr = relErr((await ttMatrixToMatrix(kt)).data, k64);
    assert.ok(kerr <= tol, `Kronecker product: relative error ${kerr}`);
    const kerr1 = relErr((await ttMatrixToMatrix(await ttMatrix(kw, { rowDims, colDims, maxRank: 1 }))).data, k64);
    assert.ok(kerr1 <= tol, `Kronecker product, maxRank 1: relative error ${kerr1}`);
  });
}

test('tensorizeMatrix / matrixFromTensorized: numpy layout and round trip', async () => {
  const rowDims = [2, 3, 4];
  const colDims = [3, 2, 5];
  const w64 = gaussian(24 * 30, 500);
  const ref = pythonJson<{ plain: number[]; inter: number[] }>(
    `
import json, sys
w = np.array(json.load(sys.stdin), dtype=np.float64).reshape(24, 30)
t = w.reshape(2, 3, 4, 3, 2, 5)
print(json.dumps({'plain': t.reshape(-1).tolist(), 'inter': t.transpose(0, 3, 1, 4, 2, 5).reshape(-1).tolist()}))
`,
    [],
    JSON.stringify(Array.from(w64)),
  );
  for (const dtype of DTYPES) {
    const w = as(dtype, [24, 30], w64);
    const plain = tensorizeMatrix(w, rowDims, colDims);
    assert.deepEqual(plain.shape, [2, 3, 4, 3, 2, 5]);
    assert.deepEqual(Array.from(plain.data), Array.from(as(dtype, [720], Float64Array.from(ref.plain)).data));
    const inter = tensorizeMatrix(w, rowDims, colDims, { interleave: true });
    assert.deepEqual(inter.shape, [2, 3, 3, 2, 4, 5]);
    assert.equal(inter.dtype, dtype);
    assert.deepEqual(Array.from(inter.data), Array.from(as(dtype, [720], Float64Array.from(ref.inter)).data));
    for (const [t, interleave] of [[plain, false], [inter, true]] as const) {
      const back = matrixFromTensorized(t, rowDims, colDims, { interleave });
      assert.deepEqual(back.shape, [24, 30]);
      assert.deepEqual(Array.from(back.data), Array.from(w.data));
    }
  }
  // Plain tensorization allows different numbers of row and column factors.
  const w = as('f64', [24, 30], w64);
  const t = tensorizeMatrix(w, [4, 6], [2, 3, 5]);
  assert.deepEqual(t.shape, [4, 6, 2, 3, 5]);
  assert.deepEqual(Array.from(matrixFromTensorized(t, [4, 6], [2, 3, 5]).data), Array.from(w64));
});

test('factorizeDim: balanced factors, descending', () => {
  assert.deepEqual(factorizeDim(4096, 3), [16, 16, 16]);
  assert.deepEqual(factorizeDim(768, 2), [32, 24]);
  assert.deepEqual(factorizeDim(11008, 3), [43, 16, 16]);
  assert.deepEqual(factorizeDim(4096, 2), [64, 64]);
  assert.deepEqual(factorizeDim(13, 3), [13, 1, 1]);
  assert.deepEqual(factorizeDim(1, 2), [1, 1]);
  assert.deepEqual(factorizeDim(12, 1), [12]);
  assert.deepEqual(factorizeDim(1024, 10), new Array(10).fill(2));
  // Against a brute force: the lexicographically smallest descending factorization.
  const brute = (n: number, k: number, cap: number): number[][] => {
    if (k === 1) return n <= cap ? [[n]] : [];
    const out: number[][] = [];
    for (let f = 1; f <= Math.min(n, cap); f++) if (n % f === 0) for (const rest of brute(n / f, k - 1, f)) out.push([f, ...rest]);
    return out;
  };
  const lexLess = (a: number[], b: number[]): boolean => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
    return false;
  };
  for (let n = 1; n <= 400; n++) {
    for (const k of [2, 3, 4]) {
      const best = brute(n, k, n).reduce((p, q) => (lexLess(q, p) ? q : p));
      assert.deepEqual(factorizeDim(n, k), best, `n ${n}, parts ${k}`);
    }
  }
});

test('errors: bad tol and maxRank (E_USAGE), mismatched dims (E_SHAPE), NaN (E_NONFINITE)', async () => {
  const x = as('f64', [3, 4, 5], gaussian(60, 600));
  for (const tol of [0, -0.1, 1, 1.5, Number.NaN]) assert.equal(await codeOf(() => tensorTrain(x, { tol })), 'E_USAGE', `tol ${tol}`);
  for (const maxRank of [0, -1, 1.5, [2], [2, 0], [2, 2, 2], [2, 2, 2, 2]]) {
    assert.equal(await codeOf(() => tensorTrain(x, { maxRank })), 'E_USAGE', `maxRank ${JSON.stringify(maxRank)}`);
  }
  const bad = as('f64', [3, 4, 5], gaussian(60, 600));
  bad.data[17] = Number.NaN;
  assert.equal(await codeOf(() => tensorTrain(bad)), 'E_NONFINITE');
  const w = as('f64', [64, 48], gaussian(64 * 48, 601));
  assert.equal(await codeOf(() => ttMatrix(w, { rowDims: [4, 4, 4], colDims: [4, 4, 4] })), 'E_SHAPE');
  assert.equal(await codeOf(() => ttMatrix(w, { rowDims: [8, 8], colDims: [4, 4, 3] })), 'E_SHAPE');
  assert.equal(await codeOf(() => ttMatrix(w, { rowDims: [4, 4, 4], colDims: [4, 4, 3], maxRank: 0 })), 'E_USAGE');
  assert.equal(await codeOf(() => ttMatrix(w, { rowDims: [4, 4, 4], colDims: [4, 4, 3], tol: 1 })), 'E_USAGE');
  assert.equal(await codeOf(() => ttMatrix(x, { rowDims: [3], colDims: [4] })), 'E_SHAPE');
  const wn = as('f64', [64, 48], gaussian(64 * 48, 601));
  wn.data[5] = Number.POSITIVE_INFINITY;
  assert.equal(await codeOf(() => ttMatrix(wn, { rowDims: [4, 4, 4], colDims: [4, 4, 3] })), 'E_NONFINITE');
  assert.equal(await codeOf(() => tensorizeMatrix(w, [4, 4, 4], [4, 4, 4])), 'E_SHAPE');
  assert.equal(await codeOf(() => tensorizeMatrix(w, [8, 8], [4, 4, 3], { interleave: true })), 'E_SHAPE');
  assert.equal(await codeOf(() => tensorizeMatrix(w, [0, 4], [4, 4, 3])), 'E_USAGE');
  assert.equal(await codeOf(() => matrixFromTensorized(tensorizeMatrix(w, [8, 8], [48]), [8, 8], [6, 8])), 'E_SHAPE');
  assert.equal(await codeOf(() => matrixFromTensorized(tensorizeMatrix(w, [8, 8], [6, 8]), [8, 8], [6, 8], { interleave: true })), 'E_SHAPE');
  assert.equal(await codeOf(() => factorizeDim(0, 2)), 'E_USAGE');
  assert.equal(await codeOf(() => factorizeDim(12, 0)), 'E_USAGE');
  // Cores that do not chain.
  const tt = await tensorTrain(x);
  const broken = { ...tt, cores: [tt.cores[0], tensor('f64', [2, 4, 3]), tt.cores[2]] };
  assert.equal(await codeOf(() => ttToTensor(broken)), 'E_SHAPE');
  assert.equal(await codeOf(() => ttToTensor({ ...tt, shape: [3, 4, 6] })), 'E_SHAPE');
});
