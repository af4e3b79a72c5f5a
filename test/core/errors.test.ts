/** Errors are one line of bounded length whatever they quote: newlines, control characters, huge names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { LowrankError, MESSAGE_LIMIT } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

test('a LowrankError message is one line: newlines and control characters become spaces; message and names are cut with a count of what was left out', () => {
  const e = new LowrankError('E_FORMAT', 'not valid JSON:\n  3 |   "a": 1,\r\n  4 | }\u0007', { file: 'cfg\n.json', tensor: `a\n${'x'.repeat(5000)}` });
  assert.ok(![...e.message].some((ch) => ch.charCodeAt(0) < 32), 'no control characters');
  assert.match(e.message, /^cfg \.json, tensor 'a x+… \(4802 more characters\)': not valid JSON: 3 \| +"a": 1, 4 \| } $/);
  const long = new LowrankError('E_USAGE', 'y'.repeat(5000));
  assert.equal(long.message, `${'y'.repeat(MESSAGE_LIMIT)}… (${5000 - MESSAGE_LIMIT} more characters)`);
  assert.equal(new LowrankError('E_USAGE', 'short').message, 'short');
});

test('lowrank inspect of a safetensors file whose tensor name holds newlines and 20,000 characters: a one-line error of bounded length', async (t) => {
  const file = join(await tempDir(t), 'bad.safetensors');
  const name = `evil\n\nname${'z'.repeat(20_000)}`;
  const header = Buffer.from(JSON.stringify({ [name]: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  await writeFile(file, Buffer.concat([size, header, Buffer.alloc(1)]));
  const r = cli(['inspect', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr.slice(0, 300));
  assert.ok(r.stderr.length < 2 * MESSAGE_LIMIT, `${r.stderr.length} characters`);
  assert.match(r.stderr, /^lowrank: error: .*evil name/);
});
