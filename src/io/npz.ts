/**
 * numpy's .npz archives: a zip file of .npy members, as `np.savez` (stored) and
 * `np.savez_compressed` (deflated) write them. The key of each array is its member name without
 * the `.npy` suffix, as in `np.load`.
 *
 * The zip container is read and written here (end record, zip64 end record and zip64 extra
 * fields, central directory, local headers, CRC-32). Whole members inflate through Node's zlib
 * (inflate.ts, for speed); fflate inflates members' first bytes and deflates. {@link encodeNpz} is
 * pure; {@link parseNpz} needs inflate.ts's zlib, which a browser build replaces.
 */
import { Inflate, deflateSync } from 'fflate';
import { FormatError, LowrankError } from '../core/errors.js';
import { MAX_ELEMENTS } from '../core/dtype.js';
import { inflateMember, zlibCrc32 } from './inflate.js';
import type { Tensor } from '../core/tensor.js';
import { writeAll, writeFileAtomic, type WriteOptions } from './atomic.js';
import { readBytes, withRegularFile } from './files.js';
import { IN_NODE } from '../core/host.js';
import { encodeNpy, npyHeaderEnd, NPY_HEADER_PROBE, parseNpy, parseNpyHeader, type NpyHeader } from './npy.js';

export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_END = 0x06054b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const STORED = 0;

/** Node's synchronous read, for walking an archive on disk without reading it whole (absent elsewhere). */
const NODE_FS_SYNC = 'node:fs';
const readSync = IN_NODE ? ((await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS_SYNC)) as typeof import('node:fs')).readSync : undefined;
const DEFLATED = 8;
/** General-purpose flag bit 11: the member name is UTF-8. */
const UTF8_NAMES = 0x800;
/** 1980-01-01 00:00 in MS-DOS form: a fixed time, so the same arrays give the same bytes. */
const DOS_DATE = (1 << 5) | 1;
const DOS_TIME = 0;

/** Options of {@link writeNpz}. */
export interface NpzWriteOptions extends WriteOptions {
  /** Deflate the members, as `np.savez_compressed` does. Default false: stored, as `np.savez`. */
  compress?: boolean;
}

// ---- reading ----------------------------------------------------------------------------------

/** Options of {@link readNpz} and {@link parseNpz}. */
export interface NpzReadOptions {
  /**
   * The most bytes the arrays read may declare uncompressed, summed over the archive's .npy
   * members; past it reading stops with an `E_LIMIT` error before anything is inflated or
   * allocated. Default {@link DEFAULT_NPZ_MAX_BYTES}; `Infinity` for no budget.
   */
  maxBytes?: number;
}

/**
 * The default budget of {@link NpzReadOptions.maxBytes}: 8 GiB. Deflate's 1032:1 ratio lets a
 * well-formed 8 MB archive declare 8 GiB, so without a budget a small file could ask for more
 * memory than the machine has; 8 GiB is more than any array file lowrank reads in practice needs.
 */
export const DEFAULT_NPZ_MAX_BYTES = 8 * 2 ** 30;

/** Deflate's largest possible ratio of output to input bytes (2 bits per 258-byte match). */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed bytes inflated per step when only a member's first bytes are wanted. */
const PREFIX_CHUNK = 1 << 10;
/** The largest central directory read (about a million members). */
const MAX_CENTRAL_BYTES = 1 << 26;

/**
 * Parses the bytes of an .npz archive into its arrays, keyed by member name without `.npy`.
 * Reads what np.savez and np.savez_compressed write (stored or deflated members, zip64 extra
 * fields). Members whose name does not end in `.npy` are skipped, so a zip with a readme beside
 * its arrays still loads. Every member read is checked against its CRC-32. Errors from a member
 * name the archive (`file`) and the array; byte offsets count from the archive's start in zip
 * errors, from the member's start in .npy errors.
 *
 * Decompression bombs are refused before they cost memory: members may not overlap, a member may
 * not declare more than deflate's 1032:1 ratio allows, its .npy header is checked before its data
 * is inflated, and output past the declared size is an error, never memory. Honest archives that
 * declare more than `opts.maxBytes` (default {@link DEFAULT_NPZ_MAX_BYTES}) in all are refused
 * before any member is read.
 *
 * @throws FormatError for a file that is not a zip, a corrupt zip, or a corrupt .npy member;
 *   LowrankError `E_LIMIT` for arrays that declare more than `maxBytes` in all, `E_USAGE` for a
 *   `maxBytes` that is not a number ≥ 0, `E_UNSUPPORTED` for encrypted members, compression other
 *   than deflate, members over 4 GiB, and the .npy members {@link parseNpy} refuses.
 */
