/**
 * Uni-LoRA: the engine's checks (harness.ts), and against independent float64 loops: the balanced
 * projection (each θ index used ⌊D/d⌋ or ⌈D/d⌉ times, chunks in layer order, P with orthonormal
 * columns), ΔW = B·A from θ, the indices, the scales; PEFT's save_indices layout written and read
 * back with the same indices; seeding, parameter counts and the usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkMethod, rand } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';
import { readMethodFolder, writeMethodFolder } from '../../src/methods/adapterFile.js';
import { LowrankError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/tensor.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../../src/io/peft.js';
import type { InitOptions, LayerShape, Shared } from '../../src/methods/types.js';
import { initAdapter } from '../../src/tools/init.js';
import { tempDir } from '../helpers/tmp.js';

const m = getMethod('unilora');
const opts: InitOptions = { rank: 2, seed: 4, options: { theta_d_length: 7, proj_seed: 5, init_theta_d_bound: 0.3 } };
const ORTHO = 1e-12; // |PᵀP − I| on the used columns, float64
const EXACT = 1e-12; // ΔW against the loops, relative to its largest entry

const FIXTURE_BASE = fileURLToPath(new URL('../../../test/fixtures/peft-init/base', import.meta.url));

const layersOf = (shapes: readonly (readonly [number, number])[]): LayerShape[] => shapes.map((s, i) => ({ name: `model.layers.${i}.proj`, shape: [s[0], s[1]] }));
const usage = (what: RegExp) => (e: unknown): boolean => e instanceof LowrankError && e.code === 'E_USAGE' && what.test(e.message);

async function prepare(layers: readonly LayerShape[], o: InitOptions): Promise<Shared<'f64'>> {
  assert.ok(m.prepare !== undefined, 'unilora has shared state');
  return m.prepare(layers, o, 'f64');
}

/** prepare, then every layer's init in order; the layers' tensors. */
async function build(layers: readonly LayerShape[], o: InitOptions): Promise<{ shared: Shared<'f64'>; tensors: Record<string, Tensor<'f64'>>[] }> {
  const shared = await prepare(layers, o);
  const tensors: Record<string, Tensor<'f64'>>[] = [];
  for (const [i, l] of layers.entries()) tensors.push((await m.init(rand(100 + i, l.shape), { ...o, seed: (o.seed ?? 0) + i, layer: { name: l.name, index: i } }, shared)).tensors as Record<string, Tensor<'f64'>>);
  return { shared, tensors };
}

test('unilora: exact gradients of x and of the shared θ_d, merged = unmerged, save/load, 0 per-layer + d shared parameters', async (t) => {
  await checkMethod(t, 'unilora', { opts, startsUnchanged: false });
});

test('unilora: every θ index is used ⌊D/d⌋ or ⌈D/d⌉ times, chunks in layer order (A then B), scales 1/√count, PᵀP = I on the used columns', async () => {
  const shapes: readonly (readonly [number, number])[] = [[6, 8], [6, 8], [4, 8]];
  const D = 2 * (6 + 8) * 2 + 2 * (4 + 8); // 80
  for (const d of [1, 7, 8, 100]) {
    const o = { ...opts, options: { ...opts.options, theta_d_length: d } };
    const { shared, tensors } = await build(layersOf(shapes), o);
    const idx: number[] = [];
    const s: number[] = [];
    for (const x of tensors) {
      assert.deepEqual(x.indices_A.shape, [2, 8]);
      assert.equal(x.indices_B.shape[1], 2);
      idx.push(...x.indices_A.data, ...x.indices_B.data);
      s.push(...x.scales_A.data, ...x.scales_B.data);
    }
    assert.equal(idx.length, D);
    assert.deepEqual(idx, Array.from(shared.tensors.index.data), `d=${d}: the layers' chunks, in order, are the projection`);
    const counts = new Array<number>(d).fill(0);
    for (const j of idx) {
      assert.ok(Number.isInteger(j) && j >= 0 && j < d, `d=${d}: index ${j}`);
      counts[j]++;
    }
    for (const [j, c] of counts.entries()) assert.ok(c === Math.floor(D / d) || c === Math.ceil(D / d), `d=${d}: θ[${j}] used ${c} times`);
    for (const [t, j] of idx.entries()) assert.equal(s[t], 1 / Math.sqrt(counts[j]), `d=${d}: scale of entry ${t}`);
    // P [D, d]: row t has s_t in column idx_t; G = PᵀP by plain sums over the rows.
    const P = idx.map((j, t) => Array.from({ length: d }, (_, k) => (k === j ? s[t] : 0)));
    let worst = 0;
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        let g = 0;
        for (let t = 0; t < D; t++) g += P[t][a] * P[t][b];
        const want = a === b && counts[a] > 0 ? 1 : 0;
        worst = Math.max(worst, Math.abs(g - want));
      }
    }
    assert.ok(worst <= ORTHO, `d=${d}: |PᵀP − I| = ${worst}`);
    if (d === 100) assert.equal(counts.filter((c) => c === 0).length, 20, 'D < d: 80 distinct indices, 20 unused');
  }
});

