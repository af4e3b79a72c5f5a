import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { combineAdapters, mergeAdapters } from '../../src/tools/merge.js';
import { openAdapter, writeAdapter, type LoraConfig, type LoraModuleTensors } from '../../src/io/peft.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { gpt2Config, gpt2Tensors, llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { encodeFloat, tensor, toFloat, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

// Tolerances (references in float64, computed here with plain loops or numpy):
const F32_TOL = 1e-6; // merged f32 weight: |got − ref| ≤ F32_TOL·|ref| per element (one f32 rounding is ≤ 2^-24)
const BF16_TOL = 2 ** -8; // merged bf16 weight: one bf16 rounding, |got − ref| ≤ 2^-8·|ref| per element
const CAT_TOL = 1e-6; // cat: ‖B'A' − ΔW‖_F ≤ CAT_TOL·‖ΔW‖_F (f32 factors)
const SVD_TOL = 1e-5; // svd at full rank: the same bound; truncated: |err − Eckart–Young optimum| ≤ SVD_TOL·‖ΔW‖_F

const SHAPE = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 40 };

async function makeBase(dir: string, dtype: 'f32' | 'bf16'): Promise<void> {
  // A small shard size gives several shards and an index, to check the layout is kept.
  await writeModel(dir, randomWeights(llamaTensors(SHAPE), { seed: 3, dtype }), { config: llamaConfig(SHAPE, dtype === 'f32' ? 'float32' : 'bfloat16'), maxShardSize: 20000 });
}

interface ModSpec {
  name: string;
  out: number;
  in: number;
  r: number;
}

function randomModules(specs: readonly ModSpec[], seed: number): LoraModuleTensors[] {
  const g = rng(seed);
  return specs.map((s) => ({
    name: s.name,
    A: tensor('f32', [s.r, s.in], g.fillNormal(new Float32Array(s.r * s.in), 0, 0.3)),
    B: tensor('f32', [s.out, s.r], g.fillNormal(new Float32Array(s.out * s.r), 0, 0.3)),
  }));
}

// Adapter 1: r 4, alpha 8 (scaling 2); layers.1 q_proj at r 6 / alpha 3 (scaling 0.5) by pattern; lm_head saved.
const CONFIG1: Partial<LoraConfig> = {
  r: 4,
  lora_alpha: 8,
  target_modules: ['q_proj', 'v_proj', 'down_proj'],
  rank_pattern: { 'layers.1.self_attn.q_proj': 6 },
  alpha_pattern: { 'layers.1.self_attn.q_proj': 3 },
  modules_to_save: ['lm_head'],
};
const MODS1: ModSpec[] = [
  { name: 'model.layers.0.self_attn.q_proj', out: 32, in: 32, r: 4 },
  { name: 'model.layers.1.self_attn.q_proj', out: 32, in: 32, r: 6 },
  { name: 'model.layers.0.self_attn.v_proj', out: 16, in: 32, r: 4 },
  { name: 'model.layers.1.mlp.down_proj', out: 32, in: 64, r: 4 },
];
const SCALE1: Record<string, number> = { 'model.layers.1.self_attn.q_proj': 3 / 6 };
// Adapter 2: rsLoRA, r 4, alpha 6 (scaling 6/√4 = 3).
const CONFIG2: Partial<LoraConfig> = { r: 4, lora_alpha: 6, use_rslora: true, target_modules: ['q_proj', 'k_proj'] };
const MODS2: ModSpec[] = [
  { name: 'model.layers.0.self_attn.q_proj', out: 32, in: 32, r: 4 },
  { name: 'model.layers.1.self_attn.k_proj', out: 16, in: 32, r: 4 },
];

interface Written {
  dir: string;
  modules: LoraModuleTensors[];
  scaling: (name: string) => number;
  saved?: Float32Array;
}

async function makeAdapters(root: string): Promise<[Written, Written]> {
  const m1 = randomModules(MODS1, 11);
  const saved = rng(12).fillNormal(new Float32Array(40 * 32), 0, 0.05);
  const extra = [{ name: 'base_model.model.lm_head.weight', dtype: 'f32' as const, shape: [40, 32], data: saved }];
  await writeAdapter(join(root, 'a1'), CONFIG1, m1, { extra });
  const m2 = randomModules(MODS2, 21);
  await writeAdapter(join(root, 'a2'), CONFIG2, m2);
  return [
    { dir: join(root, 'a1'), modules: m1, scaling: (n) => SCALE1[n] ?? 8 / 4, saved },
    { dir: join(root, 'a2'), modules: m2, scaling: () => 6 / Math.sqrt(4) },
  ];
}

