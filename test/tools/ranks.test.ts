import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dynamicRank, parseRankRule, rankStats, KOHYA_MIN_SV, type RankRule, type RankRuleName } from '../../src/tools/ranks.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';

const S = [10, 5, 2, 1, 0.5];

test('sv_ratio keeps σ_i > σ_max / value (hand-computed)', () => {
  const r = (value: number, max?: number): number => dynamicRank(S, { rule: 'sv_ratio', value }, max);
  assert.equal(r(4), 2); // threshold 2.5: 10, 5
  assert.equal(r(5), 2); // threshold 2: strictly greater, so 2 is dropped
  assert.equal(r(5.0001), 3);
  assert.equal(r(10), 3); // threshold 1: 10, 5, 2
  assert.equal(r(1), 1); // threshold σ_max: nothing is greater, at least 1
  assert.equal(r(1000), 5);
  assert.equal(r(1000, 3), 3); // capped
});

test('sv_cumulative: smallest k with Σ_{≤k} σ / Σ σ ≥ value (hand-computed)', () => {
  // Σσ = 18.5; shares 10/18.5 = 0.5405, 15/18.5 = 0.8108, 17/18.5 = 0.9189, 18/18.5 = 0.9730, 1.
  const r = (value: number, max?: number): number => dynamicRank(S, { rule: 'sv_cumulative', value }, max);
  assert.equal(r(0.5), 1);
  assert.equal(r(0.55), 2);
  assert.equal(r(0.8), 2);
  assert.equal(r(0.9), 3);
  assert.equal(r(0.97), 4);
  assert.equal(r(0.99), 5);
  assert.equal(r(1), 5);
  assert.equal(r(0.99, 2), 2);
});

test('sv_fro: smallest k with Σ_{≤k} σ² / Σ σ² ≥ value² (hand-computed)', () => {
  // Σσ² = 130.25; shares 100/130.25 = 0.7678, 125/130.25 = 0.9597, 129/130.25 = 0.9904, 130/130.25 = 0.9981, 1.
  const r = (value: number): number => dynamicRank(S, { rule: 'sv_fro', value });
  assert.equal(r(0.8), 1); // 0.64 ≤ 0.7678
  assert.equal(r(0.9), 2); // 0.81
  assert.equal(r(0.99), 3); // 0.9801
  assert.equal(r(0.999), 4); // 0.998001 ≤ 0.99808
  assert.equal(r(0.9995), 5);
});

test('a zero spectrum gives rank 1 under every rule (σ_max ≤ zeroSv, e.g. kohya’s 1e-6); ties in σ are kept together by sv_ratio', () => {
  for (const rule of ['sv_ratio', 'sv_fro', 'sv_cumulative'] as const) {
    assert.equal(dynamicRank([0, 0, 0], { rule, value: 1 }), 1, rule);
    const tiny = [1e-7, 0.9e-7, 0.8e-7];
    const value = rule === 'sv_ratio' ? 2 : 1;
    assert.equal(dynamicRank(tiny, { rule, value }), 3, rule);
    assert.equal(dynamicRank(tiny, { rule, value }, Infinity, KOHYA_MIN_SV), 1, rule);
  }
  assert.equal(dynamicRank([3, 3, 3, 1], { rule: 'sv_ratio', value: 2 }), 3);
  assert.equal(dynamicRank([3, 3, 3, 1], { rule: 'sv_cumulative', value: 0.5 }), 2); // 6/10 ≥ 0.5
});

test('the rules match kohya resize_lora.py formulas run in numpy on random spectra', () => {
  // numpy: the same index functions as kohya's (searchsorted on cumsum / sum, count of σ > σ_max / p),
  // on the singular values of seeded random matrices with different decays.
  const ref = pythonJson<{ sigma: number[]; cases: { rule: RankRuleName; value: number; rank: number }[] }[]>(`
import json
rng = np.random.default_rng(7)
out = []
for decay in [0.0, 0.5, 1.5]:
    m = rng.standard_normal((40, 30)) * (np.arange(1, 31) ** -decay)
    s = np.linalg.svd(m, compute_uv=False)
    cases = []
    for p in rng.uniform(0.05, 0.999, 25):
        cum = np.cumsum(s) / np.sum(s)
        cases.append({'rule': 'sv_cumulative', 'value': float(p), 'rank': int(max(0, min(np.searchsorted(cum, p), len(s) - 1))) + 1})
        fro = np.cumsum(s ** 2) / np.sum(s ** 2)
        cases.append({'rule': 'sv_fro', 'value': float(p), 'rank': int(max(0, min(np.searchsorted(fro, p ** 2), len(s) - 1))) + 1})
    for p in rng.uniform(1.0, 60.0, 25):
        cases.append({'rule': 'sv_ratio', 'value': float(p), 'rank': int(max(0, min(int(np.sum(s > s[0] / p)) - 1, len(s) - 1))) + 1})
    out.append({'sigma': s.tolist(), 'cases': cases})
print(json.dumps(out))`);
  let compared = 0;
  for (const { sigma, cases } of ref) {
    for (const c of cases) {
      const rule: RankRule = { rule: c.rule, value: c.value };
      assert.equal(dynamicRank(sigma, rule), c.rank, `${c.rule}:${c.value}`);
      assert.equal(dynamicRank(sigma, rule, 7), Math.min(c.rank, 7));
      compared++;
    }
  }
  assert.equal(compared, 225);
});