test("unilora: PEFT's tiny-Llama example (4 layers 64×64, r=4, d=256): D = 2048, every θ entry used 8 times, scale 1/√8", async () => {
  const layers = layersOf([[64, 64], [64, 64], [64, 64], [64, 64]]);
  const { shared, tensors } = await build(layers, { rank: 4 });
  assert.equal(shared.tensors.index.data.length, 2048);
  assert.deepEqual(Array.from(shared.tensors.scale.data), new Array<number>(256).fill(1 / Math.sqrt(8)));
  for (const x of tensors) for (const v of x.scales_B.data) assert.equal(v, 1 / Math.sqrt(8));
  assert.equal(shared.tensors.theta_d.data.length, 256);
  for (const v of shared.tensors.theta_d.data) assert.ok(Math.abs(v) <= 0.02, `θ ${v} within the default bound 0.02`);
});

test('unilora: ΔW = B·A with A[k,i] = θ[idxA]/√count, B[o,k] = θ[idxB]/√count (plain float64 loops); not zero at start', async () => {
  const layers = layersOf([[6, 8], [6, 8], [4, 8]]);
  const { shared, tensors } = await build(layers, opts);
  const theta = shared.tensors.theta_d.data;
  const counts = new Map<number, number>();
  for (const x of tensors) for (const j of [...x.indices_A.data, ...x.indices_B.data]) counts.set(j, (counts.get(j) ?? 0) + 1);
  const entry = (j: number): number => theta[j] / Math.sqrt(counts.get(j) ?? NaN);
  const r = 2;
  for (const [n, l] of layers.entries()) {
    const [out, inF] = l.shape;
    const x = tensors[n];
    const got = await toDense(await m.delta!(x, shared, opts, l.shape));
    let scale = 0;
    let worst = 0;
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inF; i++) {
        let want = 0;
        for (let k = 0; k < r; k++) want += entry(x.indices_B.data[o * r + k]) * entry(x.indices_A.data[k * inF + i]);
        scale = Math.max(scale, Math.abs(want));
        worst = Math.max(worst, Math.abs(got.data[o * inF + i] - want));
      }
    }
    assert.ok(scale > 0, `layer ${n}: ΔW is not zero at start`);
    assert.ok(worst <= EXACT * scale, `layer ${n}: ΔW off by ${worst}`);
  }
});

test("unilora: saved in PEFT's save_indices layout (I64 indices, F32 scales, base_model.unilora_theta_d) and read back with the same indices", async (t) => {
  const layers = layersOf([[6, 8], [6, 8], [4, 8]]);
  const { shared, tensors } = await build(layers, opts);
  const dir = join(await tempDir(t), 'adapter');
  const modules = new Map(layers.map((l, i) => [l.name, tensors[i]]));
  await writeMethodFolder(dir, { method: m, opts, layers, modules, shared, fanInFanOut: false });

  const config = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'UNILORA');
  assert.equal(config.save_indices, true);
  assert.equal(config.r, 2);
  assert.equal(config.theta_d_length, 7);
  assert.equal(config.proj_seed, 5);
  assert.equal(config.init_theta_d_bound, 0.3);
  assert.equal(config.lowrank_method, undefined);

  const file = await openSafetensors(join(dir, ADAPTER_WEIGHTS));
  try {
    const entries = new Map(file.entries.map((e) => [e.name, e]));
    assert.equal(entries.size, 1 + 4 * layers.length);
    assert.equal(entries.get('base_model.unilora_theta_d')?.dtype, 'f32');
    assert.deepEqual(entries.get('base_model.unilora_theta_d')?.shape, [7]);
    for (const l of layers) {
      const key = (k: string): string => `base_model.model.${l.name}.${k}`;
      assert.equal(entries.get(key('unilora_indices_A'))?.dtype, 'i64');
      assert.equal(entries.get(key('unilora_indices_B'))?.dtype, 'i64');
      assert.deepEqual(entries.get(key('unilora_indices_A'))?.shape, [2, 8]);
      assert.deepEqual(entries.get(key('unilora_indices_B'))?.shape, [l.shape[0], 2]);
      assert.equal(entries.get(key('unilora_scales_A'))?.dtype, 'f32');
      assert.equal(entries.get(key('unilora_scales_B'))?.dtype, 'f32');
    }
  } finally {
    await file.close();
  }

  const back = await readMethodFolder(dir, 'f64');
  assert.equal(back.method.name, 'unilora');
  for (const [i, l] of layers.entries()) {
    const got = back.modules.get(l.name);
    assert.ok(got !== undefined, `module ${l.name} read back`);
    for (const role of ['indices_A', 'indices_B'] as const) assert.deepEqual(Array.from(got[role].data), Array.from(tensors[i][role].data), `${l.name} ${role}`);
    for (const role of ['scales_A', 'scales_B'] as const) assert.deepEqual(Array.from(got[role].data), Array.from(tensors[i][role].data, Math.fround), `${l.name} ${role}`);
  }
  assert.deepEqual(Array.from(back.shared.tensors.theta_d.data), Array.from(shared.tensors.theta_d.data, Math.fround));

  // An adapter saved without its indices cannot be read (its projection is numpy's stream).
  await writeFile(join(dir, ADAPTER_CONFIG), JSON.stringify({ ...config, save_indices: false }));
  await assert.rejects(readMethodFolder(dir, 'f64'), (e: unknown) => e instanceof LowrankError && e.code === 'E_UNSUPPORTED' && /save_indices/.test(e.message));
});