export function parseNpz(bytes: Uint8Array, file: string, opts: NpzReadOptions = {}): Record<string, Tensor> {
  const maxBytes = opts.maxBytes ?? DEFAULT_NPZ_MAX_BYTES;
  if (!(maxBytes >= 0)) throw new LowrankError('E_USAGE', `maxBytes must be a number of bytes ≥ 0 (or Infinity), got ${String(opts.maxBytes)}`, { file });
  const zip = memoryZip(bytes, file);
  return eachArray(zip, maxBytes, (m, key) => {
    memberHeader(zip, m, key);
    // An inflated member is a buffer of this read's own: its array is used in place (peak ≈ 1x the
    // array, not 2x); a stored one is a part of `bytes`, which stays the caller's.
    return parseNpy(memberBytes(zip, m), file, key, { view: m.method !== STORED });
  });
}

/** Reads an .npz file. See {@link parseNpz} for what is accepted and what each error means. */
export async function readNpz(path: string, opts: NpzReadOptions = {}): Promise<Record<string, Tensor>> {
  return parseNpz(await readBytes(path), path, opts);
}

/**
 * The dtype and shape of every array in an .npz file, keyed as by {@link readNpz}, reading only the
 * central directory and the start of each member: the first bytes of a stored member, the first
 * few KiB inflated of a deflated one. Each .npy header is checked as strictly as by readNpz,
 * including that the shape needs exactly the member's declared size; CRCs are not checked, as
 * that needs the data.
 *
 * @throws LowrankError `E_IO` for a path that is not a regular file (checked before it is
 *   opened), `E_NOT_FOUND` for a missing one; otherwise as {@link parseNpz}.
 */
export async function readNpzHeaders(path: string): Promise<Record<string, NpyHeader>> {
  return withRegularFile(path, async (fh, size) => {
    // The archive is walked with synchronous reads (parseNpz's walk): Node's on its descriptor,
    // elsewhere (a browser's files) from the file read whole.
    const fd = 'fd' in fh && typeof fh.fd === 'number' ? fh.fd : undefined;
    if (fd === undefined || readSync === undefined) {
      const zip = memoryZip(await readBytes(path, DEFAULT_NPZ_MAX_BYTES), path);
      return eachArray(zip, Infinity, (m, key) => memberHeader(zip, m, key));
    }
    const zip: Zip = {
      file: path,
      size,
      read: (at, length, what) => {
        need(zip, at, length, what);
        const out = new Uint8Array(length);
        for (let got = 0; got < length; ) {
          const n = readSync(fd, out, got, length - got, at + got);
          if (n === 0) throw new FormatError(`the file shrank while the ${what} was read`, { file: path, offset: at + got });
          got += n;
        }
        return out;
      },
    };
    return eachArray(zip, Infinity, (m, key) => memberHeader(zip, m, key));
  });
}

function memoryZip(bytes: Uint8Array, file: string): Zip {
  const zip: Zip = {
    file,
    size: bytes.length,
    read: (at, length, what) => {
      need(zip, at, length, what);
      return bytes.subarray(at, at + length);
    },
  };
  return zip;
}

/** An archive read piece by piece: from memory, or (for the header reader) from an open file. */
interface Zip {
  file: string;
  size: number;
  /** `length` bytes from `at`; a FormatError naming `what` when they run past the end. */
  read(at: number, length: number, what: string): Uint8Array;
}

/** A member as the central directory describes it, with where its data starts. */
interface Member {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  dataStart: number;
}

