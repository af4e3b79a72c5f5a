/**
 * The MPS entanglement spectrum, f32 and f64, on seeded inputs: entropies and spectra against a
 * numpy float64 reference (reshape, SVD of each bipartition, −Σ p·ln p), product states (entropy 0)
 * and maximally entangled bonds (entropy ln d). Tolerances are the ones written in each test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { qr } from '../../src/linalg/index.js';
import { kron } from '../../src/tensor/products.js';
import { matrixFromTensorized } from '../../src/tensor/tensorize.js';
import { tensorTrain, ttRanks } from '../../src/tensor/tt.js';
import { entanglement, type EntanglementOptions } from '../../src/tensor/entanglement.js';
import { pythonJson } from '../helpers/python.js';

const DTYPES: FloatDType[] = ['f32', 'f64'];

function gaussian(n: number, seed: number): Float64Array {
  return rng(seed).fillNormal(new Float64Array(n));
}

function as<F extends FloatDType>(dtype: F, shape: readonly number[], data: Float64Array): Tensor<F> {
  return tensor(dtype, shape, (dtype === 'f32' ? Float32Array.from(data) : Float64Array.from(data)) as Tensor<F>['data']);
}

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof LowrankError, `not a LowrankError: ${String(e)}`);
    return e.code;
  }
  return assert.fail('no error thrown');
}

interface RefBond {
  entropy: number;
  spectrum: number[];
  rank: number;
}

/**
 * numpy float64: w (row-major values) reshaped to the sites — flat dims, or rowDims + colDims
 * interleaved and paired — then at every bond the SVD of the (sites ≤ k) × (sites > k)
 * matricization, p = σ²/Σσ², −Σ p ln p over p > 0, and np.linalg.matrix_rank's count.
 */
function numpyEntanglement(w: ArrayLike<number>, dims: EntanglementOptions['dims'], eps: number): RefBond[] {
  const script = `
import json, sys
data = json.load(sys.stdin)
w = np.array(data['w'], dtype=np.float64)
dims = data['dims']
if isinstance(dims, dict):
    rd, cd = dims['rowDims'], dims['colDims']
    d = len(rd)
    t = w.reshape(rd + cd).transpose([i for k in range(d) for i in (k, d + k)])
    sites = [rd[k] * cd[k] for k in range(d)]
else:
    t = w
    sites = dims
t = np.ascontiguousarray(t).reshape(sites)
out = []
for k in range(len(sites) - 1):
    left = int(np.prod(sites[:k + 1]))
    m = t.reshape(left, -1)
    s = np.linalg.svd(m, compute_uv=False)
    p = s ** 2 / np.sum(s ** 2)
    nz = p[p > 0]
    rank = int(np.sum(s > s[0] * max(m.shape) * data['eps']))
    out.append({'entropy': float(-np.sum(nz * np.log(nz))), 'spectrum': p.tolist(), 'rank': rank})
print(json.dumps(out))
`;
  return pythonJson(script, [], JSON.stringify({ w: Array.from(w), dims, eps }));
}

