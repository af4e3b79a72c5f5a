import { test } from 'node:test';
import assert from 'node:assert/strict';
import { magnitudePrune, mergeTasks, randomPrune, type TaskMerge } from '../../src/tools/taskArithmetic.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';

// Tolerance: every merge is a few float64 adds and one divide per entry; the numpy reference does
// the same operations in another order, so |got − ref| ≤ TOL·max|ref|.
const TOL = 1e-13;

// A numpy transcription of the definitions (TIES-Merging, DARE; PEFT's utils/merge_utils.py), with
// pruning given as an input when random so both sides use the same drops.
const NUMPY_MERGE = `
import json, sys
q = json.load(sys.stdin)
T = np.array(q["tasks"], dtype=np.float64)
w = np.array(q["weights"], dtype=np.float64)[:, None]
if q["prune"] == "magnitude":
    k = int(q["density"] * T.shape[1])
    P = np.zeros_like(T)
    for i in range(T.shape[0]):
        keep = np.argsort(-np.abs(T[i]), kind="stable")[:k]
        P[i, keep] = T[i, keep]
    T = P
if q["ties"]:
    vote = T.sum(0) if q["sign"] == "total" else np.sign(T).sum(0)
    elected = np.where(vote >= 0, 1.0, -1.0)
    mask = np.sign(T) == elected
    out = (T * w * mask).sum(0) / np.maximum(mask.sum(0), 1)
else:
    out = (T * w).sum(0)
print(json.dumps(out.tolist()))
`;

function tasks(seed: number, count: number, n: number): Float64Array[] {
  const g = rng(seed);
  return Array.from({ length: count }, () => g.fillNormal(new Float64Array(n)));
}

function maxAbsDiff(a: Float64Array, b: readonly number[]): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

test('magnitude_prune and ties (total, frequency) equal a numpy transcription of the definitions', () => {
  const weights = [0.7, 1.3, -0.4];
  const cases: { method: TaskMerge; sign: 'total' | 'frequency'; density: number }[] = [
    { method: 'magnitude_prune', sign: 'total', density: 0.3 },
    { method: 'ties', sign: 'total', density: 0.2 },
    { method: 'ties', sign: 'frequency', density: 0.5 },
    { method: 'ties', sign: 'total', density: 1 },
  ];
  for (const [i, c] of cases.entries()) {
    const t = tasks(100 + i, 3, 997);
    const input = JSON.stringify({ tasks: t.map((x) => [...x]), weights, prune: 'magnitude', density: c.density, ties: c.method === 'ties', sign: c.sign });
    const ref = pythonJson<number[]>(NUMPY_MERGE, [], input);
    const got = mergeTasks(c.method, t, weights, { density: c.density, majoritySign: c.sign });
    const scale = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(maxAbsDiff(got, ref) <= TOL * scale, `${c.method}/${c.sign}/${c.density}: ${maxAbsDiff(got, ref)}`);
  }
});

test('magnitudePrune keeps exactly ⌊density·n⌋ entries, the largest, also among equal magnitudes', () => {
  const x = Float64Array.from([1, -3, 2, 3, -1, 2, 0.5, -2]);
  const got = magnitudePrune(Float64Array.from(x), 0.5); // k = 4 of |·| = 3, 3, 2, 2, 2: the first two 2s
  assert.deepEqual([...got], [0, -3, 2, 3, 0, 2, 0, 0]);
  assert.deepEqual([...magnitudePrune(Float64Array.from(x), 0.1)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...magnitudePrune(Float64Array.from(x), 1)], [...x]);
});

test('randomPrune: kept entries divided by density, the kept fraction near density, reproducible from the seed', () => {
  const n = 20000;
  const density = 0.3;
  const x = rng(5).fillNormal(new Float64Array(n));
  const a = randomPrune(Float64Array.from(x), density, rng(9));
  const b = randomPrune(Float64Array.from(x), density, rng(9));
  assert.deepEqual(a, b);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === 0) continue;
    kept++;
    assert.ok(Math.abs(a[i] - x[i] / density) <= 1e-15 * Math.abs(a[i]), `entry ${i}`);
  }
  // Binomial(n, density): 5 standard deviations.
  const sd = Math.sqrt(n * density * (1 - density));
  assert.ok(Math.abs(kept - n * density) <= 5 * sd, `kept ${kept} of ${n}`);
});

test('dare_linear and dare_ties are the linear and TIES merges of the randomly pruned updates', () => {
  const weights = [1, 0.5];
  for (const method of ['dare_linear', 'dare_ties'] as const) {
    const t = tasks(200, 2, 801);
    const g = rng(3);
    const pruned = t.map((x) => randomPrune(Float64Array.from(x), 0.4, g));
    const input = JSON.stringify({ tasks: pruned.map((x) => [...x]), weights, prune: 'none', density: 1, ties: method === 'dare_ties', sign: 'total' });
    const ref = pythonJson<number[]>(NUMPY_MERGE, [], input);
    const got = mergeTasks(method, t, weights, { density: 0.4, rng: rng(3) });
    const scale = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(maxAbsDiff(got, ref) <= TOL * scale, `${method}: ${maxAbsDiff(got, ref)}`);
  }
});

test('task merges reject a bad density, a missing random stream and unequal lengths', () => {
  const bad = (f: () => unknown, code: string) => assert.throws(f, (e: unknown) => e instanceof LowrankError && e.code === code);
  bad(() => mergeTasks('ties', tasks(1, 2, 4), [1, 1], { density: 0 }), 'E_USAGE');
  bad(() => mergeTasks('ties', tasks(1, 2, 4), [1, 1], { density: 1.5 }), 'E_USAGE');
  bad(() => mergeTasks('dare_linear', tasks(1, 2, 4), [1, 1], { density: 0.5 }), 'E_USAGE');
  bad(() => mergeTasks('ties', [new Float64Array(3), new Float64Array(4)], [1, 1], { density: 0.5 }), 'E_SHAPE');
});
