import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { bitsToF32, dtypeBytes, f16BitsToF32Bits, type DType } from '../../src/core/dtype.js';
import { FormatError, LowrankError, type ErrorCode } from '../../src/core/errors.js';
import { rng, type Rng } from '../../src/core/rng.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { encodeNpy, parseNpy, readNpy, readNpyHeader, writeNpy } from '../../src/io/npy.js';
import { encodeNpz, parseNpz, readNpz, readNpzHeaders, writeNpz } from '../../src/io/npz.js';
import { python, pythonJson } from '../helpers/python.js';
import { assertThrowsCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

type NpyDType = Exclude<DType, 'bf16' | 'f8_e4m3' | 'f8_e5m2'>;

/** numpy's descr for every dtype .npy can hold. */
const DESCR: Record<NpyDType, string> = {
  f64: '<f8',
  f32: '<f4',
  f16: '<f2',
  i64: '<i8',
  i32: '<i4',
  i16: '<i2',
  i8: '|i1',
  u64: '<u8',
  u32: '<u4',
  u16: '<u2',
  u8: '|u1',
  bool: '|b1',
};
const ALL = Object.keys(DESCR) as NpyDType[];

/** Bit patterns put at the start of random data: -0, Inf, NaN with payload, subnormal, 64-bit extremes. */
const SPECIALS: Partial<Record<DType, bigint[]>> = {
  f16: [0x8000n, 0x7c00n, 0x7e01n, 0x0001n],
  f32: [0x80000000n, 0x7f800000n, 0x7fc00001n, 0x00000001n],
  f64: [0x8000000000000000n, 0x7ff0000000000000n, 0x7ff8000000000001n, 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -(2n ** 53n) - 3n],
  u64: [2n ** 64n - 1n, 2n ** 53n + 1n],
};

interface Case {
  dtype: NpyDType;
  shape: number[];
}

/** Every dtype as a 3-d array, plus 0-d, 1-d, empty and 4-d shapes. */
const CASES: Case[] = [
  ...ALL.map((dtype) => ({ dtype, shape: [2, 3, 4] })),
  { dtype: 'f64', shape: [] },
  { dtype: 'i64', shape: [] },
  { dtype: 'f32', shape: [7] },
  { dtype: 'bool', shape: [5] },
  { dtype: 'f32', shape: [0, 3] },
  { dtype: 'u8', shape: [0] },
  { dtype: 'f16', shape: [1, 2, 1, 3] },
];

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A tensor of random bits (bool: 0 or 1), starting with the dtype's special values. */
function randomTensor(dtype: NpyDType, shape: number[], r: Rng): Tensor {
  const t = tensor(dtype, shape);
  const bytes = bytesOf(t);
  for (let i = 0; i < bytes.length; i++) bytes[i] = dtype === 'bool' ? r.uint32() & 1 : r.uint32() & 0xff;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = dtypeBytes(dtype);
  (SPECIALS[dtype] ?? []).slice(0, t.data.length).forEach((bits, i) => {
    if (size === 8) view.setBigUint64(i * 8, BigInt.asUintN(64, bits), true);
    else if (size === 4) view.setUint32(i * 4, Number(bits), true);
    else view.setUint16(i * 2, Number(bits), true);
  });
  return t;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function assertSameTensor(actual: Tensor, expected: Tensor, label: string): void {
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  assert.ok(sameBytes(bytesOf(actual), bytesOf(expected)), `${label}: data differs`);
}

function pyFloat(s: string): number {
  if (s === 'nan') return NaN;
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return Number(s);
}

/** True when element i of t has the value python printed (see RENDER). */
function samePyValue(t: Tensor, i: number, py: string): boolean {
  const v = t.data[i];
  if (typeof v === 'bigint') return BigInt(py) === v;
  if (t.dtype === 'bool') return py === (v !== 0 ? 'True' : 'False');
  if (t.dtype === 'f16') return Object.is(bitsToF32(f16BitsToF32Bits(v)), pyFloat(py));
  if (t.dtype === 'f32' || t.dtype === 'f64') return Object.is(v, pyFloat(py));
  return BigInt(py) === BigInt(v);
}

function assertPyValues(t: Tensor, py: string[], label: string): void {
  assert.equal(py.length, t.data.length, `${label}: element count`);
  for (let i = 0; i < py.length; i++) {
    assert.ok(samePyValue(t, i, py[i]), `${label}[${i}]: numpy has ${py[i]}, we have ${String(t.data[i])}`);
  }
}

/** Python helpers: exact renderings of values (ints as strings, floats as repr, bools as True/False). */
const RENDER = `
import json, sys, zipfile
def render(a):
    k = a.dtype.kind
    if k == 'f': return [repr(float(x)) for x in a.ravel()]
    if k == 'b': return [str(bool(x)) for x in a.ravel()]
    return [str(int(x)) for x in a.ravel()]
def raw(path, descr, shape):
    return np.frombuffer(open(path, 'rb').read(), dtype=descr).reshape(shape)
`;

/** Writes each tensor's raw bytes to <dir>/<i>.bin and returns the specs python needs. */
async function writeRaw(dir: string, tensors: Tensor[]): Promise<{ bin: string; descr: string; shape: number[] }[]> {
  return Promise.all(
    tensors.map(async (t, i) => {
      const bin = join(dir, `${i}.bin`);
      await writeFile(bin, bytesOf(t));
      return { bin, descr: DESCR[t.dtype as NpyDType], shape: [...t.shape] };
    }),
  );
}

async function assertRejectsWith(p: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof LowrankError, `expected a LowrankError, got ${String(e)}`);
    if (code === 'E_FORMAT') assert.ok(e instanceof FormatError, 'expected a FormatError');
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

/** A version 1.0 .npy file with the given header text (unpadded) and data bytes. */
function rawNpy(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(`${header}\n`);
  const out = new Uint8Array(10 + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, h.length, true);
  out.set(h, 10);
  out.set(data, 10 + h.length);
  return out;
}

// ---- round trips ------------------------------------------------------------------------------

test('every dtype round-trips bit-exactly through writeNpy/readNpy', async (t) => {
  const dir = await tempDir(t);
  const r = rng(1);
  for (const [i, c] of CASES.entries()) {
    const original = randomTensor(c.dtype, c.shape, r);
    const path = join(dir, `${i}.npy`);
    await writeNpy(path, original);
    assertSameTensor(await readNpy(path), original, `${c.dtype} [${c.shape.join(', ')}]`);
  }
});

test('every dtype round-trips bit-exactly through writeNpz/readNpz, stored and compressed', async (t) => {
  const dir = await tempDir(t);
  const r = rng(2);
  const arrays: Record<string, Tensor> = {};
  for (const [i, c] of CASES.entries()) arrays[`a${i}_${c.dtype}`] = randomTensor(c.dtype, c.shape, r);
  arrays['layer.0/weight'] = randomTensor('f32', [16, 16], r);
  for (const compress of [false, true]) {
    const path = join(dir, `${String(compress)}.npz`);
    await writeNpz(path, arrays, { compress });
    const bytes = await readFile(path);
    assert.equal(bytes.readUInt16LE(8), compress ? 8 : 0, 'compression method of the first member');
    const back = await readNpz(path);
    assert.deepEqual(Object.keys(back).sort(), Object.keys(arrays).sort());
    for (const [k, v] of Object.entries(arrays)) assertSameTensor(back[k], v, `${k} (compress ${String(compress)})`);
  }
});

test('encodeNpz is deterministic and parseNpz reads it back without the file system', () => {
  const arrays = { x: randomTensor('f32', [3, 4], rng(3)), y: randomTensor('i64', [5], rng(4)) };
  for (const compress of [false, true]) {
    const a = encodeNpz(arrays, { compress });
    assert.ok(sameBytes(a, encodeNpz(arrays, { compress })));
    const back = parseNpz(a, 'memory.npz');
    assertSameTensor(back.x, arrays.x, 'x');
    assertSameTensor(back.y, arrays.y, 'y');
  }
  assertSameTensor(parseNpy(encodeNpy(arrays.y), 'memory.npy'), arrays.y, 'npy');
});

test('a header too long for version 1.0 is written as version 2.0, padded to 64 bytes, and read back', () => {
  const original = randomTensor('u8', new Array<number>(30000).fill(1), rng(5));
  const bytes = encodeNpy(original);
  assert.equal(bytes[6], 2);
  const headerLength = new DataView(bytes.buffer).getUint32(8, true);
  assert.equal((12 + headerLength) % 64, 0);
  assertSameTensor(parseNpy(bytes, 'v2.npy'), original, 'v2');
});

// ---- against numpy ----------------------------------------------------------------------------

test('reads .npy files numpy wrote, for every dtype and shape, exactly', async (t) => {
  const dir = await tempDir(t);
  const r = rng(10);
  const originals = CASES.map((c) => randomTensor(c.dtype, c.shape, r));
  const specs = await writeRaw(dir, originals);
  const values = pythonJson<string[][]>(
    `${RENDER}
out = []
for i, s in enumerate(json.load(sys.stdin)):
    a = raw(s['bin'], s['descr'], s['shape'])
    np.save(s['bin'] + '.npy', a)
    out.append(render(a))
print(json.dumps(out))`,
    [],
    JSON.stringify(specs),
  );
  for (const [i, original] of originals.entries()) {
    const label = `${original.dtype} [${original.shape.join(', ')}]`;
    const read = await readNpy(`${specs[i].bin}.npy`);
    assertSameTensor(read, original, label);
    assertPyValues(read, values[i], label);
  }
});

test('numpy loads .npy files we wrote, for every dtype and shape, exactly', async (t) => {
  const dir = await tempDir(t);
  const r = rng(11);
  const originals = CASES.map((c) => randomTensor(c.dtype, c.shape, r));
  const specs = await writeRaw(dir, originals);
  for (const [i, original] of originals.entries()) await writeNpy(`${specs[i].bin}.npy`, original);
  const loaded = pythonJson<{ descr: string; shape: number[]; sameBytes: boolean; values: string[] }[]>(
    `${RENDER}
out = []
for s in json.load(sys.stdin):
    a = np.load(s['bin'] + '.npy')
    same = a.tobytes() == open(s['bin'], 'rb').read()
    out.append({'descr': a.dtype.str, 'shape': list(a.shape), 'sameBytes': same, 'values': render(a)})
print(json.dumps(out))`,
    [],
    JSON.stringify(specs),
  );
  for (const [i, original] of originals.entries()) {
    const label = `${original.dtype} [${original.shape.join(', ')}]`;
    assert.equal(loaded[i].descr, DESCR[original.dtype as NpyDType], `${label}: dtype`);
    assert.deepEqual(loaded[i].shape, original.shape, `${label}: shape`);
    assert.ok(loaded[i].sameBytes, `${label}: numpy's bytes differ`);
    assertPyValues(original, loaded[i].values, label);
  }
});

test('our .npy bytes equal np.save bytes for the same array', async (t) => {
  const dir = await tempDir(t);
  const r = rng(12);
  const cases: Case[] = [
    { dtype: 'f32', shape: [3, 4] },
    { dtype: 'f64', shape: [] },
    { dtype: 'i64', shape: [5] },
    { dtype: 'u8', shape: [100003] },
    { dtype: 'bool', shape: [2, 2, 2] },
    { dtype: 'f16', shape: [0, 7] },
    { dtype: 'i16', shape: new Array<number>(40).fill(1) },
    // Here the header ends exactly on a 64-byte boundary, so numpy pads a further 64 bytes.
    { dtype: 'f32', shape: [5, ...new Array<number>(11).fill(1), 11, 11] },
  ];
  const originals = cases.map((c) => randomTensor(c.dtype, c.shape, r));
  const specs = await writeRaw(dir, originals);
  python(
    `${RENDER}
for s in json.load(sys.stdin):
    np.save(s['bin'] + '.npy', raw(s['bin'], s['descr'], s['shape']))`,
    [],
    JSON.stringify(specs),
  );
  for (const [i, original] of originals.entries()) {
    const numpys = await readFile(`${specs[i].bin}.npy`);
    assert.ok(sameBytes(encodeNpy(original), numpys), `${original.dtype} [${original.shape.join(', ')}]: bytes differ from np.save`);
  }
});

test('reads np.savez and np.savez_compressed archives, whose members have zip64 local extra fields', async (t) => {
  const dir = await tempDir(t);
  const r = rng(13);
  const originals = ALL.map((d) => randomTensor(d, [3, 5], r));
  const specs = await writeRaw(dir, originals);
  python(
    `${RENDER}
d = sys.argv[1]
arrays = {'a_' + s['descr'].replace('<', 'le').replace('|', 'na'): raw(s['bin'], s['descr'], s['shape']) for s in json.load(sys.stdin)}
np.savez(d + '/plain.npz', **arrays)
np.savez_compressed(d + '/compressed.npz', **arrays)
np.savez(d + '/positional.npz', *arrays.values())`,
    [dir],
    JSON.stringify(specs),
  );
  const keyOf = (descr: string): string => 'a_' + descr.replace('<', 'le').replace('|', 'na');
  for (const name of ['plain', 'compressed']) {
    const bytes = await readFile(join(dir, `${name}.npz`));
    assert.equal(bytes.readUInt32LE(0), 0x04034b50);
    assert.equal(bytes.readUInt16LE(8), name === 'plain' ? 0 : 8, `${name}: compression method`);
    assert.equal(bytes.readUInt32LE(18), 0xffffffff, `${name}: local header sizes are in the zip64 extra field`);
    assert.equal(bytes.readUInt16LE(30 + bytes.readUInt16LE(26)), 1, `${name}: first extra field is zip64`);
    const back = await readNpz(join(dir, `${name}.npz`));
    assert.equal(Object.keys(back).length, originals.length);
    for (const o of originals) assertSameTensor(back[keyOf(DESCR[o.dtype as NpyDType])], o, `${name} ${o.dtype}`);
  }
  const positional = await readNpz(join(dir, 'positional.npz'));
  assert.deepEqual(Object.keys(positional).sort(), originals.map((_, i) => `arr_${i}`).sort());
  for (const [i, o] of originals.entries()) assertSameTensor(positional[`arr_${i}`], o, `arr_${i}`);
});

test('reads zip64 central directory fields and the zip64 end record', async (t) => {
  const dir = await tempDir(t);
  const r = rng(16);
  const originals = [randomTensor('f64', [6], r), randomTensor('u16', [2, 5], r)];
  const specs = await writeRaw(dir, originals);
  // With ZIP64_LIMIT lowered, Python's zipfile writes what it writes for archives over 4 GiB.
  python(
    `${RENDER}
zipfile.ZIP64_LIMIT = 16
arrays = [raw(s['bin'], s['descr'], s['shape']) for s in json.load(sys.stdin)]
np.savez_compressed(sys.argv[1], *arrays)`,
    [join(dir, 'zip64.npz')],
    JSON.stringify(specs),
  );
  const bytes = await readFile(join(dir, 'zip64.npz'));
  assert.ok(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'the archive has a zip64 end record');
  const back = await readNpz(join(dir, 'zip64.npz'));
  for (const [i, o] of originals.entries()) assertSameTensor(back[`arr_${i}`], o, `arr_${i}`);
});

test('numpy loads .npz archives we wrote, stored and compressed, and their CRCs check', async (t) => {
  const dir = await tempDir(t);
  const r = rng(14);
  const originals = CASES.map((c) => randomTensor(c.dtype, c.shape, r));
  const specs = await writeRaw(dir, originals);
  const arrays = Object.fromEntries(originals.map((o, i) => [`k${i}`, o]));
  for (const compress of [false, true]) await writeNpz(join(dir, `${String(compress)}.npz`), arrays, { compress });
  const result = pythonJson<Record<string, { keys: string[]; testzip: string | null; checks: [string, number[], boolean, string[]][] }>>(
    `${RENDER}
d = sys.argv[1]
specs = json.load(sys.stdin)
out = {}
for name in ['false', 'true']:
    path = d + '/' + name + '.npz'
    z = np.load(path)
    checks = []
    for i, s in enumerate(specs):
        a = z['k%d' % i]
        checks.append([a.dtype.str, list(a.shape), a.tobytes() == open(s['bin'], 'rb').read(), render(a)])
    out[name] = {'keys': sorted(z.files), 'testzip': zipfile.ZipFile(path).testzip(), 'checks': checks}
print(json.dumps(out))`,
    [dir],
    JSON.stringify(specs),
  );
  for (const name of ['false', 'true']) {
    const { keys, testzip, checks } = result[name];
    assert.deepEqual(keys, Object.keys(arrays).sort());
    assert.equal(testzip, null, `${name}: zipfile found a bad member`);
    for (const [i, o] of originals.entries()) {
      const [descr, shape, same, values] = checks[i];
      const label = `compress ${name}, ${o.dtype} [${o.shape.join(', ')}]`;
      assert.equal(descr, DESCR[o.dtype as NpyDType], label);
      assert.deepEqual(shape, o.shape, label);
      assert.ok(same, `${label}: numpy's bytes differ`);
      assertPyValues(o, values, label);
    }
  }
});

test('reads header versions 2.0 and 3.0 written by numpy', async (t) => {
  const dir = await tempDir(t);
  const original = randomTensor('f32', [4, 3], rng(15));
  const [spec] = await writeRaw(dir, [original]);
  python(
    `${RENDER}
s = json.load(sys.stdin)
a = raw(s['bin'], s['descr'], s['shape'])
for v in [(2, 0), (3, 0)]:
    with open(s['bin'] + '.v%d.npy' % v[0], 'wb') as f:
        np.lib.format.write_array(f, a, version=v)`,
    [],
    JSON.stringify(spec),
  );
  for (const major of [2, 3]) {
    const path = `${spec.bin}.v${major}.npy`;
    assert.equal((await readFile(path))[6], major);
    assertSameTensor(await readNpy(path), original, `version ${major}.0`);
  }
});

test('skips zip members that are not .npy', async (t) => {
  const dir = await tempDir(t);
  python(
    `import zipfile, io, sys
buf = io.BytesIO()
np.save(buf, np.arange(4, dtype='<i4'))
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('README.txt', 'not an array')
    z.writestr('x.npy', buf.getvalue())
    z.writestr('sub/', '')`,
    [join(dir, 'mixed.npz')],
  );
  const back = await readNpz(join(dir, 'mixed.npz'));
  assert.deepEqual(Object.keys(back), ['x']);
  assert.deepEqual([...back.x.data], [0, 1, 2, 3]);
});

test('the header parser takes the Python literal forms numpy accepts', () => {
  const data = new Uint8Array(new Int32Array([7, -8]).buffer);
  const variants = [
    `{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }`,
    `{"shape": (2,), "fortran_order": False, "descr": "<i4"}`,
    `{ 'descr' : '=i4' ,\t'fortran_order':False,'shape':( 2 , ) }`,
    `{'descr': '<i4', 'fortran_order': True, 'shape': (2,)}`,
  ];
  for (const h of variants) {
    const got = parseNpy(rawNpy(h, data), 'h.npy');
    assert.equal(got.dtype, 'i32', h);
    assert.deepEqual(got.shape, [2], h);
    assert.deepEqual([...got.data], [7, -8], h);
  }
  const scalar = parseNpy(rawNpy(`{'descr': '<f8', 'fortran_order': False, 'shape': (), }`, new Uint8Array(new Float64Array([2.5]).buffer)), 's.npy');
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual([...scalar.data], [2.5]);
});

// ---- errors -----------------------------------------------------------------------------------

/** Has numpy save each named expression (with allow_pickle) to <dir>/<name>.npy. */
function numpySaves(dir: string, arrays: Record<string, string>): void {
  const lines = Object.entries(arrays).map(([name, expr]) => `np.save(d + '/${name}.npy', ${expr}, allow_pickle=True)`);
  python(`import sys\nd = sys.argv[1]\n${lines.join('\n')}`, [dir]);
}

test('refuses a Fortran-order array made by numpy', async (t) => {
  const dir = await tempDir(t);
  numpySaves(dir, { fortran: 'np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))' });
  await assertRejectsWith(readNpy(join(dir, 'fortran.npy')), 'E_UNSUPPORTED', /Fortran-order arrays are not supported; save with np\.ascontiguousarray/);
});

test('refuses an object array (pickle) made by numpy', async (t) => {
  const dir = await tempDir(t);
  numpySaves(dir, { object: "np.array([1, 'a'], dtype=object)" });
  await assertRejectsWith(readNpy(join(dir, 'object.npy')), 'E_UNSUPPORTED', /pickle/);
  assertThrowsCode(() => parseNpy(new Uint8Array([0x80, 4, 0x95]), 'p.pkl'), 'E_UNSUPPORTED', /p\.pkl: this is a Python pickle/);
});

test('refuses big-endian, structured and other dtypes made by numpy', async (t) => {
  const dir = await tempDir(t);
  numpySaves(dir, {
    big: "np.arange(3, dtype='>f4')",
    structured: "np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')])",
    complex: "np.zeros(2, dtype='<c8')",
  });
  await assertRejectsWith(readNpy(join(dir, 'big.npy')), 'E_UNSUPPORTED', /big-endian dtype '>f4'/);
  await assertRejectsWith(readNpy(join(dir, 'structured.npy')), 'E_UNSUPPORTED', /structured/);
  await assertRejectsWith(readNpy(join(dir, 'complex.npy')), 'E_UNSUPPORTED', /'<c8' is not supported/);
  const withDescr = (descr: string): Uint8Array => rawNpy(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(4));
  assertThrowsCode(() => parseNpy(withDescr('!f4'), 'd.npy'), 'E_UNSUPPORTED', /numpy dtype '!f4' is not supported/);
  assertThrowsCode(() => parseNpy(withDescr('|f4'), 'd.npy'), 'E_UNSUPPORTED', /dtype '\|f4' has no byte order/);
  assertThrowsCode(() => parseNpy(withDescr('|O'), 'd.npy'), 'E_UNSUPPORTED', /pickle is not supported/);
});

test('refuses truncated files and a shape the data cannot hold, naming file and offset', async (t) => {
  const dir = await tempDir(t);
  const good = encodeNpy(randomTensor('f32', [4, 4], rng(20)));
  const path = join(dir, 'cut.npy');
  await writeFile(path, good.subarray(0, good.length - 1));
  await assertRejectsWith(readNpy(path), 'E_FORMAT', /cut\.npy, byte 128, shape \[4, 4\]: truncated: the data section has 63 bytes, the shape needs 64/);
  await writeFile(path, good.subarray(0, 40));
  await assertRejectsWith(readNpy(path), 'E_FORMAT', /cut\.npy, byte 10: truncated: the header is 118 bytes/);
  await writeFile(path, good.subarray(0, 9));
  await assertRejectsWith(readNpy(path), 'E_FORMAT', /truncated/);
  // A huge shape over 8 bytes of data must fail on the length check, not try to allocate.
  const huge = rawNpy(`{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }`, new Uint8Array(8));
  assertThrowsCode(() => parseNpy(huge, 'huge.npy'), 'E_FORMAT', /truncated: the data section has 8 bytes/);
  const extra = new Uint8Array(good.length + 3);
  extra.set(good);
  assertThrowsCode(() => parseNpy(extra, 'extra.npy'), 'E_FORMAT', /3 unexpected bytes after the array data/);
});

test('refuses bad magic and an unknown version', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'text.npy');
  await writeFile(path, 'hello, this is not numpy');
  await assertRejectsWith(readNpy(path), 'E_FORMAT', /text\.npy, byte 0: not a \.npy file \(bad magic/);
  const v9 = encodeNpy(randomTensor('u8', [2], rng(21)));
  v9[6] = 9;
  assertThrowsCode(() => parseNpy(v9, 'v9.npy'), 'E_UNSUPPORTED', /version 9\.0 is not supported/);
});

test('refuses headers that do not parse, with the byte offset', () => {
  const data = new Uint8Array(4);
  const cases: [string, RegExp][] = [
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1 }`, /h\.npy, byte 63: the header does not parse: expected ',' or '\)'/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os'), }`, /byte 60: the header does not parse: unexpected '_'/],
    [`{'descr': '<f4', 'fortran_order': False}`, /the header has keys \{descr, fortran_order\}/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}`, /repeats the key 'shape'/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1)}`, /'shape' is not a tuple/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}`, /'shape' is not a tuple of non-negative integers/],
    [`{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}`, /'fortran_order' is not True or False/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x`, /unexpected text after the header dict/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(100)}`, /nests too deeply/],
    [`['descr', '<f4']`, /not a Python dict/],
  ];
  for (const [header, pattern] of cases) assertThrowsCode(() => parseNpy(rawNpy(header, data), 'h.npy'), 'E_FORMAT', pattern);
});

test('refuses to write bf16 and fp8 tensors and leaves no file', async (t) => {
  const dir = await tempDir(t);
  for (const dtype of ['bf16', 'f8_e4m3', 'f8_e5m2'] as const) {
    const path = join(dir, `${dtype}.npy`);
    await assertRejectsWith(writeNpy(path, tensor(dtype, [2])), 'E_UNSUPPORTED', new RegExp(`numpy has no ${dtype} dtype; convert the tensor to f32 first`));
    assert.equal(existsSync(path), false);
    await assertRejectsWith(writeNpz(join(dir, 'x.npz'), { w: tensor(dtype, [2]) }), 'E_UNSUPPORTED', /tensor 'w'.*convert the tensor to f32/);
  }
});

test('refuses corrupt zips, naming the file', async (t) => {
  const dir = await tempDir(t);
  const arrays = { x: randomTensor('f32', [8, 8], rng(22)) };
  const stored = encodeNpz(arrays);
  const compressed = encodeNpz(arrays, { compress: true });
  const write = async (name: string, bytes: Uint8Array): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return path;
  };
  await assertRejectsWith(readNpz(await write('text.npz', new TextEncoder().encode('not a zip at all, just text'))), 'E_FORMAT', /text\.npz: not a zip archive/);
  const flipped = stored.slice();
  flipped[30 + 'x.npy'.length + 200] ^= 1;
  await assertRejectsWith(readNpz(await write('flipped.npz', flipped)), 'E_FORMAT', /flipped\.npz, tensor 'x\.npy', byte 35: corrupt zip archive: the member fails its size or CRC-32 check/);
  const deflateBroken = compressed.slice();
  deflateBroken.fill(0xff, 40, 60);
  await assertRejectsWith(readNpz(await write('deflate.npz', deflateBroken)), 'E_FORMAT', /deflate\.npz, tensor 'x\.npy'.*corrupt zip archive/);
  const badOffset = stored.slice();
  new DataView(badOffset.buffer).setUint32(badOffset.length - 6, 0x7fffffff, true);
  await assertRejectsWith(readNpz(await write('offset.npz', badOffset)), 'E_FORMAT', /offset\.npz, byte 2147483647: corrupt zip archive: the central directory runs past the end/);
  await assertRejectsWith(readNpz(await write('half.npz', stored.subarray(0, stored.length >> 1))), 'E_FORMAT', /half\.npz: not a zip archive/);
});

test('a missing input is E_NOT_FOUND and an existing output needs overwrite', async (t) => {
  const dir = await tempDir(t);
  await assertRejectsWith(readNpy(join(dir, 'missing.npy')), 'E_NOT_FOUND', /missing\.npy: (opening|reading) failed: no such file/);
  await assertRejectsWith(readNpz(join(dir, 'missing.npz')), 'E_NOT_FOUND', /missing\.npz: (opening|reading) failed/);
  await assertRejectsWith(readNpyHeader(join(dir, 'missing.npy')), 'E_NOT_FOUND', /missing\.npy: (opening|reading) failed: no such file/);
  await assertRejectsWith(readNpzHeaders(join(dir, 'missing.npz')), 'E_NOT_FOUND', /missing\.npz: (opening|reading) failed/);
  const path = join(dir, 'out.npy');
  const first = randomTensor('i32', [3], rng(23));
  const second = randomTensor('i32', [4], rng(24));
  await writeNpy(path, first);
  await assertRejectsWith(writeNpy(path, second), 'E_EXISTS', /already exists/);
  assertSameTensor(await readNpy(path), first, 'kept');
  await writeNpy(path, second, { overwrite: true });
  assertSameTensor(await readNpy(path), second, 'replaced');
});

// ---- header-only reads, bounded reads, files that are not files ---------------------------------

test('readNpyHeader and readNpzHeaders give what the full readers give on numpy files', async (t) => {
  const dir = await tempDir(t);
  const r = rng(30);
  const originals = CASES.map((c) => randomTensor(c.dtype, c.shape, r));
  const specs = await writeRaw(dir, originals);
  python(
    `${RENDER}
