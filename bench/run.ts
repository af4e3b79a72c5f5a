/**
 * Benchmark entry point: `node dist/bench/run.js <suite> [<suite> ...] [-- suite args]` runs the
 * named suites, each printing its tables and writing its results to bench/out/<suite>.json. With no
 * suite named it lists them. (`npm run bench -- io` builds first, then runs the io suite.)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, now, type Suite } from './util.js';

/** Every suite: its name and the module that implements it (loaded only when it runs). */
const SUITES: Record<string, () => Promise<Suite>> = {
  io: () => import('./io.js'),
  linalg: () => import('./linalg.js'),
  tensor: () => import('./tensor.js'),
  tools: () => import('./tools.js'),
  init: () => import('./init.js'),
  skinny: () => import('./skinny.js'),
  train: () => import('./train.js'),
  generate: () => import('./generate.js'),
  studio: () => import('./studio.js'),
};

/** bench/out/ of the repository (this file runs from dist/bench/). */
const OUT_DIR = fileURLToPath(new URL('../../bench/out/', import.meta.url));

async function main(argv: readonly string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const names = dash < 0 ? [...argv] : argv.slice(0, dash);
  const args = dash < 0 ? [] : argv.slice(dash + 1);
  if (names.length === 0 || names.includes('--help') || names.includes('-h')) {
    console.log('usage: node dist/bench/run.js <suite> [<suite> ...] [-- suite args]\n\nsuites:');
    for (const [name, load] of Object.entries(SUITES)) console.log(`  ${name.padEnd(8)} ${(await load()).description}`);
    console.log(`\nresults are written to ${OUT_DIR}<suite>.json`);
    return 0;
  }
  const unknown = names.filter((n) => !Object.hasOwn(SUITES, n));
  if (unknown.length > 0) {
    console.error(`unknown suite${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (known: ${Object.keys(SUITES).join(', ')})`);
    return 2;
  }
  await mkdir(OUT_DIR, { recursive: true });
  let failed = 0;
  for (const name of names) {
    const suite = await SUITES[name]();
    console.log(`\n=== ${name}: ${suite.description} ===\n`);
    const t0 = now();
    try {
      const results = await suite.run({ args });
      const seconds = now() - t0;
      const file = join(OUT_DIR, `${name}.json`);
      const record = { suite: name, date: new Date().toISOString(), seconds, machine: machineInfo(), results };
      await writeFile(file, JSON.stringify(record, null, 2) + '\n');
      console.log(`\n${name}: done in ${seconds.toFixed(1)} s; results in ${file}`);
    } catch (e) {
      failed++;
      console.error(`\n${name}: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
