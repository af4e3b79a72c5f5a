import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { adamw, adamwState, adamwStep, clipGradNorm, cosineWithWarmup } from '../../src/optim/adamw.js';
import { pythonJson } from '../helpers/python.js';

const TOL = 1e-12; // float64 on both sides, the same operations

test('AdamW: five steps equal a numpy transcription of torch.optim.AdamW (decoupled weight decay, bias correction)', () => {
  const g = rng(3);
  const p0 = g.fillNormal(new Float64Array(6));
  const grads = Array.from({ length: 5 }, () => Array.from(g.fillNormal(new Float64Array(6))));
  const ref = pythonJson<number[]>(`import json,sys
q=json.load(sys.stdin); p=np.array(q["p"]); m=np.zeros(6); v=np.zeros(6)
lr,b1,b2,eps,wd=0.01,0.9,0.95,1e-8,0.1
for t,g in enumerate(q["g"],1):
    g=np.array(g); p=p-lr*wd*p; m=b1*m+(1-b1)*g; v=b2*v+(1-b2)*g*g
    p=p-lr*(m/(1-b1**t))/(np.sqrt(v/(1-b2**t))+eps)
print(json.dumps(p.tolist()))`, [], JSON.stringify({ p: [...p0], g: grads }));
  const p = tensor('f64', [6], p0.slice());
  const st = adamwState(6);
  for (const gr of grads) adamwStep(p, tensor('f64', [6], Float64Array.from(gr)), st, 0.01, { beta2: 0.95, weightDecay: 0.1 });
  p.data.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) <= TOL, `${i}: ${x} vs ${ref[i]}`));
  assert.equal(st.step, 5);
});

test('warmup + cosine schedule and global-norm clipping', () => {
  assert.equal(cosineWithWarmup(0, 1e-3, 10, 110), 0);
  assert.ok(Math.abs(cosineWithWarmup(5, 1e-3, 10, 110) - 5e-4) < 1e-18);
  assert.equal(cosineWithWarmup(10, 1e-3, 10, 110), 1e-3);
  assert.ok(Math.abs(cosineWithWarmup(60, 1e-3, 10, 110) - 5e-4) < 1e-15);
  assert.ok(Math.abs(cosineWithWarmup(110, 1e-3, 10, 110, 1e-5) - 1e-5) < 1e-18);
  const a = tensor('f64', [2], Float64Array.of(3, 0));
  const b = tensor('f64', [1], Float64Array.of(4));
  assert.equal(clipGradNorm([a, b], 1), 5);
  const after = Math.hypot(a.data[0], a.data[1], b.data[0]);
  assert.ok(Math.abs(after - 5 / (5 + 1e-6)) < 1e-12);
  const c = tensor('f64', [1], Float64Array.of(0.5));
  clipGradNorm([c], 1);
  assert.equal(c.data[0], 0.5);
});

test('the AdamW optimizer over named parameters: each parameter stepped as adamwStep steps it; state arrays <name>.m/.v; restore sets the step', () => {
  const g = rng(5);
  const params = ['a', 'b'].map((name, i) => ({ name, param: tensor('f64', [3 + i], g.fillNormal(new Float64Array(3 + i))), grad: tensor('f64', [3 + i], g.fillNormal(new Float64Array(3 + i))) }));
  const copies = params.map((p) => ({ p: tensor('f64', p.param.shape, p.param.data.slice()), st: adamwState(p.param.data.length) }));
  const opt = adamw(params, { weightDecay: 0.05 });
  for (let t = 0; t < 3; t++) {
    opt.step(0.01 * (t + 1));
    params.forEach((p, i) => adamwStep(copies[i].p, p.grad, copies[i].st, 0.01 * (t + 1), { weightDecay: 0.05 }));
  }
  params.forEach((p, i) => assert.deepEqual(p.param.data, copies[i].p.data));
  assert.equal(opt.steps, 3);
  assert.deepEqual([...opt.stateArrays().keys()], ['a.m', 'a.v', 'b.m', 'b.v']);
  assert.deepEqual(opt.stateArrays().get('b.v'), copies[1].st.v);
  opt.restore(7);
  assert.equal(opt.steps, 7);
});
