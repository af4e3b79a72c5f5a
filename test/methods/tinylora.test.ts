/**
 * TinyLoRA: the engine's checks (harness.ts), ΔW against a numpy transcription of PEFT's formula,
 * the seeded projections, weight tying and PEFT's keys and config fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkMethod, rand } from './harness.js';
import type { Tensor } from '../../src/core/tensor.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { getMethod } from '../../src/methods/registry.js';
import { writeMethodFolder } from '../../src/methods/adapterFile.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';

const REF_TOL = 1e-10; // ΔW vs numpy, relative to its largest entry (float64)
const STD_TOL = 0.02; // sample std of 64 000 N(0, 1/r) draws within 2% (its standard error is 0.3%)

const m = getMethod('tinylora');
const opts = { rank: 3, seed: 4, options: { u: 5 } };
const isUsage = (what: RegExp) => (e: Error & { code?: string }): boolean => e.code === 'E_USAGE' && what.test(e.message);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
const maxAbs = (a: ArrayLike<number>): number => Math.max(...Array.from(a, Math.abs));

test('tinylora: unchanged at start, exact gradients (shared v summed over the layers), merged = unmerged, save/load, u parameters', async (t) => {
  await checkMethod(t, 'tinylora', { opts, startsUnchanged: true });
});

test('tinylora: ΔW = B·(Σ v_i·P_i)·A with A = diag(√S_r)·V_rᵀ, B = U_r·diag(√S_r) of numpy\'s SVD', async () => {
  const [out, inF, r, u] = [7, 9, 3, 5];
  const w = rand(11, [out, inF]);
  const layers = [{ name: 'l', shape: [out, inF] as [number, number] }];
  const shared = await m.prepare!(layers, opts, 'f64');
  const { tensors } = await m.init(w, opts, shared);
  const { A, B, P } = tensors as Record<'A' | 'B' | 'P', Tensor<'f64'>>;
  assert.deepEqual([A.shape, B.shape, P.shape, shared.tensors.v.shape], [[r, inF], [out, r], [u, r, r], [u]]);
  shared.tensors.v.data.set(rand(12, [u]).data);
  const got = await toDense(await m.delta!(tensors, shared, opts, [out, inF]));
  // numpy's own SVD and PEFT's formula; each component's sign aligned to ours (a sign flip of u_k, v_k changes B·R·A).
  const want = pythonJson<number[]>(`import json,sys
d=json.load(sys.stdin)
w=np.array(d['w']).reshape(${out},${inF}); P=np.array(d['P']).reshape(${u},${r},${r}); v=np.array(d['v']); ours=np.array(d['B']).reshape(${out},${r})
U,S,Vt=np.linalg.svd(w,full_matrices=False)
sg=np.sign(np.sum(U[:,:${r}]*ours,axis=0))
B=(U[:,:${r}]*sg)*np.sqrt(S[:${r}]); A=np.sqrt(S[:${r}])[:,None]*(Vt[:${r}]*sg[:,None])
R=np.einsum('i,ijk->jk',v,P)
print(json.dumps((B@R@A).ravel().tolist()))`, [], JSON.stringify({ w: [...w.data], P: [...P.data], v: [...shared.tensors.v.data], B: [...B.data] }));
  assert.ok(maxDiff(got.data, want) <= REF_TOL * maxAbs(want), `ΔW vs numpy: ${maxDiff(got.data, want)}`);
  assert.equal(m.changesBase, false);
});

test('tinylora: P ~ N(0, 1/r), seeded by projection_seed + the layer\'s seed', async () => {
  const w = rand(1, [6, 8]);
  const P = async (seed: number, projection_seed = 7): Promise<Float64Array> => (await m.init(w, { rank: 4, seed, options: { u: 4000, projection_seed } })).tensors.P.data as Float64Array;
  const a = await P(0);
  assert.deepEqual(a, await P(0));
  assert.notDeepEqual(a, await P(1));
  assert.notDeepEqual(a, await P(0, 8));
  assert.deepEqual(await P(1), await P(2, 6));
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  const std = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / (a.length - 1));
  assert.ok(Math.abs(std - 1 / 2) <= STD_TOL * (1 / 2), `std ${std}, want 1/√4`);
  assert.ok(Math.abs(mean) <= 0.01, `mean ${mean}`);
});

test('tinylora: weight tying by PEFT\'s group count; only one group is served', async () => {
  const layers = (n: number): { name: string; shape: [number, number] }[] => Array.from({ length: n }, (_, i) => ({ name: `l${i}`, shape: [6, 8] }));
  const withTying = (weight_tying: number) => ({ rank: 2, options: { u: 3, weight_tying } });
  // PEFT with 4 layers: weight_tying 0, 0.25, 0.5, 0.75, 1 → 4, 3, 2, 1, 1 groups of u numbers each.
  assert.deepEqual([0, 0.25, 0.5, 0.75, 1].map((x) => m.sharedParams!(layers(4), withTying(x))), [12, 9, 6, 3, 3]);
  // max(1, round(N·(1 − weight_tying))), half to even: 2·0.25 → 0 → 1 group; 2·0.75 → 2; 5·0.5 → 2.
  assert.equal(m.sharedParams!(layers(2), withTying(0.75)), 3);
  assert.equal(m.sharedParams!(layers(2), withTying(0.25)), 6);
  assert.equal(m.sharedParams!(layers(5), withTying(0.5)), 6);
  await assert.rejects(m.prepare!(layers(3), withTying(0), 'f64'), isUsage(/weight_tying=0 makes 3 groups/));
  await assert.rejects(m.prepare!(layers(2), withTying(0.25), 'f64'), isUsage(/weight_tying/));
  const one = await m.prepare!(layers(1), withTying(0), 'f64');
  assert.deepEqual(one.tensors.v.shape, [3]);
  assert.ok((await m.prepare!(layers(2), withTying(0.75), 'f64')).grads.v !== undefined);
  assert.equal(m.sharedParams!(layers(3), { rank: 2 }), 64, 'default u 64, all tied');
});

test('tinylora: bad options and shapes are usage errors naming them; parameter counts', async () => {
  const w = rand(1, [4, 6]);
  await assert.rejects(m.init(w, { rank: 2, options: { weight_tying: 1.5 } }), isUsage(/weight_tying/));
  await assert.rejects(m.init(w, { rank: 2, options: { u: 0 } }), isUsage(/\bu\b/));
  await assert.rejects(m.init(w, { rank: 5 }), isUsage(/rank.*4×6/));
  assert.equal(m.trainableParams(4096, 4096, 2, opts), 0);
  assert.equal(m.frozenParams?.(4096, 11008, 2, opts), 2 * (4096 + 11008) + 5 * 4);
});

test('tinylora: saved as PEFT saves it (TINYLORA: per-module tinylora_A, _B, _P; base_model.tinylora_v.0; save_projection true)', async (t) => {
  const layers = [{ name: 'model.layers.0.self_attn.q_proj', shape: [8, 8] as [number, number] }, { name: 'model.layers.0.self_attn.v_proj', shape: [4, 8] as [number, number] }];
  const o = { rank: 2, seed: 0, options: { u: 4 } };
  const shared = await m.prepare!(layers, o, 'f64');
  const modules = new Map<string, Readonly<Record<string, Tensor<'f64'>>>>();
  for (const [i, l] of layers.entries()) modules.set(l.name, (await m.init(rand(50 + i, l.shape), { ...o, seed: i }, shared)).tensors as Record<string, Tensor<'f64'>>);
  const dir = join(await tempDir(t), 'a');
  await writeMethodFolder(dir, { method: m, opts: o, layers, modules, shared, fanInFanOut: false });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  for (const [k, v] of Object.entries({ peft_type: 'TINYLORA', r: 2, u: 4, weight_tying: 1, projection_seed: 42, save_projection: true, init_weights: true })) assert.deepEqual(config[k], v, k);
  assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
  const f = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  try {
    const keys = Object.fromEntries(f.entries.map((e) => [e.name, e.shape]));
    const q = 'base_model.model.model.layers.0.self_attn.q_proj.';
    const v = 'base_model.model.model.layers.0.self_attn.v_proj.';
    assert.deepEqual(keys, {
      [`${q}tinylora_A`]: [2, 8], [`${q}tinylora_B`]: [8, 2], [`${q}tinylora_P`]: [4, 2, 2],
      [`${v}tinylora_A`]: [2, 8], [`${v}tinylora_B`]: [4, 2], [`${v}tinylora_P`]: [4, 2, 2],
      'base_model.tinylora_v.0': [4],
    });
  } finally {
    await f.close();
  }
});
