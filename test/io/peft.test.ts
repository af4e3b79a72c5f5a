import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openAdapter, writeAdapter, loraConfig, loraScaling, isTargetModule, MAX_REGEX_KEYS, type LoraConfig, type LoraModuleTensors } from '../../src/io/peft.js';
import { tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

function module(name: string, r: number, inF: number, outF: number, seed: number, dora = false): LoraModuleTensors {
  const g = rng(seed);
  return {
    name,
    A: tensor('f32', [r, inF], g.fillNormal(new Float32Array(r * inF))),
    B: tensor('f32', [outF, r], g.fillNormal(new Float32Array(outF * r))),
    magnitude: dora ? tensor('f32', [outF], g.fillUniform(new Float32Array(outF), 0.5, 1.5)) : undefined,
  };
}

test('an adapter written here has exactly PEFT keys, shapes and config fields (checked by python)', async (t) => {
  const dir = join(await tempDir(t), 'adapter');
  const mods = [0, 1].flatMap((l) => [
    module(`model.layers.${l}.self_attn.q_proj`, 8, 32, 32, 10 + l),
    module(`model.layers.${l}.self_attn.v_proj`, 8, 32, 16, 20 + l),
  ]);
  await writeAdapter(dir, { r: 8, lora_alpha: 16, base_model_name_or_path: 'tiny-llama' }, mods);
  assert.deepEqual((await readdir(dir)).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const seen = pythonJson<{ keys: Record<string, number[]>; config: Record<string, unknown> }>(
    `import json, struct, sys, os
raw = open(os.path.join(sys.argv[1], 'adapter_model.safetensors'), 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n]); h.pop('__metadata__', None)
print(json.dumps({'keys': {k: v['shape'] for k, v in h.items()}, 'config': json.load(open(os.path.join(sys.argv[1], 'adapter_config.json')))}))`,
    [dir],
  );
  const want: Record<string, number[]> = {};
  for (const l of [0, 1]) {
    want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`] = [8, 32];
    want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`] = [32, 8];
    want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`] = [8, 32];
    want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`] = [16, 8];
  }
  assert.deepEqual(seen.keys, want);
  const c = seen.config;
  assert.equal(c.peft_type, 'LORA');
  assert.equal(c.r, 8);
  assert.equal(c.lora_alpha, 16);
  assert.deepEqual(c.target_modules, ['q_proj', 'v_proj']);
  assert.equal(c.use_rslora, false);
  assert.equal(c.use_dora, false);
  assert.equal(c.fan_in_fan_out, false);
  assert.equal(c.init_lora_weights, true);
  assert.deepEqual(c.rank_pattern, {});
  assert.deepEqual(c.alpha_pattern, {});
  assert.equal(c.bias, 'none');
  assert.equal(c.base_model_name_or_path, 'tiny-llama');

  const a = await openAdapter(dir);
  t.after(() => a.close());
  assert.equal(a.modules.length, 4);
  for (const m of mods) {
    const got = a.modules.find((x) => x.name === m.name);
    assert.ok(got !== undefined, m.name);
    assert.equal(got.scaling, 2);
    assert.deepEqual((await a.read(got.A.name)).data, m.A.data);
    assert.deepEqual((await a.read(got.B.name)).data, m.B.data);
  }
});

