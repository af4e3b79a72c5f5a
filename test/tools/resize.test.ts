import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resizeAdapter, loraSvd, type ResizeResult } from '../../src/tools/resize.js';
import type { RankRule } from '../../src/tools/ranks.js';
import { openAdapter, writeAdapter, type LoraConfig, type LoraModuleTensors } from '../../src/io/peft.js';
import { encodeFloat, tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

// Tolerances: products of f32 factors against numpy's float64 SVD of the dense update.
const APPROX_TOL = 1e-5; // ‖new − best_k‖_F ≤ APPROX_TOL·‖old‖_F (f32 factors)
const APPROX_TOL_BF16 = 1e-2; // the same for a module stored in bf16 (8-bit mantissa)
const STAT_TOL = 1e-6; // sum/fro retained, max ratio, Frobenius error and norm (relative)
const SAME_TOL = 1e-6; // rank ≥ old rank: ‖new − old‖_F ≤ SAME_TOL·‖old‖_F

interface Spec {
  name: string;
  out: number;
  in: number;
  r: number;
  /** The planted singular values of scaling·B·A (padded with zeros to r). */
  sigma: number[];
  scaling: number;
  dtype?: 'f32' | 'bf16';
}

const GEOMETRIC = [8, 4, 2, 1, 0.5, 0.25, 0.125, 0.0625];
const STEP = [5, 5, 5, 5, 0.05, 0.04, 0.03, 0.02];
const SLOW = [3, 2.8, 2.6, 2.4, 2.2, 2.0, 1.8, 1.6];
const TWELVE = [6, 5, 4, 3, 2.5, 2, 1.5, 1, 0.5, 0.3, 0.2, 0.1];

// A small Llama (hidden 48, kv 16, intermediate 96); r 8, alpha 16, one module at r 12 / alpha 6
// through rank_pattern/alpha_pattern, one all-zero update, and an lm_head in modules_to_save.
const PLAIN_CONFIG: Partial<LoraConfig> = {
  r: 8,
  lora_alpha: 16,
  target_modules: ['q_proj', 'v_proj', 'up_proj', 'down_proj'],
  rank_pattern: { 'layers.1.self_attn.q_proj': 12 },
  alpha_pattern: { 'layers.1.self_attn.q_proj': 6 },
  modules_to_save: ['lm_head'],
  base_model_name_or_path: 'tiny-llama',
  task_type: 'CAUSAL_LM',
  lora_dropout: 0.05,
};
const PLAIN: Spec[] = [
  { name: 'model.layers.0.self_attn.q_proj', out: 48, in: 48, r: 8, sigma: GEOMETRIC, scaling: 2 },
  { name: 'model.layers.0.self_attn.v_proj', out: 16, in: 48, r: 8, sigma: STEP, scaling: 2 },
  { name: 'model.layers.0.mlp.up_proj', out: 96, in: 48, r: 8, sigma: [], scaling: 2 },
  { name: 'model.layers.0.mlp.down_proj', out: 48, in: 96, r: 8, sigma: SLOW, scaling: 2 },
  { name: 'model.layers.1.self_attn.q_proj', out: 48, in: 48, r: 12, sigma: TWELVE, scaling: 0.5 },
  { name: 'model.layers.1.self_attn.v_proj', out: 16, in: 48, r: 8, sigma: GEOMETRIC, scaling: 2 },
];
// rsLoRA (scaling alpha/√r), a rank-4 module through rank_pattern, a rank-deficient update and a
// module stored in bf16.
const RSLORA_CONFIG: Partial<LoraConfig> = {
  r: 8,
  lora_alpha: 8,
  use_rslora: true,
  target_modules: ['q_proj', 'k_proj'],
  rank_pattern: { 'layers.0.self_attn.k_proj': 4 },
  base_model_name_or_path: 'tiny-llama',
  task_type: 'CAUSAL_LM',
};
const RSLORA: Spec[] = [
  { name: 'model.layers.0.self_attn.q_proj', out: 48, in: 48, r: 8, sigma: SLOW, scaling: 8 / Math.sqrt(8) },
  { name: 'model.layers.0.self_attn.k_proj', out: 16, in: 48, r: 4, sigma: [3, 1, 0.3, 0.1], scaling: 8 / 2 },
  { name: 'model.layers.1.self_attn.q_proj', out: 48, in: 48, r: 8, sigma: [4, 2, 1], scaling: 8 / Math.sqrt(8) },
  { name: 'model.layers.1.self_attn.k_proj', out: 16, in: 48, r: 8, sigma: GEOMETRIC, scaling: 8 / Math.sqrt(8), dtype: 'bf16' },
];

const PY_COMMON = String.raw`
import json, math, os, re, struct, sys
def load(d):
    raw = open(os.path.join(d, 'adapter_model.safetensors'), 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop('__metadata__', None)
    out = {}
    for k, v in h.items():
        b, e = v['data_offsets']; buf = raw[8 + n + b:8 + n + e]; dt = v['dtype']
        if dt == 'F32': a = np.frombuffer(buf, '<f4').astype(np.float64)
        elif dt == 'F64': a = np.frombuffer(buf, '<f8').astype(np.float64)
        elif dt == 'F16': a = np.frombuffer(buf, '<f2').astype(np.float64)
        elif dt == 'BF16': a = (np.frombuffer(buf, '<u2').astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        else: raise SystemExit('dtype ' + dt)
        out[k] = (dt, a.reshape(v['shape']), buf)
    return json.load(open(os.path.join(d, 'adapter_config.json'))), out
def pattern(p, name, default):
    # PEFT's get_pattern_key: the first key with re.match(rf"(.*\.)?({key})$", name).
    for key, v in p.items():
        if re.match(rf"(.*\.)?({key})$", name): return v
    return default
def modules(d):
    cfg, t = load(d)
    mods = {}
    for k in t:
        m = re.match(r'base_model\.model\.(.+)\.lora_A\.weight$', k)
        if not m: continue
        name = m.group(1)
        A = t[k][1]; B = t['base_model.model.' + name + '.lora_B.weight'][1]
        r = pattern(cfg.get('rank_pattern') or {}, name, cfg['r'])
        alpha = pattern(cfg.get('alpha_pattern') or {}, name, cfg['lora_alpha'])
        s = alpha / math.sqrt(r) if cfg.get('use_rslora') else alpha / r
        assert A.shape[0] == r and B.shape[1] == r, (name, A.shape, B.shape, r)
        mods[name] = dict(A=A, B=B, scaling=s, r=r, dtype=t[k][0])
    return cfg, t, mods
def kohya(S, rule, value, cap, q):
    # networks/resize_lora.py: index_sv_* + 1, zero matrix -> 1, capped at new_rank; and never
    # above the q = min(r, out, in) singular values the factors have.
    n = len(S)
    if rule is None: k = cap
    elif rule == 'sv_ratio': k = max(0, min(int(np.sum(S > S[0] / value)) - 1, n - 1)) + 1
    elif rule == 'sv_cumulative': k = max(0, min(int(np.searchsorted(np.cumsum(S) / np.sum(S), value)), n - 1)) + 1
    else: k = max(0, min(int(np.searchsorted(np.cumsum(S ** 2) / np.sum(S ** 2), value ** 2)), n - 1)) + 1
    if S[0] <= 1e-6: k = 1
    elif cap is not None and k > cap: k = cap
    return min(k, q)
`;

interface ModuleCheck {
  name: string;
  r: number;
  dtype: string;
  scaling: number;
  expectedRank: number;
  err: number;
  same: number;
  norm: number;
  sum: number;
  fro: number;
  maxRatio: number;
  froError: number;
}
interface RunCheck {
  config: Record<string, unknown>;
  srcConfig: Record<string, unknown>;
  keys: string[];
  extraSame: boolean;
  modules: ModuleCheck[];
}

/** numpy's view of a resized adapter: per module, the float64 SVD of the old dense update against the new factors. */
function numpyCheck(runs: { src: string; out: string; rank?: number; dynamic?: RankRule }[]): RunCheck[] {
  return pythonJson<RunCheck[]>(
    PY_COMMON +
      String.raw`
res = []
for run in json.load(sys.stdin):
    src_cfg, told, old = modules(run['src'])
    cfg, tnew, new = modules(run['out'])
    extra_same = all(tnew[k][2] == v[2] for k, v in told.items() if 'lora_' not in k)
    mods = []
    for name, o in old.items():
        n = new[name]
        dense = o['B'] @ o['A']
        W = o['scaling'] * dense
        U, S, Vt = np.linalg.svd(W)
        q = min(o['r'], *dense.shape)
        k = kohya(np.linalg.svd(dense, compute_uv=False), run.get('rule'), run.get('value'), run.get('rank'), q)
        best = (U[:, :k] * S[:k]) @ Vt[:k]
        Wn = n['scaling'] * (n['B'] @ n['A'])
        s = S[:q]
        norm = float(np.sqrt(np.sum(s ** 2)))
        if s[0] == 0: stats = (1.0, 1.0, 1.0, 0.0)
        else: stats = (float(np.sum(s[:k]) / np.sum(s)), float(np.sqrt(np.sum(s[:k] ** 2) / np.sum(s ** 2))), float(s[0] / s[k - 1]), float(np.sqrt(np.sum(s[k:] ** 2))))
        mods.append(dict(name=name, r=n['r'], dtype=n['dtype'], scaling=n['scaling'], expectedRank=k,
            err=float(np.linalg.norm(Wn - best)), same=float(np.linalg.norm(Wn - W)), norm=norm,
            sum=stats[0], fro=stats[1], maxRatio=stats[2], froError=stats[3]))
    res.append(dict(config=cfg, srcConfig=src_cfg, keys=sorted(tnew.keys()), extraSame=extra_same, modules=mods))
print(json.dumps(res))
`,
    [],
    JSON.stringify(runs.map((r) => ({ src: r.src, out: r.out, rank: r.rank ?? null, rule: r.dynamic?.rule ?? null, value: r.dynamic?.value ?? null }))),
  );
}

/** A result's new ranks in the order of the specs (results follow the adapter file's order). */
function ranks(res: { modules: readonly { name: string; newRank: number }[] }, specs: Spec[] = PLAIN): number[] {
  return specs.map((s) => res.modules.find((m) => m.name === s.name)?.newRank ?? -1);
}

/** Writes an adapter whose modules' updates scaling·B·A have the planted singular values (B = U·Σ·G/scaling, A = G⁻¹·Vᵀ). */
async function plantedAdapter(dir: string, config: Partial<LoraConfig>, specs: Spec[], seed: number): Promise<void> {
  const factors = pythonJson<Record<string, { A: number[]; B: number[] }>>(
    String.raw`
import json, sys
rs = np.random.default_rng(int(sys.argv[1]))
out = {}
for s in json.load(sys.stdin):
    r = s['r']
    U = np.linalg.qr(rs.standard_normal((s['out'], r)))[0]
    V = np.linalg.qr(rs.standard_normal((s['in'], r)))[0]
    G = rs.standard_normal((r, r)) / np.sqrt(r) + 2 * np.eye(r)
    sig = np.zeros(r); sig[:len(s['sigma'])] = s['sigma']
    B = U @ np.diag(sig / s['scaling']) @ G
    A = np.linalg.inv(G) @ V.T
    out[s['name']] = dict(A=A.ravel().tolist(), B=B.ravel().tolist())
print(json.dumps(out))
`,
    [String(seed)],
    JSON.stringify(specs),
  );
  const mods: LoraModuleTensors[] = specs.map((s) => {
    const A = tensor('f32', [s.r, s.in], Float32Array.from(factors[s.name].A));
    const B = tensor('f32', [s.out, s.r], Float32Array.from(factors[s.name].B));
    return s.dtype === 'bf16' ? { name: s.name, A: encodeFloat(A, 'bf16'), B: encodeFloat(B, 'bf16') } : { name: s.name, A, B };
  });
  const extra = config.modules_to_save?.includes('lm_head')
    ? [{ name: 'base_model.model.lm_head.weight', dtype: 'f32' as const, shape: [64, 48], data: rng(seed).fillNormal(new Float32Array(64 * 48)) }]
    : [];
  await writeAdapter(dir, config, mods, { extra });
}

/** The largest relative deviation of a statistic from numpy's seen so far (reported as a diagnostic). */
let worstStat = 0;
/** The largest ‖new − best_k‖/‖old‖ of a bf16 module seen so far. */
let worstBf16 = 0;

/** Checks one resized adapter against numpy: ranks, best rank-k approximation, kohya's statistics, PEFT fields. */
function assertResized(res: ResizeResult, check: RunCheck, src: Partial<LoraConfig>, label: string): number {
  let worst = 0;
  const byName = new Map(res.modules.map((m) => [m.name, m]));
  for (const c of check.modules) {
    const m = byName.get(c.name);
    assert.ok(m !== undefined, `${label} ${c.name}: reported`);
    const tag = `${label} ${c.name}`;
    assert.equal(m.newRank, c.expectedRank, `${tag}: rank numpy computes with kohya's formulas`);
    assert.equal(c.r, m.newRank, `${tag}: PEFT's rank for the module (r/rank_pattern) is the new rank`);
    assert.equal(c.scaling, 1, `${tag}: PEFT's scaling is exactly 1`);
    const tol = c.dtype === 'BF16' ? APPROX_TOL_BF16 : APPROX_TOL;
    assert.ok(c.err <= tol * c.norm, `${tag}: ‖new − best_k‖ = ${c.err} > ${tol}·‖old‖ = ${tol * c.norm}`);
    if (c.dtype !== 'BF16') worst = Math.max(worst, c.norm === 0 ? 0 : c.err / c.norm);
    else worstBf16 = Math.max(worstBf16, c.err / c.norm);
    const close = (got: number, want: number, what: string, scale = Math.abs(want)): void => {
      const dev = Math.abs(got - want) / Math.max(scale, 1e-300);
      worstStat = Math.max(worstStat, dev);
      assert.ok(dev <= STAT_TOL, `${tag}: ${what} ${got} vs numpy ${want}`);
    };
    close(m.sumRetained, c.sum, 'sum_retained');
    close(m.froRetained, c.fro, 'fro_retained');
    close(m.maxRatio, c.maxRatio, 'max_ratio');
    close(m.froNorm, c.norm, '‖old‖_F');
    close(m.froError, c.froError, 'Frobenius error', c.norm);
  }
  const cfg = check.config;
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.r, Math.max(...res.modules.map((m) => m.newRank)));
  assert.equal(cfg.lora_alpha, cfg.r);
  assert.equal(cfg.use_rslora, false);
  for (const f of ['target_modules', 'modules_to_save', 'base_model_name_or_path', 'task_type', 'bias', 'fan_in_fan_out', 'lora_dropout'] as const) {
    assert.deepEqual(cfg[f], check.srcConfig[f], `${label}: ${f} kept`);
  }
  assert.deepEqual(cfg.rank_pattern, cfg.alpha_pattern, `${label}: per-module alpha = rank`);
  assert.ok(check.extraSame, `${label}: modules_to_save tensors copied byte for byte`);
  const keys = res.modules.flatMap((m) => [`base_model.model.${m.name}.lora_A.weight`, `base_model.model.${m.name}.lora_B.weight`]);
  if (src.modules_to_save?.includes('lm_head')) keys.push('base_model.model.lm_head.weight');
  assert.deepEqual(check.keys, keys.sort(), `${label}: PEFT's keys`);
  return worst;
}

