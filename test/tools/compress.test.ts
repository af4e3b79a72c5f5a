import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compressModel, openCompressed, MANIFEST_FILE, type CompressManifest } from '../../src/tools/compress.js';
import { budgetRanks, chooseRanks, heavyTailRanks, layerCost, parsePolicy, type LayerSpectrum } from '../../src/tools/policy.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { writeModel } from '../../src/io/hf.js';
import type { TensorSource } from '../../src/io/safetensors/writer.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

// Tolerances against numpy's float64 SVD of the same f32 weights.
const ERR_TOL = 1e-5; // |reported relative error − numpy's √Σ_{i>k}σ²/‖W‖_F| (absolute)
const RECON_TOL = 1e-5; // ‖U·V − W_k‖_F / ‖W‖_F, W_k numpy's best rank-k approximation (f32 factors)

const SHAPE = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 40 };

const PY_ST = String.raw`
import json, os, struct, sys
def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']
        assert v['dtype'] == 'F32', v['dtype']
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f4').reshape(v['shape'])
    return out
`;

/** Planted weights (numpy, seeded): σ = [8, 4, 2, 1] + a 1e-3·0.9^i tail, except down_proj's flat spectrum. */
function plantedWeights(): Record<string, { shape: number[]; data: number[] }> {
  const specs = llamaTensors(SHAPE).filter((s) => s.shape.length === 2 && !s.name.includes('embed') && !s.name.includes('lm_head'));
  return pythonJson(
    String.raw`
import json, sys
specs = json.loads(sys.stdin.read())
rs = np.random.default_rng(7)
out = {}
for s in specs:
    m, n = s['shape']; q = min(m, n)
    sig = np.array([1.0] * q) if 'down_proj' in s['name'] else np.concatenate([[8, 4, 2, 1], 1e-3 * 0.9 ** np.arange(q - 4)])
    u, _ = np.linalg.qr(rs.standard_normal((m, q)))
    v, _ = np.linalg.qr(rs.standard_normal((n, q)))
    out[s['name']] = {'shape': [m, n], 'data': ((u * sig) @ v.T).astype(np.float32).astype(float).ravel().tolist()}
print(json.dumps(out))
`,
    [],
    JSON.stringify(specs),
  );
}

async function makeModel(dir: string): Promise<string> {
  const planted = plantedWeights();
  const specs = llamaTensors(SHAPE);
  const sources: TensorSource[] = randomWeights(specs, { seed: 3, dtype: 'f32' }).map((s) => {
    const p = planted[s.name] as { shape: number[]; data: number[] } | undefined;
    return p === undefined ? s : { ...s, data: Float32Array.from(p.data) };
  });
  const path = join(dir, 'model');
  await writeModel(path, sources, { config: llamaConfig(SHAPE, 'float32') });
  return path;
}

interface Check {
  modules: Record<string, { k: number; err: number; recon: number; shape: number[] }>;
  unchanged: boolean;
  names: string[];
}

/** numpy's reference for an output folder: per factored module, its error and reconstruction error; the other tensors' equality. */
function check(input: string, out: string, materialized: boolean): Check {
  return pythonJson<Check>(
    PY_ST +
      String.raw`
src = load(os.path.join(sys.argv[1], 'model.safetensors'))
dst = load(os.path.join(sys.argv[2], 'model.safetensors'))
man = json.load(open(os.path.join(sys.argv[2], 'lowrank_manifest.json')))
mat = sys.argv[3] == '1'
res = {}
replaced = set()
for mod, e in man['modules'].items():
    w = src[e['weight']].astype(np.float64); k = e['rank']
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    wk = (u[:, :k] * s[:k]) @ vt[:k]
    if mat:
        got = dst[e['weight']].astype(np.float64); replaced.add(e['weight'])
    else:
        got = dst[e['U']].astype(np.float64) @ dst[e['V']].astype(np.float64); replaced |= {e['U'], e['V']}
        assert dst[e['U']].shape == (w.shape[0], k) and dst[e['V']].shape == (k, w.shape[1])
    nw = np.linalg.norm(w)
    res[mod] = {'k': k, 'err': float(np.sqrt(np.sum(s[k:] ** 2)) / nw), 'recon': float(np.linalg.norm(got - wk) / nw), 'shape': list(got.shape)}
same = all(np.array_equal(src[n], dst[n]) for n in dst if n not in replaced)
print(json.dumps({'modules': res, 'unchanged': bool(same), 'names': sorted(dst.keys())}))
`,
    [input, out, materialized ? '1' : '0'],
  );
}

