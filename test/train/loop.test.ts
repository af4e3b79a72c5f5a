import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openModel, writeModel } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { loadLlama, type LlamaModel } from '../../src/nn/llama.js';
import { loadTokenizer } from '../../src/train/tokenizer.js';
import { pack, type Sequence } from '../../src/train/data.js';
import { attachAdapter, evaluate, train, type TrainOptions } from '../../src/train/loop.js';
import { tempDir } from '../helpers/tmp.js';

const TOKENIZER = fileURLToPath(new URL('../../../test/fixtures/tokenizer/', import.meta.url));
const SHAPE = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 459 };

async function model(dir: string): Promise<LlamaModel<'f64'>> {
  await writeModel(dir, randomWeights(llamaTensors(SHAPE), { seed: 2, dtype: 'f32', std: 0.2 }), { config: llamaConfig(SHAPE, 'float32') });
  const m = await openModel(dir);
  try {
    return await loadLlama(m, 'f64');
  } finally {
    await m.close();
  }
}

async function sequences(): Promise<Sequence[]> {
  const tok = await loadTokenizer(TOKENIZER);
  const words = ['the cat sees a red ball.', 'a dog likes the old map.', 'my friend reads a long letter.'];
  const ex = Array.from({ length: 30 }, (_, i) => {
    const ids = Int32Array.from([...tok.encode(words[i % 3]), 0]);
    return { ids, labels: ids.slice() };
  });
  return pack(ex, 12);
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
    return [...adapter.modules.values()].flatMap(({ term }) => [...term.A.data, ...term.B.data]);
  };
  const [a, b] = [await run('x', 2, 1), await run('y', 1, 2)];
  const diff = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  assert.ok(diff <= 1e-12, `max difference ${diff}`);
});
