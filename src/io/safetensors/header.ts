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

/** The format's limit on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * The most keys lowrank reads in a header's `__metadata__` (a FormatError past it). Writers put a
 * handful there (`format: pt`); a million would cost JSON.parse the better part of a minute.
 */
export const MAX_METADATA_KEYS = 10_000;

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

/**
 * Parses and validates the JSON header against a data buffer of `fileSize - 8 - N` bytes.
 *
 * One pass over the text checks the JSON grammar and reads each entry's fields without building
 * the JSON tree; duplicate names (which `JSON.parse` would silently resolve to the last) are found
 * by a NameIndex, O(n log n) however the names hash. The format's 100 MB limit bounds the rest: at
 * most about two million entries (the shortest is some 50 bytes), a name or value at most the
 * header's length, values nested at most 50 million deep (skipped with one byte per level); and
 * `__metadata__` may have at most MAX_METADATA_KEYS keys. On a 99 MB header of 1.65 million
 * zero-size tensors (`npm run bench -- io -- header`, 2-core machine): 2.4 s and a peak RSS of
 * 528 MiB, of which 144 MiB is the process and the header's bytes before parsing (so about 4x the
 * header); with JSON.parse and a duplicate-key rescan it was 11.3 s and 1.35 GiB.
 *
 * Errors come in the order a full `JSON.parse` would give them: invalid JSON anywhere first, then a
 * duplicate name, then the first entry (in file order) that breaks the format.
 */
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
  const s = new JsonScanner(text, file);
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
  for (let more = s.enter(); more; more = s.next()) {
    const name = s.name();
    names.push(name);
    // Checks run as entries are read, but their errors wait until the grammar of the whole header is known to be good.
    try {
      if (name === '__metadata__') {
        const value = scanMetadata(s);
        if (firstError === undefined) metadata = checkMetadata(value, file);
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
  const duplicate = new NameIndex(names).firstDuplicate();
  if (duplicate !== undefined) throw new FormatError(`header names '${names[duplicate.second]}' twice`, { file, tensor: names[duplicate.second] });
  if (firstError !== undefined) throw firstError;
  checkLayout(entries, dataStart, fileSize, file);
  return { headerBytes, dataStart, entries, metadata };
}

/** Sorts the entries by offset and requires them to tile the data buffer exactly: no overlap, no hole, nothing after. */
function checkLayout(entries: SafetensorsEntry[], dataStart: number, fileSize: number, file: string): void {
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
    const field = s.fieldName();
    if (field === DTYPE) raw.dtype = s.peek() === 0x22 ? s.string() : s.describe();
    else if (field === SHAPE) raw.shape = s.numbers(true);
    else if (field === DATA_OFFSETS) raw.offsets = s.numbers(false);
    else s.skipValue();
  }
  return raw;
}

/**
 * The `__metadata__` value at the cursor as JSON.parse gives it when it is an object of at most
 * MAX_METADATA_KEYS strings; otherwise what is wrong with it. (JSON.parse of an object of a
 * million keys, or of arrays nested millions deep, takes the better part of a minute and GBs.)
 */
function scanMetadata(s: JsonScanner): unknown {
  if (s.peek() !== 0x7b) {
    s.skipValue();
    return NOT_AN_OBJECT;
  }
  const from = s.mark();
  let keys = 0;
  const notString = new Set<string>();
  for (let more = s.enter(); more; more = s.next()) {
    const key = s.name();
    keys++;
    // As with JSON.parse, the last value of a repeated key is the one that counts.
    if (s.peek() === 0x22) notString.delete(key);
    else notString.add(key);
    s.skipValue();
  }
  if (keys > MAX_METADATA_KEYS) return TOO_MANY_KEYS;
  for (const key of notString) return new NotString(key);
  return JSON.parse(s.textFrom(from));
}
const TOO_MANY_KEYS = Symbol('too many keys');
const NOT_AN_OBJECT = Symbol('not an object');

function checkMetadata(value: unknown, file: string): Record<string, string> {
  if (value === TOO_MANY_KEYS) throw new FormatError(`__metadata__ has more than ${MAX_METADATA_KEYS} keys, the most lowrank reads`, { file });
  if (value === NOT_AN_OBJECT) throw new FormatError('__metadata__ must be an object of strings', { file });
  if (value instanceof NotString) throw new FormatError(`__metadata__ value of '${value.key}' is not a string`, { file });
  return value as Record<string, string>;
}

/** A `__metadata__` key whose value is not a string. */
class NotString {
  constructor(readonly key: string) {}
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

/** A value that fails a check, described for the error (see JsonScanner.describe). */
class Invalid {
  constructor(readonly brief: string) {}
}

/** A short description of an untrusted JSON value for an error message (never deep, never long). */
function brief(v: unknown): string {
  if (Array.isArray(v)) {
    return v.every((x) => typeof x === 'number') && v.length <= 8 ? `[${v.join(', ')}]` : `(an array of ${v.length} items)`;
  }
  if (typeof v === 'string') return v.length <= 40 ? `'${v}'` : `'${v.slice(0, 40)}…' (${v.length} characters)`;
  if (v instanceof Invalid) return v.brief;
  return v === null ? 'null' : typeof v === 'object' ? '(an object)' : String(v);
}

/** How many spellings of arrays of numbers a header's entries share at most. */
const MAX_SHARED_ARRAYS = 4096;

const OTHER = 0;
const DTYPE = 1;
const SHAPE = 2;
const DATA_OFFSETS = 3;
/** The entry fields, as they are spelled without escapes. */
const FIELDS: readonly (readonly [number, string])[] = [
  [DTYPE, '"dtype"'],
  [SHAPE, '"shape"'],
  [DATA_OFFSETS, '"data_offsets"'],
];

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** The characters a backslash may escape besides `u`: " \ / b f n r t. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/**
 * A cursor over JSON text (RFC 8259, as `JSON.parse` accepts it) that checks the grammar as it
 * goes and throws a FormatError at the first character that breaks it. Nothing recurses: values
 * nested millions deep are skipped with a stack of one byte per level.
 */
class JsonScanner {
  private pos = 0;
  /** The closing character of each container open while skipping. */
  private stack = new Uint8Array(64);
  /** Set once the grammar has failed (its error is not one to defer). */
  failed = false;
  /** The numbers of the array being read. */
  private readonly scratch: number[] = [];
  /** Arrays of numbers by their spelling. */
  private readonly shared = new Map<string, readonly number[]>();

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  /** Skips whitespace; the next character's code (NaN at the end). */
  peek(): number {
    const t = this.text;
    let p = this.pos;
    let c = t.charCodeAt(p);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++p);
    this.pos = p;
    return c;
  }

  /** Requires only whitespace from here to the end. */
  finish(): void {
    if (!Number.isNaN(this.peek())) this.fail('unexpected text after the top-level value');
  }

  /** The kind of the value at the cursor, as the header-must-be-an-object error names it. */
  kindName(): string {
    const c = this.peek();
    if (c === 0x5b) return 'an array';
    if (c === 0x22) return 'string';
    if (c === 0x6e) return 'null';
    if (c === 0x74 || c === 0x66) return 'boolean';
    return 'number';
  }

  /** The file offset of the cursor (for error reports only: it encodes the text before it). */
  private byteOffset(): number {
    return 8 + new TextEncoder().encode(this.text.slice(0, this.pos)).length;
  }

  fail(what: string): never {
    this.failed = true;
    const c = this.text.charCodeAt(this.pos);
    const found = Number.isNaN(c) ? 'the end of the header' : JSON.stringify(String.fromCodePoint(this.text.codePointAt(this.pos) ?? c));
    throw new FormatError(`header is not valid JSON (${what}; found ${found})`, { file: this.file, offset: this.byteOffset() });
  }

  /** At a '{': moves past it; false when the object is empty (then past its '}' too). */
  enter(): boolean {
    this.pos++;
    if (this.peek() !== 0x7d) return true;
    this.pos++;
    return false;
  }

  /** After a member's value: true past a ',', false past the closing '}'. */
  next(): boolean {
    const c = this.peek();
    if (c === 0x2c || c === 0x7d) {
      this.pos++;
      return c === 0x2c;
    }
    return this.fail("expected ',' or '}' after a value in an object");
  }

  /** A member name and its colon, as DTYPE, SHAPE, DATA_OFFSETS or OTHER (the three checked in place, without a string). */
  fieldName(): number {
    const t = this.text;
    const p = this.pos;
    for (const [field, quoted] of FIELDS) {
      if (t.startsWith(quoted, p)) {
        if (this.peekAfter(p + quoted.length) === 0x3a) {
          this.pos++;
          return field;
        }
        this.pos = p;
        break;
      }
    }
    const name = this.name();
    return name === 'dtype' ? DTYPE : name === 'shape' ? SHAPE : name === 'data_offsets' ? DATA_OFFSETS : OTHER;
  }

  /** Moves to the first non-space from `p` and returns it. */
  private peekAfter(p: number): number {
    this.pos = p;
    return this.peek();
  }

  /** A member's name and its colon. */
  name(): string {
    if (this.peek() !== 0x22) this.fail('expected a name in double quotes');
    const name = this.string();
    if (this.peek() !== 0x3a) this.fail("expected ':' after a name");
    this.pos++;
    return name;
  }

  /** The string at the cursor (on its opening quote), decoded as JSON.parse decodes it. */
  string(): string {
    const start = this.pos;
    const escaped = this.skipString();
    return escaped ? (JSON.parse(this.text.slice(start, this.pos)) as string) : this.text.slice(start + 1, this.pos - 1);
  }

  /** Moves past the string at the cursor; whether it has escapes. */
  private skipString(): boolean {
    const t = this.text;
    let p = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = t.charCodeAt(p);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        p = this.escape(p);
      } else if (c >= 0x20) {
        p++;
      } else {
        this.pos = p;
        this.fail(Number.isNaN(c) ? 'a string is not closed' : 'a control character in a string must be escaped');
      }
    }
    this.pos = p + 1;
    return escaped;
  }

  /** Past the escape at `p` (a backslash). */
  private escape(p: number): number {
    const t = this.text;
    const c = t.charCodeAt(p + 1);
    if (SIMPLE_ESCAPES.has(c)) return p + 2;
    if (c === 0x75 && isHex(t.charCodeAt(p + 2)) && isHex(t.charCodeAt(p + 3)) && isHex(t.charCodeAt(p + 4)) && isHex(t.charCodeAt(p + 5))) return p + 6;
    this.pos = p;
    return this.fail('bad escape in a string');
  }

  /** The number at the cursor, as JSON.parse gives it. */
  number(): number {
    const t = this.text;
    const start = this.pos;
    let p = start;
    if (t.charCodeAt(p) === 0x2d) p++;
    const first = t.charCodeAt(p);
    if (first === 0x30) p++;
    else if (first >= 0x31 && first <= 0x39) while (isDigit(t.charCodeAt(++p)));
    else this.failAt(p, 'expected a digit');
    let integer = true;
    if (t.charCodeAt(p) === 0x2e) {
      integer = false;
      if (!isDigit(t.charCodeAt(++p))) this.failAt(p, "expected a digit after '.'");
      while (isDigit(t.charCodeAt(++p)));
    }
    const e = t.charCodeAt(p);
    if (e === 0x65 || e === 0x45) {
      integer = false;
      const sign = t.charCodeAt(++p);
      if (sign === 0x2b || sign === 0x2d) p++;
      if (!isDigit(t.charCodeAt(p))) this.failAt(p, 'expected a digit in the exponent');
      while (isDigit(t.charCodeAt(++p)));
    }
    this.pos = p;
    // Up to 15 digits are exact in a double; anything else goes through the standard conversion.
    if (!integer || p - start > 15 || t.charCodeAt(start) === 0x2d) return Number(t.slice(start, p));
    let v = 0;
    for (let i = start; i < p; i++) v = v * 10 + (t.charCodeAt(i) - 0x30);
    return v;
  }

  private failAt(p: number, what: string): never {
    this.pos = p;
    return this.fail(what);
  }

  /**
   * The array of numbers at the cursor; any other value as JSON.parse gives it. With `share`,
   * arrays spelled alike are one frozen array (shapes repeat: the layers of a model, or a hostile
   * header's millions of `[0]`), up to MAX_SHARED_ARRAYS spellings.
   */
  numbers(share: boolean): unknown {
    if (this.peek() !== 0x5b) return this.describe();
    const from = this.pos;
    const got = this.scratch;
    let n = 0;
    this.pos++;
    if (this.peek() !== 0x5d) {
      for (;;) {
        const c = this.peek();
        if (c !== 0x2d && !isDigit(c)) {
          this.pos = from;
          return this.describe();
        }
        got[n++] = this.number();
        if (this.peek() === 0x5d) break;
        if (this.text.charCodeAt(this.pos) !== 0x2c) this.fail("expected ',' or ']' after a value in an array");
        this.pos++;
      }
    }
    this.pos++;
    if (!share) return got.slice(0, n);
    const spelling = this.text.slice(from, this.pos);
    let shared = this.shared.get(spelling);
    if (shared === undefined) {
      shared = Object.freeze(got.slice(0, n));
      if (this.shared.size < MAX_SHARED_ARRAYS) this.shared.set(spelling, shared);
    }
    return shared;
  }

  /**
   * Moves past the value at the cursor and says what it is, as `brief` would of the parsed value
   * (for values that fail a check: JSON.parse of arrays nested millions deep takes a minute).
   */
  describe(): Invalid {
    const c = this.peek();
    if (c === 0x22) return new Invalid(brief(this.string()));
    if (c === 0x2d || isDigit(c)) return new Invalid(String(this.number()));
    if (c === 0x7b) {
      this.skipValue();
      return new Invalid('(an object)');
    }
    if (c !== 0x5b) {
      const word = this.text.startsWith('null', this.pos) ? 'null' : this.text.startsWith('true', this.pos) ? 'true' : 'false';
      this.skipValue();
      return new Invalid(word);
    }
    const numbers: number[] = [];
    let items = 0;
    this.pos++;
    if (this.peek() === 0x5d) {
      this.pos++;
      return new Invalid('[]');
    }
    for (;;) {
      const d = this.peek();
      if (d === 0x2d || isDigit(d)) numbers.push(this.number());
      else this.skipValue();
      items++;
      if (this.peek() === 0x5d) break;
      if (this.text.charCodeAt(this.pos) !== 0x2c) this.fail("expected ',' or ']' after a value in an array");
      this.pos++;
    }
    this.pos++;
    return new Invalid(numbers.length === items && items <= 8 ? `[${numbers.join(', ')}]` : `(an array of ${items} items)`);
  }

  /** Where the next value starts (past any whitespace). */
  mark(): number {
    this.peek();
    return this.pos;
  }

  /** The text from `from` to the cursor. */
  textFrom(from: number): string {
    return this.text.slice(from, this.pos);
  }

  /** Moves past one value of any depth. */
  skipValue(): void {
    let depth = 0;
    for (;;) {
      const c = this.peek();
      if (c === 0x7b || c === 0x5b) {
        const close = c + 2; // '{' -> '}', '[' -> ']'
        this.pos++;
        if (this.peek() === close) {
          this.pos++;
        } else {
          this.push(depth++, close);
          if (close === 0x7d) this.name();
          continue;
        }
      } else {
        this.scalar();
      }
      for (;;) {
        if (depth === 0) return;
        const close = this.stack[depth - 1];
        const d = this.peek();
        if (d === 0x2c) {
          this.pos++;
          if (close === 0x7d) this.name();
          break;
        }
        if (d !== close) this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
        this.pos++;
        depth--;
      }
    }
  }

  private push(depth: number, close: number): void {
    if (depth === this.stack.length) {
      const grown = new Uint8Array(depth * 2);
      grown.set(this.stack);
      this.stack = grown;
    }
    this.stack[depth] = close;
  }

  /** Moves past a string, number, true, false or null. */
  private scalar(): void {
    const c = this.peek();
    if (c === 0x22) this.skipString();
    else if (c === 0x2d || isDigit(c)) this.number();
    else if (this.text.startsWith('true', this.pos) || this.text.startsWith('null', this.pos)) this.pos += 4;
    else if (this.text.startsWith('false', this.pos)) this.pos += 5;
    else this.fail('expected a value');
  }
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
