/**
 * Choosing a backend: LOWRANK_BACKEND=js|wasm|native or {@link useBackend} forces one; otherwise
 * the fastest available is used (native when its addon loaded, then wasm, then js).
 */
import { LowrankError } from '../core/errors.js';
import { jsBackend } from './js/index.js';
import { loadNativeBackend } from './native/index.js';
import { loadWasmBackend } from './wasm/index.js';
import type { Backend, BackendName } from './types.js';

export type { Backend, BackendName, FloatArray, Matrix, SvdJob, SvdResult } from './types.js';

/** Whether a backend can run here, and if not, why. */
export interface BackendStatus {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it is unavailable, or what it runs on. */
  readonly detail: string;
}

const PREFERENCE: readonly BackendName[] = ['native', 'wasm', 'js'];

function load(name: BackendName): { backend?: Backend; reason?: string } {
  if (name === 'js') return { backend: jsBackend };
  if (name === 'native') return loadNativeBackend();
  return loadWasmBackend();
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
