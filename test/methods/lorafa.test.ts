/** LoRA-FA (the README's example method): the engine's checks, and A never moves. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMethod, rand } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';

test('lorafa: unchanged at start, exact gradients, merged = unmerged, save/load, out·r parameters', async (t) => {
  await checkMethod(t, 'lorafa', { opts: { rank: 3, alpha: 6, options: { a_seed: 2 } }, startsUnchanged: true });
});

test('lorafa: only B trains; A is the seeded kaiming-uniform init and B starts at 0', async () => {
  const m = getMethod('lorafa');
  const w = rand(1, [6, 8]);
  const init = await m.init(w, { rank: 3, options: { a_seed: 2 } });
  const term = m.trainTerm!(w, init, { rank: 3 });
  assert.deepEqual(Object.keys(term.params), ['B']);
  assert.ok(init.tensors.B.data.every((v) => v === 0));
  assert.ok(init.tensors.A.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(8)) && init.tensors.A.data.some((v) => v !== 0));
  assert.equal(m.trainableParams(6, 8, 3), 18);
});
