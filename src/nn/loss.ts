/**
 * Softmax cross-entropy over rows of logits [N, V] against target ids (IGNORE = −100 leaves a row
 * out, as PyTorch's ignore_index does for masked prompt tokens): the mean over the counted rows of
 * −log softmax(logits)[target], and its gradient (softmax − onehot)/count.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';

/** The target id of a row left out of the loss. */
export const IGNORE = -100;

export async function crossEntropy<F extends FloatDType>(logits: Tensor<F>, targets: Int32Array): Promise<{ loss: number; count: number; dlogits: Tensor<F> }> {
  const [n, vocab] = logits.shape;
  if (targets.length !== n) throw new LowrankError('E_SHAPE', `${targets.length} targets for ${n} rows of logits`);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const target = targets[i];
    if (target === IGNORE) continue;
    if (target < 0 || target >= vocab) throw new LowrankError('E_USAGE', `target id ${target} at row ${i} is outside the vocabulary (size ${vocab})`);
    count++;
  }
  const { lossSum, dlogits } = await backend().crossEntropy({ rows: n, cols: vocab, data: logits.data }, targets, IGNORE);
  return { loss: count === 0 ? 0 : lossSum / count, count, dlogits: tensor(logits.dtype, logits.shape, dlogits) };
}
