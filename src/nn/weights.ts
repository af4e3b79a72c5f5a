/** What the model families share: weights by Hugging Face name, adapters by module, and sums. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { checkFinite } from '../linalg/check.js';
import type { LinearAdapter, LinearParams } from './linear.js';

/** A model's parameters: weights by name, and the adapter of each linear module that has one. */
export interface ModelWeights<F extends FloatDType> {
  readonly weights: ReadonlyMap<string, Tensor<F>>;
  readonly adapters: Map<string, LinearAdapter<F>>;
}

/**
 * A weight as loaded, checked finite once (E_NONFINITE naming the tensor and the folder): the
 * layers do not check their weights at every product.
 */
export function finiteWeight<T extends Tensor<FloatDType>>(model: { readonly path: string }, name: string, t: T): T {
  checkFinite('loading the model', `tensor ${name}`, t.data, { file: model.path });
  return t;
}

/** The weight of this name; E_NOT_FOUND when the model has none. */
export function weight<F extends FloatDType>(m: ModelWeights<F>, name: string): Tensor<F> {
  const t = m.weights.get(name);
  if (t === undefined) throw new LowrankError('E_NOT_FOUND', `missing tensor ${name}`);
  return t;
}

/** The linear layer `module`: its weight, its bias when `bias` and present, its adapter. */
export function linearOf<F extends FloatDType>(m: ModelWeights<F>, module: string, bias = true): LinearParams<F> {
  return { weight: weight(m, `${module}.weight`), bias: bias ? m.weights.get(`${module}.bias`) : undefined, adapter: m.adapters.get(module) };
}

/** a + b, a new tensor. */
export function sum<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>): Tensor<F> {
  const out = tensor(a.dtype, a.shape);
  const [o, x, y] = [out.data, a.data, b.data];
  for (let i = 0; i < o.length; i++) o[i] = x[i] + y[i];
  return out;
}

/**
 * a += b in place (residual and gradient sums). The arrays are read into locals: V8 then keeps
 * them in registers, where `a.data[i]` in the loop made the sum of a 512×768 block twice as slow.
 */
export function addInto<F extends FloatDType>(a: Tensor<F>, b: Tensor<F>): void {
  const [x, y] = [a.data, b.data];
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}
