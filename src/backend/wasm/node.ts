/**
 * The Node.js host of the wasm backend (the only module of it that imports node:*): kernel files
 * from disk, V8's relaxed-SIMD flag, core count, and workers from node:worker_threads.
 *
 * This module is also the workers' entry point: a worker started by {@link nodePlatform} runs this
 * file with `workerData.lowrankWasmWorker` set and serves kernel jobs on its parent port.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Platform, WorkerPort } from './platform.js';
import { serveKernels, type ToWorker } from './protocol.js';

/** Where scripts/build-wasm.mjs writes the kernels, relative to the package root. */
const KERNEL_DIR = join('src', 'backend', 'wasm', 'kernels');

/** Marks the workers this module starts (a user's own worker thread importing lowrank is not one). */
const WORKER_MARK = 'lowrankWasmWorker';

/**
 * The folder holding the kernel files: `kernels/` beside this module (running from src/), else
 * src/backend/wasm/kernels/ under the package root (running from dist/src/), found by walking up
 * to the first folder with a package.json.
 */
function kernelDir(file: string): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'kernels', file))) return join(here, 'kernels');
  let dir = here;
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, KERNEL_DIR, file))) return join(dir, KERNEL_DIR);
    if (existsSync(join(dir, 'package.json'))) break;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/**
 * The node flags a worker gets: the process's own, less those about a script given on the command
 * line (-e/--eval/-p/--print and their code, --input-type), which a worker running a file refuses.
 */
function workerExecArgv(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i];
    if (flag === '-e' || flag === '--eval' || flag === '-p' || flag === '--print') {
      i++;
      continue;
    }
    if (flag.startsWith('--eval=') || flag.startsWith('--print=') || flag.startsWith('--input-type')) continue;
    out.push(flag);
  }
  return out;
}

let relaxedFlagTried = false;

/** The Node host: see {@link Platform}. */
export const nodePlatform: Platform = {
  name: 'node',

  readKernel(file) {
    const dir = kernelDir(file);
    if (dir === undefined) {
      return { reason: `the WebAssembly kernels are not built (${join(KERNEL_DIR, file)} not found): run \`npm run build:wasm\` in a checkout, or reinstall lowrank` };
    }
    const path = join(dir, file);
    try {
      return { bytes: new Uint8Array(readFileSync(path)), path };
    } catch (e) {
      return { reason: `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}` };
    }
  },

  enableRelaxedSimd() {
    if (relaxedFlagTried) return true;
    relaxedFlagTried = true;
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // An engine without the flag: validation below tells.
    }
    return true;
  },

  parallelism() {
    return availableParallelism();
  },

  workersUnavailable() {
    return typeof Worker === 'function' ? undefined : 'node:worker_threads is unavailable';
  },

  spawnWorker(onMessage, onError): WorkerPort {
    const worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_MARK]: true }, execArgv: workerExecArgv(process.execArgv) });
    worker.unref();
    let ended = false;
    worker.on('message', onMessage);
    worker.on('error', (e: unknown) => {
      ended = true;
      onError(e instanceof Error ? e : new Error(String(e)));
    });
    worker.on('exit', (code: number) => {
      if (!ended) onError(new Error(`the worker exited (code ${code})`));
      ended = true;
    });
    return {
      postMessage: (message) => worker.postMessage(message),
      ref: () => worker.ref(),
      unref: () => worker.unref(),
      terminate: () => {
        ended = true;
        void worker.terminate();
      },
    };
  },

  setting(name) {
    return process.env[name];
  },
};

// The worker entry point.
if (!isMainThread && parentPort !== null && (workerData as Record<string, unknown> | null)?.[WORKER_MARK] === true) {
  const port = parentPort;
  const handle = serveKernels((message) => port.postMessage(message));
  port.on('message', (message: ToWorker) => handle(message));
}
