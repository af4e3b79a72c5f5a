/**
 * The browser host of the wasm backend: kernel files fetched ahead of time (so that the loader can
 * read them synchronously), `navigator.hardwareConcurrency` cores, and module Web Workers started
 * from browser-worker.ts.
 *
 * Threads need shared memory, which browsers grant only to cross-origin isolated pages (served
 * with `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`,
 * or `credentialless`). Elsewhere the backend computes on the calling thread and its
 * `info.threadsNote` says why. Browsers have no switch for relaxed SIMD: it is on in Chromium ≥ 114
 * and Firefox ≥ 120, and the SIMD128 build is used where it is not.
 *
 * This module imports nothing of Node; see src/browser.ts for the package's browser entry.
 */
import { LowrankError } from '../../core/errors.js';
import { createWasmBackendOn, type WasmBackend, type WasmBackendOptions } from './create.js';
import { kernelFile } from './loader.js';
import type { Platform, WorkerPort } from './platform.js';

/** Settings of {@link createBrowserWasmBackend}: those of every wasm backend, and where its files are. */
export interface BrowserWasmOptions extends WasmBackendOptions {
  /**
   * The folder (URL) holding the kernel files (gemm-*.wasm). Default: the package's
   * src/backend/wasm/kernels/, found from this module's URL (dist/src/backend/wasm/browser.js).
   * A relative string is resolved against the page.
   */
  readonly kernelBase?: URL | string;
  /** The worker entry (browser-worker.js, a module). Default: the one beside this module. */
  readonly workerUrl?: URL | string;
}

/** What the host offers that the backend's choices depend on. */
interface BrowserHost {
  /** Whether the page (or worker) is cross-origin isolated. */
  readonly isolated: boolean;
  /** Whether shared WebAssembly memory backed by a SharedArrayBuffer can be made. */
  readonly shared: boolean;
  /** Logical cores. */
  readonly cores: number;
}

/** The headers a page needs for worker threads, for messages. */
const ISOLATION_HEADERS = '`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`';

/** Why a page that is not cross-origin isolated computes on one thread. */
const NOT_ISOLATED = `the page is not cross-origin isolated, so it has no SharedArrayBuffer for worker threads (serve it with ${ISOLATION_HEADERS})`;

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function probeHost(): BrowserHost {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  let shared = false;
  if (typeof SharedArrayBuffer !== 'undefined') {
    try {
      // The same test as the loader's (its smallest size): shared memory backed by a SharedArrayBuffer.
      shared = new WebAssembly.Memory({ initial: 1, maximum: 4096, shared: true }).buffer instanceof SharedArrayBuffer;
    } catch {
      shared = false;
    }
  }
  const reported = typeof navigator === 'object' ? navigator.hardwareConcurrency : undefined;
  const cores = typeof reported === 'number' && Number.isInteger(reported) && reported >= 1 ? reported : 1;
  return { isolated, shared, cores };
}

/**
 * The default folder of the kernel files: from dist/src/backend/wasm/browser.js, the package's
 * src/backend/wasm/kernels/ (where scripts/build-wasm.mjs writes them, and which the package
 * ships); from a copy of this module elsewhere (a bundle), kernels/ beside it.
 */
function defaultKernelBase(): URL {
  const here = new URL(import.meta.url);
  if (here.pathname.endsWith('/dist/src/backend/wasm/browser.js')) return new URL('../../../../src/backend/wasm/kernels/', here);
  return new URL('./kernels/', here);
}

/** A URL option, relative ones resolved against the page (or worker). */
function optionUrl(name: string, value: URL | string): URL {
  const page = typeof location === 'object' ? location.href : undefined;
  try {
    return new URL(value, page);
  } catch (e) {
    throw new LowrankError('E_USAGE', `${name} '${String(value)}' is not a URL: ${describe(e)}`, {}, { cause: e });
  }
}

/** The kernel folder's URL, ending in '/' so that file names resolve inside it. */
function folderUrl(base: URL | string): URL {
  const url = optionUrl('kernelBase', base);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** Fetches one kernel file: its bytes and URL, or why not (which the loader reports). */
async function fetchKernel(url: URL): Promise<{ bytes: Uint8Array<ArrayBuffer>; path: string } | { reason: string }> {
  const hint = 'pass kernelBase, the URL of the folder that serves lowrank\'s src/backend/wasm/kernels/*.wasm';
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    return { reason: `cannot fetch the WebAssembly kernel ${url.href} (${describe(e)}): ${hint}` };
  }
  if (!response.ok) return { reason: `cannot fetch the WebAssembly kernel ${url.href} (HTTP ${response.status} ${response.statusText}): ${hint}` };
  try {
    return { bytes: new Uint8Array(await response.arrayBuffer()), path: url.href };
  } catch (e) {
    return { reason: `cannot read the WebAssembly kernel ${url.href}: ${describe(e)}` };
  }
}

