/**
 * Helpers shared by the benchmark suites: timing, a python/numpy reference runner, child processes
 * that report their own peak memory, and formatting of tables, rates and ratios.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, tmpdir, totalmem } from 'node:os';

/** What every suite is given. */
export interface SuiteOptions {
  /** Arguments after the suite names on the command line (suites may ignore them). */
  readonly args: readonly string[];
}

/** A benchmark suite: `run` prints its tables and returns what is written to bench/out/<name>.json. */
export interface Suite {
  readonly description: string;
  run(opts: SuiteOptions): Promise<unknown>;
}

/** The folder of the compiled bench scripts (dist/bench), to spawn sibling entry points. */
export const BENCH_DIST_DIR = fileURLToPath(new URL('.', import.meta.url));

// ---- timing ------------------------------------------------------------------------------------

/** Seconds since an arbitrary origin, monotonic. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fn` `reps` times (after `warmup` untimed runs) and returns each run's seconds and their median. */
export async function timeRepeated(fn: () => unknown | Promise<unknown>, reps: number, warmup = 0): Promise<{ median: number; times: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    await fn();
    times.push(now() - t0);
  }
  return { median: median(times), times };
}

// ---- python / numpy ------------------------------------------------------------------------------

let numpyVersion: string | undefined;

/** Lines a python script can end with to print its peak RSS in bytes (`ru_maxrss` is KiB on Linux, bytes on macOS). */
export const PY_MAX_RSS = `
def _max_rss_bytes():
    import resource, sys
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == 'darwin' else r * 1024
`;

/** Lines defining `_peak_rss_bytes()`: VmHWM where /proc/self/status has it (see {@link peakRssBytes}), else `_max_rss_bytes()`. */
export const PY_PEAK_RSS = `
def _peak_rss_bytes():
    try:
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _max_rss_bytes()
`;

/** The numpy version, checking once that python3 and numpy are there (throws a clear error otherwise). */
export function requireNumpy(): string {
  if (numpyVersion !== undefined) return numpyVersion;
  const r = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
  if (r.error !== undefined) {
    throw new Error(`this benchmark compares against numpy and needs python3 with numpy; python3 could not be started: ${r.error.message}`);
  }
  if (r.status !== 0) {
    throw new Error(`this benchmark compares against numpy and needs python3 with numpy (pip install numpy); importing it failed:\n${r.stderr.trim()}`);
  }
  numpyVersion = r.stdout.trim();
  return numpyVersion;
}

/**
 * Runs a python3 script (numpy imported as np, and `_max_rss_bytes()` defined) with the given
 * arguments (and environment, this process's by default) and parses the JSON it prints on stdout
 * (its last non-empty line).
 */
