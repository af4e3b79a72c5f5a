/**
 * The safetensors header: parsing with every check the format requires, and building one for
 * writing. Pure (no file system), so the browser can use it too.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (space-padded), then the
 * data buffer. Each JSON entry is `{dtype, shape, data_offsets: [begin, end)}` relative to the data
 * buffer; `__metadata__` maps strings to strings.
 */
import { FormatError, LowrankError } from '../../core/errors.js';
import { FOREIGN_SAFETENSORS_DTYPES, dtypeBytes, fromSafetensorsDType, toSafetensorsDType } from '../../core/dtype.js';
import type { TensorSpec } from '../../core/tensor.js';
import { NameIndex } from '../nameIndex.js';
import { brief, JsonScanner } from '../jsonScan.js';

/** The format's limit on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * The most keys lowrank reads in a header's `__metadata__` (a FormatError past it). Writers put a
 * handful there (`format: pt`); a million would cost JSON.parse the better part of a minute.
 */
export const MAX_METADATA_KEYS = 10_000;
/**
 * The most tensors lowrank reads in one safetensors file (an `E_LIMIT` error past it, raised as
 * soon as the scan reaches the next one). Real shards hold thousands; a whole MoE model in one file
 * some tens of thousands. The format's 100 MB header would allow about two million.
 */
export const MAX_TENSORS = 2 ** 18;

/** One tensor of a safetensors file: where its bytes are (offsets are absolute in the file). */
export interface SafetensorsEntry extends TensorSpec {
  /** Absolute byte position of the tensor's first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A parsed header. Entries are in the order their bytes lie in the file. */
export interface SafetensorsHeader {
  /** N, the JSON length. */
  readonly headerBytes: number;
  /** 8 + N: where the data buffer starts. */
  readonly dataStart: number;
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** The position of tensor `name` in `entries`, or -1 (O(log n)). */
  indexOf(name: string): number;
}

/** Reads N from the first 8 bytes, checked against the format's limit and the file size. */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.length < 8) {
    throw new FormatError(`file is ${fileSize} bytes, too short for the 8-byte header length`, { file });
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(`header length ${n} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`, { file, offset: 0 });
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new FormatError(`header length ${len} runs past the end of the file (${fileSize} bytes)`, { file, offset: 0 });
  }
  if (len < 2) throw new FormatError(`header length ${len} is too short for a JSON object`, { file, offset: 0 });
  return len;
}

/**
 * Parses and validates the JSON header against a data buffer of `fileSize - 8 - N` bytes.
 *
 * One pass over the bytes checks the JSON grammar and reads each entry's fields without building
 * the JSON tree or decoding the whole text; duplicate names (which `JSON.parse` would silently
 * resolve to the last) are found by a NameIndex, O(n log n) however the names hash. The format's
 * 100 MB limit bounds the rest: a name or value at most the header's length, values nested at most
 * 50 million deep (skipped with one byte per level); `__metadata__` may have at most
 * MAX_METADATA_KEYS keys and the file at most MAX_TENSORS tensors. The largest header accepted,
 * 262,144 zero-size tensors whose names fill 99 MB (`npm run bench -- io -- header`, 2-core
 * machine, at 1f22da2): about 1.75 s and a peak RSS of 305 MiB, of which 144 MiB is the process and the
 * header's bytes before parsing.
 *
 * Errors come in the order a full `JSON.parse` would give them: invalid JSON (or UTF-8) anywhere
 * first, then a duplicate name, then the first entry (in file order) that breaks the format; except
 * that one tensor past MAX_TENSORS is `E_LIMIT` at once.
 */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerBytes = json.length;
  const dataStart = 8 + headerBytes;
  const dataSize = fileSize - dataStart;
  const s = new JsonScanner(json, file);
  if (s.peek() !== 0x7b) {
    const found = s.kindName();
    s.skipValue();
    s.finish();
    throw new FormatError(`header must be a JSON object, found ${found}`, { file, offset: 8 });
  }
  const names: string[] = [];
  let firstError: unknown;
  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsEntry[] = [];
  let tensors = 0;
  for (let more = s.enter(); more; more = s.next()) {
    const name = s.name();
    if (name !== '__metadata__' && ++tensors > MAX_TENSORS) {
      throw new LowrankError('E_LIMIT', `the header lists more than ${MAX_TENSORS} tensors, the most lowrank reads in one file`, { file, offset: 8 });
    }
    names.push(name);
    // Checks run as entries are read, but their errors wait until the grammar of the whole header is known to be good.
    try {
      if (name === '__metadata__') {
        const value = scanMetadata(s, file);
        if (firstError === undefined) metadata = value;
      } else {
        const raw = scanEntry(s);
        if (firstError === undefined) entries.push(parseEntry(name, raw, dataStart, dataSize, file));
      }
    } catch (e) {
      if (!(e instanceof LowrankError) || s.failed) throw e;
      firstError = e;
    }
  }
  s.finish();
  const twice = (name: string): FormatError => new FormatError(`header names '${name}' twice`, { file, tensor: name });
  if (firstError !== undefined) {
    const duplicate = new NameIndex(names).firstDuplicate();
    if (duplicate !== undefined) throw twice(names[duplicate.second]);
    throw firstError;
  }
  if (names.length - entries.length > 1) throw twice('__metadata__');
  entries.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  const byName = new NameIndex(entries.map((e) => e.name));
  const duplicate = byName.firstDuplicate();
  if (duplicate !== undefined) throw twice(entries[duplicate.second].name);
  checkLayout(entries, dataStart, fileSize, file);
  return { headerBytes, dataStart, entries, metadata, indexOf: (name) => byName.find(name) };
}

