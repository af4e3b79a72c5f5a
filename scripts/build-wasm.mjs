#!/usr/bin/env node
/**
 * Build of lowrank's WebAssembly kernels (assembly/index.ts and the modules it exports from,
 * AssemblyScript) into
 * src/backend/wasm/kernels/, where the wasm backend's loader finds them from both src/ and dist/.
 * Run by `npm run build` (and so by `npm ci` through `prepare`) and by `npm run build:wasm`.
 *
 * One source gives four builds, the feature set chosen at compile time through
 * ASC_FEATURE_RELAXED_SIMD:
 *   gemm-relaxed-shared.wasm  relaxed SIMD (fused multiply-add), shared memory (worker threads)
 *   gemm-simd-shared.wasm     plain SIMD128, shared memory
 *   gemm-relaxed.wasm         relaxed SIMD, ordinary memory (no SharedArrayBuffer: one thread)
 *   gemm-simd.wasm            plain SIMD128, ordinary memory
 * Every build imports its memory as env.memory (JavaScript owns it) and exports only functions.
 *
 * Skips the work when every output is newer than the sources and this script; `--force` rebuilds.
 * Fails (exit 1) with a message when AssemblyScript is missing or a build fails.
 */
import console from 'node:console';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'assembly');
const entry = join(sourceDir, 'index.ts');
const outDir = join(root, 'src', 'backend', 'wasm', 'kernels');

/** The largest memory the modules accept, in 64 KiB pages (4 GiB, all of wasm32). */
const MAXIMUM_PAGES = 65536;

const COMMON = ['-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd', '--importMemory', '--initialMemory', '1', '--noExportMemory'];

const BUILDS = [
  { file: 'gemm-relaxed-shared.wasm', flags: ['--enable', 'relaxed-simd', '--enable', 'threads', '--sharedMemory', '--maximumMemory', String(MAXIMUM_PAGES)] },
  { file: 'gemm-simd-shared.wasm', flags: ['--enable', 'threads', '--sharedMemory', '--maximumMemory', String(MAXIMUM_PAGES)] },
  { file: 'gemm-relaxed.wasm', flags: ['--enable', 'relaxed-simd', '--maximumMemory', String(MAXIMUM_PAGES)] },
  { file: 'gemm-simd.wasm', flags: ['--maximumMemory', String(MAXIMUM_PAGES)] },
];

function fail(message) {
  console.error(`lowrank: building the WebAssembly kernels failed: ${message}`);
  process.exit(1);
}

function newestInput() {
  let newest = statSync(fileURLToPath(import.meta.url)).mtimeMs;
  for (const name of readdirSync(sourceDir)) {
    if (name.endsWith('.ts')) newest = Math.max(newest, statSync(join(sourceDir, name)).mtimeMs);
  }
  return newest;
}

function upToDate() {
  const newest = newestInput();
  return BUILDS.every((b) => {
    const out = join(outDir, b.file);
    return existsSync(out) && statSync(out).mtimeMs >= newest;
  });
}

async function main() {
  const force = process.argv.includes('--force');
  if (!existsSync(entry)) fail(`${relative(root, entry)} not found`);
  if (!force && upToDate()) {
    console.log(`lowrank: WebAssembly kernels are up to date (${relative(root, outDir)})`);
    return;
  }
  let asc;
  try {
    asc = (await import('assemblyscript/asc')).default;
  } catch (e) {
    fail(`AssemblyScript is not installed (${e instanceof Error ? e.message : String(e)}); run \`npm ci\` (it is a devDependency)`);
  }
  mkdirSync(outDir, { recursive: true });
  for (const build of BUILDS) {
    const out = join(outDir, build.file);
    const tmp = `${out}.${process.pid}.tmp`;
    const stderr = asc.createMemoryStream();
    const result = await asc.main([entry, ...COMMON, ...build.flags, '--outFile', tmp], { stdout: asc.createMemoryStream(), stderr });
    if (result.error !== null) {
      rmSync(tmp, { force: true });
      fail(`${build.file}: ${result.error.message}\n${stderr.toString()}`);
    }
    if (!existsSync(tmp)) fail(`${build.file}: the compiler wrote no binary\n${stderr.toString()}`);
    renameSync(tmp, out);
  }
  console.log(`lowrank: built ${BUILDS.length} WebAssembly kernels into ${relative(root, outDir)}`);
}

await main();
