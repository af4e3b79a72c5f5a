/**
 * Every method's training term (AdapterMethod.trainTerm) in float64, on a random layer:
 *  - at init the layer (residual base + term) gives the original output;
 *  - after moving the trained parameters, the analytic gradients of every parameter and of x match
 *    central differences;
 *  - the export (toLora) merged into the original weight gives the same output as base + term, and
 *    unmerging it gives the original weight back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { linearBackward, linearForward } from '../../src/nn/linear.js';
import { matmul } from '../../src/linalg/matmul.js';
import { getMethod, methodNames } from '../../src/methods/registry.js';
import { residual } from '../../src/methods/split.js';
import { rowNorms } from '../../src/linalg/lowrank.js';
import type { LoraUpdate } from '../../src/methods/types.js';
import { checkGradient } from '../helpers/gradcheck.js';

const H = 1e-5;
const TOL = 1e-7; // |numeric − analytic| ≤ TOL·max|analytic| (central differences in float64)
const SAME = 1e-12; // outputs that must agree, relative to their largest entry

function rand(seed: number, shape: number[], std = 1): Tensor<'f64'> {
  return tensor('f64', shape, rng(seed).fillNormal(new Float64Array(shape.reduce((a, b) => a * b, 1)), 0, std));
}
const dot = (a: Tensor<'f64'>, b: Tensor<'f64'>): number => a.data.reduce((s, x, i) => s + x * b.data[i], 0);
const maxAbs = (t: Tensor<'f64'>): number => Math.max(...Array.from(t.data, Math.abs));

/** The original weight with the export merged in: W + s·B·A, or DoRA's m ⊙ (W + s·B·A)/‖·‖_row. */
async function merged(w: Tensor<'f64'>, u: LoraUpdate): Promise<Tensor<'f64'>> {
  const ba = await matmul(u.B as Tensor<'f64'>, u.A as Tensor<'f64'>);
  const v = tensor('f64', w.shape, w.data.map((x, i) => x + u.scaling * ba.data[i]));
  if (u.magnitude === undefined) return v;
  const n = rowNorms(v);
  const cols = w.shape[1];
  return tensor('f64', w.shape, v.data.map((x, i) => (u.magnitude!.data[Math.floor(i / cols)] * x) / n.data[Math.floor(i / cols)]));
}

// The methods exported as a PEFT LoRA; those with a format of their own are checked by harness.ts.
const TRAINABLE = methodNames().filter((n) => getMethod(n).trainTerm !== undefined && getMethod(n).format === undefined);

test('the methods with a training term exported as a LoRA are the ones issue 7 names (and SoMA)', () => {
  assert.deepEqual([...TRAINABLE].sort(), ['dora', 'loldu', 'lora', 'milora', 'olora', 'pissa', 'soma', 'svfit']);
});

for (const name of TRAINABLE) {
  test(`${name}: unchanged at init, exact gradients (x and every trained tensor), export merges to the trained layer and unmerges`, async () => {
    const method = getMethod(name);
    const [out, inF, n] = [7, 9, 5];
    const w = rand(1, [out, inF]);
    const opts = { rank: 3, alpha: 6, energy: 0.999 };
    const init = await method.init(w, opts);
    const base = init.removed === undefined ? w : ((await residual(w, init.removed)) as Tensor<'f64'>);
    const term = method.trainTerm!(base, init, opts);
    const layer = { weight: base, adapter: term };
    const x = rand(2, [n, inF]);
    const plain = await matmul(x, w, { transB: true });
    const start = await linearForward(layer, x);
    assert.ok(start.data.every((v, i) => Math.abs(v - plain.data[i]) <= SAME * maxAbs(plain)), 'the layer starts unchanged');

    // Move every trained tensor off its init so no gradient vanishes (LoRA's B = 0 would hide dA).
    let s = 10;
    for (const p of Object.values(term.params) as Tensor<'f64'>[]) for (let i = 0; i < p.data.length; i++) p.data[i] += 0.3 * rng(s++).normal();
    const r = rand(3, [n, out]);
    const loss = async (): Promise<number> => dot(await linearForward(layer, x), r);
    for (const g of Object.values(term.grads)) g.data.fill(0);
    const dx = await linearBackward(layer, x, r);
    await checkGradient(`${name} dx`, x, dx, loss, { h: H, tol: TOL });
    for (const [role, p] of Object.entries(term.params)) await checkGradient(`${name} d${role}`, p as Tensor<'f64'>, term.grads[role] as Tensor<'f64'>, loss, { h: H, tol: TOL });

    const trained = await linearForward(layer, x);
    const update = term.toLora!();
    const wm = await merged(w, update);
    const viaMerge = await matmul(x, wm, { transB: true });
    assert.ok(trained.data.every((v, i) => Math.abs(v - viaMerge.data[i]) <= SAME * maxAbs(trained)), 'the export merged into W gives the trained layer');
    if (update.magnitude === undefined) {
      const ba = await matmul(update.B as Tensor<'f64'>, update.A as Tensor<'f64'>);
      const back = wm.data.map((v, i) => v - update.scaling * ba.data[i]);
      assert.ok(back.every((v, i) => Math.abs(v - w.data[i]) <= SAME * maxAbs(w)), 'unmerging gives W back');
    }
  });
}