test('a fixed rank gives the best rank-k approximation of scaling·B·A, with kohya statistics and PEFT fields', async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'plain');
  const rs = join(dir, 'rslora');
  await plantedAdapter(plain, PLAIN_CONFIG, PLAIN, 1);
  await plantedAdapter(rs, RSLORA_CONFIG, RSLORA, 2);
  const runs = [
    { src: plain, out: join(dir, 'plain-r4'), rank: 4 },
    { src: rs, out: join(dir, 'rs-r4'), rank: 4 },
    { src: rs, out: join(dir, 'rs-r2'), rank: 2 },
  ];
  const results: ResizeResult[] = [];
  for (const run of runs) results.push(await resizeAdapter({ adapter: run.src, out: run.out, rank: run.rank }));
  const checks = numpyCheck(runs);
  let worst = 0;
  runs.forEach((run, i) => (worst = Math.max(worst, assertResized(results[i], checks[i], run.src === plain ? PLAIN_CONFIG : RSLORA_CONFIG, `rank ${run.rank} of ${run.src}`))));
  t.diagnostic(`worst ‖new − best_k‖/‖old‖: ${worst.toExponential(2)} over f32 modules, ${worstBf16.toExponential(2)} for the bf16 one`);

  const r4 = results[0];
  assert.deepEqual(PLAIN.map((p) => r4.modules.find((m) => m.name === p.name)).map((m) => [m?.oldRank, m?.newRank]), [[8, 4], [8, 4], [8, 1], [8, 4], [12, 4], [8, 4]], 'zero update → rank 1');
  assert.equal(r4.parameters.before, 8 * 96 + 8 * 64 + 8 * 144 + 8 * 144 + 12 * 96 + 8 * 64);
  assert.equal(r4.parameters.after, 4 * 96 + 4 * 64 + 1 * 144 + 4 * 144 + 4 * 96 + 4 * 64);
  // The rsLoRA adapter's bf16 module stays bf16; the rest stay f32.
  const a = await openAdapter(runs[1].out);
  t.after(() => a.close());
  for (const m of a.modules) {
    assert.equal(m.scaling, 1, `${m.name}: openAdapter's scaling`);
    assert.equal(m.r, results[1].modules.find((x) => x.name === m.name)?.newRank);
    assert.equal(m.A.dtype, m.name === 'model.layers.1.self_attn.k_proj' ? 'bf16' : 'f32');
  }
  assert.equal(a.config.use_rslora, false);
  assert.ok((await readdir(dir)).every((n) => !n.includes('lowrank-')), 'no temporary folders left');
});

