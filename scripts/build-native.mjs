#!/usr/bin/env node
/**
 * Install-time build of lowrank's optional native backend (native/: an N-API addon over OpenBLAS
 * and LAPACKE). Run by npm's `install` script and by `npm run build:native`.
 *
 * 1. Probe: compile and run a tiny C program that links CBLAS, LAPACKE and OpenBLAS, trying the
 *    usual header/library layouts (Debian/Ubuntu, Fedora, Homebrew) unless LOWRANK_BLAS_CFLAGS /
 *    LOWRANK_BLAS_LIBS say exactly what to use.
 * 2. Build: `node-gyp rebuild --directory native` with npm's node-gyp, passing the flags that worked.
 * 3. Check: load the built addon in a child process.
 *
 * It never fails the install: when the libraries are missing or anything goes wrong it prints one
 * line saying the native backend is unavailable and how to get it, and exits 0 (lowrank then uses
 * WebAssembly). The full build output goes to native/build/build-native.log.
 * LOWRANK_SKIP_NATIVE=1 skips the build; LOWRANK_NATIVE_VERBOSE=1 shows node-gyp's output.
 */
import { spawnSync } from 'node:child_process';
import console from 'node:console';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const buildDir = join(nativeDir, 'build');
const addonPath = join(buildDir, 'Release', 'lowrank_native.node');
const logPath = join(buildDir, 'build-native.log');
const verbose = process.env.LOWRANK_NATIVE_VERBOSE === '1' || ['verbose', 'silly'].includes(process.env.npm_config_loglevel ?? '');

const HOW_TO_GET =
  'install the libraries (Debian/Ubuntu: apt-get install libopenblas-dev liblapacke-dev), then run `npm rebuild lowrank` (or `npm run build:native` in a checkout)';

/** Prints the one line and ends the script successfully. */
function unavailable(why) {
  console.log(`lowrank: the fast native backend (OpenBLAS + LAPACKE) is unavailable: ${why}; lowrank will use WebAssembly. To get it, ${HOW_TO_GET}.`);
  process.exit(0);
}

/** Header/library layouts to try, first match wins. */
function candidates() {
  const cflags = process.env.LOWRANK_BLAS_CFLAGS;
  const libs = process.env.LOWRANK_BLAS_LIBS;
  if (libs !== undefined && libs !== '') return [{ cflags: cflags ?? '', libs }];
  const brew = (prefix) => ({
    cflags: `-I${prefix}/include`,
    libs: `-L${prefix}/lib -Wl,-rpath,${prefix}/lib -lopenblas`,
  });
  return [
    { cflags: cflags ?? '', libs: '-llapacke -lopenblas' }, // Debian, Ubuntu
    { cflags: cflags ?? '', libs: '-llapacke -lopenblas -lcblas' },
    { cflags: '-I/usr/include/openblas', libs: '-lopenblas' }, // Fedora, RHEL (LAPACKE inside libopenblas)
    { cflags: '-I/usr/include/openblas', libs: '-llapacke -lopenblas' },
    brew('/opt/homebrew/opt/openblas'), // macOS, Apple silicon
    brew('/usr/local/opt/openblas'), // macOS, Intel
  ];
}

/** Every routine the addon uses, so a missing one fails the probe rather than the build or the load. */
const PROBE = `
#include <cblas.h>
#include <lapacke.h>
#include <stdio.h>
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);
typedef void (*fn)(void);
int main(void) {
  fn used[] = {
    (fn)cblas_sgemm, (fn)cblas_dgemm, (fn)cblas_strsm, (fn)cblas_dtrsm,
    (fn)LAPACKE_sgelqf, (fn)LAPACKE_dgelqf, (fn)LAPACKE_sorglq, (fn)LAPACKE_dorglq,
    (fn)LAPACKE_sgesdd, (fn)LAPACKE_dgesdd, (fn)LAPACKE_sgesvd, (fn)LAPACKE_dgesvd,
    (fn)LAPACKE_ssyevd, (fn)LAPACKE_dsyevd, (fn)LAPACKE_sgetrf, (fn)LAPACKE_dgetrf,
    (fn)LAPACKE_spotrf, (fn)LAPACKE_dpotrf, (fn)openblas_get_corename, (fn)openblas_get_num_threads,
    (fn)openblas_get_parallel,
  };
  double a[4] = {4, 2, 2, 3}, s[2], u[4], vt[4];
  if (LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'A', 2, 2, a, 2, s, u, 2, vt, 2) != 0) return 2;
  printf("%s\\n", openblas_get_config());
  return used[0] == 0;
}
`;

