/** `lowrank generate`: streaming, --json, --data batches, adapters side by side, bad input, Ctrl-C. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { openModel } from '../../src/io/hf.js';
import { loadCausalLm } from '../../src/nn/causalLm.js';
import { loadTokenizer } from '../../src/train/tokenizer.js';
import { generate } from '../../src/infer/generate.js';
import { tempDir } from '../helpers/tmp.js';
import { writeTinyGpt2, writeTinyLlama, TOKENIZER } from '../helpers/tinyLlama.js';
import { binPath, cli } from '../helpers/cli.js';

interface Record {
  prompt: string;
  adapter?: string;
  prompt_ids: number[];
  generated_ids: number[];
  text: string;
  finish: string;
  tokens_per_second: number;
}

async function setup(root: string): Promise<{ model: string; data: string }> {
  const model = join(root, 'model');
  await writeTinyLlama(model, { tokenizer: true });
  const data = join(root, 'train.jsonl');
  await writeFile(data, Array.from({ length: 20 }, () => JSON.stringify({ text: 'the cat sees a red ball.' })).join('\n') + '\n');
  return { model, data };
}

test('lowrank generate --prompt streams the greedy answer; --json gives its ids, text and speed, the ids those of the library', async (t) => {
  const { model } = await setup(await tempDir(t));
  const r = cli(['generate', '--model', model, '--prompt', 'the cat', '--max-new-tokens', '12']);
  assert.equal(r.code, 0, r.stderr);
  const j = cli(['generate', '--model', model, '--prompt', 'the cat', '--max-new-tokens', '12', '--json']);
  assert.equal(j.code, 0, j.stderr);
  const rec = JSON.parse(j.stdout) as Record;
  const tok = await loadTokenizer(model);
  const folder = await openModel(model);
  const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
  const want = await generate(m, tok.encode('the cat'), { maxNewTokens: 12, stopIds: [tok.eosId ?? 0] });
  assert.deepEqual(rec.prompt_ids, [...tok.encode('the cat')]);
  assert.deepEqual(rec.generated_ids, [...want.outputs[0].generatedIds]);
  assert.equal(rec.text, tok.decode(want.outputs[0].generatedIds.filter((id) => id !== tok.eosId)));
  assert.ok(rec.tokens_per_second > 0);
  assert.equal(r.stdout, `the cat${rec.text}\n`);
});

test('lowrank generate --data: every prompt in batches (an empty one from BOS), the same answers as one at a time; --stop cuts the text', async (t) => {
  const root = await tempDir(t);
  const { model } = await setup(root);
  const prompts = join(root, 'prompts.jsonl');
  await writeFile(prompts, ['the cat', 'a small bird sees', '', 'my friend'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  const batched = cli(['generate', '--model', model, '--data', prompts, '--batch', '3', '--max-new-tokens', '6', '--json']);
  assert.equal(batched.code, 0, batched.stderr);
  const recs = batched.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record);
  assert.deepEqual(recs.map((r) => r.prompt), ['the cat', 'a small bird sees', '', 'my friend']);
  const single = cli(['generate', '--model', model, '--data', prompts, '--batch', '1', '--max-new-tokens', '6', '--json']);
  assert.deepEqual(single.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Record).generated_ids), recs.map((r) => r.generated_ids));
  const text = recs[0].text;
  const cut = text.slice(2, 4);
  const stopped = cli(['generate', '--model', model, '--prompt', 'the cat', '--max-new-tokens', '6', '--stop', cut, '--json']);
  assert.equal((JSON.parse(stopped.stdout) as Record).text, text.slice(0, text.indexOf(cut)));
  const plain = cli(['generate', '--model', model, '--data', prompts, '--max-new-tokens', '6']);
  assert.deepEqual(plain.stdout.trim().split('\n'), recs.map((r) => `${r.prompt}${r.text}`));
  // Records with completions: one right (the model's own answer), one wrong; exact match counted.
  const graded = join(root, 'graded.jsonl');
  await writeFile(graded, [{ prompt: 'the cat', completion: recs[0].text }, { prompt: 'my friend', completion: `${recs[3].text}!` }].map((r) => JSON.stringify(r)).join('\n'));
  const g = cli(['generate', '--model', model, '--data', graded, '--max-new-tokens', '6']);
  assert.match(g.stdout, /^exact match: 1\/2 \(50\.0 %\) of the records with a completion$/m);
  const gj = cli(['generate', '--model', model, '--data', graded, '--max-new-tokens', '6', '--json']);
  assert.deepEqual(gj.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { exact: boolean }).exact), [true, false]);
});

test('lowrank generate --adapter a --adapter b: each adapter\'s answer, side by side, over one base', async (t) => {
  const root = await tempDir(t);
  const { model, data } = await setup(root);
  for (const [name, method] of [['a', 'lora'], ['b', 'dora']]) {
    const r = cli(['train', '--model', model, '--data', data, '--method', method, '--rank', '4', '--steps', '6', '--seq-len', '12', '--batch', '2', '--lr', '0.05', '--targets', 'all-linear', '--out', join(root, name)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const both = cli(['generate', '--model', model, '--adapter', join(root, 'a'), '--adapter', join(root, 'b'), '--prompt', 'a dog', '--max-new-tokens', '8']);
  assert.equal(both.code, 0, both.stderr);
  const lines = both.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  for (const [i, name] of ['a', 'b'].entries()) {
    const one = cli(['generate', '--model', model, '--adapter', join(root, name), '--prompt', 'a dog', '--max-new-tokens', '8']);
    assert.equal(lines[i], `[${name}] ${one.stdout.trim()}`);
  }
  const json = cli(['generate', '--model', model, '--adapter', join(root, 'a'), '--adapter', join(root, 'b'), '--prompt', 'a dog', '--max-new-tokens', '8', '--json']);
  assert.deepEqual(json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Record).adapter), [join(root, 'a'), join(root, 'b')]);
});

test('lowrank generate, bad input: one-line errors, exit 1, no stack trace; --max-new-tokens 0 prints the prompt alone', async (t) => {
  const root = await tempDir(t);
  const { model, data } = await setup(root);
  const gpt2 = join(root, 'gpt2');
  await writeTinyGpt2(gpt2);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await writeFile(join(gpt2, f), await (await import('node:fs/promises')).readFile(join(TOKENIZER, f)));
  const r = cli(['train', '--model', model, '--data', data, '--rank', '2', '--steps', '1', '--seq-len', '12', '--batch', '2', '--out', join(root, 'lora')]);
  assert.equal(r.code, 0, r.stderr);
  const cases: [string[], RegExp][] = [
    [['--prompt', 'x', '--data', data], /exactly one of --prompt/],
    [[], /exactly one of --prompt/],
    [['--prompt', 'x', '--top-p', '2'], /--top-p must be a number in \(0, 1\]/],
    [['--prompt', 'x', '--temperature', '-1'], /--temperature must be a number ≥ 0/],
    [['--prompt', 'x', '--max-new-tokens', '-3'], /--max-new-tokens must be an integer ≥ 0/],
    [['--data', join(root, 'missing.jsonl')], /reading the data file failed/],
    [['--data', data], /line 1: expected \{"prompt": string\}/],
    [['--prompt', 'x', '--adapter', join(root, 'missing')], /missing/],
  ];
  for (const [args, message] of cases) {
    const e = cli(['generate', '--model', model, ...args]);
    assert.equal(e.code, 1, `${args.join(' ')}: ${e.stderr}`);
    assert.match(e.stderr, message);
    assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
  }
  const mismatch = cli(['generate', '--model', gpt2, '--adapter', join(root, 'lora'), '--prompt', 'x']);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /the adapter has module model\.layers\.0\.self_attn\.q_proj, which the model does not/);
  const long = cli(['generate', '--model', gpt2, '--prompt', 'the cat sees a red ball. a dog likes the old map. my friend reads']);
  assert.equal(long.code, 1);
  assert.match(long.stderr, /prompt 1 has \d+ tokens; the model takes at most 16/);
  const zero = cli(['generate', '--model', model, '--prompt', 'the cat', '--max-new-tokens', '0']);
  assert.deepEqual([zero.code, zero.stdout], [0, 'the cat\n']);
});

test('lowrank generate: Ctrl-C stops generation mid-stream with exit 130 and one line on stderr', async (t) => {
  const { model } = await setup(await tempDir(t));
  const child = spawn(process.execPath, [binPath, 'generate', '--model', model, '--prompt', 'the cat', '--max-new-tokens', '2000', '--stop', 'never-appears-in-the-output'], { env: { ...process.env, NO_COLOR: '1' } });
  let [out, err] = ['', ''];
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.length > 20) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.equal(code, 130, err);
  assert.match(err, /interrupted \(SIGINT\)/);
  assert.doesNotMatch(err, /at .*\.js:\d+/);
  assert.ok(out.startsWith('the cat'));
});
