/**
 * The studio page in headless Chromium, served by `lowrank studio` (the real CLI, as a child
 * process): a sharded base model, a fine-tune of it (base plus a rank-2 change in every linear
 * weight) and an adapter go in through the page's file inputs, as a person picks folders; the
 * tensor tables, the comparison report with its charts, an extraction, a merge, a resize, a
 * combination and a conversion come out. The downloaded zips must hold, byte for byte, the folders
 * the CLI writes from the same inputs with the same backend (wasm, the page's). A malformed file
 * must show the CLI's error words. The main job fine-tunes the built-in model in the tab (30 steps)
 * and both losses must fall. Screenshots of each state go to test-artifacts/studio/ (not committed).
 *
 * Fails (does not skip) when chromium is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { openModel, writeModel } from '../../src/io/hf.js';
import { openSafetensors } from '../../src/io/safetensors/reader.js';
import { writeSafetensors, type TensorSource } from '../../src/io/safetensors/writer.js';
import { llamaConfig, llamaTensors, randomWeights } from '../../src/io/synthetic.js';
import { rng } from '../../src/core/rng.js';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { binPath, cli } from '../helpers/cli.js';
import { launch } from '../helpers/chromium.js';
import { tempDir } from '../helpers/tmp.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/studio/', import.meta.url));
const SHAPE = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 96 };
const LINEAR = /\.(q|k|v|o|gate|up|down)_proj\.weight$/;
/** The CLI computes on the page's backend so that results can be equal to the bit. */
const WASM = { LOWRANK_BACKEND: 'wasm' };

/** base (sharded), tuned (base + a rank-2 change of every linear weight) and the CLI's extraction of an adapter, in `dir`. */
async function fixtures(dir: string): Promise<void> {
  const config = llamaConfig(SHAPE, 'float32');
  await writeModel(join(dir, 'base'), randomWeights(llamaTensors(SHAPE), { seed: 11, dtype: 'f32', std: 0.1 }), { config, maxShardSize: 40_000 });
  const base = await openModel(join(dir, 'base'));
  const r = rng(12);
  const tuned: Tensor[] = [];
  const names: string[] = [];
  try {
    for (const t of base.tensors) {
      const w = await base.readAs(t.name, 'f32');
      if (LINEAR.test(t.name)) {
        const [m, n] = t.shape;
        const u = r.fillNormal(new Float32Array(m * 2));
        const v = r.fillNormal(new Float32Array(2 * n));
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w.data[i * n + j] += 0.02 * (u[i * 2] * v[j] + u[i * 2 + 1] * v[n + j]);
      }
      tuned.push(tensor('f32', t.shape, w.data));
      names.push(t.name);
    }
  } finally {
    await base.close();
  }
  await writeModel(join(dir, 'tuned'), tuned.map((t, i) => ({ name: names[i], dtype: t.dtype, shape: t.shape, data: t.data })), { config, maxShardSize: 40_000 });
  const made = cli(['extract', '--base', 'base', '--tuned', 'tuned', '--rank', '2', '--out', 'adapter'], { cwd: dir, env: WASM });
  assert.equal(made.code, 0, made.stderr);
}

/** A copy of an adapter folder with every tensor moved a little, as training would. */
async function trainedCopy(from: string, to: string): Promise<void> {
  const file = await openSafetensors(join(from, 'adapter_model.safetensors'));
  const r = rng(13);
  const tensors: TensorSource[] = [];
  try {
    for (const e of file.entries) {
      const t = await file.readAs(e.name, 'f32');
      for (let i = 0; i < t.data.length; i++) t.data[i] += 0.01 * r.normal();
      tensors.push({ name: e.name, dtype: 'f32', shape: e.shape, data: t.data });
    }
  } finally {
    await file.close();
  }
  await mkdir(to);
  await writeFile(join(to, 'adapter_config.json'), await readFile(join(from, 'adapter_config.json')));
  await writeSafetensors(join(to, 'adapter_model.safetensors'), tensors, { metadata: { format: 'pt' } });
}

/** `lowrank studio --port 0`, and the URL it prints. */
async function startStudio(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [binPath, 'studio', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lowrank studio printed no URL in 20 s (stderr: ${err})`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /lowrank studio: (http:\/\/\S+\/)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lowrank studio exited with ${code}: ${err}`));
    });
  });
  return { url, child };
}

