/**
 * Softmax cross-entropy over rows of logits [N, V] against target ids (IGNORE = −100 leaves a row
 * out, as PyTorch's ignore_index does for masked prompt tokens): the mean over the counted rows of
 * −log softmax(logits)[target], and its gradient (softmax − onehot)/count.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

/** The target id of a row left out of the loss. */
export const IGNORE = -100;

export function crossEntropy<F extends FloatDType>(logits: Tensor<F>, targets: Int32Array): { loss: number; count: number; dlogits: Tensor<F> } {
  const [n, vocab] = logits.shape;
  if (targets.length !== n) throw new LowrankError('E_SHAPE', `${targets.length} targets for ${n} rows of logits`);
  const dlogits = tensor(logits.dtype, logits.shape);
  let count = 0;
  for (const t of targets) if (t !== IGNORE) count++;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const target = targets[i];
    if (target === IGNORE) continue;
    if (target < 0 || target >= vocab) throw new LowrankError('E_USAGE', `target id ${target} at row ${i} is outside the vocabulary (size ${vocab})`);
    const o = i * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits.data[o + j]);
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits.data[o + j] - max);
    const logSum = Math.log(sum) + max;
    loss += logSum - logits.data[o + target];
    for (let j = 0; j < vocab; j++) dlogits.data[o + j] = Math.exp(logits.data[o + j] - logSum) / count;
    dlogits.data[o + target] -= 1 / count;
  }
  return { loss: count === 0 ? 0 : loss / count, count, dlogits };
}
