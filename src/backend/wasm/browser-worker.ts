/**
 * The entry point of the Web Workers that browser.ts starts (as module workers): it serves kernel
 * jobs (see serveKernels in protocol.ts) on the worker's own message channel. It imports nothing
 * of Node, and does nothing when loaded anywhere but a worker.
 */
import { serveKernels, type ToWorker } from './protocol.js';

/** The part of a dedicated worker's global scope used here (the DOM typings lack WebWorker's). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: unknown): void;
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'function' && typeof document === 'undefined') {
  const scope = globalThis as unknown as WorkerScope;
  const handle = serveKernels((message) => scope.postMessage(message));
  scope.onmessage = (event) => handle(event.data);
}
