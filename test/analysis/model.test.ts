/**
 * analyzeModel and `lowrank analyze` on a generated tiny Llama folder (bf16), a fine-tuned copy of
 * it with planted changes (an intruder, a rescaled matrix, a removed, a resized and an added
 * tensor) and a PEFT adapter for it: every matrix is analyzed as analyzeMatrix analyzes it alone,
 * comparisons find what was planted, unmatched tensors are listed, and the CLI prints the table and
 * writes the JSON.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../../src/io/synthetic.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { writeAdapter, type LoraModuleTensors } from '../../src/io/peft.js';
import type { TensorSource } from '../../src/io/safetensors/writer.js';
import * as linalg from '../../src/linalg/index.js';
import { analyzeMatrix, analyzeModel, compareAdapter, compareMatrices, layerIndex, moduleName, type ModelAnalysis } from '../../src/analysis/index.js';
import { pythonJson } from '../helpers/python.js';
import { cli } from '../helpers/cli.js';

const SHAPE: LlamaShape = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 256 };
const Q0 = 'model.layers.0.self_attn.q_proj.weight';
const V1 = 'model.layers.1.self_attn.v_proj.weight';
const UP1 = 'model.layers.1.mlp.up_proj.weight';
const EMBED = 'model.embed_tokens.weight';
const EXTRA = 'model.extra.proj.weight';

let root = '';
let baseDir = '';
let tunedDir = '';
let adapterDir = '';
let loraModules: LoraModuleTensors[] = [];

/** W0 + 3σ₁·x·yᵀ with x, y spread evenly over W0's bottom 48 singular directions (so x is an intruder). */
async function withIntruder(w0: Tensor<'f32'>): Promise<Float32Array> {
  const [m, n] = w0.shape;
  const w = tensor('f64', [m, n], Float64Array.from(w0.data));
  const { u, s, vt } = await linalg.svd(w);
  const k = s.data.length;
  const x = new Float64Array(m);
  const y = new Float64Array(n);
  for (let t = k - 48; t < k; t++) {
    for (let i = 0; i < m; i++) x[i] += u.data[i * k + t] / Math.sqrt(48);
    for (let j = 0; j < n; j++) y[j] += vt.data[t * n + j] / Math.sqrt(48);
  }
  const c = 3 * s.data[0];
  return Float32Array.from(w0.data, (v, idx) => v + c * x[Math.floor(idx / n)] * y[idx % n]);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'lowrank-analysis-'));
  baseDir = join(root, 'base');
  tunedDir = join(root, 'tuned');
  adapterDir = join(root, 'lora');
  await writeModel(baseDir, randomWeights(llamaTensors(SHAPE), { seed: 7, dtype: 'bf16' }), { config: llamaConfig(SHAPE) });

  const base = await openModel(baseDir);
  const tuned: TensorSource[] = [];
  try {
    for (const t of base.tensors) {
      if (t.name === UP1) continue;
      const w = await base.readAs(t.name, 'f32');
      let data = w.data;
      let shape = t.shape;
      if (t.name === Q0) data = await withIntruder(w);
      else if (t.name === V1) data = Float32Array.from(w.data, (v) => 1.1 * v);
      else if (t.name === EMBED) {
        shape = [260, 64];
        data = new Float32Array(260 * 64);
        data.set(w.data);
      }
      tuned.push({ name: t.name, dtype: 'f32', shape, data });
    }
  } finally {
    await base.close();
  }
  tuned.push({ name: EXTRA, dtype: 'f32', shape: [8, 8], data: rng(3).fillNormal(new Float32Array(64)) });
  await writeModel(tunedDir, tuned, { config: llamaConfig({ ...SHAPE, vocab_size: 260 }) });

  const g = rng(11);
  const r = 4;
  loraModules = [0, 1].flatMap((l) =>
    (['q_proj', 'v_proj'] as const).map((p) => {
      const out = p === 'q_proj' ? 64 : 32;
      return {
        name: `model.layers.${l}.self_attn.${p}`,
        A: tensor('f32', [r, 64], g.fillNormal(new Float32Array(r * 64), 0, 0.1)),
        B: tensor('f32', [out, r], g.fillNormal(new Float32Array(out * r), 0, 0.1)),
      };
    }),
  );
  const ghost = { name: 'model.layers.7.self_attn.q_proj', A: tensor('f32', [r, 64]), B: tensor('f32', [64, r]) };
  await writeAdapter(adapterDir, { r, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }, [...loraModules, ghost]);
});

