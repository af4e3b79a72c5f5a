/**
 * The native backend (OpenBLAS + LAPACKE addon) against numpy float64 references on seeded random
 * inputs. The addon must be built: without it these tests fail with a message saying how to get it
 * (CI installs libopenblas-dev and liblapacke-dev).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBackend, nativeInfo } from '../../../src/backend/native/index.js';
import type { Backend, FloatArray, Matrix } from '../../../src/backend/types.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng, type Rng } from '../../../src/core/rng.js';
import { pythonJson } from '../../helpers/python.js';
import { orthonormalize, referenceProduct } from '../../helpers/reference.js';

type Dtype = 'f32' | 'f64';
const DTYPES: readonly Dtype[] = ['f32', 'f64'];

/**
 * Tolerances. recon: ‖A − factors‖_F / ‖A‖_F; orth: max |QᵀQ − I|; values: max |λ − λ_ref| / |λ_ref|_max
 * (singular values: within tol·σ₁ of numpy); gemm: max |C − C_ref| / max (|A|·|B|); solve: the
 * backward error ‖op(T)·X − B‖_F / (‖T‖_F ‖X‖_F); factor: a unique factor (R up to row signs,
 * Cholesky L, triangular-solve X) against numpy's, relative, on well-conditioned inputs.
 */
const TOL: Record<Dtype, { recon: number; orth: number; values: number; gemm: number; solve: number; factor: number }> = {
  f32: { recon: 1e-5, orth: 1e-4, values: 1e-5, gemm: 1e-5, solve: 1e-5, factor: 1e-4 },
  f64: { recon: 1e-12, orth: 1e-12, values: 1e-12, gemm: 1e-12, solve: 1e-12, factor: 1e-10 },
};

