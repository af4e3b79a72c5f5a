/** Whole-file reads with lowrank's errors: a missing file is E_NOT_FOUND, bad JSON is E_FORMAT. */
import { FormatError, LowrankError, fromSystemError } from '../core/errors.js';
import { fs, type FileHandle } from './fs.js';

/** The largest JSON file lowrank reads (configs and indexes are kilobytes; this stops hostile ones). */
export const MAX_JSON_BYTES = 100_000_000;

/**
 * Checks that a path is a regular file before anything opens it: a FIFO would block the open, and
 * a device like /dev/zero would never end. Returns its size.
 */
export async function regularFileSize(path: string): Promise<number> {
  const st = await fs().stat(path).catch((e: unknown) => {
    throw fromSystemError(e, 'reading', path);
  });
  if (!st.isFile()) throw new LowrankError('E_IO', `not a regular file (${st.isDirectory() ? 'a folder' : 'a device, pipe or socket'})`, { file: path });
  return st.size;
}

/** Whether something (a file, a folder) is at `path`. */
export const exists = (path: string): Promise<boolean> => fs().stat(path).then(() => true, () => false);

/** A regular file's bytes, refusing files larger than `maxBytes`. */
export async function readBytes(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Uint8Array> {
  const size = await regularFileSize(path);
  if (size > maxBytes) throw new FormatError(`file is ${size} bytes, more than the ${maxBytes} this kind of file may have`, { file: path });
  try {
    return await fs().readFile(path);
  } catch (e) {
    throw fromSystemError(e, 'reading', path);
  }
}

/** A JSON file that must hold an object (config.json, adapter_config.json, an index). */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const text = new TextDecoder().decode(await readBytes(path, MAX_JSON_BYTES));
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`not valid JSON (${(e as Error).message.slice(0, 200)})`, { file: path });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError('must hold a JSON object', { file: path });
  return v as Record<string, unknown>;
}

/**
 * Opens `path` for reading once it is known to be a regular file (checked before opening, so a FIFO
 * cannot block, and again on the open handle) and passes the handle and size to `use`.
 */
export async function withRegularFile<T>(path: string, use: (fh: FileHandle, size: number) => Promise<T>): Promise<T> {
  await regularFileSize(path);
  const fh = await fs().open(path, 'r').catch((e: unknown) => {
    throw fromSystemError(e, 'opening', path);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new LowrankError('E_IO', 'not a regular file (it was replaced while being opened)', { file: path });
    return await use(fh, st.size);
  } catch (e) {
    throw fromSystemError(e, 'reading', path);
  } finally {
    await fh.close();
  }
}
