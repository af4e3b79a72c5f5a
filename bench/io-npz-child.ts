/**
 * Child process of the io suite's .npz check: `node dist/bench/io-npz-child.js <file.npz>` times
 * `readNpz`; `... --touch <bytes>` times making and writing once a buffer of that many bytes (the
 * floor of any reader that returns such an array). Prints one JSON line with the seconds, the
 * bytes of the arrays read and its peak RSS (VmHWM).
 */
import { readNpz } from '../src/io/npz.js';
import { now, peakRssBytes } from './util.js';

async function main(): Promise<void> {
  const [first, second] = process.argv.slice(2);
  if (first === undefined) throw new Error('usage: io-npz-child.js <file.npz> | --touch <bytes>');
  const startRssBytes = peakRssBytes();
  const t0 = now();
  let bytes: number;
  if (first === '--touch') {
    const buffer = new Uint8Array(Number(second)).fill(1);
    bytes = buffer.byteLength;
  } else {
    const arrays = await readNpz(first);
    bytes = Object.values(arrays).reduce((n, t) => n + t.data.byteLength, 0);
  }
  const seconds = now() - t0;
  console.log(JSON.stringify({ seconds, bytes, startRssBytes, peakRssBytes: peakRssBytes() }));
}

await main();
