/**
 * The `studio` suite: the studio page analyzing a ~0.1B-parameter bf16 checkpoint (TinyLlama's
 * vocabulary, hidden 1024, 4 layers; `-- quick` a smaller one) in headless Chromium — the wasm
 * backend on worker threads, the page cross-origin isolated, the folder picked through the page's
 * input — against the same analysis by `lowrank analyze --fast` in Node (native, and wasm) and by
 * numpy (per matrix the same randomized SVD), in one run. Native and numpy run with the
 * environment as is and without the OpenBLAS overrides; each is compared at its best.
 *
 * The tab's time is the page's own (from the click to the analysis' end, read from the page); its
 * memory is the peak resident size (VmHWM) of Chromium's renderer process, which holds the page
 * and its workers. Node's and numpy's are their processes' peaks. Target: the tab within 3× of
 * Node-native. `-- reps=N` repeats each and reports medians (default 1).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { llamaConfig, llamaTensors, randomWeights } from '../src/io/synthetic.js';
import { writeModel } from '../src/io/hf.js';
import { serveStudio } from '../src/studio/serve.js';
import { MEDIUM, QUICK, timeLowrank, type Measured } from './checkpoint.js';
import { NUMPY_SCRIPT } from './tools.js';
import { blasSettings, fmtMiB, fmtRatio, fmtSeconds, median, printTable, requireNumpy, runPythonJson, withTempDir, type SuiteOptions } from './util.js';

export const description = 'the studio page analyzing a 0.1B bf16 checkpoint in headless Chromium (wasm, threads) vs lowrank in Node (native, wasm) and numpy';

const CHROMIUM = process.env.LOWRANK_CHROMIUM ?? '/usr/bin/chromium';

/** The renderer processes' peak resident sizes (VmHWM), summed: the tab and its workers. */
function rendererPeakBytes(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer') || !cmd.includes('chrom')) continue;
      const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      total += Number(kb ?? 0) * 1024;
    } catch {
      // a process that ended while we looked
    }
  }
  return total;
}

/** One analysis in a fresh headless Chromium: its seconds (the page's) and the renderer's peak. */
async function inTab(model: string, url: string): Promise<Measured & { threads: string }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 60_000 });
    const threads = (await page.textContent('#backend')) ?? '';
    await page.setInputFiles('#model-folder', model);
    await page.waitForFunction(() => document.body.dataset.busy === undefined, undefined, { timeout: 600_000 });
    await page.check('#fast');
    await page.click('#analyze');
    await page.waitForFunction(() => document.body.dataset.busy === undefined, undefined, { timeout: 3_600_000 });
    const error = await page.evaluate(() => (document.getElementById('error')?.hidden === false ? document.getElementById('error')?.textContent : null));
    if (error !== null && error !== undefined) throw new Error(`the page failed: ${error}`);
    const seconds = Number(await page.locator('#report-box').getAttribute('data-seconds'));
    return { seconds, maxRssBytes: rendererPeakBytes(), threads };
  } finally {
    await browser.close();
  }
}

interface Row {
  name: string;
  setting: string;
  runs: Measured[];
}

export async function run(opts: SuiteOptions): Promise<unknown> {
  const numpy = requireNumpy();
  const quick = opts.args.includes('quick');
  const reps = Number(opts.args.find((a) => a.startsWith('reps='))?.slice(5) ?? 1);
  const shape = quick ? QUICK : MEDIUM;
  return withTempDir('lowrank-bench-studio-', async (dir) => {
    const model = join(dir, 'model');
    const specs = llamaTensors(shape);
    const params = specs.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    const written = await writeModel(model, randomWeights(specs, { seed: 1, dtype: 'bf16', std: 0.02 }), { config: llamaConfig(shape), maxShardSize: 100e6 });
    console.log(`model: ${(params / 1e9).toFixed(3)}B parameters, bf16, ${fmtMiB(written.totalSize)} in ${written.shards.length} shard(s); lowrank analyze --fast (top 64 by randomized SVD), ${reps} run(s) each\n`);
    const server = await serveStudio({ port: 0 });
    const rows: Row[] = [];
    let tabThreads = '';
    try {
      const tab: Measured[] = [];
      for (let i = 0; i < reps; i++) {
        const r = await inTab(model, server.url);
        tabThreads = r.threads;
        tab.push(r);
        console.log(`tab: ${fmtSeconds(r.seconds)}, renderer peak ${fmtMiB(r.maxRssBytes)}`);
      }
      rows.push({ name: 'studio tab (chromium, wasm)', setting: tabThreads, runs: tab });
    } finally {
      await server.close();
    }
    const args = ['analyze', model, '--fast', '--json', join(dir, 'out.json'), '--force'];
    for (const { name, env } of blasSettings()) {
      rows.push({ name: 'lowrank node (native)', setting: name, runs: Array.from({ length: reps }, () => timeLowrank(args, env)) });
    }
    rows.push({ name: 'lowrank node (wasm)', setting: 'LOWRANK_BACKEND=wasm', runs: Array.from({ length: reps }, () => timeLowrank(args, { ...process.env, LOWRANK_BACKEND: 'wasm' })) });
    for (const { name, env } of blasSettings()) {
      rows.push({ name: 'numpy', setting: name, runs: Array.from({ length: reps }, () => runPythonJson<Measured>(NUMPY_SCRIPT, ['analyze', model, model], 'python3', env)) });
    }
    const med = (r: Row): number => median(r.runs.map((x) => x.seconds));
    const best = (prefix: string): number => Math.min(...rows.filter((r) => r.name.startsWith(prefix)).map(med));
    const tabSeconds = med(rows[0]);
    const nativeBest = best('lowrank node (native)');
    const numpyBest = best('numpy');
    console.log('');
    printTable(
      ['run', 'setting', 'time (median)', 'spread', 'peak memory', 'tab / this'],
      rows.map((r) => {
        const ts = r.runs.map((x) => x.seconds);
        return [r.name, r.setting, fmtSeconds(med(r)), `${fmtSeconds(Math.min(...ts))}–${fmtSeconds(Math.max(...ts))}`, fmtMiB(Math.max(...r.runs.map((x) => x.maxRssBytes))), fmtRatio(tabSeconds / med(r))];
      }),
    );
    const ratio = tabSeconds / nativeBest;
    console.log(`\ntab / Node native (best) ${fmtRatio(ratio)} (target ≤ 3×: ${ratio <= 3 ? 'met' : 'NOT met'}); tab / numpy (best) ${fmtRatio(tabSeconds / numpyBest)}`);
    return { numpy, shape, parameters: params, bytes: written.totalSize, reps, rows, tabOverNative: ratio, tabOverNumpy: tabSeconds / numpyBest };
  });
}
