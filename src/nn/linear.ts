/**
 * Linear layer y = x·Wᵀ + b on rows x [N, in] with W [out, in] (PyTorch's layout; GPT-2's Conv1D
 * weights stored [in, out] are transposed at load). The base weight is frozen in adapter training:
 * the backward pass always returns dx and adds into dW / db only when their buffers are given.
 * An adapter hook adds its own term to y and takes its share of the gradient.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import { checkFinite } from '../linalg/check.js';
import { backend } from '../backend/index.js';
import { addInto } from './weights.js';

/** A trainable term added to a linear layer's output (LoRA, DoRA, ...). */
export interface LinearAdapter<F extends FloatDType> {
  /** The term to add to x·Wᵀ, [N, out]. */
  forward(x: Tensor<F>): Promise<Tensor<F>>;
  /** Accumulates the adapter's own gradients from dy and returns its contribution to dx. */
  backward(x: Tensor<F>, dy: Tensor<F>): Promise<Tensor<F>>;
}

export interface LinearParams<F extends FloatDType> {
  /** [out, in] */
  readonly weight: Tensor<F>;
  /** [out] */
  readonly bias?: Tensor<F>;
  readonly adapter?: LinearAdapter<F>;
}

export interface LinearGrads<F extends FloatDType> {
  weight?: Tensor<F>;
  bias?: Tensor<F>;
}

/**
 * x [N, k] times W [out, in]: transposed (x·Wᵀ, k = in) or not (dy·W, k = out). Only x is checked
 * finite here (a diverging activation stops with a clear error): the weights were checked once when
 * the model was loaded, and checking W at every call was half of a decoding step's time.
 */
async function timesWeight<F extends FloatDType>(x: Tensor<F>, w: Tensor<F>, transposed: boolean): Promise<Tensor<F>> {
  checkFinite('linear', 'the input', x.data);
  const [n, k] = x.shape;
  const [out, inF] = w.shape;
  if (k !== (transposed ? inF : out)) throw new LowrankError('E_SHAPE', `linear: input [${x.shape}] does not fit the weight [${w.shape}]`);
  const c = await backend().matmul({ rows: n, cols: k, data: x.data }, { rows: out, cols: inF, data: w.data }, false, transposed);
  return tensor(x.dtype, [n, transposed ? out : inF], c.data);
}

/** y = x·Wᵀ + b (+ adapter(x)). */
export async function linearForward<F extends FloatDType>(p: LinearParams<F>, x: Tensor<F>): Promise<Tensor<F>> {
  const y = await timesWeight(x, p.weight, true);
  const [n, out] = y.shape;
  if (p.bias !== undefined) for (let i = 0; i < n; i++) for (let j = 0; j < out; j++) y.data[i * out + j] += p.bias.data[j];
  if (p.adapter !== undefined) {
    const a = await p.adapter.forward(x);
    addInto(y, a);
  }
  return y;
}

/** dx = dy·W (+ the adapter's share); dW += dyᵀ·x and db += Σ_rows dy when those buffers are given. */
export async function linearBackward<F extends FloatDType>(p: LinearParams<F>, x: Tensor<F>, dy: Tensor<F>, grads: LinearGrads<F> = {}): Promise<Tensor<F>> {
  const dx = await timesWeight(dy, p.weight, false);
  if (grads.weight !== undefined) {
    const dw = await matmul(dy, x, { transA: true });
    addInto(grads.weight, dw);
  }
  if (grads.bias !== undefined) {
    const [n, out] = dy.shape;
    for (let i = 0; i < n; i++) for (let j = 0; j < out; j++) grads.bias.data[j] += dy.data[i * out + j];
  }
  if (p.adapter !== undefined) {
    const da = await p.adapter.backward(x, dy);
    addInto(dx, da);
  }
  return dx;
}

/** A zero tensor shaped like t (gradient buffers). */
export function zerosLike<F extends FloatDType>(t: Tensor<F>): Tensor<F> {
  return tensor(t.dtype, t.shape);
}
