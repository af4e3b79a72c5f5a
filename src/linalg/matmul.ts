/** Matrix products, with transposes and batching over leading dimensions. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import { checkFinite, sameDtype } from './check.js';

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use the transpose of the last two dimensions of `a`. */
  transA?: boolean;
  /** Use the transpose of the last two dimensions of `b`. */
  transB?: boolean;
}

/**
 * op(a) · op(b) over the last two dimensions. Leading (batch) dimensions must be equal, or one side
 * is a plain matrix used for every batch entry.
 *
 * @example
 * const c = await linalg.matmul(a, b, { transB: true }); // a · bᵀ
 */
export async function matmul<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>, opts: MatmulOptions = {}): Promise<Tensor<F>> {
  const routine = 'matmul';
  sameDtype(routine, a, b);
  if (a.dtype !== 'f32' && a.dtype !== 'f64') throw new LowrankError('E_USAGE', `${routine}: dtype ${String(a.dtype)} is not f32 or f64`);
  if (a.shape.length < 2 || b.shape.length < 2) throw new LowrankError('E_SHAPE', `${routine}: arguments must have at least 2 dimensions, got [${a.shape}] and [${b.shape}]`);
  checkFinite(routine, 'a', a.data);
  checkFinite(routine, 'b', b.data);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = opts.transA ? [ac, ar] : [ar, ac];
  const [k2, n] = opts.transB ? [bc, br] : [br, bc];
  if (k !== k2) throw new LowrankError('E_SHAPE', `${routine}: inner dimensions differ (${k} and ${k2}) for [${a.shape}]${opts.transA ? 'ᵀ' : ''} · [${b.shape}]${opts.transB ? 'ᵀ' : ''}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = batchA.length >= batchB.length ? batchA : batchB;
  if (batchA.length > 0 && batchB.length > 0 && batchA.join() !== batchB.join()) {
    throw new LowrankError('E_SHAPE', `${routine}: batch dimensions [${batchA}] and [${batchB}] differ`);
  }
  const be = backend();
  if (batch.length === 0) {
    const c = await be.matmul({ rows: ar, cols: ac, data: a.data }, { rows: br, cols: bc, data: b.data }, opts.transA ?? false, opts.transB ?? false);
    return tensor(a.dtype, [m, n], c.data);
  }
  const count = batch.reduce((x, d) => x * d, 1);
  const out = tensor(a.dtype, [...batch, m, n]);
  for (let i = 0; i < count; i++) {
    const av = batchA.length > 0 ? (a.data.subarray(i * ar * ac, (i + 1) * ar * ac) as Storage<F>) : a.data;
    const bv = batchB.length > 0 ? (b.data.subarray(i * br * bc, (i + 1) * br * bc) as Storage<F>) : b.data;
    const c = await be.matmul({ rows: ar, cols: ac, data: av }, { rows: br, cols: bc, data: bv }, opts.transA ?? false, opts.transB ?? false);
    out.data.set(c.data, i * m * n);
  }
  return out;
}