test("the dynamic rules pick the ranks numpy computes with kohya's formulas, capped by the rank", async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'plain');
  const rs = join(dir, 'rslora');
  await plantedAdapter(plain, PLAIN_CONFIG, PLAIN, 3);
  await plantedAdapter(rs, RSLORA_CONFIG, RSLORA, 4);
  const cases: { src: string; rank?: number; dynamic: RankRule }[] = [
    { src: plain, dynamic: { rule: 'sv_ratio', value: 10 } },
    { src: plain, dynamic: { rule: 'sv_ratio', value: 10 }, rank: 3 },
    { src: plain, dynamic: { rule: 'sv_fro', value: 0.9 } },
    { src: plain, dynamic: { rule: 'sv_fro', value: 0.999 } },
    { src: plain, dynamic: { rule: 'sv_cumulative', value: 0.8 } },
    { src: plain, dynamic: { rule: 'sv_cumulative', value: 0.95 }, rank: 5 },
    { src: rs, dynamic: { rule: 'sv_ratio', value: 10 } },
    { src: rs, dynamic: { rule: 'sv_fro', value: 0.95 }, rank: 6 },
  ];
  const runs = cases.map((c, i) => ({ ...c, out: join(dir, `out-${i}`) }));
  const results: ResizeResult[] = [];
  for (const run of runs) results.push(await resizeAdapter({ adapter: run.src, out: run.out, rank: run.rank, dynamic: run.dynamic }));
  const checks = numpyCheck(runs);
  const seen = new Set<string>();
  runs.forEach((run, i) => {
    assertResized(results[i], checks[i], run.src === plain ? PLAIN_CONFIG : RSLORA_CONFIG, `${run.dynamic.rule}:${run.dynamic.value}${run.rank ? ` cap ${run.rank}` : ''}`);
    seen.add(ranks(results[i], run.src === plain ? PLAIN : RSLORA).join(','));
  });
  // The planted spectra give different ranks per module and per rule (the rules are not all alike).
  assert.deepEqual(ranks(results[0]), [4, 4, 1, 8, 8, 4], 'sv_ratio:10 on the planted spectra');
  assert.deepEqual(ranks(results[1]), [3, 3, 1, 3, 3, 3], 'capped at 3');
  assert.ok(seen.size >= 6, `distinct rank choices: ${[...seen].join(' | ')}`);
  t.diagnostic(`ranks per run: ${[...seen].join(' | ')}`);
  t.diagnostic(`worst relative deviation of sum/fro retained, max ratio, error, norm from numpy (tests 1-2): ${worstStat.toExponential(2)}`);
});