/** B·A in float64, plain loops. */
function product(m: LoraModuleTensors): { out: number; in: number; d: Float64Array } {
  const [out, r] = m.B.shape;
  const inF = m.A.shape[1];
  const a = toFloat(m.A, 'f64').data;
  const b = toFloat(m.B, 'f64').data;
  const d = new Float64Array(out * inF);
  for (let i = 0; i < out; i++) for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) d[i * inF + j] += b[i * r + k] * a[k * inF + j];
  return { out, in: inF, d };
}

/** The float64 reference of every updated weight: W + Σ w·s·B·A (transposed when `transposed`). */
async function references(base: string, adapters: readonly { w: Written; weight: number }[], transposed = false): Promise<Map<string, Float64Array>> {
  const model = await openModel(base);
  const refs = new Map<string, Float64Array>();
  try {
    for (const { w, weight } of adapters) {
      for (const m of w.modules) {
        const name = `${m.name}.weight`;
        const ref = refs.get(name) ?? (await model.readAs(name, 'f64')).data;
        const p = product(m);
        const f = weight * w.scaling(m.name);
        for (let i = 0; i < p.out; i++) for (let j = 0; j < p.in; j++) ref[transposed ? j * p.out + i : i * p.in + j] += f * p.d[i * p.in + j];
        refs.set(name, ref);
      }
    }
  } finally {
    await model.close();
  }
  return refs;
}

async function checkMerged(t: { name: string }, base: string, out: string, refs: Map<string, Float64Array>, tol: number, replaced: Map<string, Float32Array> = new Map()): Promise<void> {
  const [mb, mo] = [await openModel(base), await openModel(out)];
  try {
    assert.deepEqual(mo.shards, mb.shards, `${t.name}: same shard files`);
    for (const e of mb.tensors) {
      const got = mo.entry(e.name);
      assert.equal(got.dtype, e.dtype, e.name);
      assert.equal(got.shard, e.shard, e.name);
      const ref = refs.get(e.name);
      const rep = replaced.get(e.name);
      if (ref !== undefined) {
        const g = (await mo.readAs(e.name, 'f64')).data;
        let worst = 0;
        for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(g[i] - ref[i]) / Math.abs(ref[i]));
        assert.ok(worst <= tol, `${e.name}: max relative error ${worst} > ${tol}`);
      } else if (rep !== undefined) {
        // Stored in the base's dtype: one rounding of the saved f32 values (none for an f32 base).
        const want = toFloat(encodeFloat(tensor('f32', e.shape, rep), e.dtype === 'bf16' ? 'bf16' : 'f32'), 'f32').data;
        assert.deepEqual((await mo.readAs(e.name, 'f32')).data, want, `${e.name} replaced by modules_to_save`);
      } else {
        const [x, y] = [await mb.read(e.name), await mo.read(e.name)];
        assert.ok(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength).equals(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength)), `${e.name} byte-identical`);
      }
    }
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), await readFile(join(base, 'config.json'), 'utf8'));
    assert.deepEqual(JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')), JSON.parse(await readFile(join(base, 'model.safetensors.index.json'), 'utf8')));
  } finally {
    await mb.close();
    await mo.close();
  }
}

test('merge one adapter (alpha ≠ r, rank_pattern, modules_to_save) into f32 and bf16 bases: W + s·B·A', async (t) => {
  const root = await tempDir(t);
  const [a1] = await makeAdapters(root);
  for (const dtype of ['f32', 'bf16'] as const) {
    const base = join(root, `base-${dtype}`);
    await makeBase(base, dtype);
    const seen: string[] = [];
    const res = await mergeAdapters({ base, adapters: [{ dir: a1.dir }], out: join(root, `m-${dtype}`), onTensor: (n) => seen.push(n) });
    assert.ok(res.shards.length > 1);
    assert.equal(res.merged.length, 4);
    assert.deepEqual(res.replaced, ['lm_head.weight']);
    assert.equal(seen.length, llamaTensors(SHAPE).length);
    const refs = await references(base, [{ w: a1, weight: 1 }]);
    await checkMerged(t, base, res.out, refs, dtype === 'f32' ? F32_TOL : BF16_TOL, new Map([['lm_head.weight', a1.saved as Float32Array]]));
  }
});

