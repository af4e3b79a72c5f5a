/**
 * RandLoRA: the engine's checks (harness.ts) on layers wider than tall and taller than wide; ΔW
 * against a numpy transcription of PEFT's get_scaled_bases / get_delta_weight; PEFT's shapes, init
 * values, parameter counts, basis draws and saved keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { checkMethod, rand } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';
import { writeMethodFolder } from '../../src/methods/adapterFile.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { LowrankError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/tensor.js';
import type { InitOptions, LayerShape, Shared } from '../../src/methods/types.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';

const REF_TOL = 1e-12; // ΔW against numpy, relative to its largest entry
const STD_TOL = 1e-12; // the bases' unbiased std after PEFT's normalization

const m = getMethod('randlora');
const layersOf = (shapes: readonly (readonly [number, number])[]): LayerShape[] => shapes.map((s, i) => ({ name: `model.layers.${i}.proj`, shape: [s[0], s[1]] }));
const prepare = (shapes: readonly (readonly [number, number])[], opts: InitOptions): Promise<Shared<'f64'>> => {
  assert.ok(m.prepare !== undefined);
  return m.prepare(layersOf(shapes), opts, 'f64');
};
const isError = (code: string, pattern: RegExp) => (e: unknown): boolean => e instanceof LowrankError && e.code === code && pattern.test(e.message);

test('randlora: unchanged at start, exact gradients, merged = unmerged, save/load, r·n + n·m parameters (5×9: in > out; 9×4: out > in)', async (t) => {
  await checkMethod(t, 'randlora', { opts: { rank: 2, options: { randlora_alpha: 5, projection_prng_key: 7 } }, shapes: [[5, 9], [5, 9], [9, 4]], startsUnchanged: true });
});

test('randlora: the same checks with very_sparse bases and init_weights=false (7×3, 4×10)', async (t) => {
  await checkMethod(t, 'randlora', { opts: { rank: 3, seed: 2, options: { randlora_alpha: 4, very_sparse: true, init_weights: false } }, shapes: [[7, 3], [7, 3], [4, 10]], startsUnchanged: false });
});

interface Case {
  readonly shared: Shared<'f64'>;
  readonly lam: Tensor<'f64'>;
  readonly gam: Tensor<'f64'>;
  readonly r: number;
  readonly out: number;
  readonly inF: number;
}

/** PEFT's get_scaled_bases and get_delta_weight, transcribed to numpy; one python run for every case. */
function peftDeltas(alpha: number, cases: readonly Case[]): number[][] {
  const input = JSON.stringify({ alpha, cases: cases.map(({ shared: { tensors: { A, B } }, ...c }) => ({ A: [...A.data], As: A.shape, B: [...B.data], Bs: B.shape, lam: [...c.lam.data], ls: c.lam.shape, gam: [...c.gam.data], gs: c.gam.shape, r: c.r, out: c.out, inF: c.inF })) });
  return pythonJson<number[][]>(`import json,sys
d=json.load(sys.stdin)
res=[]
for c in d['cases']:
    A=np.array(c['A'],dtype=np.float64).reshape(c['As']); B=np.array(c['B'],dtype=np.float64).reshape(c['Bs'])
    lam=np.array(c['lam'],dtype=np.float64).reshape(c['ls']); gam=np.array(c['gam'],dtype=np.float64).reshape(c['gs'])
    r,out,inF=c['r'],c['out'],c['inF']
    min_dim,max_dim=min(out,inF),max(out,inF)
    num_bases=min_dim/r
    num_bases=int(num_bases) if num_bases.is_integer() else int(num_bases)+1
    sliced_A=A[:, :num_bases, :min_dim]
    sliced_B=B[:max_dim, :num_bases, :]
    update_B=sliced_B.reshape(max_dim, -1)
    update_A=(lam[:, :, None]*sliced_A*gam[None]).reshape(-1, min_dim)
    first,second=(update_A,update_B) if min_dim==inF else (update_B.T,update_A.T)
    update_B,update_A=first,second
    dW=(update_B.T@update_A.T).T*(d['alpha']/r)
    assert dW.shape==(out,inF)
    res.append(dW.ravel().tolist())
print(json.dumps(res))`, [], input);
}

