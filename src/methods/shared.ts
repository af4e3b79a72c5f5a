/** State shared across layers (types.ts `Shared`): building it, and the empty one. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { Shared } from './types.js';

/** No shared state. */
export const NO_SHARED: Shared<never> = { tensors: {}, grads: {} };

/** Shared tensors with a zero gradient buffer for each trained role. */
export function sharedState<F extends FloatDType>(tensors: Readonly<Record<string, Tensor<F>>>, trained: readonly string[]): Shared<F> {
  return { tensors, grads: Object.fromEntries(trained.map((r) => [r, tensor(tensors[r].dtype, tensors[r].shape)])) };
}

/** The shared state a method's `prepare` made; E_INTERNAL when a caller did not pass it. */
export function needShared<F extends FloatDType>(shared: Shared<F> | undefined, method: string): Shared<F> {
  if (shared === undefined) throw new LowrankError('E_INTERNAL', `${method} needs its shared state (call prepare first and pass it)`);
  return shared;
}

/** The peft_type of lowrank's own adapter layout. */
export const LOWRANK_TYPE = 'LOWRANK';