/** The backend, or a failure that says how to get it (never a silent skip). */
function native(): Backend {
  const r = loadNativeBackend();
  if (r.backend === undefined) {
    assert.fail(`the native backend is unavailable, and these tests need it (CI installs the libraries): ${r.reason}`);
  }
  return r.backend;
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A test matrix in float64; each dtype's run rounds it first, and numpy sees the rounded values. */
interface Case {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
  /** Full rank and well conditioned: its unique factors can be compared with numpy's. */
  readonly well: boolean;
}

function gaussian(g: Rng, rows: number, cols: number): Float64Array {
  return g.fillNormal(new Float64Array(rows * cols));
}


/** An m×k matrix with orthonormal columns (Gram–Schmidt, twice, on Gaussian columns). */
function orthonormal(g: Rng, m: number, k: number): Float64Array {
  return orthonormalize(gaussian(g, m, k), m, k);
}

function logspace(n: number, from: number, to: number): number[] {
  return Array.from({ length: n }, (_, i) => 10 ** (n === 1 ? from : from + ((to - from) * i) / (n - 1)));
}

/** U · diag(s) · Vᵀ with random orthonormal U (m×k), V (n×k). */
function withSpectrum(g: Rng, m: number, n: number, s: readonly number[]): Float64Array {
  const k = s.length;
  const u = orthonormal(g, m, k);
  const v = orthonormal(g, n, k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) u[i * k + j] *= s[j];
  const vt = new Float64Array(k * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) vt[j * n + i] = v[i * k + j];
  return referenceProduct(u, m, k, vt, n);
}

/** Square, tall, wide, tiny, rank-deficient and ill-conditioned general matrices. */
function generalCases(seed: number): Case[] {
  const g = rng(seed);
  const plain = (rows: number, cols: number, name: string): Case => ({ name, rows, cols, data: gaussian(g, rows, cols), well: true });
  return [
    plain(48, 48, 'square 48x48'),
    plain(90, 30, 'tall 90x30'),
    plain(30, 90, 'wide 30x90'),
    plain(160, 130, 'tall 160x130 (blocked paths)'),
    plain(1, 1, '1x1'),
    plain(1, 9, '1x9'),
    plain(9, 1, '9x1'),
    { name: 'rank-deficient 40x25 (rank 4)', rows: 40, cols: 25, data: referenceProduct(gaussian(g, 40, 4), 40, 4, gaussian(g, 4, 25), 25), well: false },
    { name: 'ill-conditioned 40x40 (σ = logspace(0, -6))', rows: 40, cols: 40, data: withSpectrum(g, 40, 40, logspace(40, 0, -6)), well: false },
    { name: 'ill-conditioned wide 24x64 (σ = logspace(0, -6))', rows: 24, cols: 64, data: withSpectrum(g, 24, 64, logspace(24, 0, -6)), well: false },
  ];
}

/** Symmetric matrices with garbage above the diagonal (only the lower triangle may be read). */
function symmetricCases(seed: number, dtype: Dtype): Case[] {
  const g = rng(seed);
  const sym = (n: number, name: string, data: Float64Array, well: boolean): Case => {
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) data[j * n + i] = 1e3 * g.normal();
    return { name, rows: n, cols: n, data, well };
  };
  const gauss = (n: number): Float64Array => {
    const a = gaussian(g, n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
    return a;
  };
  const spd = (n: number): Float64Array => {
    const x = gaussian(g, n, n);
    const xt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) xt[j * n + i] = x[i * n + j];
    const a = referenceProduct(x, n, n, xt, n);
    for (let i = 0; i < n; i++) a[i * n + i] += n;
    return a;
  };
  // float32 Cholesky at a condition number near 1/eps fails honestly: keep f32's within reach.
  const illSpd = (n: number): Float64Array => {
    const ev = logspace(n, 0, dtype === 'f32' ? -3 : -6);
    const q = orthonormal(g, n, n);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let x = 0;
        for (let p = 0; p < n; p++) x += q[i * n + p] * ev[p] * q[j * n + p];
        a[i * n + j] = x;
      }
    }
    return a;
  };
  return [
    sym(1, '1x1', spd(1), true),
    sym(2, '2x2', spd(2), true),
    sym(37, 'SPD 37x37', spd(37), true),
    sym(64, 'SPD 64x64', spd(64), true),
    sym(150, 'SPD 150x150 (blocked paths)', spd(150), true),
    sym(40, `ill-conditioned SPD 40x40 (λ = logspace(0, ${dtype === 'f32' ? -3 : -6}))`, illSpd(40), false),
    sym(45, 'indefinite 45x45', gauss(45), false),
    sym(30, 'rank-deficient PSD 30x30 (rank 3)', (() => {
      const x = gaussian(g, 30, 3);
      const xt = new Float64Array(90);
      for (let i = 0; i < 30; i++) for (let j = 0; j < 3; j++) xt[j * 30 + i] = x[i * 3 + j];
      return referenceProduct(x, 30, 3, xt, 30);
    })(), false),
  ];
}

function cast(data: Float64Array, dtype: Dtype): FloatArray {
  return dtype === 'f32' ? Float32Array.from(data) : Float64Array.from(data);
}

function mat(rows: number, cols: number, data: FloatArray): Matrix {
  return { rows, cols, data };
}

function list(a: FloatArray | Int32Array | undefined): number[] | null {
  return a === undefined ? null : Array.from(a);
}

function assertType(x: FloatArray, dtype: Dtype, what: string): void {
  assert.ok(dtype === 'f32' ? x instanceof Float32Array : x instanceof Float64Array, `${what} has the input's element type`);
}

function within(value: number, tol: number, what: string): void {
  assert.ok(Number.isFinite(value) && value <= tol, `${what} = ${value.toExponential(3)} exceeds ${tol.toExponential(0)}`);
}

// ---------------------------------------------------------------------------------------------
// numpy checks: each script reads a JSON list of cases on stdin and prints one result per case.

const SVD_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    m, n = c['m'], c['n']
    A = np.array(c['a'], dtype=np.float64).reshape(m, n)
    s = np.array(c['s'], dtype=np.float64)
    ref = np.linalg.svd(A, compute_uv=False)
    s1 = ref[0] if len(ref) and ref[0] > 0 else 1.0
    r = {'values': float(np.max(np.abs(s - ref)) / s1) if len(s) == len(ref) else float('inf')}
    if c['u'] is not None:
        U = np.array(c['u']).reshape(m, -1)
        Vt = np.array(c['vt']).reshape(-1, n)
        k = min(m, n)
        rec = U[:, :k] @ np.diag(s) @ Vt[:k, :]
        r['recon'] = float(np.linalg.norm(A - rec) / np.linalg.norm(A))
        r['orthU'] = float(np.max(np.abs(U.T @ U - np.eye(U.shape[1]))))
        r['orthV'] = float(np.max(np.abs(Vt @ Vt.T - np.eye(Vt.shape[0]))))
    out.append(r)