d = sys.argv[1]
arrays = [raw(s['bin'], s['descr'], s['shape']) for s in json.load(sys.stdin)]
for i, a in enumerate(arrays):
    np.save(d + '/%d.npy' % i, a)
    with open(d + '/%d.v3.npy' % i, 'wb') as f:
        np.lib.format.write_array(f, a, version=(3, 0))
np.savez(d + '/plain.npz', *arrays)
np.savez_compressed(d + '/compressed.npz', *arrays)
zipfile.ZIP64_LIMIT = 16
np.savez_compressed(d + '/zip64.npz', *arrays)`,
    [dir],
    JSON.stringify(specs),
  );
  for (const [i, o] of originals.entries()) {
    for (const file of [`${i}.npy`, `${i}.v3.npy`]) {
      const full = await readNpy(join(dir, file));
      assert.deepEqual(await readNpyHeader(join(dir, file)), { dtype: full.dtype, shape: full.shape }, file);
      assert.deepEqual(full.shape, o.shape, file);
    }
  }
  for (const name of ['plain', 'compressed', 'zip64']) {
    const path = join(dir, `${name}.npz`);
    const full = Object.entries(await readNpz(path)).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }]);
    assert.deepEqual(await readNpzHeaders(path), Object.fromEntries(full), name);
  }
});

test('the header readers are as strict as the full readers', async (t) => {
  const dir = await tempDir(t);
  const good = encodeNpy(randomTensor('f32', [4, 4], rng(31)));
  const write = async (name: string, bytes: Uint8Array): Promise<string> => {
    await writeFile(join(dir, name), bytes);
    return join(dir, name);
  };
  const same = async (full: () => Promise<unknown>, header: () => Promise<unknown>, pattern: RegExp): Promise<void> => {
    const error = await full().then(() => assert.fail('the full reader accepted it'), (e: unknown) => e);
    assert.ok(error instanceof LowrankError);
    assert.match(error.message, pattern);
    await assertRejectsWith(header(), error.code, new RegExp(`^${error.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  };
  const withExtra = new Uint8Array(good.length + 1);
  withExtra.set(good);
  const huge = rawNpy(`{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }`, new Uint8Array(8));
  const npys: [string, Uint8Array, RegExp][] = [
    ['cut.npy', good.subarray(0, good.length - 1), /truncated: the data section has 63 bytes/],
    ['short.npy', good.subarray(0, 40), /truncated: the header is 118 bytes/],
    ['extra.npy', withExtra, /1 unexpected bytes after the array data/],
    ['huge.npy', huge, /truncated/],
    ['magic.npy', new TextEncoder().encode('not numpy at all'), /bad magic/],
    ['fortran.npy', rawNpy(`{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }`, new Uint8Array(16)), /Fortran-order/],
    ['long.npy', Uint8Array.from([...good.subarray(0, 6), 2, 0, 0, 0, 0x20, 0]), /headers over 1048576 bytes are not read/],
  ];
  for (const [name, bytes, pattern] of npys) {
    const path = await write(name, bytes);
    await same(() => readNpy(path), () => readNpyHeader(path), pattern);
  }
  const stored = encodeNpz({ x: randomTensor('f32', [8, 8], rng(32)) });
  const badOffset = stored.slice();
  new DataView(badOffset.buffer).setUint32(badOffset.length - 6, 0x7fffffff, true);
  const npzs: [string, Uint8Array, RegExp][] = [
    ['text.npz', new TextEncoder().encode('not a zip at all, just text'), /not a zip archive/],
    ['offset.npz', badOffset, /central directory runs past the end/],
    ['half.npz', stored.subarray(0, stored.length >> 1), /not a zip archive/],
    ['extra.npz', handZip([{ name: 'x.npy', stored: withExtra, size: withExtra.length, method: 0 }]), /tensor 'x'.*1 unexpected bytes after the array data/],
    ['short.npz', handZip([{ name: 'x.npy', stored: good, size: good.length - 1, method: 0 }]), /cannot hold the declared/],
    ['method.npz', handZip([{ name: 'x.npy', stored: good, size: good.length, method: 12 }]), /compression method 12 is not supported/],
    ['deflated.npz', handZip([{ name: 'x.npy', stored: deflateRawSync(withExtra), size: withExtra.length, method: 8 }]), /1 unexpected bytes after the array data/],
  ];
  for (const [name, bytes, pattern] of npzs) {
    const path = await write(name, bytes);
    await same(() => readNpz(path), () => readNpzHeaders(path), pattern);
  }
});

