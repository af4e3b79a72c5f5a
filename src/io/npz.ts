/**
 * numpy's .npz archives: a zip file of .npy members, as `np.savez` (stored) and
 * `np.savez_compressed` (deflated) write them. The key of each array is its member name without
 * the `.npy` suffix, as in `np.load`.
 *
 * The zip container is read and written here (end record, zip64 end record and zip64 extra
 * fields, central directory, local headers, CRC-32); fflate only inflates and deflates.
 * {@link parseNpz} and {@link encodeNpz} are pure and work in browsers.
 */
import { deflateSync, inflateSync } from 'fflate';
import { FormatError, LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { writeAll, writeFileAtomic, type WriteOptions } from './atomic.js';
import { readBytes } from './files.js';
import { encodeNpy, parseNpy } from './npy.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const STORED = 0;
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

/**
 * Parses the bytes of an .npz archive into its arrays, keyed by member name without `.npy`.
 * Reads what np.savez and np.savez_compressed write (stored or deflated members, zip64 extra
 * fields). Members whose name does not end in `.npy` are skipped, so a zip with a readme beside
 * its arrays still loads. Every member read is checked against its CRC-32. Errors from a member
 * name the archive (`file`) and the array; their byte offsets count from the member's start.
 *
 * @throws FormatError for a file that is not a zip, a corrupt zip, or a corrupt .npy member;
 *   LowrankError `E_UNSUPPORTED` for encrypted members, compression other than deflate, and
 *   the .npy members {@link parseNpy} refuses.
 */
export function parseNpz(bytes: Uint8Array, file: string): Record<string, Tensor> {
  const zip: Zip = { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), file };
  const arrays = new Map<string, Tensor>();
  for (const m of centralDirectory(zip)) {
    if (!m.name.endsWith('.npy')) continue;
    const key = m.name.slice(0, -'.npy'.length);
    if (arrays.has(key)) throw new FormatError(`the archive has two members named '${m.name}'`, { file });
    arrays.set(key, parseNpy(memberData(zip, m), file, key));
  }
  return Object.fromEntries(arrays);
}

/** Reads an .npz file. See {@link parseNpz} for what is accepted and what each error means. */
export async function readNpz(path: string): Promise<Record<string, Tensor>> {
  return parseNpz(await readBytes(path), path);
}

interface Zip {
  bytes: Uint8Array;
  view: DataView;
  file: string;
}

/** A member as the central directory describes it. */
interface Member {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Throws unless `length` bytes from `at` lie inside the archive. */
function need(zip: Zip, at: number, length: number, what: string): void {
  if (at < 0 || at + length > zip.bytes.length) {
    throw new FormatError(`corrupt zip archive: the ${what} runs past the end of the file`, { file: zip.file, offset: at });
  }
}

function u64(zip: Zip, at: number, what: string): number {
  need(zip, at, 8, what);
  const v = zip.view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`corrupt zip archive: impossible 64-bit value in the ${what}`, { file: zip.file, offset: at });
  return Number(v);
}

/** Every member, from the central directory (found through the end record, or its zip64 form). */
function centralDirectory(zip: Zip): Member[] {
  const end = findEndRecord(zip);
  const { view } = zip;
  let count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  const locator = end - 20;
  if (locator >= 0 && view.getUint32(locator, true) === SIG_ZIP64_LOCATOR) {
    const at = u64(zip, locator + 8, 'zip64 end locator');
    need(zip, at, 56, 'zip64 end record');
    if (view.getUint32(at, true) !== SIG_ZIP64_END) throw new FormatError('corrupt zip archive: bad zip64 end record', { file: zip.file, offset: at });
    count = u64(zip, at + 32, 'zip64 end record');
    offset = u64(zip, at + 48, 'zip64 end record');
  }
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    const { member, next } = centralEntry(zip, offset);
    members.push(member);
    offset = next;
  }
  return members;
}

/** The end-of-central-directory record: the last 22 bytes, or earlier when a comment follows. */
function findEndRecord(zip: Zip): number {
  const last = zip.bytes.length - 22;
  for (let at = last; at >= 0 && at >= last - 0xffff; at--) {
    if (zip.view.getUint32(at, true) === SIG_END) return at;
  }
  throw new FormatError('not a zip archive (no end-of-central-directory record); an .npz file is a zip', { file: zip.file });
}

