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

/** The format's limit on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;

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

/** Parses and validates the JSON header against a data buffer of `fileSize - 8 - N` bytes. */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerBytes = json.length;
  const dataStart = 8 + headerBytes;
  const dataSize = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new FormatError('header is not valid UTF-8', { file, offset: 8 });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`header is not valid JSON (${(e as Error).message})`, { file, offset: 8 });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FormatError(`header must be a JSON object, found ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}`, { file, offset: 8 });
  }
  const dup = firstDuplicateKey(text);
  if (dup !== undefined) throw new FormatError(`header names '${dup}' twice`, { file, tensor: dup });

  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, file);
      continue;
    }
    entries.push(parseEntry(name, value, dataStart, dataSize, file));
  }
  entries.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
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
  return { headerBytes, dataStart, entries, metadata };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FormatError('__metadata__ must be an object of strings', { file });
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new FormatError(`__metadata__ value of '${k}' is not a string`, { file });
  }
  return { ...(value as Record<string, string>) };
}

function parseEntry(name: string, value: unknown, dataStart: number, dataSize: number, file: string): SafetensorsEntry {
  const ctx = { file, tensor: name };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormatError('entry is not an object', ctx);
  const { dtype: dt, shape, data_offsets: offs } = value as Record<string, unknown>;
  if (typeof dt !== 'string') throw new FormatError('entry has no dtype string', ctx);
  const dtype = fromSafetensorsDType(dt);
  if (dtype === undefined) {
    if (FOREIGN_SAFETENSORS_DTYPES.includes(dt)) throw new LowrankError('E_UNSUPPORTED', `dtype ${dt} is valid safetensors but lowrank does not read it`, ctx);
    throw new FormatError(`unknown dtype ${brief(dt)}`, ctx);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new FormatError(`shape ${brief(shape)} is not a list of non-negative integers`, ctx);
  }
  let count = 1n;
  for (const d of shape as number[]) count *= BigInt(d);
  const need = count * BigInt(dtypeBytes(dtype));
  if (need > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`shape [${shape.join(', ')}] has more elements than any file can hold`, ctx);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
    throw new FormatError(`data_offsets ${brief(offs)} is not a pair of non-negative integers`, ctx);
  }
  const [begin, end] = offs as [number, number];
  if (begin > end) throw new FormatError(`data_offsets [${begin}, ${end}] end before they begin`, ctx);
  if (end > dataSize) {
    throw new FormatError(`data_offsets end at ${end}, past the data buffer of ${dataSize} bytes (file truncated?)`, { ...ctx, offset: dataStart + begin });
  }
  if (BigInt(end - begin) !== need) {
    throw new FormatError(`data_offsets span ${end - begin} bytes but ${dt} x [${shape.join(', ')}] needs ${need}`, { ...ctx, offset: dataStart + begin });
  }
  return { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin };
}

/** A short description of an untrusted JSON value for an error message (never deep, never long). */
function brief(v: unknown): string {
  if (Array.isArray(v)) {
    return v.every((x) => typeof x === 'number') && v.length <= 8 ? `[${v.join(', ')}]` : `(an array of ${v.length} items)`;
  }
  if (typeof v === 'string') return v.length <= 40 ? `'${v}'` : `'${v.slice(0, 40)}…' (${v.length} characters)`;
  return v === null ? 'null' : typeof v === 'object' ? '(an object)' : String(v);
}

/** The first key that the top-level JSON object (already known to be valid JSON) holds twice. */
function firstDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1) expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

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
