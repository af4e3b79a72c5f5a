/** Whole-file reads with lowrank's errors: a missing file is E_NOT_FOUND, bad JSON is E_FORMAT. */
import { readFile } from 'node:fs/promises';
import { FormatError, fromSystemError } from '../core/errors.js';

/** A file's bytes. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw fromSystemError(e, 'reading', path);
  }
}

/** A JSON file that must hold an object (config.json, adapter_config.json, an index). */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const text = new TextDecoder().decode(await readBytes(path));
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError('must hold a JSON object', { file: path });
  return v as Record<string, unknown>;
}