function centralEntry(zip: Zip, at: number): { member: Member; next: number } {
  const { view, bytes } = zip;
  need(zip, at, 46, 'central directory');
  if (view.getUint32(at, true) !== SIG_CENTRAL) throw new FormatError('corrupt zip archive: bad central directory entry', { file: zip.file, offset: at });
  const nameLength = view.getUint16(at + 28, true);
  const extraLength = view.getUint16(at + 30, true);
  const commentLength = view.getUint16(at + 32, true);
  need(zip, at + 46, nameLength + extraLength + commentLength, 'central directory');
  const member: Member = {
    name: new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength)),
    flags: view.getUint16(at + 8, true),
    method: view.getUint16(at + 10, true),
    crc: view.getUint32(at + 16, true),
    compressedSize: view.getUint32(at + 20, true),
    size: view.getUint32(at + 24, true),
    localOffset: view.getUint32(at + 42, true),
  };
  applyZip64Extra(zip, member, at + 46 + nameLength, extraLength);
  return { member, next: at + 46 + nameLength + extraLength + commentLength };
}

/** The zip64 extra field (id 1) holds, in order, each of these that is 0xffffffff in the entry. */
function applyZip64Extra(zip: Zip, m: Member, start: number, length: number): void {
  for (let at = start; at + 4 <= start + length; at += 4 + zip.view.getUint16(at + 2, true)) {
    if (zip.view.getUint16(at, true) !== 1) continue;
    let field = at + 4;
    const next = (): number => {
      field += 8;
      return u64(zip, field - 8, 'zip64 extra field');
    };
    if (m.size === 0xffffffff) m.size = next();
    if (m.compressedSize === 0xffffffff) m.compressedSize = next();
    if (m.localOffset === 0xffffffff) m.localOffset = next();
  }
}

/** A member's uncompressed bytes, checked against its size and CRC-32. */
function memberData(zip: Zip, m: Member): Uint8Array {
  const ctx = { file: zip.file, tensor: m.name };
  if ((m.flags & 1) !== 0) throw new LowrankError('E_UNSUPPORTED', 'encrypted zip members are not supported', ctx);
  if (m.method !== STORED && m.method !== DEFLATED) {
    throw new LowrankError('E_UNSUPPORTED', `zip compression method ${m.method} is not supported (numpy writes 0, stored, and 8, deflate)`, ctx);
  }
  need(zip, m.localOffset, 30, 'local header');
  if (zip.view.getUint32(m.localOffset, true) !== SIG_LOCAL) {
    throw new FormatError('corrupt zip archive: no local header where the central directory points', { ...ctx, offset: m.localOffset });
  }
  const start = m.localOffset + 30 + zip.view.getUint16(m.localOffset + 26, true) + zip.view.getUint16(m.localOffset + 28, true);
  need(zip, start, m.compressedSize, `data of member '${m.name}'`);
  const raw = zip.bytes.subarray(start, start + m.compressedSize);
  const data = m.method === STORED ? raw : inflate(raw, { ...ctx, offset: start });
  if (data.length !== m.size || crc32(data) !== m.crc) {
    throw new FormatError('corrupt zip archive: the member fails its size or CRC-32 check', { ...ctx, offset: start });
  }
  return data;
}

function inflate(raw: Uint8Array, ctx: { file: string; tensor: string; offset: number }): Uint8Array {
  try {
    return inflateSync(raw);
  } catch (e) {
    throw new FormatError(`corrupt zip archive: the member does not inflate (${(e as Error).message})`, ctx, { cause: e });
  }
}

let crcTable: Int32Array | undefined;

/** CRC-32 (the zip/zlib polynomial), continuing from `crc`. */
function crc32(bytes: Uint8Array, crc = 0): number {
  const table = (crcTable ??= makeCrcTable());
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function makeCrcTable(): Int32Array {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
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
interface OutMember {
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

function npzMember(key: string, t: Tensor, compress: boolean): OutMember {
  const npy = encodeNpy(t, key);
  const name = new TextEncoder().encode(`${key}.npy`);
  if (name.length > 0xffff) throw new LowrankError('E_USAGE', 'array name is too long for a zip member name', { tensor: key });
  const stored = compress ? deflateSync(npy, { level: 6 }) : npy;
  return { name, method: compress ? DEFLATED : STORED, crc: crc32(npy), size: npy.length, stored };
}

/**
 * A local header (30 bytes + name) or central directory entry (46 bytes + name). From "version
 * needed" to the extra-field length the two share one layout, 2 bytes later in the central entry.
 */
function zipHeader(kind: 'local' | 'central', m: OutMember, localOffset: number): Uint8Array {
  const fixed = kind === 'local' ? 30 : 46;
  const out = new Uint8Array(fixed + m.name.length);
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
  if (kind === 'central') v.setUint32(42, localOffset, true);
  out.set(m.name, fixed);
  return out;
}

function endRecord(count: number, centralSize: number, centralOffset: number): Uint8Array {
  const out = new Uint8Array(22);
  const v = new DataView(out.buffer);
  v.setUint32(0, SIG_END, true);
  v.setUint16(8, count, true);
  v.setUint16(10, count, true);
  v.setUint32(12, centralSize, true);
  v.setUint32(16, centralOffset, true);
  return out;
}
