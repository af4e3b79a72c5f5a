import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DTYPES, makeStorage, type DType, type Storage } from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';
import { toFloat } from '../../src/core/tensor.js';
import { openSafetensors, writeSafetensors, type TensorSource } from '../../src/io/safetensors/index.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';

function randomStorage(dtype: DType, n: number, seed: number): Storage {
  const s = makeStorage(dtype, n);
  const bytes = new Uint8Array(s.buffer);
  const g = rng(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = g.uint32() & 0xff;
  if (dtype === 'bool') for (let i = 0; i < n; i++) bytes[i] &= 1;
  return s;
}

const SHAPES: number[][] = [[], [0], [7], [3, 5], [2, 3, 4]];

function everyDtype(): TensorSource[] {
  const out: TensorSource[] = [];
  DTYPES.forEach((dtype, i) =>
    SHAPES.forEach((shape, j) => {
      const n = shape.reduce((a, d) => a * d, 1);
      out.push({ name: `${dtype}.${j}`, dtype, shape, data: randomStorage(dtype, n, 100 * i + j) });
    }),
  );
  return out;
}

const bytesOf = (s: Storage): Uint8Array => new Uint8Array(s.buffer, s.byteOffset, s.byteLength);

test('every dtype and shape round-trips bit-exactly, with metadata kept', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'all.safetensors');
  const sources = everyDtype();
  await writeSafetensors(path, sources, { metadata: { format: 'pt', note: 'ünïcode' } });
  const f = await openSafetensors(path);
  t.after(() => f.close());
  assert.deepEqual(f.metadata, { format: 'pt', note: 'ünïcode' });
  assert.equal(f.entries.length, sources.length);
  for (const s of sources) {
    const got = await f.read(s.name);
    assert.equal(got.dtype, s.dtype, s.name);
    assert.deepEqual(got.shape, s.shape, s.name);
    assert.deepEqual(bytesOf(got.data), bytesOf(s.data as Storage), s.name);
  }
});

test('the header is space-padded to a multiple of 8 and tensors are aligned by element size', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'pad.safetensors');
  await writeSafetensors(path, everyDtype());
  const raw = await readFile(path);
  const n = Number(raw.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  assert.equal(raw[8], 0x7b, 'JSON starts with {');
  const json = raw.subarray(8, 8 + n).toString('utf8');
  assert.match(json, /} *$/);
  const f = await openSafetensors(path);
  t.after(() => f.close());
  for (const e of f.entries) assert.equal(e.byteOffset % (e.byteLength === 0 ? 1 : Math.min(8, e.byteLength / e.shape.reduce((a, d) => a * d, 1))), 0, e.name);
});

test('numpy reads what we write, and we read what a numpy-made file holds (independent implementations)', async (t) => {
  const dir = await tempDir(t);
  const ours = join(dir, 'ours.safetensors');
  const sources = everyDtype().filter((s) => s.shape.length > 0 && s.shape[0] > 0);
  await writeSafetensors(ours, sources);
  // Python parses the header itself and returns, per tensor, its dtype, shape and the sum of its bytes.
  const seen = pythonJson<Record<string, { dtype: string; shape: number[]; sum: number }>>(
    `import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
out = {}
for k, v in h.items():
    if k == '__metadata__': continue
    b, e = v['data_offsets']
    out[k] = {'dtype': v['dtype'], 'shape': v['shape'], 'sum': int(np.frombuffer(raw[8 + n + b: 8 + n + e], dtype=np.uint8).sum())}
print(json.dumps(out))`,
    [ours],
  );
  for (const s of sources) {
    const want = bytesOf(s.data as Storage).reduce((a, b) => a + b, 0);
    assert.equal(seen[s.name].sum, want, s.name);
    assert.deepEqual(seen[s.name].shape, s.shape, s.name);
  }
  // A file laid out differently: unsorted, unpadded header, f64 after u8 (unaligned offsets).
  const theirs = join(dir, 'theirs.safetensors');
  const vals = pythonJson<{ a: number[]; b: number[]; c: number[] }>(
    `import json, struct, sys
rs = np.random.default_rng(5)
a = rs.standard_normal((4, 3)).astype(np.float64)
b = rs.integers(0, 255, 5).astype(np.uint8)
c = rs.standard_normal(6).astype(np.float32)
parts = [('b', 'U8', b), ('a', 'F64', a), ('c', 'F32', c)]
header, off, blob = {}, 0, b''
for name, dt, arr in parts:
    data = arr.tobytes()
    header[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [off, off + len(data)]}
    off += len(data); blob += data
js = json.dumps(header).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(js)) + js + blob)
print(json.dumps({'a': a.ravel().tolist(), 'b': b.tolist(), 'c': c.astype(np.float64).tolist()}))`,
    [theirs],
  );
  const f = await openSafetensors(theirs);
  t.after(() => f.close());
  assert.deepEqual(Array.from((await f.read('a')).data as Float64Array), vals.a);
  assert.deepEqual(Array.from((await f.read('b')).data as Uint8Array), vals.b);
  assert.deepEqual(Array.from((await f.readAs('c', 'f64')).data), vals.c);
});