test('a rank at or above the old rank leaves every update unchanged', async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'plain');
  await plantedAdapter(plain, PLAIN_CONFIG, PLAIN, 5);
  const runs = [
    { src: plain, out: join(dir, 'r64'), rank: 64 },
    { src: plain, out: join(dir, 'fro1'), dynamic: { rule: 'sv_fro', value: 1 } as RankRule },
  ];
  const res64 = await resizeAdapter({ adapter: plain, out: runs[0].out, rank: 64 });
  const fro1 = await resizeAdapter({ adapter: plain, out: runs[1].out, dynamic: runs[1].dynamic });
  for (const res of [res64, fro1]) assert.deepEqual(ranks(res), [8, 8, 1, 8, 12, 8]);
  let worst = 0;
  for (const check of numpyCheck(runs)) {
    for (const c of check.modules) {
      assert.ok(c.same <= SAME_TOL * c.norm, `${c.name}: ‖new − old‖ = ${c.same} > ${SAME_TOL}·‖old‖`);
      if (c.norm > 0) worst = Math.max(worst, c.same / c.norm);
    }
  }
  for (const m of res64.modules) {
    assert.ok(m.froError <= 1e-12 * Math.max(m.froNorm, 1), `${m.name}: nothing dropped`);
    assert.equal(m.froRetained, 1);
  }
  t.diagnostic(`worst ‖new − old‖/‖old‖: ${worst.toExponential(2)}`);
});

