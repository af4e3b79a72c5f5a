/**
 * SVD on the wasm kernels, in the input's element type: Golub–Kahan bidiagonalization (one thread),
 * the orthogonal factors accumulated from the reflectors (rows split among the threads), the
 * bidiagonal QR iteration of the js backend in float64 on the O(n) scalars with its rotations
 * logged, and the log applied to the factors (columns split among the threads). Same algorithm and
 * accuracy as the js backend's (no Gram matrix), with the O(n³) work in SIMD kernels.
 */
import { bidiagonalSvd } from '../js/bdsqr.js';
import { svd as jsSvd } from '../js/svd.js';
import type { FloatArray, Matrix, SvdJob, SvdResult } from '../types.js';
import { dtypeOf, elementBytes, type Engine } from './engine.js';
import { kernel } from './protocol.js';
import { formFactorRows, RotationLog } from './rows.js';


/** Copies A (m×n) into w as the tall one of A and Aᵀ, and returns its largest magnitude. */
function copyTall(a: FloatArray, m: number, n: number, w: FloatArray): number {
  let big = 0;
  if (m >= n) {
    w.set(a);
    for (let i = 0; i < a.length; i++) big = Math.max(big, Math.abs(a[i]));
  } else {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const v = a[i * n + j];
        w[j * m + i] = v;
        big = Math.max(big, Math.abs(v));
      }
    }
  }
  return big;
}

/** The SVD of A for the job, as one task of the engine; at most `maxLog` rotations are logged per factor before they are applied. */
export function svdOn<A extends FloatArray>(engine: Engine, maxLog: number, a: Matrix<A>, job: SvdJob): Promise<SvdResult<A>> {
  return engine.exclusive(() => run(engine, maxLog, a, job));
}

async function run<A extends FloatArray>(engine: Engine, maxLog: number, a: Matrix<A>, job: SvdJob): Promise<SvdResult<A>> {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  if (k === 0) return jsSvd(a, job);
  const dtype = dtypeOf(a.data);
  const size = elementBytes(dtype);
  const tall = m >= n;
  const M = tall ? m : n;
  const N = tall ? n : m;
  const vectors = job !== 'values';
  const uRows = !vectors ? 0 : job === 'full' ? M : N;
  const capacity = vectors ? Math.min(maxLog, Math.ceil(1.2 * N * N) + 1024) : 0;
  const [logBytes, csBytes] = RotationLog.bytes(dtype, capacity);
  const [w, left, right, leftTau, rightTau, d, e, scratch, out, ut, vt, uLog, uCs, vLog, vCs] = engine.reserve('svd', [
    M * N * size,
    N * M * size,
    N * N * size,
    N * 8,
    N * 8,
    N * 8,
    N * 8,
    N * size,
    16,
    uRows * M * size,
    vectors ? N * N * size : 0,
    logBytes,
    csBytes,
    logBytes,
    csBytes,
  ]);

  // Scale to unit max-norm so that nothing overflows.
  const work = engine.view(dtype, w, M * N);
  const big = copyTall(a.data, m, n, work);
  const scale = big > 0 && big !== 1 ? big : 1;
  if (scale !== 1) for (let i = 0; i < work.length; i++) work[i] /= scale;
  engine.call({ kernel: kernel(dtype, 'bidiagonalize'), args: [w, M, N, d, e, left, leftTau, right, rightTau, scratch, out] });
  const dv = Float64Array.from(engine.f64(d, N));
  const ev = Float64Array.from(engine.f64(e, N).subarray(0, N - 1));
  const like = a.data;
  const make = (len: number): A => (like instanceof Float32Array ? new Float32Array(len) : new Float64Array(len)) as A;

  if (!vectors) {
    bidiagonalSvd(dv, ev);
    const s = make(N);
    for (let i = 0; i < N; i++) s[i] = dv[i] * scale;
    return { s };
  }

  await formFactorRows(engine, dtype, ut, M, uRows, left, M, leftTau, N, 0);
  await formFactorRows(engine, dtype, vt, N, N, right, N, rightTau, N - 1, 1);
  const logU = new RotationLog(engine, dtype, ut, M, uRows, uLog, uCs, capacity);
  const logV = new RotationLog(engine, dtype, vt, N, N, vLog, vCs, capacity);
  bidiagonalSvd(dv, ev, logU, logV);
  await logU.flush();
  await logV.flush();

  const s = make(k);
  for (let i = 0; i < k; i++) s[i] = dv[i] * scale;
  const uCols = job === 'full' ? m : k;
  const vRows = job === 'full' ? n : k;
  const u = make(m * uCols);
  const v = make(vRows * n);
  // Tall: A = Utᵀ·S·Vt. Wide: Aᵀ = Utᵀ·S·Vt, so A = Vtᵀ·S·Ut.
  if (tall) {
    logU.copyColumns(u, uCols);
    logV.copyRows(v, vRows);
  } else {
    logV.copyColumns(u, uCols);
    logU.copyRows(v, vRows);
  }
  return { u: { rows: m, cols: uCols, data: u }, s, vt: { rows: vRows, cols: n, data: v } };
}
