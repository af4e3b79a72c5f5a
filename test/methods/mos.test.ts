/**
 * MoS: the engine's checks (harness.ts) with and without shard privatization, ΔW against plain
 * loops of the paper's concatenation, one shard shared by two layers, the routing (subset
 * selection, pair dissociation, seeded), the parameter budget and the paper's ≈8× saving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Tensor } from '../../src/core/tensor.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { getMethod } from '../../src/methods/registry.js';
import { loraParams } from '../../src/methods/split.js';
import { writeMethodFolder } from '../../src/methods/adapterFile.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { ADAPTER_WEIGHTS, KEY_PREFIX } from '../../src/io/peft.js';
import type { InitOptions, LayerShape, Shared } from '../../src/methods/types.js';
import { checkMethod, rand } from './harness.js';
import { tempDir } from '../helpers/tmp.js';

const m = getMethod('mos');
const opts = { rank: 3, alpha: 6, seed: 4, options: { valid_param_lora_r: 3, valid_param_private_r: 1, num_chunk_per_vec: 2 } };
const layersOf = (...shapes: [number, number][]): LayerShape[] => shapes.map((shape, i) => ({ name: `model.layers.${i}.proj`, shape }));
const isUsage = (what: RegExp) => (e: unknown): boolean => e instanceof LowrankError && e.code === 'E_USAGE' && what.test(e.message);

test('mos: unchanged at start, exact gradients (private and pooled shards), merged = unmerged, save/load, parameter counts', async (t) => {
  await checkMethod(t, 'mos', { opts, startsUnchanged: true });
});

test('mos: the same checks without privatization or sharding (valid_param_private_r 0: empty private tensors; l = 1)', async (t) => {
  await checkMethod(t, 'mos', { opts: { rank: 2, seed: 9, options: { valid_param_lora_r: 2, valid_param_private_r: 0, num_chunk_per_vec: 1 } }, startsUnchanged: true });
});

/** Two 6×8 layers and their inits, pools moved off their init (B's pool is 0 there). */
async function twoLayers(o: InitOptions): Promise<{ shared: Shared<'f64'>; inits: Record<string, Tensor<'f64'>>[] }> {
  const layers = layersOf([6, 8], [6, 8]);
  const shared = await m.prepare!(layers, o, 'f64');
  const inits = [];
  for (const i of [0, 1]) inits.push((await m.init(rand(40 + i, [6, 8]), { ...o, seed: (o.seed ?? 0) + i }, shared)).tensors as Record<string, Tensor<'f64'>>);
  for (const role of ['poolA', 'poolB']) rng(role.length + 7).fillNormal(shared.tensors[role].data);
  for (const t of inits) rng(3).fillNormal(t.privB.data);
  return { shared, inits };
}

const deltaOf = async (shared: Shared<'f64'>, t: Record<string, Tensor<'f64'>>, o: InitOptions): Promise<Tensor<'f64'>> => toDense(await m.delta!(t, shared, o, [6, 8]));

test('mos: ΔW = s·B·A with A rows and B columns concatenated from the routed shards (plain loops of the paper\'s formula)', async () => {
  const { shared, inits } = await twoLayers(opts);
  const [out, inF, l, rp] = [6, 8, 2, 1];
  const [da, db] = [inF / l, out / l];
  const pA = shared.tensors.poolA.data;
  const pB = shared.tensors.poolB.data;
  for (const t of inits) {
    const k = t.idxA.shape[0];
    const r = k + rp;
    const A = (j: number, c: number): number => (j < k ? pA[t.idxA.data[j * l + Math.floor(c / da)] * da + (c % da)] : t.privA.data[(j - k) * inF + c]);
    const B = (o: number, j: number): number => (j < k ? pB[t.idxB.data[j * l + Math.floor(o / db)] * db + (o % db)] : t.privB.data[o * rp + j - k]);
    const d = await deltaOf(shared, t, opts);
    const s = 6 / 3;
    let worst = 0;
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < inF; c++) {
        let want = 0;
        for (let j = 0; j < r; j++) want += B(o, j) * A(j, c);
        worst = Math.max(worst, Math.abs(d.data[o * inF + c] - s * want));
      }
    }
    assert.ok(worst < 1e-12, `ΔW differs from the reference by ${worst}`);
  }
});