test('a 3 GB sparse .npy is described from its header, without reading its data', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'big.npy');
  const n = 750_000_000;
  python(
    `import sys
with open(sys.argv[1], 'wb') as f:
    np.lib.format.write_array_header_1_0(f, {'descr': '<f4', 'fortran_order': False, 'shape': (${n},)})
    f.truncate(f.tell() + ${n * 4})`,
    [path],
  );
  const header = await bounded(() => readNpyHeader(path), 50);
  assert.deepEqual(header, { dtype: 'f32', shape: [n] });
  // The whole file is more than one read can hold: refused with a typed error, not a crash.
  await assert.rejects(readNpy(path), (e: unknown) => e instanceof LowrankError);
  const size = 128 + n * 4;
  await truncate(path, size + 1);
  await assertRejectsWith(readNpyHeader(path), 'E_FORMAT', /big\.npy, byte 3000000128, shape \[750000000\]: 1 unexpected bytes after the array data/);
  await truncate(path, size - 1);
  await assertRejectsWith(readNpyHeader(path), 'E_FORMAT', /truncated: the data section has 2999999999 bytes, the shape needs 3000000000/);
});

test('npz decompression bombs are refused at once, in bounded memory', async (t) => {
  const dir = await tempDir(t);
  const GiB = 2 ** 30;
  const zeros = zeroStream(1024); // 1 GiB of zeros in about 1 MB
  const head = (n: number): Uint8Array => rawNpy(`{'descr': '|u1', 'fortran_order': False, 'shape': (${n},), }`);
  const npyOfZeros = (n: number): Uint8Array => Buffer.concat([deflateRawSync(head(n), { finishFlush: zlibConstants.Z_FULL_FLUSH }), zeros]);
  const honest = { name: 'bomb.npy', stored: npyOfZeros(GiB), size: head(GiB).length + GiB, method: 8 };
  const small = 1 << 20;
  const archives: Record<string, Uint8Array> = {
    // 1 GiB of zeros that is not an .npy: refused on the header, before the data is inflated.
    junk: handZip([{ name: 'bomb.npy', stored: zeros, size: GiB, method: 8 }]),
    // A header and a declared size of 1 MiB over 1 GiB of zeros: inflating stops past 1 MiB.
    lying: handZip([{ name: 'bomb.npy', stored: npyOfZeros(small), size: head(small).length + small, method: 8 }]),
    // A declared size no deflate stream of this length can reach.
    ratio: handZip([{ ...honest, size: 0xffffff00, stored: npyOfZeros(0xffffff00 - head(0xffffff00).length) }]),
    // 100 directory entries pointing at one member.
    copies: handZip([honest], 100),
    honest: handZip([honest]),
  };
  const paths: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(archives)) {
    paths[name] = join(dir, `${name}.npz`);
    await writeFile(paths[name], bytes);
  }
  for (const read of [readNpz, readNpzHeaders]) {
    await bounded(() => assertRejectsWith(read(paths.junk), 'E_FORMAT', /junk\.npz, tensor 'bomb', byte 0: not a \.npy file/));
    await bounded(() => assertRejectsWith(read(paths.ratio), 'E_FORMAT', /ratio\.npz, tensor 'bomb\.npy'.*cannot hold the declared 4294967040/));
    await bounded(() => assertRejectsWith(read(paths.copies), 'E_FORMAT', /copies\.npz.*corrupt zip archive: member 'bomb\d+\.npy' overlaps member 'bomb\d+\.npy'/));
  }
  await bounded(() => assertRejectsWith(readNpz(paths.lying), 'E_FORMAT', new RegExp(`lying\\.npz, tensor 'bomb\\.npy'.*inflates to more than its declared ${head(small).length + small} bytes`)));
  // The header readers read no data, so they describe what the headers say.
  assert.deepEqual(await bounded(() => readNpzHeaders(paths.lying)), { bomb: { dtype: 'u8', shape: [small] } });
  assert.deepEqual(await bounded(() => readNpzHeaders(paths.honest)), { bomb: { dtype: 'u8', shape: [GiB] } });
});