/** Requires the entries, sorted by offset, to tile the data buffer exactly: no overlap, no hole, nothing after. */
function checkLayout(entries: readonly SafetensorsEntry[], dataStart: number, fileSize: number, file: string): void {
  let expected = dataStart;
  let prev: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.byteOffset < expected) {
      throw new FormatError(`data overlaps tensor '${prev?.name}'`, { file, tensor: e.name, offset: e.byteOffset });
    }
    if (e.byteOffset > expected) {
      throw new FormatError(`${e.byteOffset - expected} bytes before this tensor belong to no tensor (a hole in the data buffer)`, { file, tensor: e.name, offset: expected });
    }
    expected = e.byteOffset + e.byteLength;
    prev = e;
  }
  if (expected !== fileSize) {
    throw new FormatError(`${fileSize - expected} bytes at the end of the data buffer belong to no tensor`, { file, offset: expected });
  }
}

/** An entry's fields as found: as JSON.parse would give them, or an Invalid describing a value that cannot pass. */
interface RawEntry {
  dtype: unknown;
  shape: unknown;
  offsets: unknown;
}
const NOT_OBJECT = Symbol('not an object');

/** The value at the cursor as a tensor entry; other keys than the three are skipped (and, as with JSON.parse, the last of a repeated key counts). */
function scanEntry(s: JsonScanner): RawEntry | typeof NOT_OBJECT {
  if (s.peek() !== 0x7b) {
    s.skipValue();
    return NOT_OBJECT;
  }
  const raw: RawEntry = { dtype: undefined, shape: undefined, offsets: undefined };
  for (let more = s.enter(); more; more = s.next()) {
    const field = s.knownName(FIELDS);
    if (field === DTYPE) raw.dtype = s.peek() === 0x22 ? s.string() : s.describe();
    else if (field === SHAPE) raw.shape = s.numbers(true);
    else if (field === DATA_OFFSETS) raw.offsets = s.numbers(false);
    else s.skipValue();
  }
  return raw;
}

/**
 * The `__metadata__` value at the cursor, read as JSON.parse reads it (the last value of a repeated
 * key counts; a key named `__proto__` stays a key), when it is an object of at most
 * MAX_METADATA_KEYS strings; otherwise a FormatError, thrown once the value has been scanned.
 */
function scanMetadata(s: JsonScanner, file: string): Record<string, string> {
  if (s.peek() !== 0x7b) {
    s.skipValue();
    throw new FormatError('__metadata__ must be an object of strings', { file });
  }
  const values = new Map<string, string>();
  const notString = new Set<string>();
  let keys = 0;
  for (let more = s.enter(); more; more = s.next()) {
    const key = s.name();
    if (++keys > MAX_METADATA_KEYS) {
      s.skipValue();
    } else if (s.peek() !== 0x22) {
      notString.add(key);
      s.skipValue();
    } else {
      notString.delete(key);
      values.set(key, s.string());
    }
  }
  if (keys > MAX_METADATA_KEYS) throw new FormatError(`__metadata__ has more than ${MAX_METADATA_KEYS} keys, the most lowrank reads`, { file });
  for (const key of notString) throw new FormatError(`__metadata__ value of '${key}' is not a string`, { file });
  return Object.fromEntries(values);
}