/** Calls `read` on each .npy member, after checking the whole directory and the budget of declared bytes. */
function eachArray<T>(zip: Zip, maxBytes: number, read: (m: Member, key: string) => T): Record<string, T> {
  const out = new Map<string, T>();
  const members = centralDirectory(zip);
  let declared = 0;
  for (const m of members) if (m.name.endsWith('.npy')) declared += m.size;
  if (declared > maxBytes) {
    throw new LowrankError('E_LIMIT', `the arrays declare ${declared} bytes uncompressed, more than the ${maxBytes} allowed (maxBytes)`, { file: zip.file });
  }
  for (const m of members) {
    if (!m.name.endsWith('.npy')) continue;
    const key = m.name.slice(0, -'.npy'.length);
    if (out.has(key)) throw new FormatError(`the archive has two members named '${m.name}'`, { file: zip.file });
    checkMember(zip, m);
    out.set(key, read(m, key));
  }
  return Object.fromEntries(out);
}

/** Throws unless `length` bytes from `at` lie inside the archive. */
function need(zip: Zip, at: number, length: number, what: string): void {
  if (at < 0 || at + length > zip.size) {
    throw new FormatError(`corrupt zip archive: the ${what} runs past the end of the file`, { file: zip.file, offset: at });
  }
}

function le(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(zip: Zip, view: DataView, at: number, base: number, what: string): number {
  if (at + 8 > view.byteLength) throw new FormatError(`corrupt zip archive: the ${what} is cut short`, { file: zip.file, offset: base + at });
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`corrupt zip archive: impossible 64-bit value in the ${what}`, { file: zip.file, offset: base + at });
  return Number(v);
}

/**
 * Every member, from the central directory (found through the end record, or its zip64 form),
 * each with its local header checked. Members must not overlap each other or the directory.
 */
function centralDirectory(zip: Zip): Member[] {
  const tailStart = Math.max(0, zip.size - 22 - 0xffff - 20);
  const tail = le(zip.read(tailStart, zip.size - tailStart, 'end record'));
  const end = findEndRecord(zip, tail);
  let count = tail.getUint16(end + 10, true);
  let size = tail.getUint32(end + 12, true);
  let offset = tail.getUint32(end + 16, true);
  if (end >= 20 && tail.getUint32(end - 20, true) === SIG_ZIP64_LOCATOR) {
    const at = u64(zip, tail, end - 12, tailStart, 'zip64 end locator');
    const rec = le(zip.read(at, 56, 'zip64 end record'));
    if (rec.getUint32(0, true) !== SIG_ZIP64_END) throw new FormatError('corrupt zip archive: bad zip64 end record', { file: zip.file, offset: at });
    count = u64(zip, rec, 32, at, 'zip64 end record');
    size = u64(zip, rec, 40, at, 'zip64 end record');
    offset = u64(zip, rec, 48, at, 'zip64 end record');
  }
  if (size > MAX_CENTRAL_BYTES) throw new LowrankError('E_UNSUPPORTED', `central directories over ${MAX_CENTRAL_BYTES} bytes are not read`, { file: zip.file, offset });
  if (count * 46 > size) throw new FormatError(`corrupt zip archive: ${count} members cannot fit a ${size}-byte central directory`, { file: zip.file, offset });
  const cd = zip.read(offset, size, 'central directory');
  const members: Member[] = [];
  for (let i = 0, at = 0; i < count; i++) {
    const { member, next } = centralEntry(zip, cd, at, offset);
    members.push(member);
    at = next;
  }
  checkLayout(zip, members, offset);
  return members;
}

/** The end-of-central-directory record in the archive's tail: its last 22 bytes, or earlier when a comment follows. */
function findEndRecord(zip: Zip, tail: DataView): number {
  for (let at = tail.byteLength - 22; at >= 0; at--) {
    if (tail.getUint32(at, true) === SIG_END) return at;
  }
  throw new FormatError('not a zip archive (no end-of-central-directory record); an .npz file is a zip', { file: zip.file });
}

