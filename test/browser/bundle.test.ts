/**
 * The browser entry bundles for browsers with nothing of Node in it: esbuild (platform browser,
 * which fails on any static import of a Node built-in) bundles dist/src/browser.js, and the modules
 * that only Node can run (the disk, the native backend, the wasm backend's Node host, the CLI, the
 * studio's server) must not be among its inputs. Node-only code is reached only through dynamic
 * imports whose specifiers are variables (core/host.ts), which no bundler follows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NODE_ONLY = ['dist/src/io/nodeFs.js', 'dist/src/backend/native/', 'dist/src/backend/wasm/node.js', 'dist/src/cli/', 'dist/src/studio/serve.js'];

test('bundle: the browser entry bundles for browsers without a Node-only module or a Node built-in', async () => {
  const result = await build({
    entryPoints: [`${ROOT}dist/src/browser.js`],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
  });
  assert.deepEqual(result.errors, []);
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.includes('dist/src/io/memoryFs.js') && inputs.includes('dist/src/tools/extract.js') && inputs.includes('dist/src/train/mainJob.js'), 'the bundle holds the library');
  for (const prefix of NODE_ONLY) assert.deepEqual(inputs.filter((i) => i.startsWith(prefix)), [], `nothing of ${prefix} is bundled`);
  const [output] = Object.values(result.metafile.outputs);
  assert.deepEqual(output.imports.filter((i) => i.external), [], 'the bundle imports nothing from outside it');
});

test('bundle: the built studio bundle (dist/studio/lowrank.js) has no static import of a Node built-in', async () => {
  const text = await readFile(`${ROOT}dist/studio/lowrank.js`, 'utf8');
  assert.ok(text.length > 100_000, 'the studio bundle is built');
  assert.doesNotMatch(text, /\bfrom\s*["']node:|\brequire\(\s*["']node:|\bimport\s*["']node:/);
});
