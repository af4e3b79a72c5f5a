/**
 * Symmetric eigendecomposition on the wasm kernels, in the input's element type: Householder
 * tridiagonalization (one thread), Qᵀ accumulated from the reflectors (rows split among the
 * threads), the js backend's implicit QR iteration on the tridiagonal in float64 with its rotations
 * logged, and the log applied to Qᵀ (columns split among the threads).
 */
import { tridiagonalEigen } from '../js/eigh.js';
import type { FloatArray, Matrix } from '../types.js';
import { dtypeOf, elementBytes, type Engine } from './engine.js';
import { kernel } from './protocol.js';
import { formFactorRows, RotationLog } from './rows.js';


/** Eigenvalues (ascending) and, when asked, eigenvectors of A's lower triangle, as one task of the engine; at most `maxLog` rotations are logged before they are applied. */
export function eighOn<A extends FloatArray>(engine: Engine, maxLog: number, a: Matrix<A>, vectors: boolean): Promise<{ values: A; vectors?: Matrix<A> }> {
  return engine.exclusive(() => run(engine, maxLog, a, vectors));
}

async function run<A extends FloatArray>(engine: Engine, maxLog: number, a: Matrix<A>, wantVectors: boolean): Promise<{ values: A; vectors?: Matrix<A> }> {
  const n = a.rows;
  const dtype = dtypeOf(a.data);
  const size = elementBytes(dtype);
  const make = (len: number): A => (a.data instanceof Float32Array ? new Float32Array(len) : new Float64Array(len)) as A;
  if (n === 0) return wantVectors ? { values: make(0), vectors: { rows: 0, cols: 0, data: make(0) } } : { values: make(0) };
  const capacity = wantVectors ? Math.min(maxLog, Math.ceil(1.2 * n * n) + 1024) : 0;
  const [logBytes, csBytes] = RotationLog.bytes(dtype, capacity);
  const [s, refl, taus, d, e, p, out, qt, log, cs] = engine.reserve('eigh', [n * n * size, n * n * size, n * 8, n * 8, n * 8, n * size, 16, wantVectors ? n * n * size : 0, logBytes, csBytes]);

  // The symmetric matrix from the lower triangle, scaled to unit max-norm.
  const work = engine.view(dtype, s, n * n);
  let big = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = a.data[i * n + j];
      work[i * n + j] = v;
      work[j * n + i] = v;
      big = Math.max(big, Math.abs(v));
    }
  }
  const scale = big > 0 ? big : 1;
  if (scale !== 1) for (let i = 0; i < work.length; i++) work[i] /= scale;
  engine.call({ kernel: kernel(dtype, 'tridiagonalize'), args: [s, n, d, e, refl, taus, p, out] });
  const dv = Float64Array.from(engine.f64(d, n));
  const ev = Float64Array.from(engine.f64(e, n).subarray(0, n - 1));

  const values = make(n);
  if (!wantVectors) {
    tridiagonalEigen(dv, ev);
    for (let i = 0; i < n; i++) values[i] = dv[i] * scale;
    return { values };
  }
  await formFactorRows(engine, dtype, qt, n, n, refl, n, taus, Math.max(n - 2, 0), 1);
  const rotations = new RotationLog(engine, dtype, qt, n, n, log, cs, capacity);
  tridiagonalEigen(dv, ev, rotations);
  await rotations.flush();
  for (let i = 0; i < n; i++) values[i] = dv[i] * scale;
  const vectors = make(n * n);
  rotations.copyColumns(vectors, n);
  return { values, vectors: { rows: n, cols: n, data: vectors } };
}
