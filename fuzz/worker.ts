/** The worker thread that runs a case's APIs; the parent (pool.ts) watches its time and memory. */
import { parentPort } from 'node:worker_threads';
import { isLowrankError } from '../src/core/errors.js';
import { APIS, type ApiName } from './apis.js';
import { classify, type Outcome } from './outcome.js';

export interface Job {
  id: number;
  target: string;
  apis: readonly ApiName[];
}

export type WorkerMessage = { id: number; type: 'start'; api: ApiName } | { id: number; type: 'result'; api: ApiName; outcome: Outcome } | { id: number; type: 'done' };

const port = parentPort;
if (port === null) throw new Error('fuzz/worker.js runs as a worker thread');
port.on('message', async (job: Job) => {
  for (const api of job.apis) {
    port.postMessage({ id: job.id, type: 'start', api } satisfies WorkerMessage);
    let outcome: Outcome;
    try {
      await APIS[api](job.target);
      outcome = { kind: 'ok' };
    } catch (e) {
      outcome = classify(e, isLowrankError);
    }
    port.postMessage({ id: job.id, type: 'result', api, outcome } satisfies WorkerMessage);
  }
  port.postMessage({ id: job.id, type: 'done' } satisfies WorkerMessage);
});
