/**
 * The HTML report (renderReport and `lowrank analyze --html`) on a generated tiny
 * Llama folder and a fine-tuned copy of it: the page is self-contained (no scripts, no external
 * references), has one non-empty inline SVG per chart with line/rect/point marks, and, opened in
 * headless Chromium (Debian's `chromium`, driven by playwright-core), every chart has a non-zero
 * box and the screenshot is not one color. The CLI writes the file and refuses to replace it
 * without --force. Fails (does not skip) when chromium is missing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../../src/io/synthetic.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import type { TensorSource } from '../../src/io/safetensors/writer.js';
import { analyzeModel, type ModelAnalysis } from '../../src/analysis/model.js';
import { logSpacedIndices, renderReport } from '../../src/analysis/report.js';
import { cli } from '../helpers/cli.js';

const CHROMIUM = process.env.LOWRANK_CHROMIUM ?? '/usr/bin/chromium';
const SHAPE: LlamaShape = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 256 };
const Q1 = 'model.layers.1.self_attn.q_proj.weight';

let root = '';
let baseDir = '';
let tunedDir = '';
let compared: ModelAnalysis;
let html = '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'lowrank-report-'));
  baseDir = join(root, 'base');
  tunedDir = join(root, 'tuned');
  await writeModel(baseDir, randomWeights(llamaTensors(SHAPE), { seed: 11, dtype: 'bf16' }), { config: llamaConfig(SHAPE) });
  const base = await openModel(baseDir);
  const tuned: TensorSource[] = [];
  try {
    for (const t of base.tensors) {
      const w = await base.readAs(t.name, 'f32');
      // A rank-one change with a large σ along a fresh direction: q_proj of layer 1 gets an intruder.
      const data = t.name === Q1 ? Float32Array.from(w.data, (v, i) => v + (Math.floor(i / 64) % 2 === 0 ? 1 : -1) * ((i % 64) % 3 === 0 ? 0.5 : -0.25)) : w.data;
      tuned.push({ name: t.name, dtype: 'f32', shape: t.shape, data });
    }
  } finally {
    await base.close();
  }
  await writeModel(tunedDir, tuned, { config: llamaConfig(SHAPE) });
  compared = await analyzeModel(tunedDir, { compare: baseDir, keepSpectra: true });
  html = await renderReport(compared, { title: 'tiny <llama>' });
});

after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

/** The inline <svg>…</svg> elements of a page. */
function svgs(page: string): string[] {
  return page.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
}

test('logSpacedIndices keeps short spectra and thins long ones to ≤ 512 log-spaced indices', () => {
  assert.deepEqual(logSpacedIndices(5), [0, 1, 2, 3, 4]);
  const idx = logSpacedIndices(4096);
  assert.ok(idx.length <= 512 && idx.length > 300, String(idx.length));
  assert.equal(idx[0], 0);
  assert.equal(idx.at(-1), 4095);
  for (let i = 1; i < idx.length; i++) assert.ok(idx[i] > idx[i - 1]);
  assert.deepEqual(idx.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('the report is one self-contained page with a chart per plot and the per-layer table', () => {
  assert.ok(html.startsWith('<!doctype html>'));
  assert.ok(html.includes('<title>tiny &lt;llama&gt;</title>'));
  assert.ok(html.includes(tunedDir) && html.includes(baseDir), 'the model paths');
  assert.doesNotMatch(html, /<script|<link|<iframe|<img/i);
  assert.doesNotMatch(html, /(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
  assert.doesNotMatch(html, /url\(\s*["']?https?:/i);
  // spectra, energy, effective rank, alpha, heatmap, intruders
  const ids = [...html.matchAll(/<figure id="([^"]+)">/g)].map((m) => m[1]);
  const hasAlpha = compared.layers.some((l) => l.layer !== null && l.spectrum.alpha !== null);
  assert.deepEqual(ids, ['spectra', 'energy', 'effective-rank', ...(hasAlpha ? ['alpha'] : []), 'heatmap', 'intruders']);
  const charts = svgs(html);
  assert.equal(charts.length, ids.length);
  for (const svg of charts) {
    assert.ok(svg.length > 2000, 'a non-empty chart');
    assert.match(svg, /<path|<rect/);
    assert.match(svg, /class="mark-(?:line|rect|symbol)/, 'data marks');
  }
  const lines = (charts[0].match(/class="mark-line role-mark/g) ?? []).length;
  assert.ok(lines >= 1);
  // every matrix is a row of the table
  for (const l of compared.layers) assert.ok(html.includes(`<td>${l.name}</td>`), l.name);
  assert.ok(compared.summary.comparison !== undefined && compared.summary.comparison.intruders >= 1, 'the planted change has intruders');
});

test('without singular values the spectrum and energy charts are left out with a note', async () => {
  const page = await renderReport(await analyzeModel(tunedDir, { compare: baseDir }));
  const ids = [...page.matchAll(/<figure id="([^"]+)">/g)].map((m) => m[1]);
  assert.ok(!ids.includes('spectra') && !ids.includes('energy'));
  assert.match(page, /did not keep the singular values/);
  assert.equal(svgs(page).length, ids.length);
});

test('headless Chromium renders every chart: non-zero boxes, marks, a screenshot that is not blank', async () => {
  const file = join(root, 'report.html');
  await writeFile(file, html);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(file).href);
    const boxes = await page.evaluate(() =>
      Array.from(document.querySelectorAll('figure > svg'), (s) => {
        const b = s.getBoundingClientRect();
        return { w: b.width, h: b.height, marks: s.querySelectorAll('.role-mark path, .role-mark rect, .role-mark line').length };
      }),
    );
    assert.equal(boxes.length, svgs(html).length);
    for (const b of boxes) {
      assert.ok(b.w > 50 && b.h > 50, JSON.stringify(b));
      assert.ok(b.marks >= 4, JSON.stringify(b));
    }
    assert.deepEqual(requests, [], 'no network requests');
    // Pixels: a screenshot of the first chart differs from a blank one of the same size and is not one color.
    const shot = await page.locator('figure').first().screenshot();
    const box = await page.locator('figure').first().boundingBox();
    assert.ok(box !== null);
    const blankPage = await browser.newPage({ viewport: { width: Math.ceil(box.width), height: Math.ceil(box.height) } });
    await blankPage.setContent('<body style="margin:0;background:white"></body>');
    const blank = await blankPage.screenshot();
    assert.ok(!shot.equals(blank), 'the chart is not a blank page');
    const colors = await page.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext('2d');
      if (ctx === null) return 0;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length && seen.size < 64; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return seen.size;
    }, shot.toString('base64'));
    assert.ok(colors >= 8, `the screenshot has ${colors} colors`);
  } finally {
    await browser.close();
  }
});

test('lowrank analyze --html writes the report and refuses to replace it without --force', async () => {
  const out = join(root, 'cli.html');
  const r = cli(['analyze', baseDir, '--html', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*cli\.html/);
  const page = await readFile(out, 'utf8');
  assert.ok(page.includes('<figure id="spectra">') && page.includes('<figure id="heatmap">'));
  assert.ok(!page.includes('<figure id="intruders">'), 'no comparison, no intruder chart');
  const again = cli(['analyze', baseDir, '--html', out]);
  assert.equal(again.code, 1);
  assert.equal(again.stdout, '', 'refused before the analysis');
  assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
  assert.match(again.stderr, /already exists/);
  assert.equal(await readFile(out, 'utf8'), page, 'left as it was');
  const forced = cli(['analyze', baseDir, '--html', out, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
});