test('an adapter laid out as PEFT saves it (DoRA magnitude, embedding LoRA, modules_to_save, patterns) loads here', async (t) => {
  const dir = join(await tempDir(t), 'peft-made');
  await mkdir(dir);
  // The config exactly as PEFT's save_pretrained writes it (field set from PEFT 0.13's LoraConfig).
  const config = {
    alpha_pattern: { 'layers.1.self_attn.q_proj': 64 }, auto_mapping: null, base_model_name_or_path: 'HuggingFaceTB/SmolLM-135M', bias: 'none',
    fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null,
    layers_to_transform: null, loftq_config: {}, lora_alpha: 16, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: ['lm_head'], peft_type: 'LORA', r: 4, rank_pattern: { 'layers.1.self_attn.q_proj': 8 }, revision: null,
    target_modules: ['q_proj', 'embed_tokens'], task_type: 'CAUSAL_LM', use_dora: true, use_rslora: true,
  };
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  const shapes = pythonJson<Record<string, number[]>>(
    `import json, struct, sys, os
rs = np.random.default_rng(0)
p = 'base_model.model.'
t = {}
for l, r in [(0, 4), (1, 8)]:
    t[p + f'model.layers.{l}.self_attn.q_proj.lora_A.weight'] = rs.standard_normal((r, 24)).astype(np.float32)
    t[p + f'model.layers.{l}.self_attn.q_proj.lora_B.weight'] = rs.standard_normal((24, r)).astype(np.float32)
    t[p + f'model.layers.{l}.self_attn.q_proj.lora_magnitude_vector'] = rs.standard_normal(24).astype(np.float32)
t[p + 'model.embed_tokens.lora_embedding_A'] = rs.standard_normal((4, 50)).astype(np.float32)
t[p + 'model.embed_tokens.lora_embedding_B'] = rs.standard_normal((24, 4)).astype(np.float32)
t[p + 'lm_head.modules_to_save.default.weight'] = rs.standard_normal((50, 24)).astype(np.float32)
header, off, blob = {'__metadata__': {'format': 'pt'}}, 0, b''
for k in sorted(t):
    d = t[k].tobytes()
    header[k] = {'dtype': 'F32', 'shape': list(t[k].shape), 'data_offsets': [off, off + len(d)]}
    off += len(d); blob += d
js = json.dumps(header).encode(); js += b' ' * (-len(js) % 8)
open(os.path.join(sys.argv[1], 'adapter_model.safetensors'), 'wb').write(struct.pack('<Q', len(js)) + js + blob)
print(json.dumps({k: list(v.shape) for k, v in t.items()}))`,
    [dir],
  );
  assert.equal(Object.keys(shapes).length, 9);
  const a = await openAdapter(dir);
  t.after(() => a.close());
  const byName = Object.fromEntries(a.modules.map((m) => [m.name, m]));
  assert.deepEqual(Object.keys(byName).sort(), ['model.embed_tokens', 'model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj']);
  assert.equal(byName['model.embed_tokens'].kind, 'embedding');
  assert.equal(byName['model.layers.0.self_attn.q_proj'].r, 4);
  assert.equal(byName['model.layers.0.self_attn.q_proj'].scaling, 16 / Math.sqrt(4), 'rsLoRA: alpha / sqrt(r)');
  assert.equal(byName['model.layers.1.self_attn.q_proj'].r, 8, 'rank_pattern');
  assert.equal(byName['model.layers.1.self_attn.q_proj'].scaling, 64 / Math.sqrt(8), 'alpha_pattern with rsLoRA');
  assert.ok(byName['model.layers.0.self_attn.q_proj'].magnitude !== undefined);
  assert.deepEqual(a.others.map((e) => e.name), ['base_model.model.lm_head.modules_to_save.default.weight']);
  const r = cli(['inspect', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /adapter: LORA, method dora/);
  assert.match(r.stdout, /rank 4 \(per module: 4, 8\), alpha 16, rsLoRA/);
});

test('scaling, patterns and targets follow PEFT semantics', () => {
  const c = loraConfig({ r: 16, lora_alpha: 32, rank_pattern: { 'layers.0.self_attn.q_proj': 4, 'mlp\\..*_proj': 2 }, alpha_pattern: { v_proj: 8 } });
  assert.deepEqual(loraScaling(c, 'model.layers.0.self_attn.q_proj'), { r: 4, alpha: 32, scaling: 8 });
  assert.deepEqual(loraScaling(c, 'model.layers.10.self_attn.q_proj'), { r: 16, alpha: 32, scaling: 2 }, 'layers.0 does not match layers.10');
  assert.deepEqual(loraScaling(c, 'model.layers.3.mlp.up_proj'), { r: 2, alpha: 32, scaling: 16 });
  assert.deepEqual(loraScaling(c, 'model.layers.3.self_attn.v_proj'), { r: 16, alpha: 8, scaling: 0.5 });
  assert.deepEqual(loraScaling(c, 'model.layers.3.self_attn.xv_proj'), { r: 16, alpha: 32, scaling: 2 }, 'a pattern matches whole name components');
  const rs = loraConfig({ r: 16, lora_alpha: 32, use_rslora: true });
  assert.equal(loraScaling(rs, 'x').scaling, 8);
  const list = loraConfig({ target_modules: ['q_proj', 'v_proj'] });
  assert.ok(isTargetModule(list, 'model.layers.0.self_attn.q_proj'));
  assert.ok(isTargetModule(list, 'q_proj'));
  assert.ok(!isTargetModule(list, 'model.layers.0.self_attn.qq_proj'));
  const re = loraConfig({ target_modules: '.*layers\\.[01]\\..*(q|v)_proj' });
  assert.ok(isTargetModule(re, 'model.layers.1.self_attn.v_proj'));
  assert.ok(!isTargetModule(re, 'model.layers.2.self_attn.v_proj'));
  assert.ok(!isTargetModule(re, 'model.layers.1.self_attn.v_proj.extra'), 'a regex must match the whole name');
  const layered = loraConfig({ target_modules: ['q_proj'], layers_to_transform: [0, 2] });
  assert.ok(isTargetModule(layered, 'model.layers.0.self_attn.q_proj'));
  assert.ok(!isTargetModule(layered, 'model.layers.1.self_attn.q_proj'), 'layers_to_transform keeps only listed layers');
  assert.ok(isTargetModule(layered, 'q_proj'), 'a name equal to a target is matched before layer filtering, as in PEFT');
  const patterned = loraConfig({ target_modules: ['c_attn'], layers_to_transform: 1, layers_pattern: 'h' });
  assert.ok(isTargetModule(patterned, 'transformer.h.1.attn.c_attn'));
  assert.ok(!isTargetModule(patterned, 'transformer.h.0.attn.c_attn'));
  const excluded = loraConfig({ target_modules: ['q_proj', 'lm_head'], exclude_modules: ['model.layers.3.self_attn.q_proj'], modules_to_save: ['lm_head'] });
  assert.ok(!isTargetModule(excluded, 'model.layers.3.self_attn.q_proj'), 'exclude_modules');
  assert.ok(isTargetModule(excluded, 'model.layers.4.self_attn.q_proj'));
  assert.ok(!isTargetModule(excluded, 'lm_head'), 'modules_to_save are never adapted');
  for (const bad of [{ r: 0 }, { r: 2.5 }, { lora_alpha: Number.NaN }, { rank_pattern: { '(': 4 } }, { target_modules: '[' }, { layers_to_transform: 'all' }, { modules_to_save: 3 }] as Partial<LoraConfig>[]) {
    assert.throws(() => loraConfig(bad), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE', JSON.stringify(bad));
  }
});

test('broken adapters give typed errors', async (t) => {
  const root = await tempDir(t);
  const good = join(root, 'good');
  await writeAdapter(good, { r: 2, lora_alpha: 2 }, [module('model.layers.0.q_proj', 2, 6, 5, 1)]);
  await assert.rejects(writeAdapter(join(root, 'bad-rank'), { r: 3, lora_alpha: 2 }, [module('q_proj', 2, 6, 5, 1)]), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
  await assert.rejects(writeAdapter(good, { r: 2 }, [module('q_proj', 2, 6, 5, 1)]), (e: unknown) => e instanceof LowrankError && e.code === 'E_EXISTS');
  const refused: [Partial<LoraConfig>, LoraModuleTensors, RegExp][] = [
    [{ r: 2, target_modules: ['v_proj'] }, module('m.q_proj', 2, 6, 5, 1), /not matched by target_modules/],
    [{ r: 2, peft_type: 'VERA' }, module('q_proj', 2, 6, 5, 1), /not LORA/],
    [{ r: 2, use_dora: true }, module('q_proj', 2, 6, 5, 1), /no magnitude vector/],
    [{ r: 2, use_dora: false }, module('q_proj', 2, 6, 5, 1, true), /use_dora is false/],
  ];
  for (const [cfg, mod, msg] of refused) {
    await assert.rejects(writeAdapter(join(root, 'refused'), cfg, [mod]), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE' && msg.test(e.message), msg.source);
  }

  const cases: [string, (dir: string) => Promise<void>, string, RegExp][] = [
    ['rank-mismatch', async (d) => writeFile(join(d, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(await readFile(join(good, 'adapter_config.json'), 'utf8')), r: 4 })), 'E_SHAPE', /rank 4/],
    ['bad-field', async (d) => writeFile(join(d, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, modules_to_save: 5 })), 'E_FORMAT', /modules_to_save/],
    ['no-peft-type', async (d) => writeFile(join(d, 'adapter_config.json'), '{"r": 2}'), 'E_FORMAT', /no peft_type/],
    ['bad-json', async (d) => writeFile(join(d, 'adapter_config.json'), '{"r": '), 'E_FORMAT', /not valid JSON/],
  ];
  // Every pattern field is compiled when the adapter is opened: a bad regex is E_FORMAT naming the folder's config and the pattern.
  const spoilConfig = (extra: Record<string, unknown>) => async (d: string): Promise<void> =>
    writeFile(join(d, 'adapter_config.json'), JSON.stringify({ ...JSON.parse(await readFile(join(good, 'adapter_config.json'), 'utf8')), ...extra }));
  for (const [field, value] of [['layers_pattern', 'layers('], ['modules_to_save', ['lm_head[']], ['exclude_modules', '(q_proj'], ['target_modules', '*q'], ['rank_pattern', { 'q(': 2 }], ['alpha_pattern', { '[': 2 }]] as const) {
    cases.push([`bad-${field}`, spoilConfig({ [field]: value }), 'E_FORMAT', /bad-\w+\/adapter_config\.json: pattern '.+' is not a valid regular expression/]);
  }
  for (const [name, spoil, code, msg] of cases) {
    const d = join(root, name);
    await mkdir(d);
    for (const f of await readdir(good)) await writeFile(join(d, f), await readFile(join(good, f)));
    await spoil(d);
    await assert.rejects(openAdapter(d), (e: unknown) => e instanceof LowrankError && e.code === code && msg.test(e.message), name);
  }
  const pickle = join(root, 'pickle');
  await mkdir(pickle);
  await writeFile(join(pickle, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2 }));
  await writeFile(join(pickle, 'adapter_model.bin'), 'PK');
  await assert.rejects(openAdapter(pickle), (e: unknown) => e instanceof LowrankError && e.code === 'E_UNSUPPORTED' && /pickle/.test(e.message));
});

test('patterns run on RE2: a catastrophically backtracking rank_pattern key over a long module name opens (the timeout is a hang guard), with PEFT\'s result; lookarounds are E_FORMAT', { timeout: 30_000 }, async (t) => {
  const root = await tempDir(t);
  // 2^40 paths for a backtracking engine (the issue measured 76 s for 31 characters, doubling with each).
  const name = `model.${'a'.repeat(40)}.q_proj`;
  const dir = join(root, 'redos');
  await writeAdapter(dir, { r: 2, lora_alpha: 2 }, [module(name, 2, 6, 5, 1)]);
  const cfgFile = join(dir, 'adapter_config.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgFile, JSON.stringify({ ...cfg, rank_pattern: { '(a*)*b': 4, 'q_proj': 2 }, alpha_pattern: { '(.*)*x': 7 } }));
  const a = await openAdapter(dir);
  assert.deepEqual(a.modules.map((m) => [m.r, m.scaling]), [[2, 1]]); // neither hostile key matches; 'q_proj' gives r 2, alpha 2
  await a.close();
  await writeFile(cfgFile, JSON.stringify({ ...cfg, rank_pattern: { 'q(?=_proj)': 2 } }));
  await assert.rejects(openAdapter(dir), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && /pattern 'q\(\?=_proj\)' is not a valid regular expression for a linear-time engine/.test(e.message));
});

test('rank_pattern with plain-name keys looked up by name and regex keys in order (in blocks) gives what the first matching (.*\\.)?(key)$ gives; 5,000 keys over 3,000 modules at once; at most 256 regex keys', { timeout: 60_000 }, () => {
  const g = rng(4);
  const modules = Array.from({ length: 300 }, (_, i) => `model.layers.${i % 30}.${['self_attn.q_proj', 'self_attn.v_proj', 'mlp.up_proj', 'mlp.down_proj'][i % 4]}`);
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pick = <T>(xs: readonly T[]): T => xs[g.uint32() % xs.length];
  for (let trial = 0; trial < 20; trial++) {
    const keys = Array.from({ length: trial % 2 === 0 ? 12 : 70 }, () => pick([
      () => escape(pick(modules)), // a whole name, as lowrank writes them
      () => escape(pick(modules).split('.').slice(-2).join('.')), // a dotted suffix
      () => pick(['q_proj', 'up_proj', 'v_proj']), // a last component
      () => `layers\\.${g.uint32() % 30}\\..*`, // regexes
      () => pick(['.*_proj', 'mlp\\.(up|down)_proj', 'layers.1.mlp.up_proj', 'self_attn', `layers\\.${g.uint32() % 30}\\.mlp\\.(up|down)_proj`]),
      () => pick(['v_proj)|(q', 'zz)|.*|(zz']), // not a regex by itself: it rewrites the pattern around it, as in PEFT
    ])());
    const pattern = Object.fromEntries(keys.map((k, i) => [k, i + 1]));
    const c = loraConfig({ r: 100, lora_alpha: 100, rank_pattern: pattern });
    for (const m of modules) {
      const first = Object.keys(pattern).find((k) => new RegExp(`^(.*\\.)?(${k})$`).test(m));
      assert.equal(loraScaling(c, m).r, first === undefined ? 100 : pattern[first], `${m} with ${JSON.stringify(Object.keys(pattern))}`);
    }
  }
  const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [escape(`model.layers.${i}.self_attn.q_proj`), 1 + (i % 7)]));
  const c = loraConfig({ r: 8, lora_alpha: 8, rank_pattern: many, alpha_pattern: many });
  let total = 0;
  for (let i = 0; i < 3000; i++) total += loraScaling(c, `model.layers.${i}.self_attn.q_proj`).r;
  assert.equal(total, Array.from({ length: 3000 }, (_, i) => 1 + (i % 7)).reduce((a, b) => a + b, 0));
  const regexKeys = (n: number): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`layers\\.${i}\\..*`, 2]));
  assert.equal(loraScaling(loraConfig({ r: 8, lora_alpha: 8, rank_pattern: regexKeys(MAX_REGEX_KEYS) }), 'model.layers.255.mlp.up_proj').r, 2);
  assert.throws(() => loraConfig({ r: 8, lora_alpha: 8, alpha_pattern: regexKeys(MAX_REGEX_KEYS + 1) }), (e: unknown) => e instanceof LowrankError && /alpha_pattern has 257 regex keys/.test(e.message));
});

