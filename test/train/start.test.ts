/**
 * `lowrank start` (npm start): the two fine-tunes, their adapters and reports, the accuracy table and
 * examples, and the comparison page, opened in headless Chromium (Debian's chromium through
 * playwright-core; fails, does not skip, when it is missing): one chart with a loss curve per
 * method, the results and examples tables, links that resolve to the files written, no network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { openAdapter } from '../../src/io/peft.js';
import { additionTask } from '../../src/train/mainJob.js';

const CHROMIUM = process.env.LOWRANK_CHROMIUM ?? '/usr/bin/chromium';

test('lowrank start (npm start): LoRA and PiSSA on the built-in model, a table with accuracy, examples, two PEFT adapters, two reports, a comparison page that renders', async (t) => {
  const out = join(await tempDir(t), 'start');
  const r = cli(['start', '--out', out, '--steps', '4']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^(lora|pissa)\s+\d/.test(l));
  assert.equal(rows.length, 2, r.stdout);
  for (const row of rows) {
    const m = /(\d+\.\d+) → (\d+\.\d+)/.exec(row);
    assert.ok(m !== null && Number(m[2]) < Number(m[1]), `held-out loss should fall: ${row}`);
    assert.match(row, /\d+ % → \d+ %/, 'exact match before and after');
  }
  const task = additionTask();
  assert.match(r.stdout, new RegExp(`${task.eval[0].prompt} … +" ${task.eval[0].completion.trim().replace('.', '\\.')}"`), 'the first held-out example with its expected answer');
  const page = join(out, 'compare.html');
  assert.match(r.stdout, new RegExp(`comparison page .*: ${page.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  for (const method of ['lora', 'pissa']) {
    const a = await openAdapter(join(out, method));
    assert.equal(a.modules.length, 28);
    assert.equal(a.config.r, method === 'pissa' ? 16 : 8);
    await a.close();
    const html = await readFile(join(out, `${method}-report.html`), 'utf8');
    assert.match(html, /<svg/);
  }

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
  try {
    const tab = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    tab.on('request', (q) => {
      if (!q.url().startsWith('file:')) requests.push(q.url());
    });
    await tab.goto(pathToFileURL(page).href);
    const seen = await tab.evaluate(() => {
      const svg = document.querySelector('figure#losses > svg');
      const box = svg?.getBoundingClientRect();
      const cells = (sel: string) => Array.from(document.querySelectorAll(`${sel} tbody tr`), (tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? ''));
      return {
        chart: { w: box?.width ?? 0, h: box?.height ?? 0, lines: svg?.querySelectorAll('.mark-line path').length ?? 0, legend: svg?.textContent ?? '' },
        results: cells('table.results'),
        examples: cells('table.examples'),
        links: Array.from(document.querySelectorAll('#reports a'), (a) => (a as HTMLAnchorElement).href),
      };
    });
    assert.ok(seen.chart.w > 300 && seen.chart.h > 200, JSON.stringify(seen.chart));
    assert.equal(seen.chart.lines, 2, 'one loss curve per method');
    assert.ok(seen.chart.legend.includes('lora') && seen.chart.legend.includes('pissa'));
    assert.deepEqual(seen.results.map((row) => row[0]), ['lora', 'pissa']);
    for (const row of seen.results) assert.match(row[5], /^\d+\.\d % \(\d+\/180\)$/, 'exact match after, of 180');
    assert.equal(seen.examples.length, 8);
    assert.deepEqual(seen.examples.map((row) => row[0]), task.eval.slice(0, 8).map((e) => e.prompt));
    assert.deepEqual(seen.examples.map((row) => row[1]), task.eval.slice(0, 8).map((e) => JSON.stringify(e.completion)));
    assert.equal(seen.links.length, 4);
    for (const href of seen.links) assert.ok((await stat(new URL(href))).isFile(), href);
    assert.deepEqual(requests, [], 'no network requests');
  } finally {
    await browser.close();
  }
});

test('the addition task: 900 sums, 720 for training and 180 held out, disjoint', () => {
  const task = additionTask();
  assert.equal(task.train.length, 720);
  assert.equal(task.eval.length, 180);
  const seen = new Set(task.train.map((e) => e.prompt));
  assert.ok(task.eval.every((e) => !seen.has(e.prompt)));
});
