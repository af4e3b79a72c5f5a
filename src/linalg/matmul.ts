/** Matrix products, with transposes and batching over leading dimensions. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { backend, type Matrix } from '../backend/index.js';
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

/** Options of {@link matmulAdd}. */
export interface MatmulAddOptions extends MatmulOptions {
  /** The product's factor (default 1). */
  alpha?: number;
}

/**
 * c + alpha · op(a) · op(b) for matrices, as a new tensor (c is not modified): one pass over c on
 * the native backend (BLAS gemm with beta = 1), where a product and a sum would make three.
 *
 * @example
 * const residual = await linalg.matmulAdd(w, b, a, { alpha: -scaling }); // W − s·B·A
 */
export async function matmulAdd<F extends FloatDType>(c: Tensor<F>, a: Tensor<F>, b: Tensor<F>, opts: MatmulAddOptions = {}): Promise<Tensor<F>> {
  const args = matmulAddArgs('matmulAdd', c, a, b, opts);
  const out = await backend().matmulAdd(...args);
  return tensor(c.dtype, c.shape, out.data);
}

/**
 * {@link matmulAdd} rounded once into bf16 or f16 (c, a, b float32): on the native backend the
 * float32 sum is made a block of rows at a time and never held in full — a residual or merged
 * weight goes straight to its storage type.
 *
 * @example
 * const stored = await linalg.matmulAddAs(w, b, a, 'bf16', { alpha: -scaling });
 */
export async function matmulAddAs<D extends 'bf16' | 'f16'>(c: Tensor<'f32'>, a: Tensor<'f32'>, b: Tensor<'f32'>, dtype: D, opts: MatmulAddOptions = {}): Promise<Tensor<D>> {
  const args = matmulAddArgs('matmulAddAs', c, a, b, opts);
  const bits = await backend().matmulAddHalf(...args, dtype);
  return tensor(dtype, c.shape, bits as Tensor<D>['data']);
}

/** Checks matmulAdd's arguments; the backend call's arguments. */
function matmulAddArgs<F extends FloatDType>(routine: string, c: Tensor<F>, a: Tensor<F>, b: Tensor<F>, opts: MatmulAddOptions): [Matrix<Storage<F>>, Matrix<Storage<F>>, Matrix<Storage<F>>, number, boolean, boolean] {
  sameDtype(routine, c, a);
  sameDtype(routine, a, b);
  if (a.dtype !== 'f32' && a.dtype !== 'f64') throw new LowrankError('E_USAGE', `${routine}: dtype ${String(a.dtype)} is not f32 or f64`);
  for (const t of [c, a, b]) if (t.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: arguments must be matrices, got [${t.shape}]`);
  const alpha = opts.alpha ?? 1;
  if (!Number.isFinite(alpha)) throw new LowrankError('E_USAGE', `${routine}: alpha must be finite, got ${alpha}`);
  checkFinite(routine, 'c', c.data);
  checkFinite(routine, 'a', a.data);
  checkFinite(routine, 'b', b.data);
  const [ar, ac] = a.shape;
  const [br, bc] = b.shape;
  const [m, k] = opts.transA ? [ac, ar] : [ar, ac];
  const [k2, n] = opts.transB ? [bc, br] : [br, bc];
  if (k !== k2) throw new LowrankError('E_SHAPE', `${routine}: inner dimensions differ (${k} and ${k2}) for [${a.shape}]${opts.transA ? 'ᵀ' : ''} · [${b.shape}]${opts.transB ? 'ᵀ' : ''}`);
  if (c.shape[0] !== m || c.shape[1] !== n) throw new LowrankError('E_SHAPE', `${routine}: c is [${c.shape}], the product is [${m},${n}]`);
  return [{ rows: m, cols: n, data: c.data }, { rows: ar, cols: ac, data: a.data }, { rows: br, cols: bc, data: b.data }, alpha, opts.transA ?? false, opts.transB ?? false];
}
