/**
 * Adapters at inference time: applied unmerged they give the merged model's logits (float32, 1e-5 of
 * the largest) for LoRA, DoRA and a method with its own format, on Llama and GPT-2; switching the
 * active adapter reloads nothing and gives back exactly what each gave before; several active
 * adapters add up; an adapter that does not fit the model is an E_SHAPE error naming the module.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isLowrankError } from '../../src/core/errors.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { loadCausalLm, type CausalLm } from '../../src/nn/causalLm.js';
import { activate, loadAdapter, mergeAdapters } from '../../src/infer/adapters.js';
import { attachAdapter, saveTrainedAdapter, train } from '../../src/train/loop.js';
import { tempDir } from '../helpers/tmp.js';
import { SHAPE, sequences, writeTinyGpt2, writeTinyLlama } from '../helpers/tinyLlama.js';

const TOL = 1e-5; // unmerged vs merged logits, float32: max |Δ| ≤ TOL · max |logit|
const IDS = Int32Array.of(5, 17, 301, 42, 9, 77, 3, 120);

async function loadF32(dir: string): Promise<CausalLm<'f32'>> {
  const m = await openModel(dir);
  return loadCausalLm(m, 'f32').finally(() => m.close());
}

/** Trains `method` for a few steps at a large rate (so the update is far from zero) and saves it. */
async function trained(model: string, method: string, out: string, targets: 'all-linear' | string[] = 'all-linear'): Promise<string> {
  const m = await loadF32(model);
  const opts = { method, rank: 4, alpha: 8, targets, steps: 4, batch: 2, lr: 0.05, seed: 1 };
  const adapter = await attachAdapter(m, opts);
  await train(m, adapter, (await sequences()).filter((s) => s.inputs.length <= 12), opts);
  await saveTrainedAdapter(adapter, out, { baseModel: model });
  return out;
}

async function logits(m: CausalLm<'f32'>): Promise<Float32Array> {
  return (await m.forward(IDS, 2)).logits.data;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let [err, scale] = [0, 0];
  for (let i = 0; i < want.length; i++) [err, scale] = [Math.max(err, Math.abs(got[i] - want[i])), Math.max(scale, Math.abs(want[i]))];
  return err / scale;
}

test('unmerged LoRA, DoRA and VeRA adapters give the merged model\'s logits (Llama, GPT-2 with fan_in_fan_out)', async (t) => {
  const root = await tempDir(t);
  await writeTinyLlama(join(root, 'llama'));
  await writeTinyGpt2(join(root, 'gpt2'));
  const cases: [string, string, 'all-linear' | string[]][] = [['llama', 'lora', 'all-linear'], ['llama', 'dora', 'all-linear'], ['llama', 'vera', ['q_proj', 'v_proj']], ['gpt2', 'lora', 'all-linear'], ['gpt2', 'dora', ['c_attn']]];
  for (const [family, method, targets] of cases) {
    const dir = await trained(join(root, family), method, join(root, `${family}-${method}`), targets);
    const m = await loadF32(join(root, family));
    const base = await logits(m);
    const a = await loadAdapter(m, dir);
    activate(m, [a]);
    const unmerged = await logits(m);
    assert.ok(relErr(unmerged, base) > 1e-3, `${family} ${method}: the adapter changes the logits`);
    await mergeAdapters(m, [a]);
    assert.equal(m.adapters.size, 0);
    const err = relErr(await logits(m), unmerged);
    assert.ok(err <= TOL, `${family} ${method}: merged vs unmerged ${err.toExponential(2)}`);
  }
});

test('hot swap: switching adapters reloads nothing and gives back exactly each one\'s logits; two active adapters equal both merged', async (t) => {
  const root = await tempDir(t);
  const model = join(root, 'llama');
  await writeTinyLlama(model);
  const [da, db] = [await trained(model, 'lora', join(root, 'a')), await trained(model, 'dora', join(root, 'b'))];
  const m = await loadF32(model);
  const base = await logits(m);
  const [a, b] = [await loadAdapter(m, da, 'a'), await loadAdapter(m, db, 'b')];
  activate(m, [a]);
  const la = await logits(m);
  activate(m, [b]);
  const lb = await logits(m);
  activate(m, [a]);
  assert.deepEqual(await logits(m), la);
  activate(m, []);
  assert.deepEqual(await logits(m), base);
  activate(m, [b]);
  assert.deepEqual(await logits(m), lb);
  assert.ok(relErr(la, lb) > 1e-3, 'the two adapters differ');
  activate(m, [a, b]);
  const both = await logits(m);
  await mergeAdapters(m, [a, b]);
  const err = relErr(await logits(m), both);
  assert.ok(err <= TOL, `a + b merged vs unmerged ${err.toExponential(2)}`);
});

test('an adapter that does not fit the model: E_SHAPE naming the module (missing module; other shapes)', async (t) => {
  const root = await tempDir(t);
  await writeTinyLlama(join(root, 'llama'));
  await writeTinyGpt2(join(root, 'gpt2'));
  const wider = { ...SHAPE, intermediate_size: 40 };
  await writeModel(join(root, 'wider'), randomWeights(llamaTensors(wider), { seed: 2, dtype: 'f32', std: 0.2 }), { config: llamaConfig(wider, 'float32') });
  const lora = await trained(join(root, 'llama'), 'lora', join(root, 'lora'));
  const vera = await trained(join(root, 'llama'), 'vera', join(root, 'vera'), ['q_proj', 'v_proj']);
  await assert.rejects(loadAdapter(await loadF32(join(root, 'gpt2')), lora), (e: unknown) => isLowrankError(e) && e.code === 'E_SHAPE' && /module model\.layers\.0\.\S+, which the model does not/.test(e.message) && e.context.file === lora);
  await assert.rejects(loadAdapter(await loadF32(join(root, 'wider')), lora), (e: unknown) => isLowrankError(e) && e.code === 'E_SHAPE' && /module model\.layers\.0\.mlp\.\w+_proj: lora_A \[4, (16|32)\] and lora_B \[(32|16), 4\] do not fit the model's \[(40, 16|16, 40)\] weight/.test(e.message));
  await assert.rejects(loadAdapter(await loadF32(join(root, 'gpt2')), vera), (e: unknown) => isLowrankError(e) && e.code === 'E_SHAPE' && /model\.layers\.0\.self_attn\.q_proj/.test(e.message));
});