/** The entry at `at` in the central directory `cd`, which starts at byte `base` of the archive. */
function centralEntry(zip: Zip, cd: Uint8Array, at: number, base: number): { member: Member; next: number } {
  const view = le(cd);
  const corrupt = (why: string): never => {
    throw new FormatError(`corrupt zip archive: ${why}`, { file: zip.file, offset: base + at });
  };
  if (at + 46 > cd.length) corrupt('the central directory is cut short');
  if (view.getUint32(at, true) !== SIG_CENTRAL) corrupt('bad central directory entry');
  const nameLength = view.getUint16(at + 28, true);
  const extraLength = view.getUint16(at + 30, true);
  const next = at + 46 + nameLength + extraLength + view.getUint16(at + 32, true);
  if (next > cd.length) corrupt('the central directory is cut short');
  const member: Member = {
    name: new TextDecoder().decode(cd.subarray(at + 46, at + 46 + nameLength)),
    flags: view.getUint16(at + 8, true),
    method: view.getUint16(at + 10, true),
    crc: view.getUint32(at + 16, true),
    compressedSize: view.getUint32(at + 20, true),
    size: view.getUint32(at + 24, true),
    localOffset: view.getUint32(at + 42, true),
    dataStart: 0,
  };
  applyZip64Extra(zip, member, view, at + 46 + nameLength, extraLength, base);
  const local = le(zip.read(member.localOffset, 30, 'local header'));
  if (local.getUint32(0, true) !== SIG_LOCAL) {
    throw new FormatError('corrupt zip archive: no local header where the central directory points', { file: zip.file, tensor: member.name, offset: member.localOffset });
  }
  member.dataStart = member.localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
  return { member, next };
}

/** The zip64 extra field (id 1) holds, in order, each of these that is 0xffffffff in the entry. */
function applyZip64Extra(zip: Zip, m: Member, view: DataView, start: number, length: number, base: number): void {
  for (let at = start; at + 4 <= start + length; at += 4 + view.getUint16(at + 2, true)) {
    if (view.getUint16(at, true) !== 1) continue;
    let field = at + 4;
    const next = (): number => {
      field += 8;
      return u64(zip, view, field - 8, base, 'zip64 extra field');
    };
    if (m.size === 0xffffffff) m.size = next();
    if (m.compressedSize === 0xffffffff) m.compressedSize = next();
    if (m.localOffset === 0xffffffff) m.localOffset = next();
  }
}

/**
 * Refuses members that overlap (several directory entries pointing at one member's data would
 * inflate it many times) or run into the central directory at `centralStart`.
 */
function checkLayout(zip: Zip, members: readonly Member[], centralStart: number): void {
  const sorted = [...members].sort((a, b) => a.localOffset - b.localOffset);
  sorted.forEach((m, i) => {
    const end = m.dataStart + m.compressedSize;
    const limit = i + 1 < sorted.length ? sorted[i + 1].localOffset : centralStart;
    if (end > limit) {
      throw new FormatError(`corrupt zip archive: member '${m.name}' overlaps ${i + 1 < sorted.length ? `member '${sorted[i + 1].name}'` : 'the central directory'}`, { file: zip.file, offset: limit });
    }
  });
}

/** Refuses what cannot be read, and sizes no honest member could have, before anything is inflated. */
function checkMember(zip: Zip, m: Member): void {
  const ctx = { file: zip.file, tensor: m.name, offset: m.localOffset };
  if ((m.flags & 1) !== 0) throw new LowrankError('E_UNSUPPORTED', 'encrypted zip members are not supported', ctx);
  if (m.method !== STORED && m.method !== DEFLATED) {
    throw new LowrankError('E_UNSUPPORTED', `zip compression method ${m.method} is not supported (numpy writes 0, stored, and 8, deflate)`, ctx);
  }
  const most = m.method === STORED ? m.compressedSize : m.compressedSize * MAX_DEFLATE_RATIO + 1024;
  if (m.size > most || (m.method === STORED && m.size !== most)) {
    throw new FormatError(`corrupt zip archive: ${m.compressedSize} ${m.method === STORED ? 'stored' : 'deflated'} bytes cannot hold the declared ${m.size}`, ctx);
  }
}

