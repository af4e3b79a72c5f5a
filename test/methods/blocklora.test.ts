/**
 * Block-LoRA: the engine's checks (harness.ts); ΔW and the layer's output against the block formula
 * written out in float64; r·in/n + out·r parameters; inputs that n does not divide are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMethod, rand } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { NO_SHARED } from '../../src/methods/shared.js';
import { LowrankError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/tensor.js';

const SAME = 1e-12; // float64 results that must agree, relative to the reference's largest entry

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  assert.ok(scale > 0, `${what}: the reference is not all zero`);
  assert.ok(worst <= SAME * scale, `${what}: max difference ${worst} > ${SAME}·${scale}`);
}

const usage = (pattern: RegExp) => (e: unknown): boolean => e instanceof LowrankError && e.code === 'E_USAGE' && pattern.test(e.message);

test('blocklora: unchanged at start, exact gradients, merged = unmerged, save/load, parameter counts (n = 2)', async (t) => {
  await checkMethod(t, 'blocklora', { opts: { rank: 3, alpha: 6, seed: 4, options: { num_blocks: 2 } }, startsUnchanged: true });
});

test('blocklora: the same checks with n = 4 blocks of 3 and rsLoRA scaling', async (t) => {
  await checkMethod(t, 'blocklora', { opts: { rank: 2, alpha: 5, useRslora: true, seed: 1, options: { num_blocks: 4 } }, shapes: [[8, 12], [8, 12], [5, 12]], startsUnchanged: true });
});

test('blocklora: ΔW is the block matrix (s·B_i·A_s)_ij and the output is s·Σ_j B·A_s·x_j, in float64', async () => {
  const m = getMethod('blocklora');
  const [out, inF, n, r] = [6, 12, 3, 2];
  const w = 12 / n; // block width
  const opts = { rank: r, alpha: 3, seed: 7, options: { num_blocks: n } };
  const s = 3 / r;
  const init = await m.init(rand(1, [out, inF]), opts);
  assert.deepEqual(init.tensors.A.shape, [r, w]);
  assert.deepEqual(init.tensors.B.shape, [out, r]);
  const A = rand(2, [r, w]);
  const B = rand(3, [out, r]);

  // Block (i, j) of ΔW: s·B_i·A_s, with B_i the i-th band of out/n rows of B.
  const band = out / n;
  const ref = new Float64Array(out * inF);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      for (let a = 0; a < band; a++) {
        for (let c = 0; c < w; c++) {
          let v = 0;
          for (let k = 0; k < r; k++) v += B.data[(i * band + a) * r + k] * A.data[k * w + c];
          ref[(i * band + a) * inF + j * w + c] = s * v;
        }
      }
    }
  }
  const delta = await toDense(await m.delta!({ A, B }, NO_SHARED, opts, [out, inF]));
  assertClose(delta.data, ref, 'ΔW');

  // The trained term on x [N, in]: Σ over the n input blocks of s·B·(A_s·x_j), each product done apart.
  const rows = 4;
  const x = rand(4, [rows, inF]);
  const y = new Float64Array(rows * out);
  for (let p = 0; p < rows; p++) {
    for (let j = 0; j < n; j++) {
      const ax = new Float64Array(r);
      for (let k = 0; k < r; k++) for (let c = 0; c < w; c++) ax[k] += A.data[k * w + c] * x.data[p * inF + j * w + c];
      for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) y[p * out + o] += s * B.data[o * r + k] * ax[k];
    }
  }
  const term = m.trainTerm!(rand(1, [out, inF]), { tensors: { A, B } }, opts);
  assertClose((await term.forward(x)).data, y, 'layer output');
});

test('blocklora: num_blocks = 1 starts from exactly LoRA\'s A', async () => {
  const wt = rand(5, [6, 8]);
  const opts = { rank: 3, seed: 9 };
  const [a, b] = [await getMethod('blocklora').init(wt, { ...opts, options: { num_blocks: 1 } }), await getMethod('lora').init(wt, opts)];
  assert.deepEqual((a.tensors.A as Tensor<'f64'>).data, (b.tensors.A as Tensor<'f64'>).data);
});

test('blocklora: r·in/n + out·r trainable parameters per layer, n = 8 by default', () => {
  const m = getMethod('blocklora');
  assert.equal(m.trainableParams(768, 768, 2, { rank: 2, options: { num_blocks: 8 } }), 2 * 96 + 768 * 2);
  assert.equal(m.trainableParams(768, 768, 2, { rank: 2 }), 1728);
  assert.equal(m.trainableParams(768, 768, 2), 1728);
  assert.equal(m.trainableParams(768, 768, 2, { rank: 2, options: { num_blocks: 1 } }), 2 * (768 + 768)); // LoRA's
  assert.equal(m.trainableParams(4096, 11008, 16, { rank: 16, options: { num_blocks: 4 } }), 16 * 2752 + 4096 * 16);
});

test('blocklora: an input size that num_blocks does not divide, and num_blocks < 1, are usage errors', async () => {
  const m = getMethod('blocklora');
  const opts = { rank: 2, options: { num_blocks: 4 } };
  await assert.rejects(m.init(rand(1, [6, 10]), opts), usage(/6×10.*input size 10.*num_blocks=4/));
  assert.throws(() => m.trainableParams(6, 10, 2, opts), usage(/input size 10.*num_blocks=4/));
  const A = rand(2, [2, 2]);
  const B = rand(3, [6, 2]);
  await assert.rejects(m.delta!({ A, B }, NO_SHARED, opts, [6, 10]), usage(/num_blocks=4/));
  await assert.rejects(m.init(rand(1, [6, 8]), { rank: 2, options: { num_blocks: 0 } }), usage(/num_blocks must be an integer ≥ 1/));
  await assert.rejects(m.init(rand(1, [6, 8]), { rank: 2, options: { num_blocks: 2.5 } }), usage(/num_blocks/));
});
