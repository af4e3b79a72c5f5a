/**
 * .npz reading under a budget (`maxBytes`: an E_LIMIT error before anything is inflated) and the
 * CRC-32 every member is checked against, compared with zlib's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { tensor } from '../../src/core/tensor.js';
import { crc32, DEFAULT_NPZ_MAX_BYTES, encodeNpz, parseNpz, readNpz } from '../../src/io/npz.js';
import { assertThrowsCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** The archive with every central directory entry's uncompressed size set to `size` (the data left as it is). */
function declaring(zip: Uint8Array, size: number): Uint8Array {
  const z = zip.slice();
  const v = new DataView(z.buffer);
  const count = v.getUint16(z.length - 22 + 10, true);
  let at = v.getUint32(z.length - 22 + 16, true);
  for (let i = 0; i < count; i++) {
    v.setUint32(at + 24, size, true);
    at += 46 + v.getUint16(at + 28, true) + v.getUint16(at + 30, true) + v.getUint16(at + 32, true);
  }
  return z;
}

const arrays = {
  a: tensor('f32', [40, 30], rng(1).fillNormal(new Float32Array(1200))),
  b: tensor('i16', [7], Int16Array.of(1, -2, 3, -4, 5, -6, 7)),
};

test('maxBytes: arrays declaring more in all are an E_LIMIT error before anything is inflated; within it they read as without it', async (t) => {
  const dir = await tempDir(t);
  for (const compress of [false, true]) {
    const zip = encodeNpz(arrays, { compress });
    const path = join(dir, `ok-${compress}.npz`);
    await writeFile(path, zip);
    const plain = await readNpz(path);
    // The budget counts each .npy member whole, header included: 128 + 4800 and 128 + 14 bytes.
    const total = 128 + 1200 * 4 + 128 + 7 * 2;
    assert.deepEqual(await readNpz(path, { maxBytes: total }), plain);
    assert.deepEqual(parseNpz(zip, 'mem.npz', { maxBytes: Infinity }), plain);
    assert.deepEqual(Array.from(plain.a.data as Float32Array), Array.from(arrays.a.data as Float32Array));
    await assert.rejects(readNpz(path, { maxBytes: total - 1 }), (e: unknown) => e instanceof LowrankError && e.code === 'E_LIMIT' && e.message.includes(path) && /declare 5070 bytes uncompressed, more than the 5069 allowed/.test(e.message));
  }
  // Members that declare 4 GiB each over a few bytes of data: without a budget that is a corrupt
  // archive (found member by member); the budget refuses it first, from the directory alone.
  const lying = declaring(encodeNpz(arrays, { compress: true }), 0xffffffff);
  assertThrowsCode(() => parseNpz(lying, 'lying.npz', { maxBytes: Infinity }), 'E_FORMAT', /cannot hold the declared 4294967295/);
  assertThrowsCode(() => parseNpz(lying, 'lying.npz', { maxBytes: 2 ** 32 }), 'E_LIMIT', /^lying\.npz: the arrays declare 8589934590 bytes/);
  // By default: 8 GiB, which two such members pass.
  assert.equal(DEFAULT_NPZ_MAX_BYTES, 8 * 2 ** 30);
  assertThrowsCode(() => parseNpz(declaring(encodeNpz({ ...arrays, c: arrays.b }, { compress: true }), 0xffffffff), 'three.npz'), 'E_LIMIT', /more than the 8589934592 allowed/);
  for (const bad of [-1, Number.NaN]) assertThrowsCode(() => parseNpz(encodeNpz(arrays), 'x.npz', { maxBytes: bad }), 'E_USAGE', /maxBytes must be a number of bytes/);
});

test('crc32 gives what zlib gives: the check value, and seeded random bytes of every length near the 8-byte steps, continued and not', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  const g = rng(11);
  const bytes = new Uint8Array(1 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = g.uint32() & 0xff;
  const lengths = [...Array.from({ length: 40 }, (_, i) => i), 1000, 4093, bytes.length];
  const ours = lengths.map((n) => [crc32(bytes.subarray(3, 3 + n)), crc32(bytes.subarray(3, 3 + n), 0x12345678)]);
  // zlib (Node's) on the same bytes, from 0 and continued from a CRC.
  assert.deepEqual(ours, lengths.map((n) => [zlibCrc32(bytes.subarray(3, 3 + n)), zlibCrc32(bytes.subarray(3, 3 + n), 0x12345678)]));
});
