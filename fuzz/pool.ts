/**
 * A few worker threads reused across cases. The parent times each API call (a worker past the time
 * limit is terminated and replaced) and samples the process's resident memory, which includes every
 * worker's heap and array buffers. A case is charged what that memory grew by since it started (not
 * what the process held before: the garbage of building a large input, a previous case's heap not
 * yet collected); past the limit every busy worker over it is stopped and its case reported as a
 * memory suspect (the caller reruns suspects alone to tell which one it was).
 */
import { Worker } from 'node:worker_threads';
import type { ApiName } from './apis.js';
import type { Job, WorkerMessage } from './worker.js';
import type { Outcome } from './outcome.js';

export interface Limits {
  /** Per API call, in milliseconds. */
  timeMs: number;
  /** Growth of the whole process's resident memory while a case runs, in bytes. */
  rssBytes: number;
}

export interface ApiResult {
  api: ApiName;
  outcome: Outcome;
  ms: number;
}

export interface Pool {
  /** Runs the APIs on the input at `target`, one after the other in one worker. */
  run(target: string, apis: readonly ApiName[]): Promise<ApiResult[]>;
  close(): Promise<void>;
}

interface Busy {
  job: Job;
  results: ApiResult[];
  api?: ApiName;
  startedAt: number;
  /** The process's resident memory when the case started. */
  startRss: number;
  resolve: (r: ApiResult[]) => void;
}

interface Slot {
  worker: Worker;
  busy?: Busy;
}

const SAMPLE_MS = 20;

export function createPool(size: number, limits: Limits): Pool {
  const slots: Slot[] = [];
  const waiting: ((s: Slot) => void)[] = [];
  let nextId = 0;
  let closed = false;

  const release = (slot: Slot): void => {
    slot.busy = undefined;
    const next = waiting.shift();
    if (next !== undefined) next(slot);
  };
  const finish = (slot: Slot, last?: Outcome): void => {
    const b = slot.busy;
    if (b === undefined) return;
    if (last !== undefined) b.results.push({ api: b.api ?? b.job.apis[0], outcome: last, ms: performance.now() - b.startedAt });
    b.resolve(b.results);
  };
  // Heap limits make a runaway JS heap end the worker (a finding) before it takes the machine.
  const newWorker = (): Worker => new Worker(new URL('./worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: Math.ceil(limits.rssBytes / 2 ** 20), maxYoungGenerationSizeMb: 64 } });
  const spawn = (slot: Slot): void => {
    slot.worker = newWorker();
    listen(slot);
  };
  const listen = (slot: Slot): void => {
    const worker = slot.worker;
    worker.on('message', (m: WorkerMessage) => {
      const b = slot.busy;
      if (slot.worker !== worker || b === undefined || m.id !== b.job.id) return;
      if (m.type === 'start') {
        b.api = m.api;
        b.startedAt = performance.now();
      } else if (m.type === 'result') b.results.push({ api: m.api, outcome: m.outcome, ms: performance.now() - b.startedAt });
      else {
        finish(slot);
        release(slot);
      }
    });
    const died = (why: string, memory: boolean): void => {
      if (slot.worker !== worker || closed) return;
      finish(slot, memory ? { kind: 'memory', rssBytes: process.memoryUsage.rss() - (slot.busy?.startRss ?? 0) } : { kind: 'crash', message: why });
      spawn(slot);
      release(slot);
    };
    worker.on('error', (e: Error & { code?: string }) => died(e.message, e.code === 'ERR_WORKER_OUT_OF_MEMORY'));
    worker.on('exit', (code) => died(`worker exited with code ${code}`, false));
  };
  /** Stops a busy worker (its case ends with `outcome`) and puts a fresh one in its place. */
  const kill = (slot: Slot, outcome: Outcome): void => {
    const old = slot.worker;
    finish(slot, outcome);
    spawn(slot);
    void old.terminate();
    release(slot);
  };

  for (let i = 0; i < size; i++) {
    const slot: Slot = { worker: newWorker() };
    listen(slot);
    slots.push(slot);
  }

  const timer = setInterval(() => {
    const now = performance.now();
    for (const s of slots) {
      if (s.busy !== undefined && s.busy.api !== undefined && now - s.busy.startedAt > limits.timeMs) kill(s, { kind: 'timeout', ms: Math.round(now - s.busy.startedAt) });
    }
    const rss = process.memoryUsage.rss();
    for (const s of slots) if (s.busy !== undefined && rss - s.busy.startRss > limits.rssBytes) kill(s, { kind: 'memory', rssBytes: rss - s.busy.startRss });
  }, SAMPLE_MS);

  return {
    run(target, apis) {
      return new Promise<ApiResult[]>((resolve) => {
        const start = (slot: Slot): void => {
          const job: Job = { id: nextId++, target, apis };
          slot.busy = { job, results: [], startedAt: performance.now(), startRss: process.memoryUsage.rss(), resolve };
          slot.worker.postMessage(job);
        };
        const free = slots.find((s) => s.busy === undefined);
        if (free !== undefined) start(free);
        else waiting.push(start);
      });
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
