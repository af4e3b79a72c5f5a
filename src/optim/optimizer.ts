/**
 * The optimizer interface of the training loop: an optimizer owns the state of the parameters it
 * was given (by name) and exposes it as named arrays, so a checkpoint saves and restores any
 * optimizer without knowing what its arrays mean (AdamW's m and v; a low-rank optimizer's
 * projections).
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

/** A trained tensor, its gradient buffer and the name its state is keyed by. */
export interface NamedParam<F extends FloatDType = FloatDType> {
  readonly name: string;
  readonly param: Tensor<F>;
  readonly grad: Tensor<F>;
}

export interface Optimizer {
  readonly name: string;
  /** One update of every parameter from its gradient, at learning rate lr. */
  step(lr: number): void;
  /** Steps taken so far. */
  readonly steps: number;
  /** Every state array by key (`<param name>.<slot>`), live: a checkpoint writes them, a resume fills them. */
  stateArrays(): ReadonlyMap<string, Float64Array>;
  /** Sets the step count after the state arrays were restored. */
  restore(steps: number): void;
}
