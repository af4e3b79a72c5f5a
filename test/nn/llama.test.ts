/**
 * The Llama model end to end in float64: forward logits against a numpy implementation of the
 * same architecture written here (Hugging Face's LlamaForCausalLM arithmetic: RMSNorm, rotate_half
 * RoPE, causal grouped-query attention, SwiGLU), and a finite-difference check of the gradient of
 * the cross-entropy loss with respect to every weight tensor (sampled entries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { loadLlama, llamaBackward, llamaForward, type LlamaModel } from '../../src/nn/llama.js';
import { crossEntropy, IGNORE } from '../../src/nn/loss.js';
import { loraTerm } from '../../src/methods/lora.js';
import { pythonJson } from '../helpers/python.js';
import { NUMPY_LLAMA } from '../helpers/numpyModels.js';
import { tempDir } from '../helpers/tmp.js';
import { checkGradient, someEntries } from '../helpers/gradcheck.js';

const FORWARD_TOL = 1e-10; // |ours − numpy| ≤ FORWARD_TOL·max|logits| (both float64)
const GRAD_TOL = 1e-6; // |analytic − central difference| ≤ GRAD_TOL·max|analytic| per tensor (h = 1e-5)
const H = 1e-5;

const SHAPE = { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 11 };

async function tinyLlama(dir: string, tie = false): Promise<LlamaModel<'f64'>> {
  const specs = llamaTensors({ ...SHAPE, tie_word_embeddings: tie });
  // Norm weights away from 1 so their gradients are exercised.
  const sources = randomWeights(specs, { seed: 9, dtype: 'f32', std: 0.4 }).map((s, i) => (s.shape.length === 1 ? { ...s, data: rng(50 + i).fillUniform(new Float32Array(s.shape[0]), 0.5, 1.5) } : s));
  await writeModel(dir, sources, { config: { ...llamaConfig({ ...SHAPE, tie_word_embeddings: tie }, 'float32'), rope_theta: 10000, rms_norm_eps: 1e-5 } });
  const model = await openModel(dir);
  try {
    return await loadLlama(model, 'f64');
  } finally {
    await model.close();
  }
}

const NUMPY_FORWARD = `${NUMPY_LLAMA}
q = json.load(sys.stdin)
print(json.dumps(llama_logits(read_weights(q), q["ids"], q["batch"], q["heads"], q["kv"], q["layers"], q["eps"], q["theta"]).ravel().tolist()))
`;

const IDS = Int32Array.of(3, 1, 4, 1, 5, 9, 2, 6, 5, 3);

for (const tie of [false, true]) {
  test(`tiny Llama forward equals a numpy implementation of the architecture (float64${tie ? ', tied embeddings' : ''})`, async (t) => {
    const m = await tinyLlama(join(await tempDir(t), 'llama'), tie);
    const { logits } = await llamaForward(m, IDS, 2);
    const w = Object.fromEntries([...m.weights].map(([k, v]) => [k, { d: [...v.data], s: v.shape }]));
    const ref = pythonJson<number[]>(NUMPY_FORWARD, [], JSON.stringify({ w, ids: [...IDS], batch: 2, heads: 4, kv: 2, layers: 2, eps: 1e-5, theta: 10000 }));
    const scale = Math.max(...ref.map(Math.abs));
    const diff = Math.max(...ref.map((r, i) => Math.abs(r - logits.data[i])));
    assert.ok(diff <= FORWARD_TOL * scale, `max |ours − numpy| = ${diff} (scale ${scale})`);
  });
}

test('tiny Llama: the gradient of the loss with respect to every weight tensor matches central differences', async (t) => {
  const m = await tinyLlama(join(await tempDir(t), 'llama'));
  const targets = Int32Array.of(1, 4, 1, 5, IGNORE, 2, 6, 5, 3, 5);
  const lossOf = async (): Promise<number> => (await crossEntropy((await llamaForward(m, IDS, 2)).logits, targets)).loss;
  const grads = new Map<string, Tensor<'f64'>>([...m.weights].map(([k, v]) => [k, tensor('f64', v.shape)]));
  const { logits, cache } = await llamaForward(m, IDS, 2);
  await llamaBackward(m, cache, (await crossEntropy(logits, targets)).dlogits, grads);
  const g = rng(77);
  for (const [name, param] of m.weights) {
    await checkGradient(name, param, grads.get(name) as Tensor<'f64'>, lossOf, { h: H, tol: GRAD_TOL, entries: someEntries(param.data.length, () => g.uniform()) });
  }
});

test('LoRA terms on q_proj and v_proj of every layer: dA and dB match central differences of the model loss; B = 0 leaves the logits unchanged', async (t) => {
  const m = await tinyLlama(join(await tempDir(t), 'llama'));
  const before = (await llamaForward(m, IDS, 2)).logits;
  const g = rng(5);
  const terms = [];
  for (let l = 0; l < 2; l++) {
    for (const [proj, out] of [['q_proj', 8], ['v_proj', 4]] as const) {
      const A = tensor('f64', [3, 8], g.fillNormal(new Float64Array(24), 0, 0.3));
      const zero = loraTerm(A, tensor('f64', [out, 3]), 2);
      m.adapters.set(`model.layers.${l}.self_attn.${proj}`, zero);
    }
  }
  const same = (await llamaForward(m, IDS, 2)).logits;
  assert.deepEqual(same.data, before.data);
  for (const [name] of m.adapters) {
    const term = loraTerm(tensor('f64', [3, 8], g.fillNormal(new Float64Array(24), 0, 0.3)), tensor('f64', [name.endsWith('q_proj') ? 8 : 4, 3], g.fillNormal(new Float64Array((name.endsWith('q_proj') ? 8 : 4) * 3), 0, 0.3)), 2);
    m.adapters.set(name, term);
    terms.push(term);
  }
  const targets = Int32Array.of(1, 4, 1, 5, 9, 2, 6, 5, 3, 5);
  const { logits, cache } = await llamaForward(m, IDS, 2);
  await llamaBackward(m, cache, (await crossEntropy(logits, targets)).dlogits);
  const lossOf = async (): Promise<number> => (await crossEntropy((await llamaForward(m, IDS, 2)).logits, targets)).loss;
  for (const [k, term] of terms.entries()) {
    await checkGradient(`term ${k} A`, term.A, term.dA, lossOf, { h: H, tol: GRAD_TOL });
    await checkGradient(`term ${k} B`, term.B, term.dB, lossOf, { h: H, tol: GRAD_TOL });
  }
});