for (const dtype of DTYPES) {
  const tol = dtype === 'f32' ? 1e-5 : 1e-10;
  const eps = dtype === 'f32' ? 2 ** -23 : 2 ** -52;

  test(`${dtype}: entropies and spectra of a random Gaussian matrix match numpy`, async () => {
    const w64 = gaussian(24 * 30, 700);
    const w = as(dtype, [24, 30], w64);
    const cases: EntanglementOptions['dims'][] = [[2, 3, 4, 5, 6], [2, 3, 4, 3, 2, 5], [24, 30], { rowDims: [2, 3, 4], colDims: [3, 2, 5] }, { rowDims: [4, 6], colDims: [6, 5] }];
    for (const dims of cases) {
      const label = JSON.stringify(dims);
      const ref = numpyEntanglement(w.data, dims, eps);
      const e = await entanglement(w, { dims });
      assert.equal(e.bonds.length, ref.length, label);
      assert.equal(e.maxEntropy.length, ref.length, label);
      let left = 1;
      for (const [k, b] of e.bonds.entries()) {
        left *= e.sites[k];
        const right = 720 / left;
        assert.equal(b.position, k);
        assert.ok(Math.abs(b.entropy - ref[k].entropy) <= tol, `${label} bond ${k}: S = ${b.entropy}, numpy ${ref[k].entropy}`);
        assert.equal(b.spectrum.length, Math.min(left, right), `${label} bond ${k}: spectrum length`);
        for (let i = 0; i < b.spectrum.length; i++) {
          assert.ok(Math.abs(b.spectrum[i] - ref[k].spectrum[i]) <= tol, `${label} bond ${k}: p${i} = ${b.spectrum[i]}, numpy ${ref[k].spectrum[i]}`);
        }
        assert.equal(b.rank, ref[k].rank, `${label} bond ${k}: rank`);
        assert.equal(b.rank, Math.min(left, right), `${label} bond ${k}: a Gaussian matrix has full Schmidt rank`);
        assert.ok(Math.abs(e.maxEntropy[k] - Math.log(Math.min(left, right))) <= 1e-15, `${label} bond ${k}: maxEntropy`);
        assert.ok(b.entropy <= e.maxEntropy[k] + tol, `${label} bond ${k}: S above ln(rank)`);
      }
    }
    // The bond between the row and the column factors is w's own SVD.
    const e = await entanglement(w, { dims: [2, 3, 4, 5, 6] });
    const ref = numpyEntanglement(w.data, [24, 30], eps);
    assert.ok(Math.abs(e.bonds[2].entropy - ref[0].entropy) <= tol);
  });

  test(`${dtype}: a product state (Kronecker product) has entropy 0 at every bond`, async () => {
    const a = as('f64', [4, 3], gaussian(12, 710));
    const b = as('f64', [2, 5], gaussian(10, 711));
    const c = as('f64', [3, 2], gaussian(6, 712));
    const w = as(dtype, [24, 30], kron(a, kron(b, c)).data as Float64Array);
    const e = await entanglement(w, { dims: { rowDims: [4, 2, 3], colDims: [3, 5, 2] } });
    assert.deepEqual(e.sites, [12, 10, 6]);
    for (const bond of e.bonds) {
      assert.ok(Math.abs(bond.entropy) <= 1e-10, `bond ${bond.position}: S = ${bond.entropy}`);
      assert.equal(bond.rank, 1, `bond ${bond.position}: rank`);
      assert.ok(Math.abs(bond.spectrum[0] - 1) <= 1e-10);
    }
    // Flat sites: an outer product of vectors u₀ ∘ u₁ ∘ u₂ ∘ u₃ stored as a [12, 10] matrix.
    const dims = [3, 4, 5, 2];
    const us = dims.map((d, k) => gaussian(d, 720 + k));
    const outer = new Float64Array(120);
    for (let i = 0; i < 120; i++) {
      let v = 1;
      let rem = i;
      for (let k = 3; k >= 0; k--) {
        v *= us[k][rem % dims[k]];
        rem = Math.floor(rem / dims[k]);
      }
      outer[i] = v;
    }
    const f = await entanglement(as(dtype, [12, 10], outer), { dims });
    assert.equal(f.bonds.length, 3);
    for (const bond of f.bonds) assert.ok(Math.abs(bond.entropy) <= 1e-10 && bond.rank === 1, `flat bond ${bond.position}: S = ${bond.entropy}, rank ${bond.rank}`);
  });

  test(`${dtype}: maximally entangled bonds have entropy ln d`, async () => {
    // The identity over flat sites (i₀, i₁, j₀, j₁): bond 1 is the identity itself (ln 16), bonds 0
    // and 2 pair i₀ with j₀ and i₁ with j₁ (ln 4): every bond at its maximum.
    const eye = new Float64Array(256);
    for (let i = 0; i < 16; i++) eye[i * 16 + i] = 1;
    const e = await entanglement(as(dtype, [16, 16], eye), { dims: [4, 4, 4, 4] });
    const expected = [Math.log(4), Math.log(16), Math.log(4)];
    for (const [k, bond] of e.bonds.entries()) {
      assert.ok(Math.abs(bond.entropy - expected[k]) <= tol, `identity bond ${k}: S = ${bond.entropy}, expected ${expected[k]}`);
      assert.ok(Math.abs(e.maxEntropy[k] - expected[k]) <= 1e-15);
    }
    // Paired as an MPO, the identity is a product state.
    const ep = await entanglement(as(dtype, [16, 16], eye), { dims: { rowDims: [4, 4], colDims: [4, 4] } });
    assert.ok(Math.abs(ep.bonds[0].entropy) <= 1e-10, `identity as an MPO: S = ${ep.bonds[0].entropy}`);
    // A random orthogonal 16×16 Q across the single MPO bond: W with W[(i₀ i₁), (j₀ j₁)] = Q[(i₀ j₀), (i₁ j₁)].
    const q = (await qr(as('f64', [16, 16], gaussian(256, 730)))).q;
    const w = matrixFromTensorized(tensor('f64', [4, 4, 4, 4], q.data), [4, 4], [4, 4], { interleave: true });
    const eq = await entanglement(as(dtype, [16, 16], w.data as Float64Array), { dims: { rowDims: [4, 4], colDims: [4, 4] } });
    assert.ok(Math.abs(eq.bonds[0].entropy - Math.log(16)) <= tol, `orthogonal bond: S = ${eq.bonds[0].entropy}, ln 16 = ${Math.log(16)}`);
    assert.equal(eq.bonds[0].rank, 16);
    for (const p of eq.bonds[0].spectrum) assert.ok(Math.abs(p - 1 / 16) <= tol);
  });
}

