/**
 * Unfolding (matricization) and folding, with TensorLy's ordering: the mode-n unfolding of a
 * tensor of shape (I₀, …, I_{N−1}) is the I_n × Π_{k≠n} I_k matrix whose columns run over the other
 * modes in their order, the last fastest (`moveaxis(x, n, 0).reshape(I_n, -1)` in numpy).
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { alloc, modeArg, prod, tensorArg } from './check.js';

/**
 * The mode-`mode` unfolding of x: shape [I_mode, Π others].
 *
 * @example
 * const m = tensor.unfold(x, 1); // x: [2, 3, 4] → m: [3, 8]
 */
export function unfold<F extends FloatDType>(x: Tensor<F>, mode: number): Tensor<F> {
  tensorArg('unfold', 'x', x);
  const n = modeArg('unfold', mode, x.shape.length);
  return tensor(x.dtype, [x.shape[n], x.data.length / x.shape[n]], unfoldData(x, n));
}

/** The data of the mode-n unfolding (n already checked). */
export function unfoldData<F extends FloatDType>(x: Tensor<F>, n: number): Tensor<F>['data'] {
  const before = prod(x.shape.slice(0, n));
  const dim = x.shape[n];
  const after = prod(x.shape.slice(n + 1));
  if (before === 1) return x.data.slice() as Tensor<F>['data'];
  const out = alloc(x.dtype, x.data.length);
  // x[a, i, b] → out[i, a·after + b]: contiguous runs of `after` elements.
  const cols = before * after;
  const data = x.data;
  for (let a = 0; a < before; a++) {
    for (let i = 0; i < dim; i++) {
      const src = (a * dim + i) * after;
      const dst = i * cols + a * after;
      // Short runs by hand: a subarray per run costs more than the copy.
      if (after < 16) for (let b = 0; b < after; b++) out[dst + b] = data[src + b];
      else out.set(data.subarray(src, src + after), dst);
    }
  }
  return out;
}

/**
 * The tensor of shape `shape` whose mode-`mode` unfolding is `m` (the inverse of {@link unfold}).
 *
 * @example
 * const y = tensor.fold(tensor.unfold(x, 2), 2, x.shape); // y equals x
 */
export function fold<F extends FloatDType>(m: Tensor<F>, mode: number, shape: readonly number[]): Tensor<F> {
  tensorArg('fold', 'm', m, 2);
  const n = modeArg('fold', mode, shape.length);
  if (m.shape.length !== 2 || m.shape[0] !== shape[n] || m.shape[1] * m.shape[0] !== prod(shape)) {
    throw new LowrankError('E_SHAPE', `fold: a [${m.shape}] matrix is not the mode-${n} unfolding of a [${shape}] tensor`, { shape: m.shape });
  }
  return tensor(m.dtype, shape, foldData(m.dtype, m.data, n, shape));
}

/** The data of the tensor of `shape` whose mode-n unfolding is `data`. */
export function foldData<F extends FloatDType>(dtype: F, data: Tensor<F>['data'], n: number, shape: readonly number[]): Tensor<F>['data'] {
  const before = prod(shape.slice(0, n));
  const dim = shape[n];
  const after = prod(shape.slice(n + 1));
  if (before === 1) return data.slice() as Tensor<F>['data'];
  const out = alloc(dtype, data.length);
  const cols = before * after;
  for (let a = 0; a < before; a++) {
    for (let i = 0; i < dim; i++) {
      const src = i * cols + a * after;
      const dst = (a * dim + i) * after;
      if (after < 16) for (let b = 0; b < after; b++) out[dst + b] = data[src + b];
      else out.set(data.subarray(src, src + after), dst);
    }
  }
  return out;
}

/**
 * The same elements under another shape (row-major order kept; no copy). One dimension may be −1
 * and is then inferred.
 *
 * @example
 * const t = tensor.reshape(w, [16, 64, 16, 64]); // a 1024×1024 weight as an order-4 tensor
 */
export function reshape<F extends FloatDType>(x: Tensor<F>, shape: readonly number[]): Tensor<F> {
  const free = shape.filter((d) => d === -1).length;
  const known = prod(shape.filter((d) => d !== -1));
  if (free > 1 || shape.some((d) => !Number.isInteger(d) || (d < 1 && d !== -1))) {
    throw new LowrankError('E_SHAPE', `reshape: invalid shape [${shape}]`, { shape });
  }
  const total = x.data.length;
  const out = free === 1 ? shape.map((d) => (d === -1 ? total / known : d)) : [...shape];
  if (prod(out) !== total || out.some((d) => !Number.isInteger(d))) {
    throw new LowrankError('E_SHAPE', `reshape: [${x.shape}] (${total} elements) cannot be viewed as [${shape}]`, { shape: x.shape });
  }
  return tensor(x.dtype, out, x.data);
}

/**
 * x with its dimensions reordered: result dimension k is x's dimension perm[k] (numpy's
 * `transpose(x, perm)`); copies.
 */
export function permute<F extends FloatDType>(x: Tensor<F>, perm: readonly number[]): Tensor<F> {
  const order = x.shape.length;
  if (perm.length !== order || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new LowrankError('E_USAGE', `permute: [${perm}] is not a permutation of the ${order} dimensions`);
  }
  const shape = perm.map((p) => x.shape[p]);
  const srcStrides = new Array<number>(order);
  let s = 1;
  for (let k = order - 1; k >= 0; k--) {
    srcStrides[k] = s;
    s *= x.shape[k];
  }
  const strides = perm.map((p) => srcStrides[p]);
  const out = alloc(x.dtype, x.data.length);
  const idx = new Array<number>(order).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = x.data[src];
    // Increment the multi-index of the result (last fastest), moving src by the strides.
    for (let k = order - 1; k >= 0; k--) {
      idx[k]++;
      src += strides[k];
      if (idx[k] < shape[k]) break;
      src -= strides[k] * shape[k];
      idx[k] = 0;
    }
  }
  return tensor(x.dtype, shape, out);
}
