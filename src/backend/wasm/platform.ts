/**
 * What the wasm backend needs from its host, so that everything but one module is plain
 * JavaScript that runs in Node and in browsers alike. node.ts implements it over node:fs,
 * node:v8, node:os and node:worker_threads; browser.ts fetches the kernel files ahead of time and
 * starts module Web Workers (which need cross-origin isolation for shared memory).
 */

/** The main thread's end of one worker. */
export interface WorkerPort {
  /** Sends a message (structured clone: WebAssembly.Module and shared WebAssembly.Memory included). */
  postMessage(message: unknown): void;
  /** Keeps the process alive while the worker has work (a no-op where there is no such notion). */
  ref(): void;
  /** Lets the process exit while the worker is idle. */
  unref(): void;
  /** Stops the worker. */
  terminate(): void;
}

/** The host services the wasm backend uses. */
export interface Platform {
  /** A short name for messages ("node"). */
  readonly name: string;
  /** The bytes of a kernel file built by scripts/build-wasm.mjs, with where they came from, or why not. */
  readKernel(file: string): { bytes: Uint8Array<ArrayBuffer>; path: string } | { reason: string };
  /**
   * Turns on relaxed SIMD where the engine has it behind a flag (Node 20: V8's
   * --experimental-wasm-relaxed-simd); returns whether it tried.
   */
  enableRelaxedSimd(): boolean;
  /** How many threads can run at once (logical cores). */
  parallelism(): number;
  /** Why no workers can be started here, or undefined when they can. */
  workersUnavailable(): string | undefined;
  /**
   * Starts a worker that serves kernel jobs (see serveKernels in protocol.ts); it starts unref'd.
   * `onMessage` gets every message it posts, `onError` an error that ended it.
   */
  spawnWorker(onMessage: (message: unknown) => void, onError: (error: Error) => void): WorkerPort;
  /** A setting from the environment (LOWRANK_WASM_THREADS, LOWRANK_WASM_SIMD), or undefined. */
  setting(name: string): string | undefined;
}