test('loraSvd is the SVD of scaling·B·A without the dense product (numpy float64 reference)', async () => {
  const g = rng(11);
  const b = tensor('f32', [40, 6], g.fillNormal(new Float32Array(240)));
  const a = tensor('f32', [6, 30], g.fillNormal(new Float32Array(180)));
  const { u, s, vt } = await loraSvd(b, a, -1.5);
  const want = pythonJson<{ s: number[]; w: number[] }>(
    `import json, sys
d = json.load(sys.stdin)
W = -1.5 * np.array(d['b']).reshape(40, 6) @ np.array(d['a']).reshape(6, 30)
print(json.dumps({'s': np.linalg.svd(W, compute_uv=False)[:6].tolist(), 'w': W.ravel().tolist()}))`,
    [],
    JSON.stringify({ b: Array.from(b.data), a: Array.from(a.data) }),
  );
  assert.deepEqual(u.shape, [40, 6]);
  assert.deepEqual(vt.shape, [6, 30]);
  want.s.forEach((x, i) => assert.ok(Math.abs(s.data[i] - x) <= 1e-12 * want.s[0], `σ${i}: ${s.data[i]} vs ${x}`));
  let err = 0;
  let norm = 0;
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 30; j++) {
      let v = 0;
      for (let p = 0; p < 6; p++) v += u.data[i * 6 + p] * s.data[p] * vt.data[p * 30 + j];
      err += (v - want.w[i * 30 + j]) ** 2;
      norm += want.w[i * 30 + j] ** 2;
    }
  }
  assert.ok(Math.sqrt(err / norm) <= 1e-12, `‖U·S·Vᵀ − W‖/‖W‖ = ${Math.sqrt(err / norm)}`);
});

