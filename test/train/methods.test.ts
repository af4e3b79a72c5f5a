/**
 * Every method with a format of its own, end to end on a tiny Llama (float64): trained by the loop,
 * saved in its format, evaluated from the saved folder (base + adapter), merged into the base
 * (merged = unmerged, 1e-5 relative: the merged weights are rounded once to float32), converted to a
 * PEFT LoRA at full rank (exact) and merged again, and checkpointed and resumed bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { attachAdapter, evaluate, loadAdapterInto, saveTrainedAdapter, train, type TrainOptions } from '../../src/train/loop.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { mergeAdapters } from '../../src/tools/merge.js';
import { methodToLora } from '../../src/tools/convertToLora.js';
import { getMethod, methodNames } from '../../src/methods/registry.js';
import type { OptionValues } from '../../src/methods/options.js';
import { tempDir } from '../helpers/tmp.js';
import type { Sequence } from '../../src/train/data.js';
import { load, sequences, writeTinyGpt2, writeTinyLlama } from '../helpers/tinyLlama.js';

const SAME = 1e-5;

/** Small settings where a method's defaults are sized for real models. */
const SMALL: Readonly<Record<string, OptionValues>> = {
  nola: { num_basis_A: 8, num_basis_B: 8 },
  vblora: { vector_length: 4, num_vectors: 16 },
  unilora: { theta_d_length: 64 },
  mos: { valid_param_lora_r: 4, valid_param_private_r: 1, num_chunk_per_vec: 1 },
};
const LR: Readonly<Record<string, number>> = { vera: 0.2, unilora: 0.05, vblora: 0.05, nola: 0.05 };

/** The saved adapter on the base, and merged into it (written to <adapter>-merged), score the trained loss. */
async function scoresAsTrained(name: string, base: string, adapter: string, data: Sequence[], loss: number): Promise<void> {
  const fresh = await load(base);
  await loadAdapterInto(fresh, adapter);
  const reloaded = await evaluate(fresh, data, 4);
  assert.ok(Math.abs(reloaded.loss - loss) <= SAME * loss, `${name}: from the folder ${reloaded.loss} vs ${loss}`);
  await mergeAdapters({ base, adapters: [{ dir: adapter }], out: `${adapter}-merged` });
  const merged = await evaluate(await load(`${adapter}-merged`), data, 4);
  assert.ok(Math.abs(merged.loss - loss) <= SAME * loss, `${name}: merged ${merged.loss} vs ${loss}`);
}

const OWN = methodNames().filter((n) => getMethod(n).format !== undefined && getMethod(n).trainTerm !== undefined);

test('the methods with a format of their own include the shared-basis family so far', () => {
  for (const name of ['nola', 'vera']) assert.ok(OWN.includes(name), name);
});

for (const name of OWN) {
  test(`${name}: trains, saves in its format, evaluates from the folder, merges (merged = unmerged), converts to an exact LoRA, resumes from a checkpoint`, async (t) => {
    const root = await tempDir(t);
    const base = join(root, 'base');
    await writeTinyLlama(base);
    const data = await sequences();
    const opts: TrainOptions = { method: name, rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'], steps: 8, batch: 2, lr: LR[name] ?? 2e-2, warmup: 1, clip: 1, seed: 1, options: SMALL[name] };
    const m = await load(base);
    const adapter = await attachAdapter(m, opts);
    const before = await evaluate(m, data, 4);
    await train(m, adapter, data, { ...opts, stopAt: 4 });
    await saveCheckpoint(join(root, 'ckpt.safetensors'), adapter, 4);
    await train(m, adapter, data, opts, 4);
    const trained = await evaluate(m, data, 4);
    assert.ok(trained.loss < before.loss, `${name}: eval loss ${before.loss} → ${trained.loss}`);

    await saveTrainedAdapter(adapter, join(root, 'adapter'), { baseModel: base });
    await scoresAsTrained(name, base, join(root, 'adapter'), data, trained.loss);

    const conv = await methodToLora({ adapter: join(root, 'adapter'), rank: 16, out: join(root, 'lora') });
    for (const mod of conv.modules) assert.ok(mod.relError <= 1e-12, `${name} ${mod.name}: full-rank conversion error ${mod.relError}`);
    await mergeAdapters({ base, adapters: [{ dir: join(root, 'lora') }], out: join(root, 'merged-lora') });
    const viaLora = await evaluate(await load(join(root, 'merged-lora')), data, 4);
    assert.ok(Math.abs(viaLora.loss - trained.loss) <= SAME * trained.loss, `${name}: as a LoRA ${viaLora.loss} vs ${trained.loss}`);
    const low = await methodToLora({ adapter: join(root, 'adapter'), rank: 1, out: join(root, 'lora1') });
    assert.ok(low.modules.every((mod) => mod.rank === 1));

    const resumed = await load(base);
    const again = await attachAdapter(resumed, opts);
    assert.equal(await loadCheckpoint(join(root, 'ckpt.safetensors'), again), 4);
    await train(resumed, again, data, opts, 4);
    assert.equal((await evaluate(resumed, data, 4)).loss, trained.loss, `${name}: resumed run equals the uninterrupted one`);
  });
}

// GPT-2 stores its Conv1D weights [in, out]: the layers the methods see are [out, in] all the same,
// and the saved adapter (fan_in_fan_out) merges into the stored base.
for (const name of ['vera', 'unilora', 'nola']) {
  test(`${name} on GPT-2: trains on the [out, in] layers, saves with fan_in_fan_out, evaluates from the folder and merges into the [in, out] base`, async (t) => {
    const root = await tempDir(t);
    const base = join(root, 'gpt2');
    await writeTinyGpt2(base);
    const data = await sequences();
    const opts: TrainOptions = { method: name, rank: 4, alpha: 8, targets: ['c_attn', 'c_fc'], steps: 6, batch: 2, lr: LR[name] ?? 2e-2, warmup: 1, clip: 1, seed: 1, options: SMALL[name] };
    const m = await load(base);
    const adapter = await attachAdapter(m, opts);
    assert.deepEqual(adapter.layers.map((l) => l.shape), [[48, 16], [64, 16], [48, 16], [64, 16]]);
    await train(m, adapter, data, opts);
    const trained = await evaluate(m, data, 4);
    const config = await saveTrainedAdapter(adapter, join(root, 'adapter'), { baseModel: base });
    assert.equal(config.fan_in_fan_out, true);
    await scoresAsTrained(name, base, join(root, 'adapter'), data, trained.loss);
  });
}