/** The .npy header at the start of a member, without reading the rest (see {@link parseNpyHeader}). */
function memberHeader(zip: Zip, m: Member, key: string): NpyHeader {
  const prefix = (n: number): Uint8Array =>
    m.method === STORED ? zip.read(m.dataStart, Math.min(n, m.size), `data of member '${m.name}'`) : inflatePrefix(zip, m, Math.min(n, m.size));
  const head = prefix(NPY_HEADER_PROBE);
  const end = npyHeaderEnd(head, zip.file, key);
  return parseNpyHeader(end > head.length ? prefix(end) : head, m.size, zip.file, key);
}

/** A member's uncompressed bytes, checked against its size and CRC-32. */
function memberBytes(zip: Zip, m: Member): Uint8Array {
  const ctx = { file: zip.file, tensor: m.name, offset: m.dataStart };
  if (m.size > MAX_ELEMENTS) throw new LowrankError('E_UNSUPPORTED', `members over ${MAX_ELEMENTS} bytes are not read into memory`, ctx);
  const stored = zip.read(m.dataStart, m.compressedSize, `data of member '${m.name}'`);
  const data = m.method === STORED ? stored : inflateMember(stored, m.size, ctx);
  if (data.length !== m.size || memberCrc(data) !== m.crc) {
    throw new FormatError('corrupt zip archive: the member fails its size or CRC-32 check', ctx);
  }
  return data;
}

/**
 * Inflates the first `limit` bytes of a member, a piece at a time, stopping once they are out (the
 * header readers read members from a file, not memory).
 */
function inflatePrefix(zip: Zip, m: Member, limit: number): Uint8Array {
  const ctx = { file: zip.file, tensor: m.name, offset: m.dataStart };
  const out = new Uint8Array(limit);
  let filled = 0;
  const inflater = new Inflate((chunk) => {
    const n = Math.min(chunk.length, limit - filled);
    out.set(chunk.subarray(0, n), filled);
    filled += n;
  });
  try {
    for (let at = 0; at < m.compressedSize && filled < limit; at += PREFIX_CHUNK) {
      const n = Math.min(PREFIX_CHUNK, m.compressedSize - at);
      inflater.push(zip.read(m.dataStart + at, n, `data of member '${m.name}'`), at + n === m.compressedSize);
    }
  } catch (e) {
    if (e instanceof LowrankError) throw e;
    throw new FormatError(`corrupt zip archive: the member does not inflate (${(e as Error).message})`, ctx, { cause: e });
  }
  return out.subarray(0, filled);
}

let crcTables: Int32Array | undefined;

/** The CRC-32 of a whole member: zlib's where Node has it (C), else {@link crc32}. */
function memberCrc(bytes: Uint8Array): number {
  return zlibCrc32 === undefined ? crc32(bytes) : zlibCrc32(bytes);
}

/**
 * CRC-32 (the zip/zlib polynomial), continuing from `crc`, in JavaScript (readers use zlib's where
 * Node has it). Slicing-by-8: eight bytes per step
 * through eight tables (table k advances a byte's CRC by k more zero bytes), some 4x the speed of a
 * byte at a time.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = (crcTables ??= makeCrcTables());
  let c = ~crc;
  let i = 0;
  for (const end = bytes.length - 8; i <= end; i += 8) {
    const a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ c;
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c =
      t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
      t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^ t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function makeCrcTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
  }
  return t;
}

// ---- writing ----------------------------------------------------------------------------------

/**
 * The bytes of an .npz archive holding `arrays`, each as member `<key>.npy`, stored or (with
 * `compress`) deflated at zlib's default level 6, like np.savez / np.savez_compressed. Member
 * times are fixed at 1980-01-01 so the output depends only on the arrays.
 *
 * @throws LowrankError as {@link encodeNpy} (e.g. `E_UNSUPPORTED` for bf16), and
 *   `E_UNSUPPORTED` for an archive that would need zip64 (over 4 GiB or 65535 arrays).
 */