function split(flags) {
  return flags.split(/\s+/).filter((f) => f !== '');
}

/** The first layout that compiles, links and runs the probe, or the last error. */
function probe() {
  const [cc, ...ccArgs] = split(process.env.CC ?? 'cc');
  const dir = mkdtempSync(join(tmpdir(), 'lowrank-native-'));
  try {
    const src = join(dir, 'probe.c');
    const exe = join(dir, 'probe');
    writeFileSync(src, PROBE);
    let lastError = 'no layout tried';
    for (const c of candidates()) {
      const r = spawnSync(cc, [...ccArgs, ...split(c.cflags), src, '-o', exe, ...split(c.libs)], { encoding: 'utf8', timeout: 120_000 });
      if (r.error !== undefined) {
        return { error: r.error.code === 'ENOENT' ? `no C compiler (${cc}) was found` : `${cc} failed to start (${r.error.message})` };
      }
      if (r.status !== 0) {
        const firstError = (r.stderr ?? '').split('\n').find((l) => /error|cannot find|not found/i.test(l));
        lastError = `OpenBLAS/LAPACKE not found (${(firstError ?? `${cc} exited with ${r.status}`).trim()})`;
        continue;
      }
      const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 60_000 });
      if (run.status === 0) return { layout: c, config: run.stdout.trim() };
      lastError = `a program linked with "${c.libs}" did not run (${run.error?.message ?? (run.stderr.trim() || `exit ${run.status}`)})`;
    }
    return { error: lastError };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** npm's node-gyp: the one npm names during lifecycle scripts, else the one next to npm or node. */
function findNodeGyp() {
  const found = [];
  if (process.env.npm_config_node_gyp) found.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) found.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const prefix = dirname(dirname(process.execPath));
  found.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  found.push(join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  found.push(join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return found.find((p) => existsSync(p));
}

function main() {
  if (process.env.LOWRANK_SKIP_NATIVE === '1') {
    console.log('lowrank: native backend build skipped (LOWRANK_SKIP_NATIVE=1); lowrank will use WebAssembly.');
    return;
  }
  if (process.platform === 'win32') unavailable('it is not built on Windows yet');
  if (!existsSync(join(nativeDir, 'binding.gyp')) || !existsSync(join(nativeDir, 'lowrank.c'))) {
    unavailable('native/binding.gyp or native/lowrank.c is missing from the package');
  }

  const found = probe();
  if (found.error !== undefined) unavailable(found.error);

  const gyp = findNodeGyp();
  if (gyp === undefined) unavailable("npm's node-gyp was not found");

  const args = [gyp, 'rebuild', '--directory', nativeDir];
  // Without a configured nodedir node-gyp downloads headers; use the installed ones when present.
  const prefix = dirname(dirname(process.execPath));
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
  const env = { ...process.env, LOWRANK_BLAS_CFLAGS: found.layout.cflags, LOWRANK_BLAS_LIBS: found.layout.libs };
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: verbose ? 'inherit' : 'pipe',
    timeout: 600_000,
    maxBuffer: 64 << 20,
  });
  let log = `$ ${process.execPath} ${args.join(' ')}\nLOWRANK_BLAS_CFLAGS=${env.LOWRANK_BLAS_CFLAGS}\nLOWRANK_BLAS_LIBS=${env.LOWRANK_BLAS_LIBS}\n\n${r.stdout ?? ''}${r.stderr ?? ''}`;
  const writeLog = () => {
    try {
      mkdirSync(buildDir, { recursive: true });
      writeFileSync(logPath, log);
    } catch {
      // the log is a convenience
    }
  };
  if (r.error !== undefined || r.status !== 0) {
    writeLog();
    unavailable(`node-gyp failed (${r.error?.message ?? `exit ${r.status}`}; see ${logPath})`);
  }

  const check = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(addonPath)}); process.stdout.write(a.info().config)`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (check.status !== 0) {
    log += `\n--- load check ---\n${check.stdout ?? ''}${check.stderr ?? ''}`;
    writeLog();
    rmSync(addonPath, { force: true });
    unavailable(`the built addon did not load (see ${logPath})`);
  }
  writeLog();
  console.log(`lowrank: built the native backend (${check.stdout.trim()}).`);
}

try {
  main();
} catch (e) {
  unavailable(`the build script failed (${e instanceof Error ? e.message : String(e)})`);
}
