/**
 * Spectral metrics, the power-law fit and the base/tuned comparison, against numpy float64
 * computations of the same definitions on seeded matrices with planted spectra. The numpy power-law
 * reference is WeightWatcher's WWFit loop (WW_powerlaw.py) restated. Tolerances (relative unless
 * said otherwise) are stated where they are used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import {
  analyzeMatrix, compareAdapter, compareMatrices, fitPowerLaw, lowRankSingularValues, spectrumMetrics, type Comparison, type SpectrumMetrics,
} from '../../src/analysis/index.js';
import { pythonJson } from '../helpers/python.js';
import { plantedSpectrum } from '../helpers/reference.js';

type Dt = 'f32' | 'f64';

/** numpy versions of every definition in spectrum.ts and powerlaw.ts (WWFit's loop as WeightWatcher writes it). */
const REF = `import json, sys
def wwfit(data):
    data = np.sort(np.asarray(data, dtype=np.float64))
    N = len(data)
    log_data = np.log(data)
    alphas = np.zeros(N - 1)
    Ds = np.ones(N - 1)
    for i, xmin in enumerate(data[:-1]):
        n = float(N - i)
        alpha = 1 + n / (np.sum(log_data[i:]) - n * log_data[i])
        alphas[i] = alpha
        if alpha > 1:
            Ds[i] = np.max(np.abs(1 - (data[i:] / xmin) ** (-alpha + 1) - np.arange(n) / n))
    i = int(np.argmin(Ds))
    return {'alpha': float(alphas[i]) if np.isfinite(alphas[i]) else 'inf', 'D': float(Ds[i]), 'xmin': float(data[i]), 'numTail': int(N - i)}
def metrics(s, m, n, eps):
    s = np.sort(np.abs(np.asarray(s, dtype=np.float64)))[::-1]
    fro2 = float(np.sum(s ** 2))
    out = {'sigmaMax': float(s[0]), 'sigmaMin': float(s[-1]), 'frobenius': fro2 ** 0.5}
    if fro2 == 0:
        return dict(out, stableRank=0, effectiveRank=0, r90=0, r95=0, r99=0, numericalRank=0, fit=None, savedRank=0)
    p = s / s.sum(); p = p[p > 0]
    cum = np.cumsum(s ** 2) / fro2
    tail = np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]])
    ev = s ** 2; ev = ev[ev > 1e-5]
    return dict(out, stableRank=fro2 / s[0] ** 2, effectiveRank=float(np.exp(-np.sum(p * np.log(p)))),
        r90=int(np.argmax(cum >= 0.9)) + 1, r95=int(np.argmax(cum >= 0.95)) + 1, r99=int(np.argmax(cum >= 0.99)) + 1,
        numericalRank=int(np.sum(s > s[0] * max(m, n) * eps)), fit=wwfit(ev) if len(ev) >= 50 else None,
        logNorm=float(np.log10(fro2)), logSpectralNorm=float(np.log10(s[0] ** 2)),
        savedRank=int(np.argmax(np.sqrt(tail) / np.sqrt(fro2) <= 0.01)))
`;

interface RefMetrics {
  sigmaMax: number; sigmaMin: number; frobenius: number; stableRank: number; effectiveRank: number;
  r90: number; r95: number; r99: number; numericalRank: number; savedRank: number;
  logNorm?: number; logSpectralNorm?: number;
  fit: { alpha: number; D: number; xmin: number; numTail: number } | null;
}

function asTensor(dt: Dt, shape: readonly number[], data: ArrayLike<number>): Tensor<Dt> {
  return tensor(dt, shape, dt === 'f32' ? Float32Array.from(data) : Float64Array.from(data)) as Tensor<Dt>;
}

function close(actual: number | null, expected: number | null | undefined, tol: number, what: string): void {
  assert.ok(actual !== null && expected !== null && expected !== undefined, `${what}: ${actual} vs ${expected}`);
  const err = Math.abs(actual - expected);
  assert.ok(err <= tol * Math.max(Math.abs(expected), 1e-300) || err === 0, `${what}: ${actual} vs numpy ${expected} (relative error ${err / Math.abs(expected)} > ${tol})`);
}