test('fuzz finding: 5,000 regex keys in rank_pattern and alpha_pattern over 3,000 modules are refused at open (E_FORMAT naming the file: at most 256 per field), not matched for seconds', { timeout: 60_000 }, async (t) => {
  const root = await tempDir(t);
  const layer = (i: number): string => `model.layers.${i}.self_attn.q_proj`;
  const pattern = (keys: number): Record<string, number> => Object.fromEntries(Array.from({ length: keys }, (_, i) => [`layers\\.${i}\\..*_proj`, 1]));
  const dir = join(root, 'many');
  await writeAdapter(dir, { r: 2, lora_alpha: 1, target_modules: ['q_proj'], rank_pattern: pattern(100), alpha_pattern: pattern(100) }, Array.from({ length: 3000 }, (_, i) => module(layer(i), i < 100 ? 1 : 2, 2, 2, i)));
  // Below the limit the regex keys still match: the first 100 layers take r 1 from theirs, the rest the default 2.
  const a = await openAdapter(dir);
  const rankOf = new Map(a.modules.map((m) => [m.name, m.r]));
  assert.deepEqual(Array.from({ length: 3000 }, (_, i) => rankOf.get(layer(i))), Array.from({ length: 3000 }, (_, i) => (i < 100 ? 1 : 2)));
  await a.close();
  const cfgFile = join(dir, 'adapter_config.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgFile, JSON.stringify({ ...cfg, rank_pattern: pattern(5000), alpha_pattern: pattern(5000) }));
  await assert.rejects(openAdapter(dir), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && e.context.file === cfgFile && /rank_pattern has 5000 regex keys; lowrank reads at most 256/.test(e.message));
});
