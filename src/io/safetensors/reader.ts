/**
 * Streamed safetensors reading: opening reads only the header; each tensor is read by offset,
 * whole or in chunks, so a file larger than memory can be processed tensor by tensor.
 */
import { FormatError, LowrankError, fromSystemError } from '../../core/errors.js';
import { assertLittleEndian, decodeInto, dtypeBytes, makeStorage, viewStorage, type FloatDType, type Storage } from '../../core/dtype.js';
import { tensor, type Tensor } from '../../core/tensor.js';
import { registerInput, releaseInput } from '../atomic.js';
import { regularFileSize } from '../files.js';
import { fs, type FileHandle } from '../fs.js';
import { parseHeader, parseHeaderLength, type SafetensorsEntry, type SafetensorsHeader } from './header.js';

/** Bytes read per system call when streaming. */
export const DEFAULT_CHUNK_BYTES = 16 << 20;

/** An open safetensors file. Close it when done. */
export interface SafetensorsFile extends SafetensorsHeader {
  readonly path: string;
  readonly fileSize: number;
  /** The entry of a tensor; throws `E_NOT_FOUND` naming the file when absent. */
  entry(name: string): SafetensorsEntry;
  has(name: string): boolean;
  /** The tensor as stored (f16/bf16/fp8 as raw bits). */
  read(name: string): Promise<Tensor>;
  /**
   * The tensor decoded to f32 or f64, read in chunks so only the output is held whole. `into`
   * reuses a caller's array of the right length instead of allocating one (streaming many tensors
   * then holds one output, not two).
   */
  readAs<F extends FloatDType>(name: string, dtype: F, opts?: { into?: Storage<F> }): Promise<Tensor<F>>;
  /** The tensor's raw bytes in pieces of at most `chunkBytes` (the buffer is reused: copy what you keep). */
  chunks(name: string, chunkBytes?: number): AsyncGenerator<Uint8Array>;
  close(): Promise<void>;
}

/** Opens a safetensors file and validates its header. Reads nothing else. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  assertLittleEndian();
  await regularFileSize(path);
  let fh: FileHandle;
  try {
    fh = await fs().open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'opening', path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new LowrankError('E_IO', 'not a regular file', { file: path });
    const size = st.size;
    const first8 = new Uint8Array(Math.min(8, size));
    await readExactly(fh, first8, 0, path, 'header length');
    const n = parseHeaderLength(first8, size, path);
    const json = new Uint8Array(n);
    await readExactly(fh, json, 8, path, 'header');
    const header = parseHeader(json, size, path);
    const real = await registerInput(path);
    return makeFile(path, size, header, fh, real);
  } catch (e) {
    await fh.close();
    throw fromSystemError(e, 'reading', path);
  }
}

function makeFile(path: string, fileSize: number, header: SafetensorsHeader, fh: FileHandle, real: string): SafetensorsFile {
  let closed = false;
  let staging: Uint8Array[] | undefined;
  let stagingBusy = false;
  const entry = (name: string): SafetensorsEntry => {
    const i = header.indexOf(name);
    if (i < 0) throw new LowrankError('E_NOT_FOUND', 'no such tensor in this file', { file: path, tensor: name });
    return header.entries[i];
  };
  const live = (): void => {
    if (closed) throw new LowrankError('E_USAGE', 'file is closed', { file: path });
  };
  return {
    ...header,
    path,
    fileSize,
    entry,
    has: (name) => header.indexOf(name) >= 0,
    async read(name) {
      live();
      const e = entry(name);
      const n = e.byteLength / dtypeBytes(e.dtype);
      const data = makeStorage(e.dtype, n);
      await readExactly(fh, new Uint8Array(data.buffer, 0, e.byteLength), e.byteOffset, path, name);
      return tensor(e.dtype, e.shape, data);
    },
    async readAs(name, dtype, opts = {}) {
      live();
      const e = entry(name);
      const out = tensor(dtype, e.shape, opts.into);
      if (e.dtype === dtype) {
        await readExactly(fh, new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength), e.byteOffset, path, name);
        return out;
      }
      // Two staging buffers kept for the file's life (fresh ones while another read uses them).
      const shared = !stagingBusy;
      const bufs = shared ? (staging ??= [new Uint8Array(DEFAULT_CHUNK_BYTES), new Uint8Array(DEFAULT_CHUNK_BYTES)]) : undefined;
      stagingBusy ||= shared;
      try {
        await decodeChunked(fh, e, out.data, bufs ?? [new Uint8Array(DEFAULT_CHUNK_BYTES), new Uint8Array(DEFAULT_CHUNK_BYTES)], path);
      } finally {
        if (shared) stagingBusy = false;
      }
      return out;
    },
    async *chunks(name, chunkBytes = DEFAULT_CHUNK_BYTES) {
      live();
      const e = entry(name);
      const buf = new Uint8Array(Math.min(Math.max(1, chunkBytes), Math.max(1, e.byteLength)));
      for (let off = 0; off < e.byteLength; off += buf.length) {
        const len = Math.min(buf.length, e.byteLength - off);
        await readExactly(fh, buf.subarray(0, len), e.byteOffset + off, path, name);
        yield buf.subarray(0, len);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      releaseInput(real);
      await fh.close();
    },
  };
}

/** Reads a tensor chunk by chunk into `bufs` (the next chunk is read while this one is decoded) and decodes into `out`. */
async function decodeChunked(fh: FileHandle, e: SafetensorsEntry, out: Float32Array | Float64Array, bufs: Uint8Array[], path: string): Promise<void> {
  const inBytes = dtypeBytes(e.dtype);
  const step = DEFAULT_CHUNK_BYTES - (DEFAULT_CHUNK_BYTES % inBytes);
  const chunks = Math.ceil(e.byteLength / step);
  const readAt = async (k: number): Promise<number> => {
    const len = Math.min(step, e.byteLength - k * step);
    await readExactly(fh, bufs[k % 2].subarray(0, len), e.byteOffset + k * step, path, e.name);
    return len;
  };
  let pending = chunks > 0 ? readAt(0) : undefined;
  for (let k = 0; k < chunks; k++) {
    const len = await (pending as Promise<number>);
    pending = k + 1 < chunks ? readAt(k + 1) : undefined;
    const first = (k * step) / inBytes;
    decodeInto(e.dtype, viewStorage(e.dtype, bufs[k % 2].buffer, 0, len / inBytes), out.subarray(first, first + len / inBytes));
  }
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, file: string, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new FormatError(`file ended while reading ${what} (it shrank after it was opened?)`, { file, offset: position + done });
    }
    done += bytesRead;
  }
}