print(json.dumps(out))
`;

const QR_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    m, n = c['m'], c['n']
    k = min(m, n)
    A = np.array(c['a'], dtype=np.float64).reshape(m, n)
    Q = np.array(c['q']).reshape(m, k)
    R = np.array(c['r']).reshape(k, n)
    Rref = np.linalg.qr(A, mode='reduced')[1]
    d = np.sign(np.diag(R)); d[d == 0] = 1
    dref = np.sign(np.diag(Rref)); dref[dref == 0] = 1
    out.append({
        'recon': float(np.linalg.norm(A - Q @ R) / np.linalg.norm(A)),
        'orth': float(np.max(np.abs(Q.T @ Q - np.eye(k)))),
        'lower': float(np.max(np.abs(np.tril(R, -1)))) if k > 1 else 0.0,
        'factor': float(np.max(np.abs(d[:, None] * R - dref[:, None] * Rref)) / np.max(np.abs(Rref))),
    })
print(json.dumps(out))
`;

const EIGH_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    n = c['n']
    A = np.array(c['a'], dtype=np.float64).reshape(n, n)
    S = np.tril(A) + np.tril(A, -1).T
    w = np.array(c['values'])
    ref = np.linalg.eigvalsh(A, UPLO='L')
    scale = max(np.max(np.abs(ref)), 1e-300)
    r = {'values': float(np.max(np.abs(w - ref)) / scale)}
    if c['vectors'] is not None:
        V = np.array(c['vectors']).reshape(n, n)
        r['recon'] = float(np.linalg.norm(S @ V - V @ np.diag(w)) / np.linalg.norm(S))
        r['orth'] = float(np.max(np.abs(V.T @ V - np.eye(n))))
    out.append(r)
print(json.dumps(out))
`;

const LU_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    m, n = c['m'], c['n']
    k = min(m, n)
    A = np.array(c['a'], dtype=np.float64).reshape(m, n)
    LU = np.array(c['lu']).reshape(m, n)
    perm = np.array(c['perm'], dtype=np.int64)
    L = np.tril(LU, -1)[:, :k] + np.eye(m, k)
    U = np.triu(LU)[:k, :]
    isperm = sorted(perm.tolist()) == list(range(m))
    norm = np.linalg.norm(A)
    out.append({
        'perm': bool(isperm),
        'recon': float(np.linalg.norm(A[perm] - L @ U) / (norm if norm > 0 else 1.0)) if isperm else float('inf'),
        'maxL': float(np.max(np.abs(L))),
    })
print(json.dumps(out))
`;

const CHOL_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    n = c['n']
    A = np.array(c['a'], dtype=np.float64).reshape(n, n)
    S = np.tril(A) + np.tril(A, -1).T
    L = np.array(c['l']).reshape(n, n)
    ref = np.linalg.cholesky(S)
    out.append({
        'upper': float(np.max(np.abs(np.triu(L, 1)))) if n > 1 else 0.0,
        'recon': float(np.linalg.norm(S - L @ L.T) / np.linalg.norm(S)),
        'factor': float(np.linalg.norm(L - ref) / np.linalg.norm(ref)),
    })
print(json.dumps(out))
`;

const TRSM_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    n, k = c['n'], c['k']
    T = np.array(c['t'], dtype=np.float64).reshape(n, n)
    T = np.tril(T) if c['lower'] else np.triu(T)
    if c['unit']:
        np.fill_diagonal(T, 1.0)
    if c['trans']:
        T = T.T
    B = np.array(c['b'], dtype=np.float64).reshape(n, k)
    X = np.array(c['x']).reshape(n, k)
    ref = np.linalg.solve(T, B)
    out.append({
        'solve': float(np.linalg.norm(T @ X - B) / (np.linalg.norm(T) * np.linalg.norm(X))),
        'factor': float(np.linalg.norm(X - ref) / np.linalg.norm(ref)),
    })
print(json.dumps(out))
`;