test('randlora: ΔW equals PEFT formula in numpy to 1e-12, for in > out, out > in, square and r > min(out, in)', async () => {
  const shapes = [[5, 9], [9, 4], [6, 6], [3, 7]] as const;
  const cases: Case[] = [];
  const got: Tensor<'f64'>[] = [];
  for (const r of [2, 5]) {
    const opts = { rank: r, options: { randlora_alpha: 3, projection_prng_key: 11 } };
    const shared = await prepare(shapes, opts);
    for (const [i, [out, inF]] of shapes.entries()) {
      const init = await m.init(rand(40 + i, [out, inF]), opts, shared);
      const lam = rand(50 + i, init.tensors.lambda.shape);
      const gam = rand(60 + i, init.tensors.gamma.shape);
      assert.ok(m.delta !== undefined);
      got.push(await toDense(await m.delta({ lambda: lam, gamma: gam }, shared, opts, [out, inF])));
      cases.push({ shared, lam, gam, r, out, inF });
    }
  }
  for (const [i, want] of peftDeltas(3, cases).entries()) {
    const { r, out, inF } = cases[i];
    assert.deepEqual(got[i].shape, [out, inF]);
    const scale = Math.max(...want.map(Math.abs));
    const worst = want.reduce((w, v, j) => Math.max(w, Math.abs(got[i].data[j] - v)), 0);
    assert.ok(worst <= REF_TOL * scale, `r=${r} ${out}×${inF}: max difference ${worst} > ${REF_TOL}·${scale}`);
  }
});

test("randlora: PEFT's shapes, init values and parameter counts (tiny Llama q 64→64, v 64→32; up 64→128 with down 128→64)", async () => {
  const qv = [[64, 64], [32, 64]] as const;
  for (const [r, ng, qn, vn] of [[8, 8, 8, 4], [10, 7, 7, 4]] as const) {
    const opts = { rank: r };
    const shared = await prepare(qv, opts);
    assert.deepEqual(shared.tensors.A.shape, [r, 1, 64]);
    assert.deepEqual(shared.tensors.B.shape, [64, ng, r]);
    assert.deepEqual(Object.keys(shared.grads), []);
    const [q, v] = await Promise.all(qv.map((s, i) => m.init(rand(i, s), opts, shared)));
    assert.deepEqual([q.tensors.lambda.shape, q.tensors.gamma.shape], [[r, qn], [qn, 64]]);
    assert.deepEqual([v.tensors.lambda.shape, v.tensors.gamma.shape], [[r, vn], [vn, 32]]);
    assert.ok(q.tensors.lambda.data.every((x) => x === 0) && v.tensors.lambda.data.every((x) => x === 0));
    assert.ok(q.tensors.gamma.data.every((x) => x === 1 / 64) && v.tensors.gamma.data.every((x) => x === 1 / 32)); // 1/max(n, m), not 1/max(out, in)
    assert.equal(m.trainableParams(64, 64, r), r * qn + qn * 64);
    assert.equal(m.trainableParams(32, 64, r), r * vn + vn * 32);
  }
  assert.equal(m.trainableParams(64, 64, 8), 576);
  assert.equal(m.trainableParams(32, 64, 8), 160);
  assert.equal(m.trainableParams(4096, 11008, 32), 32 * 128 + 128 * 4096);
  assert.equal(m.frozenParams?.(4096, 4096, 32), 0);
  const updown = await prepare([[128, 64], [64, 128]], { rank: 8 });
  assert.deepEqual([updown.tensors.A.shape, updown.tensors.B.shape], [[8, 1, 128], [128, 16, 8]]);
  for (const s of [[128, 64], [64, 128]] as const) {
    const init = await m.init(rand(3, s), { rank: 8 }, updown);
    assert.deepEqual([init.tensors.lambda.shape, init.tensors.gamma.shape], [[8, 8], [8, 64]]);
  }
  const off = await m.init(rand(4, [32, 64]), { rank: 8, seed: 1, options: { init_weights: false } }, updown);
  assert.ok(off.tensors.gamma.data.every((x) => x === 1 / 64) && off.tensors.lambda.data.some((x) => x !== 0)); // PEFT's ones/max(out, in) and randn
});

test('randlora: bases divided by their std; seeded by projection_prng_key; sparse and very_sparse ternary at their densities', async () => {
  const qv = [[64, 64], [32, 64]] as const;
  const std = (d: ArrayLike<number>): number => {
    const a = Array.from(d);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    return Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / (a.length - 1));
  };
  const nonzero = (d: ArrayLike<number>): number => Array.from(d).filter((x) => x !== 0).length / d.length;
  const dense = await prepare(qv, { rank: 8 });
  const again = await prepare(qv, { rank: 8 });
  const other = await prepare(qv, { rank: 8, options: { projection_prng_key: 1 } });
  assert.deepEqual(dense.tensors.B.data, again.tensors.B.data);
  assert.notDeepEqual(dense.tensors.A.data, other.tensors.A.data);
  const sparse = await prepare(qv, { rank: 8, options: { sparse: true } });
  const very = await prepare(qv, { rank: 8, options: { very_sparse: true } });
  const both = await prepare(qv, { rank: 8, options: { very_sparse: true, sparse: true } });
  assert.deepEqual(both.tensors.B.data, very.tensors.B.data);
  for (const s of [dense, sparse, very]) for (const role of ['A', 'B']) assert.ok(Math.abs(std(s.tensors[role].data) - 1) <= STD_TOL, `${role} std ${std(s.tensors[role].data)}`);
  assert.ok(dense.tensors.A.data.every((x) => Math.abs(x) <= Math.sqrt(3) * 1.2) && new Set(dense.tensors.A.data).size === 8 * 64);
  for (const s of [sparse, very]) {
    const values = [...new Set(s.tensors.B.data)].sort((a, b) => a - b);
    assert.equal(values.length, 3);
    assert.ok(values[1] === 0 && values[0] === -values[2], `values ${values.join(', ')}`);
  }
  const [ps, pv] = [nonzero(sparse.tensors.B.data), nonzero(very.tensors.B.data)]; // 4096 draws: P(≠0) = 1/3 and 2/(2·√64) = 1/8
  assert.ok(ps > 0.3 && ps < 0.37, `sparse density ${ps}`);
  assert.ok(pv > 0.1 && pv < 0.15, `very_sparse density ${pv}`);
});