test('readAs decodes in chunks exactly as a whole read would (bf16 over two 16 MiB chunks, f16, fp8, ints)', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'big.safetensors');
  const n = 10_000_000 + 3;
  const sources: TensorSource[] = [
    { name: 'big', dtype: 'bf16', shape: [n], data: randomStorage('bf16', n, 1) },
    ...(['f16', 'f8_e4m3', 'f8_e5m2', 'i64', 'u8', 'f64'] as const).map((dtype, i) => ({ name: dtype, dtype, shape: [33, 31], data: randomStorage(dtype, 33 * 31, 10 + i) })),
  ];
  await writeSafetensors(path, sources);
  const f = await openSafetensors(path);
  t.after(() => f.close());
  for (const s of sources) {
    const want = toFloat(await f.read(s.name), 'f32');
    const got = await f.readAs(s.name, 'f32');
    assert.deepEqual(bytesOf(got.data), bytesOf(want.data), s.name);
  }
  // Concurrent reads of one file each get their own staging buffers; `into` reuses the caller's array.
  const [x, y] = await Promise.all([f.readAs('big', 'f32'), f.readAs('f16', 'f64')]);
  assert.deepEqual(x.data, toFloat(await f.read('big'), 'f32').data);
  assert.deepEqual(y.data, toFloat(await f.read('f16'), 'f64').data);
  const into = new Float32Array(33 * 31);
  const z = await f.readAs('f8_e5m2', 'f32', { into });
  assert.equal(z.data, into);
  assert.deepEqual(into, toFloat(await f.read('f8_e5m2'), 'f32').data);
  let joined = 0;
  let sum = 0;
  for await (const c of f.chunks('u8', 100)) {
    joined += c.length;
    sum += c.reduce((a, b) => a + b, 0);
  }
  assert.equal(joined, 33 * 31);
  assert.equal(sum, (sources[5].data as Uint8Array).reduce((a, b) => a + b, 0));
});

test('writes are atomic: existing outputs kept unless overwrite, failures leave nothing behind', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'out.safetensors');
  const a: TensorSource = { name: 'a', dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) };
  await writeSafetensors(path, [a]);
  const before = await readFile(path);
  await assert.rejects(writeSafetensors(path, [a]), (e: unknown) => e instanceof LowrankError && e.code === 'E_EXISTS');
  const failing: TensorSource = { name: 'b', dtype: 'f32', shape: [2], data: () => { throw new Error('producer failed'); } };
  await assert.rejects(writeSafetensors(path, [a, failing], { overwrite: true }), /producer failed/);
  assert.deepEqual(await readFile(path), before, 'the old file is untouched after a failed overwrite');
  const wrong: TensorSource = { name: 'c', dtype: 'f32', shape: [3], data: new Float32Array(2) };
  await assert.rejects(writeSafetensors(join(dir, 'x.safetensors'), [wrong]), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
  assert.deepEqual(await readdir(dir), ['out.safetensors'], 'no temporary or partial files remain');
  await writeSafetensors(path, [{ ...a, data: new Float32Array([3, 4]) }], { overwrite: true });
  const f = await openSafetensors(path);
  assert.deepEqual(Array.from((await f.read('a')).data as Float32Array), [3, 4]);
  await assert.rejects(writeSafetensors(path, [a], { overwrite: true }), (e: unknown) => e instanceof LowrankError && e.code === 'E_EXISTS' && /input/.test(e.message));
  await f.close();
});

test('asking for a tensor that is not there names the file and the tensor', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'one.safetensors');
  await writeSafetensors(path, [{ name: 'w', dtype: 'f32', shape: [1], data: new Float32Array(1) }]);
  const f = await openSafetensors(path);
  t.after(() => f.close());
  await assert.rejects(f.read('nope'), (e: unknown) => e instanceof LowrankError && e.code === 'E_NOT_FOUND' && e.message.includes(path) && e.message.includes("'nope'"));
});