test('DoRA magnitudes, lora_B biases and embedding LoRA are carried over; NaN names the module', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'dora');
  const g = rng(21);
  const normal = (shape: number[]): ReturnType<typeof tensor<'f32'>> => tensor('f32', shape, g.fillNormal(new Float32Array(shape[0] * (shape[1] ?? 1))));
  const q = 'model.layers.0.self_attn.q_proj';
  const emb = 'model.embed_tokens';
  const mods: LoraModuleTensors[] = [
    { name: q, A: normal([6, 24]), B: normal([24, 6]), magnitude: normal([24]) },
    { name: emb, kind: 'embedding', A: normal([6, 40]), B: normal([24, 6]) },
  ];
  const bias = { name: `base_model.model.${q}.lora_B.bias`, dtype: 'f32' as const, shape: [24], data: g.fillNormal(new Float32Array(24)) };
  const config = { r: 6, lora_alpha: 12, use_dora: true, target_modules: ['q_proj', 'embed_tokens'], lora_bias: true } as Partial<LoraConfig>;
  await writeAdapter(src, config, mods, { extra: [bias] });
  const out = join(dir, 'r2');
  await resizeAdapter({ adapter: src, out, rank: 2 });
  const [a, b] = [await openAdapter(src), await openAdapter(out)];
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.equal(b.config.use_dora, true);
  assert.equal((b.config as unknown as Record<string, unknown>).lora_bias, true, 'unknown config fields kept');
  for (const m of b.modules) {
    const old = a.modules.find((x) => x.name === m.name);
    assert.ok(old !== undefined);
    assert.equal(m.kind, old.kind);
    assert.equal(m.r, 2);
    assert.equal(m.scaling, 1);
    if (m.name === q) {
      assert.ok(m.magnitude !== undefined && m.bias !== undefined && old.magnitude !== undefined && old.bias !== undefined);
      assert.deepEqual((await b.read(m.magnitude.name)).data, (await a.read(old.magnitude.name)).data, 'magnitude unchanged');
      assert.deepEqual((await b.read(m.bias.name)).data, (await a.read(old.bias.name)).data, 'bias unchanged');
    } else {
      assert.equal(m.A.name, `base_model.model.${emb}.lora_embedding_A`);
      assert.deepEqual([m.A.shape, m.B.shape], [[2, 40], [24, 2]]);
    }
    // The new update against the rank-2 truncation of the old one (loraSvd is checked against numpy above).
    const ref = await loraSvd(await a.read(old.B.name), await a.read(old.A.name), old.scaling);
    const [nb, na] = [await b.readAs(m.B.name, 'f64'), await b.readAs(m.A.name, 'f64')];
    const [rows, cols] = [nb.shape[0], na.shape[1]];
    const qn = ref.s.data.length;
    let err = 0;
    let norm = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let best = 0;
        let full = 0;
        for (let p = 0; p < qn; p++) {
          const v = ref.u.data[i * qn + p] * ref.s.data[p] * ref.vt.data[p * cols + j];
          full += v;
          if (p < 2) best += v;
        }
        const got = nb.data[i * 2] * na.data[j] + nb.data[i * 2 + 1] * na.data[cols + j];
        err += (got - best) ** 2;
        norm += full ** 2;
      }
    }
    assert.ok(Math.sqrt(err) <= APPROX_TOL * Math.sqrt(norm), `${m.name}: ‖new − best_2‖/‖old‖ = ${Math.sqrt(err / norm)}`);
  }

  const nan = join(dir, 'nan');
  const bad = normal([6, 24]);
  bad.data[7] = NaN;
  await writeAdapter(nan, { r: 6, lora_alpha: 6 }, [{ name: q, A: bad, B: normal([24, 6]) }]);
  await assert.rejects(resizeAdapter({ adapter: nan, out: join(dir, 'nan-out'), rank: 2 }), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE' && e.message.includes(q));
});

