/**
 * The `skinny` suite: the building blocks of a randomized SVD at a TinyLlama MLP weight's shape
 * (5632 × 2048, rank 16 + 10 oversamples = 26 columns), on the native backend next to numpy in the
 * same run: W·Ω, Wᵀ·Q and Qᵀ·W (native/skinny.c's kernels), the orthonormal basis of a 5632 × 26
 * block (native: CholeskyQR2 through `orthonormalize`, and the Householder `qr` it replaced; numpy:
 * np.linalg.qr), and the whole rsvd (rank 16, 4 power iterations). Medians of 20 (rsvd: 5) after a
 * warmup; numpy under both OpenBLAS settings, the faster kept. About a minute.
 */
import { backend, type Matrix } from '../src/backend/index.js';
import { rsvd } from '../src/linalg/rsvd.js';
import { tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { blasSettings, fastestOf, fmtRatio, median, now, printTable, requireNumpy, runPythonJson, type SuiteOptions } from './util.js';

export const description = 'skinny products, orthonormal bases and rsvd at 5632 × 2048 (rank 16 + 10): native vs numpy';

const [M, N, L] = [5632, 2048, 26];

async function timed(reps: number, f: () => Promise<unknown>): Promise<number> {
  await f();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    await f();
    ts.push(now() - t0);
  }
  return median(ts);
}

export async function run(_opts: SuiteOptions): Promise<unknown> {
  requireNumpy();
  const be = backend();
  if (be.name !== 'native') throw new Error(`the skinny suite measures the native backend; ${be.name} is in use`);
  const g = rng(1);
  const w: Matrix<Float32Array> = { rows: M, cols: N, data: Float32Array.from(g.fillNormal(new Float64Array(M * N))) };
  const omega: Matrix<Float32Array> = { rows: N, cols: L, data: Float32Array.from(g.fillNormal(new Float64Array(N * L))) };
  const q = await be.orthonormalize(await be.matmul(w, omega, false, false));
  const lr = {
    'W·Ω': await timed(20, () => be.matmul(w, omega, false, false)),
    'Wᵀ·Q': await timed(20, () => be.matmul(w, q, true, false)),
    'Qᵀ·W': await timed(20, () => be.matmul(q, w, true, false)),
    'orthonormal basis (CholeskyQR2)': await timed(20, () => be.orthonormalize(q)),
    'orthonormal basis (Householder qr)': await timed(20, () => be.qr(q)),
    'rsvd rank 16, niter 4': await timed(5, () => rsvd(tensor('f32', [M, N], w.data), 16, { niter: 4 })),
  };
  const np = fastestOf(blasSettings().map(({ name, env }) => ({ config: name, run: () => runPythonJson<Record<string, number>>(NUMPY, [String(M), String(N), String(L)], 'python3', env) })), (r) => r['W·Ω']);
  const rows = Object.entries(lr).map(([job, s]) => {
    const peer = np[job.startsWith('orthonormal') ? 'qr' : job];
    return [job, `${(s * 1e3).toFixed(2)} ms`, peer === undefined ? '-' : `${(peer * 1e3).toFixed(2)} ms`, peer === undefined ? '-' : fmtRatio(s / peer)];
  });
  printTable(['job', 'lowrank (native)', 'numpy', 'lowrank/numpy'], rows);
  console.log(`\nnumpy at its best configuration: ${np.config} (${np.tried.map((t) => `${t.config}: W·Ω ${(t.seconds * 1e3).toFixed(2)} ms`).join(', ')}); lowrank with the environment as is (these kernels do not use OpenBLAS)`);
  return { shape: [M, N, L], lowrank: lr, numpy: np };
}

const NUMPY = `
import json, sys, time
import numpy as np
m, n, l = (int(a) for a in sys.argv[1:4])
g = np.random.default_rng(1)
w = g.standard_normal((m, n), dtype=np.float32)
om = g.standard_normal((n, l), dtype=np.float32)
q, _ = np.linalg.qr(w @ om)
def timed(reps, f):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
def rsvd():
    z, _ = np.linalg.qr(w @ om)
    for _ in range(4):
        y, _ = np.linalg.qr(w.T @ z)
        z, _ = np.linalg.qr(w @ y)
    u, s, vt = np.linalg.svd(z.T @ w, full_matrices=False)
    return z @ u
print(json.dumps({
    'W·Ω': timed(20, lambda: w @ om),
    'Wᵀ·Q': timed(20, lambda: w.T @ q),
    'Qᵀ·W': timed(20, lambda: q.T @ w),
    'qr': timed(20, lambda: np.linalg.qr(q)),
    'rsvd rank 16, niter 4': timed(5, rsvd),
}))
`;