test('rankStats: retained shares, max ratio and the Eckart–Young tail against numpy', () => {
  const ref = pythonJson<{ s: number[]; tail: number[]; fro: number[]; sum: number[]; norm: number }>(`
import json
rng = np.random.default_rng(3)
a = rng.standard_normal((20, 12)) @ np.diag(np.logspace(0, -6, 12)) @ rng.standard_normal((12, 12))
s = np.linalg.svd(a, compute_uv=False)
tail = [float(np.linalg.norm(a - (u[:, :r] * s[:r]) @ vt[:r])) for u, _, vt in [np.linalg.svd(a, full_matrices=False)] for r in range(1, 13)]
print(json.dumps({'s': s.tolist(), 'tail': tail, 'fro': [float(np.sqrt(np.sum(s[:r] ** 2) / np.sum(s ** 2))) for r in range(1, 13)],
  'sum': [float(np.sum(s[:r]) / np.sum(s)) for r in range(1, 13)], 'norm': float(np.linalg.norm(a))}))`);
  for (let r = 1; r <= 12; r++) {
    const st = rankStats(ref.s, r);
    assert.equal(st.rank, r);
    // ‖A − A_r‖_F computed by numpy from the factors: the tail formula must agree to 1e-6 relative (1e-9·‖A‖ absolute).
    assert.ok(Math.abs(st.tailNorm - ref.tail[r - 1]) <= 1e-6 * ref.tail[r - 1] + 1e-9 * ref.norm, `tail r=${r}: ${st.tailNorm} vs ${ref.tail[r - 1]}`);
    assert.ok(Math.abs(st.froRetained - ref.fro[r - 1]) <= 1e-12);
    assert.ok(Math.abs(st.sumRetained - ref.sum[r - 1]) <= 1e-12);
    assert.ok(Math.abs(st.energyRetained - ref.fro[r - 1] ** 2) <= 1e-12);
    assert.ok(Math.abs(st.maxRatio - ref.s[0] / ref.s[r - 1]) <= 1e-12 * st.maxRatio);
  }
  assert.ok(Math.abs(rankStats(ref.s, 1).norm - ref.norm) <= 1e-12 * ref.norm);
  assert.equal(rankStats(ref.s, 12).tailNorm, 0);
  const zero = rankStats([0, 0], 1);
  assert.deepEqual([zero.froRetained, zero.sumRetained, zero.energyRetained, zero.maxRatio, zero.tailNorm], [1, 1, 1, 1, 0]);
});

test('parseRankRule reads rule:value; bad rules, values and spectra are E_USAGE errors', () => {
  assert.deepEqual(parseRankRule('sv_fro:0.9'), { rule: 'sv_fro', value: 0.9 });
  assert.deepEqual(parseRankRule('sv_ratio=4'), { rule: 'sv_ratio', value: 4 });
  assert.deepEqual(parseRankRule(' sv_cumulative:0.5 '), { rule: 'sv_cumulative', value: 0.5 });
  const usage = (f: () => unknown): void => assert.throws(f, (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
  usage(() => parseRankRule('sv_max:3'));
  usage(() => parseRankRule('sv_fro'));
  usage(() => parseRankRule('sv_fro:abc'));
  usage(() => parseRankRule('sv_ratio:-1'));
  usage(() => parseRankRule('sv_ratio:0'));
  usage(() => parseRankRule('sv_ratio:0.5')); // keeps σ > 2·σ_max: never anything
  usage(() => parseRankRule('sv_fro:1.5')); // unreachable share
  usage(() => parseRankRule('sv_cumulative:0'));
  usage(() => dynamicRank([2, 1], { rule: 'sv_fro', value: 0.9 }, 2, -1));
  usage(() => dynamicRank([], { rule: 'sv_fro', value: 0.9 }));
  usage(() => dynamicRank([1, 2], { rule: 'sv_fro', value: 0.9 })); // ascending
  usage(() => dynamicRank([2, -1], { rule: 'sv_fro', value: 0.9 }));
  usage(() => dynamicRank([2, 1], { rule: 'sv_fro', value: 0.9 }, 0));
  usage(() => rankStats([2, 1], 3));
  assert.throws(() => dynamicRank([NaN], { rule: 'sv_fro', value: 0.9 }), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE');
});
