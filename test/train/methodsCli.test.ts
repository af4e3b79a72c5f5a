/** The CLI over the adapter engine: --set options, training, evaluating, merging and converting a method adapter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { openAdapter } from '../../src/io/peft.js';
import { tempDir } from '../helpers/tmp.js';
import { TOKENIZER, writeTinyLlama } from '../helpers/tinyLlama.js';
import { cli } from '../helpers/cli.js';


async function folder(root: string): Promise<{ dir: string; data: string }> {
  const dir = join(root, 'model');
  await writeTinyLlama(dir, { tokenizer: true });
  const data = join(root, 'train.jsonl');
  await writeFile(data, Array.from({ length: 20 }, () => JSON.stringify({ text: 'the cat sees a red ball.' })).join('\n') + '\n');
  return { dir, data };
}

test('lowrank train --method vera --set ...: a PEFT VeRA folder; eval --json with it equals the trained loss; merge and convert-to-lora take it', async (t) => {
  const root = await tempDir(t);
  const { dir, data } = await folder(root);
  const out = join(root, 'vera');
  const r = cli(['train', '--model', dir, '--data', data, '--eval', data, '--method', 'vera', '--rank', '4', '--set', 'd_initial=0.2', '--set', 'projection_prng_key=3', '--steps', '5', '--seq-len', '12', '--batch', '2', '--lr', '0.1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /a VERA adapter on/);
  const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual([config.peft_type, config.r, config.d_initial, config.projection_prng_key], ['VERA', 4, 0.2, 3]);
  const after = Number(/eval loss [\d.]+ → ([\d.]+)/.exec(r.stdout)?.[1]);
  const e = cli(['eval', '--model', dir, '--adapter', out, '--data', data, '--seq-len', '12', '--json']);
  assert.equal(e.code, 0, e.stderr);
  const j = JSON.parse(e.stdout) as { loss: number; perplexity: number };
  assert.ok(Math.abs(j.loss - after) <= 2e-4, `${j.loss} vs ${after}`);
  assert.ok(Math.abs(j.perplexity - Math.exp(j.loss)) <= 1e-9 * j.perplexity);

  const m = cli(['merge', '--base', dir, '--adapter', out, '--out', join(root, 'merged')]);
  assert.equal(m.code, 0, m.stderr);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(TOKENIZER, f), join(root, 'merged', f));
  const em = cli(['eval', '--model', join(root, 'merged'), '--data', data, '--seq-len', '12', '--json']);
  assert.ok(Math.abs((JSON.parse(em.stdout) as { loss: number }).loss - j.loss) <= 1e-5 * j.loss, em.stdout + em.stderr);

  const c = cli(['convert-to-lora', out, '--rank', '2', '--out', join(root, 'as-lora')]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /relative error/);
  const a = await openAdapter(join(root, 'as-lora'));
  assert.equal(a.config.r, 2);
  assert.equal(a.modules.length, 4);
  await a.close();
});

test('method options: an unknown key, a value out of range and a malformed pair are one-line usage errors, and nothing is written', async (t) => {
  const root = await tempDir(t);
  const { dir, data } = await folder(root);
  const cases: [string[], RegExp][] = [
    [['--set', 'nosuch=1'], /vera has no option 'nosuch' \(its options: d_initial, projection_prng_key\)/],
    [['--set', 'projection_prng_key=-1'], /vera option projection_prng_key must be an integer ≥ 0/],
    [['--set', 'd_initial'], /--set takes key=value/],
    [['--set', 'd_initial=abc'], /vera option d_initial must be a number/],
  ];
  for (const [extra, want] of cases) {
    const out = join(root, 'never');
    const r = cli(['train', '--model', dir, '--data', data, '--method', 'vera', '--rank', '4', '--steps', '1', '--seq-len', '12', ...extra, '--out', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    await assert.rejects(stat(out));
  }
  const help = cli(['train', '--help']);
  assert.match(help.stdout, /Method options \(--set key=value\):[\s\S]*vera:[\s\S]*d_initial=<number> \(default 0\.1\)/);
});

test('lowrank init --method vera writes its PEFT folder (no residual); a PEFT tuner lowrank does not know is refused naming it', async (t) => {
  const root = await tempDir(t);
  const { dir } = await folder(root);
  const r = cli(['init', '--model', dir, '--method', 'vera', '--rank', '4', '--targets', 'q_proj,v_proj', '--out', join(root, 'v')]);
  assert.equal(r.code, 0, r.stderr);
  await assert.rejects(stat(join(root, 'v-residual')));
  const config = JSON.parse(await readFile(join(root, 'v', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.peft_type, 'VERA');
  await writeFile(join(root, 'v', 'adapter_config.json'), JSON.stringify({ ...config, peft_type: 'BOFT' }));
  const e = cli(['merge', '--base', dir, '--adapter', join(root, 'v'), '--out', join(root, 'm')]);
  assert.equal(e.code, 1, e.stderr);
  assert.match(e.stderr, /PEFT 'BOFT' adapter; lowrank reads peft_type LORA, .*VERA/);
});
