/**
 * GPT-2 end to end in float64: forward logits against a numpy implementation of the architecture
 * written here (Hugging Face's GPT2LMHeadModel arithmetic: Conv1D weights [in, out], LayerNorm,
 * causal attention, gelu_new, tied head), and a finite-difference check of the loss gradient with
 * respect to every weight tensor (sampled entries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { gpt2Config, gpt2Tensors, randomWeights } from '../../src/io/synthetic.js';
import { gpt2Backward, gpt2Forward, loadGpt2 } from '../../src/nn/gpt2.js';
import { crossEntropy, IGNORE } from '../../src/nn/loss.js';
import { pythonJson } from '../helpers/python.js';
import { NUMPY_GPT2 } from '../helpers/numpyModels.js';
import { tempDir } from '../helpers/tmp.js';
import { checkGradient, someEntries } from '../helpers/gradcheck.js';

const FORWARD_TOL = 1e-10; // |ours − numpy| ≤ FORWARD_TOL·max|logits| (both float64)
const GRAD_TOL = 1e-6; // |analytic − central difference| ≤ GRAD_TOL·max|analytic| per tensor (h = 1e-5)
const H = 1e-5;
const SHAPE = { n_embd: 8, n_layer: 2, n_head: 2, n_positions: 8, vocab_size: 11 };
const IDS = Int32Array.of(3, 1, 4, 1, 5, 9, 2, 6, 5, 3);

async function writeTiny(dir: string): Promise<void> {
  // Biases and LayerNorm weights random too, so their gradients are exercised.
  const sources = randomWeights(gpt2Tensors(SHAPE), { seed: 4, dtype: 'f32', std: 0.4 }).map((s, i) =>
    s.shape.length === 1 ? { ...s, data: rng(70 + i).fillUniform(new Float32Array(s.shape[0]), s.name.endsWith('bias') ? -0.3 : 0.5, s.name.endsWith('bias') ? 0.3 : 1.5) } : s,
  );
  await writeModel(dir, sources, { config: gpt2Config(SHAPE) });
}

const NUMPY_FORWARD = `${NUMPY_GPT2}
q = json.load(sys.stdin)
print(json.dumps(gpt2_logits(read_weights(q), q["ids"], q["batch"], q["heads"], q["layers"]).ravel().tolist()))
`;

test('tiny GPT-2 forward equals a numpy implementation of the architecture (float64; Conv1D weights as stored, [in, out])', async (t) => {
  const dir = join(await tempDir(t), 'gpt2');
  await writeTiny(dir);
  const model = await openModel(dir);
  try {
    const m = await loadGpt2(model, 'f64');
    const { logits } = await gpt2Forward(m, IDS, 2);
    const stored: Record<string, { d: number[]; s: readonly number[] }> = {};
    for (const e of model.tensors) stored[e.name] = { d: [...(await model.readAs(e.name, 'f64')).data], s: e.shape };
    const ref = pythonJson<number[]>(NUMPY_FORWARD, [], JSON.stringify({ w: stored, ids: [...IDS], batch: 2, heads: 2, layers: 2 }));
    const scale = Math.max(...ref.map(Math.abs));
    const diff = Math.max(...ref.map((r, i) => Math.abs(r - logits.data[i])));
    assert.ok(diff <= FORWARD_TOL * scale, `max |ours − numpy| = ${diff}`);
  } finally {
    await model.close();
  }
});

test('tiny GPT-2: the gradient of the loss with respect to every weight tensor matches central differences', async (t) => {
  const dir = join(await tempDir(t), 'gpt2');
  await writeTiny(dir);
  const model = await openModel(dir);
  const m = await loadGpt2(model, 'f64').finally(() => model.close());
  const targets = Int32Array.of(1, 4, IGNORE, 5, 9, 2, 6, 5, 3, 5);
  const lossOf = async (): Promise<number> => (await crossEntropy((await gpt2Forward(m, IDS, 2)).logits, targets)).loss;
  const grads = new Map<string, Tensor<'f64'>>([...m.weights].map(([k, v]) => [k, tensor('f64', v.shape)]));
  const { logits, cache } = await gpt2Forward(m, IDS, 2);
  await gpt2Backward(m, cache, (await crossEntropy(logits, targets)).dlogits, grads);
  const g = rng(78);
  for (const [name, param] of m.weights) {
    await checkGradient(name, param, grads.get(name) as Tensor<'f64'>, lossOf, { h: H, tol: GRAD_TOL, entries: someEntries(param.data.length, () => g.uniform()) });
  }
});
