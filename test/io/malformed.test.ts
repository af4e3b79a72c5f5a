/**
 * A corpus of malformed and hostile safetensors files. Each must fail with a typed error that names
 * the file and says what is wrong — in the library and at the CLI (exit 1, no stack trace) — and
 * none may hang or allocate by an untrusted size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors/index.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { LowrankError, type ErrorCode } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

function file(header: unknown, dataBytes: number, opts: { rawHeader?: string | Buffer; lengthOverride?: bigint } = {}): Uint8Array {
  const json = Buffer.isBuffer(opts.rawHeader) ? opts.rawHeader : Buffer.from(opts.rawHeader ?? JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(opts.lengthOverride ?? BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

const ok = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I8', shape: [4], data_offsets: [16, 20] } };

const CORPUS: { name: string; bytes: Uint8Array; code: ErrorCode; message: RegExp }[] = [
  { name: 'empty file', bytes: new Uint8Array(0), code: 'E_FORMAT', message: /too short for the 8-byte header length/ },
  { name: 'shorter than 8 bytes', bytes: new Uint8Array(5), code: 'E_FORMAT', message: /too short/ },
  { name: 'truncated data', bytes: file(ok, 20).subarray(0, 8 + JSON.stringify(ok).length + 10), code: 'E_FORMAT', message: /past the data buffer.*truncated/ },
  { name: 'header length past the end', bytes: file(ok, 20, { lengthOverride: 5000n }), code: 'E_FORMAT', message: /runs past the end of the file/ },
  { name: 'header length 2^63', bytes: file(ok, 20, { lengthOverride: 1n << 63n }), code: 'E_FORMAT', message: /exceeds the format's limit/ },
  { name: 'header length just over 100 MB', bytes: file(ok, 20, { lengthOverride: 100_000_001n }), code: 'E_FORMAT', message: /exceeds the format's limit/ },
  { name: 'overlapping offsets', bytes: file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), code: 'E_FORMAT', message: /overlaps tensor 'a'/ },
  { name: 'size mismatch', bytes: file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), code: 'E_FORMAT', message: /span 8 bytes but F32 x \[3\] needs 12/ },
  { name: 'unknown dtype', bytes: file({ a: { dtype: 'F17', shape: [1], data_offsets: [0, 2] } }, 2), code: 'E_FORMAT', message: /unknown dtype 'F17'/ },
  { name: 'valid but unsupported dtype', bytes: file({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8), code: 'E_UNSUPPORTED', message: /C64/ },
  { name: 'non-JSON header', bytes: file(null, 0, { rawHeader: '{"a": {"dtype": "F32",' }), code: 'E_FORMAT', message: /not valid JSON/ },
  { name: 'array header', bytes: file([1, 2, 3], 0), code: 'E_FORMAT', message: /must be a JSON object, found an array/ },
  { name: 'number header', bytes: file(null, 0, { rawHeader: '12345678' }), code: 'E_FORMAT', message: /must be a JSON object, found number/ },
  { name: 'invalid UTF-8 header', bytes: file(null, 0, { rawHeader: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }), code: 'E_FORMAT', message: /not valid UTF-8/ },
  { name: 'shape product overflows', bytes: file({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4), code: 'E_FORMAT', message: /more elements than any file can hold/ },
  { name: 'negative dimension', bytes: file({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), code: 'E_FORMAT', message: /not a list of non-negative integers/ },
  { name: 'fractional dimension', bytes: file({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), code: 'E_FORMAT', message: /not a list of non-negative integers/ },
  { name: 'duplicate names', bytes: file(null, 8, { rawHeader: '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' }), code: 'E_FORMAT', message: /names 'a' twice/ },
  { name: 'hole between tensors', bytes: file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12), code: 'E_FORMAT', message: /hole/ },
  { name: 'trailing bytes', bytes: file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 9), code: 'E_FORMAT', message: /5 bytes at the end.*belong to no tensor/ },
  { name: 'offsets reversed', bytes: file({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4), code: 'E_FORMAT', message: /end before they begin/ },
  { name: 'offsets not a pair', bytes: file({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), code: 'E_FORMAT', message: /not a pair/ },
  { name: 'entry not an object', bytes: file({ a: 'F32' }, 0), code: 'E_FORMAT', message: /entry is not an object/ },
  { name: 'deeply nested shape', bytes: file(null, 4, { rawHeader: `{"a":{"dtype":"F32","shape":${'['.repeat(5000)}${']'.repeat(5000)},"data_offsets":[0,4]}}` }), code: 'E_FORMAT', message: /shape \(an array of 1 items\) is not a list/ },
  { name: 'deeply nested offsets', bytes: file(null, 4, { rawHeader: `{"a":{"dtype":"F32","shape":[1],"data_offsets":${'['.repeat(5000)}${']'.repeat(5000)}}}` }), code: 'E_FORMAT', message: /data_offsets \(an array of 1 items\)/ },
  { name: 'a 1 MB dtype string', bytes: file({ a: { dtype: 'F'.repeat(1_000_000), shape: [1], data_offsets: [0, 4] } }, 4), code: 'E_FORMAT', message: /unknown dtype 'F{40}…' \(1000000 characters\)/ },
  { name: 'metadata with a number', bytes: file({ __metadata__: { step: 3 } }, 0), code: 'E_FORMAT', message: /__metadata__ value of 'step' is not a string/ },
];

test('every malformed file gets a typed error naming the file and what is wrong', async (t) => {
  const dir = await tempDir(t);
  for (const c of CORPUS) {
    const path = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
    await writeFile(path, c.bytes);
    await assert.rejects(
      openSafetensors(path),
      (e: unknown) => {
        assert.ok(e instanceof LowrankError, `${c.name}: ${String(e)}`);
        assert.equal(e.code, c.code, `${c.name}: ${e.message}`);
        assert.match(e.message, c.message, c.name);
        assert.ok(e.message.includes(path), `${c.name}: message names the file: ${e.message}`);
        return true;
      },
      c.name,
    );
  }
});

test('at the CLI a malformed file is one line on stderr, exit code 1, no stack trace', async (t) => {
  const dir = await tempDir(t);
  for (const c of CORPUS.filter((_, i) => i % 3 === 0)) {
    const path = join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
    await writeFile(path, c.bytes);
    const r = cli(['inspect', path]);
    assert.equal(r.code, 1, `${c.name}: ${r.stderr}`);
    assert.match(r.stderr, /^lowrank: error: /, c.name);
    assert.match(r.stderr, c.message, c.name);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    assert.equal(r.stdout, '', c.name);
  }
});

test('things that are not regular files are refused at once (a FIFO would block, /dev/zero never ends)', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'pipe.safetensors');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  await assert.rejects(openSafetensors(fifo), (e: unknown) => e instanceof LowrankError && e.code === 'E_IO' && /not a regular file/.test(e.message));
  await assert.rejects(openSafetensors('/dev/zero'), (e: unknown) => e instanceof LowrankError && /not a regular file/.test(e.message));
  await assert.rejects(openSafetensors(dir), (e: unknown) => e instanceof LowrankError && /not a regular file \(a folder\)/.test(e.message));
  const model = join(dir, 'model');
  await mkdir(model);
  await writeSafetensors(join(model, 'model.safetensors'), [{ name: 'w', dtype: 'f32', shape: [1], data: new Float32Array(1) }]);
  assert.equal(spawnSync('mkfifo', [join(model, 'config.json')]).status, 0);
  await assert.rejects(openModel(model), (e: unknown) => e instanceof LowrankError && /config\.json.*not a regular file/.test(e.message));
  const r = cli(['inspect', fifo]);
  assert.equal(r.code, 1, r.stderr);
});

test('a tensor named __proto__ round-trips through files and folders', async (t) => {
  const dir = await tempDir(t);
  const src = [
    { name: '__proto__', dtype: 'f32' as const, shape: [2], data: Float32Array.of(1, 2) },
    { name: 'constructor', dtype: 'f32' as const, shape: [1], data: Float32Array.of(3) },
  ];
  await writeSafetensors(join(dir, 'p.safetensors'), src);
  const f = await openSafetensors(join(dir, 'p.safetensors'));
  assert.deepEqual(Array.from((await f.read('__proto__')).data as Float32Array), [1, 2]);
  await f.close();
  await writeModel(join(dir, 'm'), src, { maxShardSize: 4 });
  const m = await openModel(join(dir, 'm'));
  t.after(() => m.close());
  assert.deepEqual(m.tensors.map((x) => x.name).sort(), ['__proto__', 'constructor']);
});

test('150k tensors inspect fine at the CLI, text and JSON (large FP8 MoE checkpoints have this many)', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'many.safetensors');
  await writeSafetensors(path, Array.from({ length: 150_000 }, (_, i) => ({ name: `experts.${i}.scale`, dtype: 'f32' as const, shape: [0], data: new Float32Array(0) })));
  const text = cli(['inspect', path]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /tensors \(150000\)/);
  const json = cli(['inspect', path, '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as { totals: { tensors: number } }).totals.tensors, 150_000);
});
