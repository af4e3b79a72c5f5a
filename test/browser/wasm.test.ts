/**
 * The wasm backend in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) loads a page that imports the package's browser entry as the build bundles it
 * (dist/studio/lowrank.js), served by the studio's server with the kernel files beside it.
 *
 * Served with `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
 * require-corp`, the page is cross-origin isolated: the backend must use the shared kernel build on
 * ≥ 2 Web Workers. Served without them, it must fall back to one thread and say why. Both compute
 * a float32 and a float64 product large enough for the workers (256×300 · 300×200) and the SVD of
 * a seeded 64×48 matrix, checked here against float64 references computed by this test:
 * products to a relative (Frobenius) error of 1e-5 (f32) and 1e-12 (f64); singular values within
 * 1e-5·σ₁ (f32) and 1e-12·σ₁ (f64) of a one-sided Jacobi SVD, and ‖A − U·diag(s)·Vᵀ‖/‖A‖ as tight.
 *
 * Fails (does not skip) when chromium is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type * as Lowrank from '../../src/browser.js';
import { rng } from '../../src/core/rng.js';
import { serveStudio, STUDIO_DIR } from '../../src/studio/serve.js';
import { referenceProduct } from '../helpers/reference.js';
import { launch } from '../helpers/chromium.js';

/** The page: its script imports the bundled browser entry and leaves it (or why it failed) on globalThis. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>lowrank wasm backend</title>
<link rel="icon" href="data:,">
<script type="module" src="./page.js"></script>
`;
const PAGE_SCRIPT = `import('./lowrank.js').then(
  (m) => { globalThis.lowrank = m; },
  (e) => { globalThis.lowrankError = String((e && e.stack) || e); },
);
`;

const TOL = {
  f32: { product: 1e-5, sv: 1e-5, recon: 1e-5 },
  f64: { product: 1e-12, sv: 1e-12, recon: 1e-12 },
} as const;

const [M, K, N] = [256, 300, 200];
const [SM, SN] = [64, 48];

/**
 * The studio's server over a folder holding the build's bundle (dist/studio/: lowrank.js, its
 * worker, the kernels) and this test's page, with or without the cross-origin isolation headers.
 */
async function serve(isolated: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lowrank-wasm-page-'));
  await cp(STUDIO_DIR, dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), PAGE);
  await writeFile(join(dir, 'page.js'), PAGE_SCRIPT);
  const server = await serveStudio({ port: 0, isolated, dir });
  return {
    url: server.url,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Seeded inputs, float32 so that both dtypes see the same values. */
function inputs(): { a: Float32Array; b: Float32Array; s: Float32Array } {
  const r = rng(20240611);
  const f32 = (n: number): Float32Array => r.fillNormal(new Float32Array(n));
  return { a: f32(M * K), b: f32(K * N), s: f32(SM * SN) };
}

/**
 * Arrays cross into and out of the page as base64 of their bytes: Playwright serializes a plain
 * array number by number, which takes seconds for these sizes.
 */
function toBase64(x: Float32Array | Float64Array): string {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
}

function fromBase64(b64: string, dtype: 'f32' | 'f64'): Float32Array | Float64Array {
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  return dtype === 'f32' ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
}


/** ‖x − y‖_F / ‖y‖_F. */
function relativeError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length, 'lengths differ');
  let d = 0;
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    d += (x[i] - y[i]) ** 2;
    s += y[i] ** 2;
  }
  return Math.sqrt(d / s);
}

/** The singular values of an m×n matrix (m ≥ n), descending, by one-sided Jacobi in float64. */
function singularValues(a: ArrayLike<number>, m: number, n: number): number[] {
  const u = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          const x = u[i * n + p];
          const y = u[i * n + q];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = u[i * n + p];
          const y = u[i * n + q];
          u[i * n + p] = c * x - s * y;
          u[i * n + q] = s * x + c * y;
        }
      }
    }
    if (off < 1e-15) break;
  }
  const norms: number[] = [];
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += u[i * n + j] ** 2;
    norms.push(Math.sqrt(s));
  }
  return norms.sort((x, y) => y - x);
}