// Planted spectra for the policy checks: decays of different speeds, shapes and scales.
function spectra(): LayerSpectrum[] {
  const r = rng(11);
  const shapes: [number, number][] = [[64, 64], [32, 96], [96, 32], [48, 48], [16, 64], [80, 40]];
  return shapes.map(([m, n], i) => {
    const q = Math.min(m, n);
    const rate = 0.05 + 0.08 * i;
    const scale = 10 ** (i % 3);
    const s = Array.from({ length: q }, (_, j) => scale * Math.exp(-rate * j) * (1 + 0.05 * r.uniform()));
    s.sort((a, b) => b - a);
    return { m, n, sigma: Float64Array.from(s) };
  });
}

test('policies: rank, ratio, energy, budget and heavy-tail ranks equal numpy references on planted spectra', () => {
  const layers = spectra();
  const policies = ['rank:20', 'ratio:0.3', 'ratio:0.5', 'energy:0.9', 'energy:0.99', 'budget:0.3', 'budget:0.6', 'heavy-tail', 'heavy-tail:0.3'];
  const ours = Object.fromEntries(policies.map((p) => [p, chooseRanks(parsePolicy(p), layers)]));
  const ref = pythonJson<Record<string, number[]>>(
    String.raw`
import json, math, sys
d = json.loads(sys.stdin.read())
L = [(l['m'], l['n'], np.array(l['s'])) for l in d['layers']]
useful = lambda m, n: math.ceil(m * n / (m + n)) - 1
cost = lambda k, m, n: k * (m + n) if k * (m + n) < m * n else m * n
def policy(p):
    kind, _, v = p.partition(':')
    if kind == 'rank': return [min(int(v), m, n) for m, n, s in L]
    if kind == 'ratio': return [max(1, math.ceil(round(float(v) * min(m, n), 9))) for m, n, s in L]
    if kind == 'energy':
        return [int(np.argmax(np.cumsum(s ** 2) / np.sum(s ** 2) >= float(v))) + 1 for m, n, s in L]
    f = float(v) if v else 0.5
    budget = f * sum(m * n for m, n, s in L)
    if kind == 'budget':
        ks = [1] * len(L); alive = [True] * len(L); used = sum(cost(1, m, n) for m, n, s in L)
        while True:
            best, bi = -1.0, -1
            for i, (m, n, s) in enumerate(L):
                if alive[i] and ks[i] < min(useful(m, n), len(s)):
                    r = s[ks[i]] ** 2 / np.sum(s ** 2) / (m + n)
                    if r > best: best, bi = r, i
            if bi < 0: break
            m, n, s = L[bi]
            if used + m + n <= budget: ks[bi] += 1; used += m + n
            else: alive[bi] = False
        return ks
    normed = [s / s[0] for m, n, s in L]
    for tau in sorted(set(np.concatenate(normed).tolist())):
        ks = [max(1, int(np.sum(v >= tau))) for v in normed]
        if sum(cost(k, m, n) for k, (m, n, s) in zip(ks, L)) <= budget:
            return [k if cost(k, m, n) < m * n else min(m, n) for k, (m, n, s) in zip(ks, L)]
print(json.dumps({p: policy(p) for p in d['policies']}))
`,
    [],
    JSON.stringify({ layers: layers.map((l) => ({ m: l.m, n: l.n, s: Array.from(l.sigma) })), policies }),
  );
  for (const p of policies) assert.deepEqual(ours[p], ref[p], p);
  // The budget holds, and the greedy choice differs from uniform ranks.
  for (const f of [0.3, 0.6]) {
    const ks = budgetRanks(layers, f);
    const used = ks.reduce((s, k, i) => s + layerCost(k, layers[i].m, layers[i].n), 0);
    assert.ok(used <= f * layers.reduce((s, l) => s + l.m * l.n, 0), `budget:${f} used ${used}`);
    assert.ok(new Set(ks).size > 1);
  }
  const ht = heavyTailRanks(layers, 0.3);
  assert.ok(ht.reduce((s, k, i) => s + layerCost(k, layers[i].m, layers[i].n), 0) <= 0.3 * layers.reduce((s, l) => s + l.m * l.n, 0));
  for (const bad of ['rank:0', 'ratio:1.5', 'energy:0', 'budget:x', 'svd:3', 'energy']) assert.throws(() => parsePolicy(bad), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE', bad);
  assert.throws(() => budgetRanks(layers, 0.001), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
});

test('compressModel: factors, errors against numpy, skipped layers, manifest read back, --materialize', async (t) => {
  const dir = await tempDir(t);
  const model = await makeModel(dir);

  const out = join(dir, 'energy');
  const steps: string[] = [];
  const rep = await compressModel({ model, policy: parsePolicy('energy:0.999'), out, onTensor: (name) => steps.push(name) });
  assert.equal(steps.length, 7); // one pass: each layer's energy is met as it is decomposed
  assert.equal(rep.layers.length, 7);
  for (const l of rep.layers) {
    if (l.module.endsWith('down_proj')) {
      assert.equal(l.factored, false, 'a flat 32×64 spectrum needs rank 32 ≥ 21.3: no saving');
      assert.equal(l.rank, 32);
    } else {
      assert.equal(l.rank, 4, l.module);
      assert.equal(l.factored, true);
    }
  }
  const ref = check(model, out, false);
  assert.ok(ref.unchanged, 'untouched tensors are copied byte for byte');
  assert.equal(Object.keys(ref.modules).length, 6);
  assert.ok(ref.names.includes('model.layers.0.mlp.down_proj.weight') && !ref.names.includes('model.layers.0.mlp.up_proj.weight'));
  for (const l of rep.layers.filter((x) => x.factored)) {
    const r = ref.modules[l.module];
    assert.ok(Math.abs(l.relativeError - r.err) <= ERR_TOL, `${l.module}: error ${l.relativeError} vs numpy ${r.err}`);
    assert.ok(r.recon <= RECON_TOL, `${l.module}: ‖UV − W_k‖/‖W‖ = ${r.recon}`);
  }
  const tb = 4 * 32 * 32 + 2 * 16 * 32 + 2 * 64 * 32 + 32 * 64 - 2 * 32 * 32; // q, o [32,32]; k, v [16,32]; gate, up [64,32]; down [32,64]
  assert.equal(rep.parameters.targeted.before, tb);
  assert.equal(rep.parameters.targeted.after, 4 * 64 * 2 + 4 * 48 * 2 + 4 * 96 * 2 + 32 * 64);
  assert.equal(rep.parameters.total.before - rep.parameters.total.after, rep.parameters.targeted.before - rep.parameters.targeted.after);

  const man = JSON.parse(await readFile(join(out, MANIFEST_FILE), 'utf8')) as CompressManifest;
  assert.equal(man.format, 'lowrank-svd');
  assert.equal(man.version, 1);
  assert.equal(man.policy, 'energy:0.999');
  assert.deepEqual(Object.keys(man.skipped), ['model.layers.0.mlp.down_proj']);
  const q = man.modules['model.layers.0.self_attn.q_proj'];
  assert.deepEqual([q.shape, q.rank, q.U, q.V], [[32, 32], 4, 'model.layers.0.self_attn.q_proj.lowrank_U', 'model.layers.0.self_attn.q_proj.lowrank_V']);

  // Read back: U·V through openCompressed equals the factors' product numpy checked.
  const c = await openCompressed(out);
  try {
    const w = await c.weight('model.layers.0.self_attn.q_proj.weight');
    const { u, v } = await c.factors('model.layers.0.self_attn.q_proj');
    assert.deepEqual([w.shape, u.shape, v.shape], [[32, 32], [32, 4], [4, 32]]);
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < 32; i++) {
      for (let j = 0; j < 32; j++) {
        let x = 0;
        for (let r = 0; r < 4; r++) x += u.data[i * 4 + r] * v.data[r * 32 + j];
        diff = Math.max(diff, Math.abs(x - w.data[i * 32 + j]));
        norm = Math.max(norm, Math.abs(x));
      }
    }
    assert.ok(diff <= 1e-6 * norm, `weight() vs U·V: ${diff}`);
    assert.equal((await c.weight('model.layers.0.mlp.down_proj.weight')).shape[1], 64);
  } finally {
    await c.close();
  }

  // svd: 'exact' takes today's two passes (all spectra, then the factors) to the same ranks and errors.
  const exactOut = join(dir, 'energy-exact');
  const exactSteps: string[] = [];
  const repExact = await compressModel({ model, policy: parsePolicy('energy:0.999'), out: exactOut, svd: 'exact', onTensor: (name) => exactSteps.push(name) });
  assert.equal(exactSteps.length, 2 * 7 - 1); // the skipped layer needs no factors
  const refExact = check(model, exactOut, false);
  for (const l of repExact.layers) {
    assert.equal(l.rank, rep.layers.find((x) => x.module === l.module)?.rank, l.module);
    if (l.factored) assert.ok(Math.abs(l.relativeError - refExact.modules[l.module].err) <= ERR_TOL, `${l.module}: exact error ${l.relativeError} vs numpy ${refExact.modules[l.module].err}`);
  }

  // The output exists: refused without overwrite, before any work.
  await assert.rejects(compressModel({ model, policy: parsePolicy('rank:2'), out }), (e: unknown) => e instanceof LowrankError && e.code === 'E_EXISTS');

  // --materialize at rank 2: dense f32 weights of the same names and shapes, with numpy's error.
  const dense = join(dir, 'dense');
  const rep2 = await compressModel({ model, policy: parsePolicy('rank:2'), out: dense, materialize: true, targets: 'self_attn' });
  assert.equal(rep2.layers.length, 4);
  assert.equal(rep2.parameters.total.after, rep2.parameters.total.before);
  const ref2 = check(model, dense, true);
  assert.ok(ref2.unchanged);
  assert.ok(ref2.names.includes('model.layers.0.self_attn.q_proj.weight') && !ref2.names.some((n) => n.includes('lowrank_')));
  for (const l of rep2.layers) {
    const r = ref2.modules[l.module];
    assert.deepEqual(r.shape, [...l.shape]);
    assert.ok(Math.abs(l.relativeError - r.err) <= ERR_TOL, `${l.module}: ${l.relativeError} vs ${r.err}`);
    assert.ok(Math.abs(r.err - Math.sqrt(5 / 85)) <= 1e-4, `rank 2 of the planted [8, 4, 2, 1, ~0]: error ≈ √(5/85), got ${r.err}`);
    assert.ok(r.recon <= RECON_TOL, `${l.module}: dense ‖W_out − W_2‖/‖W‖ = ${r.recon}`);
  }
});

test('lowrank compress: table and totals, refuses an existing --out without --force, one-line errors', async (t) => {
  const dir = await tempDir(t);
  const model = await makeModel(dir);
  const out = join(dir, 'out');
  const ok = cli(['compress', model, '--policy', 'budget:0.5', '--out', out]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /model\.layers\.0\.self_attn\.q_proj/);
  assert.match(ok.stdout, /total parameters/);
  const again = cli(['compress', model, '--policy', 'rank:2', '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists/);
  assert.equal(again.stderr.trim().split('\n').length, 1);
  const forced = cli(['compress', model, '--policy', 'heavy-tail', '--out', out, '--force', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  const rep = JSON.parse(forced.stdout) as { parameters: { targeted: { before: number; after: number } } };
  assert.ok(rep.parameters.targeted.after <= 0.5 * rep.parameters.targeted.before);
  const bad = cli(['compress', model, '--policy', 'energy:2', '--out', join(dir, 'x')]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});
