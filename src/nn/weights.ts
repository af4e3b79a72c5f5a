/** What the model families share: weights by Hugging Face name, adapters by module, and sums. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { LinearAdapter, LinearParams } from './linear.js';

/** A model's parameters: weights by name, and the adapter of each linear module that has one. */
export interface ModelWeights<F extends FloatDType> {
  readonly weights: ReadonlyMap<string, Tensor<F>>;
  readonly adapters: Map<string, LinearAdapter<F>>;
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
  for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] + b.data[i];
  return out;
}
