/** NOLA: the engine's checks (harness.ts), and its bases regenerated from the seed, never saved. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMethod } from './harness.js';
import { getMethod } from '../../src/methods/registry.js';

const opts = { rank: 3, alpha: 6, seed: 4, options: { num_basis_A: 5, num_basis_B: 4 } };

test('nola: unchanged at start, exact gradients, merged = unmerged, save/load, k + l parameters per layer', async (t) => {
  await checkMethod(t, 'nola', { opts, startsUnchanged: true });
});

test('nola: the bases are regenerated from the seed (same seed, same bases; another seed, others) and k + l does not depend on the rank', async () => {
  const m = getMethod('nola');
  const layers = [{ name: 'a', shape: [6, 8] as [number, number] }];
  const [a, b, c] = await Promise.all([m.prepare!(layers, opts, 'f64'), m.prepare!(layers, opts, 'f64'), m.prepare!(layers, { ...opts, seed: 5 }, 'f64')]);
  assert.deepEqual(Object.keys(a.tensors).sort(), ['A_in8', 'B_out6']);
  assert.deepEqual(a.tensors.A_in8.data, b.tensors.A_in8.data);
  assert.notDeepEqual(a.tensors.A_in8.data, c.tensors.A_in8.data);
  assert.equal(m.trainableParams(4096, 4096, 1, opts), 9);
  assert.equal(m.trainableParams(4096, 4096, 64, opts), 9);
});
