/**
 * A JSON scanner for large untrusted files (a safetensors header, a sharded model's index): it
 * checks the grammar in one pass over the UTF-8 bytes and reads the parts asked for, without
 * building the JSON tree (JSON.parse of an object of a million keys takes tens of seconds and GBs;
 * of arrays nested millions deep, a minute) and without decoding the whole text to a string (for
 * a 99 MB header, a second copy and a third of a second). Pure (no file system), so the browser
 * can use it too.
 */
import { FormatError, brief as briefValue } from '../core/errors.js';

/** A value that fails a check, described for the error (see JsonScanner.describe). */
export class Invalid {
  constructor(readonly brief: string) {}
}

/** core/errors' brief, which also names what the scanner found invalid. */
export function brief(v: unknown): string {
  return v instanceof Invalid ? v.brief : briefValue(v);
}

/** How many spellings of arrays of numbers one scanner shares at most. */
const MAX_SHARED_ARRAYS = 4096;
/** ASCII strings up to this many bytes are made by String.fromCharCode (a TextDecoder call costs more). */
const SHORT_STRING = 16;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** The characters a backslash may escape besides `u`: " \ / b f n r t. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** skipString's findings about the string it passed. */
const ESCAPED = 1;
const NON_ASCII = 2;

/**
 * A cursor over JSON text in UTF-8 (RFC 8259, as `JSON.parse` accepts it after a fatal UTF-8
 * decode) that checks the grammar as it goes and throws a FormatError at the first byte that breaks
 * it; a string that is not valid UTF-8 is an error where it stands. Nothing recurses: values nested
 * millions deep are skipped with a stack of one byte per level.
 */
export class JsonScanner {
  private pos = 0;
  /** The closing character of each container open while skipping. */
  private stack = new Uint8Array(64);
  /** Set once the grammar has failed (its error is not one to defer). */
  failed = false;
  /** The numbers of the array being read. */
  private readonly scratch: number[] = [];
  /** Arrays of numbers by their spelling. */
  private readonly shared = new Map<string, readonly number[]>();

