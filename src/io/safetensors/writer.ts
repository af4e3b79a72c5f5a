/**
 * Atomic safetensors writing. Tensors may be given lazily (a function returning the storage), so a
 * file can be written one tensor at a time without holding all of them.
 */
import { dtypeBytes, assertLittleEndian, type Storage } from '../../core/dtype.js';
import { LowrankError } from '../../core/errors.js';
import type { TensorSpec } from '../../core/tensor.js';
import { writeAll, writeFileAtomic, type WriteOptions } from '../atomic.js';
import { layoutHeader } from './header.js';

/** Bytes written between datasyncs of a large file. */
const SYNC_EVERY = 256 * 2 ** 20;

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
      // Each tensor's bytes are written while the next one is produced (a lazy source may be a
      // decomposition): one write in flight at a time, so at most two tensors are held.
      // (A failed write is marked handled at once and rethrown where it is awaited.) Every
      // SYNC_EVERY bytes a datasync is started, so the disk works while the next tensors are
      // produced instead of all at the final sync; it runs beside the next writes (one at a
      // time), so the producer waits for the disk only when the disk is the slower of the two
      // (a profile of the 1.1B PiSSA init showed it waiting on each sync).
      let unsynced = 0;
      let syncing: Promise<void> = Promise.resolve();
      const start = (bytes: Uint8Array, position: number): Promise<void> => {
        unsynced += bytes.length;
        const sync = unsynced >= SYNC_EVERY;
        if (sync) unsynced = 0;
        const p = writeAll(fh, bytes, position).then(async () => {
          if (!sync) return;
          await syncing;
          syncing = fh.datasync();
          syncing.catch(() => undefined);
        });
        p.catch(() => undefined);
        return p;
      };
      let inFlight = start(layout.prefix, 0);
      try {
        for (const { spec, begin, end } of layout.order) {
          const src = byName.get(spec.name) as TensorSource;
          const data = typeof src.data === 'function' ? await src.data() : src.data;
          if (data.byteLength !== end - begin || dtypeBytes(spec.dtype) !== data.BYTES_PER_ELEMENT) {
            throw new LowrankError('E_SHAPE', `storage of ${data.length} ${data.constructor.name} elements does not match dtype ${spec.dtype} and shape`, { file: path, tensor: spec.name, shape: spec.shape });
          }
          await inFlight;
          inFlight = start(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), layout.prefix.length + begin);
        }
      } finally {
        // Never leave a write or sync running on a handle about to be closed (a failed source included).
        await inFlight.catch(() => undefined);
        await syncing.catch(() => undefined);
      }
      await inFlight;
      await syncing;
    },
    opts,
  );
  return layout.fileSize;
}
