/** Token embedding: rows of the table E [vocab, C] picked by token ids; backward scatter-adds. */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

/** out[i] = E[ids[i]], [N, C]. */
export function embeddingForward<F extends FloatDType>(table: Tensor<F>, ids: Int32Array): Tensor<F> {
  const [vocab, c] = table.shape;
  const out = tensor(table.dtype, [ids.length, c]);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= vocab) throw new LowrankError('E_USAGE', `token id ${id} at position ${i} is outside the vocabulary (size ${vocab})`);
    out.data.set(table.data.subarray(id * c, (id + 1) * c), i * c);
  }
  return out;
}

/** dE[ids[i]] += dout[i]. */
export function embeddingBackward<F extends FloatDType>(dtable: Tensor<F>, ids: Int32Array, dout: Tensor<F>): void {
  const c = dtable.shape[1];
  for (let i = 0; i < ids.length; i++) {
    const row = ids[i] * c;
    for (let j = 0; j < c; j++) dtable.data[row + j] += dout.data[i * c + j];
  }
}
