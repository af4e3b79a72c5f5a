/**
 * Whole-member inflation for .npz reading, on Node's zlib (C; several times fflate's speed on
 * highly compressed data). The output goes into one buffer of the declared size, so a member costs
 * its array once; output past that size stops inflation at once.
 */
import zlib from 'node:zlib';
import { FormatError, type ErrorContext } from '../core/errors.js';

/** zlib.crc32 arrived in Node 20.15; older Nodes take the caller's. */
const nativeCrc32: ((data: Uint8Array, value?: number) => number) | undefined = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

/**
 * The raw-deflate stream `input` inflated, with its CRC-32 (by `fallbackCrc32` where Node has none),
 * as a FormatError when it does not inflate or makes more than `size` bytes. Fewer bytes than
 * `size` come back as they are, for the caller's size check.
 */
export function inflateMember(input: Uint8Array, size: number, ctx: ErrorContext, fallbackCrc32: (data: Uint8Array) => number): { data: Uint8Array; crc: number } {
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
  if (data.buffer.byteLength > size + 1) data = new Uint8Array(data);
  return { data, crc: nativeCrc32 === undefined ? fallbackCrc32(data) : nativeCrc32(data) };
}