const GEMM_PY = `
import json, sys
out = []
for c in json.load(sys.stdin):
    A = np.array(c['a'], dtype=np.float64).reshape(c['ar'], c['ac'])
    B = np.array(c['b'], dtype=np.float64).reshape(c['br'], c['bc'])
    if c['ta']: A = A.T
    if c['tb']: B = B.T
    C = np.array(c['c'], dtype=np.float64).reshape(A.shape[0], B.shape[1])
    scale = np.max(np.abs(A) @ np.abs(B))
    out.append({'gemm': float(np.max(np.abs(C - A @ B)) / scale)})
print(json.dumps(out))
`;

// ---------------------------------------------------------------------------------------------
// Tests

test('the addon is built and reports its OpenBLAS build', () => {
  native();
  const info = nativeInfo();
  assert.ok(info.available, info.available ? '' : info.reason);
  assert.match(info.config, /OpenBLAS/);
  assert.ok(Number.isInteger(info.threads) && info.threads >= 1, `threads = ${info.threads}`);
  assert.ok(info.corename.length > 0);
  assert.equal(loadNativeBackend().backend, native(), 'loaded once');
  assert.equal(native().name, 'native');
});

for (const dtype of DTYPES) {
  test(`svd (${dtype}) against numpy: thin, full and values-only`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const runs: { name: string; job: string; payload: object }[] = [];
    for (const c of generalCases(101)) {
      const a = cast(c.data, dtype);
      for (const job of ['thin', 'full', 'values'] as const) {
        const r = await b.svd(mat(c.rows, c.cols, a), job);
        const k = Math.min(c.rows, c.cols);
        assertType(r.s, dtype, 's');
        assert.equal(r.s.length, k);
        for (let i = 0; i < k; i++) assert.ok(r.s[i] >= 0 && (i === 0 || r.s[i] <= r.s[i - 1]), `${c.name} ${job}: s descending, non-negative`);
        if (job === 'values') {
          assert.equal(r.u, undefined);
          assert.equal(r.vt, undefined);
        } else {
          assert.ok(r.u !== undefined && r.vt !== undefined);
          const uc = job === 'full' ? c.rows : k;
          const vr = job === 'full' ? c.cols : k;
          assert.deepEqual([r.u.rows, r.u.cols, r.vt.rows, r.vt.cols], [c.rows, uc, vr, c.cols], `${c.name} ${job}: shapes`);
          assertType(r.u.data, dtype, 'U');
          assertType(r.vt.data, dtype, 'Vt');
        }
        runs.push({ name: `${c.name} ${job}`, job, payload: { m: c.rows, n: c.cols, a: list(a), s: list(r.s), u: list(r.u?.data), vt: list(r.vt?.data) } });
      }
    }
    const results = pythonJson<{ values: number; recon?: number; orthU?: number; orthV?: number }[]>(SVD_PY, [], JSON.stringify(runs.map((r) => r.payload)));
    for (const [i, run] of runs.entries()) {
      await t.test(run.name, () => {
        const r = results[i];
        within(r.values, tol.values, 'singular values vs numpy (/σ₁)');
        if (run.job !== 'values') {
          within(r.recon ?? Infinity, tol.recon, 'reconstruction');
          within(r.orthU ?? Infinity, tol.orth, 'orthogonality of U');
          within(r.orthV ?? Infinity, tol.orth, 'orthogonality of Vt');
        }
      });
    }
  });

  test(`qr (${dtype}) against numpy`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const cases = generalCases(202);
    const payload = [];
    for (const c of cases) {
      const a = cast(c.data, dtype);
      const { q, r } = await b.qr(mat(c.rows, c.cols, a));
      const k = Math.min(c.rows, c.cols);
      assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [c.rows, k, k, c.cols], `${c.name}: shapes`);
      assertType(q.data, dtype, 'Q');
      assertType(r.data, dtype, 'R');
      payload.push({ m: c.rows, n: c.cols, a: list(a), q: list(q.data), r: list(r.data) });
    }
    const results = pythonJson<{ recon: number; orth: number; lower: number; factor: number }[]>(QR_PY, [], JSON.stringify(payload));
    for (const [i, c] of cases.entries()) {
      await t.test(c.name, () => {
        const r = results[i];
        within(r.recon, tol.recon, 'reconstruction');
        within(r.orth, tol.orth, 'orthogonality of Q');
        assert.equal(r.lower, 0, 'R is exactly upper triangular');
        if (c.well) within(r.factor, tol.factor, 'R vs numpy (up to row signs)');
      });
    }
  });

  test(`eigh (${dtype}) against numpy, reading only the lower triangle`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const runs: { name: string; vectors: boolean; payload: object }[] = [];
    for (const c of symmetricCases(303, dtype)) {
      const a = cast(c.data, dtype);
      for (const vectors of [true, false]) {
        const r = await b.eigh(mat(c.rows, c.cols, a), vectors);
        assertType(r.values, dtype, 'values');
        assert.equal(r.values.length, c.rows);
        for (let i = 1; i < c.rows; i++) assert.ok(r.values[i] >= r.values[i - 1], `${c.name}: values ascending`);
        if (vectors) {
          assert.ok(r.vectors !== undefined);
          assert.deepEqual([r.vectors.rows, r.vectors.cols], [c.rows, c.rows]);
          assertType(r.vectors.data, dtype, 'vectors');
        } else {
          assert.equal(r.vectors, undefined);
        }
        runs.push({ name: `${c.name}${vectors ? '' : ' (values only)'}`, vectors, payload: { n: c.rows, a: list(a), values: list(r.values), vectors: list(r.vectors?.data) } });
      }
    }
    const results = pythonJson<{ values: number; recon?: number; orth?: number }[]>(EIGH_PY, [], JSON.stringify(runs.map((r) => r.payload)));
    for (const [i, run] of runs.entries()) {
      await t.test(run.name, () => {
        const r = results[i];
        within(r.values, tol.values, 'eigenvalues vs numpy (/|λ|max)');
        if (run.vectors) {
          within(r.recon ?? Infinity, tol.recon, 'residual ‖AV − VΛ‖/‖A‖');
          within(r.orth ?? Infinity, tol.orth, 'orthogonality of the vectors');
        }
      });
    }
  });

  test(`lu (${dtype}): P·A = L·U`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const g = rng(404);
    const cases = generalCases(404);
    const singular = gaussian(g, 12, 12);
    for (let i = 0; i < 12; i++) singular[i * 12 + 5] = 0;
    cases.push({ name: 'exactly singular 12x12 (a zero column)', rows: 12, cols: 12, data: singular, well: false });
    const payload = [];
    for (const c of cases) {
      const a = cast(c.data, dtype);
      const { lu, perm } = await b.lu(mat(c.rows, c.cols, a));
      assert.deepEqual([lu.rows, lu.cols], [c.rows, c.cols]);
      assertType(lu.data, dtype, 'LU');
      assert.ok(perm instanceof Int32Array && perm.length === c.rows, 'perm is an Int32Array of length m');
      payload.push({ m: c.rows, n: c.cols, a: list(a), lu: list(lu.data), perm: list(perm) });
    }
    const results = pythonJson<{ perm: boolean; recon: number; maxL: number }[]>(LU_PY, [], JSON.stringify(payload));
    for (const [i, c] of cases.entries()) {
      await t.test(c.name, () => {
        const r = results[i];
        assert.ok(r.perm, 'perm is a permutation of 0..m-1');
        within(r.recon, tol.recon, '‖P·A − L·U‖/‖A‖');
        assert.ok(r.maxL <= 1 + 1e-12, `partial pivoting keeps |L| <= 1 (max ${r.maxL})`);
      });
    }
  });

  test(`cholesky (${dtype}) against numpy, reading only the lower triangle`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const cases = symmetricCases(505, dtype).filter((c) => c.well || c.name.startsWith('ill-conditioned SPD'));
    const payload = [];
    for (const c of cases) {
      const a = cast(c.data, dtype);
      const l = await b.cholesky(mat(c.rows, c.cols, a));
      assert.deepEqual([l.rows, l.cols], [c.rows, c.rows]);
      assertType(l.data, dtype, 'L');
      payload.push({ n: c.rows, a: list(a), l: list(l.data) });
    }
    const results = pythonJson<{ upper: number; recon: number; factor: number }[]>(CHOL_PY, [], JSON.stringify(payload));
    for (const [i, c] of cases.entries()) {
      await t.test(c.name, () => {
        const r = results[i];
        assert.equal(r.upper, 0, 'L is exactly lower triangular');
        within(r.recon, tol.recon, '‖A − L·Lᵀ‖/‖A‖');
        if (c.well) within(r.factor, tol.factor, 'L vs numpy');
      });
    }
  });

  test(`cholesky (${dtype}) of a matrix that is not positive definite is E_NUMERIC`, async () => {
    const b = native();
    for (const [n, values] of [[2, [1, 2, 2, 1]], [1, [-1]], [3, [4, 0, 0, 0, -1, 0, 0, 0, 4]]] as const) {
      await assert.rejects(b.cholesky(mat(n, n, cast(Float64Array.from(values), dtype))), (e: unknown) => {
        assert.ok(e instanceof LowrankError, 'a LowrankError');
        assert.equal(e.code, 'E_NUMERIC');
        assert.match(e.message, /potrf/);
        assert.match(e.message, /not positive definite/);
        return true;
      });
    }
  });

  test(`solveTriangular (${dtype}) against numpy: lower/upper, transposed, unit diagonal`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const g = rng(606);
    const runs: { name: string; payload: object }[] = [];
    for (const [n, k] of [[40, 6], [1, 1], [5, 1], [3, 9], [120, 17]] as const) {
      // Off-diagonals small next to the diagonal: a well-conditioned triangle. The other triangle and,
      // for unit-diagonal solves, the diagonal hold garbage that must not be read.
      const tData = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) tData[i * n + j] = i === j ? 2 + g.uniform() : g.normal() / n;
      for (const lower of [true, false]) {
        for (const trans of [false, true]) {
          for (const unit of [false, true]) {
            const tm = Float64Array.from(tData);
            for (let i = 0; i < n; i++) {
              for (let j = 0; j < n; j++) if (lower ? j > i : j < i) tm[i * n + j] = 1e3 * g.normal();
              if (unit) tm[i * n + i] = 1e3;
            }
            const tArr = cast(tm, dtype);
            const bArr = cast(gaussian(g, n, k), dtype);
            const x = await b.solveTriangular(mat(n, n, tArr), mat(n, k, bArr), { lower, trans, unitDiagonal: unit });
            assert.deepEqual([x.rows, x.cols], [n, k]);
            assertType(x.data, dtype, 'X');
            runs.push({
              name: `${n}x${n}, B ${n}x${k}, ${lower ? 'lower' : 'upper'}${trans ? ', transposed' : ''}${unit ? ', unit diagonal' : ''}`,
              payload: { n, k, lower, trans, unit, t: list(tArr), b: list(bArr), x: list(x.data) },
            });
          }
        }
      }
    }
    const results = pythonJson<{ solve: number; factor: number }[]>(TRSM_PY, [], JSON.stringify(runs.map((r) => r.payload)));
    for (const [i, run] of runs.entries()) {
      await t.test(run.name, () => {
        within(results[i].solve, tol.solve, 'backward error ‖op(T)X − B‖/(‖T‖‖X‖)');
        within(results[i].factor, tol.factor, 'X vs numpy.linalg.solve');
      });
    }
  });

  test(`matmul (${dtype}) against numpy, all transposes`, async (t) => {
    const b = native();
    const tol = TOL[dtype];
    const g = rng(707);
    const runs: { name: string; payload: object }[] = [];
    for (const [m, k, n] of [[33, 17, 29], [64, 64, 64], [1, 1, 1], [1, 8, 1], [8, 1, 8], [1, 40, 30], [70, 3, 1], [130, 150, 110]] as const) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const [ar, ac] = ta ? [k, m] : [m, k];
          const [br, bc] = tb ? [n, k] : [k, n];
          const a = cast(gaussian(g, ar, ac), dtype);
          const bb = cast(gaussian(g, br, bc), dtype);
          const c = await b.matmul(mat(ar, ac, a), mat(br, bc, bb), ta, tb);
          assert.deepEqual([c.rows, c.cols], [m, n]);
          assertType(c.data, dtype, 'C');
          runs.push({
            name: `(${m}x${k})·(${k}x${n})${ta ? ' transA' : ''}${tb ? ' transB' : ''}`,
            payload: { ar, ac, br, bc, ta, tb, a: list(a), b: list(bb), c: list(c.data) },
          });
        }
      }
    }
    const results = pythonJson<{ gemm: number }[]>(GEMM_PY, [], JSON.stringify(runs.map((r) => r.payload)));
    for (const [i, run] of runs.entries()) {
      await t.test(run.name, () => within(results[i].gemm, tol.gemm, 'max |C − A·B| / max(|A|·|B|)'));
    }
  });
}

