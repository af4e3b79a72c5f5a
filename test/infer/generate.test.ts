/**
 * Generation with the KV cache, on both model families and every backend: the cached step's logits
 * against recomputing the whole sequence (float32, 1e-5 of the largest logit), greedy tokens against
 * an independent numpy greedy decode (float64, the same weights), left-padded batches against each
 * prompt alone, seeded sampling, and the defined edges (empty prompt, too long, no new tokens, abort).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as linalg from '../../src/linalg/index.js';
import { isLowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { openModel } from '../../src/io/hf.js';
import { loadCausalLm, type CausalLm } from '../../src/nn/causalLm.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { generate } from '../../src/infer/generate.js';
import { argmax, sampleToken } from '../../src/infer/sample.js';
import { tempDir } from '../helpers/tmp.js';
import { pythonJson } from '../helpers/python.js';
import { NUMPY_GPT2, NUMPY_LLAMA } from '../helpers/numpyModels.js';
import { SHAPE, writeTinyGpt2, writeTinyLlama } from '../helpers/tinyLlama.js';

const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);
/** Cached vs recomputed logits in float32: max |Δ| ≤ LOGIT_TOL · max |logit| (sums in another order). */
const LOGIT_TOL = 1e-5;

const FAMILIES = {
  llama: writeTinyLlama,
  gpt2: writeTinyGpt2,
} as const;

