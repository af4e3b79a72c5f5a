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
  const x = logits.data;
  // x − rowmax for every counted row (−∞ for ignored ones), then one backend exp over all of it.
  const shifted = tensor(logits.dtype, logits.shape).data;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const target = targets[i];
    const o = i * vocab;
    if (target === IGNORE) {
      shifted.fill(-Infinity, o, o + vocab);
      continue;
    }
    if (target < 0 || target >= vocab) throw new LowrankError('E_USAGE', `target id ${target} at row ${i} is outside the vocabulary (size ${vocab})`);
    count++;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) if (x[o + j] > max) max = x[o + j];
    for (let j = 0; j < vocab; j++) shifted[o + j] = x[o + j] - max;
  }
  const d = await backend().exp(shifted);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const target = targets[i];
    if (target === IGNORE) continue;
    const o = i * vocab;
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += d[o + j];
    loss += Math.log(sum) - shifted[o + target];
    const f = 1 / (sum * count);
    for (let j = 0; j < vocab; j++) d[o + j] *= f;
    d[o + target] -= 1 / count;
  }
  return { loss: count === 0 ? 0 : loss / count, count, dlogits: tensor(logits.dtype, logits.shape, d as typeof x) };
}
