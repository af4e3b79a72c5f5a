/**
 * Choosing a backend: LOWRANK_BACKEND=js|wasm|native or {@link useBackend} forces one; otherwise
 * the fastest available is used (native when its addon loaded, then wasm, then js).
 *
 * This module runs in browsers too: the Node-only loaders (the native addon, and the wasm backend
 * over node:fs and worker_threads) are imported only when the host is Node. In a browser, native is
 * unavailable and wasm is there once a backend made by the browser entry (src/browser.ts) has been
 * installed with {@link useBackendInstance}; until then the js backend is used.
 */
import { LowrankError } from '../core/errors.js';
import { IN_NODE } from '../core/host.js';
import { jsBackend } from './js/index.js';
import type { Backend, BackendName } from './types.js';

export type { Backend, BackendName, FloatArray, HalfFormat, Matrix, SvdJob, SvdResult } from './types.js';

/** Whether a backend can run here, and if not, why. */
export interface BackendStatus {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it is unavailable, or what it runs on. */
  readonly detail: string;
}

const PREFERENCE: readonly BackendName[] = ['native', 'wasm', 'js'];

/** Loads one backend: `backend`, or `reason` saying why it cannot run here. */
type Loader = () => { backend?: Backend; reason?: string };

/** Where Node's loaders are (variables, so that bundlers for browsers leave them out). */
const NATIVE_MODULE = './native/index.js';
const WASM_MODULE = './wasm/index.js';

/**
 * The native and wasm loaders of Node, or undefined elsewhere (browsers, where their modules'
 * node:* imports cannot load).
 */
async function nodeLoaders(): Promise<{ native: Loader; wasm: Loader } | undefined> {
  if (!IN_NODE) return undefined;
  const [native, wasm] = await Promise.all([
    import(/* webpackIgnore: true */ /* @vite-ignore */ NATIVE_MODULE) as Promise<typeof import('./native/index.js')>,
    import(/* webpackIgnore: true */ /* @vite-ignore */ WASM_MODULE) as Promise<typeof import('./wasm/index.js')>,
  ]);
  return { native: native.loadNativeBackend, wasm: wasm.loadWasmBackend };
}

const host = await nodeLoaders();

/** Backends installed with {@link useBackendInstance}, by name. */
const installed = new Map<BackendName, Backend>();

function load(name: BackendName): { backend?: Backend; reason?: string } {
  const own = installed.get(name);
  if (own !== undefined) return { backend: own };
  if (name === 'js') return { backend: jsBackend };
  if (host !== undefined) return name === 'native' ? host.native() : host.wasm();
  return name === 'native'
    ? { reason: 'the native backend (OpenBLAS and LAPACKE through an N-API addon) needs Node.js' }
    : { reason: "in a browser the wasm backend is made ahead of time: call initWasmBackend() from lowrank's browser entry" };
}

let current: Backend | undefined;
let why = '';

/** Every backend lowrank knows, whether it is available, and why not. */
export function backendStatus(): BackendStatus[] {
  return PREFERENCE.map((name) => {
    const r = load(name);
    return { name, available: r.backend !== undefined, detail: r.backend !== undefined ? 'available' : (r.reason ?? 'unavailable') };
  });
}

/** Forces a backend for this process; throws E_UNSUPPORTED when it cannot run here. */
export function useBackend(name: BackendName): Backend {
  if (!PREFERENCE.includes(name)) throw new LowrankError('E_USAGE', `unknown backend '${name}' (expected one of ${PREFERENCE.join(', ')})`);
  const r = load(name);
  if (r.backend === undefined) throw new LowrankError('E_UNSUPPORTED', `backend '${name}' is unavailable: ${r.reason}`);
  current = r.backend;
  why = 'chosen with useBackend()';
  return current;
}

/**
 * Makes a backend object the one in use (and the one `useBackend(backend.name)` returns): a wasm
 * backend made with other settings, or in a browser the one made by the browser entry, whose
 * kernel files had to be fetched first. `reason` is what {@link backendReason} reports.
 */
export function useBackendInstance(instance: Backend, reason = 'installed with useBackendInstance()'): Backend {
  if (!PREFERENCE.includes(instance.name)) throw new LowrankError('E_USAGE', `unknown backend '${instance.name}' (expected one of ${PREFERENCE.join(', ')})`);
  installed.set(instance.name, instance);
  current = instance;
  why = reason;
  return current;
}

/** The backend in use: forced by LOWRANK_BACKEND or useBackend(), else the fastest available. */
export function backend(): Backend {
  if (current !== undefined) return current;
  const forced = typeof process !== 'undefined' ? process.env.LOWRANK_BACKEND : undefined;
  if (forced !== undefined && forced !== '') {
    useBackend(forced as BackendName);
    why = `forced by LOWRANK_BACKEND=${forced}`;
    return current as unknown as Backend;
  }
  for (const name of PREFERENCE) {
    const r = load(name);
    if (r.backend !== undefined) {
      current = r.backend;
      why = name === 'js' ? 'the fastest available (native and wasm are unavailable)' : 'the fastest available';
      return current;
    }
  }
  throw new LowrankError('E_INTERNAL', 'no backend could be loaded');
}

/** Why the current backend was chosen (for `lowrank doctor`). */
export function backendReason(): string {
  backend();
  return why;
}
