/**
 * The error hierarchy. Every failure lowrank expects (bad files, bad shapes, bad arguments, a full
 * disk) is a {@link LowrankError} with a stable `code`; anything else is a bug.
 */

/** Stable error codes. `E_INTERNAL` is the only one that means "a bug in lowrank". */
export type ErrorCode =
  /** A file's bytes do not follow its format (safetensors, npy, zip, JSON). */
  | 'E_FORMAT'
  /** A format feature that is valid but not supported here (e.g. Fortran-order npy). */
  | 'E_UNSUPPORTED'
  /** A file, folder or tensor that was asked for is not there. */
  | 'E_NOT_FOUND'
  /** The output exists and overwriting was not allowed, or the output is one of the inputs. */
  | 'E_EXISTS'
  /** The operating system refused a read or write (permissions, full disk, ...). */
  | 'E_IO'
  /** Shapes or dtypes that do not fit together. */
  | 'E_SHAPE'
  /** A wrong argument value: an unknown option, a rank out of range, a bad pattern. */
  | 'E_USAGE'
  /** A size limit that reading a well-formed file would pass, lowrank's own (tensors per file) or one the caller set (`maxBytes`); nothing is allocated for it. */
  | 'E_LIMIT'
  /** NaN or Inf where a finite number is required. */
  | 'E_NONFINITE'
  /** A numerical failure: not positive definite, singular, or an iteration that did not converge. */
  | 'E_NUMERIC'
  /** The job was stopped (Ctrl-C). */
  | 'E_INTERRUPTED'
  /** A bug: an invariant lowrank relies on was broken. */
  | 'E_INTERNAL';

/** Where an error happened: any of these that are known are printed with the message. */
export interface ErrorContext {
  file?: string;
  tensor?: string;
  offset?: number;
  shape?: readonly number[];
}

/** The base class of every error lowrank throws on purpose. */
export class LowrankError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(withContext(message, context), options);
    this.name = 'LowrankError';
    this.code = code;
    this.context = context;
  }
}

/** A file whose bytes break its format. */
export class FormatError extends LowrankError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_FORMAT', message, context, options);
    this.name = 'FormatError';
  }
}

/** The most characters of a message, and of a name in its context, that an error keeps. */
export const MESSAGE_LIMIT = 1000;
const NAME_LIMIT = 200;

/**
 * One line of at most `limit` characters: messages quote their input (a JSON parser's excerpt of a
 * pretty-printed file, a tensor name from a hostile header), and an error is one line on the CLI.
 */
export function oneLine(text: string, limit = MESSAGE_LIMIT): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/\s*[\r\n]+\s*/g, ' ').replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length <= limit ? flat : `${flat.slice(0, limit)}… (${flat.length - limit} more characters)`;
}

/**
 * A value from a file, short and safe to put in a message: strings cut at 40 characters, short
 * number arrays written out, other arrays and objects only named (never serialized: a JSON value
 * nested 100,000 deep overflows the stack of JSON.stringify and String()).
 */
export function brief(v: unknown): string {
  if (Array.isArray(v)) return v.length <= 8 && v.every((x) => typeof x === 'number') ? `[${v.join(', ')}]` : `(an array of ${v.length} items)`;
  if (typeof v === 'string') return v.length <= 40 ? `'${v}'` : `'${v.slice(0, 40)}…' (${v.length} characters)`;
  return v === null ? 'null' : typeof v === 'object' ? '(an object)' : String(v);
}

function withContext(message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.file !== undefined) where.push(oneLine(ctx.file, NAME_LIMIT * 2));
  if (ctx.tensor !== undefined) where.push(`tensor '${oneLine(ctx.tensor, NAME_LIMIT)}'`);
  if (ctx.offset !== undefined) where.push(`byte ${ctx.offset}`);
  if (ctx.shape !== undefined) where.push(`shape [${ctx.shape.join(', ')}]`);
  const text = oneLine(message);
  return where.length > 0 ? `${where.join(', ')}: ${text}` : text;
}

/** True for an error lowrank threw on purpose (as opposed to a bug). */
export function isLowrankError(e: unknown): e is LowrankError {
  return e instanceof LowrankError;
}

/**
 * Turns a Node.js system error (ENOENT, ENOSPC, EACCES, ...) into a LowrankError that says what
 * was being done; anything else is returned unchanged.
 */
export function fromSystemError(e: unknown, doing: string, file: string): unknown {
  if (e instanceof LowrankError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return e;
  const reason: Record<string, string> = {
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a part of the path is not a folder',
    EISDIR: 'is a folder, not a file',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EMFILE: 'too many open files',
    EEXIST: 'already exists',
  };
  const what = reason[code] ?? code;
  const errCode: ErrorCode = code === 'ENOENT' ? 'E_NOT_FOUND' : code === 'EEXIST' ? 'E_EXISTS' : 'E_IO';
  return new LowrankError(errCode, `${doing} failed: ${what} (${code})`, { file }, { cause: e });
}
