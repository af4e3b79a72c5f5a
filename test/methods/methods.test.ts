import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { getMethod, methodNames } from '../../src/methods/registry.js';
import { residual } from '../../src/methods/split.js';
import type { Removed } from '../../src/methods/types.js';
import { initAdapter } from '../../src/tools/init.js';
import { adapterParams } from '../../src/tools/params.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { readMethodAdapter, writeMethodAdapter } from '../../src/io/methodAdapter.js';
import { openModel } from '../../src/io/hf.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { orthonormalize, referenceProduct } from '../helpers/reference.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

// Tolerances (float32 weights, float64 references):
const RECON_TOL = 1e-6; // ‖residual + adapter part − W‖_F ≤ RECON_TOL·‖W‖_F: the init leaves the output unchanged
const SIGMA_TOL = 1e-5; // singular values against numpy's, relative to σ_max

const [M, N] = [48, 36]; // 48 = 8·6 and 36 = 6·6 for SoKA's Kronecker factors
const FIXTURE_BASE = fileURLToPath(new URL('../../../test/fixtures/peft-init/base', import.meta.url));

function weight(seed: number): Tensor<'f32'> {
  return tensor('f32', [M, N], rng(seed).fillNormal(new Float32Array(M * N)));
}

const f64 = (t: Tensor): Float64Array => Float64Array.from(t.data as ArrayLike<number>);

/** U·diag(s)·Vt in float64. */
function usv(u: Float64Array, s: ArrayLike<number>, vt: Float64Array, m: number, r: number, n: number): Float64Array {
  const us = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) us[i * r + k] = u[i * r + k] * s[k];
  return referenceProduct(us, m, r, vt, n);
}

/** The weight each method's adapter contributes at init, in float64, from its tensors alone. */
function adapterPart(method: string, t: Readonly<Record<string, Tensor<FloatDType>>>, M = 48, N = 36): Float64Array {
  const r = (k: string): number => t[k].shape[0];
  switch (method) {
    case 'svfit':
      return usv(f64(t.U), t.sigma.data, f64(t.Vt), M, r('sigma'), N);
    case 'sorsa':
      return usv(f64(t.U), t.S.data, f64(t.Vt), M, r('S'), N);
    case 'loldu':
      return usv(f64(t.L), Array.from(t.D.data, (d) => d * t.scale.data[0]), f64(t.U), M, r('D'), N);
    case 'salt': {
      const k = r('S');
      const sv = Array.from(t.S.data, (x, i) => t.alpha.data[i] * x + t.beta.data[i]);
      const lora = referenceProduct(f64(t.B), M, r('A'), f64(t.A), N);
      return usv(f64(t.U), sv, f64(t.Vt), M, k, N).map((x, i) => x + lora[i]);
    }
    case 'kasa':
      return usv(f64(t.B), t.diag.data, f64(t.A), M, r('diag'), N);
    case 'soka': {
      const [rank, m1, n1] = t.A.shape;
      const [, m2, n2] = t.B.shape;
      const out = new Float64Array(M * N);
      for (let q = 0; q < rank; q++)
        for (let i1 = 0; i1 < m1; i1++)
          for (let j1 = 0; j1 < n1; j1++)
            for (let i2 = 0; i2 < m2; i2++)
              for (let j2 = 0; j2 < n2; j2++) out[(i1 * m2 + i2) * N + j1 * n2 + j2] += t.A.data[q * m1 * n1 + i1 * n1 + j1] * t.B.data[q * m2 * n2 + i2 * n2 + j2];
      return out;
    }
    default: // LoRA pairs: lora, pissa, milora, olora, soma (scaling 1 here)
      return referenceProduct(f64(t.B), M, r('A'), f64(t.A), N);
  }
}