test("randlora: saved as PEFT's RANDLORA (config fields, model-level bases, per-layer λ and γ, and every layer's copy of the bases, as PEFT saves them)", async (t) => {
  const layers: LayerShape[] = [0, 1].flatMap((i) => [
    { name: `model.layers.${i}.self_attn.q_proj`, shape: [64, 64] as const },
    { name: `model.layers.${i}.self_attn.v_proj`, shape: [32, 64] as const },
  ]);
  const opts = { rank: 8 };
  assert.ok(m.prepare !== undefined);
  const shared = await m.prepare(layers, opts, 'f64');
  const modules = new Map<string, Readonly<Record<string, Tensor<'f64'>>>>();
  for (const l of layers) modules.set(l.name, (await m.init(rand(1, l.shape), opts, shared)).tensors as Readonly<Record<string, Tensor<'f64'>>>);
  const dir = join(await tempDir(t), 'adapter');
  await writeMethodFolder(dir, { method: m, opts, layers, modules, shared, fanInFanOut: false }, { targetModules: ['q_proj', 'v_proj'] });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  const want = { peft_type: 'RANDLORA', r: 8, randlora_alpha: 640, projection_prng_key: 0, save_projection: true, sparse: false, very_sparse: false, randlora_dropout: 0, init_weights: true, fan_in_fan_out: false, bias: 'none' };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(config[k], v, k);
  const file = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  try {
    const got = file.entries.map((e) => `${e.name} ${e.dtype} [${e.shape.join(',')}]`).sort();
    const expected = ['base_model.randlora_A f32 [8,1,64]', 'base_model.randlora_B f32 [64,8,8]'];
    for (const i of [0, 1]) {
      const p = `base_model.model.model.layers.${i}.self_attn`;
      expected.push(`${p}.q_proj.randlora_gamma f32 [8,64]`, `${p}.q_proj.randlora_lambda f32 [8,8]`, `${p}.v_proj.randlora_gamma f32 [4,32]`, `${p}.v_proj.randlora_lambda f32 [8,4]`);
      for (const proj of ['q_proj', 'v_proj']) expected.push(`${p}.${proj}.randlora_A f32 [8,1,64]`, `${p}.${proj}.randlora_B f32 [64,8,8]`);
    }
    assert.deepEqual(got, expected.sort());
  } finally {
    await file.close();
  }
});

test('randlora: save_projection=false is E_UNSUPPORTED; options out of range, a basis without spread and a layer larger than the bases are errors naming what is wrong', async () => {
  const w = rand(1, [6, 8]);
  const unsupported = isError('E_UNSUPPORTED', /save_projection/);
  await assert.rejects(prepare([[6, 8]], { rank: 2, options: { save_projection: false } }), unsupported);
  await assert.rejects(m.init(w, { rank: 2, options: { save_projection: false } }), unsupported);
  await assert.rejects(m.init(w, { rank: 2, options: { randlora_alpha: 0 } }), isError('E_USAGE', /randlora_alpha/));
  await assert.rejects(prepare([[6, 8]], { rank: 2, options: { projection_prng_key: -1 } }), isError('E_USAGE', /projection_prng_key/));
  await assert.rejects(prepare([[6, 8]], { rank: 2, options: { lora_dropout: 0.1 } }), isError('E_USAGE', /no option 'lora_dropout'/));
  await assert.rejects(prepare([[6, 8]], { rank: 0 }), isError('E_USAGE', /rank/));
  await assert.rejects(prepare([[1, 1]], { rank: 1 }), isError('E_USAGE', /basis A \[1, 1, 1\]/)); // one entry: no unbiased std
  const small = await prepare([[6, 8]], { rank: 2 });
  const init = await m.init(rand(2, [9, 8]), { rank: 2 }, small);
  assert.ok(m.delta !== undefined);
  await assert.rejects(m.delta(init.tensors as Readonly<Record<string, Tensor<'f64'>>>, small, { rank: 2 }, [9, 8]), isError('E_SHAPE', /9×8 layer/));
});