export function runPythonJson<T>(script: string, args: readonly string[] = [], python = 'python3', env?: NodeJS.ProcessEnv): T {
  requireNumpy();
  // T0: the clock at the script's start, before numpy loads, for jobs timed like a whole process.
  const r = spawnSync(python, ['-c', `import time as _time\nT0 = _time.perf_counter()\nimport numpy as np\n${PY_MAX_RSS}\n${script}`, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.error !== undefined) throw new Error(`${python} could not be started: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${python} script failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}`);
  return parseLastJsonLine<T>(r.stdout, python);
}

// ---- PyTorch -------------------------------------------------------------------------------------

/** A python3 that imports torch (installing Debian's python3-torch when none does), or why not. */
export function findTorch(): { python?: string; version?: string; note?: string } {
  const probe = (py: string): string | undefined => {
    const r = spawnSync(py, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  for (const py of ['python3', '/usr/bin/python3']) {
    const v = probe(py);
    if (v !== undefined) return { python: py, version: v };
  }
  const install = spawnSync('apt-get', ['install', '-y', 'python3-torch'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const v = probe('/usr/bin/python3');
  if (v !== undefined) return { python: '/usr/bin/python3', version: v, note: 'installed Debian\'s python3-torch for the PyTorch column (apt-get install -y python3-torch)' };
  const why = install.error?.message ?? (install.stderr ?? '').trim().split('\n').slice(-2).join(' ');
  return { note: `PyTorch is not installed and \`apt-get install -y python3-torch\` failed (${why}); the PyTorch column is missing` };
}

// ---- node children -------------------------------------------------------------------------------

/**
 * Runs a compiled bench script (a path relative to dist/bench) in a fresh node process with the
 * given node flags (and environment, this process's by default) and parses the JSON it prints
 * last. Such scripts report their own peak memory with {@link peakRssBytes}.
 */
export function runNodeJson<T>(script: string, args: readonly string[], nodeFlags: readonly string[] = [], env?: NodeJS.ProcessEnv): T {
  const r = spawnSync(process.execPath, [...nodeFlags, fileURLToPath(new URL(script, import.meta.url)), ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.error !== undefined) throw new Error(`node child ${script} could not be started: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`node child ${script} failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}`);
  return parseLastJsonLine<T>(r.stdout, script);
}

/** This process's peak resident set size in bytes. */
export function maxRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * This process's own peak resident set size in bytes: VmHWM of /proc/self/status on Linux (the
 * peak of this program's memory alone), else {@link maxRssBytes}. A spawned child's `ru_maxrss`
 * starts at its parent's RSS at the fork (Linux keeps the pre-exec high-water mark), so a parent
 * that holds a large model or buffer inflates every child's maxRSS; VmHWM does not.
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return maxRssBytes();
}

/** Bytes this process has read through system calls so far (Linux `/proc/self/io` rchar), or undefined elsewhere. */
export function bytesReadSoFar(): number | undefined {
  try {
    const m = /^rchar:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

function parseLastJsonLine<T>(stdout: string, who: string): T {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const last = lines[lines.length - 1];
  try {
    return JSON.parse(last ?? '') as T;
  } catch {
    throw new Error(`${who} did not print JSON as its last line; it printed:\n${stdout.slice(-2000)}`);
  }
}

// ---- formatting ----------------------------------------------------------------------------------

/** Bytes per second as GB/s (10^9 bytes). */
export function fmtGBps(bytes: number, seconds: number): string {
  return `${(bytes / seconds / 1e9).toFixed(2)} GB/s`;
}

/** A ratio such as `0.83x`. */
export function fmtRatio(r: number): string {
  return `${r.toFixed(2)}x`;
}

/** Seconds as `123 ms` or `1.23 s`. */
export function fmtSeconds(s: number): string {
  return s < 1 ? `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`;
}

/** Bytes as MiB. */
export function fmtMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** Prints a table with a header row; columns are left-aligned, except those that look numeric. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.]/.test(r[c] ?? '')));
  const line = (r: readonly string[]): string =>
    r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** The machine a result was measured on, for the JSON output. */
export function machineInfo(): Record<string, unknown> {
  const c = cpus();
  return { node: process.version, platform: `${process.platform}-${process.arch}`, cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryBytes: totalmem() };
}

/**
 * Runs `fn` with a fresh temporary folder that is removed afterwards, also when the run is stopped
 * with Ctrl-C or SIGTERM (benchmarks write gigabytes there).
 */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const onSignal = (sig: NodeJS.Signals): void => {
    rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(dir);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The environments a peer runs under: as is, and without the OpenBLAS core and L2 overrides (the machine's faster kernels). */
export function blasSettings(): { name: string; env: NodeJS.ProcessEnv }[] {
  const asIs = { name: 'env as is', env: process.env };
  if (process.env.OPENBLAS_CORETYPE === undefined && process.env.OPENBLAS_L2_SIZE === undefined) return [asIs];
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return [asIs, { name: 'no OPENBLAS_CORETYPE/L2_SIZE', env }];
}

/**
 * Runs each configuration once and keeps the fastest (the least `seconds`), with its name and what
 * every try gave: a peer at its best configuration, found by trying.
 */
export function fastestOf<T>(tries: readonly { config: string; run: () => T }[], seconds: (r: T) => number): T & { config: string; tried: { config: string; seconds: number }[] } {
  const runs = tries.map((t) => ({ config: t.config, result: t.run() }));
  const top = runs.reduce((a, b) => (seconds(b.result) < seconds(a.result) ? b : a));
  return { ...top.result, config: top.config, tried: runs.map((r) => ({ config: r.config, seconds: seconds(r.result) })) };
}
