/**
 * readAhead: a model's weights read in a known order into two reused buffers, the next one read
 * while the caller works: each read equals a plain decode, in order or not, and a failed read
 * ahead that nobody asks for surfaces nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModel, writeModel } from '../../src/io/hf.js';
import { readAhead } from '../../src/io/readAhead.js';
import { rewriteOrder } from '../../src/io/rewrite.js';
import { encodeFloat, tensor } from '../../src/core/tensor.js';
import { tempDir } from '../helpers/tmp.js';

async function model(dir: string): Promise<string> {
  const path = join(dir, 'm');
  const values = (seed: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
  await writeModel(path, [
    { name: 'a.weight', dtype: 'bf16', shape: [6, 5], data: async () => encodeFloat(tensor('f32', [6, 5], values(1, 30)), 'bf16').data },
    { name: 'b.weight', dtype: 'bf16', shape: [3, 4], data: async () => encodeFloat(tensor('f32', [3, 4], values(2, 12)), 'bf16').data },
    { name: 'c.weight', dtype: 'f64', shape: [2, 2], data: async () => Float64Array.from(values(3, 4)) },
    { name: 'd.weight', dtype: 'f16', shape: [8, 3], data: async () => encodeFloat(tensor('f32', [8, 3], values(4, 24)), 'f16').data },
  ], { maxShardSize: 80 });
  return path;
}

test('readAhead returns what readAs decodes, in the order given and out of it', async (t) => {
  const m = await openModel(await model(await tempDir(t)));
  t.after(() => m.close());
  const order = rewriteOrder(m);
  assert.deepEqual([...order].sort(), ['a.weight', 'b.weight', 'c.weight', 'd.weight']);
  const expected = new Map<string, number[]>();
  for (const name of order) expected.set(name, Array.from((await m.readAs(name, m.entry(name).dtype === 'f64' ? 'f64' : 'f32')).data));
  const read = readAhead(m, order);
  for (const name of order) {
    const got = await read(name);
    assert.equal(got.dtype, m.entry(name).dtype === 'f64' ? 'f64' : 'f32', name);
    assert.deepEqual(got.shape, m.entry(name).shape, name);
    assert.deepEqual(Array.from(got.data), expected.get(name), name);
  }
  const again = readAhead(m, order);
  for (const name of [order[2], order[0], order[3], order[3], order[1]]) assert.deepEqual(Array.from((await again(name)).data), expected.get(name), `${name} out of order`);
});

test('readAhead: an unknown name is an error to the asker, a failed read ahead is silent', async (t) => {
  const m = await openModel(await model(await tempDir(t)));
  const read = readAhead(m, [...rewriteOrder(m), 'missing.weight']);
  await assert.rejects(read('missing.weight'), /no such tensor|missing\.weight/);
  const last = rewriteOrder(m).at(-1) as string;
  await read(last); // starts reading 'missing.weight' ahead, which fails
  await m.close();
  await new Promise((r) => setTimeout(r, 20)); // an unhandled rejection would fail the test run here
});