after(() => rm(root, { recursive: true, force: true }));

const MATRICES = 2 + 7 * SHAPE.num_hidden_layers; // embeddings, lm_head, seven projections per layer

test('every matrix of a model is analyzed as analyzeMatrix analyzes it alone; 1-D tensors are skipped; names, modules and layers', async () => {
  const seen: string[] = [];
  const a = await analyzeModel(baseDir, { onTensor: (name, i, n) => seen.push(`${i}/${n} ${name}`) });
  assert.equal(a.layers.length, MATRICES);
  assert.equal(seen.length, MATRICES);
  assert.equal(seen[0], `0/${MATRICES} lm_head.weight`);
  assert.equal(a.skipped.length, 2 * SHAPE.num_hidden_layers + 1);
  assert.ok(a.skipped.every((s) => s.reason === '1-D' && s.shape.length === 1));
  assert.deepEqual(a.unmatched, []);
  assert.equal(a.summary.comparison, undefined);
  const model = await openModel(baseDir);
  try {
    for (const l of a.layers) {
      assert.deepEqual(l.spectrum, await analyzeMatrix(await model.readAs(l.name, 'f32')), l.name);
      assert.equal(l.comparison, undefined);
      assert.equal(l.dtype, 'bf16');
    }
  } finally {
    await model.close();
  }
  const q = a.layers.find((l) => l.name === 'model.layers.1.self_attn.q_proj.weight');
  assert.equal(q?.module, 'q_proj');
  assert.equal(q?.layer, 1);
  const head = a.layers.find((l) => l.name === 'lm_head.weight');
  assert.equal(head?.layer, null);
  assert.equal(head?.module, 'lm_head');
  assert.equal(layerIndex('transformer.h.11.attn.c_attn.weight'), 11);
  assert.equal(moduleName('model.layers.3.mlp.down_proj.weight'), 'down_proj');
  // Layer numbers in numeric order.
  const names = a.layers.map((l) => l.name);
  assert.ok(names.indexOf('model.layers.0.self_attn.v_proj.weight') < names.indexOf('model.layers.1.mlp.down_proj.weight'));

  const s = a.summary;
  assert.equal(s.matrices, MATRICES);
  assert.equal(s.tensors, MATRICES + a.skipped.length);
  assert.equal(s.parameters, a.layers.reduce((x, l) => x + l.spectrum.shape[0] * l.spectrum.shape[1], 0));
  const alphas = a.layers.flatMap((l) => (l.spectrum.alpha === null ? [] : [l.spectrum.alpha]));
  assert.equal(s.withAlpha, alphas.length);
  assert.ok(s.meanAlpha !== null && Math.abs(s.meanAlpha - alphas.reduce((x, y) => x + y, 0) / alphas.length) < 1e-12);
  assert.ok(a.layers.filter((l) => l.spectrum.shape[1] === 64 && l.spectrum.shape[0] === 32).every((l) => l.spectrum.alpha === null), 'k/v_proj have 32 eigenvalues');

  // One matrix end to end against numpy on the bf16 bits read by python.
  const ref = pythonJson<{ sigmaMax: number; stableRank: number }>(`import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
e = json.loads(raw[8:8 + n])['lm_head.weight']
b, f = e['data_offsets']
bits = np.frombuffer(raw[8 + n + b:8 + n + f], dtype='<u2').astype(np.uint32) << 16
w = bits.view(np.float32).astype(np.float64).reshape(e['shape'])
s = np.linalg.svd(w, compute_uv=False)
print(json.dumps({'sigmaMax': s[0], 'stableRank': float(np.sum(s ** 2) / s[0] ** 2)}))`, [join(baseDir, 'model.safetensors')]);
  assert.ok(head !== undefined && Math.abs(head.spectrum.sigmaMax - ref.sigmaMax) <= 1e-5 * ref.sigmaMax);
  assert.ok(Math.abs(head.spectrum.stableRank - ref.stableRank) <= 1e-4 * ref.stableRank);

  const only = await analyzeModel(baseDir, { targets: 'self_attn\\.q_proj' });
  assert.deepEqual(only.layers.map((l) => l.name), ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight']);
  assert.equal(only.skipped.length, 0);
});

test('a fine-tuned copy against its base: the planted intruder, the rescaled matrix, identical matrices, and unmatched tensors listed', async () => {
  const a = await analyzeModel(tunedDir, { compare: baseDir });
  assert.equal(a.compare, baseDir);
  assert.equal(a.layers.length, MATRICES - 1 + 1);
  const by = new Map(a.layers.map((l) => [l.name, l]));
  const q = by.get(Q0)?.comparison;
  assert.ok(q !== undefined);
  assert.equal(q.intruders.count, 1, `max cosines ${q.intruders.maxCosines}`);
  assert.deepEqual(q.intruders.indices, [0]);
  assert.equal(q.update.numericalRank, 1);
  assert.equal(by.get(Q0)?.spectrum, q.tuned, 'the model analyzed is the tuned one');
  const v = by.get(V1)?.comparison;
  assert.ok(v !== undefined && !v.identical);
  assert.equal(v.intruders.count, 0);
  assert.ok(v.relativeUpdate !== null && Math.abs(v.relativeUpdate - 0.1) < 1e-3);
  for (const l of a.layers) {
    if (l.name === Q0 || l.name === V1) continue;
    if (l.name === EMBED || l.name === EXTRA) assert.equal(l.comparison, undefined, l.name);
    else assert.equal(l.comparison?.identical, true, l.name);
  }
  assert.deepEqual(
    [...a.unmatched].sort((x, y) => (x.name < y.name ? -1 : 1)),
    [
      { name: EMBED, reason: 'shape [260, 64] here, [256, 64] in the base model' },
      { name: EXTRA, reason: 'not in the base model' },
      { name: UP1, reason: 'only in the base model' },
    ],
  );
  const c = a.summary.comparison;
  assert.deepEqual(c && { compared: c.compared, unmatched: c.unmatched, changed: c.changed, intruders: c.intruders, layersWithIntruders: c.layersWithIntruders }, {
    compared: MATRICES - 2, unmatched: 3, changed: 2, intruders: 1, layersWithIntruders: 1,
  });

  // The same numbers as comparing the two tensors directly.
  const [m0, m1] = [await openModel(baseDir), await openModel(tunedDir)];
  try {
    const direct = await compareMatrices(await m0.readAs(Q0, 'f32'), await m1.readAs(Q0, 'f32'));
    assert.deepEqual(q, direct);
  } finally {
    await Promise.all([m0.close(), m1.close()]);
  }
});

test('an adapter on the base: each adapted matrix against itself plus scaling·B·A (checked against the dense product); a module without a weight is unmatched', async () => {
  const a = await analyzeModel(baseDir, { adapter: adapterDir });
  const compared = a.layers.filter((l) => l.comparison !== undefined);
  assert.deepEqual(compared.map((l) => l.name).sort(), loraModules.map((m) => `${m.name}.weight`).sort());
  assert.deepEqual(a.unmatched, [{ name: 'model.layers.7.self_attn.q_proj', reason: 'adapter module has no weight model.layers.7.self_attn.q_proj.weight in the model' }]);
  const model = await openModel(baseDir);
  try {
    for (const mod of loraModules) {
      const rec = compared.find((l) => l.name === `${mod.name}.weight`);
      const c = rec?.comparison;
      assert.ok(rec !== undefined && c !== undefined);
      assert.equal(rec.spectrum, c.base, 'the model analyzed is the base');
      assert.equal(c.update.numericalRank, 4);
      const w0 = await model.readAs(rec.name, 'f32');
      assert.deepEqual(c, await compareAdapter(w0, { A: mod.A, B: mod.B, scaling: 2 }));
      // Dense: W0 + 2·B·A formed here.
      const [m, n] = w0.shape;
      const w1 = tensor('f32', [m, n]);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let t = 0; t < 4; t++) acc += (mod.B.data as Float32Array)[i * 4 + t] * (mod.A.data as Float32Array)[t * n + j];
          w1.data[i * n + j] = w0.data[i * n + j] + 2 * acc;
        }
      const d = await compareMatrices(w0, w1);
      assert.ok(Math.abs(c.update.sigmaMax - d.update.sigmaMax) <= 1e-5 * d.update.sigmaMax, `${rec.name}: update σmax ${c.update.sigmaMax} vs dense ${d.update.sigmaMax}`);
      assert.ok(Math.abs(c.tuned.stableRank - d.tuned.stableRank) <= 1e-4 * d.tuned.stableRank);
      assert.equal(c.intruders.count, d.intruders.count);
    }
  } finally {
    await model.close();
  }
  assert.equal(a.summary.comparison?.compared, 4);
  assert.equal(a.summary.comparison?.changed, 4);
});