test('mos: two layers routed to one shard see one tensor (moving it moves both ΔW; a shard only one layer uses moves only that one)', async () => {
  const { shared, inits } = await twoLayers(opts);
  const used = inits.map((t) => new Set(t.idxA.data));
  const common = [...used[0]].find((s) => used[1].has(s));
  const only0 = [...used[0]].find((s) => !used[1].has(s));
  assert.ok(common !== undefined && only0 !== undefined, 'the seeded routing has a shard in both layers and one in layer 0 only');
  const before = await Promise.all(inits.map((t, i) => deltaOf(shared, t, { ...opts, seed: 4 + i })));
  const moved = async (shard: number): Promise<number[]> => {
    const da = 8 / 2;
    const p = shared.tensors.poolA.data;
    const kept = p.slice();
    for (let i = 0; i < da; i++) p[shard * da + i] += 0.5;
    const after = await Promise.all(inits.map((t, i) => deltaOf(shared, t, { ...opts, seed: 4 + i })));
    p.set(kept);
    return after.map((d, i) => Math.max(...d.data.map((v, j) => Math.abs(v - before[i].data[j]))));
  };
  const [c0, c1] = await moved(common);
  assert.ok(c0 > 0.01 && c1 > 0.01, `shared shard ${common}: ΔW moved by ${c0} and ${c1}`);
  const [o0, o1] = await moved(only0);
  assert.ok(o0 > 0.01, `layer 0's shard ${only0} moved its ΔW by ${o0}`);
  assert.equal(o1, 0, `layer 1 does not use shard ${only0}`);
});

test('mos: routing is a seeded subset per table (distinct shards), A and B route apart, and layers of one shape with one seed still differ', async () => {
  const layers = layersOf([6, 8], [6, 8]);
  const o = { rank: 5, seed: 1, options: { valid_param_lora_r: 9, valid_param_private_r: 1, num_chunk_per_vec: 2 } };
  const shared = await m.prepare!(layers, o, 'f64');
  const w = rand(7, [6, 8]);
  const at = (index: number): typeof o & { layer: { name: string; index: number } } => ({ ...o, layer: { name: layers[index].name, index } });
  const a = (await m.init(w, at(0), shared)).tensors;
  const b = (await m.init(rand(9, [6, 8]), at(0), shared)).tensors;
  const c = (await m.init(w, at(1), shared)).tensors;
  const pool = (9 - 1) * 2 * 2;
  for (const t of [a, c]) {
    for (const role of ['idxA', 'idxB']) {
      const idx = Array.from(t[role].data);
      assert.deepEqual(t[role].shape, [4, 2]);
      assert.equal(new Set(idx).size, idx.length, `${role} has distinct shards`);
      assert.ok(idx.every((v) => Number.isInteger(v) && v >= 0 && v < pool), `${role} indexes the ${pool} shards`);
    }
    assert.notDeepEqual(Array.from(t.idxA.data), Array.from(t.idxB.data), 'pair dissociation: A and B take different shards');
  }
  assert.deepEqual(a.idxA.data, b.idxA.data, 'same seed, same layer: same routing');
  assert.deepEqual(a.privA.data, b.privA.data);
  assert.notDeepEqual(a.idxA.data, c.idxA.data, 'another layer of the shape (same seed, as `lowrank init` passes): another routing');
  assert.notDeepEqual(a.privA.data, c.privA.data);
  assert.ok(a.privB.data.every((v) => v === 0), 'B starts at 0');
  assert.ok(shared.tensors.poolB.data.every((v) => v === 0), 'B shards start at 0');
  const bound = 1 / Math.sqrt(8);
  assert.ok(shared.tensors.poolA.data.every((v) => Math.abs(v) <= bound) && shared.tensors.poolA.data.some((v) => v !== 0), 'A shards U(±1/√in)');
});

test('mos: the index tables are saved as int32 and the pools under their shared keys', async (t) => {
  const layers = layersOf([6, 8], [6, 8], [4, 8]);
  const shared = await m.prepare!(layers, opts, 'f64');
  const modules = new Map<string, Record<string, Tensor<'f64'>>>();
  for (const [i, l] of layers.entries()) modules.set(l.name, (await m.init(rand(i, l.shape), opts, shared)).tensors as Record<string, Tensor<'f64'>>);
  const dir = join(await tempDir(t), 'adapter');
  await writeMethodFolder(dir, { method: m, opts, layers, modules, shared, fanInFanOut: false });
  const file = await openSafetensors(join(dir, ADAPTER_WEIGHTS));
  try {
    assert.equal(file.entry(`${KEY_PREFIX}model.layers.0.proj.mos_index_A`).dtype, 'i32');
    assert.equal(file.entry(`${KEY_PREFIX}model.layers.2.proj.mos_index_B`).dtype, 'i32');
    assert.equal(file.entry(`${KEY_PREFIX}model.layers.1.proj.mos_private_A`).dtype, 'f32');
    assert.deepEqual(file.entry('base_model.mos_shards_A').shape, [shared.tensors.poolA.data.length]);
    assert.ok(file.has('base_model.mos_shards_B'));
  } finally {
    await file.close();
  }
});