/** Starts one module worker running browser-worker.js; see {@link Platform.spawnWorker}. */
function spawn(workerUrl: URL | undefined, onMessage: (message: unknown) => void, onError: (error: Error) => void): WorkerPort {
  // The default is written out in full, the pattern bundlers recognize to ship the worker's module.
  const worker =
    workerUrl !== undefined
      ? new Worker(workerUrl, { type: 'module', name: 'lowrank-wasm' })
      : new Worker(new URL('./browser-worker.js', import.meta.url), { type: 'module', name: 'lowrank-wasm' });
  const where = workerUrl?.href ?? new URL('./browser-worker.js', import.meta.url).href;
  let ended = false;
  const end = (error: Error): void => {
    if (ended) return;
    ended = true;
    // A browser worker outlives an uncaught error; this one is of no more use (the pool replaces it).
    worker.terminate();
    onError(error);
  };
  worker.onmessage = (event: MessageEvent<unknown>) => onMessage(event.data);
  worker.onerror = (event: Event) => {
    event.preventDefault();
    // An uncaught error in the worker comes as an ErrorEvent; a script that failed to load, as a plain Event.
    const message = (event as Partial<ErrorEvent>).message;
    end(new Error(typeof message === 'string' && message !== '' ? message : `${where} failed to load (is it served, as text/javascript, with the page's cross-origin headers?)`));
  };
  worker.onmessageerror = () => end(new Error('a message from the wasm worker could not be received'));
  return {
    postMessage: (message) => worker.postMessage(message),
    // Browsers keep a page alive regardless of its workers.
    ref: () => undefined,
    unref: () => undefined,
    terminate: () => {
      ended = true;
      worker.terminate();
    },
  };
}

/**
 * A browser {@link Platform} over kernel files already fetched (`kernels`, by file name), starting
 * workers from `workerUrl` (default: browser-worker.js beside this module). Exported for hosts
 * that fetch the files themselves and pass it to createWasmBackendOn.
 */
export function browserPlatform(
  kernels: ReadonlyMap<string, { bytes: Uint8Array<ArrayBuffer>; path: string } | { reason: string }>,
  workerUrl?: URL,
): Platform {
  return {
    name: 'browser',
    readKernel: (file) => kernels.get(file) ?? { reason: `the WebAssembly kernel ${file} was not fetched (this host's memory differs from what was probed)` },
    enableRelaxedSimd: () => false,
    parallelism: () => probeHost().cores,
    workersUnavailable: () => {
      if (typeof Worker !== 'function') return 'this JavaScript context cannot start Web Workers';
      if (!probeHost().isolated) return NOT_ISOLATED;
      return undefined;
    },
    spawnWorker: (onMessage, onError) => spawn(workerUrl, onMessage, onError),
    setting: () => undefined,
  };
}

/**
 * A wasm backend for a browser page or worker, with its own memory and workers: fetches the
 * kernel files it needs, then builds the backend as in Node (the fastest SIMD build the browser
 * validates; workers over shared memory when the page is cross-origin isolated, else one thread,
 * with `info.threadsNote` saying why). Rejects with LowrankError E_UNSUPPORTED when the browser
 * lacks WebAssembly SIMD or the kernel files cannot be fetched, E_USAGE for a bad setting.
 */
export async function createBrowserWasmBackend(options: BrowserWasmOptions = {}): Promise<WasmBackend> {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') {
    throw new LowrankError('E_UNSUPPORTED', 'this browser has no WebAssembly');
  }
  const { kernelBase, workerUrl, ...settings } = options;
  const host = probeHost();
  const base = kernelBase !== undefined ? folderUrl(kernelBase) : defaultKernelBase();
  const files = [kernelFile('simd128', host.shared)];
  if (settings.simd !== 'simd128') files.push(kernelFile('relaxed', host.shared));
  const fetched = await Promise.all(files.map((file) => fetchKernel(new URL(file, base))));
  const kernels = new Map(files.map((file, i) => [file, fetched[i]] as const));
  const worker = workerUrl !== undefined ? optionUrl('workerUrl', workerUrl) : undefined;

  const backend = createWasmBackendOn(browserPlatform(kernels, worker), settings);
  const asked = settings.threads !== undefined && settings.threads < 2;
  if (!host.isolated && backend.info.threads === 1 && host.cores > 1 && !asked) {
    // The loader's note says only that SharedArrayBuffer is missing; say what to do about it.
    return { ...backend, info: { ...backend.info, threadsNote: NOT_ISOLATED } };
  }
  return backend;
}