export function encodeNpz(arrays: Readonly<Record<string, Tensor>>, opts: { compress?: boolean } = {}): Uint8Array {
  const pieces = npzPieces(arrays, opts.compress ?? false);
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Writes arrays as an .npz file, atomically (temporary file, then rename). An existing file is an
 * `E_EXISTS` error unless `opts.overwrite`. Errors as {@link encodeNpz}.
 */
export async function writeNpz(path: string, arrays: Readonly<Record<string, Tensor>>, opts: NpzWriteOptions = {}): Promise<void> {
  const pieces = npzPieces(arrays, opts.compress ?? false);
  await writeFileAtomic(
    path,
    async (fh) => {
      let at = 0;
      for (const p of pieces) {
        await writeAll(fh, p, at);
        at += p.length;
      }
    },
    opts,
  );
}

/** A member ready to write: name, CRC-32 and sizes of the .npy bytes, and the bytes as stored. */
/** A member as written: its name's bytes, method, CRC-32 and size of the inflated bytes, and the bytes stored. */
export interface ZipMember {
  name: Uint8Array;
  method: number;
  crc: number;
  size: number;
  stored: Uint8Array;
}

/** The archive as a list of byte pieces: local header and data per member, central directory, end record. */
function npzPieces(arrays: Readonly<Record<string, Tensor>>, compress: boolean): Uint8Array[] {
  const members = Object.entries(arrays).map(([key, t]) => npzMember(key, t, compress));
  const pieces: Uint8Array[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const m of members) {
    offsets.push(offset);
    pieces.push(zipHeader('local', m, 0), m.stored);
    offset += 30 + m.name.length + m.stored.length;
  }
  const central = members.map((m, i) => zipHeader('central', m, offsets[i]));
  const centralSize = central.reduce((n, c) => n + c.length, 0);
  if (members.length > 0xffff || offset + centralSize > 0xffffffff) {
    throw new LowrankError('E_UNSUPPORTED', 'an .npz archive over 4 GiB or 65535 arrays would need zip64, which is not written; use safetensors');
  }
  pieces.push(...central, endRecord(members.length, centralSize, offset));
  return pieces;
}

function npzMember(key: string, t: Tensor, compress: boolean): ZipMember {
  const npy = encodeNpy(t, key);
  const name = new TextEncoder().encode(`${key}.npy`);
  if (name.length > 0xffff) throw new LowrankError('E_USAGE', 'array name is too long for a zip member name', { tensor: key });
  const stored = compress ? deflateSync(npy, { level: 6 }) : npy;
  return { name, method: compress ? DEFLATED : STORED, crc: memberCrc(npy), size: npy.length, stored };
}

/**
 * A local header (30 bytes + name + extra) or central directory entry (46 bytes + name + extra).
 * From "version needed" to the extra-field length the two share one layout, 2 bytes later in the
 * central entry. (The fuzzer builds its archives with these too.)
 */
export function zipHeader(kind: 'local' | 'central', m: ZipMember, localOffset: number, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const fixed = kind === 'local' ? 30 : 46;
  const out = new Uint8Array(fixed + m.name.length + extra.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, kind === 'local' ? SIG_LOCAL : SIG_CENTRAL, true);
  const s = kind === 'local' ? 4 : 6;
  if (kind === 'central') v.setUint16(4, 20, true); // version made by: 2.0, MS-DOS
  v.setUint16(s, 20, true); // version needed: 2.0
  v.setUint16(s + 2, UTF8_NAMES, true);
  v.setUint16(s + 4, m.method, true);
  v.setUint16(s + 6, DOS_TIME, true);
  v.setUint16(s + 8, DOS_DATE, true);
  v.setUint32(s + 10, m.crc, true);
  v.setUint32(s + 14, m.stored.length, true);
  v.setUint32(s + 18, m.size, true);
  v.setUint16(s + 22, m.name.length, true);
  v.setUint16(s + 24, extra.length, true);
  if (kind === 'central') v.setUint32(42, localOffset, true);
  out.set(m.name, fixed);
  out.set(extra, fixed + m.name.length);
  return out;
}

export function endRecord(count: number, centralSize: number, centralOffset: number): Uint8Array {
  const out = new Uint8Array(22);
  const v = new DataView(out.buffer);
  v.setUint32(0, SIG_END, true);
  v.setUint16(8, count, true);
  v.setUint16(10, count, true);
  v.setUint32(12, centralSize, true);
  v.setUint32(16, centralOffset, true);
  return out;
}