test('bad options are E_USAGE errors and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'plain');
  await plantedAdapter(plain, PLAIN_CONFIG, PLAIN.slice(0, 2), 6);
  const out = join(dir, 'out');
  const bad: [string, Parameters<typeof resizeAdapter>[0]][] = [
    ['neither', { adapter: plain, out }],
    ['rank 0', { adapter: plain, out, rank: 0 }],
    ['rank 2.5', { adapter: plain, out, rank: 2.5 }],
    ['sv_ratio < 1', { adapter: plain, out, dynamic: { rule: 'sv_ratio', value: 0.5 } }],
    ['sv_fro > 1', { adapter: plain, out, dynamic: { rule: 'sv_fro', value: 1.5 } }],
    ['sv_cumulative 0', { adapter: plain, out, dynamic: { rule: 'sv_cumulative', value: 0 } }],
    ['unknown rule', { adapter: plain, out, dynamic: { rule: 'sv_knee' as 'sv_fro', value: 0.5 } }],
  ];
  for (const [what, opts] of bad) {
    await assert.rejects(resizeAdapter(opts), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE', what);
  }
  await assert.rejects(resizeAdapter({ adapter: join(dir, 'nope'), out, rank: 2 }), (e: unknown) => e instanceof LowrankError && e.code === 'E_NOT_FOUND');
  assert.deepEqual((await readdir(dir)).sort(), ['plain']);
});

