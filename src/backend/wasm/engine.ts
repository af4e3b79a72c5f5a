/**
 * One kernel build running on one WebAssembly.Memory: the main thread's instance, the worker
 * pool, and the rules for sharing them. Products and decompositions are tasks that each lay out
 * their buffers from {@link Engine.heap} up; tasks run one at a time ({@link Engine.exclusive}),
 * so every task may reuse the whole heap.
 *
 * Memory layout (byte addresses): the first 64 KiB page is left unused; then one scratch area per
 * thread for gemm's packing buffers (see assembly/gemm.ts); then the heap. The memory grows as
 * tasks need and never shrinks.
 */
import { LowrankError } from '../../core/errors.js';
import type { FloatArray } from '../types.js';
import type { LoadedKernels } from './loader.js';
import type { Platform } from './platform.js';
import { ThreadPool } from './pool.js';
import { instantiate, runJob, type Dtype, type Job, type KernelExports } from './protocol.js';

const PAGE = 65536;
/** Alignment of every buffer. */
export const ALIGN = 64;

/** x rounded up to a multiple of {@link ALIGN}. */
export function alignUp(x: number): number {
  return Math.ceil(x / ALIGN) * ALIGN;
}

/** Bytes per element. */
export function elementBytes(dtype: Dtype): number {
  return dtype === 'f32' ? 4 : 8;
}

/** The kernels' element type for an array. */
export function dtypeOf(data: FloatArray): Dtype {
  return data instanceof Float32Array ? 'f32' : 'f64';
}

/** Kernel instances, memory and workers of one wasm backend. */
export class Engine {
  /** Threads a parallel task uses (1: the calling thread only). */
  readonly threads: number;
  readonly memory: WebAssembly.Memory;
  /** The main thread's instance. */
  readonly kernels: KernelExports;
  /** Bytes of gemm scratch per thread (enough for float32 and float64). */
  readonly scratchBytes: number;
  /** Where tasks' buffers start. */
  readonly heap: number;
  /** The largest memory the host grants, in bytes. */
  readonly maxBytes: number;
  private readonly pool: ThreadPool | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * @param platform starts the workers (when threads ≥ 2; the kernels must be a shared build)
   * @param loaded the compiled kernel build
   * @param threads worker threads, or 1 to compute on the calling thread
   */
  constructor(platform: Platform, loaded: LoadedKernels, threads: number) {
    this.memory = new WebAssembly.Memory({ initial: 2, maximum: loaded.maximumPages, shared: loaded.shared });
    this.maxBytes = loaded.maximumPages * PAGE;
    this.kernels = instantiate(loaded.module, this.memory);
    const t = Math.max(1, Math.floor(threads));
    this.pool = t >= 2 && loaded.shared ? new ThreadPool(platform, loaded.module, this.memory, t) : undefined;
    this.threads = this.pool?.size ?? 1;
    this.scratchBytes = alignUp(Math.max(this.kernels.sgemmScratchBytes(), this.kernels.dgemmScratchBytes()));
    this.heap = PAGE + this.threads * this.scratchBytes;
  }

  /** Thread t's gemm scratch. */
  scratch(t: number): number {
    return PAGE + t * this.scratchBytes;
  }

  /** Runs `task` after every task started before it (they share the heap). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Grows the memory to at least `bytes`; false when the host refuses. */
  grow(bytes: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return true;
    if (bytes > this.maxBytes) return false;
    try {
      this.memory.grow(Math.ceil((bytes - have) / PAGE));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Lays out buffers of the given byte sizes from the heap up, growing the memory once; returns
   * their addresses. Throws LowrankError E_UNSUPPORTED naming `routine` when the host refuses.
   */
  reserve(routine: string, sizes: readonly number[]): number[] {
    const at: number[] = [];
    let end = this.heap;
    for (const size of sizes) {
      at.push(end);
      end += alignUp(size);
    }
    if (!this.grow(end)) {
      throw new LowrankError('E_UNSUPPORTED', `wasm ${routine}: cannot grow WebAssembly memory to ${Math.ceil(end / 2 ** 20)} MiB`);
    }
    return at;
  }

  /** A view of `length` elements of the element type at byte `offset` (valid until the memory grows). */
  view(dtype: Dtype, offset: number, length: number): FloatArray {
    return dtype === 'f32' ? new Float32Array(this.memory.buffer, offset, length) : new Float64Array(this.memory.buffer, offset, length);
  }

  /** A float64 view (the kernels' τ, d and e arrays). */
  f64(offset: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, offset, length);
  }

  /** An int32 view. */
  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, length);
  }

  /** Runs one kernel call here. */
  call(job: Job): void {
    runJob(this.kernels, job);
  }

  /**
   * Runs independent jobs: one per worker when there is a pool and more than one job, else here
   * one after another. At most {@link threads} jobs.
   */
  async run(jobs: readonly Job[]): Promise<void> {
    if (this.pool === undefined || jobs.length <= 1) {
      for (const job of jobs) runJob(this.kernels, job);
      return;
    }
    await this.pool.run(jobs);
  }

  /** Stops the workers (a later parallel task starts new ones). */
  close(): void {
    this.pool?.close();
  }
}

/**
 * Splits 0 … n into at most `parts` contiguous ranges of about equal total cost, each boundary a
 * multiple of `unit`; `cost(i)` is the cost of item i. Empty ranges are dropped.
 */
export function splitByCost(n: number, parts: number, unit: number, cost: (i: number) => number): [number, number][] {
  if (parts <= 1 || n <= unit) return n > 0 ? [[0, n]] : [];
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + cost(i);
  const total = prefix[n];
  const ranges: [number, number][] = [];
  let from = 0;
  for (let p = 1; p <= parts && from < n; p++) {
    let to = n;
    if (p < parts) {
      const target = (total * p) / parts;
      let i = from;
      while (i < n && prefix[i] < target) i++;
      to = Math.min(n, Math.max(from + unit, Math.round(i / unit) * unit));
    }
    if (to > from) ranges.push([from, to]);
    from = to;
  }
  return ranges;
}