const svals = (w: Float32Array | Float64Array): number[] => pythonJson<number[]>(`import json,sys
w=np.array(json.load(sys.stdin),dtype=np.float64).reshape(${M},${N})
print(json.dumps(np.linalg.svd(w,compute_uv=False).tolist()))`, [], JSON.stringify([...w]));

// Methods with a format of their own are checked by the engine's harness (harness.ts) in their own files.
test('every weight-derived method but KaSA leaves the layer output unchanged at init: residual + adapter part = W to 1e-6', async () => {
  for (const name of methodNames().filter((n) => n !== 'kasa' && getMethod(n).format === undefined)) {
    const w = weight(7);
    const method = getMethod(name);
    const init = await method.init(w, { rank: 4, energy: name === 'soka' ? 0.5 : undefined });
    assert.equal(init.removed !== undefined, method.changesBase, name);
    const base = init.removed !== undefined ? await residual(w, init.removed) : w; // a method that leaves the base alone must start with a zero term
    const part = adapterPart(name, init.tensors);
    let err = 0;
    let norm = 0;
    for (let i = 0; i < w.data.length; i++) {
      err += (base.data[i] + part[i] - w.data[i]) ** 2;
      norm += w.data[i] ** 2;
    }
    assert.ok(Math.sqrt(err / norm) <= RECON_TOL, `${name}: ${Math.sqrt(err / norm)}`);
  }
});

test('KaSA: the base loses exactly its r minor singular components (numpy), and the task update is zero at init', async () => {
  const w = weight(8);
  const init = await getMethod('kasa').init(w, { rank: 5 });
  assert.ok(adapterPart('kasa', init.tensors).every((x) => x === 0));
  const want = svals(w.data).slice(0, N - 5);
  const got = svals((await residual(w, init.removed as Removed)).data);
  want.forEach((s, i) => assert.ok(Math.abs(got[i] - s) <= SIGMA_TOL * want[0], `σ_${i}: ${got[i]} vs ${s}`));
  got.slice(N - 5).forEach((s) => assert.ok(s <= SIGMA_TOL * want[0], `a truncated σ is ${s}`));
});

test('SVFit: rank by 99% energy (numpy), frozen U and V orthonormal, σ the top singular values; SORSA and SALT start on the top triplets', async () => {
  const sigma = Array.from({ length: N }, (_, i) => 0.7 ** i);
  const g = rng(3);
  // A weight with a decaying spectrum, so the 99% rank is small.
  const u = g.fillNormal(new Float64Array(M * N));
  const v = g.fillNormal(new Float64Array(N * N));
  const w = tensor('f32', [M, N], Float32Array.from(usv(orthonormalize(u, M, N), sigma, transpose(orthonormalize(v, N, N), N, N), M, N, N)));
  const ref = svals(w.data);
  const total = ref.reduce((s, x) => s + x * x, 0);
  let acc = 0;
  const want = ref.findIndex((x) => (acc += x * x) >= 0.99 * total) + 1;
  const sv = await getMethod('svfit').init(w, { rank: 30 });
  assert.equal(sv.rank, want);
  assert.equal(sv.tensors.sigma.data.length, want);
  ref.slice(0, want).forEach((s, i) => assert.ok(Math.abs(sv.tensors.sigma.data[i] - s) <= SIGMA_TOL * ref[0], `σ_${i}`));
  assert.equal((await getMethod('svfit').init(w, { rank: 3 })).rank, 3); // capped at --rank
  const so = await getMethod('sorsa').init(w, { rank: 4 });
  ref.slice(0, 4).forEach((s, i) => assert.ok(Math.abs(so.tensors.S.data[i] - s) <= SIGMA_TOL * ref[0]));
  const sa = await getMethod('salt').init(w, { rank: 4 });
  assert.deepEqual([...sa.tensors.alpha.data], [1, 1, 1, 1]);
  assert.deepEqual([...sa.tensors.beta.data], [0, 0, 0, 0]);
  assert.ok(sa.tensors.B.data.every((x) => x === 0));
  assert.ok(sa.tensors.A.data.every((x) => Math.abs(x) <= 1 / Math.sqrt(N)) && sa.tensors.A.data.some((x) => x !== 0));
});