test('merge two weighted adapters (one rsLoRA): W + Σ w_k·s_k·B_k·A_k', async (t) => {
  const root = await tempDir(t);
  const [a1, a2] = await makeAdapters(root);
  const base = join(root, 'base');
  await makeBase(base, 'f32');
  const res = await mergeAdapters({ base, adapters: [{ dir: a1.dir, weight: 0.7 }, { dir: a2.dir, weight: -0.4 }], out: join(root, 'm') });
  assert.equal(res.merged.length, 5);
  const refs = await references(base, [{ w: a1, weight: 0.7 }, { w: a2, weight: -0.4 }]);
  await checkMerged(t, base, res.out, refs, F32_TOL, new Map([['lm_head.weight', a1.saved as Float32Array]]));
});

test('merge with fan_in_fan_out (GPT-2 Conv1D weights stored [in, out]): W + s·(B·A)ᵀ', async (t) => {
  const root = await tempDir(t);
  const shape = { n_embd: 16, n_layer: 1, n_head: 2, n_positions: 8, vocab_size: 20 };
  const base = join(root, 'gpt2');
  await writeModel(base, randomWeights(gpt2Tensors(shape), { seed: 5, dtype: 'f32' }), { config: gpt2Config(shape) });
  const mods = randomModules([{ name: 'transformer.h.0.attn.c_attn', out: 48, in: 16, r: 2 }, { name: 'transformer.h.0.mlp.c_proj', out: 16, in: 64, r: 2 }], 31);
  await writeAdapter(join(root, 'a'), { r: 2, lora_alpha: 5, fan_in_fan_out: true, target_modules: ['c_attn', 'c_proj'] }, mods);
  const res = await mergeAdapters({ base, adapters: [{ dir: join(root, 'a') }], out: join(root, 'm') });
  const refs = await references(base, [{ w: { dir: '', modules: mods, scaling: () => 2.5 }, weight: 1 }], true);
  const m = await openModel(res.out);
  try {
    for (const [name, ref] of refs) {
      const g = (await m.readAs(name, 'f64')).data;
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(g[i] - ref[i]) <= F32_TOL * Math.abs(ref[i]), `${name}[${i}]`);
    }
  } finally {
    await m.close();
  }
});

test("merge a DoRA adapter: W' = m/‖W + s·B·A‖_row · (W + s·B·A); DoRA with two adapters is refused", async (t) => {
  const root = await tempDir(t);
  const base = join(root, 'base');
  await makeBase(base, 'f32');
  const mods = randomModules([{ name: 'model.layers.0.self_attn.q_proj', out: 32, in: 32, r: 4 }], 41);
  const mag = rng(42).fillUniform(new Float32Array(32), 0.5, 1.5);
  await writeAdapter(join(root, 'd'), { r: 4, lora_alpha: 4, target_modules: ['q_proj'] }, [{ ...mods[0], magnitude: tensor('f32', [32], mag) }]);
  const res = await mergeAdapters({ base, adapters: [{ dir: join(root, 'd') }], out: join(root, 'm') });
  const ref = (await references(base, [{ w: { dir: '', modules: mods, scaling: () => 1 }, weight: 1 }])).get('model.layers.0.self_attn.q_proj.weight') as Float64Array;
  for (let o = 0; o < 32; o++) {
    let sq = 0;
    for (let i = 0; i < 32; i++) sq += ref[o * 32 + i] ** 2;
    for (let i = 0; i < 32; i++) ref[o * 32 + i] *= mag[o] / Math.sqrt(sq);
  }
  const m = await openModel(res.out);
  try {
    const g = (await m.readAs('model.layers.0.self_attn.q_proj.weight', 'f64')).data;
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(g[i] - ref[i]) <= F32_TOL * Math.abs(ref[i]), `[${i}] ${g[i]} vs ${ref[i]}`);
  } finally {
    await m.close();
  }
  const [a1] = await makeAdapters(root);
  await assert.rejects(mergeAdapters({ base, adapters: [{ dir: join(root, 'd') }, { dir: a1.dir }], out: join(root, 'm2') }), (e: unknown) => e instanceof LowrankError && e.code === 'E_UNSUPPORTED');
});

