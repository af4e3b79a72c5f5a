// Builds dist/studio/, the static studio page (`lowrank studio` serves it; any static host can):
// lowrank.js, the browser entry (dist/src/browser.js) bundled with its npm packages; its wasm
// worker beside it (browser-worker.js) and the kernels in kernels/; studio.js, the page's script,
// which imports ./lowrank.js; index.html; the built-in model in builtin/model/. Run by `npm run build` after tsc. esbuild is the only
// tool; the bundles are ES modules for current browsers.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const out = `${root}dist/studio/`;
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}kernels`, { recursive: true });

const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning', legalComments: 'none' };
await build({
  ...common,
  entryPoints: { lowrank: `${root}dist/src/browser.js`, 'browser-worker': `${root}dist/src/backend/wasm/browser-worker.js` },
  outdir: out,
  // The Node-only modules are imported through specifiers held in variables; esbuild says so and leaves them.
  logOverride: { 'unsupported-dynamic-import': 'silent' },
});
/** The page's script imports the library as the bundle beside it, not a second copy. */
const libraryBeside = {
  name: 'library-beside',
  setup(b) {
    b.onResolve({ filter: /\/browser\.js$/ }, () => ({ path: './lowrank.js', external: true }));
  },
};
await build({ ...common, entryPoints: { studio: `${root}dist/src/studio/app.js` }, outdir: out, plugins: [libraryBeside] });

const kernels = `${root}src/backend/wasm/kernels/`;
for (const f of readdirSync(kernels).filter((f) => f.endsWith('.wasm'))) copyFileSync(kernels + f, `${out}kernels/${f}`);
copyFileSync(`${root}src/studio/index.html`, `${out}index.html`);
// The built-in model, which the page fine-tunes (it fetches these into its file system).
const builtin = `${root}assets/builtin/model/`;
mkdirSync(`${out}builtin/model`, { recursive: true });
for (const f of readdirSync(builtin)) copyFileSync(builtin + f, `${out}builtin/model/${f}`);
