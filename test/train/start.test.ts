import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { openAdapter } from '../../src/io/peft.js';
import { additionTask } from '../../src/train/mainJob.js';

test('lowrank start (npm start): LoRA and PiSSA on the built-in model, a table, two PEFT adapters, two HTML reports', async (t) => {
  const out = join(await tempDir(t), 'start');
  const r = cli(['start', '--out', out, '--steps', '4']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^(lora|pissa)\s+\d/.test(l));
  assert.equal(rows.length, 2, r.stdout);
  for (const row of rows) {
    const m = /(\d+\.\d+) → (\d+\.\d+)/.exec(row);
    assert.ok(m !== null && Number(m[2]) < Number(m[1]), `held-out loss should fall: ${row}`);
  }
  for (const method of ['lora', 'pissa']) {
    const a = await openAdapter(join(out, method));
    assert.equal(a.modules.length, 28);
    assert.equal(a.config.r, method === 'pissa' ? 16 : 8);
    await a.close();
    const html = await readFile(join(out, `${method}-report.html`), 'utf8');
    assert.match(html, /<svg/);
  }
});

test('the addition task: 900 sums, 720 for training and 180 held out, disjoint', () => {
  const task = additionTask();
  assert.equal(task.train.length, 720);
  assert.equal(task.eval.length, 180);
  const seen = new Set(task.train.map((e) => e.prompt));
  assert.ok(task.eval.every((e) => !seen.has(e.prompt)));
});
