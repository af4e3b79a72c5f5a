/**
 * composeBackend: a backend that implements only some ops gets the rest from its chain. Its own
 * product must serve the derived matmulAdd and matmulAddHalf (checked against a float64
 * reference, 1e-5 relative in float32; the half result within one bfloat16 rounding of it), ops it
 * lacks come from the first of the chain that has them, and its own ops are never replaced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeBackend } from '../../src/backend/compose.js';
import { jsBackend } from '../../src/backend/js/index.js';
import type { Backend, Matrix } from '../../src/backend/types.js';
import { decodeInto, viewStorage } from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';
import { referenceProduct } from '../helpers/reference.js';

const [M, K, N] = [23, 17, 11];

function seeded(seed: number, rows: number, cols: number): Matrix<Float32Array> {
  return { rows, cols, data: rng(seed).fillNormal(new Float32Array(rows * cols)) };
}

/** A backend with only a product (js's, counted). */
function productsOnly(): { calls: { matmul: number }; own: { name: 'wasm'; matmul: Backend['matmul'] } } {
  const calls = { matmul: 0 };
  return {
    calls,
    own: {
      name: 'wasm',
      matmul: (a, b, ta, tb) => {
        calls.matmul++;
        return jsBackend.matmul(a, b, ta, tb);
      },
    },
  };
}

test('composeBackend: matmulAdd and matmulAddHalf are derived from the backend\'s own product, checked against float64', async () => {
  const { calls, own } = productsOnly();
  const b = composeBackend(own, jsBackend);
  const [a, x, c] = [seeded(1, M, K), seeded(2, K, N), seeded(3, M, N)];
  const alpha = -0.75;
  const ref = referenceProduct(a.data, M, K, x.data, N).map((v, i) => c.data[i] + alpha * v);
  const sum = await b.matmulAdd(c, a, x, alpha, false, false);
  assert.equal(calls.matmul, 1, 'the own product computed it');
  let d = 0;
  let s = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (sum.data[i] - ref[i]) ** 2;
    s += ref[i] ** 2;
  }
  assert.ok(Math.sqrt(d / s) < 1e-5, `relative error ${Math.sqrt(d / s)}`);
  const bits = await b.matmulAddHalf(c, a, x, alpha, false, false, 'bf16');
  assert.equal(calls.matmul, 2, 'the own product computed the half result too');
  const back = new Float32Array(bits.length);
  decodeInto('bf16', viewStorage('bf16', bits.buffer, 0, bits.length), back);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(back[i] - ref[i]) <= 2 ** -8 * Math.abs(ref[i]) + 1e-6, `element ${i}: ${back[i]} against ${ref[i]}`);
});

test('composeBackend: missing ops come from the first of the chain that has them; own ops are kept', async () => {
  const { own } = productsOnly();
  const used: string[] = [];
  const middle = {
    name: 'js' as const,
    svd: ((a, job) => {
      used.push('middle svd');
      return jsBackend.svd(a, job);
    }) as Backend['svd'],
    matmul: (() => {
      throw new Error('the chain must not replace an own op');
    }) as Backend['matmul'],
  };
  const b = composeBackend(own, jsBackend, [middle]);
  const a = seeded(4, 9, 6);
  await b.svd(a, 'values');
  assert.deepEqual(used, ['middle svd']);
  assert.equal(b.qr, jsBackend.qr, 'qr from the end of the chain');
  assert.equal(b.attention, jsBackend.attention, 'nn kernels from the end of the chain');
  await b.matmul(a, a, true, false);
  assert.equal(b.name, 'wasm');
});

test('composeBackend: a backend without products takes matmulAddHalf from the chain, not a derivation', () => {
  const b = composeBackend({ name: 'wasm', svd: jsBackend.svd }, jsBackend);
  assert.equal(b.matmulAddHalf, jsBackend.matmulAddHalf);
  assert.equal(b.matmulAdd, jsBackend.matmulAdd);
});