test('lowrank resize: table, --json, --dynamic with a cap, --force, and one-line errors', async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'plain');
  await plantedAdapter(plain, PLAIN_CONFIG, PLAIN, 7);
  const out = join(dir, 'out');
  const r = cli(['resize', plain, '--out', out, '--rank', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /module\s+old r\s+new r\s+fro retained\s+sum retained/);
  assert.match(r.stdout, /model\.layers\.1\.self_attn\.q_proj\s+12\s+4\s+\d+\.\d%/);
  assert.match(r.stdout, /wrote .*: 6 modules, r = lora_alpha = 4/);

  const again = cli(['resize', plain, '--out', out, '--rank', '2']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists.*--force/);
  assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
  const a = await openAdapter(out);
  const stillR4 = a.config.r;
  await a.close();
  assert.equal(stillR4, 4, 'the existing output is untouched');

  const forced = cli(['resize', plain, '--out', out, '--dynamic', 'sv_fro:0.9', '--rank', '3', '--force', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  const json = JSON.parse(forced.stdout) as { r: number; modules: { name: string; newRank: number; froRetained: number }[] };
  assert.deepEqual(ranks(json), [2, 3, 1, 3, 3, 2]);
  assert.equal(json.r, 3);
  const lib = await resizeAdapter({ adapter: plain, out: join(dir, 'lib'), rank: 3, dynamic: { rule: 'sv_fro', value: 0.9 } });
  assert.deepEqual(json.modules.map((m) => m.froRetained), lib.modules.map((m) => m.froRetained), 'the CLI reports what the library computes');
  assert.deepEqual(await readFile(join(out, 'adapter_model.safetensors')), await readFile(join(dir, 'lib', 'adapter_model.safetensors')), 'and writes the same file');

  for (const [args, msg] of [
    [['resize', join(dir, 'missing'), '--out', join(dir, 'x'), '--rank', '2'], /adapter_config\.json/],
    [['resize', plain, '--out', join(dir, 'x')], /--rank r, --dynamic rule:value/],
    [['resize', plain, '--out', join(dir, 'x'), '--dynamic', 'sv_frob:0.9'], /is not one of sv_ratio:X/],
    [['resize', plain, '--out', join(dir, 'x'), '--dynamic', 'sv_fro:1.5'], /retained fraction in \(0, 1\]/],
  ] as const) {
    const e = cli([...args]);
    assert.equal(e.code, 1, `${args.join(' ')}: ${e.stderr}`);
    assert.match(e.stderr, msg);
    assert.equal(e.stderr.trim().split('\n').length, 1, `one line: ${e.stderr}`);
  }
  assert.ok(!(await readdir(dir)).includes('x'), 'nothing written on errors');
});