async function loadAs<F extends FloatDType>(dir: string, dtype: F): Promise<CausalLm<F>> {
  const m = await openModel(dir);
  return loadCausalLm(m, dtype).finally(() => m.close());
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let [err, scale] = [0, 0];
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

/** Logits of the last token of ids, recomputing the whole sequence. */
async function lastLogits<F extends FloatDType>(m: CausalLm<F>, ids: Int32Array): Promise<Float64Array> {
  const { logits } = await m.forward(ids, 1);
  const v = logits.shape[1];
  return Float64Array.from(logits.data.subarray((ids.length - 1) * v, ids.length * v));
}

const PROMPT = Int32Array.of(5, 17, 301, 42, 9);

for (const be of BACKENDS) {
  for (const [family, write] of Object.entries(FAMILIES)) {
    test(`${be} ${family}: cached decoding gives the logits and greedy tokens of recomputing the whole sequence each step (float32)`, async (t) => {
      linalg.useBackend(be);
      const dir = join(await tempDir(t), family);
      await write(dir);
      const m = await loadAs(dir, 'f32');
      const cache = m.kvCache(1, 16);
      let logits = await m.step(cache, PROMPT);
      const seq = [...PROMPT];
      for (let s = 0; s < 8; s++) {
        const want = await lastLogits(m, Int32Array.from(seq));
        const err = relErr(logits.data, want);
        assert.ok(err <= LOGIT_TOL, `step ${s}: cached logits differ by ${err.toExponential(2)} of the largest`);
        const next = argmax(want);
        assert.equal(argmax(logits.data), next, `step ${s}: greedy token`);
        seq.push(next);
        logits = await m.step(cache, Int32Array.of(next));
      }
      const r = await generate(m, PROMPT, { maxNewTokens: 8 });
      assert.deepEqual([...r.outputs[0].generatedIds], seq.slice(PROMPT.length));
      assert.equal(r.outputs[0].finish, 'length');
    });

    test(`${be} ${family}: a left-padded batch gives each prompt the tokens it gets alone`, async (t) => {
      linalg.useBackend(be);
      const dir = join(await tempDir(t), family);
      await write(dir);
      const m = await loadAs(dir, 'f32');
      const prompts = [Int32Array.of(7, 8, 9, 10, 11, 12), Int32Array.of(100), Int32Array.of(33, 44, 55)];
      const batched = await generate(m, prompts, { maxNewTokens: 6 });
      for (const [i, p] of prompts.entries()) {
        const alone = await generate(m, p, { maxNewTokens: 6 });
        assert.deepEqual([...batched.outputs[i].generatedIds], [...alone.outputs[0].generatedIds], `prompt ${i}`);
        assert.deepEqual([...batched.outputs[i].promptIds], [...p]);
      }
      assert.equal(batched.prefillTokens, 18);
    });
  }
}

const NUMPY_GREEDY = (forward: string, call: string): string => `${forward}
q = json.load(sys.stdin)
W = read_weights(q)
ids = list(q["ids"])
for _ in range(q["steps"]):
    ids.append(int(np.argmax(${call}[-1])))
print(json.dumps(ids[len(q["ids"]):]))
`;

for (const [family, write] of Object.entries(FAMILIES)) {
  test(`${family}: greedy generation equals a numpy greedy decode of the same weights (float64)`, async (t) => {
    linalg.useBackend('js');
    const dir = join(await tempDir(t), family);
    await write(dir);
    const m = await loadAs(dir, 'f64');
    const folder = await openModel(dir);
    const w: Record<string, { d: number[]; s: readonly number[] }> = {};
    try {
      for (const e of folder.tensors) w[e.name] = { d: [...(await folder.readAs(e.name, 'f64')).data], s: e.shape };
    } finally {
      await folder.close();
    }
    const script = family === 'llama'
      ? NUMPY_GREEDY(NUMPY_LLAMA, `llama_logits(W, ids, 1, ${SHAPE.num_attention_heads}, ${SHAPE.num_key_value_heads}, ${SHAPE.num_hidden_layers}, 1e-6, 10000)`)
      : NUMPY_GREEDY(NUMPY_GPT2, 'gpt2_logits(W, ids, 1, 2, 2)');
    const want = pythonJson<number[]>(script, [], JSON.stringify({ w, ids: [...PROMPT], steps: 8 }));
    const got = await generate(m, PROMPT, { maxNewTokens: 8 });
    assert.deepEqual([...got.outputs[0].generatedIds], want);
    assert.ok(new Set(want).size > 1, 'the decode is not one token repeated (a weak check)');
  });
}

test('sampling: seeded and reproducible; top-k 1 is greedy; draws follow softmax(logits/T); top-p never leaves the nucleus', async (t) => {
  linalg.useBackend('js');
  const dir = join(await tempDir(t), 'llama');
  await writeTinyLlama(dir);
  const m = await loadAs(dir, 'f32');
  const a = await generate(m, PROMPT, { maxNewTokens: 10, temperature: 1.5, seed: 4 });
  const b = await generate(m, PROMPT, { maxNewTokens: 10, temperature: 1.5, seed: 4 });
  const c = await generate(m, PROMPT, { maxNewTokens: 10, temperature: 1.5, seed: 5 });
  assert.deepEqual(a.outputs[0].generatedIds, b.outputs[0].generatedIds);
  assert.notDeepEqual(a.outputs[0].generatedIds, c.outputs[0].generatedIds);
  const greedy = await generate(m, PROMPT, { maxNewTokens: 10 });
  const k1 = await generate(m, PROMPT, { maxNewTokens: 10, temperature: 2, topK: 1, seed: 9 });
  assert.deepEqual(k1.outputs[0].generatedIds, greedy.outputs[0].generatedIds);

  // 40,000 draws over 4 logits at T = 0.5: frequencies within 0.01 of the softmax (σ ≤ 0.0025).
  const logits = [1, 0.5, -0.2, 0.3];
  const temp = 0.5;
  const e = logits.map((x) => Math.exp(x / temp));
  const p = e.map((x) => x / e.reduce((s, y) => s + y, 0));
  const g = rng(1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 40_000; i++) counts[sampleToken(logits, { temperature: temp }, g)]++;
  for (const [i, n] of counts.entries()) assert.ok(Math.abs(n / 40_000 - p[i]) < 0.01, `token ${i}: ${n / 40_000} vs ${p[i]}`);
  // p = [0.57, 0.21, 0.05, 0.17]: top-p 0.7 keeps tokens 0 and 1 only; top-k 2 the same two.
  for (const opts of [{ topP: 0.7 }, { topK: 2 }]) {
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(sampleToken(logits, { temperature: temp, ...opts }, g));
    assert.deepEqual([...seen].sort(), [0, 1], JSON.stringify(opts));
  }
});

test('edges: an empty prompt starts from the BOS token or is an error; a prompt past the context is an error; 0 new tokens runs nothing; stop ids end a sequence; an abort ends every sequence', async (t) => {
  linalg.useBackend('js');
  const dir = join(await tempDir(t), 'gpt2');
  await writeTinyGpt2(dir); // n_positions 16
  const m = await loadAs(dir, 'f32');
  const fromBos = await generate(m, [new Int32Array(0)], { maxNewTokens: 3, bosId: 0 });
  const explicit = await generate(m, [Int32Array.of(0)], { maxNewTokens: 3 });
  assert.deepEqual(fromBos.outputs[0].generatedIds, explicit.outputs[0].generatedIds);
  assert.equal(fromBos.outputs[0].promptIds.length, 0);
  await assert.rejects(generate(m, [new Int32Array(0)]), (e: unknown) => isLowrankError(e) && e.code === 'E_USAGE' && /prompt 1 is empty/.test(e.message));
  await assert.rejects(generate(m, [new Int32Array(17)]), (e: unknown) => isLowrankError(e) && e.code === 'E_USAGE' && /17 tokens; the model takes at most 16/.test(e.message));
  await assert.rejects(generate(m, PROMPT, { maxNewTokens: -1 }), (e: unknown) => isLowrankError(e) && e.code === 'E_USAGE');
  await assert.rejects(generate(m, PROMPT, { topP: 0 }), (e: unknown) => isLowrankError(e) && e.code === 'E_USAGE' && /top-p/.test(e.message));
  const none = await generate(m, PROMPT, { maxNewTokens: 0 });
  assert.deepEqual([none.outputs[0].generatedIds.length, none.outputs[0].finish, none.prefillTokens], [0, 'length', 0]);
  // The context caps the new tokens: 16 − 5.
  const capped = await generate(m, PROMPT, { maxNewTokens: 100 });
  assert.equal(capped.outputs[0].generatedIds.length, 11);
  const first = capped.outputs[0].generatedIds[2];
  const stopped = await generate(m, PROMPT, { maxNewTokens: 100, stopIds: [first] });
  assert.equal(stopped.outputs[0].finish, 'stop');
  assert.equal(stopped.outputs[0].generatedIds.at(-1), first);
  const ac = new AbortController();
  const aborted = await generate(m, [PROMPT, Int32Array.of(1, 2)], { maxNewTokens: 10, onToken: (b) => { if (b === 1) ac.abort(); }, signal: ac.signal });
  assert.deepEqual(aborted.outputs.map((o) => [o.finish, o.generatedIds.length]), [['aborted', 1], ['aborted', 1]]);
});