  /** `what` names the text in errors; `base` is the file offset of its first byte. */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
    private readonly what = 'header',
    private readonly base = 8,
  ) {}

  /** The byte at `p`, NaN past the end. */
  private at(p: number): number {
    return p < this.bytes.length ? this.bytes[p] : NaN;
  }

  /** Skips whitespace; the next byte (NaN at the end). */
  peek(): number {
    const b = this.bytes;
    let p = this.pos;
    let c = this.at(p);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = p + 1 < b.length ? b[++p] : (++p, NaN);
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

  fail(what: string): never {
    this.failed = true;
    const c = this.at(this.pos);
    let found = `the end of the ${this.what}`;
    if (c < 0x80) found = JSON.stringify(String.fromCharCode(c));
    else if (c >= 0x80) found = `byte 0x${c.toString(16)}`;
    throw new FormatError(`the ${this.what} is not valid JSON (${what}; found ${found})`, { file: this.file, offset: this.base + this.pos });
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

  /**
   * A member name and its colon, as its position in `quoted` (ASCII names in double quotes, as
   * spelled without escapes: those are matched in place, without making a string), or -1.
   */
  knownName(quoted: readonly string[]): number {
    const p = this.pos;
    for (let k = 0; k < quoted.length; k++) {
      if (this.startsWith(quoted[k], p)) {
        if (this.peekAfter(p + quoted[k].length) === 0x3a) {
          this.pos++;
          return k;
        }
        this.pos = p;
        break;
      }
    }
    return quoted.indexOf(JSON.stringify(this.name()));
  }

  /** Whether the bytes at `p` spell the ASCII `word`. */
  private startsWith(word: string, p: number): boolean {
    const b = this.bytes;
    if (p + word.length > b.length) return false;
    for (let i = 0; i < word.length; i++) if (b[p + i] !== word.charCodeAt(i)) return false;
    return true;
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

  /** Moves past a member's name (checked, not made into a string) and its colon. */
  private skipName(): void {
    if (this.peek() !== 0x22) this.fail('expected a name in double quotes');
    this.scalar();
    if (this.peek() !== 0x3a) this.fail("expected ':' after a name");
    this.pos++;
  }

  /** The string at the cursor (on its opening quote), decoded as JSON.parse decodes it. */
  string(): string {
    const start = this.pos;
    const kind = this.skipString();
    if (kind === 0 && this.pos - start - 2 <= SHORT_STRING) return this.ascii(start + 1, this.pos - 1);
    const text = this.decode(start, this.pos);
    return (kind & ESCAPED) !== 0 ? (JSON.parse(text) as string) : text.slice(1, -1);
  }

  /** The ASCII bytes from `from` to `to` as a string. */
  private ascii(from: number, to: number): string {
    const bytes = this.bytes.subarray(from, to);
    // (Reflect.apply takes the typed array as the argument list without a copy; a spread iterates.)
    return to - from <= SHORT_STRING ? (Reflect.apply(String.fromCharCode, null, bytes) as string) : utf8.decode(bytes);
  }

  /** The bytes from `from` to `to` decoded (a FormatError where they are not UTF-8). */
  private decode(from: number, to: number): string {
    try {
      return utf8.decode(this.bytes.subarray(from, to));
    } catch {
      this.pos = from;
      this.failed = true;
      throw new FormatError(`the ${this.what} is not valid UTF-8`, { file: this.file, offset: this.base + from });
    }
  }

  /** Moves past the string at the cursor; whether it has escapes or bytes past ASCII (ESCAPED | NON_ASCII). */
  private skipString(): number {
    const b = this.bytes;
    let p = this.pos + 1;
    let kind = 0;
    for (;;) {
      const c = p < b.length ? b[p] : NaN;
      if (c === 0x22) break;
      if (c === 0x5c) {
        kind |= ESCAPED;
        p = this.escape(p);
      } else if (c >= 0x20) {
        if (c >= 0x80) kind |= NON_ASCII;
        p++;
      } else {
        this.pos = p;
        this.fail(Number.isNaN(c) ? 'a string is not closed' : 'a control character in a string must be escaped');
      }
    }
    this.pos = p + 1;
    return kind;
  }

  /** Past the escape at `p` (a backslash). */
  private escape(p: number): number {
    const c = this.at(p + 1);
    if (SIMPLE_ESCAPES.has(c)) return p + 2;
    if (c === 0x75 && isHex(this.at(p + 2)) && isHex(this.at(p + 3)) && isHex(this.at(p + 4)) && isHex(this.at(p + 5))) return p + 6;
    this.pos = p;
    return this.fail('bad escape in a string');
  }

  /** The number at the cursor, as JSON.parse gives it. */
  number(): number {
    const start = this.pos;
    let p = start;
    if (this.at(p) === 0x2d) p++;
    const first = this.at(p);
    if (first === 0x30) p++;
    else if (first >= 0x31 && first <= 0x39) while (isDigit(this.at(++p)));
    else this.failAt(p, 'expected a digit');
    let integer = true;
    if (this.at(p) === 0x2e) {
      integer = false;
      if (!isDigit(this.at(++p))) this.failAt(p, "expected a digit after '.'");
      while (isDigit(this.at(++p)));
    }
    const e = this.at(p);
    if (e === 0x65 || e === 0x45) {
      integer = false;
      const sign = this.at(++p);
      if (sign === 0x2b || sign === 0x2d) p++;
      if (!isDigit(this.at(p))) this.failAt(p, 'expected a digit in the exponent');
      while (isDigit(this.at(++p)));
    }
    this.pos = p;
    // Up to 15 digits are exact in a double; anything else goes through the standard conversion.
    if (!integer || p - start > 15 || this.bytes[start] === 0x2d) return Number(this.ascii(start, p));
    let v = 0;
    for (let i = start; i < p; i++) v = v * 10 + (this.bytes[i] - 0x30);
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
        if (this.at(this.pos) !== 0x2c) this.fail("expected ',' or ']' after a value in an array");
        this.pos++;
      }
    }
    this.pos++;
    if (!share) return got.slice(0, n);
    // The spelling is all ASCII: brackets, commas, spaces and number characters.
    const spelling = this.ascii(from, this.pos);
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
      const word = this.startsWith('null', this.pos) ? 'null' : this.startsWith('true', this.pos) ? 'true' : 'false';
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
      if (this.at(this.pos) !== 0x2c) this.fail("expected ',' or ']' after a value in an array");
      this.pos++;
    }
    this.pos++;
    return new Invalid(numbers.length === items && items <= 8 ? `[${numbers.join(', ')}]` : `(an array of ${items} items)`);
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
          if (close === 0x7d) this.skipName();
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
          if (close === 0x7d) this.skipName();
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

  /** Moves past a string (checking its UTF-8), number, true, false or null. */
  private scalar(): void {
    const c = this.peek();
    if (c === 0x22) {
      const start = this.pos;
      if ((this.skipString() & NON_ASCII) !== 0) this.decode(start, this.pos);
    } else if (c === 0x2d || isDigit(c)) this.number();
    else if (this.startsWith('true', this.pos) || this.startsWith('null', this.pos)) this.pos += 4;
    else if (this.startsWith('false', this.pos)) this.pos += 5;
    else this.fail('expected a value');
  }
}
