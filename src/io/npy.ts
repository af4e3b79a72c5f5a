/**
 * numpy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * the magic `\x93NUMPY`, a version, a header that is a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, then the raw C-order data.
 *
 * {@link parseNpy} and {@link encodeNpy} are pure (no file system) and work in browsers.
 * {@link readNpyHeader} describes a file of any size from its header alone.
 * Only little-endian, C-order arrays of plain numeric and bool dtypes are read or written; object
 * (pickled), structured, big-endian and Fortran-order arrays are refused with a typed error.
 */
import { assertLittleEndian, dtypeBytes, makeStorage, viewStorage, type DType } from '../core/dtype.js';
import { FormatError, LowrankError, type ErrorContext } from '../core/errors.js';
import { numel, tensor, type Tensor } from '../core/tensor.js';
import { writeAll, writeFileAtomic, type WriteOptions } from './atomic.js';
import { readBytes, withRegularFile } from './files.js';

/** `\x93NUMPY`: the first six bytes of every .npy file. */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
/** numpy pads the header so the data starts at a multiple of this many bytes. */
const ARRAY_ALIGN = 64;
/** numpy leaves room for the first dimension to grow to this many digits (GROWTH_AXIS_MAX_DIGITS). */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Deepest nesting of brackets accepted in a header (numpy's own headers nest at most 2 deep). */
const MAX_NESTING = 32;

/** numpy's type code (the descr without its byte-order character) of every dtype numpy has. */
const NUMPY_CODE: Partial<Record<DType, string>> = {
  f64: 'f8',
  f32: 'f4',
  f16: 'f2',
  i64: 'i8',
  i32: 'i4',
  i16: 'i2',
  i8: 'i1',
  u64: 'u8',
  u32: 'u4',
  u16: 'u2',
  u8: 'u1',
  bool: 'b1',
};
const FROM_NUMPY_CODE = new Map(Object.entries(NUMPY_CODE).map(([d, code]) => [code, d as DType]));

// ---- reading ----------------------------------------------------------------------------------

/** What an .npy header declares: enough to describe the array without reading its data. */
export interface NpyHeader {
  dtype: DType;
  shape: number[];
}

/** The longest header read (numpy itself refuses headers over 10000 bytes unless told otherwise). */
const MAX_HEADER = 1 << 20;
/** Bytes of a file's start read first for its header: more than any header numpy writes for itself. */
export const NPY_HEADER_PROBE = 4096;

/**
 * Parses the bytes of a .npy file into a tensor (the data is copied, so `bytes` may be reused,
 * unless `view` says it will not be).
 * Reads format versions 1.0, 2.0 and 3.0. `file` (and `name`, an array's name in an .npz
 * archive) only label error messages; byte offsets in errors count from the start of `bytes`.
 *
 * @throws FormatError for bad magic, a header that does not parse, or data shorter or longer
 *   than the shape needs; LowrankError `E_UNSUPPORTED` for object (pickled), structured,
 *   big-endian, Fortran-order or other dtypes lowrank does not have, and headers over 1 MiB.
 */
export function parseNpy(bytes: Uint8Array, file: string, name?: string, opts: { view?: boolean } = {}): Tensor {
  const { dtype, shape, dataStart } = headerOf(bytes, bytes.length, file, name);
  const at = bytes.byteOffset + dataStart;
  // With `view` (bytes owned by the caller and not reused: an inflated .npz member), aligned data is
  // used in place, so reading an array holds it once, not twice.
  if (opts.view === true && at % dtypeBytes(dtype) === 0) return tensor(dtype, shape, viewStorage(dtype, bytes.buffer, at, numel(shape)));
  const data = makeStorage(dtype, numel(shape));
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes.subarray(dataStart));
  return tensor(dtype, shape, data);
}

/**
 * Parses the header of a .npy file of `total` bytes from its first bytes, which must hold the whole
 * header (see {@link npyHeaderEnd}), and checks that the data the shape needs is exactly what
 * follows the header. Errors as {@link parseNpy}.
 */