test('paths that are not regular files are refused before they are opened', { timeout: 20_000 }, async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'pipe.npy');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const folder = join(dir, 'folder.npz');
  await mkdir(folder);
  const paths = [fifo, folder, ...(existsSync('/dev/zero') ? ['/dev/zero'] : [])];
  for (const path of paths) {
    for (const read of [readNpy, readNpz, readNpyHeader, readNpzHeaders]) {
      await assertRejectsWith(read(path), 'E_IO', /not a regular file/);
    }
  }
});

/** A deflate stream of `mib` MiB of zeros, from independent 1 MiB pieces (about 1 KiB each). */
function zeroStream(mib: number): Uint8Array {
  const piece = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlibConstants.Z_FULL_FLUSH });
  return Buffer.concat([...Array<Buffer>(mib).fill(piece), Buffer.from([0x03, 0x00])]);
}

interface HandMember {
  name: string;
  stored: Uint8Array;
  size: number;
  method: number;
}

/**
 * A zip written by hand: sizes as declared, CRCs zero. With `copies` > 1 each member gets that many
 * central directory entries (x0.npy, x1.npy, ...), all pointing at its one local header.
 */
function handZip(members: HandMember[], copies = 1): Uint8Array {
  const record = (central: boolean, m: HandMember, name: string, localOffset: number): Uint8Array => {
    const nameBytes = new TextEncoder().encode(name);
    const fixed = central ? 46 : 30;
    const s = central ? 2 : 0;
    const out = new Uint8Array(fixed + nameBytes.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, central ? 0x02014b50 : 0x04034b50, true);
    v.setUint16(8 + s, m.method, true);
    v.setUint32(18 + s, m.stored.length, true);
    v.setUint32(22 + s, m.size, true);
    v.setUint16(26 + s, nameBytes.length, true);
    if (central) v.setUint32(42, localOffset, true);
    out.set(nameBytes, fixed);
    return out;
  };
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const names = copies === 1 ? [m.name] : Array.from({ length: copies }, (_, i) => m.name.replace(/\.npy$/, `${i}.npy`));
    central.push(...names.map((name) => record(true, m, name, offset)));
    const local = record(false, m, m.name, 0);
    parts.push(local, m.stored);
    offset += local.length + m.stored.length;
  }
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, central.length, true);
  v.setUint16(10, central.length, true);
  v.setUint32(12, central.reduce((n, c) => n + c.length, 0), true);
  v.setUint32(16, offset, true);
  return Buffer.concat([...parts, ...central, end]);
}