/** Every file under `dir`, by path relative to it. */
async function folderFiles(dir: string, prefix = ''): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) for (const [k, v] of await folderFiles(dir, rel)) out.set(k, v);
    else out.set(rel, new Uint8Array(await readFile(join(dir, rel))));
  }
  return out;
}

/** Clicks the zip button of an output and returns the zip's files. */
async function download(page: Page, output: string, dir: string): Promise<Map<string, Uint8Array>> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(`#${output}-zip`)]);
  assert.equal(d.suggestedFilename(), `${output}.zip`);
  const path = join(dir, `${output}.zip`);
  await d.saveAs(path);
  return new Map(Object.entries(unzipSync(new Uint8Array(await readFile(path)))));
}

function assertSameFolder(got: Map<string, Uint8Array>, want: Map<string, Uint8Array>, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: the same files`);
  for (const [name, bytes] of want) {
    const other = got.get(name) as Uint8Array;
    const first = bytes.length === other.length ? bytes.findIndex((b, i) => b !== other[i]) : Math.max(0, bytes.findIndex((b, i) => b !== other[i]));
    const near = (x: Uint8Array): string => JSON.stringify(new TextDecoder().decode(x.subarray(Math.max(0, first - 80), first + 80)));
    assert.ok(first === -1, `${what}: ${name} differs from the CLI's at byte ${first} (${other.length} and ${bytes.length} bytes): page ${near(other)}, CLI ${near(bytes)}`);
  }
}