export function parseNpyHeader(head: Uint8Array, total: number, file: string, name?: string): NpyHeader {
  const { dtype, shape } = headerOf(head, total, file, name);
  return { dtype, shape };
}

/**
 * How many bytes of a .npy file's start hold its header, from at least its first
 * {@link NPY_HEADER_PROBE} bytes (or the whole file, when shorter).
 *
 * @throws as {@link parseNpy}, for bad magic, version or header length.
 */
export function npyHeaderEnd(head: Uint8Array, file: string, name?: string): number {
  return preamble(head, name === undefined ? { file } : { file, tensor: name }).dataStart;
}

/** Reads a .npy file. See {@link parseNpy} for what is accepted and what each error means. */
export async function readNpy(path: string): Promise<Tensor> {
  return parseNpy(await readBytes(path), path);
}

/**
 * The dtype and shape of a .npy file, reading only its header (at most about 1 MiB, usually
 * 4 KiB), so a file of any size is described at once. The header is checked as strictly as by
 * {@link readNpy}, including that the file's length is exactly what the shape needs.
 *
 * @throws LowrankError `E_IO` for a path that is not a regular file (a folder, FIFO or device:
 *   checked before it is opened), `E_NOT_FOUND` for a missing one; otherwise as {@link parseNpy}.
 */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  return withRegularFile(path, async (fh, size) => {
    const read = async (n: number): Promise<Uint8Array> => {
      const out = new Uint8Array(Math.min(n, size));
      const { bytesRead } = await fh.read(out, 0, out.length, 0);
      return out.subarray(0, bytesRead);
    };
    const head = await read(NPY_HEADER_PROBE);
    const end = npyHeaderEnd(head, path);
    return parseNpyHeader(end > head.length ? await read(end) : head, size, path);
  });
}

interface Preamble {
  header: string;
  headerStart: number;
  dataStart: number;
}

/** The header's dtype and shape and where the data starts, checked against the file's `total` length. */
function headerOf(head: Uint8Array, total: number, file: string, name?: string): NpyHeader & { dataStart: number } {
  assertLittleEndian();
  const ctx: ErrorContext = name === undefined ? { file } : { file, tensor: name };
  const { header, headerStart, dataStart } = readPreamble(head, ctx);
  const dict = parseHeaderDict(header, headerStart, ctx);
  const dtype = dtypeFromDescr(dict.get('descr'), ctx);
  const shape = shapeFromHeader(dict.get('shape'), ctx);
  checkOrder(dict.get('fortran_order'), shape, ctx);
  const need = (shape.includes(0) ? 0 : shape.reduce((n, d) => n * d, 1)) * dtypeBytes(dtype);
  const have = total - dataStart;
  if (!Number.isSafeInteger(need) || need > have) {
    throw new FormatError(`truncated: the data section has ${have} bytes, the shape needs ${need}`, { ...ctx, offset: dataStart, shape });
  }
  if (need < have) {
    throw new FormatError(`${have - need} unexpected bytes after the array data (several arrays saved into one file?)`, { ...ctx, offset: dataStart + need, shape });
  }
  return { dtype, shape, dataStart };
}

/** Checks the magic, version and header length; where the header and the data start. */
function preamble(bytes: Uint8Array, ctx: ErrorContext): Omit<Preamble, 'header'> & { major: number } {
  if (bytes[0] === 0x80) {
    throw new LowrankError('E_UNSUPPORTED', 'this is a Python pickle, not a .npy file; pickled data is not supported', ctx);
  }
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FormatError('not a .npy file (bad magic: it does not start with \\x93NUMPY)', { ...ctx, offset: 0 });
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (minor !== 0 || major < 1 || major > 3) {
    throw new LowrankError('E_UNSUPPORTED', `.npy format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`, { ...ctx, offset: 6 });
  }
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) throw new FormatError('truncated: the file ends inside the header length', { ...ctx, offset: 8 });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER) {
    throw new LowrankError('E_UNSUPPORTED', `the header is ${headerLength} bytes; headers over ${MAX_HEADER} bytes are not read`, { ...ctx, offset: 8 });
  }
  return { major, headerStart, dataStart: headerStart + headerLength };
}

