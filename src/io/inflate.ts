/**
 * Inflating .npz members: with Node's zlib where it is there (C; several times fflate's speed on
 * highly compressed data), else with fflate. Whole members are inflated into one buffer of their
 * declared size, so a member costs its array once and output past that size stops inflation at
 * once; and zlib's CRC-32 where Node has it.
 */
import { Inflate } from 'fflate';
import { FormatError, type ErrorContext } from '../core/errors.js';
import { IN_NODE } from '../core/host.js';

const NODE_ZLIB = 'node:zlib';
const zlib = IN_NODE ? ((await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_ZLIB)) as typeof import('node:zlib')) : undefined;

/** zlib's CRC-32, continuing from `value`; undefined outside Node and before Node 20.15. */
export const zlibCrc32: ((data: Uint8Array, value?: number) => number) | undefined = typeof zlib?.crc32 === 'function' ? zlib.crc32 : undefined;

/**
 * The raw-deflate stream `input` inflated, as a FormatError when it does not inflate or makes more
 * than `size` bytes. Fewer bytes than `size` come back as they are, for the caller's size check.
 */
export function inflateMember(input: Uint8Array, size: number, ctx: ErrorContext): Uint8Array {
  if (zlib === undefined) return inflateStreamed(input, size, ctx);
  let data: Uint8Array;
  try {
    // One spare byte in the single output chunk: zlib then never starts a second one, and
    // maxOutputLength stops a member that runs past its size.
    data = zlib.inflateRawSync(input, { chunkSize: Math.max(64, size + 1), maxOutputLength: Math.max(1, size) });
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(size, ctx);
    throw new FormatError(`corrupt zip archive: the member does not inflate (${(e as Error).message})`, ctx, { cause: e });
  }
  // Node hands out small buffers from a shared pool; a member's array must own its buffer.
  return data.buffer.byteLength > size + 1 ? new Uint8Array(data) : data;
}

const tooLarge = (size: number, ctx: ErrorContext): FormatError => new FormatError(`corrupt zip archive: the member inflates to more than its declared ${size} bytes`, ctx);

/** {@link inflateMember} with fflate: its output chunks copied into the member's buffer, refused past `size`. */
function inflateStreamed(input: Uint8Array, size: number, ctx: ErrorContext): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  const inflater = new Inflate((chunk) => {
    if (at + chunk.length > size) throw tooLarge(size, ctx);
    out.set(chunk, at);
    at += chunk.length;
  });
  try {
    inflater.push(input, true);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`corrupt zip archive: the member does not inflate (${(e as Error).message})`, ctx, { cause: e });
  }
  return at === size ? out : out.subarray(0, at);
}