function parseEntry(name: string, raw: RawEntry | typeof NOT_OBJECT, dataStart: number, dataSize: number, file: string): SafetensorsEntry {
  if (raw === NOT_OBJECT) throw new FormatError('entry is not an object', { file, tensor: name });
  const { dtype: dt, shape, offsets: offs } = raw;
  if (typeof dt !== 'string') throw new FormatError('entry has no dtype string', { file, tensor: name });
  const dtype = fromSafetensorsDType(dt);
  if (dtype === undefined) {
    if (FOREIGN_SAFETENSORS_DTYPES.includes(dt)) throw new LowrankError('E_UNSUPPORTED', `dtype ${dt} is valid safetensors but lowrank does not read it`, { file, tensor: name });
    throw new FormatError(`unknown dtype ${brief(dt)}`, { file, tensor: name });
  }
  if (!isCountList(shape)) {
    throw new FormatError(`shape ${brief(shape)} is not a list of non-negative integers`, { file, tensor: name });
  }
  // In doubles: while the product stays a safe integer every partial product is exact, and once
  // past it the rounded product never comes back under (dimensions are whole numbers, zero aside).
  let count = shape.includes(0) ? 0 : 1;
  for (const d of shape) count *= d;
  const need = count * dtypeBytes(dtype);
  if (need > Number.MAX_SAFE_INTEGER) throw new FormatError(`shape [${shape.join(', ')}] has more elements than any file can hold`, { file, tensor: name });
  if (!isCountList(offs) || offs.length !== 2) {
    throw new FormatError(`data_offsets ${brief(offs)} is not a pair of non-negative integers`, { file, tensor: name });
  }
  const [begin, end] = offs;
  if (begin > end) throw new FormatError(`data_offsets [${begin}, ${end}] end before they begin`, { file, tensor: name });
  if (end > dataSize) {
    throw new FormatError(`data_offsets end at ${end}, past the data buffer of ${dataSize} bytes (file truncated?)`, { file, tensor: name, offset: dataStart + begin });
  }
  if (end - begin !== need) {
    throw new FormatError(`data_offsets span ${end - begin} bytes but ${dt} x [${shape.join(', ')}] needs ${need}`, { file, tensor: name, offset: dataStart + begin });
  }
  return { name, dtype, shape, byteOffset: dataStart + begin, byteLength: end - begin };
}

/** A list of non-negative safe integers. */
function isCountList(v: unknown): v is readonly number[] {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (!Number.isSafeInteger(x) || (x as number) < 0) return false;
  return true;
}

/** How the entry fields are spelled without escapes, in the order of their codes for JsonScanner.knownName. */
const FIELDS = ['"dtype"', '"shape"', '"data_offsets"'];
const DTYPE = 0;
const SHAPE = 1;
const DATA_OFFSETS = 2;

/** Where each tensor goes in a file being written. */
export interface HeaderLayout {
  /** The 8 length bytes plus the padded JSON: everything before the data buffer. */
  readonly prefix: Uint8Array;
  /** The specs in the order their data is written, with their offsets relative to the data buffer. */
  readonly order: readonly { spec: TensorSpec; begin: number; end: number }[];
  readonly fileSize: number;
}

/**
 * Lays out a file: tensors sorted by element size (largest first, so each stays aligned) then by
 * name, as the reference writer does; the JSON padded with spaces so the data buffer starts at a
 * multiple of 8.
 */
export function layoutHeader(specs: readonly TensorSpec[], metadata: Readonly<Record<string, string>> | undefined, file: string): HeaderLayout {
  const names = new Set<string>();
  for (const s of specs) {
    if (s.name === '__metadata__') throw new LowrankError('E_USAGE', "a tensor cannot be named '__metadata__'", { file });
    if (names.has(s.name)) throw new LowrankError('E_USAGE', 'two tensors have this name', { file, tensor: s.name });
    names.add(s.name);
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new LowrankError('E_USAGE', `metadata value of '${k}' must be a string`, { file });
    }
  }
  const sorted = [...specs].sort((a, b) => dtypeBytes(b.dtype) - dtypeBytes(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>; // a tensor may be named __proto__
  if (metadata !== undefined) header.__metadata__ = metadata;
  const order: { spec: TensorSpec; begin: number; end: number }[] = [];
  let off = 0;
  for (const spec of sorted) {
    let n = 1;
    for (const d of spec.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new LowrankError('E_SHAPE', 'shape is not a list of non-negative integers', { file, tensor: spec.name, shape: spec.shape });
      n *= d;
    }
    const end = off + n * dtypeBytes(spec.dtype);
    header[spec.name] = { dtype: toSafetensorsDType(spec.dtype), shape: spec.shape, data_offsets: [off, end] };
    order.push({ spec, begin: off, end });
    off = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, order, fileSize: prefix.length + off };
}
