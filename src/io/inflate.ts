/**
 * Node's zlib for .npz reading (C; several times fflate's speed on highly compressed data): whole
 * members inflated into one buffer of their declared size, so a member costs its array once and
 * output past that size stops inflation at once; and zlib's CRC-32 where Node has it.
 */
import zlib from 'node:zlib';
import { FormatError, type ErrorContext } from '../core/errors.js';

/** zlib's CRC-32, continuing from `value`; undefined before Node 20.15. */
export const zlibCrc32: ((data: Uint8Array, value?: number) => number) | undefined = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

/**
 * The raw-deflate stream `input` inflated, as a FormatError when it does not inflate or makes more
 * than `size` bytes. Fewer bytes than `size` come back as they are, for the caller's size check.
 */
export function inflateMember(input: Uint8Array, size: number, ctx: ErrorContext): Uint8Array {
  let data: Uint8Array;
  try {
    // One spare byte in the single output chunk: zlib then never starts a second one, and
    // maxOutputLength stops a member that runs past its size.
    data = zlib.inflateRawSync(input, { chunkSize: Math.max(64, size + 1), maxOutputLength: Math.max(1, size) });
  } catch (e) {
    const tooLarge = (e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
    throw new FormatError(
      tooLarge ? `corrupt zip archive: the member inflates to more than its declared ${size} bytes` : `corrupt zip archive: the member does not inflate (${(e as Error).message})`,
      ctx,
      { cause: e },
    );
  }
  // Node hands out small buffers from a shared pool; a member's array must own its buffer.
  return data.buffer.byteLength > size + 1 ? new Uint8Array(data) : data;
}