function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

test('SoKA: factors 8×6 ⊗ 6×6; rank by energy and at the elbow of the rearranged spectrum (numpy)', async () => {
  const w = weight(11);
  // The Van Loan rearrangement and the two rank rules, transcribed in numpy.
  const ref = pythonJson<{ energy: number; elbow: number }>(`import json,sys
w=np.array(json.load(sys.stdin),dtype=np.float64).reshape(48,36)
R=w.reshape(8,6,6,6).transpose(0,2,1,3).reshape(48,36)
s=np.linalg.svd(R,compute_uv=False)
c=np.cumsum(s**2)/np.sum(s**2)
e=int(np.argmax(c>=0.9*(1-1e-12))+1)
x=np.arange(len(s))/(len(s)-1); y=(s-s[-1])/(s[0]-s[-1])
print(json.dumps({"energy":e,"elbow":int(np.argmax(1-x-y)+1)}))`, [], JSON.stringify([...w.data]));
  const byEnergy = await getMethod('soka').init(w, { rank: 36, energy: 0.9 });
  assert.equal(byEnergy.rank, ref.energy);
  assert.deepEqual(byEnergy.tensors.A.shape, [ref.energy, 8, 6]);
  assert.deepEqual(byEnergy.tensors.B.shape, [ref.energy, 6, 6]);
  assert.equal((await getMethod('soka').init(w, { rank: 36, elbow: true })).rank, ref.elbow);
});

test('SoMA starts exactly as MiLoRA; LoLDU trains r + 1 numbers per layer', async () => {
  const w = weight(12);
  const [a, b] = [await getMethod('soma').init(w, { rank: 3 }), await getMethod('milora').init(w, { rank: 3 })];
  assert.deepEqual(a.tensors.A.data, b.tensors.A.data);
  assert.deepEqual(a.tensors.B.data, b.tensors.B.data);
  assert.equal(getMethod('loldu').trainableParams(4096, 4096, 8), 9);
});

test('params: LoLDU and SVFit train r (+1) numbers per layer where LoRA trains r·(out + in); the CLI prints the table', async () => {
  const res = await adapterParams({ model: FIXTURE_BASE, rank: 4 });
  // The fixture's 7 linear layers: q 32×32, k 16×32, v 16×32, o 32×32, gate/up 64×32, down 32×64.
  const shapes = [[32, 32], [16, 32], [16, 32], [32, 32], [64, 32], [64, 32], [32, 64]];
  assert.equal(res.layers, 7);
  assert.equal(res.lora, shapes.reduce((s, [o, i]) => s + 4 * (o + i), 0));
  const byName = new Map(res.methods.map((m) => [m.method, m]));
  assert.equal(byName.get('loldu')?.trainable, 7 * 5);
  assert.equal(byName.get('svfit')?.trainable, 7 * 4);
  assert.equal(byName.get('pissa')?.trainable, res.lora);
  const r = cli(['params', '--model', FIXTURE_BASE, '--rank', '4', '--method', 'loldu', '--method', 'pissa']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /loldu\s+35\b/);
});