test('inputs are never modified, and outputs are new arrays', async () => {
  const b = native();
  const g = rng(808);
  for (const dtype of DTYPES) {
    const a = cast(gaussian(g, 20, 12), dtype);
    const sq = symmetricCases(809, dtype)[3];
    const s = cast(sq.data, dtype);
    const rhs = cast(gaussian(g, sq.rows, 3), dtype);
    const before = [a, s, rhs].map((x) => x.slice());
    const outs: FloatArray[] = [];
    outs.push((await b.matmul(mat(20, 12, a), mat(20, 12, a), true, false)).data);
    const qr = await b.qr(mat(20, 12, a));
    outs.push(qr.q.data, qr.r.data);
    const svd = await b.svd(mat(20, 12, a), 'full');
    outs.push(svd.s, svd.u?.data ?? new Float64Array(), svd.vt?.data ?? new Float64Array());
    outs.push((await b.lu(mat(20, 12, a))).lu.data);
    const eig = await b.eigh(mat(sq.rows, sq.rows, s), true);
    outs.push(eig.values, eig.vectors?.data ?? new Float64Array());
    outs.push((await b.eigh(mat(sq.rows, sq.rows, s), false)).values);
    const l = await b.cholesky(mat(sq.rows, sq.rows, s));
    outs.push(l.data);
    outs.push((await b.solveTriangular(l, mat(sq.rows, 3, rhs), { lower: true, trans: false, unitDiagonal: false })).data);
    assert.deepEqual([a, s, rhs], before, `${dtype}: inputs unchanged`);
    for (const o of outs) for (const input of [a, s, rhs]) assert.notEqual(o.buffer, input.buffer, 'outputs do not share an input buffer');
  }
});

