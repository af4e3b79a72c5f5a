import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openModel, writeModel, parseSize, INDEX_FILE, MAX_MODEL_TENSORS } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights, gpt2Tensors, type LlamaShape } from '../../src/io/synthetic.js';
import { describe } from '../../src/io/describe.js';
import { layoutHeader } from '../../src/io/safetensors/header.js';
import { dtypeBytes, type Storage } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { numel } from '../../src/core/tensor.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

const SHAPE: LlamaShape = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100 };

async function materialize(data: Storage | (() => Storage | Promise<Storage>)): Promise<Storage> {
  return typeof data === 'function' ? data() : data;
}

test('a model is written in shards with an index, and reads back tensor by tensor', async (t) => {
  const dir = join(await tempDir(t), 'llama');
  const specs = llamaTensors(SHAPE);
  const sources = randomWeights(specs, { seed: 3, dtype: 'bf16' });
  const max = 10_000;
  const res = await writeModel(dir, sources, { config: llamaConfig(SHAPE), maxShardSize: max });

  // The sharding rule, restated: fill in order, open a new shard when the next tensor would pass max.
  const expected: string[][] = [[]];
  let cur = 0;
  for (const s of specs) {
    const b = numel(s.shape) * 2;
    if (expected[expected.length - 1].length > 0 && cur + b > max) {
      expected.push([]);
      cur = 0;
    }
    expected[expected.length - 1].push(s.name);
    cur += b;
  }
  assert.equal(res.shards.length, expected.length);
  assert.ok(res.shards.length > 2);
  const index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  const total = specs.reduce((a, s) => a + numel(s.shape) * 2, 0);
  assert.equal(index.metadata.total_size, total);
  expected.forEach((names, i) => names.forEach((n) => assert.equal(index.weight_map[n], `model-${String(i + 1).padStart(5, '0')}-of-${String(expected.length).padStart(5, '0')}.safetensors`)));
  assert.deepEqual((await readdir(dir)).sort(), ['config.json', INDEX_FILE, ...res.shards].sort());

  const m = await openModel(dir);
  t.after(() => m.close());
  assert.equal(m.config?.model_type, 'llama');
  assert.equal(m.tensors.length, specs.length);
  for (const s of sources) {
    const got = await m.read(s.name);
    assert.equal(got.dtype, 'bf16');
    assert.deepEqual(got.data, await materialize(s.data), s.name);
    assert.equal(m.entry(s.name).shard, index.weight_map[s.name]);
  }
  assert.equal(m.metadata?.format, 'pt');
});

test('a model that fits in one shard is one model.safetensors without an index', async (t) => {
  const dir = join(await tempDir(t), 'gpt2');
  const specs = gpt2Tensors({ n_embd: 16, n_layer: 2, n_head: 2, n_positions: 8, vocab_size: 50 });
  await writeModel(dir, randomWeights(specs, { seed: 4, dtype: 'f32' }));
  assert.deepEqual(await readdir(dir), ['model.safetensors']);
  const m = await openModel(dir);
  t.after(() => m.close());
  assert.equal(m.config, undefined);
  assert.deepEqual(m.entry('transformer.h.1.mlp.c_fc.weight').shape, [16, 64], 'Conv1D stores [in, out]');
});

