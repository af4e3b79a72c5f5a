/**
 * truncatedSvd on planted spectra A = U·diag(σ)·Vᵀ (U, V orthonormal from float64 QR of seeded
 * Gaussians, σ chosen), so the Eckart–Young optimum Σ_{i>k} σᵢ² and the energy ranks are known
 * exactly. Each method's error is re-measured here in float64 from the factors it returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { matmul, qr, svd } from '../../src/linalg/index.js';
import { autoMethod, truncatedSvd, type Truncation } from '../../src/linalg/truncated.js';
import { dynamicRank, dynamicRankOfLeading } from '../../src/tools/ranks.js';

const M = 1024;
const N = 768;
/** Spectra with different decays: the randomized path's easy, hard and degenerate cases. */
const SPECTRA: Record<string, (i: number) => number> = {
  flat: () => 1,
  decaying: (i) => Math.exp(-i / 30),
  'power-law': (i) => 1 / (i + 1),
  'slow power-law': (i) => (i + 1) ** -0.5,
  gap: (i) => (i < 8 ? 10 : 1),
  'planted rank 8 + noise': (i) => (i < 8 ? 10 : 0.1 * (1 - i / 3000)),
};
/** |error measured here − errorSq reported| / ‖A‖²_F (float32 factors, float64 sums). */
const ERR_TOL = 1e-5;
/** The randomized path's promise: within 1 % of the optimum (its default tolerance). */
const EXCESS_TOL = 0.01;
/** u and vt orthonormal to this (float32). */
const ORTH_TOL = 1e-4;

async function planted(f: (i: number) => number, seed: number): Promise<{ a: Tensor<'f32'>; sigma: Float64Array }> {
  const g = rng(seed);
  const q = Math.min(M, N);
  const sigma = Float64Array.from({ length: q }, (_, i) => f(i));
  const u = (await qr(tensor('f64', [M, q], g.fillNormal(new Float64Array(M * q))))).q;
  const v = (await qr(tensor('f64', [N, q], g.fillNormal(new Float64Array(N * q))))).q;
  for (let i = 0; i < M; i++) for (let j = 0; j < q; j++) u.data[i * q + j] *= sigma[j];
  const a = await matmul(u, v, { transB: true });
  return { a: tensor('f32', [M, N], Float32Array.from(a.data)), sigma };
}

const tail = (sigma: Float64Array, k: number): number => sigma.slice(k).reduce((s, x) => s + x * x, 0);
const total = (sigma: Float64Array): number => tail(sigma, 0);

/** ‖A − u·diag(s)·vt‖²_F in float64. */
function measuredErrorSq(a: Tensor<'f32'>, t: Truncation<'f32'>): number {
  const [m, n] = a.shape;
  const k = t.rank;
  let acc = 0;
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let r = 0; r < k; r++) {
      const c = t.u.data[i * k + r] * t.s.data[r];
      for (let j = 0; j < n; j++) row[j] += c * t.vt.data[r * n + j];
    }
    for (let j = 0; j < n; j++) acc += (a.data[i * n + j] - row[j]) ** 2;
  }
  return acc;
}

