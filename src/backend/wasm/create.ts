/**
 * The wasm backend over any host ({@link Platform}): kernel choice, threads, the engine, products
 * and decompositions on its kernels (lu, cholesky and solveTriangular are the js backend's). Host-neutral; index.ts binds it to Node.
 */
import { LowrankError } from '../../core/errors.js';
import { jsBackend } from '../js/index.js';
import { composeBackend } from '../compose.js';
import type { Backend, FloatArray, Matrix } from '../types.js';
import { eighOn } from './eigh.js';
import { Engine } from './engine.js';
import { matmulOn, type GemmOptions } from './gemm.js';
import { loadKernels, type SimdChoice, type SimdLevel } from './loader.js';
import type { Platform } from './platform.js';
import { qrOn } from './qr.js';
import { svdOn } from './svd.js';

/** Settings of a wasm backend made with {@link createWasmBackendOn} (or createWasmBackend in Node). */
export interface WasmBackendOptions {
  /**
   * Worker threads for large products; 1 computes on the calling thread. Default:
   * LOWRANK_WASM_THREADS, else the number of cores. Without shared memory or workers it is 1.
   */
  readonly threads?: number;
  /** Which kernel build to use; 'auto' (default: LOWRANK_WASM_SIMD, else auto) picks the fastest. */
  readonly simd?: SimdChoice;
  /** Products of fewer floating-point operations (2·m·n·k) run on the calling thread (default 2^22). */
  readonly minThreadedFlops?: number;
  /** The most bytes of WebAssembly memory the operands may take before a product is tiled (default 1 GiB). */
  readonly maxWorkingBytes?: number;
  /**
   * The most rotations svd and eigh log per factor before applying them on the calling thread
   * (default 2^22); the rest are applied by all threads at the end.
   */
  readonly maxRotationLog?: number;
}

/** What wasmInfo() reports: the kernel build and threads in use, or why the backend cannot run. */
export type WasmInfo =
  | {
      readonly available: true;
      /** 'relaxed' (fused multiply-add) or 'simd128'. */
      readonly simd: SimdLevel;
      /** Whether relaxed SIMD had to be turned on with V8's --experimental-wasm-relaxed-simd (Node 20). */
      readonly relaxedSimdFlag: boolean;
      /** Threads a large product runs on (1: the calling thread). */
      readonly threads: number;
      /** Why there is only one thread, when the machine has more cores. */
      readonly threadsNote?: string;
      /** Whether the memory is shared (SharedArrayBuffer), which threads need. */
      readonly sharedMemory: boolean;
      /** The kernel file in use. */
      readonly kernel: string;
      /** The largest WebAssembly memory this host grants, in bytes. */
      readonly maximumMemoryBytes: number;
    }
  | { readonly available: false; readonly reason: string };

/** A wasm backend of its own (own memory and workers). */
export interface WasmBackend extends Backend {
  /** Its kernel build and threads. */
  readonly info: Extract<WasmInfo, { available: true }>;
  /** Stops its workers (they are unref'd while idle, so this is only needed to free them early). */
  close(): void;
}

const DEFAULT_MIN_THREADED_FLOPS = 2 ** 22;
const DEFAULT_WORKING_BYTES = 2 ** 30;
const DEFAULT_ROTATION_LOG = 2 ** 22;

function positiveInteger(name: string, value: number | string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new LowrankError('E_USAGE', `${name} must be a positive integer, got '${value}'`);
  return n;
}

function simdChoice(value: string | undefined): SimdChoice {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'relaxed' || value === 'simd128') return value;
  throw new LowrankError('E_USAGE', `LOWRANK_WASM_SIMD must be auto, relaxed or simd128, got '${value}'`);
}

/**
 * A wasm backend on a host, with its own memory and workers; throws LowrankError E_UNSUPPORTED when
 * the host cannot run it (no WebAssembly SIMD, kernels not built) and E_USAGE for a bad setting.
 */
export function createWasmBackendOn(platform: Platform, options: WasmBackendOptions): WasmBackend {
  const simd = options.simd ?? simdChoice(platform.setting('LOWRANK_WASM_SIMD'));
  const r = loadKernels(platform, simd);
  if (!('kernels' in r)) throw new LowrankError('E_UNSUPPORTED', r.reason);
  const loaded = r.kernels;

  const cores = platform.parallelism();
  const asked = positiveInteger('threads', options.threads) ?? positiveInteger('LOWRANK_WASM_THREADS', platform.setting('LOWRANK_WASM_THREADS'));
  let threads = asked ?? cores;
  let threadsNote: string | undefined;
  if (threads >= 2 && !loaded.shared) {
    threadsNote = loaded.noSharedReason ?? 'shared memory is unavailable';
    threads = 1;
  } else if (threads >= 2 && platform.workersUnavailable() !== undefined) {
    threadsNote = platform.workersUnavailable();
    threads = 1;
  } else if (threads === 1 && cores > 1) {
    threadsNote = options.threads !== undefined ? 'one thread was asked for' : 'LOWRANK_WASM_THREADS=1';
  }

  const maxLog = positiveInteger('maxRotationLog', options.maxRotationLog) ?? DEFAULT_ROTATION_LOG;
  let engine: Engine;
  const gemm: GemmOptions = {
    minThreadedFlops: options.minThreadedFlops ?? DEFAULT_MIN_THREADED_FLOPS,
    workingBytes: options.maxWorkingBytes ?? DEFAULT_WORKING_BYTES,
  };
  try {
    engine = new Engine(platform, loaded, threads);
  } catch (e) {
    // The memory or the instance could not be made (address space or memory exhausted).
    throw new LowrankError('E_UNSUPPORTED', `the WebAssembly kernels could not start: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
  }
  const info: WasmBackend['info'] = {
    available: true,
    simd: loaded.simd,
    relaxedSimdFlag: loaded.relaxedFlag,
    threads: engine.threads,
    ...(threadsNote !== undefined ? { threadsNote } : {}),
    sharedMemory: loaded.shared,
    kernel: loaded.path,
    maximumMemoryBytes: loaded.maximumPages * 65536,
  };
  // The wasm kernels are products and decompositions; casts, the nn kernels, LU, Cholesky and
  // triangular solves are the js backend's, and matmulAdd/matmulAddHalf are derived from matmul.
  return composeBackend(
    {
      name: 'wasm',
      info,
      close: () => engine.close(),
      matmul: <A extends FloatArray>(a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean) => matmulOn(engine, gemm, a, b, transA, transB),
      qr: (a) => qrOn(engine, a),
      svd: (a, job) => svdOn(engine, maxLog, a, job),
      eigh: (a, vectors) => eighOn(engine, maxLog, a, vectors),
    },
    jsBackend,
  );
}
