import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeModel } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import type { CausalLm } from '../../src/nn/causalLm.js';
import { attachAdapter, evaluate, saveTrainedAdapter, train, type TrainOptions } from '../../src/train/loop.js';
import { mergeAdapters } from '../../src/tools/merge.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { tempDir } from '../helpers/tmp.js';
import { load, sequences, SHAPE, TOKENIZER, writeTinyGpt2 } from '../helpers/tinyLlama.js';
import { cli } from '../helpers/cli.js';
import { openAdapter } from '../../src/io/peft.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { copyFile, writeFile } from 'node:fs/promises';


async function model(dir: string): Promise<CausalLm<'f64'>> {
  await writeModel(dir, randomWeights(llamaTensors(SHAPE), { seed: 2, dtype: 'f32', std: 0.2 }), { config: llamaConfig(SHAPE, 'float32') });
  return load(dir);
}

/** A tiny GPT-2 (Conv1D weights stored [in, out]) over the fixture tokenizer's vocabulary. */
async function gpt2(dir: string): Promise<CausalLm<'f64'>> {
  await writeTinyGpt2(dir);
  return load(dir);
}

const OPTS: TrainOptions = { method: 'lora', rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'], steps: 25, batch: 2, lr: 2e-2, warmup: 2, clip: 1, seed: 1 };

test('LoRA training lowers the loss on a repeated toy text; evaluation reports loss and perplexity = exp(loss)', async (t) => {
  const m = await model(join(await tempDir(t), 'm'));
  const data = await sequences();
  const adapter = await attachAdapter(m, OPTS);
  assert.equal(adapter.modules.size, 6);
  const before = await evaluate(m, data, 4);
  const losses = await train(m, adapter, data, OPTS);
  const after = await evaluate(m, data, 4);
  assert.equal(losses.length, 25);
  assert.ok(after.loss < 0.8 * before.loss, `eval loss ${before.loss} → ${after.loss}`);
  assert.ok(Math.abs(after.perplexity - Math.exp(after.loss)) <= 1e-9 * after.perplexity);
});

test('PiSSA starts where the base model is (same eval loss) and trains as LoRA over the residual', async (t) => {
  const root = await tempDir(t);
  const data = await sequences();
  const base = await model(join(root, 'a'));
  const ref = await evaluate(base, data, 4);
  const m = await model(join(root, 'b'));
  const opts = { ...OPTS, method: 'pissa', steps: 10 };
  const adapter = await attachAdapter(m, opts);
  const start = await evaluate(m, data, 4);
  assert.ok(Math.abs(start.loss - ref.loss) <= 1e-9 * ref.loss, `${start.loss} vs ${ref.loss}`);
  const losses = await train(m, adapter, data, opts);
  assert.ok(losses[losses.length - 1] < losses[0], `${losses[0]} → ${losses[losses.length - 1]}`);
});

test('gradient accumulation: 2 micro-batches of 1 take the same step as one batch of 2', async (t) => {
  const root = await tempDir(t);
  const data = await sequences();
  const run = async (dir: string, batch: number, accumulate: number) => {
    const m = await model(join(root, dir));
    const opts = { ...OPTS, steps: 1, batch, accumulate, clip: undefined };
    const adapter = await attachAdapter(m, opts);
    await train(m, adapter, data, opts);
    return [...adapter.modules.values()].flatMap(({ term }) => Object.values(term.params).flatMap((p) => [...p.data]));
  };
  const [a, b] = [await run('x', 2, 1), await run('y', 1, 2)];
  const diff = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  assert.ok(diff <= 1e-12, `max difference ${diff}`);
});

// Each method's export (a PEFT LoRA, DoRA for dora) on the original base, merged into it, scores
// as the trained model: PiSSA-style as rank 2r with alpha doubled, SVFit/LoLDU as U·diag(Δ)·V.
const EXPORTS: readonly { method: string; r: number; alpha: number; dora?: boolean }[] = [
  { method: 'lora', r: 4, alpha: 8 },
  { method: 'pissa', r: 8, alpha: 16 },
  { method: 'olora', r: 8, alpha: 16 },
  { method: 'dora', r: 4, alpha: 8, dora: true },
  { method: 'svfit', r: 4, alpha: 4 },
  { method: 'loldu', r: 4, alpha: 4 },
];
for (const want of EXPORTS) {
  test(`a trained ${want.method} adapter is saved as a PEFT ${want.dora === true ? 'DoRA' : 'LoRA'} (r ${want.r}, alpha ${want.alpha}) on the original base: merged into it, the model scores as trained`, async (t) => {
    const root = await tempDir(t);
    const data = await sequences();
    const m = await model(join(root, 'base'));
    // svfit keeps every singular value here (energy 1), so its rank is the one asked for.
    const opts = { ...OPTS, method: want.method, steps: 8, ...(want.method === 'svfit' ? { energy: 1 } : {}) };
    const adapter = await attachAdapter(m, opts);
    const before = await evaluate(m, data, 4);
    const losses = await train(m, adapter, data, opts);
    const trained = await evaluate(m, data, 4);
    assert.ok(trained.loss < before.loss, `${want.method}: eval loss ${before.loss} → ${trained.loss} (train ${losses[0]} → ${losses[losses.length - 1]})`);
    const config = await saveTrainedAdapter(adapter, join(root, 'adapter'), { baseModel: join(root, 'base') });
    assert.equal(config.r, want.r);
    assert.equal(config.lora_alpha, want.alpha);
    assert.equal(config.use_dora, want.dora === true);
    await mergeAdapters({ base: join(root, 'base'), adapters: [{ dir: join(root, 'adapter') }], out: join(root, 'merged') });
    const got = await evaluate(await load(join(root, 'merged')), data, 4);
    // The merged weights are rounded once to float32 on disk.
    assert.ok(Math.abs(got.loss - trained.loss) <= 1e-5 * trained.loss, `${got.loss} vs ${trained.loss}`);
  });
}

// GPT-2 stores its Conv1D weights [in, out]: the saved adapter says fan_in_fan_out, and merging it
// into the stored (untransposed) base gives the trained model.
for (const method of ['lora', 'pissa', 'dora']) {
  test(`GPT-2: ${method} on c_attn and c_proj trains, saves with fan_in_fan_out, and merged into the [in, out] base scores as trained`, async (t) => {
    const root = await tempDir(t);
    const data = await sequences();
    const m = await gpt2(join(root, 'base'));
    const opts = { ...OPTS, method, targets: ['c_attn', 'c_proj'], steps: 8 };
    const adapter = await attachAdapter(m, opts);
    assert.equal(adapter.modules.size, 6);
    const before = await evaluate(m, data, 4);
    await train(m, adapter, data, opts);
    const trained = await evaluate(m, data, 4);
    assert.ok(trained.loss < before.loss, `eval loss ${before.loss} → ${trained.loss}`);
    const config = await saveTrainedAdapter(adapter, join(root, 'adapter'), { baseModel: join(root, 'base') });
    assert.equal(config.fan_in_fan_out, true);
    assert.deepEqual(config.target_modules, ['c_attn', 'c_proj']);
    await mergeAdapters({ base: join(root, 'base'), adapters: [{ dir: join(root, 'adapter') }], out: join(root, 'merged') });
    const got = await evaluate(await load(join(root, 'merged')), data, 4);
    assert.ok(Math.abs(got.loss - trained.loss) <= 1e-5 * trained.loss, `${got.loss} vs ${trained.loss}`);
  });
}

test('lowrank train and eval CLI on a GPT-2 folder: PEFT\'s default target for GPT-2 (c_attn), fan_in_fan_out, rsLoRA scaling; eval with the adapter', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'gpt2');
  await gpt2(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(TOKENIZER, f), join(dir, f));
  const data = join(root, 'train.jsonl');
  await writeFile(data, Array.from({ length: 20 }, () => JSON.stringify({ text: 'the cat sees a red ball.' })).join('\n') + '\n');
  const out = join(root, 'lora');
  const r = cli(['train', '--model', dir, '--data', data, '--eval', data, '--rank', '4', '--rslora', '--weight-decay', '0.01', '--steps', '6', '--seq-len', '12', '--batch', '2', '--lr', '1e-2', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const a = await openAdapter(out);
  assert.deepEqual(a.modules.map((m) => m.name).sort(), ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
  assert.equal(a.config.fan_in_fan_out, true);
  // rsLoRA: scaling alpha/√r = 8/2, saved as the equivalent plain LoRA alpha (scaling·r = 16).
  assert.equal(a.config.r, 4);
  assert.equal(a.config.lora_alpha, 16);
  await a.close();
  const after = Number(/eval loss [\d.]+ → ([\d.]+)/.exec(r.stdout)?.[1]);
  const e = cli(['eval', '--model', dir, '--adapter', out, '--data', data, '--seq-len', '12']);
  assert.equal(e.code, 0, e.stderr);
  assert.ok(Math.abs(Number(/^loss ([\d.]+)/.exec(e.stdout)?.[1]) - after) <= 2e-4, e.stdout);
});

test('lowrank train and eval CLI: a LoRA on a model folder with tokenizer.json, written as a PEFT adapter; eval with it', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'model');
  await writeModel(dir, randomWeights(llamaTensors(SHAPE), { seed: 2, dtype: 'f32', std: 0.2 }), { config: llamaConfig(SHAPE, 'float32') });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(TOKENIZER, f), join(dir, f));
  const data = join(root, 'train.jsonl');
  await writeFile(data, Array.from({ length: 20 }, (_, i) => JSON.stringify(i % 2 ? { text: 'the cat sees a red ball.' } : { prompt: '12 plus 7 is', completion: ' 19.' })).join('\n') + '\n');
  const out = join(root, 'lora');
  const r = cli(['train', '--model', dir, '--data', data, '--eval', data, '--rank', '4', '--steps', '6', '--seq-len', '16', '--batch', '2', '--lr', '1e-2', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /eval loss [\d.]+ → [\d.]+/);
  const a = await openAdapter(out);
  assert.deepEqual(a.modules.map((m) => m.name).sort(), ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
  await a.close();
  const after = Number(/eval loss [\d.]+ → ([\d.]+)/.exec(r.stdout)?.[1]);
  const e = cli(['eval', '--model', dir, '--adapter', out, '--data', data, '--seq-len', '16']);
  assert.equal(e.code, 0, e.stderr);
  const got = Number(/^loss ([\d.]+)/.exec(e.stdout)?.[1]);
  assert.ok(Math.abs(got - after) <= 2e-4, `eval ${got} vs trained ${after}`);
  const ckpt = join(root, 'ckpt.safetensors');
  const c1 = cli(['train', '--model', dir, '--data', data, '--rank', '4', '--steps', '4', '--seq-len', '16', '--batch', '2', '--checkpoint', ckpt, '--checkpoint-every', '2', '--out', join(root, 'lora2')]);
  assert.equal(c1.code, 0, c1.stderr);
  const s = await openSafetensors(ckpt);
  assert.equal(s.metadata?.step, '4');
  await s.close();
  const done = cli(['train', '--model', dir, '--data', data, '--rank', '4', '--steps', '4', '--seq-len', '16', '--batch', '2', '--checkpoint', ckpt, '--resume', '--out', join(root, 'lora3')]);
  assert.equal(done.code, 1);
  assert.match(done.stderr, /already at step 4 of 4/);
  const bad = cli(['train', '--model', dir, '--data', join(root, 'missing.jsonl'), '--rank', '4', '--out', join(root, 'x')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /reading the data file failed/);
});

test('checkpoint and resume: 4 steps, a checkpoint, a fresh process state resumed for 4 more equals 8 uninterrupted steps (PiSSA)', async (t) => {
  const root = await tempDir(t);
  const data = await sequences();
  const opts = { ...OPTS, method: 'pissa', steps: 8 };
  const straight = await model(join(root, 'a'));
  const a1 = await attachAdapter(straight, opts);
  await train(straight, a1, data, opts);
  const first = await model(join(root, 'b'));
  const a2 = await attachAdapter(first, opts);
  await train(first, a2, data, { ...opts, stopAt: 4 });
  const ckpt = join(root, 'ckpt.safetensors');
  await saveCheckpoint(ckpt, a2, 4);
  const second = await model(join(root, 'c'));
  const a3 = await attachAdapter(second, opts);
  const step = await loadCheckpoint(ckpt, a3);
  assert.equal(step, 4);
  await train(second, a3, data, opts, step);
  for (const [name, m] of a1.modules) {
    const r = a3.modules.get(name);
    assert.ok(r !== undefined);
    for (const role of Object.keys(m.term.params)) assert.deepEqual(r.term.params[role].data, m.term.params[role].data, `${name} ${role}`);
  }
  const other = await attachAdapter(await model(join(root, 'd')), { ...opts, method: 'lora' });
  await assert.rejects(loadCheckpoint(ckpt, other), /trained pissa, not lora/);
});
