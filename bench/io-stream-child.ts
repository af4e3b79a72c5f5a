/**
 * Child process of the io suite's streaming check, run with a small heap
 * (`node --max-old-space-size=256 dist/bench/io-stream-child.js <file> [readAs|chunks]`): reads
 * every tensor of a safetensors file one at a time and prints one JSON line with the time, the
 * bytes read, a checksum and its own peak RSS.
 *
 * - `readAs` (default): `readAs(name, 'f32')` per tensor; checksum = sum of the f32 bit patterns
 *   mod 2^32.
 * - `chunks`: the raw bytes through `chunks(name)`; checksum = sum of the 16-bit words mod 2^32.
 */
import { getHeapStatistics } from 'node:v8';
import { openSafetensors } from '../src/io/index.js';
import { maxRssBytes, now } from './util.js';

async function main(): Promise<void> {
  const [file, mode = 'readAs'] = process.argv.slice(2);
  if (file === undefined || (mode !== 'readAs' && mode !== 'chunks')) {
    throw new Error('usage: io-stream-child.js <file.safetensors> [readAs|chunks]');
  }
  const rssBefore = maxRssBytes();
  const t0 = now();
  const f = await openSafetensors(file);
  let bytes = 0;
  let sum = 0;
  let readSeconds = 0;
  let largestTensorBytes = 0;
  let out: Float32Array | undefined;
  try {
    for (const e of f.entries) {
      bytes += e.byteLength;
      const r0 = now();
      if (mode === 'readAs') {
        // One output array reused across tensors of the same size, so the heap holds one at a time.
        const n = e.shape.reduce((a, d) => a * d, 1);
        if (out?.length !== n) out = new Float32Array(n);
        const t = await f.readAs(e.name, 'f32', { into: out });
        readSeconds += now() - r0;
        largestTensorBytes = Math.max(largestTensorBytes, t.data.byteLength);
        const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
        for (let i = 0; i < bits.length; i++) sum = (sum + bits[i]) | 0;
      } else {
        largestTensorBytes = Math.max(largestTensorBytes, e.byteLength);
        for await (const chunk of f.chunks(e.name)) {
          const words = new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.byteLength >>> 1);
          for (let i = 0; i < words.length; i++) sum = (sum + words[i]) | 0;
        }
        readSeconds += now() - r0;
      }
    }
  } finally {
    await f.close();
  }
  const seconds = now() - t0;
  console.log(
    JSON.stringify({
      mode,
      tensors: f.entries.length,
      bytes,
      seconds,
      readSeconds,
      checksum: sum >>> 0,
      largestTensorBytes,
      maxRssBytes: maxRssBytes(),
      startRssBytes: rssBefore,
      heapLimitBytes: getHeapStatistics().heap_size_limit,
    }),
  );
}

await main();
