/**
 * The kernel module's exports, its instantiation, and the messages between the main thread and
 * the workers that run kernels on a shared memory. Platform-neutral: a worker's entry point (in
 * node.ts for Node, browser-worker.ts in browsers) only wires {@link serveKernels} to its port.
 */

/** The element types the kernels compute in. */
export type Dtype = 'f32' | 'f64';

/**
 * The functions assembly/index.ts exports, as JavaScript sees them: every argument a number
 * (pointers are byte addresses into the imported memory, leading dimensions in elements). An
 * s-prefixed kernel computes in float32, a d-prefixed one in float64.
 */
export interface KernelExports {
  /** C = op(A)·op(B) (or C += … when accumulate ≠ 0): transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, scratch. */
  sgemm(...args: number[]): void;
  dgemm(...args: number[]): void;
  /** Bytes of scratch one sgemm / dgemm call needs. */
  sgemmScratchBytes(): number;
  dgemmScratchBytes(): number;
  /** Householder QR in place: a, m, n, refl, taus, w, out (assembly/householder.ts). */
  sqr(...args: number[]): void;
  dqr(...args: number[]): void;
  /** Golub–Kahan bidiagonalization: w, m, n, d, e, left, leftTau, right, rightTau, scratch, out. */
  sbidiagonalize(...args: number[]): void;
  dbidiagonalize(...args: number[]): void;
  /** Symmetric tridiagonalization: s, n, d, e, refl, taus, p, out. */
  stridiagonalize(...args: number[]): void;
  dtridiagonalize(...args: number[]): void;
  /** Rows r0 … r1 of an accumulated orthogonal factor: x, ld, r0, r1, refl, ldr, taus, nrefl, off. */
  sformRows(...args: number[]): void;
  dformRows(...args: number[]): void;
  /** A rotation log applied to columns c0 … c1: x, ld, c0, c1, rows, cs, count (assembly/rotations.ts). */
  srotate(...args: number[]): void;
  drotate(...args: number[]): void;
}

/** The kernels a job can run: those that compute (not the size queries). */
export type KernelName = Exclude<keyof KernelExports, 'sgemmScratchBytes' | 'dgemmScratchBytes'>;

const EXPORTS: readonly (keyof KernelExports)[] = [
  'sgemm',
  'dgemm',
  'sgemmScratchBytes',
  'dgemmScratchBytes',
  'sqr',
  'dqr',
  'sbidiagonalize',
  'dbidiagonalize',
  'stridiagonalize',
  'dtridiagonalize',
  'sformRows',
  'dformRows',
  'srotate',
  'drotate',
];

/** The name of a kernel in the element type: `kernel(dtype, 'gemm')` is 'sgemm' or 'dgemm'. */
export function kernel<B extends string>(dtype: Dtype, base: B): `s${B}` | `d${B}` {
  return dtype === 'f32' ? `s${base}` : `d${base}`;
}

/** Instantiates the kernel module on a memory; throws when the module lacks an export. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as Record<string, unknown>;
  const missing = EXPORTS.filter((name) => typeof exports[name] !== 'function');
  if (missing.length > 0) throw new Error(`the kernel module lacks ${missing.join(', ')}; rebuild it with \`npm run build:wasm\``);
  return exports as unknown as KernelExports;
}

/** One kernel call: which kernel and its arguments. */
export interface Job {
  readonly kernel: KernelName;
  readonly args: readonly number[];
}

/** Runs one job on an instance. */
export function runJob(kernels: KernelExports, job: Job): void {
  kernels[job.kernel](...job.args);
}

/** Main thread → worker. */
export type ToWorker =
  | { readonly type: 'init'; readonly module: WebAssembly.Module; readonly memory: WebAssembly.Memory }
  | { readonly type: 'run'; readonly id: number; readonly job: Job };

/** Worker → main thread. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/**
 * The worker side: returns the handler for messages from the main thread; replies go through
 * `post`. The first message must be 'init'; each 'run' is answered by 'done' or 'failed'.
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
      runJob(kernels, message.job);
      post({ type: 'done', id: message.id });
    } catch (e) {
      post({ type: 'failed', id: message.id, message: e instanceof Error ? e.message : String(e) });
    }
  };
}