/** max |XᵀX − I| of the columns of x [p, k] (byColumns) or the rows of x [k, p]. */
function orthError(x: Tensor<'f32'>, byColumns: boolean): number {
  const [r, c] = x.shape;
  const [k, p] = byColumns ? [c, r] : [r, c];
  const at = (v: number, i: number): number => (byColumns ? x.data[i * c + v] : x.data[v * c + i]);
  let worst = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b <= a; b++) {
      let s = 0;
      for (let i = 0; i < p; i++) s += at(a, i) * at(b, i);
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

function checkShape(t: Truncation<'f32'>, name: string): void {
  assert.deepEqual([t.u.shape, t.s.shape, t.vt.shape], [[M, t.rank], [t.rank], [t.rank, N]], name);
  for (let i = 1; i < t.rank; i++) assert.ok(t.s.data[i] <= t.s.data[i - 1], `${name}: s descending at ${i}`);
}

for (const [name, f] of Object.entries(SPECTRA)) {
  test(`randomized rank-k on a ${name} spectrum: within 1 % of the exact optimum, error as measured, optimum a lower estimate`, async () => {
    const { a, sigma } = await planted(f, 11);
    const norm = total(sigma);
    for (const k of [16, 48]) {
      const t = await truncatedSvd(a, { rank: k }, { method: 'randomized' });
      const what = `${name}, k = ${k}`;
      checkShape(t, what);
      assert.equal(t.rank, k, what);
      assert.equal(t.method, 'randomized', `${what}: ${t.note ?? ''}`);
      assert.ok(Math.abs(t.total - norm) <= 1e-6 * norm, `${what}: total ${t.total} vs ${norm}`);
      const err = measuredErrorSq(a, t);
      assert.ok(Math.abs(err - t.errorSq) <= ERR_TOL * norm, `${what}: reported error² ${t.errorSq}, measured ${err}`);
      const opt = tail(sigma, k);
      const excess = Math.sqrt(err / opt) - 1;
      assert.ok(excess <= EXCESS_TOL, `${what}: ${(100 * excess).toFixed(3)} % above the optimum`);
      // The estimate is below the true optimum (up to float32 rounding of A), so the excess it
      // implies is at least the true one.
      assert.ok(t.optimumSq <= opt + ERR_TOL * norm, `${what}: optimum estimate ${t.optimumSq} above the true ${opt}`);
      assert.equal(t.optimumExact, false);
      assert.ok(orthError(t.u, true) <= ORTH_TOL && orthError(t.vt, false) <= ORTH_TOL, `${what}: u, vt orthonormal`);
    }
  });

  test(`energy shares on a ${name} spectrum are met as measured, at a rank near the exact one`, async () => {
    const { a, sigma } = await planted(f, 12);
    const norm = total(sigma);
    for (const e of [0.5, 0.9, 0.99]) {
      const t = await truncatedSvd(a, { energy: e });
      const what = `${name}, energy ${e} (${t.method})`;
      checkShape(t, what);
      const err = measuredErrorSq(a, t);
      assert.ok(1 - err / norm >= e - ERR_TOL, `${what}: keeps ${1 - err / norm}`);
      assert.ok(Math.abs(err - t.errorSq) <= ERR_TOL * norm, `${what}: reported error² ${t.errorSq}, measured ${err}`);
      let exactRank = 0;
      for (let acc = 0; acc < e * norm * (1 - 1e-12); exactRank++) acc += sigma[exactRank] ** 2;
      assert.ok(t.rank >= exactRank - 1 && t.rank <= Math.ceil(1.05 * exactRank) + 2, `${what}: rank ${t.rank}, exact ${exactRank}`);
      assert.ok(t.optimumSq <= tail(sigma, t.rank) + ERR_TOL * norm, `${what}: optimum estimate above the true one`);
    }
  });
}

test('gram at a large rank: singular values, error and optimum as the exact SVD gives them', async () => {
  const { a, sigma } = await planted(SPECTRA['slow power-law'], 13);
  const norm = total(sigma);
  const k = 400;
  const t = await truncatedSvd(a, { rank: k }, { method: 'gram' });
  checkShape(t, 'gram');
  assert.equal(t.method, 'gram');
  for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s.data[i] - sigma[i]) <= 1e-4 * sigma[0], `σ_${i}: ${t.s.data[i]} vs ${sigma[i]}`);
  const err = measuredErrorSq(a, t);
  assert.ok(Math.abs(err - tail(sigma, k)) <= ERR_TOL * norm, `error² ${err} vs the optimum ${tail(sigma, k)}`);
  assert.ok(Math.abs(t.optimumSq - tail(sigma, k)) <= ERR_TOL * norm && t.optimumExact);
  assert.ok(orthError(t.vt, false) <= ORTH_TOL && orthError(t.u, true) <= 1e-3, 'vt orthonormal; u = A·V/σ to the accuracy of the kept σ');
  // A wide matrix takes the Gram matrix of its rows.
  const wide = tensor('f32', [N, M], Float32Array.from({ length: M * N }, (_, i) => a.data[(i % M) * N + Math.floor(i / M)]));
  const tw = await truncatedSvd(wide, { rank: k }, { method: 'gram' });
  for (let i = 0; i < k; i++) assert.ok(Math.abs(tw.s.data[i] - sigma[i]) <= 1e-4 * sigma[0], `wide σ_${i}`);
  assert.deepEqual([tw.u.shape, tw.vt.shape], [[N, k], [k, M]]);
});

