/**
 * Child process of the io suite's maximal-header check (`node dist/bench/io-header-child.js
 * <file> parse|open`): times `parseHeader` on the header's bytes (read before the clock starts),
 * or `openModel` on the file, and prints one JSON line with the seconds, the tensor count (or the
 * code of the typed error it was refused with) and its peak RSS (VmHWM) before and after.
 */
import { readFileSync } from 'node:fs';
import { parseHeader } from '../src/io/safetensors/header.js';
import { openModel } from '../src/io/hf.js';
import { isLowrankError } from '../src/core/errors.js';
import { now, peakRssBytes } from './util.js';

async function main(): Promise<void> {
  const [file, mode] = process.argv.slice(2);
  if (file === undefined || (mode !== 'parse' && mode !== 'open')) throw new Error('usage: io-header-child.js <file.safetensors> parse|open');
  const bytes = mode === 'parse' ? readFileSync(file) : undefined;
  const startRssBytes = peakRssBytes();
  const t0 = now();
  let tensors: number | undefined;
  let error: string | undefined;
  try {
    tensors = await count(file, mode, bytes);
  } catch (e) {
    if (!isLowrankError(e)) throw e;
    error = e.code;
  }
  const seconds = now() - t0;
  console.log(JSON.stringify({ mode, tensors, error, seconds, startRssBytes, peakRssBytes: peakRssBytes() }));
}

async function count(file: string, mode: string, bytes: Uint8Array | undefined): Promise<number> {
  if (bytes !== undefined) return parseHeader(bytes.subarray(8), bytes.length, file).entries.length;
  const m = await openModel(file);
  try {
    return m.tensors.length;
  } finally {
    await m.close();
  }
}

await main();
