/**
 * Finite-difference gradient checks of every nn module in float64: for a loss L = Σ out ⊙ R with a
 * fixed random R (so dout = R), each analytic gradient is compared with the central difference
 * (L(θ + h) − L(θ − h)) / 2h at every entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { linearBackward, linearForward, zerosLike } from '../../src/nn/linear.js';
import { embeddingBackward, embeddingForward } from '../../src/nn/embedding.js';
import { layerNormBackward, layerNormForward, rmsNormBackward, rmsNormForward } from '../../src/nn/norm.js';
import { ropeApply, ropeTables } from '../../src/nn/rope.js';
import { attentionBackward, attentionForward } from '../../src/nn/attention.js';
import { geluBackward, geluForward, swigluBackward, swigluForward } from '../../src/nn/activations.js';
import { crossEntropy, IGNORE } from '../../src/nn/loss.js';
import { matmul } from '../../src/linalg/matmul.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { doraTerm } from '../../src/methods/dora.js';
import { rowNorms } from '../../src/linalg/lowrank.js';
import { getMethod } from '../../src/methods/registry.js';

// Central differences with step H in float64 are accurate to ~H² + ε/H ≈ 1e-10 here: every
// analytic gradient must match to TOL relative to the largest gradient entry.
const H = 1e-5;
const TOL = 1e-7;

let seed = 100;
function rand(shape: number[], std = 1): Tensor<'f64'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor('f64', shape, rng(seed++).fillNormal(new Float64Array(n), 0, std));
}

const dot = (a: Tensor<'f64'>, b: Tensor<'f64'>): number => a.data.reduce((s, x, i) => s + x * b.data[i], 0);

const check = (name: string, param: Tensor<'f64'>, analytic: Tensor<'f64'>, loss: () => Promise<number> | number): Promise<void> => checkGradient(name, param, analytic, loss, { h: H, tol: TOL });

test('linear (with bias): dx, dW, db', async () => {
  const x = rand([5, 4]);
  const p = { weight: rand([3, 4]), bias: rand([3]) };
  const r = rand([5, 3]);
  const loss = async () => dot(await linearForward(p, x), r);
  const grads = { weight: zerosLike(p.weight), bias: zerosLike(p.bias) };
  const dx = await linearBackward(p, x, r, grads);
  await check('dx', x, dx, loss);
  await check('dW', p.weight, grads.weight, loss);
  await check('db', p.bias, grads.bias, loss);
});

test('linear with an adapter hook (a LoRA term s·B·A·x): the hook gets its share of dx and its own gradients', async () => {
  const x = rand([4, 6]);
  const A = rand([2, 6]);
  const B = rand([3, 2]);
  const s = 1.5;
  const dA = zerosLike(A);
  const dB = zerosLike(B);
  const adapter = {
    forward: async (xx: Tensor<'f64'>) => {
      const y = await matmul(await matmul(xx, A, { transB: true }), B, { transB: true });
      return tensor('f64', y.shape, y.data.map((v) => s * v));
    },
    backward: async (xx: Tensor<'f64'>, dy: Tensor<'f64'>) => {
      const xa = await matmul(xx, A, { transB: true }); // [N, r]
      const dyS = tensor('f64', dy.shape, dy.data.map((v) => s * v));
      const gB = await matmul(dyS, xa, { transA: true });
      const dxa = await matmul(dyS, B); // [N, r]
      const gA = await matmul(dxa, xx, { transA: true });
      gA.data.forEach((v, i) => (dA.data[i] += v));
      gB.data.forEach((v, i) => (dB.data[i] += v));
      return matmul(dxa, A);
    },
  };
  const p = { weight: rand([3, 6]), adapter };
  const r = rand([4, 3]);
  const loss = async () => dot(await linearForward(p, x), r);
  const dx = await linearBackward(p, x, r);
  await check('dx', x, dx, loss);
  await check('dA', A, dA, loss);
  await check('dB', B, dB, loss);
});

test('embedding: dE by scatter-add (repeated ids accumulate)', async () => {
  const table = rand([6, 3]);
  const ids = Int32Array.of(1, 4, 1, 0);
  const r = rand([4, 3]);
  const d = zerosLike(table);
  embeddingBackward(d, ids, r);
  await check('dE', table, d, () => dot(embeddingForward(table, ids), r));
});

test('RMSNorm and LayerNorm: dx, dg (and db)', async () => {
  const x = rand([4, 5]);
  const g = rand([5]);
  const b = rand([5]);
  const r = rand([4, 5]);
  const rms = await rmsNormForward(x, g, 1e-5);
  const dg = zerosLike(g);
  const dx = await rmsNormBackward(x, g, rms.cache, r, dg);
  const rmsLoss = async () => dot((await rmsNormForward(x, g, 1e-5)).y, r);
  await check('rms dx', x, dx, rmsLoss);
  await check('rms dg', g, dg, rmsLoss);
  const ln = layerNormForward(x, g, b, 1e-5);
  const [lg, lb] = [zerosLike(g), zerosLike(b)];
  const ldx = layerNormBackward(x, g, ln.cache, r, lg, lb);
  const lnLoss = () => dot(layerNormForward(x, g, b, 1e-5).y, r);
  await check('ln dx', x, ldx, lnLoss);
  await check('ln dg', g, lg, lnLoss);
  await check('ln db', b, lb, lnLoss);
});

test('RoPE: the backward pass is the inverse rotation', async () => {
  const [t, d] = [5, 4];
  const x = rand([2 * t, 2 * d]); // 2 sequences, 2 heads
  const tables = ropeTables(t, d, 10000);
  const r = rand([2 * t, 2 * d]);
  const dx = tensor('f64', r.shape, r.data.slice());
  ropeApply(dx, t, d, tables, true);
  await check('dx', x, dx, () => {
    const y = tensor('f64', x.shape, x.data.slice());
    ropeApply(y, t, d, tables);
    return dot(y, r);
  });
});

test('causal grouped-query attention (4 query heads on 2 key/value heads): dq, dk, dv', async () => {
  const s = { batch: 2, t: 4, heads: 4, kvHeads: 2, headDim: 3 };
  const n = s.batch * s.t;
  const q = rand([n, s.heads * s.headDim]);
  const k = rand([n, s.kvHeads * s.headDim]);
  const v = rand([n, s.kvHeads * s.headDim]);
  const r = rand([n, s.heads * s.headDim]);
  const fwd = await attentionForward(q, k, v, s);
  const { dq, dk, dv } = await attentionBackward(q, k, v, s, fwd.cache, r);
  const loss = async () => dot((await attentionForward(q, k, v, s)).o, r);
  await check('dq', q, dq, loss);
  await check('dk', k, dk, loss);
  await check('dv', v, dv, loss);
});

test('SwiGLU and GELU (tanh): input gradients', async () => {
  const gate = rand([3, 4]);
  const up = rand([3, 4]);
  const r = rand([3, 4]);
  const { dgate, dup } = await swigluBackward(gate, up, r);
  const loss = async () => dot(await swigluForward(gate, up), r);
  await check('dgate', gate, dgate, loss);
  await check('dup', up, dup, loss);
  const x = rand([3, 4], 2);
  await check('gelu dx', x, geluBackward(x, r), () => dot(geluForward(x), r));
});

test('cross-entropy with ignored rows: dlogits, and the loss is the mean over counted rows', async () => {
  const logits = rand([5, 7], 2);
  const targets = Int32Array.of(3, IGNORE, 0, 6, IGNORE);
  const { dlogits, count, loss } = await crossEntropy(logits, targets);
  assert.equal(count, 3);
  let ref = 0;
  for (const i of [0, 2, 3]) {
    const row = Array.from(logits.data.subarray(i * 7, i * 7 + 7));
    const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    ref += lse - row[targets[i]];
  }
  assert.ok(Math.abs(loss - ref / 3) <= 1e-12);
  await check('dlogits', logits, dlogits, async () => (await crossEntropy(logits, targets)).loss);
});

test('DoRA term: forward equals x·(m ⊙ (W + s·B·A)/‖·‖_row)ᵀ formed densely; exact gradients of x, A, B, m; unchanged at init', async () => {
  const x = rand([4, 6]);
  const w = rand([5, 6]);
  const A = rand([2, 6]);
  const B = rand([5, 2]);
  const m = tensor('f64', [5], rng(9).fillUniform(new Float64Array(5), 0.5, 2));
  const s = 1.5;
  const term = doraTerm(w, A, B, m, s);
  const p = { weight: w, adapter: term };
  // Dense reference of the forward pass.
  const ba = await matmul(B, A);
  const v = tensor('f64', [5, 6], w.data.map((wi, i) => wi + s * ba.data[i]));
  const vn = rowNorms(v);
  const wPrime = tensor('f64', [5, 6], v.data.map((vi, i) => (m.data[Math.floor(i / 6)] * vi) / vn.data[Math.floor(i / 6)]));
  const ref = await matmul(x, wPrime, { transB: true });
  const got = await linearForward(p, x);
  const maxRef = Math.max(...Array.from(ref.data, Math.abs));
  assert.ok(got.data.every((g, i) => Math.abs(g - ref.data[i]) <= 1e-13 * maxRef));
  const r = rand([4, 5]);
  const loss = async () => dot(await linearForward(p, x), r);
  const dx = await linearBackward(p, x, r);
  await check('dx', x, dx, loss);
  await check('dA', A, term.dA, loss);
  await check('dB', B, term.dB, loss);
  await check('dm', m, term.dMagnitude, loss);
  const init = await getMethod('dora').init(w, { rank: 2 });
  const fresh = doraTerm(w, init.tensors.A as Tensor<'f64'>, init.tensors.B as Tensor<'f64'>, init.tensors.magnitude as Tensor<'f64'>, s);
  const extra = await fresh.forward(x);
  assert.ok(extra.data.every((e) => Math.abs(e) <= 1e-13 * maxRef), 'DoRA at init adds nothing');
});
