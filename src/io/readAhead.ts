/**
 * Reading a model's weights one after another in a known order, each decoded into one of two
 * float32 buffers used in turn, the next one read while the caller works on this one (a streaming
 * tool otherwise waits for the disk and the decoding between two decompositions, and fresh
 * buffers cost a page fault per 4 KiB).
 */
import { numel, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { scratch } from '../core/scratch.js';
import type { Model } from './hf.js';

/**
 * A reader of `order`'s tensors: `read(name)` returns the tensor as float32 (float64 when stored
 * so), valid until the next call, and starts reading the name after it in `order`. Names asked
 * out of order are read then (after any read ahead has settled, so no buffer is shared).
 */
export function readAhead(model: Model, order: readonly string[]): (name: string) => Promise<Tensor<FloatDType>> {
  const take = scratch();
  const after = new Map(order.map((name, i) => [name, order[i + 1]]));
  let ahead: { name: string; slot: number; tensor: Promise<Tensor<FloatDType>> } | undefined;
  const start = (name: string, slot: number): Promise<Tensor<FloatDType>> => {
    const tensor = (async (): Promise<Tensor<FloatDType>> => {
      const e = model.entry(name);
      return e.dtype === 'f64' ? model.readAs(name, 'f64') : model.readAs(name, 'f32', { into: take(slot, numel(e.shape)) });
    })();
    tensor.catch(() => undefined); // a read ahead that nobody asks for must not surface as unhandled; the asker sees its error
    return tensor;
  };
  return async (name) => {
    let slot = 0;
    let tensor: Promise<Tensor<FloatDType>>;
    if (ahead?.name === name) {
      ({ slot, tensor } = ahead);
    } else {
      if (ahead !== undefined) {
        await ahead.tensor.catch(() => undefined);
        slot = ahead.slot;
      }
      tensor = start(name, slot);
    }
    ahead = undefined;
    const t = await tensor;
    const next = after.get(name);
    if (next !== undefined) ahead = { name: next, slot: 1 - slot, tensor: start(next, 1 - slot) };
    return t;
  };
}
