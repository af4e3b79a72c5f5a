import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeModel, openModel } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../../src/io/synthetic.js';
import { toFloat } from '../../src/core/tensor.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

const SHAPE: LlamaShape = { hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, vocab_size: 64 };

test('convert changes dtype and sharding exactly, streams, and never writes over its input', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'bf16');
  await writeModel(src, randomWeights(llamaTensors(SHAPE), { seed: 9, dtype: 'bf16' }), { config: llamaConfig(SHAPE) });
  const f32 = join(dir, 'f32');
  const r = cli(['convert', src, '--out', f32, '--dtype', 'f32', '--max-shard-size', '40KB', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { shards: string[]; totalSize: number };
  assert.ok(res.shards.length > 3);
  const a = await openModel(src);
  const b = await openModel(f32);
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.equal(b.config?.torch_dtype, 'float32');
  for (const e of a.tensors) {
    const want = toFloat(await a.read(e.name), 'f32');
    const got = await b.read(e.name);
    assert.equal(got.dtype, 'f32');
    assert.deepEqual(got.data, want.data, `${e.name}: bf16 → f32 is exact`);
  }
  const back = join(dir, 'back');
  assert.equal(cli(['convert', f32, '--out', back, '--dtype', 'bf16']).code, 0);
  assert.deepEqual(await readFile(join(back, 'model.safetensors')), await readFile(join(src, 'model.safetensors')), 'bf16 → f32 → bf16 gives the same file');

  const again = cli(['convert', src, '--out', f32]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists.*--force/);
  const before = await readFile(join(src, 'model.safetensors'));
  const self = cli(['convert', src, '--out', src, '--force']);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /refusing to write over an input/);
  assert.deepEqual(await readFile(join(src, 'model.safetensors')), before, 'input untouched');
  assert.ok((await readdir(dir)).every((n) => !n.includes('lowrank-')), 'no temporary folders left');
  const bad = cli(['convert', src, '--out', join(dir, 'x'), '--dtype', 'f8']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Allowed choices are f32, bf16, f16, f64/);
});
