/**
 * `lowrank compare` and compareMethods on the built-in model: rows in order with the trainable
 * counts the training engine gives, one loss per step, the same held-out loss before training for
 * methods that start unchanged, LoRA reaching its own final loss; the HTML page (an SVG chart, no
 * scripts), the JSON file, --set routed to its method, and the usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { openModel } from '../../src/io/hf.js';
import { DEFAULT_TARGETS, loadCausalLm } from '../../src/nn/causalLm.js';
import type { LayerTargets } from '../../src/tools/targets.js';
import { attachAdapter, trainableCount } from '../../src/train/loop.js';
import { additionTask, BUILTIN_MODEL, BUILTIN_TRAINING } from '../../src/train/mainJob.js';
import { compareHtml, compareMethods, compareTable, type CompareRow } from '../../src/train/compare.js';
import { perMethodOptionValues } from '../../src/cli/methodOptions.js';

async function trainableOf(method: string, targets: LayerTargets = BUILTIN_TRAINING.targets): Promise<number> {
  const folder = await openModel(BUILTIN_MODEL);
  const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
  return trainableCount(await attachAdapter(m, { method, ...BUILTIN_TRAINING, targets, steps: 1, lr: 1e-2 }));
}

test('compareMethods: lora and nola on the built-in task, 3 steps; the page and the table', async () => {
  const seen: string[] = [];
  const rows = await compareMethods({ methods: ['lora', 'nola'], steps: 3, onStep: (method, step) => seen.push(`${method}:${step}`) });
  assert.deepEqual(rows.map((r) => r.method), ['lora', 'nola']);
  assert.deepEqual(seen, ['lora:1', 'lora:2', 'lora:3', 'nola:1', 'nola:2', 'nola:3']);
  for (const r of rows) {
    assert.equal(r.trainable, await trainableOf(r.method), r.method);
    assert.equal(r.losses.length, 3);
    assert.ok(r.losses.every(Number.isFinite));
    assert.equal(r.trainLoss, r.losses[2]);
    assert.ok(r.evalAfter < r.evalBefore, `${r.method}: held-out loss should fall`);
    assert.ok(r.seconds > 0 && r.peakMiB > 0);
    if (process.platform === 'linux') assert.equal(r.peakSource, 'VmHWM');
  }
  assert.ok(rows[0].trainable !== rows[1].trainable);
  // Both start unchanged (B = 0, β = 0) on the same base.
  assert.equal(rows[0].evalBefore, rows[1].evalBefore);
  const [lora, nola] = rows;
  assert.equal(lora.lr, 1e-2);
  assert.ok(typeof lora.stepsToLora === 'number' && lora.stepsToLora >= 1 && lora.stepsToLora <= 3);
  assert.ok(lora.losses[lora.stepsToLora - 1] <= lora.trainLoss);
  const first = nola.losses.findIndex((l) => l <= lora.trainLoss);
  assert.equal(nola.stepsToLora, first < 0 ? null : first + 1);

  const { header, cells } = compareTable(rows);
  assert.ok(header.includes("steps to LoRA's loss"));
  assert.equal(cells[1][header.indexOf("steps to LoRA's loss")], nola.stepsToLora === null ? '—' : String(nola.stepsToLora));
  assert.equal(cells[0][header.indexOf('trainable')], String(lora.trainable));
  const html = await compareHtml(rows);
  assert.match(html, /<svg[\s>]/);
  assert.match(html, /<path[^>]*d="M/, 'the chart has drawn lines');
  for (const m of ['lora', 'nola']) assert.ok(html.includes(`<td>${m}</td>`), m);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /(src|href)="https?:/);
  const back = JSON.parse(JSON.stringify(rows)) as CompareRow[];
  assert.deepEqual(back[1].losses, nola.losses);
});

test('compareTable: without LoRA among the rows there is no steps-to-LoRA column; a sampled peak says so', () => {
  const row: CompareRow = { method: 'nola', lr: 0.01, options: {}, trainable: 10, losses: [2, 1], trainLoss: 1, evalBefore: 3, evalAfter: 2, seconds: 1, peakMiB: 100, peakSource: 'sampled' };
  const { header, cells } = compareTable([row]);
  assert.ok(!header.some((h) => h.includes('LoRA')));
  assert.equal(cells[0].length, header.length);
  assert.ok(header.includes('peak RSS (MiB, sampled per step)'));
});

test('the options of compare: --set method.key=value routed to its method, checked by its declaration', async () => {
  assert.deepEqual(perMethodOptionValues(['lora', 'nola'], ['nola.num_basis_A=8', 'nola.num_basis_B=4']), { nola: { num_basis_A: 8, num_basis_B: 4 } });
  assert.throws(() => perMethodOptionValues(['lora'], ['nola.num_basis_A=8']), /not among the methods/);
  assert.throws(() => perMethodOptionValues(['nola'], ['num_basis_A=8']), /method\.key=value/);
  assert.throws(() => perMethodOptionValues(['nola'], ['nola.rank=8']), /nola has no option 'rank'/);
  assert.throws(() => perMethodOptionValues(['nola'], ['nola.num_basis_A=0']), /num_basis_A must be an integer ≥ 1/);
  await assert.rejects(compareMethods({ methods: ['lora', 'lora'], steps: 1 }), /listed twice/);
  await assert.rejects(compareMethods({ methods: ['lora'], steps: 1, options: { nola: { num_basis_A: 8 } } }), /not among the methods/);
});

test('lowrank compare: the table, the JSON rows with every loss, --set, and the HTML page', async (t) => {
  const dir = await tempDir(t);
  const [json, html] = [join(dir, 'rows.json'), join(dir, 'page.html')];
  const r = cli(['compare', '--methods', 'lora,nola', '--steps', '2', '--set', 'nola.num_basis_A=16', '--json', json, '--html', html]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^method\s+lr\s+trainable\s+final train loss\s+held-out before\s+held-out after\s+steps to LoRA's loss\s+time \(s\)\s+peak RSS \(MiB\)$/m);
  assert.match(r.stdout, /^lora\s+0\.01\s/m);
  assert.match(r.stdout, /^nola\s+0\.03\s/m);
  const out = JSON.parse(await readFile(json, 'utf8')) as { steps: number; rows: CompareRow[] };
  assert.equal(out.steps, 2);
  assert.deepEqual(out.rows.map((x) => [x.method, x.losses.length]), [['lora', 2], ['nola', 2]]);
  assert.deepEqual(out.rows[1].options, { num_basis_A: 16 });
  // NOLA trains k + l coefficients per layer: 28 layers × (16 + 64).
  assert.equal(out.rows[1].trainable, 28 * (16 + 64));
  const page = await readFile(html, 'utf8');
  assert.match(page, /<svg/);
  assert.doesNotMatch(page, /<script/i);
  const again = cli(['compare', '--methods', 'lora', '--steps', '1', '--json', json]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
});

test('lowrank compare --model --data --eval: a model folder and JSONL files, read as lowrank train reads them', async (t) => {
  const dir = await tempDir(t);
  const task = additionTask();
  const [trainFile, evalFile, json] = [join(dir, 'train.jsonl'), join(dir, 'eval.jsonl'), join(dir, 'rows.json')];
  await writeFile(trainFile, task.train.map((e) => JSON.stringify(e)).join('\n'));
  await writeFile(evalFile, task.eval.map((e) => JSON.stringify(e)).join('\n'));
  const r = cli(['compare', '--model', BUILTIN_MODEL, '--data', trainFile, '--eval', evalFile, '--methods', 'nola,lora', '--steps', '2', '--seq-len', '32', '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(await readFile(json, 'utf8')) as { model: string; rows: CompareRow[] };
  assert.equal(out.model, BUILTIN_MODEL);
  assert.deepEqual(out.rows.map((x) => x.method), ['nola', 'lora']);
  // `lowrank train`'s default targets for a Llama (q_proj, v_proj), not the built-in task's all-linear.
  assert.equal(out.rows[1].trainable, await trainableOf('lora', DEFAULT_TARGETS.llama));
  assert.ok(out.rows[1].trainable < (await trainableOf('lora')));
});

test('lowrank compare: usage errors exit 1 with one line', async (t) => {
  const dir = await tempDir(t);
  for (const args of [
    ['compare', '--methods', 'nosuch'],
    ['compare', '--model', dir],
    ['compare', '--model', dir, '--data', join(dir, 'train.jsonl')],
    ['compare', '--data', join(dir, 'train.jsonl')],
    ['compare', '--methods', 'lora', '--set', 'nola.num_basis_A=8'],
    ['compare', '--methods', 'lora', '--steps', '0'],
    ['compare', '--methods', 'lora', '--seq-len', '16'],
    ['compare', '--methods', 'lora,lora'],
  ]) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^lowrank: error: /);
  }
  const r = cli(['compare', '--methods', 'nosuch']);
  assert.match(r.stderr, /unknown method 'nosuch' \(known: .*lora/);
  assert.match(cli(['compare', '--model', dir]).stderr, /--model needs --data/);
});
