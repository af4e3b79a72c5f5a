/**
 * A fixed set of workers that run kernel jobs on one shared WebAssembly.Memory. Each worker gets
 * the compiled module and the memory once, instantiates the kernels, and then runs the jobs posted
 * to it. Workers start lazily (at the first job) and are unref'd while idle, so an idle pool never
 * keeps the process alive; while jobs are in flight they are ref'd, so awaiting a result does.
 * A worker that dies is replaced at the next job; the jobs it had fail.
 */
import { LowrankError } from '../../core/errors.js';
import type { Platform, WorkerPort } from './platform.js';
import type { FromWorker, Job, ToWorker } from './protocol.js';

export type { Job } from './protocol.js';

interface Pending {
  resolve(): void;
  reject(e: Error): void;
}

class PoolWorker {
  readonly port: WorkerPort;
  readonly ready: Promise<void>;
  readonly pending = new Map<number, Pending>();
  dead: Error | undefined;
  private markReady: () => void = () => undefined;
  private failReady: (e: Error) => void = () => undefined;

  constructor(platform: Platform, module: WebAssembly.Module, memory: WebAssembly.Memory) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    // A dead worker's startup failure is reported through the jobs that wait for it.
    this.ready.catch(() => undefined);
    this.port = platform.spawnWorker(
      (message) => this.receive(message as FromWorker),
      (error) => this.die(error),
    );
    const init: ToWorker = { type: 'init', module, memory };
    this.port.postMessage(init);
  }

  private receive(message: FromWorker): void {
    if (message.type === 'ready') {
      this.markReady();
      return;
    }
    const p = this.pending.get(message.id);
    if (p === undefined) return;
    this.pending.delete(message.id);
    if (message.type === 'done') p.resolve();
    else p.reject(new Error(message.message));
  }

  private die(error: Error): void {
    if (this.dead !== undefined) return;
    this.dead = error;
    this.failReady(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  /** Runs one job; resolves when the worker has finished it. */
  async run(id: number, job: Job): Promise<void> {
    await this.ready;
    if (this.dead !== undefined) throw this.dead;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const message: ToWorker = { type: 'run', id, job };
      this.port.postMessage(message);
    });
  }

  terminate(): void {
    this.die(new Error('the worker pool was closed'));
    this.port.terminate();
  }
}

/** Workers over one shared memory; see the module comment. */
export class ThreadPool {
  private readonly workers: (PoolWorker | undefined)[];
  private nextId = 1;

  /**
   * @param platform starts the workers
   * @param module the compiled kernels (built for shared memory)
   * @param memory the shared memory every worker instantiates the kernels on
   * @param size how many workers
   */
  constructor(
    private readonly platform: Platform,
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    readonly size: number,
  ) {
    this.workers = new Array<PoolWorker | undefined>(size).fill(undefined);
  }

  /** Runs jobs[i] on worker i, all at once; resolves when all are done (at most `size` jobs). */
  async run(jobs: readonly Job[]): Promise<void> {
    if (jobs.length > this.size) throw new LowrankError('E_INTERNAL', `wasm thread pool: ${jobs.length} jobs for ${this.size} workers`);
    const used = jobs.map((_, i) => this.worker(i));
    for (const w of used) w.port.ref();
    try {
      const results = await Promise.allSettled(jobs.map((job, i) => used[i].run(this.nextId++, job)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) {
        const reason: unknown = failed.reason;
        const message = reason instanceof Error ? reason.message : String(reason);
        throw new LowrankError('E_INTERNAL', `wasm worker failed: ${message}`, {}, { cause: reason });
      }
    } finally {
      for (const w of used) if (w.dead === undefined) w.port.unref();
    }
  }

  /** Stops every worker; a later run() starts new ones. */
  close(): void {
    for (let i = 0; i < this.workers.length; i++) {
      this.workers[i]?.terminate();
      this.workers[i] = undefined;
    }
  }

  private worker(i: number): PoolWorker {
    let w = this.workers[i];
    if (w === undefined || w.dead !== undefined) {
      w = new PoolWorker(this.platform, this.module, this.memory);
      this.workers[i] = w;
    }
    return w;
  }
}
