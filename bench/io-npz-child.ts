/**
 * Child process of the io suite's .npz check (`node dist/bench/io-npz-child.js <file.npz>`): times
 * `readNpz` and prints one JSON line with the seconds, the bytes of the arrays read and its peak RSS
 * (VmHWM).
 */
import { readNpz } from '../src/io/npz.js';
import { now, peakRssBytes } from './util.js';

async function main(): Promise<void> {
  const [file] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: io-npz-child.js <file.npz>');
  const startRssBytes = peakRssBytes();
  const t0 = now();
  const arrays = await readNpz(file);
  const seconds = now() - t0;
  const bytes = Object.values(arrays).reduce((n, t) => n + t.data.byteLength, 0);
  console.log(JSON.stringify({ seconds, bytes, startRssBytes, peakRssBytes: peakRssBytes() }));
}

await main();