test('inspect of a sharded folder prints the right totals and reads only headers (sparse 4 GiB shards)', async (t) => {
  const dir = await tempDir(t);
  const model = join(dir, 'huge');
  await mkdir(model);
  // Three shards whose data is a sparse hole: reading it would take minutes, reading headers takes milliseconds.
  const weightMap: Record<string, string> = {};
  let params = 0;
  for (let s = 1; s <= 3; s++) {
    const name = `model-0000${s}-of-00003.safetensors`;
    const specs = [{ name: `layer${s}.weight`, dtype: 'bf16' as const, shape: [32768, 32768] }, { name: `layer${s}.norm`, dtype: 'f32' as const, shape: [32768] }];
    const layout = layoutHeader(specs, { format: 'pt' }, name);
    const fh = await open(join(model, name), 'w');
    await fh.write(layout.prefix, 0, layout.prefix.length, 0);
    await fh.truncate(layout.fileSize);
    await fh.close();
    specs.forEach((sp) => (weightMap[sp.name] = name));
    params += specs.reduce((a, sp) => a + numel(sp.shape), 0);
  }
  await writeFile(join(model, INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  await writeFile(join(model, 'config.json'), JSON.stringify(llamaConfig(SHAPE)));
  const d = await describe(model);
  assert.equal(d.kind, 'model');
  assert.equal(d.shards.length, 3);
  assert.equal(d.totals.parameters, params);
  assert.equal(d.totals.bytes, 3 * (32768 * 32768 * dtypeBytes('bf16') + 32768 * 4));
  assert.equal(d.totals.byDtype.BF16.parameters, 3 * 32768 * 32768);
  assert.equal(d.totals.byDtype.F32.tensors, 3);
  const r = cli(['inspect', model, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as typeof d;
  assert.equal(j.totals.parameters, params);
  assert.equal(j.tensors.find((x) => x.name === 'layer2.weight')?.shard, 'model-00002-of-00003.safetensors');
  const human = cli(['inspect', model]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`all\\s+6\\s+3\\.22B \\(${params}\\)\\s+6\\.00 GiB`));
});

test('broken model folders give typed errors naming what is wrong', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'good');
  await writeModel(good, randomWeights(llamaTensors(SHAPE), { seed: 5, dtype: 'f32' }), { maxShardSize: 20_000 });
  const index = JSON.parse(await readFile(join(good, INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> };
  const variants: [string, Record<string, unknown>, string, RegExp][] = [
    ['missing-shard', { weight_map: { ...index.weight_map, extra: 'model-00099-of-00099.safetensors' } }, 'E_NOT_FOUND', /model-00099-of-00099/],
    ['traversal', { weight_map: { ...index.weight_map, 'model.norm.weight': '../evil.safetensors' } }, 'E_FORMAT', /not a file name inside the folder/],
    ['wrong-shard', { weight_map: { ...index.weight_map, 'model.norm.weight': index.weight_map['model.embed_tokens.weight'] } }, 'E_FORMAT', /index puts this tensor in/],
    ['no-map', { metadata: {} }, 'E_FORMAT', /no weight_map/],
  ];
  for (const [name, idx, code, msg] of variants) {
    const d = join(dir, name);
    await mkdir(d);
    for (const f of await readdir(good)) if (f !== INDEX_FILE) await writeFile(join(d, f), await readFile(join(good, f)));
    await writeFile(join(d, INDEX_FILE), JSON.stringify(idx));
    await assert.rejects(openModel(d), (e: unknown) => e instanceof LowrankError && e.code === code && msg.test(e.message), name);
  }
  const badConfig = join(dir, 'bad-config');
  await mkdir(badConfig);
  await writeFile(join(badConfig, 'config.json'), '{"hidden_size": ');
  await assert.rejects(openModel(badConfig), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && e.message.includes('config.json'));
  await assert.rejects(openModel(join(dir, 'absent')), (e: unknown) => e instanceof LowrankError && e.code === 'E_NOT_FOUND');
  await assert.rejects(writeModel(good, []), (e: unknown) => e instanceof LowrankError && e.code === 'E_EXISTS');
  const names = await readdir(dir);
  assert.ok(names.every((n) => !n.includes('lowrank-tmp')), `no temporary folders left: ${names.join(', ')}`);
});

test('shard sizes parse as Hugging Face writes them', () => {
  assert.equal(parseSize('5GB'), 5e9);
  assert.equal(parseSize('5GiB'), 5 * 2 ** 30);
  assert.equal(parseSize('200MB'), 2e8);
  assert.equal(parseSize('1.5KiB'), 1536);
  assert.equal(parseSize('123'), 123);
  for (const bad of ['', 'lots', '-5GB', '0', '5 parsecs']) assert.throws(() => parseSize(bad), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE', bad);
});

test('the index is read as JSON.parse would read it, however its names are escaped, but a tensor listed twice is refused', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'good');
  await writeModel(good, randomWeights(llamaTensors(SHAPE), { seed: 6, dtype: 'f32' }), { maxShardSize: 20_000 });
  const index = JSON.parse(await readFile(join(good, INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> };
  const entries = Object.entries(index.weight_map);
  assert.ok(new Set(entries.map(([, s]) => s)).size > 1, 'several shards');
  const escaped = (text: string): string => `"${Array.from({ length: text.length }, (_, k) => `\\u${text.charCodeAt(k).toString(16).padStart(4, '0')}`).join('')}"`;
  const variants: [string, string, RegExp | undefined][] = [
    ['escaped', `{ "metadata" : {"total_size": [1, {"x": 2}]}, "weight_map": {${entries.map(([n, s]) => `${escaped(n)}: ${escaped(s)}`).join(',\n ')}} }`, undefined],
    ['twice', `{"weight_map": {${entries.map(([n, s]) => `${JSON.stringify(n)}:${JSON.stringify(s)}`).join(',')},${JSON.stringify(entries[3][0])}:${JSON.stringify(entries[3][1])}}}`, /model\.safetensors\.index\.json, tensor '.+': weight_map lists this tensor twice/],
    ['not-json', `{"weight_map": {${entries.map(([n, s]) => `${JSON.stringify(n)}:${JSON.stringify(s)}`).join(',')}}`, /the index is not valid JSON/],
    ['array', '[1, 2]', /must hold a JSON object/],
    ['shard-number', `{"weight_map": {"a": 5}}`, /weight_map entry 5 is not a file name inside the folder/],
    ['too-many', `{"weight_map": {${Array.from({ length: MAX_MODEL_TENSORS + 1 }, (_, i) => `"t${i}":"s"`).join(',')}}}`, /the index lists more than 1048576 tensors/],
  ];
  for (const [name, text, msg] of variants) {
    const d = join(dir, name);
    await mkdir(d);
    for (const f of await readdir(good)) if (f !== INDEX_FILE) await writeFile(join(d, f), await readFile(join(good, f)));
    await writeFile(join(d, INDEX_FILE), text);
    if (msg === undefined) {
      const m = await openModel(d);
      assert.deepEqual(m.tensors.map((x) => [x.name, x.shard]).sort(), entries.sort());
      await m.close();
    } else {
      const code = name === 'too-many' ? 'E_LIMIT' : 'E_FORMAT';
      await assert.rejects(openModel(d), (e: unknown) => e instanceof LowrankError && e.code === code && msg.test(e.message), name);
    }
  }
});