/** Runs `f`, checking it takes under 5 s and raises the process's peak memory by under `mib` MiB. */
async function bounded<T>(f: () => Promise<T>, mib = 200): Promise<T> {
  const peak = process.resourceUsage().maxRSS;
  const start = performance.now();
  const result = await f();
  const seconds = (performance.now() - start) / 1000;
  const grew = (process.resourceUsage().maxRSS - peak) / 1024;
  assert.ok(seconds < 5, `took ${seconds.toFixed(1)} s`);
  assert.ok(grew < mib, `peak memory grew by ${grew.toFixed(0)} MiB`);
  return result;
}

test('.npz arrays: a deflated member\'s array is used where it was inflated (no second copy); a stored member\'s is copied, so the caller\'s bytes never change', async () => {
  const { encodeNpz, parseNpz } = await import('../../src/io/npz.js');
  const { tensor } = await import('../../src/core/tensor.js');
  const a = tensor('f32', [300, 7], rng(3).fillNormal(new Float32Array(2100)));
  const b = tensor('f64', [5], Float64Array.of(1, 2, 3, 4, 5));
  for (const compress of [false, true]) {
    const bytes = encodeNpz({ a, b }, { compress });
    const before = bytes.slice();
    const back = parseNpz(bytes, 'mem.npz');
    assert.deepEqual(back.a.data, a.data);
    assert.deepEqual(back.b.data, b.data);
    for (const t of Object.values(back)) if (t.data instanceof Float32Array || t.data instanceof Float64Array) t.data.fill(0);
    assert.deepEqual(bytes, before, `compress ${compress}: the input bytes are untouched`);
    // Deflated: the array is a view into its member's inflated bytes (.npy header included, and the
    // one spare byte zlib's output chunk has), not a copy of them.
    const { byteOffset, buffer } = back.a.data;
    if (compress) assert.ok(byteOffset > 0 && buffer.byteLength === byteOffset + a.data.byteLength + 1, `a view after the .npy header: offset ${byteOffset}, buffer ${buffer.byteLength}`);
    if (compress) assert.equal(back.b.data.buffer.byteLength, 128 + 40, 'a small member owns its buffer (not a slab of Node\'s pool)');
    else assert.equal(byteOffset, 0, 'a copy of its own');
  }
});
