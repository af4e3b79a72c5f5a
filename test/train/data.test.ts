import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../../src/train/tokenizer.js';
import { batchAt, pack, readJsonl, shuffled } from '../../src/train/data.js';
import { IGNORE } from '../../src/nn/loss.js';
import { LowrankError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

const TOKENIZER = fileURLToPath(new URL('../../../test/fixtures/tokenizer/', import.meta.url));

test('JSONL: text documents and prompt/completion pairs (loss masked on the prompt), eos after each; packing shifts targets by one', async (t) => {
  const tok = await loadTokenizer(TOKENIZER);
  const file = join(await tempDir(t), 'train.jsonl');
  await writeFile(file, '{"text": "the cat sees a red ball."}\n\n{"prompt": "12 plus 7 is", "completion": " 19."}\n');
  const ex = await readJsonl(file, tok);
  assert.equal(ex.length, 2);
  assert.deepEqual([...ex[0].ids], [...tok.encode('the cat sees a red ball.'), 0]);
  assert.deepEqual([...ex[0].labels], [...ex[0].ids]);
  const p = tok.encode('12 plus 7 is').length;
  assert.deepEqual([...ex[1].labels.slice(0, p)], new Array(p).fill(IGNORE));
  assert.deepEqual([...ex[1].labels.slice(p)], [...tok.encode(' 19.'), 0]);
  const seqs = pack(ex, 4);
  const stream = [...ex[0].ids, ...ex[1].ids];
  const labels = [...ex[0].labels, ...ex[1].labels];
  assert.equal(seqs.length, Math.floor((stream.length - 1) / 4));
  seqs.forEach((s, i) => {
    assert.deepEqual([...s.inputs], stream.slice(4 * i, 4 * i + 4));
    assert.deepEqual([...s.targets], labels.slice(4 * i + 1, 4 * i + 5));
  });
  const b = batchAt(seqs, 2, 0);
  assert.deepEqual([...b.inputs], [...seqs[0].inputs, ...seqs[1].inputs]);
});

test('seeded shuffle: a permutation, the same for the same seed', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const a = shuffled(items, 3);
  assert.deepEqual(shuffled(items, 3), a);
  assert.notDeepEqual(shuffled(items, 4), a);
  assert.deepEqual([...a].sort((x, y) => x - y), items);
});

test('a bad JSONL line is E_FORMAT naming the line', async (t) => {
  const tok = await loadTokenizer(TOKENIZER);
  const file = join(await tempDir(t), 'bad.jsonl');
  await writeFile(file, '{"text": "ok"}\n{"txt": 1}\n');
  await assert.rejects(readJsonl(file, tok), (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && /line 2/.test(e.message));
  await writeFile(file, '{"text": "ok"}\nnot json\n');
  await assert.rejects(readJsonl(file, tok), (e: unknown) => e instanceof LowrankError && /line 2: not valid JSON/.test(e.message));
});
