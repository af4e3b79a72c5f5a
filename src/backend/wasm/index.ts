/**
 * The wasm backend: matrix products and the qr, svd and eigh decompositions in WebAssembly SIMD
 * (relaxed fused multiply-add where the engine has it, else SIMD128) on worker threads sharing one
 * WebAssembly.Memory, or on the calling thread where there are no threads (no SharedArrayBuffer,
 * one core, or LOWRANK_WASM_THREADS=1). Everything is computed in the inputs' element type, like
 * BLAS and LAPACK, and is bit-identical for any number of threads. lu, cholesky and
 * solveTriangular are the js backend's.
 *
 * Settings (read once, at the first use): LOWRANK_WASM_THREADS (a positive integer; default the
 * number of cores) and LOWRANK_WASM_SIMD (auto, relaxed or simd128; default auto).
 *
 * The kernels are built from assembly/ by scripts/build-wasm.mjs. This module binds the backend to
 * Node (node.ts: files, V8 flags, worker_threads); everything else is host-neutral, and the browser
 * entry (src/browser.ts) builds it through browser.ts's createBrowserWasmBackend.
 */
import { LowrankError } from '../../core/errors.js';
import { jsBackend } from '../js/index.js';
import { composeBackend } from '../compose.js';
import type { Backend } from '../types.js';
import { createWasmBackendOn, type WasmBackend, type WasmBackendOptions, type WasmInfo } from './create.js';
import { nodePlatform } from './node.js';

export type { SimdChoice, SimdLevel } from './loader.js';
export type { WasmBackend, WasmBackendOptions, WasmInfo } from './create.js';
export type { Platform, WorkerPort } from './platform.js';
export { createWasmBackendOn } from './create.js';

/**
 * A wasm backend with its own memory and workers (tests and benchmarks compare thread counts and
 * SIMD levels this way); throws LowrankError E_UNSUPPORTED when WebAssembly SIMD or the kernel
 * files are missing.
 */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  return createWasmBackendOn(nodePlatform, options);
}

let loaded: { backend: WasmBackend } | { reason: string } | undefined;

function loadDefault(): { backend: WasmBackend } | { reason: string } {
  if (loaded !== undefined) return loaded;
  try {
    loaded = { backend: createWasmBackendOn(nodePlatform, {}) };
  } catch (e) {
    loaded = { reason: e instanceof Error ? e.message : String(e) };
  }
  return loaded;
}

function defaultBackend(): WasmBackend {
  const r = loadDefault();
  if ('reason' in r) throw new LowrankError('E_UNSUPPORTED', `the wasm backend is unavailable: ${r.reason}`);
  return r.backend;
}

/**
 * The process-wide wasm backend, made at its first call from LOWRANK_WASM_THREADS and
 * LOWRANK_WASM_SIMD; its calls throw E_UNSUPPORTED where it cannot run ({@link loadWasmBackend}
 * says whether it can).
 */
export const wasmBackend: Backend = composeBackend(
  {
    name: 'wasm',
    matmul: (a, b, transA, transB) => defaultBackend().matmul(a, b, transA, transB),
    matmulAdd: (c, a, b, alpha, transA, transB) => defaultBackend().matmulAdd(c, a, b, alpha, transA, transB),
    matmulAddHalf: (c, a, b, alpha, transA, transB, format) => defaultBackend().matmulAddHalf(c, a, b, alpha, transA, transB, format),
    qr: (a) => defaultBackend().qr(a),
    svd: (a, job) => defaultBackend().svd(a, job),
    eigh: (a, vectors) => defaultBackend().eigh(a, vectors),
  },
  jsBackend,
);

/**
 * Loads the wasm backend once (later calls return the same result): `backend` when WebAssembly
 * SIMD and the built kernels are there, else `reason`, which says why not and how to fix it.
 */
export function loadWasmBackend(): { backend?: Backend; reason?: string } {
  const r = loadDefault();
  return 'reason' in r ? { reason: r.reason } : { backend: wasmBackend };
}

/** The kernel build (relaxed SIMD or SIMD128) and threads of the wasm backend, for `lowrank doctor`. */
export function wasmInfo(): WasmInfo {
  const r = loadDefault();
  return 'reason' in r ? { available: false, reason: r.reason } : r.backend.info;
}