test('the work runs off the JS thread: the event loop keeps turning during a large SVD', async () => {
  const b = native();
  const n = 600;
  const a = rng(909).fillNormal(new Float64Array(n * n));
  let ticks = 0;
  let done = false;
  const spin = (): void => {
    ticks++;
    if (!done) setImmediate(spin);
  };
  setImmediate(spin);
  const t0 = performance.now();
  const r = await b.svd(mat(n, n, a), 'thin');
  const ms = performance.now() - t0;
  done = true;
  assert.equal(r.s.length, n);
  assert.ok(ticks >= 10, `only ${ticks} event-loop turns in ${ms.toFixed(0)} ms of SVD`);
});

test('concurrent calls all complete with the same results as sequential ones', async () => {
  const b = native();
  const g = rng(1010);
  const inputs = Array.from({ length: 8 }, () => gaussian(g, 70, 50));
  const sequential: Float64Array[] = [];
  for (const x of inputs) sequential.push((await b.svd(mat(70, 50, x), 'values')).s as Float64Array);
  const concurrent = await Promise.all(inputs.map((x) => b.svd(mat(70, 50, x), 'values')));
  assert.deepEqual(concurrent.map((r) => r.s), sequential);
});

test('a bad call is rejected with E_INTERNAL naming the routine', async () => {
  const b = native();
  const a = new Float64Array(6);
  await assert.rejects(b.matmul(mat(2, 3, a), mat(2, 3, a), false, false), (e: unknown) => {
    assert.ok(e instanceof LowrankError);
    assert.equal(e.code, 'E_INTERNAL');
    assert.match(e.message, /native matmul/);
    assert.match(e.message, /inner dimensions/);
    return true;
  });
  await assert.rejects(b.qr(mat(4, 4, a)), (e: unknown) => e instanceof LowrankError && e.code === 'E_INTERNAL' && /native qr/.test(e.message));
  await assert.rejects(b.matmul(mat(2, 3, a), mat(3, 2, new Float32Array(6)), false, false), (e: unknown) => e instanceof LowrankError && e.code === 'E_INTERNAL');
});
