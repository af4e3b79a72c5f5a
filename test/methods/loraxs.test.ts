/** LoRA-XS: the engine's checks (harness.ts), its frozen bases against numpy's SVD, r² parameters, its LOWRANK keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkMethod, rand } from './harness.js';
import type { Tensor } from '../../src/core/tensor.js';
import { matmul } from '../../src/linalg/matmul.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { getMethod } from '../../src/methods/registry.js';
import { writeMethodFolder } from '../../src/methods/adapterFile.js';
import { NO_SHARED } from '../../src/methods/shared.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';

const SVD_TOL = 1e-10; // products of singular triplets, relative to their largest entry (float64)
const ORTHO_TOL = 1e-12; // BᵀB = I

const m = getMethod('loraxs');
const opts = { rank: 3, alpha: 6, seed: 4 };

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
const maxAbs = (a: ArrayLike<number>): number => Math.max(...Array.from(a, Math.abs));

test('loraxs: unchanged at start, exact gradients, merged = unmerged, save/load, r² parameters per layer', async (t) => {
  await checkMethod(t, 'loraxs', { opts, startsUnchanged: true });
});

test('loraxs: B = U_r and A = Σ_r·V_rᵀ of numpy\'s SVD (B·A = U_r·Σ_r·V_rᵀ, BᵀB = I, A·Aᵀ = Σ_r²), R = 0', async () => {
  const [out, inF, r] = [7, 9, 3];
  const w = rand(11, [out, inF]);
  const { tensors } = await m.init(w, opts);
  const { A, B, R } = tensors as Record<'A' | 'B' | 'R', Tensor<'f64'>>;
  assert.deepEqual([A.shape, B.shape, R.shape], [[r, inF], [out, r], [r, r]]);
  assert.ok(R.data.every((x) => x === 0), 'R starts at 0');
  const ref = pythonJson<{ usv: number[]; s: number[] }>(`import json,sys
w=np.array(json.load(sys.stdin),dtype=np.float64).reshape(${out},${inF})
U,S,Vt=np.linalg.svd(w,full_matrices=False)
print(json.dumps({'usv':((U[:,:${r}]*S[:${r}])@Vt[:${r}]).ravel().tolist(),'s':S[:${r}].tolist()}))`, [], JSON.stringify([...w.data]));
  const ba = await matmul(B, A);
  assert.ok(maxDiff(ba.data, ref.usv) <= SVD_TOL * maxAbs(ref.usv), `B·A vs U_r·Σ_r·V_rᵀ: ${maxDiff(ba.data, ref.usv)}`);
  const btb = await matmul(B, B, { transA: true });
  const eye = Array.from({ length: r * r }, (_, i) => (i % (r + 1) === 0 ? 1 : 0));
  assert.ok(maxDiff(btb.data, eye) <= ORTHO_TOL, `BᵀB = I: ${maxDiff(btb.data, eye)}`);
  const aat = await matmul(A, A, { transB: true });
  const s2 = Array.from({ length: r * r }, (_, i) => (i % (r + 1) === 0 ? ref.s[i / (r + 1)] ** 2 : 0));
  assert.ok(maxDiff(aat.data, s2) <= SVD_TOL * maxAbs(s2), `A·Aᵀ = Σ_r²: ${maxDiff(aat.data, s2)}`);
});

test('loraxs: with niter the bases come from a randomized SVD (exact on a rank-r weight)', async () => {
  const [out, inF, r] = [12, 10, 3];
  const w = await matmul(rand(21, [out, r]), rand(22, [r, inF]));
  const { tensors } = await m.init(w, { ...opts, niter: 2 });
  const ba = await matmul(tensors.B as Tensor<'f64'>, tensors.A as Tensor<'f64'>);
  assert.ok(maxDiff(ba.data, w.data) <= SVD_TOL * maxAbs(w.data), `B·A vs W: ${maxDiff(ba.data, w.data)}`);
});

test('loraxs: r² trainable parameters whatever the shape, r·(out + in) frozen; ΔW = (alpha/r)·B·R·A', async () => {
  for (const [out, inF] of [[4096, 4096], [11008, 4096], [6, 8]] as const) {
    assert.equal(m.trainableParams(out, inF, 16), 256);
    assert.equal(m.trainableParams(out, inF, 2), 4);
    assert.equal(m.frozenParams?.(out, inF, 16), 16 * (out + inF));
  }
  const A = rand(31, [2, 3]);
  const B = rand(32, [4, 2]);
  const R = rand(33, [2, 2]);
  const d = await m.delta!({ A, B, R }, NO_SHARED, { rank: 2, alpha: 6 }, [4, 3]);
  const dense = await toDense(d);
  // Loops, not matmul: ΔW_ij = 3·Σ_kl B_ik·R_kl·A_lj.
  const want = new Float64Array(12);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) for (let l = 0; l < 2; l++) want[i * 3 + j] += 3 * B.data[i * 2 + k] * R.data[k * 2 + l] * A.data[l * 3 + j];
  assert.ok(maxDiff(dense.data, want) <= SVD_TOL * maxAbs(want), `ΔW: ${maxDiff(dense.data, want)}`);
});

test('loraxs: a rank above min(out, in) is a usage error naming the rank', async () => {
  await assert.rejects(m.init(rand(1, [4, 6]), { rank: 5 }), (e: Error & { code?: string }) => e.code === 'E_USAGE' && /rank/.test(e.message) && /4×6/.test(e.message));
});

test('loraxs: saved as LOWRANK with loraxs_A [r, in], loraxs_B [out, r], loraxs_R [r, r] per module', async (t) => {
  const layers = [{ name: 'model.layers.0.q_proj', shape: [6, 8] as [number, number] }];
  const init = await m.init(rand(41, [6, 8]), opts);
  const dir = join(await tempDir(t), 'a');
  await writeMethodFolder(dir, { method: m, opts, layers, modules: new Map([[layers[0].name, init.tensors]]), shared: NO_SHARED, fanInFanOut: false });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'LOWRANK');
  assert.equal(config.lowrank_method, 'loraxs');
  assert.equal(config.lora_alpha, 6);
  const f = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  try {
    const keys = Object.fromEntries(f.entries.map((e) => [e.name, e.shape]));
    const p = 'base_model.model.model.layers.0.q_proj.';
    assert.deepEqual(keys, { [`${p}loraxs_A`]: [3, 8], [`${p}loraxs_B`]: [6, 3], [`${p}loraxs_R`]: [3, 3] });
  } finally {
    await f.close();
  }
});