test('f64: the Schmidt ranks are the ranks of an exact tensor train', async () => {
  // A TT-rank (1, 3, 4, 2, 1) tensor over [5, 6, 7, 4]: random cores contracted in float64.
  const shape = [5, 6, 7, 4];
  const ranks = [1, 3, 4, 2, 1];
  const cores = shape.map((d, k) => gaussian(ranks[k] * d * ranks[k + 1], 740 + k));
  let acc = cores[0];
  let rows = shape[0];
  for (let k = 1; k < 4; k++) {
    const [r, d, rn] = [ranks[k], shape[k], ranks[k + 1]];
    const next = new Float64Array(rows * d * rn);
    for (let i = 0; i < rows; i++) for (let a = 0; a < r; a++) for (let j = 0; j < d * rn; j++) next[i * d * rn + j] += acc[i * r + a] * cores[k][a * d * rn + j];
    acc = next;
    rows *= d;
  }
  const x = tensor('f64', shape, acc);
  const e = await entanglement(x, { dims: shape });
  assert.deepEqual(e.bonds.map((b) => b.rank), [3, 4, 2]);
  assert.deepEqual([1, ...e.bonds.map((b) => b.rank), 1], ttRanks(await tensorTrain(x, { tol: 1e-6 })));
  const ref = numpyEntanglement(acc, shape, 2 ** -52);
  for (const [k, b] of e.bonds.entries()) assert.ok(Math.abs(b.entropy - ref[k].entropy) <= 1e-10, `bond ${k}: S = ${b.entropy}, numpy ${ref[k].entropy}`);
});

test('a zero matrix (an untrained LoRA update) has entropy 0 and rank 0', async () => {
  const e = await entanglement(tensor('f32', [8, 6]), { dims: [4, 2, 2, 3] });
  for (const b of e.bonds) {
    assert.equal(b.entropy, 0);
    assert.equal(b.rank, 0);
    assert.ok(b.spectrum.every((p) => p === 0));
  }
});

test('errors: mismatched dims (E_SHAPE), too few sites (E_USAGE), NaN (E_NONFINITE)', async () => {
  const w = as('f64', [24, 30], gaussian(720, 750));
  assert.equal(await codeOf(() => entanglement(w, { dims: [2, 3, 4, 5, 5] })), 'E_SHAPE');
  assert.equal(await codeOf(() => entanglement(w, { dims: { rowDims: [4, 6], colDims: [6, 6] } })), 'E_SHAPE');
  assert.equal(await codeOf(() => entanglement(w, { dims: { rowDims: [4, 6], colDims: [2, 3, 5] } })), 'E_SHAPE');
  assert.equal(await codeOf(() => entanglement(as('f64', [720], w.data as Float64Array), { dims: { rowDims: [24], colDims: [30] } })), 'E_SHAPE');
  assert.equal(await codeOf(() => entanglement(w, { dims: [720] })), 'E_USAGE');
  assert.equal(await codeOf(() => entanglement(w, { dims: { rowDims: [24], colDims: [30] } })), 'E_USAGE');
  assert.equal(await codeOf(() => entanglement(w, { dims: [24, 0, 30] })), 'E_USAGE');
  assert.equal(await codeOf(() => entanglement(w, {} as EntanglementOptions)), 'E_USAGE');
  const bad = as('f32', [24, 30], gaussian(720, 751));
  bad.data[100] = Number.NaN;
  assert.equal(await codeOf(() => entanglement(bad, { dims: [24, 30] })), 'E_NONFINITE');
  assert.equal(await codeOf(() => entanglement(bad, { dims: { rowDims: [4, 6], colDims: [6, 5] } })), 'E_NONFINITE');
});
