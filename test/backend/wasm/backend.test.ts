/**
 * The wasm backend as a whole: loading and `wasmInfo`, its decompositions reconstructing their
 * input, the settings it reads, that idle workers never keep a process alive (while a pending
 * product does), and the single-threaded fallback without SharedArrayBuffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWasmBackend, createWasmBackendOn, loadWasmBackend, wasmBackend, wasmInfo, type Platform } from '../../../src/backend/wasm/index.js';
import { nodePlatform } from '../../../src/backend/wasm/node.js';
import type { Matrix } from '../../../src/backend/types.js';
import { LowrankError } from '../../../src/core/errors.js';
import { rng } from '../../../src/core/rng.js';

const INDEX = new URL('../../../src/backend/wasm/index.js', import.meta.url).href;

/** Runs an ES module script in a fresh node process (extra node flags first); returns its result. */
function node(script: string, flags: readonly string[] = [], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string; ms: number } {
  const t = performance.now();
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t };
}

function frobDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] ** 2;
  return Math.sqrt(s);
}

test('loadWasmBackend loads here and wasmInfo describes it', () => {
  const r = loadWasmBackend();
  assert.equal(r.reason, undefined, `the wasm backend should load: ${r.reason}`);
  assert.equal(r.backend, wasmBackend);
  const info = wasmInfo();
  assert.ok(info.available, 'wasmInfo: available');
  assert.ok(info.simd === 'relaxed' || info.simd === 'simd128');
  assert.ok(info.threads >= 1);
  assert.match(info.kernel, /gemm-(relaxed|simd)(-shared)?\.wasm$/);
  assert.ok(info.maximumMemoryBytes >= 256 * 2 ** 20);
});

test('wasm backend decompositions: svd, qr and cholesky reconstruct', async () => {
  for (const dt of ['f32', 'f64'] as const) {
    const tol = dt === 'f32' ? 1e-5 : 1e-12;
    const values = rng(5).fillNormal(new Float64Array(12 * 7));
    const a: Matrix = { rows: 12, cols: 7, data: dt === 'f32' ? Float32Array.from(values) : values };

    const { u, s, vt } = await wasmBackend.svd(a, 'thin');
    assert.ok(u !== undefined && vt !== undefined);
    assert.equal(s.length, 7);
    const us = Float64Array.from(u.data);
    for (let i = 0; i < 12; i++) for (let j = 0; j < 7; j++) us[i * 7 + j] *= s[j];
    const usm: Matrix = { rows: 12, cols: 7, data: dt === 'f32' ? Float32Array.from(us) : us };
    const rec = await wasmBackend.matmul(usm, vt, false, false);
    assert.ok(frobDiff(rec.data, a.data) <= tol * 10 * frob(a.data), `${dt} svd reconstruction`);

    const { q, r } = await wasmBackend.qr(a);
    const qr = await wasmBackend.matmul(q, r, false, false);
    assert.ok(frobDiff(qr.data, a.data) <= tol * 10 * frob(a.data), `${dt} qr reconstruction`);

    const gram = await wasmBackend.matmul(a, a, true, false);
    const l = await wasmBackend.cholesky(gram);
    const llt = await wasmBackend.matmul(l, l, false, true);
    assert.ok(frobDiff(llt.data, gram.data) <= tol * 10 * frob(gram.data), `${dt} cholesky reconstruction`);
  }
});

test('a worker that dies fails the product with E_INTERNAL, and the next product gets a new worker', async () => {
  let spawned = 0;
  const flaky: Platform = {
    ...nodePlatform,
    spawnWorker(onMessage, onError) {
      spawned++;
      if (spawned > 1) return nodePlatform.spawnWorker(onMessage, onError);
      setTimeout(() => onError(new Error('simulated crash')), 1);
      return { postMessage: () => undefined, ref: () => undefined, unref: () => undefined, terminate: () => undefined };
    },
  };
  const be = createWasmBackendOn(flaky, { threads: 2, minThreadedFlops: 0 });
  try {
    const a: Matrix = { rows: 40, cols: 30, data: rng(8).fillNormal(new Float64Array(1200)) };
    await assert.rejects(
      be.matmul(a, a, false, true),
      (e: unknown) => e instanceof LowrankError && e.code === 'E_INTERNAL' && /simulated crash/.test(e.message),
    );
    const c = await be.matmul(a, a, false, true);
    const ref = await createWasmBackend({ threads: 1 }).matmul(a, a, false, true);
    assert.deepEqual(Array.from(c.data), Array.from(ref.data));
    assert.equal(spawned, 3);
  } finally {
    be.close();
  }
});

test('createWasmBackend rejects bad settings with E_USAGE', () => {
  assert.throws(
    () => createWasmBackend({ threads: 0 }),
    (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE',
  );
  assert.throws(
    () => createWasmBackend({ threads: 1.5 }),
    (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE',
  );
});

test('LOWRANK_WASM_THREADS and LOWRANK_WASM_SIMD choose threads and kernel build', () => {
  const r = node(`import { wasmInfo } from ${JSON.stringify(INDEX)}; console.log(JSON.stringify(wasmInfo()));`, [], {
    LOWRANK_WASM_THREADS: '1',
    LOWRANK_WASM_SIMD: 'simd128',
  });
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { available: boolean; threads: number; simd: string };
  assert.equal(info.available, true);
  assert.equal(info.threads, 1);
  assert.equal(info.simd, 'simd128');

  const bad = node(`import { loadWasmBackend } from ${JSON.stringify(INDEX)}; console.log(loadWasmBackend().reason);`, [], { LOWRANK_WASM_SIMD: 'avx' });
  assert.equal(bad.status, 0, bad.stderr);
  assert.match(bad.stdout, /LOWRANK_WASM_SIMD must be auto, relaxed or simd128/);
});

test('idle workers do not keep the process alive; a pending threaded product does', () => {
  const script = `
    import { createWasmBackend } from ${JSON.stringify(INDEX)};
    const be = createWasmBackend({ threads: 2, minThreadedFlops: 0 });
    const a = { rows: 300, cols: 200, data: new Float32Array(60000).fill(1) };
    const b = { rows: 200, cols: 100, data: new Float32Array(20000).fill(2) };
    const c = await be.matmul(a, b, false, false);
    console.log(be.info.threads, c.data[0], c.data[29999]);
  `;
  const r = node(script);
  assert.equal(r.status, 0, `exit status ${r.status}: ${r.stderr}`);
  assert.match(r.stdout.trim(), /^\d+ 400 400$/);
  assert.ok(r.ms < 30_000, `the process took ${r.ms} ms to exit`);
});

test('without SharedArrayBuffer the backend runs single-threaded on the non-shared build', () => {
  const script = `
    import { wasmInfo, wasmBackend } from ${JSON.stringify(INDEX)};
    const info = wasmInfo();
    const c = await wasmBackend.matmul({ rows: 2, cols: 3, data: Float64Array.of(1, 2, 3, 4, 5, 6) }, { rows: 3, cols: 1, data: Float64Array.of(1, 1, 1) }, false, false);
    console.log(JSON.stringify({ info, c: Array.from(c.data) }));
  `;
  const r = node(script, ['--no-harmony-sharedarraybuffer']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { info: { available: boolean; threads: number; sharedMemory: boolean; kernel: string; threadsNote?: string }; c: number[] };
  assert.equal(out.info.available, true);
  assert.equal(out.info.sharedMemory, false);
  assert.equal(out.info.threads, 1);
  assert.doesNotMatch(out.info.kernel, /-shared\.wasm$/);
  assert.deepEqual(out.c, [6, 15]);
});