/** U·diag(s)·Vᵀ of a thin SVD (u m×r, vt r×n). */
function reconstruct(u: ArrayLike<number>, s: ArrayLike<number>, vt: ArrayLike<number>, m: number, n: number): Float64Array {
  const r = s.length;
  const us = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) us[i * r + j] = u[i * r + j] * s[j];
  return referenceProduct(us, m, r, vt, n);
}

/** What the page gets; arrays are base64 of float32 bytes. */
interface PageInput {
  readonly a: string;
  readonly b: string;
  readonly s: string;
  readonly shapes: { M: number; K: number; N: number; SM: number; SN: number };
  /** The fewest threads to ask for (on a machine with fewer cores), or null for the default (one per core). */
  readonly minThreads: number | null;
}

/** An SVD from the page; arrays are base64 of the dtype's bytes. */
interface SvdOut {
  readonly u: string;
  readonly s: string;
  readonly vt: string;
}

interface PageOutput {
  readonly crossOriginIsolated: boolean;
  readonly hardwareConcurrency: number;
  readonly info: Lowrank.WasmBackend['info'];
  readonly inUse: string;
  readonly why: string;
  /** The products, base64 of float32 and float64 bytes. */
  readonly f32: string;
  readonly f64: string;
  readonly svd32: SvdOut;
  readonly svd64: SvdOut;
  readonly ms: number;
}

/** Runs in the page: makes the wasm backend, then the products and SVDs through linalg. */
async function inPage(input: PageInput): Promise<PageOutput> {
  const lowrank = (globalThis as unknown as { lowrank: typeof Lowrank }).lowrank;
  const { core, linalg } = lowrank;
  const { M, K, N, SM, SN } = input.shapes;
  const few = input.minThreads !== null && navigator.hardwareConcurrency < input.minThreads;
  const wasm = await lowrank.initWasmBackend(few ? { threads: input.minThreads ?? undefined } : {});
  const decode = (b64: string): Float32Array => {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  };
  const encode = (x: Float32Array | Float64Array): string => {
    const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  };
  const [a, b, s] = [decode(input.a), decode(input.b), decode(input.s)];
  const t0 = performance.now();
  const c32 = await linalg.matmul(core.tensor('f32', [M, K], a), core.tensor('f32', [K, N], b));
  const c64 = await linalg.matmul(core.tensor('f64', [M, K], Float64Array.from(a)), core.tensor('f64', [K, N], Float64Array.from(b)));
  const d32 = await linalg.svd(core.tensor('f32', [SM, SN], s));
  const d64 = await linalg.svd(core.tensor('f64', [SM, SN], Float64Array.from(s)));
  const ms = performance.now() - t0;
  const out = (d: { u: { data: Float32Array | Float64Array }; s: { data: Float32Array | Float64Array }; vt: { data: Float32Array | Float64Array } }): SvdOut => ({
    u: encode(d.u.data),
    s: encode(d.s.data),
    vt: encode(d.vt.data),
  });
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    info: wasm.info,
    inUse: linalg.backend().name,
    why: linalg.backendReason(),
    f32: encode(c32.data),
    f64: encode(c64.data),
    svd32: out(d32),
    svd64: out(d64),
    ms,
  };
}

/** A page of the browser, with what went wrong in it (uncaught errors, console errors, HTTP errors). */
interface OpenPage {
  readonly page: Page;
  readonly errors: string[];
  /** Web Workers the page has started. */
  workers: number;
}

