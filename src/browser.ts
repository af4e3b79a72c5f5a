/**
 * lowrank's entry for browsers (the package's "browser" export, also `lowrank/browser`): the
 * library without Node. `core`, `linalg` (on the js backend until {@link initWasmBackend} has made
 * the wasm one), `tensor`, and over a file system the page installs ({@link useFileSystem}, a
 * {@link memoryFileSystem} holding the files the user gave and the outputs): `io`, `analysis`,
 * `tools`, `methods`, `infer` and `train`, the same code as in Node. The native backend is not here.
 * `npm run build` bundles this module (and its npm packages) into dist/studio/lowrank.js.
 *
 * ```ts
 * import { initWasmBackend, linalg } from 'lowrank';  // the "browser" condition picks this module
 * const wasm = await initWasmBackend();                 // fetches the kernels, starts no worker yet
 * console.log(wasm.info.threads, wasm.info.threadsNote);
 * const c = await linalg.matmul(a, b);
 * ```
 *
 * Worker threads need a cross-origin isolated page (`Cross-Origin-Opener-Policy: same-origin`,
 * `Cross-Origin-Embedder-Policy: require-corp`); without it products run on the page's thread.
 */
import { useBackendInstance } from './backend/index.js';
import { createBrowserWasmBackend, type BrowserWasmOptions } from './backend/wasm/browser.js';
import type { WasmBackend } from './backend/wasm/create.js';

export * as core from './core/index.js';
export * as linalg from './linalg/index.js';
export * as tensor from './tensor/index.js';
export * as io from './io/index.js';
export * as analysis from './analysis/index.js';
export * as tools from './tools/index.js';
export * as methods from './methods/index.js';
export * as infer from './infer/index.js';
export * as train from './train/index.js';
export { useFileSystem, fs, type FileSystem, type FileHandle, type FileStats } from './io/fs.js';
export { memoryFileSystem, type MemoryFileSystem } from './io/memoryFs.js';
export { LowrankError, FormatError, isLowrankError, type ErrorCode } from './core/errors.js';
export type { Tensor, TensorSpec } from './core/tensor.js';
export type { DType, FloatDType, Storage } from './core/dtype.js';
export type { Backend, BackendName } from './backend/types.js';
export type { WasmBackend, WasmBackendOptions, WasmInfo } from './backend/wasm/create.js';
export type { SimdChoice, SimdLevel } from './backend/wasm/loader.js';
export { createBrowserWasmBackend, type BrowserWasmOptions } from './backend/wasm/browser.js';
export { useBackendInstance } from './backend/index.js';

/**
 * Makes a wasm backend for this page ({@link createBrowserWasmBackend}: fetches the kernel files,
 * threads when the page is cross-origin isolated) and makes it the one `linalg` uses; returns it,
 * with its `info` (SIMD level, threads, and why only one). Rejects with LowrankError
 * E_UNSUPPORTED when the browser lacks WebAssembly SIMD or the kernels cannot be fetched (pass
 * `kernelBase` when they are not served beside the package's dist/).
 */
export async function initWasmBackend(options: BrowserWasmOptions = {}): Promise<WasmBackend> {
  const wasm = await createBrowserWasmBackend(options);
  const threads = wasm.info.threads === 1 ? 'one thread' : `${wasm.info.threads} worker threads`;
  useBackendInstance(wasm, `made by initWasmBackend() (${wasm.info.simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD128'}, ${threads})`);
  return wasm;
}