test('unilora: `lowrank init` (one seed for every layer) gives each of the 7 fixture layers its own chunk: the saved indices are balanced over the model', async (t) => {
  const out = join(await tempDir(t), 'adapter');
  await initAdapter({ model: FIXTURE_BASE, method: 'unilora', rank: 4, targets: 'all-linear', out, options: { theta_d_length: 64 } });
  const back = await readMethodFolder(out, 'f64');
  assert.equal(back.modules.size, 7);
  // q 32×32, k 16×32, v 16×32, o 32×32, gate/up 64×32, down 32×64: D = 4·512 = 2048 = 32·64.
  const counts = new Array<number>(64).fill(0);
  for (const x of back.modules.values()) for (const j of [...x.indices_A.data, ...x.indices_B.data]) counts[j]++;
  assert.deepEqual(counts, new Array<number>(64).fill(32));
});

test('unilora: θ_d from the seed, the projection from proj_seed; 0 trainable per layer, d shared, 2·r·(in + out) frozen', async () => {
  const layers = layersOf([[6, 8], [4, 8]]);
  const [a, b, c, e] = await Promise.all([
    prepare(layers, opts),
    prepare(layers, opts),
    prepare(layers, { ...opts, seed: 5 }),
    prepare(layers, { ...opts, options: { ...opts.options, proj_seed: 6 } }),
  ]);
  assert.deepEqual(a.tensors.theta_d.data, b.tensors.theta_d.data);
  assert.deepEqual(a.tensors.index.data, b.tensors.index.data);
  assert.notDeepEqual(a.tensors.theta_d.data, c.tensors.theta_d.data);
  assert.deepEqual(a.tensors.index.data, c.tensors.index.data);
  assert.notDeepEqual(a.tensors.index.data, e.tensors.index.data);
  assert.deepEqual(a.tensors.theta_d.data, e.tensors.theta_d.data);
  for (const v of a.tensors.theta_d.data) assert.ok(Math.abs(v) <= 0.3 && v !== 0);
  assert.deepEqual(Object.keys(a.grads), ['theta_d']);
  assert.equal(m.trainableParams(4096, 4096, 4, opts), 0);
  assert.equal(m.sharedParams?.(layers, opts), 7);
  assert.equal(m.sharedParams?.(layers, { rank: 4 }), 256);
  assert.equal(m.frozenParams?.(6, 8, 2, opts), 2 * 2 * (6 + 8));
});

test('unilora: bad options, ranks, shapes and saved indices are errors naming them', async () => {
  const layers = layersOf([[6, 8], [4, 8]]);
  await assert.rejects(prepare(layers, { ...opts, options: { theta_d_length: 0 } }), usage(/theta_d_length/));
  await assert.rejects(prepare(layers, { ...opts, options: { init_theta_d_bound: 0 } }), usage(/init_theta_d_bound/));
  await assert.rejects(prepare(layers, { ...opts, options: { proj_seed: -1 } }), usage(/proj_seed/));
  await assert.rejects(prepare(layers, { ...opts, rank: 0 }), usage(/rank/));
  const shared = await prepare(layers, opts);
  const at = (index: number): typeof opts & { layer: { name: string; index: number } } => ({ ...opts, layer: { name: layers[Math.min(index, 1)].name, index } });
  await assert.rejects(m.init(rand(1, [5, 3]), at(0), shared), usage(/5×3/));
  await assert.rejects(m.init(rand(1, [6, 8]), { ...at(0), rank: 3 }, shared), usage(/rank 3/));
  await m.init(rand(1, [6, 8]), at(0), shared);
  await assert.rejects(m.init(rand(2, [6, 8]), at(1), shared), usage(/layer 1 \(6×8\)/));
  await assert.rejects(m.init(rand(2, [6, 8]), at(2), shared), usage(/layer 2 \(6×8\) is not one of the 2 layers/));
  await assert.rejects(m.init(rand(2, [6, 8]), opts, shared), usage(/layer undefined/));
  const x = (await m.init(rand(3, [4, 8]), at(1), shared)).tensors as Record<string, Tensor<'f64'>>;
  x.indices_A.data[0] = 7;
  await assert.rejects(m.delta!(x, shared, opts, [4, 8]), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && /indices_A holds 7/.test(e.message));
  await assert.rejects(m.delta!(x, shared, opts, [5, 8]), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE' && /indices_B/.test(e.message));
});