/** Checks the magic and version and cuts out the header text. */
function readPreamble(bytes: Uint8Array, ctx: ErrorContext): Preamble {
  const { major, headerStart, dataStart } = preamble(bytes, ctx);
  if (dataStart > bytes.length) {
    throw new FormatError(`truncated: the header is ${dataStart - headerStart} bytes but the file ends after ${bytes.length - headerStart}`, { ...ctx, offset: headerStart });
  }
  const text = bytes.subarray(headerStart, dataStart);
  const header = major === 3 ? decodeUtf8(text, headerStart, ctx) : decodeLatin1(text);
  return { header, headerStart, dataStart };
}

function decodeUtf8(bytes: Uint8Array, offset: number, ctx: ErrorContext): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError('the version 3.0 header is not valid UTF-8', { ...ctx, offset });
  }
}

/** True latin-1 (TextDecoder's 'latin1' is really windows-1252). */
function decodeLatin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** The lowrank dtype of a header's 'descr', or the reason it cannot be read. */
function dtypeFromDescr(descr: PyValue | undefined, ctx: ErrorContext): DType {
  if (typeof descr !== 'string') {
    throw new LowrankError('E_UNSUPPORTED', 'structured (record) dtypes are not supported; save each field as its own array', ctx);
  }
  const order = descr.charAt(0);
  const code = descr.slice(1);
  if (/^[<>=|]?O$/.test(descr)) {
    throw new LowrankError('E_UNSUPPORTED', 'object arrays (dtype O) hold pickled Python objects; pickle is not supported, save a numeric array', ctx);
  }
  const dtype = FROM_NUMPY_CODE.get(code);
  if (dtype === undefined || !'<>=|'.includes(order)) {
    const known = Object.values(NUMPY_CODE).join(', ');
    throw new LowrankError('E_UNSUPPORTED', `numpy dtype '${descr}' is not supported (supported type codes: ${known})`, ctx);
  }
  if (dtypeBytes(dtype) > 1 && order === '>') {
    throw new LowrankError('E_UNSUPPORTED', `big-endian dtype '${descr}' is not supported; convert with a.astype('<${code}')`, ctx);
  }
  if (dtypeBytes(dtype) > 1 && order === '|') {
    throw new LowrankError('E_UNSUPPORTED', `dtype '${descr}' has no byte order; expected '<${code}'`, ctx);
  }
  return dtype;
}

/** The header's 'shape': a tuple of non-negative integers. */
function shapeFromHeader(shape: PyValue | undefined, ctx: ErrorContext): number[] {
  if (!isSeq(shape, 'tuple') || !shape.items.every((d): d is number => typeof d === 'number' && d >= 0)) {
    throw new FormatError("the header's 'shape' is not a tuple of non-negative integers", ctx);
  }
  return shape.items;
}

/** Fortran order is refused unless it cannot matter (0-d and 1-d arrays). */
function checkOrder(fortranOrder: PyValue | undefined, shape: readonly number[], ctx: ErrorContext): void {
  if (typeof fortranOrder !== 'boolean') throw new FormatError("the header's 'fortran_order' is not True or False", ctx);
  if (fortranOrder && shape.length > 1) {
    throw new LowrankError('E_UNSUPPORTED', 'Fortran-order arrays are not supported; save with np.ascontiguousarray', { ...ctx, shape });
  }
}

// ---- the header: a small strict parser of Python literals -------------------------------------

/** A Python literal as it can appear in a .npy header. */
type PyValue = string | number | boolean | null | PySeq | PyDict;
interface PySeq {
  readonly kind: 'tuple' | 'list';
  readonly items: PyValue[];
}
interface PyDict {
  readonly kind: 'dict';
  readonly entries: Map<string, PyValue>;
}

