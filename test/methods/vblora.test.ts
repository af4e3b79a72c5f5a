/**
 * VB-LoRA: the engine's checks (harness.ts); A and B against a numpy transcription of PEFT's
 * `_get_low_rank_matrix` and its reshapes; the top-k gradient pattern; the PEFT file layout; the
 * seeding; and the shapes and options it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { isLowrankError } from '../../src/core/errors.js';
import { matmul } from '../../src/linalg/matmul.js';
import { getMethod } from '../../src/methods/registry.js';
import { readMethodFolder, writeMethodFolder } from '../../src/methods/adapterFile.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import type { InitOptions, LayerShape } from '../../src/methods/types.js';
import { checkMethod, rand } from './harness.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';

const m = getMethod('vblora');
// Logits drawn with std 1 (and moved by the harness's N(0, 0.3²)) keep the k-th and (k+1)-th
// largest of each row far apart next to the ±1e-5 finite-difference step, so no selection flips.
const small = { num_vectors: 6, vector_length: 2, topk: 2, init_logits_std: 1, init_vector_bank_bound: 0.5 };
const opts: InitOptions = { rank: 2, seed: 3, options: small };
const layers: LayerShape[] = [{ name: 'model.layers.0.proj', shape: [6, 8] }];

function usageError(what: RegExp): (e: unknown) => boolean {
  return (e) => isLowrankError(e) && e.code === 'E_USAGE' && what.test(e.message);
}

test('vblora: exact gradients (x, logits, the shared bank summed over layers), merged = unmerged, save/load, parameter counts', async (t) => {
  await checkMethod(t, 'vblora', { opts, startsUnchanged: false });
});

test('vblora: top-3 of 5, L = 2, r = 3 on a 6×8 weight — harness again with more than two vectors mixed', async (t) => {
  await checkMethod(t, 'vblora', { opts: { rank: 3, seed: 11, options: { ...small, num_vectors: 5, topk: 3 } }, startsUnchanged: false });
});

test('vblora: A, B and ΔW equal a numpy transcription of PEFT (topk, softmax over the top-k, A = sub.reshape(r, -1), B = sub.transpose(1, 2).reshape(-1, r)) to 1e-12, ties to the lower index', async () => {
  const [r, out, inF, N, L, K] = [3, 6, 8, 7, 2, 3];
  const o: InitOptions = { rank: r, options: { num_vectors: N, vector_length: L, topk: K } };
  const zA = rand(1, [r, inF / L, N]);
  const zB = rand(2, [out / L, r, N]);
  const bank = rand(3, [N, L]);
  zA.data.fill(0.3, 0, N); // a tied row: the top-k takes the lower indices (numpy's stable argsort does too)
  const d = await m.delta!({ logits_A: zA, logits_B: zB }, { tensors: { bank }, grads: {} }, o, [out, inF]);
  const want = pythonJson<{ A: number[][]; B: number[][]; dW: number[][] }>(
    `import json, sys
d = json.load(sys.stdin)
r, N, L, K = d['r'], d['N'], d['L'], d['K']
bank = np.array(d['bank']).reshape(N, L)
def sub(z):
    idx = np.argsort(-z, axis=-1, kind='stable')[..., :K]
    top = np.take_along_axis(z, idx, -1)
    e = np.exp(top - top.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    return (w[..., None] * bank[idx]).sum(-2)
A = sub(np.array(d['zA']).reshape(d['shapeA'])).reshape(r, -1)
B = sub(np.array(d['zB']).reshape(d['shapeB'])).transpose(0, 2, 1).reshape(-1, r)
print(json.dumps({'A': A.tolist(), 'B': B.tolist(), 'dW': (B @ A).tolist()}))`,
    [],
    JSON.stringify({ r, N, L, K, bank: Array.from(bank.data), zA: Array.from(zA.data), zB: Array.from(zB.data), shapeA: zA.shape, shapeB: zB.shape }),
  );
  const close = (got: Tensor<'f64'>, rows: number[][], what: string): void => {
    const flat = rows.flat();
    assert.equal(got.data.length, flat.length, `${what} size`);
    const scale = Math.max(...flat.map(Math.abs));
    const worst = flat.reduce((mx, v, i) => Math.max(mx, Math.abs(v - got.data[i])), 0);
    assert.ok(worst <= 1e-12 * scale, `${what}: max difference ${worst} > 1e-12·${scale}`);
  };
  assert.equal(d.scale, 1);
  assert.deepEqual(d.right.shape, [r, inF]);
  assert.deepEqual(d.left.shape, [out, r]);
  close(d.right, want.A, 'A');
  close(d.left, want.B, 'B');
  close(await matmul(d.left, d.right), want.dW, 'ΔW = B·A');
});

test('vblora: backward gives exactly 0 to the logits outside each row\'s top-k, and K nonzero entries per row inside', async () => {
  const shared = await m.prepare!(layers, opts, 'f64');
  const w = rand(7, [6, 8]);
  const init = await m.init(w, opts, shared);
  const term = m.trainTerm!(w, init, opts, shared);
  await term.backward(rand(8, [4, 8]), rand(9, [4, 6]));
  const { num_vectors: N, topk: K } = small;
  for (const role of ['logits_A', 'logits_B']) {
    const z = term.params[role].data;
    const g = term.grads[role].data;
    for (let row = 0; row < z.length / N; row++) {
      const order = Array.from({ length: N }, (_, j) => j).sort((a, b) => z[row * N + b] - z[row * N + a]);
      for (const [rank, j] of order.entries()) {
        const gj = g[row * N + j];
        if (rank < K) assert.notEqual(gj, 0, `${role} row ${row}: selected logit ${j} has a gradient`);
        else assert.equal(gj, 0, `${role} row ${row}: logit ${j} outside the top-${K} gets no gradient`);
      }
    }
  }
  assert.ok(shared.grads.bank.data.some((v) => v !== 0), 'the bank gets a gradient');
});

test('vblora: saved as PEFT VBLORA — full logits [r, in/L, N] and [out/L, r, N], base_model.vblora_vector_bank [N, L], save_only_topk_weights false', async (t) => {
  const shared = await m.prepare!(layers, opts, 'f64');
  const init = await m.init(rand(5, [6, 8]), opts, shared);
  const dir = join(await tempDir(t), 'adapter');
  await writeMethodFolder(dir, { method: m, opts, layers, modules: new Map([[layers[0].name, init.tensors]]), shared, fanInFanOut: false });
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'VBLORA');
  assert.equal(config.save_only_topk_weights, false);
  assert.equal(config.r, 2);
  assert.deepEqual([config.num_vectors, config.vector_length, config.topk, config.init_logits_std, config.init_vector_bank_bound], [6, 2, 2, 1, 0.5]);
  const file = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  try {
    assert.deepEqual(
      file.entries.map((e) => [e.name, e.dtype, ...e.shape]).sort(),
      [
        ['base_model.model.model.layers.0.proj.vblora_logits_A', 'f32', 2, 4, 6],
        ['base_model.model.model.layers.0.proj.vblora_logits_B', 'f32', 3, 2, 6],
        ['base_model.vblora_vector_bank', 'f32', 6, 2],
      ],
    );
  } finally {
    await file.close();
  }
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...config, save_only_topk_weights: true }));
  await assert.rejects(readMethodFolder(dir, 'f64'), (e) => isLowrankError(e) && e.code === 'E_UNSUPPORTED' && /save_only_topk_weights/.test(e.message));
});

test('vblora: seeded bank in ±init_vector_bank_bound and logits N(0, init_logits_std²) at PEFT\'s defaults; counts by the formula', async () => {
  const defaults: InitOptions = { rank: 4, seed: 1 };
  const big: LayerShape[] = [{ name: 'q', shape: [256, 512] }];
  const [a, b, c] = await Promise.all([m.prepare!(big, defaults, 'f64'), m.prepare!(big, defaults, 'f64'), m.prepare!(big, { ...defaults, seed: 2 }, 'f64')]);
  assert.deepEqual(a.tensors.bank.shape, [256, 256]);
  assert.deepEqual(Object.keys(a.grads), ['bank']);
  assert.deepEqual(a.tensors.bank.data, b.tensors.bank.data);
  assert.notDeepEqual(a.tensors.bank.data, c.tensors.bank.data);
  const bank = a.tensors.bank.data;
  assert.ok(bank.every((v) => Math.abs(v) <= 0.02) && Math.max(...bank) > 0.019 && Math.min(...bank) < -0.019, 'bank uniform in ±0.02');

  const init = await m.init(tensor('f64', [256, 512]), defaults, a);
  const zA = init.tensors.logits_A;
  const zB = init.tensors.logits_B;
  assert.deepEqual(zA.shape, [4, 2, 256]);
  assert.deepEqual(zB.shape, [1, 4, 256]);
  const all = [...zA.data, ...zB.data];
  const std = Math.sqrt(all.reduce((s, v) => s + v * v, 0) / all.length);
  assert.ok(Math.abs(std - 0.1) < 0.01, `logits std ${std} ≈ 0.1`);
  const again = await m.init(tensor('f64', [256, 512]), defaults, a);
  assert.deepEqual(again.tensors.logits_A.data, zA.data);
  assert.notDeepEqual((await m.init(tensor('f64', [256, 512]), { ...defaults, seed: 2 }, a)).tensors.logits_A.data, zA.data);
  const d = await m.delta!(init.tensors, a, defaults, [256, 512]);
  assert.ok(d.left.data.some((v) => v !== 0) && d.right.data.some((v) => v !== 0), 'ΔW ≠ 0 at the start');

  assert.equal(m.trainableParams(256, 512, 4, defaults), zA.data.length + zB.data.length);
  assert.equal(m.trainableParams(4096, 4096, 4, defaults), 4 * 16 * 256 + 16 * 4 * 256);
  assert.equal(m.trainableParams(64, 64, 4, { rank: 4, options: { vector_length: 16 } }), 2 * 4 * 4 * 256);
  assert.equal(m.sharedParams!(big, defaults), 256 * 256);
});

test('vblora: in or out not a multiple of vector_length, topk > num_vectors and out-of-range options are E_USAGE', async () => {
  await assert.rejects(m.init(rand(1, [6, 5]), opts), usageError(/6×5.*vector_length 2/));
  await assert.rejects(m.init(rand(1, [5, 8]), opts), usageError(/5×8.*vector_length 2/));
  await assert.rejects(m.init(rand(1, [64, 64]), { rank: 4 }), usageError(/64×64.*vector_length 256/));
  await assert.rejects(m.prepare!([{ name: 'model.mlp.down', shape: [6, 9] }], opts, 'f64'), usageError(/model\.mlp\.down is 6×9.*vector_length 2/));
  await assert.rejects(m.init(rand(1, [6, 8]), { ...opts, options: { ...small, topk: 7 } }), usageError(/topk must be ≤ num_vectors \(6\), got 7/));
  await assert.rejects(m.init(rand(1, [6, 8]), { ...opts, options: { ...small, topk: 0 } }), usageError(/topk/));
  await assert.rejects(m.init(rand(1, [6, 8]), { ...opts, options: { ...small, init_logits_std: -1 } }), usageError(/init_logits_std/));
  await assert.rejects(m.init(rand(1, [6, 8]), { ...opts, rank: 0 }), usageError(/rank/));
});