/** `got` equals `want`, numbers within `tol` relative. */
function assertClose(got: unknown, want: unknown, tol: number, at: string): void {
  if (typeof want === 'number' && typeof got === 'number') {
    assert.ok(Math.abs(got - want) <= tol * Math.max(Math.abs(want), Math.abs(got)) || got === want, `${at}: ${got} against ${want}`);
  } else if (typeof want === 'object' && want !== null && typeof got === 'object' && got !== null) {
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${at}: the same keys`);
    for (const k of Object.keys(want)) assertClose((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], tol, `${at}.${k}`);
  } else assert.equal(got, want, at);
}

async function shot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Waits until the page runs no action (callers read the error box themselves). */
async function settled(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.busy === undefined, undefined, { timeout });
}

/** Picks a folder or file through one of the page's inputs and waits until it is read, without an error. */
async function pick(page: Page, input: string, path: string): Promise<void> {
  await page.setInputFiles(input, path);
  await settled(page);
  assert.equal(await errorText(page), null, `picking ${path} into ${input}`);
}

async function errorText(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const box = document.getElementById('error');
    return box === null || box.hidden ? null : box.textContent;
  });
}

test('studio: lowrank studio serves the page; folders picked in it are inspected, analyzed, extracted, merged, resized, combined and converted as the CLI does, and the main job fine-tunes in the tab', { timeout: 600_000 }, async (t) => {
  const dir = await tempDir(t, 'lowrank-studio-');
  await fixtures(dir);
  const { url, child } = await startStudio();
  t.after(() => child.kill('SIGTERM'));
  const browser = await launch();
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.backend), 'wasm', `the wasm backend started (${await page.textContent('#backend')})`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the page is cross-origin isolated');

  await t.test('the folders picked show their tensor tables', async () => {
    await pick(page, '#model-folder', join(dir, 'tuned'));
    await pick(page, '#base-folder', join(dir, 'base'));
    const base = await openModel(join(dir, 'base'));
    const count = base.tensors.length;
    const shards = base.shards.length;
    await base.close();
    assert.ok(shards > 1, 'the base model is sharded');
    for (const slot of ['model', 'base']) {
      const info = page.locator(`#${slot}-info .described`);
      assert.equal(await info.getAttribute('data-kind'), 'model');
      assert.equal(Number(await info.getAttribute('data-tensors')), count, `${slot}: every tensor listed`);
      assert.match((await info.textContent()) ?? '', new RegExp(`in ${shards} shards`));
      assert.equal(await page.locator(`#${slot}-info table.tensors tbody tr`).count(), count);
    }
    await shot(page, '1-files');
  });

  await t.test('the comparison report renders with its charts, and is the one lowrank analyze --html writes', async () => {
    await page.click('#analyze');
    await settled(page);
    assert.equal(await errorText(page), null);
    const frame = page.frameLocator('#report');
    assert.ok((await frame.locator('svg').count()) >= 4, 'the report has its charts');
    await mkdir(join(dir, 'cli-analysis'));
    const made = cli(['analyze', 'tuned', '--compare', 'base', '--json', 'cli-analysis/analysis.json', '--html', 'cli-analysis/report.html'], { cwd: dir, env: WASM });
    assert.equal(made.code, 0, made.stderr);
    const got = await download(page, 'analysis', dir);
    const want = await folderFiles(join(dir, 'cli-analysis'));
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    // The metrics go through Math.log10 and friends, whose last bits differ between V8 versions
    // (Node 20's and Chromium's): numbers are compared to 1e-12 relative, the rest exactly.
    const text = (m: Map<string, Uint8Array>, f: string): string => new TextDecoder().decode(m.get(f));
    assertClose(JSON.parse(text(got, 'analysis.json')), JSON.parse(text(want, 'analysis.json')), 1e-12, 'analysis.json');
    const numbers = /-?\d+\.\d+(?:e[-+]?\d+)?/g;
    // Vega lays charts out by measured text, a canvas in the page and an estimate in Node: the
    // charts are compared by count and place, the rest of the page to 9 digits.
    const svgs = /<svg[\s\S]*?<\/svg>/g;
    const shape = (html: string): string => html.replace(svgs, '<svg/>').replace(numbers, (x) => String(+Number(x).toPrecision(9)));
    const [page_, cli_] = [text(got, 'report.html'), text(want, 'report.html')];
    assert.ok((cli_.match(svgs) ?? []).length >= 4, 'the CLI report has its charts');
    assert.equal((page_.match(svgs) ?? []).length, (cli_.match(svgs) ?? []).length, 'as many charts as the CLI report');
    assert.equal(shape(page_), shape(cli_), 'report.html is the CLI\'s, charts aside, to 9 digits');
    await shot(page, '2-analysis');
  });

  await t.test('an extraction downloads the folder lowrank extract writes', async () => {
    await page.fill('#extract-rank', '2');
    await page.click('#run-extract');
    await settled(page);
    assert.equal(await errorText(page), null);
    const got = await download(page, 'extract', dir);
    assertSameFolder(got, await folderFiles(join(dir, 'adapter')), 'extract');
    await shot(page, '3-extract');
  });

  await t.test('a merge downloads the folder lowrank merge writes', async () => {
    await pick(page, '#model-folder', join(dir, 'base'));
    await pick(page, '#adapter-folder', join(dir, 'adapter'));
    assert.equal(await page.locator('#adapter-info .described').getAttribute('data-kind'), 'adapter');
    await page.click('#run-merge');
    await settled(page);
    assert.equal(await errorText(page), null);
    const got = await download(page, 'merge', dir);
    const made = cli(['merge', '--base', 'base', '--adapter', 'adapter', '--out', 'merged'], { cwd: dir, env: WASM });
    assert.equal(made.code, 0, made.stderr);
    assertSameFolder(got, await folderFiles(join(dir, 'merged')), 'merge');
    await shot(page, '4-merge');
  });

  await t.test('a resize, a combination and a conversion download the folders the CLI writes', async () => {
    // The second adapter: the first one again (combine), then a PiSSA init and its "trained" copy (convert).
    await pick(page, '#adapter2-folder', join(dir, 'adapter'));
    await page.fill('#resize-rank', '1');
    const runs: [string, string[]][] = [
      ['resize', ['resize', 'adapter', '--rank', '1', '--out', 'resized']],
      ['combine', ['merge', '--combine', 'linear', '--adapter', 'adapter', '--adapter', 'adapter', '--out', 'combined']],
    ];
    for (const [op, args] of runs) {
      await page.click(`#run-${op}`);
      await settled(page);
      assert.equal(await errorText(page), null, op);
      const made = cli(args, { cwd: dir, env: WASM });
      assert.equal(made.code, 0, made.stderr);
      assertSameFolder(await download(page, op, dir), await folderFiles(join(dir, args[args.length - 1])), op);
    }
    const init = cli(['init', '--model', 'base', '--method', 'pissa', '--rank', '2', '--out', 'pissa-init'], { cwd: dir, env: WASM });
    assert.equal(init.code, 0, init.stderr);
    await trainedCopy(join(dir, 'pissa-init'), join(dir, 'pissa-trained'));
    await pick(page, '#adapter-folder', join(dir, 'pissa-init'));
    await pick(page, '#adapter2-folder', join(dir, 'pissa-trained'));
    await page.click('#run-convert');
    await settled(page);
    assert.equal(await errorText(page), null, 'convert');
    const made = cli(['convert-to-lora', '--initial', 'pissa-init', '--trained', 'pissa-trained', '--out', 'converted'], { cwd: dir, env: WASM });
    assert.equal(made.code, 0, made.stderr);
    assertSameFolder(await download(page, 'convert', dir), await folderFiles(join(dir, 'converted')), 'convert');
    await shot(page, '5-operations');
  });

  await t.test('a malformed file dropped on the page shows the error as the CLI words it', async () => {
    const whole = await readFile(join(dir, 'base', (await readdir(join(dir, 'base'))).find((f) => f.endsWith('.safetensors')) as string));
    const bad = join(dir, 'broken.safetensors');
    await writeFile(bad, whole.subarray(0, 200));
    // Dropped, as a person drags a file onto the model box (the drop handler's path for files).
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'broken.safetensors'));
      document.getElementById('model-zone')?.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, Buffer.from(whole.subarray(0, 200)).toString('base64'));
    await page.waitForFunction(() => document.getElementById('error')?.hidden === false, undefined, { timeout: 30_000 });
    await settled(page);
    const shown = await errorText(page);
    const cliSays = cli(['inspect', bad]);
    assert.equal(cliSays.code, 1);
    // The CLI names the file by the path it was given, the page by the name it was picked with.
    const words = /^lowrank: error: .*?broken\.safetensors(.*)$/m.exec(cliSays.stderr)?.[1];
    assert.ok(words !== undefined && words.length > 10, `the CLI's error: ${cliSays.stderr}`);
    assert.equal(shown, `error: broken.safetensors${words}`, `the CLI said '${cliSays.stderr.trim()}'`);
    await shot(page, '6-error');
  });

  await t.test('Cancel stops a fine-tune between steps with the CLI\'s interruption error, and nothing is offered', async () => {
    await page.fill('#finetune-steps', '400');
    await page.click('#run-finetune');
    await page.waitForFunction(() => /loss \d/.test(document.getElementById('progress-text')?.textContent ?? ''), undefined, { timeout: 60_000 });
    assert.equal(await page.isEnabled('#cancel'), true, 'Cancel is offered while the fine-tune runs');
    await page.click('#cancel');
    await settled(page);
    assert.equal(await errorText(page), 'error: fine-tune cancelled');
    assert.equal(await page.locator('#error').getAttribute('data-code'), 'E_INTERRUPTED');
    assert.equal(await page.locator('[data-output="finetune"]').count(), 0, 'no fine-tune output');
    assert.equal(await page.isEnabled('#cancel'), false);
  });

  await t.test('the built-in model fine-tunes in the tab: LoRA and PiSSA losses fall, answers and adapters come out', async () => {
    await page.fill('#finetune-steps', '30');
    await page.click('#run-finetune');
    await settled(page, 300_000);
    assert.equal(await errorText(page), null);
    for (const method of ['lora', 'pissa']) {
      const row = page.locator(`#finetune-table tr[data-method="${method}"]`);
      const [first, last, before, after] = await Promise.all(['loss-first', 'loss-last', 'eval-before', 'eval-after'].map(async (k) => Number(await row.getAttribute(`data-${k}`))));
      assert.ok(last < 0.8 * first, `${method}: the training loss falls (${first} → ${last})`);
      assert.ok(after < before, `${method}: the held-out loss falls (${before} → ${after})`);
    }
    assert.ok((await page.locator('#loss-chart polyline').count()) === 2, 'a loss curve per method');
    const got = await download(page, 'finetune', dir);
    for (const f of ['lora/adapter_config.json', 'lora/adapter_model.safetensors', 'pissa/adapter_model.safetensors', 'compare.html', 'lora-report.html']) assert.ok(got.has(f), `the fine-tune's output has ${f}`);
    const config = JSON.parse(new TextDecoder().decode(got.get('lora/adapter_config.json'))) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    await shot(page, '7-finetune');
    // The README's picture (docs/studio.png is a copy): the page as a person sees it after the fine-tune.
    await page.locator('#finetune-box').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'studio.png') });
  });

  assert.deepEqual(problems, [], 'no errors in the page');
});