/** The dense weighted sum Σ w·s·B·A per module of two adapters (float64). */
function denseSum(adapters: readonly { w: Written; weight: number }[]): Map<string, { out: number; in: number; d: Float64Array }> {
  const sums = new Map<string, { out: number; in: number; d: Float64Array }>();
  for (const { w, weight } of adapters) {
    for (const m of w.modules) {
      const p = product(m);
      const acc = sums.get(m.name) ?? { out: p.out, in: p.in, d: new Float64Array(p.d.length) };
      const f = weight * w.scaling(m.name);
      for (let i = 0; i < p.d.length; i++) acc.d[i] += f * p.d[i];
      sums.set(m.name, acc);
    }
  }
  return sums;
}

/** The update of every module of an adapter folder as read back: scaling·B·A (float64). */
async function readBack(dir: string): Promise<Map<string, { d: Float64Array; r: number; scaling: number }>> {
  const a = await openAdapter(dir);
  const res = new Map<string, { d: Float64Array; r: number; scaling: number }>();
  try {
    for (const m of a.modules) {
      const p = product({ name: m.name, A: await a.readAs(m.A.name, 'f64'), B: await a.readAs(m.B.name, 'f64') });
      res.set(m.name, { d: p.d.map((x) => x * m.scaling), r: m.r, scaling: m.scaling });
    }
  } finally {
    await a.close();
  }
  return res;
}

function fro(x: Float64Array, y?: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - (y?.[i] ?? 0)) ** 2;
  return Math.sqrt(s);
}