function isSeq(v: PyValue | undefined, kind: PySeq['kind']): v is PySeq {
  return typeof v === 'object' && v !== null && v.kind === kind;
}

/** Parses the header text, which must be a dict with exactly the keys descr, fortran_order, shape. */
function parseHeaderDict(text: string, headerStart: number, ctx: ErrorContext): Map<string, PyValue> {
  const value = new LiteralParser(text, headerStart, ctx).parseAll();
  if (typeof value !== 'object' || value === null || value.kind !== 'dict') {
    throw new FormatError('the header is not a Python dict', { ...ctx, offset: headerStart });
  }
  const keys = [...value.entries.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw new FormatError(`the header has keys {${keys}}, expected {descr, fortran_order, shape}`, { ...ctx, offset: headerStart });
  }
  return value.entries;
}

/**
 * Recursive descent over the Python literals numpy writes with repr(): dicts with string keys,
 * tuples, lists, 'strings' or "strings" (escapes \\ \' \" only), integers, True, False, None.
 * Nothing is evaluated.
 */
class LiteralParser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly base: number,
    private readonly ctx: ErrorContext,
  ) {}

  parseAll(): PyValue {
    const v = this.value();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail('unexpected text after the header dict');
    return v;
  }

  private value(): PyValue {
    this.skipSpace();
    const c = this.text.charAt(this.pos);
    if (c === '{' || c === '(' || c === '[') return this.nested(c);
    if (c === "'" || c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.integer();
    for (const [word, v] of [['True', true], ['False', false], ['None', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(c === '' ? 'the header ends too early' : `unexpected '${c}'`);
  }

  private nested(open: string): PyValue {
    if (++this.depth > MAX_NESTING) this.fail('the header nests too deeply');
    this.pos++;
    const v = open === '{' ? this.dict() : this.sequence(open === '(' ? ')' : ']');
    this.depth--;
    return v;
  }

  private dict(): PyDict {
    const entries = new Map<string, PyValue>();
    while (!this.closes('}')) {
      const at = this.pos;
      const key = this.value();
      if (typeof key !== 'string') this.fail('a header dict key is not a string', at);
      if (entries.has(key)) this.fail(`the header repeats the key '${key}'`, at);
      this.expect(':');
      entries.set(key, this.value());
      if (!this.comma('}')) break;
    }
    this.expect('}');
    return { kind: 'dict', entries };
  }

  /** A tuple or list. As in Python, `(x)` without a comma is just x, not a tuple. */
  private sequence(close: string): PyValue {
    const items: PyValue[] = [];
    let commas = 0;
    while (!this.closes(close)) {
      items.push(this.value());
      if (!this.comma(close)) break;
      commas++;
    }
    this.expect(close);
    if (close === ')' && items.length === 1 && commas === 0) return items[0];
    return { kind: close === ')' ? 'tuple' : 'list', items };
  }

  private string(): string {
    const quote = this.text.charAt(this.pos++);
    let s = '';
    while (true) {
      const c = this.text.charAt(this.pos++);
      if (c === '') this.fail('unterminated string in the header');
      if (c === quote) return s;
      if (c === '\\') {
        const next = this.text.charAt(this.pos++);
        if (next !== '\\' && next !== "'" && next !== '"') this.fail('unsupported escape in a header string', this.pos - 2);
        s += next;
      } else {
        s += c;
      }
    }
  }

  private integer(): number {
    const m = /^-?[0-9]+/.exec(this.text.slice(this.pos, this.pos + 40));
    if (m === null) return this.fail('expected an integer');
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n)) this.fail(`the integer ${m[0]} is too large`);
    this.pos += m[0].length;
    return n;
  }

  /** True (without consuming it) when the next character closes the current bracket. */
  private closes(close: string): boolean {
    this.skipSpace();
    return this.text.charAt(this.pos) === close;
  }

  /** Consumes a comma after an item; false when the bracket closes instead. */
  private comma(close: string): boolean {
    this.skipSpace();
    if (this.text.charAt(this.pos) === ',') {
      this.pos++;
      return true;
    }
    if (this.text.charAt(this.pos) !== close) this.fail(`expected ',' or '${close}'`);
    return false;
  }

  private expect(c: string): void {
    this.skipSpace();
    if (this.text.charAt(this.pos) !== c) this.fail(`expected '${c}'`);
    this.pos++;
  }

  private skipSpace(): void {
    while (/\s/.test(this.text.charAt(this.pos))) this.pos++;
  }

  private fail(message: string, at = this.pos): never {
    throw new FormatError(`the header does not parse: ${message}`, { ...this.ctx, offset: this.base + at });
  }
}

// ---- writing ----------------------------------------------------------------------------------

/**
 * The bytes of a .npy file holding `t`, identical to what `np.save` writes for the same array:
 * version 1.0 (2.0 only when the header is longer than 65535 bytes), the header padded with
 * spaces and a final newline so the data starts at a multiple of 64 bytes.
 *
 * `name` only labels error messages.
 *
 * @throws LowrankError `E_UNSUPPORTED` for bf16 and fp8 tensors (numpy has no such dtype:
 *   convert to f32 first); `E_SHAPE` when the storage does not match the shape.
 */
export function encodeNpy(t: Tensor, name?: string): Uint8Array {
  const header = npyHeader(t, name);
  const out = new Uint8Array(header.length + t.data.byteLength);
  out.set(header);
  out.set(dataBytes(t), header.length);
  return out;
}

/**
 * Writes a tensor as a .npy file, atomically (temporary file, then rename). An existing file is
 * an `E_EXISTS` error unless `opts.overwrite`. Errors as {@link encodeNpy}.
 */
export async function writeNpy(path: string, t: Tensor, opts: WriteOptions = {}): Promise<void> {
  const header = npyHeader(t);
  const data = dataBytes(t);
  await writeFileAtomic(
    path,
    async (fh) => {
      await writeAll(fh, header, 0);
      await writeAll(fh, data, header.length);
    },
    opts,
  );
}

/** The magic, version, header length and padded header: everything before the data. */
function npyHeader(t: Tensor, name?: string): Uint8Array {
  assertLittleEndian();
  const ctx: ErrorContext = { tensor: name, shape: t.shape };
  const code = NUMPY_CODE[t.dtype];
  if (code === undefined) {
    throw new LowrankError('E_UNSUPPORTED', `numpy has no ${t.dtype} dtype; convert the tensor to f32 first (toFloat(t, 'f32'))`, ctx);
  }
  checkStorage(t, ctx);
  const descr = (dtypeBytes(t.dtype) === 1 ? '|' : '<') + code;
  const dims = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  if (t.shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length));
  return wrapHeader(dict);
}

/** As numpy's _wrap_header: version 1.0 when the padded header fits in a u16 length, else 2.0. */
function wrapHeader(dict: string): Uint8Array {
  const padded = (lengthBytes: number): number => {
    const used = 8 + lengthBytes + dict.length + 1;
    return dict.length + 1 + (ARRAY_ALIGN - (used % ARRAY_ALIGN));
  };
  const major = padded(2) <= 0xffff ? 1 : 2;
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = padded(lengthBytes);
  const out = new Uint8Array(8 + lengthBytes + headerLength).fill(0x20);
  out.set(MAGIC);
  out.set([major, 0], 6);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  for (let i = 0; i < dict.length; i++) out[8 + lengthBytes + i] = dict.charCodeAt(i);
  out[out.length - 1] = 0x0a;
  return out;
}

function checkStorage(t: Tensor, ctx: ErrorContext): void {
  const n = numel(t.shape);
  if (t.data.length !== n || t.data.BYTES_PER_ELEMENT !== dtypeBytes(t.dtype)) {
    throw new LowrankError('E_SHAPE', `storage of ${t.data.length} ${t.data.constructor.name} elements does not match dtype ${t.dtype} and shape`, ctx);
  }
}

function dataBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
