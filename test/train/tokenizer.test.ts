import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../../src/train/tokenizer.js';
import { LowrankError } from '../../src/core/errors.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/tokenizer/', import.meta.url));

test("tokenizer.json: the same ids as Hugging Face's Rust tokenizers (fixture made by make.py), and decode inverts encode", async () => {
  const tok = await loadTokenizer(DIR);
  const cases = JSON.parse(await readFile(`${DIR}encodings.json`, 'utf8')) as { text: string; ids: number[]; decoded: string }[];
  for (const c of cases) {
    assert.deepEqual([...tok.encode(c.text)], c.ids, c.text);
    assert.equal(tok.decode(c.ids), c.decoded);
  }
  assert.equal(tok.eosId, 0);
  assert.equal(tok.vocabSize, 459);
});

test('a folder without tokenizer.json is E_NOT_FOUND', async () => {
  await assert.rejects(loadTokenizer(fileURLToPath(new URL('../../../test/fixtures/', import.meta.url))), (e: unknown) => e instanceof LowrankError && e.code === 'E_NOT_FOUND');
});