test('combine cat and svd (full and truncated): the update is the weighted sum, or its Eckart–Young optimum', async (t) => {
  const root = await tempDir(t);
  const [a1, a2] = await makeAdapters(root);
  const adapters = [{ dir: a1.dir, weight: 0.6 }, { dir: a2.dir, weight: 1.3 }];
  const sums = denseSum([{ w: a1, weight: 0.6 }, { w: a2, weight: 1.3 }]);
  const ranks1 = new Map(MODS1.map((m) => [m.name, m.r]));
  const ranks2 = new Map(MODS2.map((m) => [m.name, m.r]));

  const cat = await combineAdapters({ adapters, combine: 'cat', out: join(root, 'cat') });
  const catBack = await readBack(cat.out);
  assert.equal(catBack.size, sums.size);
  for (const [name, s] of sums) {
    const got = catBack.get(name);
    assert.ok(got !== undefined, name);
    assert.equal(got.scaling, 1);
    assert.equal(got.r, (ranks1.get(name) ?? 0) + (ranks2.get(name) ?? 0), `${name}: cat rank`);
    assert.ok(fro(got.d, s.d) <= CAT_TOL * fro(s.d), `${name}: cat error ${fro(got.d, s.d) / fro(s.d)}`);
  }
  // The saved lm_head travels with the combined adapter.
  const ca = await openAdapter(cat.out);
  assert.deepEqual(ca.others.map((e) => e.name), ['base_model.model.lm_head.weight']);
  await ca.close();

  for (const method of ['svd', 'linear'] as const) {
    const full = await combineAdapters({ adapters, combine: method, out: join(root, `${method}-full`) });
    const back = await readBack(full.out);
    for (const [name, s] of sums) {
      const got = back.get(name);
      assert.ok(got !== undefined);
      assert.ok(fro(got.d, s.d) <= SVD_TOL * fro(s.d), `${method} ${name}: error ${fro(got.d, s.d) / fro(s.d)}`);
    }
  }

  const k = 3;
  const trunc = await combineAdapters({ adapters, combine: 'svd', rank: k, out: join(root, 'svd3') });
  const back = await readBack(trunc.out);
  const names = [...sums.keys()];
  const sv = pythonJson<number[][]>(
    'import json,sys\nms=json.load(sys.stdin)\nprint(json.dumps([np.linalg.svd(np.array(m["d"],dtype=np.float64).reshape(m["o"],m["i"]),compute_uv=False).tolist() for m in ms]))',
    [],
    JSON.stringify(names.map((n) => ({ d: [...(sums.get(n) as { d: Float64Array }).d], o: sums.get(n)?.out, i: sums.get(n)?.in }))),
  );
  names.forEach((name, idx) => {
    const s = sums.get(name) as { d: Float64Array };
    const got = back.get(name);
    assert.ok(got !== undefined);
    assert.equal(got.r, k);
    const optimum = Math.sqrt(sv[idx].slice(k).reduce((acc, x) => acc + x * x, 0));
    const err = fro(got.d, s.d);
    assert.ok(Math.abs(err - optimum) <= SVD_TOL * fro(s.d), `${name}: error ${err} vs optimum ${optimum}`);
    const rep = trunc.modules.find((m) => m.name === name);
    assert.ok(rep !== undefined && Math.abs(rep.relError - optimum / fro(s.d)) <= SVD_TOL, `${name}: reported relError`);
  });
  await assert.rejects(combineAdapters({ adapters, combine: 'cat', rank: 2, out: join(root, 'x') }), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
});

test('combine ties / magnitude_prune / dare_ties: the SVD truncation of the elementwise merge of the updates (numpy)', async (t) => {
  const root = await tempDir(t);
  const [a1, a2] = await makeAdapters(root);
  const adapters = [{ dir: a1.dir, weight: 0.6 }, { dir: a2.dir, weight: 1.3 }];
  // Per module, the updates s_k·B_k·A_k of the adapters that have it.
  const updates = new Map<string, { out: number; in: number; d: Float64Array[]; w: number[]; r: number[] }>();
  for (const [k, w] of [a1, a2].entries()) {
    for (const m of w.modules) {
      const p = product(m);
      const e = updates.get(m.name) ?? { out: p.out, in: p.in, d: [], w: [], r: [] };
      e.d.push(p.d.map((x) => x * w.scaling(m.name)));
      e.w.push(adapters[k].weight);
      e.r.push(m.A.shape[0]);
      updates.set(m.name, e);
    }
  }
  const names = [...updates.keys()];
  // The merge (magnitude pruning, TIES sign election) and the rank-k truncation, in numpy.
  const reference = (method: string, density: number, rank: number | undefined) => pythonJson<{ t: number[]; rel: number; k: number }[]>(
    `import json,sys
q=json.load(sys.stdin)
res=[]
for m in q["mods"]:
    T=np.array(m["d"],dtype=np.float64); w=np.array(m["w"])[:,None]
    k=int(q["density"]*T.shape[1]); P=np.zeros_like(T)
    for i in range(T.shape[0]):
        keep=np.argsort(-np.abs(T[i]),kind="stable")[:k]; P[i,keep]=T[i,keep]
    if q["ties"]:
        el=np.where(P.sum(0)>=0,1.0,-1.0); mask=np.sign(P)==el
        M=(P*w*mask).sum(0)/np.maximum(mask.sum(0),1)
    else:
        M=(P*w).sum(0)
    M=M.reshape(m["o"],m["i"]); r=q["rank"] or max(m["r"])
    U,S,Vt=np.linalg.svd(M,full_matrices=False); r=min(r,len(S))
    res.append({"t":(U[:,:r]*S[:r]@Vt[:r]).ravel().tolist(),"rel":float(np.sqrt((S[r:]**2).sum()/(S**2).sum())),"k":r})
print(json.dumps(res))`,
    [],
    JSON.stringify({ density, ties: method === 'ties', rank: rank ?? null, mods: names.map((n) => { const e = updates.get(n)!; return { d: e.d.map((x) => [...x]), w: e.w, r: e.r, o: e.out, i: e.in }; }) }),
  );
  for (const [method, density, rank] of [['ties', 0.3, undefined], ['ties', 0.6, 2], ['magnitude_prune', 0.5, 3]] as const) {
    const res = await combineAdapters({ adapters, combine: method, density, rank, out: join(root, `${method}-${density}`) });
    const back = await readBack(res.out);
    const ref = reference(method, density, rank);
    names.forEach((name, i) => {
      const got = back.get(name);
      assert.ok(got !== undefined, name);
      assert.equal(got.r, ref[i].k, `${method} ${name}: rank`);
      const target = Float64Array.from(ref[i].t);
      assert.ok(fro(got.d, target) <= SVD_TOL * fro(target), `${method} ${name}: ${fro(got.d, target) / fro(target)}`);
      const rep = res.modules.find((m) => m.name === name);
      assert.ok(rep !== undefined && Math.abs(rep.relError - ref[i].rel) <= SVD_TOL, `${method} ${name}: relError`);
    });
  }
  // DARE: reproducible from its seed, another seed drops other entries.
  const d1 = await readBack((await combineAdapters({ adapters, combine: 'dare_ties', density: 0.5, seed: 4, out: join(root, 'dare1') })).out);
  const d2 = await readBack((await combineAdapters({ adapters, combine: 'dare_ties', density: 0.5, seed: 4, out: join(root, 'dare2') })).out);
  const d3 = await readBack((await combineAdapters({ adapters, combine: 'dare_ties', density: 0.5, seed: 5, out: join(root, 'dare3') })).out);
  for (const name of names) {
    assert.deepEqual(d1.get(name)?.d, d2.get(name)?.d, name);
    assert.notDeepEqual(d1.get(name)?.d, d3.get(name)?.d, name);
  }
  const usage = (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE';
  await assert.rejects(combineAdapters({ adapters, combine: 'ties', out: join(root, 'x') }), usage);
  await assert.rejects(combineAdapters({ adapters, combine: 'svd', density: 0.5, out: join(root, 'x') }), usage);
});

test('combine keeps bf16 factors in bf16', async (t) => {
  const root = await tempDir(t);
  const mods = randomModules([{ name: 'model.layers.0.self_attn.q_proj', out: 8, in: 8, r: 2 }], 7).map((m) => ({ ...m, A: encodeFloat(m.A as Tensor<'f32'>, 'bf16'), B: encodeFloat(m.B as Tensor<'f32'>, 'bf16') }));
  await writeAdapter(join(root, 'a'), { r: 2, lora_alpha: 2, target_modules: ['q_proj'] }, mods);
  const res = await combineAdapters({ adapters: [{ dir: join(root, 'a') }], combine: 'cat', out: join(root, 'c') });
  const a = await openAdapter(res.out);
  assert.equal(a.modules[0].A.dtype, 'bf16');
  await a.close();
});

test('lowrank merge CLI: merge, refuse an existing --out without --force, combine', async (t) => {
  const root = await tempDir(t);
  const [a1, a2] = await makeAdapters(root);
  const base = join(root, 'base');
  await makeBase(base, 'f32');
  const out = join(root, 'merged');
  const args = ['merge', '--base', base, '--adapter', a1.dir, '--adapter', a2.dir, '--weight', '0.5', '--weight', '2', '--out', out, '--json'];
  const r1 = cli(args);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal((JSON.parse(r1.stdout) as { merged: string[] }).merged.length, 5);
  const refs = await references(base, [{ w: a1, weight: 0.5 }, { w: a2, weight: 2 }]);
  await checkMerged(t, base, out, refs, F32_TOL, new Map([['lm_head.weight', a1.saved as Float32Array]]));
  const r2 = cli(args);
  assert.equal(r2.code, 1);
  assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  assert.equal(cli([...args, '--force']).code, 0);
  const bad = cli(['merge', '--base', base, '--adapter', a1.dir, '--weight', '1', '--weight', '2', '--out', join(root, 'bad')]);
  assert.equal(bad.code, 1);
  assert.ok(!(await readdir(root)).includes('bad'));
  const c = cli(['merge', '--adapter', a1.dir, '--adapter', a2.dir, '--combine', 'svd', '--rank', '2', '--out', join(root, 'comb')]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /combined by svd, r = lora_alpha = 2/);
  const back = await readBack(join(root, 'comb'));
  assert.ok([...back.values()].every((m) => m.r === 2));
  const ties = cli(['merge', '--adapter', a1.dir, '--adapter', a2.dir, '--combine', 'ties', '--density', '0.4', '--majority-sign', 'frequency', '--out', join(root, 'ties')]);
  assert.equal(ties.code, 0, ties.stderr);
  assert.match(ties.stdout, /combined by ties/);
  const noDensity = cli(['merge', '--adapter', a1.dir, '--combine', 'dare_linear', '--out', join(root, 'dare')]);
  assert.equal(noDensity.code, 1);
  assert.match(noDensity.stderr, /needs a density/);
  assert.ok(!(await readdir(root)).includes('dare'));
});