test('mos: parameters by the paper\'s budget, r_e·Σ(in + out): r_p·(in + out) private per layer, the rest in the pools', async () => {
  // Two 6×8 layers and one 4×8, r_e = 3, r_p = 1: private 14, 14, 12; pools (3 − 1)·(14 + 14 + 12) = 80.
  const layers = layersOf([6, 8], [6, 8], [4, 8]);
  assert.equal(m.trainableParams(6, 8, 3, opts), 14);
  assert.equal(m.trainableParams(4, 8, 3, opts), 12);
  assert.equal(m.sharedParams!(layers, opts), 80);
  assert.equal(14 + 14 + 12 + 80, 3 * (14 + 14 + 12));
  // The prepared pools: A (2 shards of 4 per layer-vector: 2·2·2 of 6×8, 2·1·2 of 4×8) and B alike.
  const shared = await m.prepare!(layers, opts, 'f64');
  assert.equal(shared.tensors.poolA.data.length, 2 * 2 * 8 + 2 * 1 * 8);
  assert.equal(shared.tensors.poolB.data.length, 2 * 2 * 6 + 2 * 1 * 4);
  assert.deepEqual(Object.keys(shared.grads).sort(), ['poolA', 'poolB']);
  // Frozen per layer: the two index tables, (r − r_p)·l entries each.
  assert.equal(m.frozenParams!(6, 8, 3, opts), 2 * 2 * 2);
});

test('mos: the paper\'s ≈8× saving — LLaMA2-7B, all seven projections, rank 64 at the budget of rank 8 (19,988,480) vs LoRA rank 64', () => {
  // 32 blocks of q, k, v, o (4096×4096), gate, up (11008×4096) and down (4096×11008).
  const block: [number, number][] = [[4096, 4096], [4096, 4096], [4096, 4096], [4096, 4096], [11008, 4096], [11008, 4096], [4096, 11008]];
  const layers = layersOf(...Array.from({ length: 32 }, () => block).flat());
  const lora64 = layers.reduce((a, { shape: [o, i] }) => a + loraParams(o, i, 64), 0);
  assert.equal(lora64, 159_907_840);
  for (const [rp, l] of [[1, 2], [4, 16], [0, 1]]) {
    const o = { rank: 64, options: { valid_param_lora_r: 8, valid_param_private_r: rp, num_chunk_per_vec: l } };
    const mos = m.sharedParams!(layers, o) + layers.reduce((a, { shape: [out, inF] }) => a + m.trainableParams(out, inF, 64, o), 0);
    // = 8·32·(4·8192 + 3·15104) = 8·32·78080, LoRA's count at rank 8, whatever r_p and l.
    assert.equal(mos, 19_988_480);
    assert.equal(lora64 / mos, 8);
  }
});

test('mos: options and shapes it cannot serve are E_USAGE errors naming them', async () => {
  const layers = layersOf([6, 8], [6, 8]);
  const withOpts = (options: Record<string, number>, rank = 3): InitOptions => ({ rank, options });
  await assert.rejects(m.prepare!(layersOf([6, 9]), withOpts({ num_chunk_per_vec: 2, valid_param_lora_r: 3 }), 'f64'), isUsage(/6×9.*num_chunk_per_vec/));
  await assert.rejects(m.prepare!(layers, withOpts({ valid_param_lora_r: 1, valid_param_private_r: 2 }), 'f64'), isUsage(/valid_param_private_r \(2\) must be ≤ valid_param_lora_r/));
  await assert.rejects(m.prepare!(layers, withOpts({ valid_param_lora_r: 2, valid_param_private_r: 1 }, 4), 'f64'), isUsage(/rank 4 .*6×8.*valid_param_lora_r/));
  await assert.rejects(m.prepare!(layers, withOpts({ valid_param_lora_r: 0 }), 'f64'), isUsage(/valid_param_lora_r/));
  await assert.rejects(m.prepare!(layers, withOpts({ valid_param_private_r: 2, valid_param_lora_r: 4 }, 1), 'f64'), isUsage(/must be ≤ the rank/));
  const shared = await m.prepare!(layers, withOpts({ valid_param_lora_r: 3 }), 'f64');
  await assert.rejects(m.init(rand(1, [4, 8]), withOpts({ valid_param_lora_r: 3 }), shared), isUsage(/no shard pool for a 4×8/));
  await assert.rejects(m.init(rand(1, [6, 8]), withOpts({ valid_param_lora_r: 3 }, 7), shared), isUsage(/rank/));
});
