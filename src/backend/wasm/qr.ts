/**
 * Thin Householder QR on the wasm kernels, in the input's element type: the factorization on one
 * thread, then Qᵀ accumulated from the reflectors with its rows split among the threads.
 */
import type { FloatArray, Matrix } from '../types.js';
import { dtypeOf, elementBytes, type Engine } from './engine.js';
import { kernel } from './protocol.js';
import { formFactorRows } from './rows.js';

/** A (m×n) = Q (m×k)·R (k×n), k = min(m, n), as one task of the engine. */
export function qrOn<A extends FloatArray>(engine: Engine, a: Matrix<A>): Promise<{ q: Matrix<A>; r: Matrix<A> }> {
  return engine.exclusive(() => run(engine, a));
}

async function run<A extends FloatArray>(engine: Engine, a: Matrix<A>): Promise<{ q: Matrix<A>; r: Matrix<A> }> {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const dtype = dtypeOf(a.data);
  const size = elementBytes(dtype);
  const make = (len: number): A => (a.data instanceof Float32Array ? new Float32Array(len) : new Float64Array(len)) as A;
  const q = make(m * k);
  const r = make(k * n);
  if (k > 0) {
    const [w, refl, taus, scratch, out, qt] = engine.reserve('qr', [m * n * size, k * m * size, k * 8, n * size, 16, k * m * size]);
    engine.view(dtype, w, m * n).set(a.data);
    engine.call({ kernel: kernel(dtype, 'qr'), args: [w, m, n, refl, taus, scratch, out] });
    await formFactorRows(engine, dtype, qt, m, k, refl, m, taus, k, 0);
    const rv = engine.view(dtype, w, m * n);
    for (let i = 0; i < k; i++) r.set(rv.subarray(i * n + i, (i + 1) * n), i * n + i);
    const qv = engine.view(dtype, qt, k * m);
    for (let i = 0; i < k; i++) for (let j = 0; j < m; j++) q[j * k + i] = qv[i * m + j];
  }
  return { q: { rows: m, cols: k, data: q }, r: { rows: k, cols: n, data: r } };
}
