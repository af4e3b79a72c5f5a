/** The tiny models the training tests share (a Llama and a GPT-2): its shape over the fixture tokenizer, loading in float64, a toy text. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { copyFile } from 'node:fs/promises';
import { openModel, writeModel } from '../../src/io/hf.js';
import { gpt2Config, gpt2Tensors, llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { loadCausalLm, type CausalLm } from '../../src/nn/causalLm.js';
import { loadTokenizer } from '../../src/train/tokenizer.js';
import { pack, type Sequence } from '../../src/train/data.js';

/** The fixture tokenizer's folder (tokenizer.json, tokenizer_config.json). */
export const TOKENIZER = fileURLToPath(new URL('../../../test/fixtures/tokenizer/', import.meta.url));
/** A 2-layer Llama over the fixture tokenizer's vocabulary. */
export const SHAPE = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 459 };

/** A model folder loaded in float64. */
export async function load(dir: string): Promise<CausalLm<'f64'>> {
  const m = await openModel(dir);
  return loadCausalLm(m, 'f64').finally(() => m.close());
}

/** Writes the tiny Llama (seeded float32 weights) to `dir`, with the tokenizer files when asked. */
export async function writeTinyLlama(dir: string, opts: { tokenizer?: boolean } = {}): Promise<void> {
  await writeModel(dir, randomWeights(llamaTensors(SHAPE), { seed: 2, dtype: 'f32', std: 0.2 }), { config: llamaConfig(SHAPE, 'float32') });
  if (opts.tokenizer === true) for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(TOKENIZER, f), join(dir, f));
}

/** Writes a tiny GPT-2 (Conv1D weights stored [in, out]) over the fixture tokenizer's vocabulary to `dir`. */
export async function writeTinyGpt2(dir: string): Promise<void> {
  const shape = { n_embd: 16, n_layer: 2, n_head: 2, n_positions: 16, vocab_size: SHAPE.vocab_size };
  await writeModel(dir, randomWeights(gpt2Tensors(shape), { seed: 3, dtype: 'f32', std: 0.2 }), { config: gpt2Config(shape) });
}

/** Three short sentences repeated, tokenized and packed into sequences of 12. */
export async function sequences(): Promise<Sequence[]> {
  const tok = await loadTokenizer(TOKENIZER);
  const words = ['the cat sees a red ball.', 'a dog likes the old map.', 'my friend reads a long letter.'];
  const ex = Array.from({ length: 30 }, (_, i) => {
    const ids = Int32Array.from([...tok.encode(words[i % 3]), 0]);
    return { ids, labels: ids.slice() };
  });
  return pack(ex, 12);
}