test('bad options are usage errors', async () => {
  await assert.rejects(analyzeModel(baseDir, { compare: baseDir, adapter: adapterDir }), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
  await assert.rejects(analyzeModel(baseDir, { targets: '(' }), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE');
  await assert.rejects(analyzeModel(join(root, 'nothing')), (e: unknown) => e instanceof LowrankError && e.code === 'E_NOT_FOUND');
});

test('lowrank analyze: the table and summary, --compare, --adapter, --json (refuses to overwrite without --force), --fast; bad input exits 1 with one line', async () => {
  const plain = cli(['analyze', baseDir]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /name\s+shape\s+σmax\s+stable rank\s+eff\. rank\s+r99\s+alpha\s+warning\n/);
  assert.match(plain.stdout, /model\.layers\.1\.mlp\.down_proj\.weight\s+64×128\s+/);
  assert.match(plain.stdout, /model\.layers\.0\.self_attn\.k_proj\.weight\s+32×64\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+-/, 'no α for 32 eigenvalues');
  assert.match(plain.stdout, /summary:\n\s+16 of 21 tensors analyzed as matrices/);

  const out = join(root, 'analysis.json');
  const cmp = cli(['analyze', tunedDir, '--compare', baseDir, '--json', out]);
  assert.equal(cmp.code, 0, cmp.stderr);
  assert.match(cmp.stdout, /Δ rank\s+intruders\n/);
  assert.match(cmp.stdout, new RegExp(`${Q0.replace(/\./g, '\\.')}\\s+64×64 .*\\s1\\s+1\\n`));
  assert.match(cmp.stdout, /compared 14 matrices: 2 changed, .*1 intruder dimension .* in 1 matrix/);
  assert.match(cmp.stdout, /unmatched \(3, /);
  const json = JSON.parse(await readFile(out, 'utf8')) as ModelAnalysis;
  assert.equal(json.layers.length, MATRICES);
  assert.ok(json.layers.every((l) => typeof l.spectrum.stableRank === 'number' && l.spectrum.energyRanks.r99 !== undefined));
  assert.equal(json.layers.find((l) => l.name === Q0)?.comparison?.intruders.count, 1);
  assert.equal(json.summary.comparison?.intruders, 1);

  const again = cli(['analyze', tunedDir, '--compare', baseDir, '--json', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^lowrank: error: .*analysis\.json: output already exists \(pass --force \/ overwrite: true to replace it\)\n$/);
  const forced = cli(['analyze', baseDir, '--json', out, '--force', '--fast']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal((JSON.parse(await readFile(out, 'utf8')) as ModelAnalysis).fast, true);

  const lora = cli(['analyze', baseDir, '--adapter', adapterDir, '--targets', 'self_attn']);
  assert.equal(lora.code, 0, lora.stderr);
  assert.match(lora.stdout, /model\.layers\.0\.self_attn\.q_proj\.weight\s+64×64 .*\s4\s+\d+\n/);
  assert.match(lora.stdout, /model\.layers\.0\.self_attn\.o_proj\.weight\s+64×64 .*\n/);

  for (const args of [['analyze', join(root, 'missing')], ['analyze', baseDir, '--targets', '('], ['analyze', baseDir, '--compare', baseDir, '--adapter', adapterDir], ['analyze', baseDir, '--compare', join(root, 'missing')]]) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^lowrank: error: [^\n]+\n$/, args.join(' '));
  }
});