test('non-LoRA methods export and load back: residual model + the read-back adapter reproduce every weight to 1e-6', async (t) => {
  const root = await tempDir(t);
  const base = await openModel(FIXTURE_BASE);
  try {
    await assert.rejects(readMethodAdapter(join(FIXTURE_BASE, '..', 'pissa', 'adapter')), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && /not a lowrank method adapter/.test(e.message));
    for (const method of ['svfit', 'sorsa', 'salt', 'loldu', 'soka']) {
      const out = join(root, method);
      await initAdapter({ model: FIXTURE_BASE, method, rank: 4, targets: 'all-linear', out });
      const back = await readMethodAdapter(out);
      assert.equal(back.method, method);
      assert.equal(back.modules.size, 7);
      const residual = await openModel(`${out}-residual`);
      try {
        for (const [name, tensors] of back.modules) {
          const w = (await base.readAs(`${name}.weight`, 'f64')).data;
          const r = (await residual.readAs(`${name}.weight`, 'f64')).data;
          const [m, n] = base.entry(`${name}.weight`).shape;
          const decoded = Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, tensor('f64', v.shape, Float64Array.from(v.data as Float32Array))]));
          const part = adapterPart(method, decoded, m, n);
          let err = 0;
          let norm = 0;
          for (let i = 0; i < w.length; i++) {
            err += (r[i] + part[i] - w[i]) ** 2;
            norm += w[i] ** 2;
          }
          assert.ok(Math.sqrt(err / norm) <= RECON_TOL, `${method} ${name}: ${Math.sqrt(err / norm)}`);
        }
      } finally {
        await residual.close();
      }
    }
  } finally {
    await base.close();
  }
});

test('a non-LoRA method (SVFit) writes peft_type LOWRANK with its keys, per-layer ranks and the residual model', async (t) => {
  const root = await tempDir(t);
  const out = join(root, 'svfit');
  const res = await initAdapter({ model: FIXTURE_BASE, method: 'svfit', rank: 8, energy: 0.5, targets: ['q_proj', 'down_proj'], out });
  const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'LOWRANK');
  assert.equal(config.lowrank_method, 'svfit');
  assert.deepEqual(config.lowrank_keys, { U: 'svfit_U', sigma: 'svfit_sigma', Vt: 'svfit_Vt' });
  const f = await openSafetensors(join(out, 'adapter_model.safetensors'));
  try {
    for (const l of res.layers) {
      assert.deepEqual([...f.entry(`base_model.model.${l.name}.svfit_sigma`).shape], [l.rank]);
      assert.deepEqual([...f.entry(`base_model.model.${l.name}.svfit_U`).shape], [l.shape[0], l.rank]);
      assert.ok(l.rank <= 8);
      if (l.rank !== 8) assert.equal((config.rank_pattern as Record<string, number>)[l.name], l.rank);
    }
    assert.equal(f.metadata?.lowrank_init, 'svfit');
  } finally {
    await f.close();
  }
  const m = await openModel(`${out}-residual`);
  assert.equal(m.tensors.length, 12);
  await m.close();
});

test('a method adapter with 15,000 keys and 15,000 tensors reads at once: each tensor finds its key by its dotted suffixes, the first listed key winning', { timeout: 60_000 }, async (t) => {
  const dir = join(await tempDir(t), 'many');
  const keys = Object.fromEntries(Array.from({ length: 15_000 }, (_, i) => [`role${i}`, `k${i}.weight`]));
  const tensors = Array.from({ length: 15_000 }, (_, i) => ({ module: 'model.layers.0.proj', key: `k${i}.weight`, tensor: tensor('f32', [1], Float32Array.of(i)) }));
  await writeMethodAdapter(dir, { lowrank_method: 'svfit', lowrank_keys: { ...keys, short: 'weight' } }, tensors);
  const back = await readMethodAdapter(dir).catch((e: unknown) => e);
  // 'weight' (listed last) is a suffix of every name too, but each name's own key comes first: then every module lacks 'short'.
  assert.ok(back instanceof LowrankError && /module model\.layers\.0\.proj has no short tensor/.test(back.message), String(back));
  await writeMethodAdapter(dir, { lowrank_method: 'svfit', lowrank_keys: keys }, tensors, { overwrite: true });
  const ok = await readMethodAdapter(dir);
  assert.equal(ok.modules.size, 1);
  const m = ok.modules.get('model.layers.0.proj') ?? {};
  assert.equal(Object.keys(m).length, 15_000);
  assert.equal(m.role14999?.data[0], 14_999);
});
