/**
 * Atomic safetensors writing. Tensors may be given lazily (a function returning the storage), so a
 * file can be written one tensor at a time without holding all of them.
 */
import { dtypeBytes, assertLittleEndian, type Storage } from '../../core/dtype.js';
import { LowrankError } from '../../core/errors.js';
import type { TensorSpec } from '../../core/tensor.js';
import { writeAll, writeFileAtomic, type WriteOptions } from '../atomic.js';
import { layoutHeader } from './header.js';

/** A tensor to write: its spec and its storage, or a function that produces the storage when needed. */
export interface TensorSource extends TensorSpec {
  readonly data: Storage | (() => Storage | Promise<Storage>);
}

/** Options of {@link writeSafetensors}. */
export interface SafetensorsWriteOptions extends WriteOptions {
  /** String key/value pairs stored under `__metadata__`. */
  metadata?: Readonly<Record<string, string>>;
}

/**
 * Writes a safetensors file atomically (temporary file in the same folder, then rename). Returns
 * the file size.
 */
export async function writeSafetensors(path: string, tensors: Iterable<TensorSource>, opts: SafetensorsWriteOptions = {}): Promise<number> {
  assertLittleEndian();
  const list = [...tensors];
  const layout = layoutHeader(list, opts.metadata, path);
  const byName = new Map(list.map((t) => [t.name, t]));
  await writeFileAtomic(
    path,
    async (fh) => {
      await writeAll(fh, layout.prefix, 0);
      for (const { spec, begin, end } of layout.order) {
        const src = byName.get(spec.name) as TensorSource;
        const data = typeof src.data === 'function' ? await src.data() : src.data;
        if (data.byteLength !== end - begin || dtypeBytes(spec.dtype) !== data.BYTES_PER_ELEMENT) {
          throw new LowrankError('E_SHAPE', `storage of ${data.length} ${data.constructor.name} elements does not match dtype ${spec.dtype} and shape`, { file: path, tensor: spec.name, shape: spec.shape });
        }
        await writeAll(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), layout.prefix.length + begin);
      }
    },
    opts,
  );
  return layout.fileSize;
}
