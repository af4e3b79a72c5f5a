/** VeRA: the engine's checks (harness.ts), PEFT's layout, ΔW by the paper's formula, and what cannot be read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { checkMethod, rand } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';
import { readMethodFolder, writeMethodFolder } from '../../src/methods/adapterFile.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { writeSafetensors } from '../../src/io/safetensors/writer.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { tensor } from '../../src/core/tensor.js';
import { isLowrankError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

const opts = { rank: 3, options: { d_initial: 0.5, projection_prng_key: 7 } };
const layers = [
  { name: 'model.layers.0.self_attn.q_proj', shape: [6, 8] as [number, number] },
  { name: 'model.layers.0.self_attn.v_proj', shape: [4, 5] as [number, number] },
];

test('vera: unchanged at start, exact gradients, merged = unmerged, save/load, out + r parameters per layer', async (t) => {
  await checkMethod(t, 'vera', { opts, startsUnchanged: true, shapes: [[6, 8], [6, 8], [4, 5]] });
});

test('vera: A [r, in_max] and B [out_max, r] kaiming-uniform from projection_prng_key, each layer slicing them; ΔW = diag(λ_b)·B_s·diag(λ_d)·A_s', async () => {
  const m = getMethod('vera');
  const shared = await m.prepare!(layers, opts, 'f64');
  const { A, B } = shared.tensors;
  assert.deepEqual([A.shape, B.shape], [[3, 8], [6, 3]]);
  assert.ok(A.data.every((v) => Math.abs(v) <= Math.sqrt(6 / 8)) && B.data.every((v) => Math.abs(v) <= Math.sqrt(6 / 3)));
  const again = await m.prepare!(layers, opts, 'f64');
  assert.deepEqual(again.tensors.A.data, A.data);
  const [out, inF] = [4, 5];
  const lb = rand(1, [out]);
  const ld = rand(2, [3]);
  const d = await toDense(await m.delta!({ lambda_b: lb, lambda_d: ld }, shared, opts, [out, inF]));
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inF; j++) {
      let want = 0;
      for (let k = 0; k < 3; k++) want += lb.data[i] * B.data[i * 3 + k] * ld.data[k] * A.data[k * 8 + j];
      assert.ok(Math.abs(d.data[i * inF + j] - want) <= 1e-14, `ΔW[${i},${j}]`);
    }
  }
  const init = await m.init(rand(3, [out, inF]), opts);
  assert.deepEqual([...init.tensors.lambda_b.data], [0, 0, 0, 0]);
  assert.deepEqual([...init.tensors.lambda_d.data], [0.5, 0.5, 0.5]);
});

test("vera: saved in PEFT's layout (peft_type VERA, vera_lambda_b/d per module, base_model.vera_A/B, save_projection true)", async (t) => {
  const dir = join(await tempDir(t), 'a');
  const m = getMethod('vera');
  const shared = await m.prepare!(layers, opts, 'f32');
  const modules = new Map(await Promise.all(layers.map(async (l, i) => [l.name, (await m.init(tensor('f32', l.shape), { ...opts, seed: i })).tensors] as const)));
  await writeMethodFolder(dir, { method: m, opts, layers, modules, shared, fanInFanOut: false });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'VERA');
  assert.equal(config.r, 3);
  assert.equal(config.save_projection, true);
  assert.equal(config.d_initial, 0.5);
  assert.equal(config.projection_prng_key, 7);
  assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
  const f = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  const keys = f.entries.map((e) => `${e.name} ${e.dtype} [${e.shape.join(',')}]`).sort();
  await f.close();
  assert.deepEqual(keys, [
    'base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_b f32 [6]',
    'base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_d f32 [3]',
    'base_model.model.model.layers.0.self_attn.v_proj.vera_lambda_b f32 [4]',
    'base_model.model.model.layers.0.self_attn.v_proj.vera_lambda_d f32 [3]',
    'base_model.vera_A f32 [3,8]',
    'base_model.vera_B f32 [6,3]',
  ]);
});

test('vera: a PEFT adapter saved without its projections (save_projection false) is refused, and a changed projection is caught', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'peft');
  await mkdir(dir);
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'VERA', r: 3, save_projection: false, target_modules: ['q_proj'] }));
  const z = (n: number): Float32Array => new Float32Array(n);
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), [
    { name: 'base_model.model.q_proj.vera_lambda_b', dtype: 'f32', shape: [6], data: z(6) },
    { name: 'base_model.model.q_proj.vera_lambda_d', dtype: 'f32', shape: [3], data: z(3) },
  ]);
  await assert.rejects(readMethodFolder(dir, 'f32', { shapes: new Map([['q_proj', [6, 8]]]) }), (e: unknown) => isLowrankError(e) && e.code === 'E_FORMAT' && /base_model\.vera_A/.test(e.message));

  const mine = join(root, 'mine');
  const m = getMethod('vera');
  const shared = await m.prepare!(layers, opts, 'f32');
  const modules = new Map(layers.map((l) => [l.name, { lambda_b: tensor('f32', [l.shape[0]]), lambda_d: tensor('f32', [3]) }] as const));
  await writeMethodFolder(mine, { method: m, opts: { ...opts, options: { ...opts.options, projection_prng_key: 8 } }, layers, modules, shared, fanInFanOut: false });
  await assert.rejects(readMethodFolder(mine, 'f32'), (e: unknown) => isLowrankError(e) && e.code === 'E_FORMAT' && /seed/.test(e.message));
});