test('gram hands a rank whose σ² is below its accuracy (1000·ε·σ₁²) to the exact SVD, saying so', async () => {
  const { a, sigma } = await planted(SPECTRA.decaying, 17); // σ_400 / σ_1 = e^-13
  const t = await truncatedSvd(a, { rank: 400 }, { method: 'gram' });
  assert.equal(t.method, 'exact');
  assert.match(t.note ?? '', /Gram matrix's accuracy/);
  assert.ok(Math.abs(t.errorSq - tail(sigma, 400)) <= ERR_TOL * total(sigma));
});

test("exact is linalg.svd's leading triplets, bit for bit", async () => {
  const { a, sigma } = await planted(SPECTRA.decaying, 14);
  const t = await truncatedSvd(a, { rank: 20 }, { method: 'exact' });
  const ref = await svd(a);
  const q = ref.s.shape[0];
  assert.deepEqual(Array.from(t.s.data), Array.from(ref.s.data.subarray(0, 20)));
  for (let i = 0; i < M; i++) for (let j = 0; j < 20; j++) assert.equal(t.u.data[i * 20 + j], ref.u.data[i * q + j]);
  assert.deepEqual(Array.from(t.vt.data), Array.from(ref.vt.data.subarray(0, 20 * N)));
  assert.ok(t.optimumExact && Math.abs(t.optimumSq - tail(sigma, 20)) <= ERR_TOL * total(sigma));
  assert.equal(t.spectrum.length, q);
});

test("kohya's rules on the randomized path: decided from the sketched part where they can be, else computed exactly and said so", async () => {
  const { a, sigma } = await planted(SPECTRA.decaying, 15);
  const norm = total(sigma);
  for (const rule of [{ rule: 'sv_ratio', value: 4 }, { rule: 'sv_fro', value: 0.9 }] as const) {
    const cut = (s: Float64Array, tot: number, complete: boolean): number | undefined => (complete ? dynamicRank(s, rule, 32) : dynamicRankOfLeading(s, tot, rule, 32));
    const t = await truncatedSvd(a, { rank: 32, cut }, { method: 'randomized' });
    assert.equal(t.method, 'randomized', rule.rule);
    assert.equal(t.rank, dynamicRank(sigma, rule, 32), `${rule.rule}: the same rank as the rule on the true spectrum`);
    assert.ok(Math.sqrt(measuredErrorSq(a, t) / tail(sigma, t.rank)) - 1 <= EXCESS_TOL);
  }
  const cumulative = { rule: 'sv_cumulative', value: 0.5 } as const;
  const cut = (s: Float64Array, tot: number, complete: boolean): number | undefined => (complete ? dynamicRank(s, cumulative, 32) : dynamicRankOfLeading(s, tot, cumulative, 32));
  const t = await truncatedSvd(a, { rank: 32, cut }, { method: 'randomized' });
  assert.equal(t.method, 'exact');
  assert.match(t.note ?? '', /whole spectrum/);
  assert.equal(t.rank, dynamicRank(sigma, cumulative, 32));
  assert.ok(norm > 0);
});

test('a randomized result that cannot reach the tolerance falls back to the exact SVD and says so', async () => {
  const { a, sigma } = await planted(SPECTRA['slow power-law'], 16);
  const t = await truncatedSvd(a, { rank: 16 }, { method: 'randomized', niter: 0, maxNiter: 0, oversample: 0, tolerance: 0 });
  assert.equal(t.method, 'exact');
  assert.match(t.note ?? '', /tolerance/);
  assert.ok(Math.abs(t.errorSq - tail(sigma, 16)) <= ERR_TOL * total(sigma));
});

test('auto: exact below 512 rows or columns, randomized for small ranks and energy shares, gram for large ranks', async () => {
  const small = tensor('f32', [160, 640], rng(3).fillNormal(new Float32Array(160 * 640)));
  assert.equal((await truncatedSvd(small, { energy: 0.9 })).method, 'exact', 'the default is auto');
  assert.equal(autoMethod({ rows: 256, cols: 4096 }, { rank: 16 }), 'exact');
  assert.equal(autoMethod({ rows: 2048, cols: 5632 }, { rank: 16 }), 'randomized');
  assert.equal(autoMethod({ rows: 2048, cols: 2048 }, { rank: 502 }), 'randomized'); // 512 ≤ 2048 / 4
  assert.equal(autoMethod({ rows: 2048, cols: 2048 }, { rank: 503 }), 'gram');
  assert.equal(autoMethod({ rows: 2048, cols: 2048 }, { energy: 0.9 }), 'randomized');
});

test('dynamicRankOfLeading: sv_ratio and sv_fro from a leading part and the exact total; sv_cumulative undecidable', () => {
  const full = [10, 5, 2, 1, 0.5, 0.25];
  const totalSq = full.reduce((s, x) => s + x * x, 0);
  const part = full.slice(0, 4);
  for (const value of [1, 3, 4, 9.99]) assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_ratio', value }, 8), dynamicRank(full, { rule: 'sv_ratio', value }, 8), `sv_ratio ${value}`);
  assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_ratio', value: 100 }, 8), undefined, 'the cut lies past the part');
  assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_ratio', value: 100 }, 3), 3, 'the cap lies inside it');
  for (const value of [0.5, 0.9, 0.99]) assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_fro', value }, 8), dynamicRank(full, { rule: 'sv_fro', value }, 8), `sv_fro ${value}`);
  assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_fro', value: 0.9999 }, 8), undefined);
  assert.equal(dynamicRankOfLeading(part, totalSq, { rule: 'sv_cumulative', value: 0.5 }, 8), undefined);
});