function closeAbs(actual: number | null, expected: number | null | undefined, tol: number, what: string): void {
  assert.ok(actual !== null && expected !== null && expected !== undefined, `${what}: ${actual} vs ${expected}`);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs numpy ${expected} (absolute error ${Math.abs(actual - expected)} > ${tol})`);
}

interface Case { name: string; shape: number[]; data: Float64Array }

function cases(): Case[] {
  const pow = (k: number, p: number): number[] => Array.from({ length: k }, (_, i) => (i + 1) ** -p);
  return [
    { name: 'λ ∝ i^-0.5 (α ≈ 3), 150×100', shape: [150, 100], data: plantedSpectrum(150, 100, pow(100, 0.25), 1).data },
    { name: 'λ ∝ i^-2 (α ≈ 1.5), 80×120', shape: [80, 120], data: plantedSpectrum(80, 120, pow(80, 1), 3).data },
    { name: 'gaussian 90×70', shape: [90, 70], data: rng(5).fillNormal(new Float64Array(90 * 70), 0, 0.05) },
    { name: 'rank 10 of 60×80', shape: [60, 80], data: plantedSpectrum(60, 80, pow(10, 0.5).map((x) => 3 * x), 7).data },
    { name: 'small 30×40 (too few eigenvalues for α)', shape: [30, 40], data: rng(9).fillNormal(new Float64Array(1200)) },
    { name: 'conv kernel [16, 4, 3, 3] as 16×36', shape: [16, 4, 3, 3], data: rng(10).fillNormal(new Float64Array(576)) },
    { name: 'zero 5×4', shape: [5, 4], data: new Float64Array(20) },
  ];
}

function reference(cs: readonly Case[], dt: Dt): RefMetrics[] {
  return pythonJson<RefMetrics[]>(
    `${REF}
out = []
for c in json.loads(sys.stdin.read()):
    a = np.array(c['data'], dtype=np.${dt === 'f32' ? 'float32' : 'float64'}).astype(np.float64)
    m = c['shape'][0]; a = a.reshape(m, -1)
    out.append(metrics(np.linalg.svd(a, compute_uv=False), m, a.shape[1], float(np.finfo(np.${dt === 'f32' ? 'float32' : 'float64'}).eps)))
print(json.dumps(out))`,
    [],
    JSON.stringify(cs.map((c) => ({ shape: c.shape, data: Array.from(c.data) }))),
  );
}

function checkAgainst(got: SpectrumMetrics, ref: RefMetrics, shape: readonly number[], tol: { value: number; alpha: number }, name: string): void {
  const m = shape[0];
  const n = shape.slice(1).reduce((a, b) => a * b, 1);
  assert.deepEqual(got.shape, [m, n], name);
  assert.equal(got.numEvals, Math.min(m, n), name);
  assert.deepEqual(got.approximate, [], name);
  if (ref.frobenius === 0) {
    assert.equal(got.sigmaMax, 0, name);
    assert.equal(got.stableRank, 0, name);
    assert.equal(got.effectiveRank, 0, name);
    assert.equal(got.numericalRank, 0, name);
    assert.deepEqual(got.energyRanks, { r90: 0, r95: 0, r99: 0 }, name);
    assert.equal(got.logNorm, null, name);
    assert.equal(got.alpha, null, name);
    assert.deepEqual(got.savedAt1pct, { rank: 0, params: m * n }, name);
    return;
  }
  close(got.sigmaMax, ref.sigmaMax, tol.value, `${name}: sigmaMax`);
  // σ_min: absolute error relative to σ_max (small singular values are only that accurate).
  assert.ok(Math.abs((got.sigmaMin ?? NaN) - ref.sigmaMin) <= tol.value * ref.sigmaMax, `${name}: sigmaMin ${got.sigmaMin} vs ${ref.sigmaMin}`);
  close(got.frobenius, ref.frobenius, tol.value, `${name}: frobenius`);
  close(got.stableRank, ref.stableRank, tol.value, `${name}: stableRank`);
  close(got.effectiveRank, ref.effectiveRank, tol.value, `${name}: effectiveRank`);
  // Logarithms (near 0 for σmax ≈ 1) to the same tolerance, absolute.
  closeAbs(got.logNorm, ref.logNorm, tol.value, `${name}: logNorm`);
  closeAbs(got.logSpectralNorm, ref.logSpectralNorm, tol.value, `${name}: logSpectralNorm`);
  assert.deepEqual(got.energyRanks, { r90: ref.r90, r95: ref.r95, r99: ref.r99 }, `${name}: energy ranks`);
  assert.equal(got.numericalRank, ref.numericalRank, `${name}: numericalRank`);
  assert.deepEqual(got.savedAt1pct, { rank: ref.savedRank, params: Math.max(0, m * n - ref.savedRank * (m + n)) }, `${name}: savedAt1pct`);
  if (ref.fit === null) {
    assert.equal(got.alpha, null, name);
    assert.equal(got.warning, null, name);
    assert.ok(got.notes.some((s) => /alpha needs at least 50 eigenvalues/.test(s)), `${name}: ${got.notes}`);
  } else {
    close(got.alpha, ref.fit.alpha, tol.alpha, `${name}: alpha`);
    close(got.D, ref.fit.D, tol.alpha, `${name}: D`);
    close(got.xmin, ref.fit.xmin, tol.alpha, `${name}: xmin`);
    assert.equal(got.numTail, ref.fit.numTail, `${name}: numTail`);
    closeAbs(got.alphaWeighted, ref.fit.alpha * (ref.logSpectralNorm as number), tol.alpha, `${name}: alphaWeighted`);
    assert.equal(got.warning, ref.fit.alpha < 2 ? 'over-trained' : ref.fit.alpha > 6 ? 'under-trained' : null, name);
  }
}

test('every metric matches numpy float64 on planted spectra: f64 input to 1e-9 (alpha, D, xmin to 1e-6)', async () => {
  const cs = cases();
  const ref = reference(cs, 'f64');
  for (const [i, c] of cs.entries()) {
    const got = await analyzeMatrix(asTensor('f64', c.shape, c.data));
    checkAgainst(got, ref[i], c.shape, { value: 1e-9, alpha: 1e-6 }, c.name);
  }
  // The planted power laws land where they should, and the other cases fit or not as expected.
  assert.ok(ref[0].fit !== null && ref[1].fit !== null && ref[4].fit === null && ref[5].fit === null);
});

test('f32 input (how bf16/f16/f32 weights are analyzed) matches numpy on the same float32 values: values to 1e-5, alpha to 1e-4', async () => {
  const cs = cases();
  const ref = reference(cs, 'f32');
  for (const [i, c] of cs.entries()) {
    const got = await analyzeMatrix(asTensor('f32', c.shape, c.data));
    checkAgainst(got, ref[i], c.shape, { value: 1e-5, alpha: 1e-4 }, c.name);
    const k = Math.min(c.shape[0], c.data.length / c.shape[0]);
    assert.equal(got.rankTolerance, got.sigmaMax * Math.max(c.shape[0], c.data.length / c.shape[0]) * 2 ** -23, c.name);
    assert.equal(got.computed, k);
  }
});

test('planted heavy tails give the expected α and WeightWatcher warnings; a rank-10 matrix saves parameters', async () => {
  const pow = (k: number, p: number): number[] => Array.from({ length: k }, (_, i) => (i + 1) ** -p);
  // λ_i ∝ i^(-2p) has a tail CCDF ∝ λ^(-1/2p), so α = 1 + 1/(2p).
  for (const [p, lo, hi, warning] of [[0.25, 2.7, 3.3, null], [0.5, 1.8, 2.2, null], [1, 1.3, 1.7, 'over-trained'], [1 / 12, 6.5, 7.5, 'under-trained']] as const) {
    const w = asTensor('f32', [200, 160], plantedSpectrum(200, 160, pow(160, p), 11).data);
    const m = await analyzeMatrix(w);
    assert.ok(m.alpha !== null && m.alpha > lo && m.alpha < hi, `p=${p}: α = ${m.alpha}, expected ${1 + 1 / (2 * p)}`);
    if (p !== 0.5) assert.equal(m.warning, warning, `p=${p}`);
  }
  const lowRank = await analyzeMatrix(asTensor('f32', [60, 80], plantedSpectrum(60, 80, [5, 4, 3, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02], 13).data));
  assert.equal(lowRank.numericalRank, 10);
  assert.ok(lowRank.savedAt1pct !== null && lowRank.savedAt1pct.rank <= 10);
  assert.equal(lowRank.savedAt1pct.params, 60 * 80 - lowRank.savedAt1pct.rank * 140);
});

test('fitPowerLaw equals WeightWatcher\'s WWFit (numpy) on the same values to 1e-10, ties and Pareto samples included', () => {
  const g = rng(21);
  const pareto = (n: number, alpha: number): number[] => Array.from({ length: n }, () => (1 - g.uniform()) ** (-1 / (alpha - 1)));
  const sets = [
    pareto(2000, 2.5),
    pareto(300, 4),
    Array.from({ length: 120 }, (_, i) => (i + 1) ** -0.7),
    [...Array.from({ length: 60 }, () => 0.5), ...Array.from({ length: 40 }, (_, i) => 1 + i), 3, 3, 3],
    [2, 2, 2, 2],
    [1, 5],
  ];
  const ref = pythonJson<{ alpha: number; D: number; xmin: number; numTail: number }[]>(`${REF}
print(json.dumps([wwfit(s) for s in json.loads(sys.stdin.read())]))`, [], JSON.stringify(sets));
  for (const [i, s] of sets.entries()) {
    const fit = fitPowerLaw(s);
    assert.ok(fit !== null);
    const want = ref[i];
    if ((want.alpha as number | string) === 'inf') assert.equal(fit.alpha, Infinity, `set ${i}`);
    else close(fit.alpha, want.alpha, 1e-10, `set ${i}: alpha`);
    close(fit.D, want.D, 1e-10, `set ${i}: D`);
    assert.equal(fit.xmin, want.xmin, `set ${i}: xmin`);
    assert.equal(fit.numTail, want.numTail, `set ${i}: numTail`);
  }
  const a = fitPowerLaw(sets[0]);
  assert.ok(a !== null && Math.abs(a.alpha - 2.5) < 0.15, `Pareto α = 2.5 sample: ${a?.alpha}`);
  assert.equal(fitPowerLaw([1]), null);
  assert.throws(() => fitPowerLaw([1, 0, 2]), RangeError);
});

test('spectrumMetrics: a rank-r spectrum padded with zeros, the fast-mode contract, and argument errors', () => {
  const s = [3, 2, 1];
  const padded = spectrumMetrics(s, [40, 30]);
  const full = spectrumMetrics([...s, ...new Array<number>(27).fill(0)], [40, 30]);
  assert.deepEqual(padded, full);
  assert.equal(padded.sigmaMin, 0);
  assert.equal(padded.numericalRank, 3);
  assert.equal(padded.stableRank, 14 / 9);

  // Only the top values known: ‖W‖_F² from elsewhere; ranks beyond them are null.
  const top = spectrumMetrics([3, 2, 1], [40, 30], { rest: 'unknown', frobenius2: 14 + 6 });
  assert.equal(top.sigmaMin, null);
  assert.equal(top.frobenius, Math.sqrt(20));
  assert.equal(top.stableRank, 20 / 9);
  assert.equal(top.energyRanks.r90, null);
  assert.equal(top.numericalRank, null);
  assert.equal(top.savedAt1pct, null);
  assert.equal(top.computed, 3);
  assert.ok(top.approximate.includes('alpha') && top.approximate.includes('energyRanks') && !top.approximate.includes('frobenius'));
  const reached = spectrumMetrics([3, 2, 1], [40, 30], { rest: 'unknown', frobenius2: 14.01 });
  assert.deepEqual(reached.energyRanks, { r90: 2, r95: 3, r99: 3 });

  // All singular values equal (an orthogonal matrix): no power law, no warning.
  const flat = spectrumMetrics(new Array<number>(60).fill(1), [60, 60]);
  assert.equal(flat.alpha, null);
  assert.equal(flat.warning, null);
  assert.ok(flat.notes.some((x) => /all equal/.test(x)));

  assert.throws(() => spectrumMetrics([1, 2, 3], [2, 5]), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
  assert.throws(() => spectrumMetrics([1], [2, 5], { rest: 'unknown' }), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
  assert.throws(() => spectrumMetrics([NaN], [2, 5]), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE');
});

test('--fast: top 64 by randomized SVD; exact Frobenius norm, σmax to 1e-4, α within 1% of the full fit over the exact top 64 eigenvalues', async () => {
  const [m, n] = [300, 200];
  const sig = Array.from({ length: 200 }, (_, i) => (i + 1) ** -0.75);
  const w = asTensor('f32', [m, n], plantedSpectrum(m, n, sig, 31).data);
  const fast = await analyzeMatrix(w, { fast: true });
  const exact = await analyzeMatrix(w);
  assert.equal(fast.computed, 64);
  assert.equal(fast.sigmaMin, null);
  assert.ok(fast.approximate.length > 0 && fast.notes.some((s) => /fast: top 64 of 200/.test(s)));
  close(fast.frobenius, exact.frobenius, 1e-6, 'frobenius (exact from the data)');
  close(fast.sigmaMax, exact.sigmaMax, 1e-4, 'sigmaMax');
  close(fast.stableRank, exact.stableRank, 1e-4, 'stableRank');
  // The fit over the top 64 eigenvalues of the exact spectrum, by the reference.
  const ref = pythonJson<{ alpha: number; xmin: number }>(`${REF}
s = np.array(json.loads(sys.stdin.read()))
print(json.dumps(wwfit((s ** 2)[:64])))`, [], JSON.stringify(sig));
  // rsvd (2 power iterations) resolves the lower of its 64 values less well than the top: 1%.
  close(fast.alpha, ref.alpha, 1e-2, 'fast alpha');
  // Energy ranks: 90% is within the top 64 for this spectrum; 99% is not.
  assert.equal(fast.energyRanks.r90, exact.energyRanks.r90);
  assert.equal(fast.energyRanks.r99, null);
  // A matrix with min(m, n) ≤ 64 is computed exactly in fast mode.
  const small = await analyzeMatrix(asTensor('f32', [100, 40], rng(3).fillNormal(new Float64Array(4000))), { fast: true });
  assert.deepEqual(small.approximate, []);
  assert.equal(small.computed, 40);
});

/** numpy: ΔW metrics, principal angles of the top-ka left subspaces, max |cos| of the top-ki tuned vectors with all base ones. */
function referenceComparison(m: number, n: number, w0: Float32Array, w1: Float32Array, ka: number, ki: number): { update: RefMetrics; angles: number[]; maxCos: number[] } {
  return pythonJson(`${REF}
d = json.loads(sys.stdin.read())
m, n, ka, ki = d['m'], d['n'], d['ka'], d['ki']
w0 = np.array(d['w0'], dtype=np.float32).astype(np.float64).reshape(m, n)
w1 = np.array(d['w1'], dtype=np.float32).astype(np.float64).reshape(m, n)
delta = (np.array(d['w1'], dtype=np.float32) - np.array(d['w0'], dtype=np.float32)).astype(np.float64).reshape(m, n)
u0 = np.linalg.svd(w0, full_matrices=False)[0]
u1 = np.linalg.svd(w1, full_matrices=False)[0]
cos = np.linalg.svd(u0[:, :ka].T @ u1[:, :ka], compute_uv=False)
angles = np.sort(np.arccos(np.clip(cos, -1, 1)))
print(json.dumps({'update': metrics(np.linalg.svd(delta, compute_uv=False), m, n, float(np.finfo(np.float32).eps)),
  'angles': angles.tolist(), 'maxCos': np.max(np.abs(u0.T @ u1[:, :ki]), axis=0).tolist()}))`,
  [], JSON.stringify({ m, n, ka, ki, w0: Array.from(w0), w1: Array.from(w1) }));
}

test('intruder dimensions: a rank-1 update orthogonal to the top base directions is exactly one intruder; 1.1·W0 has none', async () => {
  const [m, n] = [64, 48];
  const sig = Array.from({ length: 48 }, (_, i) => 2 * (i + 1) ** -0.5);
  const base = plantedSpectrum(m, n, sig, 41);
  // x and y spread evenly over the base's bottom 32 left and right singular vectors: orthogonal to
  // the top 16, cosine 1/√32 ≈ 0.18 with each bottom one, and large enough (3σ₁) to rank first.
  const x = new Float64Array(m);
  const y = new Float64Array(n);
  for (let t = 16; t < 48; t++) {
    for (let i = 0; i < m; i++) x[i] += base.u[i * 48 + t] / Math.sqrt(32);
    for (let j = 0; j < n; j++) y[j] += base.v[j * 48 + t] / Math.sqrt(32);
  }
  const w0 = Float32Array.from(base.data);
  const w1 = Float32Array.from(base.data.map((v, idx) => v + 3 * sig[0] * x[Math.floor(idx / n)] * y[idx % n]));
  const c = await compareMatrices(tensor('f32', [m, n], w0), tensor('f32', [m, n], w1));
  assert.equal(c.intruders.count, 1, `max cosines ${c.intruders.maxCosines}`);
  assert.deepEqual(c.intruders.indices, [0]);
  assert.equal(c.intruders.k, 10);
  assert.equal(c.intruders.threshold, 0.5);
  assert.equal(c.intruders.basis, 48);
  assert.equal(c.update.numericalRank, 1);
  assert.equal(c.identical, false);
  // The top-16 subspaces share 15 directions; the 16th is the intruder, at a right angle.
  assert.equal(c.angleK, 16);
  const ref = referenceComparison(m, n, w0, w1, 16, 10);
  for (const [i, a] of c.principalAngles.entries()) assert.ok(Math.abs(a - ref.angles[i]) <= 1e-4, `angle ${i}: ${a} vs ${ref.angles[i]}`);
  assert.ok(Math.abs(c.principalAngles[15] - Math.PI / 2) < 1e-3 && c.principalAngles[14] < 0.05, `${c.principalAngles}`);
  for (const [j, v] of c.intruders.maxCosines.entries()) assert.ok(Math.abs(v - ref.maxCos[j]) <= 1e-4, `max cos ${j}: ${v} vs ${ref.maxCos[j]}`);
  checkUpdate(c, ref.update, [m, n]);

  const scaled = Float32Array.from(base.data.map((v) => 1.1 * v));
  const s = await compareMatrices(tensor('f32', [m, n], w0), tensor('f32', [m, n], scaled));
  assert.equal(s.intruders.count, 0, `max cosines ${s.intruders.maxCosines}`);
  assert.ok(s.intruders.maxCosines.every((v) => v > 0.999));
  assert.ok(s.principalAngles.every((a) => a < 1e-3));
  const sref = referenceComparison(m, n, w0, scaled, 16, 10);
  checkUpdate(s, sref.update, [m, n]);
  close(s.relativeUpdate, 0.1, 1e-5, 'relative update of 1.1·W0');

  const same = await compareMatrices(tensor('f32', [m, n], w0), tensor('f32', [m, n], Float32Array.from(w0)));
  assert.equal(same.identical, true);
  assert.equal(same.update.numericalRank, 0);
  assert.equal(same.intruders.count, 0);
  assert.deepEqual(same.principalAngles, new Array<number>(16).fill(0));
  await assert.rejects(compareMatrices(tensor('f32', [m, n], w0), tensor('f32', [n, m], w0)), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
});

function checkUpdate(c: Comparison, ref: RefMetrics, shape: [number, number]): void {
  close(c.update.sigmaMax, ref.sigmaMax, 1e-5, 'update sigmaMax');
  close(c.update.stableRank, ref.stableRank, 1e-4, 'update stableRank');
  close(c.update.frobenius, ref.frobenius, 1e-5, 'update frobenius');
  assert.equal(c.update.numericalRank, ref.numericalRank, 'update numericalRank');
  assert.deepEqual(c.update.energyRanks, { r90: ref.r90, r95: ref.r95, r99: ref.r99 }, 'update energy ranks');
  assert.deepEqual(c.update.shape, shape);
}

test('an adapter: the update spectrum from the factors equals the dense s·B·A (numpy, 1e-10), and the comparison equals the dense one', async () => {
  const [m, n, r] = [48, 40, 4];
  const g = rng(51);
  const w0 = tensor('f32', [m, n], g.fillNormal(new Float32Array(m * n), 0, 0.05));
  const B = tensor('f32', [m, r], g.fillNormal(new Float32Array(m * r), 0, 0.3));
  const A = tensor('f32', [r, n], g.fillNormal(new Float32Array(r * n), 0, 0.3));
  const scaling = 2;
  const dense = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let t = 0; t < r; t++) dense[i * n + j] += scaling * B.data[i * r + t] * A.data[t * n + j];
  const refSigma = pythonJson<number[]>(`import json, sys
d = json.loads(sys.stdin.read())
print(json.dumps(np.linalg.svd(np.array(d['a']).reshape(d['m'], d['n']), compute_uv=False)[:d['r']].tolist()))`, [], JSON.stringify({ a: Array.from(dense), m, n, r }));

  const s = await lowRankSingularValues(B, A);
  assert.equal(s.length, r);
  for (let i = 0; i < r; i++) close(s[i] * scaling, refSigma[i], 1e-10, `σ${i}(s·B·A)`);

  const c = await compareAdapter(w0, { A, B, scaling });
  assert.equal(c.update.numericalRank, r);
  assert.equal(c.update.computed, Math.min(m, n));
  assert.equal(c.update.sigmaMin, 0);
  close(c.update.sigmaMax, refSigma[0], 1e-10, 'update sigmaMax');
  assert.equal(c.update.alpha, null, 'a rank-4 update has too few eigenvalues for α');
  const merged = tensor('f32', [m, n], Float32Array.from(w0.data, (v, i) => v + dense[i]));
  const d = await compareMatrices(w0, merged);
  close(c.tuned.sigmaMax, d.tuned.sigmaMax, 1e-5, 'merged sigmaMax');
  close(c.tuned.stableRank, d.tuned.stableRank, 1e-4, 'merged stableRank');
  assert.deepEqual(c.intruders.indices, d.intruders.indices);
  for (let j = 0; j < 10; j++) assert.ok(Math.abs(c.intruders.maxCosines[j] - d.intruders.maxCosines[j]) < 1e-4);
  for (let j = 0; j < 16; j++) assert.ok(Math.abs(c.principalAngles[j] - d.principalAngles[j]) < 1e-4);
  close(c.update.stableRank, d.update.stableRank, 1e-4, 'update stableRank');
  assert.equal(d.update.numericalRank, r);

  // Stored [in, out] (fan_in_fan_out) or an embedding: the update is (B·A)ᵀ.
  const wt = tensor('f32', [n, m], g.fillNormal(new Float32Array(m * n), 0, 0.05));
  for (const f of [{ fanInFanOut: true }, { kind: 'embedding' as const }]) {
    const ct = await compareAdapter(wt, { A, B, scaling, ...f });
    close(ct.update.sigmaMax, refSigma[0], 1e-10, `transposed update sigmaMax ${JSON.stringify(f)}`);
    const mergedT = tensor('f32', [n, m]);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) mergedT.data[i * m + j] = wt.data[i * m + j] + dense[j * n + i];
    const dt = await compareMatrices(wt, mergedT);
    close(ct.tuned.sigmaMax, dt.tuned.sigmaMax, 1e-5, 'transposed merged sigmaMax');
  }
  await assert.rejects(compareAdapter(wt, { A, B, scaling }), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');

  // DoRA: each output row rescaled to its magnitude; the update is the dense difference.
  const mag = tensor('f32', [m], g.fillUniform(new Float32Array(m), 0.5, 1.5));
  const cd = await compareAdapter(w0, { A, B, scaling, magnitude: mag });
  const doraW = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    let norm = 0;
    for (let j = 0; j < n; j++) norm += (w0.data[i * n + j] + dense[i * n + j]) ** 2;
    for (let j = 0; j < n; j++) doraW[i * n + j] = ((w0.data[i * n + j] + dense[i * n + j]) * mag.data[i]) / Math.sqrt(norm);
  }
  const dd = await compareMatrices(w0, tensor('f32', [m, n], doraW));
  close(cd.update.sigmaMax, dd.update.sigmaMax, 1e-5, 'DoRA update sigmaMax');
  close(cd.update.frobenius, dd.update.frobenius, 1e-5, 'DoRA update frobenius');
  assert.ok(cd.notes.some((x) => /DoRA/.test(x)));

  // A fresh LoRA (B = 0) changes nothing.
  const zero = await compareAdapter(w0, { A, B: tensor('f32', [m, r]), scaling });
  assert.equal(zero.identical, true);
  assert.equal(zero.update.numericalRank, 0);
  assert.equal(zero.intruders.count, 0);
});

test('fast comparisons mark the estimates', async () => {
  const [m, n] = [160, 120];
  const g = rng(61);
  const w0 = tensor('f32', [m, n], g.fillNormal(new Float32Array(m * n)));
  const w1 = tensor('f32', [m, n], Float32Array.from(w0.data, (v) => v + 0.1 * g.normal()));
  const c = await compareMatrices(w0, w1, { fast: true });
  assert.deepEqual([...c.approximate].sort(), ['intruders', 'principalAngles', 'update']);
  assert.equal(c.intruders.basis, 64);
  assert.equal(c.update.computed, 64);
  assert.equal(c.principalAngles.length, 16);
});
