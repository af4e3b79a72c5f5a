/**
 * The kernel module's exports, its instantiation, and the messages between the main thread and
 * the workers that run kernels on a shared memory. Platform-neutral: a worker's entry point (in
 * node.ts for Node) only wires {@link serveKernels} to its message port.
 */

/** The element types the kernels compute in. */
export type Dtype = 'f32' | 'f64';

/**
 * The functions assembly/gemm.ts exports. Pointers are byte addresses into the imported memory;
 * leading dimensions are in elements.
 */
export interface KernelExports {
  /** C = op(A)·op(B) (or C += … when accumulate ≠ 0) in float32. */
  sgemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    accumulate: number,
    scratch: number,
  ): void;
  /** The same in float64. */
  dgemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    accumulate: number,
    scratch: number,
  ): void;
  /** Bytes of scratch one sgemm call needs. */
  sgemmScratchBytes(): number;
  /** Bytes of scratch one dgemm call needs. */
  dgemmScratchBytes(): number;
}

const EXPORTS = ['sgemm', 'dgemm', 'sgemmScratchBytes', 'dgemmScratchBytes'] as const;

/** Instantiates the kernel module on a memory; throws when the module lacks an export. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as Record<string, unknown>;
  const missing = EXPORTS.filter((name) => typeof exports[name] !== 'function');
  if (missing.length > 0) throw new Error(`the kernel module lacks ${missing.join(', ')}; rebuild it with \`npm run build:wasm\``);
  return exports as unknown as KernelExports;
}

/** The arguments of one gemm call, in the order of {@link KernelExports.sgemm}. */
export type GemmArgs = [
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
  ldc: number,
  accumulate: number,
  scratch: number,
];

/** Runs one gemm call on an instance. */
export function runGemm(kernels: KernelExports, dtype: Dtype, args: GemmArgs): void {
  if (dtype === 'f32') kernels.sgemm(...args);
  else kernels.dgemm(...args);
}

/** Main thread → worker. */
export type ToWorker =
  | { readonly type: 'init'; readonly module: WebAssembly.Module; readonly memory: WebAssembly.Memory }
  | { readonly type: 'gemm'; readonly id: number; readonly dtype: Dtype; readonly args: GemmArgs };

/** Worker → main thread. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/**
 * The worker side: returns the handler for messages from the main thread; replies go through
 * `post`. The first message must be 'init'; each 'gemm' is answered by 'done' or 'failed'.
 */
export function serveKernels(post: (message: FromWorker) => void): (message: ToWorker) => void {
  let kernels: KernelExports | undefined;
  return (message) => {
    if (message.type === 'init') {
      kernels = instantiate(message.module, message.memory);
      post({ type: 'ready' });
      return;
    }
    try {
      if (kernels === undefined) throw new Error('the worker got a job before its kernels');
      runGemm(kernels, message.dtype, message.args);
      post({ type: 'done', id: message.id });
    } catch (e) {
      post({ type: 'failed', id: message.id, message: e instanceof Error ? e.message : String(e) });
    }
  };
}