/** Opens the page at `url` and waits for the browser entry to load; closes it after `use`. */
async function withPage<T>(url: string, use: (p: OpenPage) => Promise<T>): Promise<T> {
  const page: Page = await (await launch()).newPage();
  const open: OpenPage = { page, errors: [], workers: 0 };
  page.on('pageerror', (e) => open.errors.push(e.stack ?? e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') open.errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) open.errors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('worker', () => open.workers++);
  try {
    await page.goto(url);
    await page.waitForFunction(() => 'lowrank' in globalThis || 'lowrankError' in globalThis, undefined, { timeout: 15_000 });
    const loadError = await page.evaluate(() => (globalThis as { lowrankError?: string }).lowrankError);
    assert.equal(loadError, undefined, `the browser entry failed to load: ${loadError}`);
    return await use(open);
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\npage errors: ${open.errors.join('\n') || 'none'}`, { cause: e });
  } finally {
    await page.close();
  }
}

/** Loads the page from `url` and runs {@link inPage}; returns its output and the workers it started. */
async function run(url: string, minThreads: number | null): Promise<{ out: PageOutput; workers: number; errors: string[] }> {
  return withPage(url, async (open) => {
    const x = inputs();
    const input: PageInput = { a: toBase64(x.a), b: toBase64(x.b), s: toBase64(x.s), shapes: { M, K, N, SM, SN }, minThreads };
    const out = await open.page.evaluate(inPage, input);
    return { out, workers: open.workers, errors: open.errors };
  });
}

/** Checks the page's products and SVDs against this test's float64 references. */
function checkResults(out: PageOutput): void {
  const x = inputs();
  const c = referenceProduct(x.a, M, K, x.b, N);
  const e32 = relativeError(fromBase64(out.f32, 'f32'), c);
  const e64 = relativeError(fromBase64(out.f64, 'f64'), c);
  assert.ok(e32 <= TOL.f32.product, `f32 product: relative error ${e32} > ${TOL.f32.product}`);
  assert.ok(e64 <= TOL.f64.product, `f64 product: relative error ${e64} > ${TOL.f64.product}`);

  const sv = singularValues(x.s, SM, SN);
  for (const [dt, svd] of [['f32', out.svd32] as const, ['f64', out.svd64] as const]) {
    const d = { u: fromBase64(svd.u, dt), s: fromBase64(svd.s, dt), vt: fromBase64(svd.vt, dt) };
    assert.equal(d.s.length, SN, `${dt} svd: ${d.s.length} singular values`);
    assert.equal(d.u.length, SM * SN, `${dt} svd: u has ${d.u.length} elements`);
    assert.equal(d.vt.length, SN * SN, `${dt} svd: vt has ${d.vt.length} elements`);
    const worst = Math.max(...sv.map((v, i) => Math.abs(d.s[i] - v)));
    assert.ok(worst <= TOL[dt].sv * sv[0], `${dt} svd: a singular value is off by ${worst} > ${TOL[dt].sv}·σ₁ (σ₁ = ${sv[0]})`);
    const recon = relativeError(reconstruct(d.u, d.s, d.vt, SM, SN), x.s);
    assert.ok(recon <= TOL[dt].recon, `${dt} svd: ‖A − USVᵀ‖/‖A‖ = ${recon} > ${TOL[dt].recon}`);
  }
}

test('browser: a cross-origin isolated page runs the wasm backend on Web Workers over shared memory', { timeout: 60_000 }, async (t) => {
  const server = await serve(true);
  t.after(() => server.close());
  const started = performance.now();
  // The default is one thread per core; on a one-core machine two are asked for, to show the workers working.
  const { out, workers, errors } = await run(server.url, 2);

  assert.equal(out.crossOriginIsolated, true, 'the page should be cross-origin isolated');
  assert.equal(out.info.sharedMemory, true, `shared memory: ${JSON.stringify(out.info)}`);
  assert.match(out.info.kernel, /\/gemm-(relaxed|simd)-shared\.wasm$/, 'the shared kernel build');
  assert.ok(out.info.threads >= 2, `threads: ${JSON.stringify(out.info)}`);
  assert.equal(out.info.threadsNote, undefined);
  if (out.hardwareConcurrency >= 2) assert.equal(out.info.threads, out.hardwareConcurrency, 'one thread per core by default');
  assert.equal(out.inUse, 'wasm');
  assert.match(out.why, /initWasmBackend/);
  // 2·256·200·300 flops are past the threading threshold: the product is split among the workers.
  assert.ok(workers >= 2, `the products should have started ≥ 2 Web Workers, saw ${workers}`);
  checkResults(out);
  assert.deepEqual(errors, [], 'no errors in the page');
  t.diagnostic(`chromium: ${out.info.simd}, ${out.info.threads} threads, ${workers} workers; in-page compute ${out.ms.toFixed(0)} ms, test ${(performance.now() - started).toFixed(0)} ms`);
});

test('browser: without cross-origin isolation the wasm backend computes on one thread and says why', { timeout: 60_000 }, async (t) => {
  const server = await serve(false);
  t.after(() => server.close());
  const started = performance.now();
  const { out, workers, errors } = await run(server.url, null);

  assert.equal(out.crossOriginIsolated, false);
  assert.equal(out.info.threads, 1, `threads: ${JSON.stringify(out.info)}`);
  assert.equal(out.info.sharedMemory, false);
  assert.match(out.info.kernel, /\/gemm-(relaxed|simd)\.wasm$/, 'the unshared kernel build');
  if (out.hardwareConcurrency > 1) {
    assert.match(out.info.threadsNote ?? '', /not cross-origin isolated.*Cross-Origin-Opener-Policy.*Cross-Origin-Embedder-Policy/, 'the note says what to serve');
  }
  assert.equal(out.inUse, 'wasm');
  assert.equal(workers, 0, 'no Web Worker without shared memory');
  checkResults(out);
  assert.deepEqual(errors, [], 'no errors in the page');
  t.diagnostic(`chromium: ${out.info.simd}, 1 thread; in-page compute ${out.ms.toFixed(0)} ms, test ${(performance.now() - started).toFixed(0)} ms`);
});

test('browser: missing kernel files and a missing worker script fail with typed errors that say where', { timeout: 60_000 }, async (t) => {
  const server = await serve(true);
  t.after(() => server.close());
  const result = await withPage(server.url, (open) =>
    open.page.evaluate(async () => {
      const lowrank = (globalThis as unknown as { lowrank: typeof Lowrank }).lowrank;
      const failure = (e: unknown): { code?: string; message: string } => ({
        code: lowrank.isLowrankError(e) ? e.code : undefined,
        message: e instanceof Error ? e.message : String(e),
      });
      let kernels: { code?: string; message: string } | undefined;
      try {
        await lowrank.createBrowserWasmBackend({ kernelBase: '/nowhere/' });
      } catch (e) {
        kernels = failure(e);
      }
      let worker: { code?: string; message: string } | undefined;
      const wasm = await lowrank.createBrowserWasmBackend({ workerUrl: '/nowhere/worker.js', threads: 2, minThreadedFlops: 1 });
      try {
        const n = 64;
        const a = { rows: n, cols: n, data: new Float32Array(n * n).fill(1) };
        await wasm.matmul(a, a, false, false);
      } catch (e) {
        worker = failure(e);
      } finally {
        wasm.close();
      }
      return { kernels, worker };
    }),
  );
  assert.equal(result.kernels?.code, 'E_UNSUPPORTED', `missing kernels: ${JSON.stringify(result.kernels)}`);
  assert.match(result.kernels?.message ?? '', /\/nowhere\/gemm-simd-shared\.wasm \(HTTP 404 Not Found\).*kernelBase/);
  assert.equal(result.worker?.code, 'E_INTERNAL', `missing worker script: ${JSON.stringify(result.worker)}`);
  assert.match(result.worker?.message ?? '', /wasm worker failed: .*\/nowhere\/worker\.js failed to load/);
});
