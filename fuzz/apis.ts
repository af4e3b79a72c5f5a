/**
 * The read APIs a case runs, by format: each opens the input and reads everything it declares, as a
 * user of the library would. Run inside a worker (worker.ts).
 */
import { readFile } from 'node:fs/promises';
import { openSafetensors } from '../src/io/safetensors/reader.js';
import { openModel } from '../src/io/hf.js';
import { isTargetModule, loraScaling, openAdapter } from '../src/io/peft.js';
import { readMethodAdapter } from '../src/io/methodAdapter.js';
import { isMethodFolder, readMethodFolder } from '../src/methods/adapterFile.js';
import { parseNpy, readNpy, readNpyHeader } from '../src/io/npy.js';
import { parseNpz, readNpz, readNpzHeaders } from '../src/io/npz.js';
import { describe } from '../src/io/describe.js';
import type { Format } from './sample.js';

export type ApiName =
  | 'openSafetensors' | 'openModel' | 'describe' | 'openAdapter' | 'isMethodFolder' | 'readMethodAdapter' | 'readMethodFolder'
  | 'readNpy' | 'readNpyHeader' | 'parseNpy' | 'readNpz' | 'readNpzHeaders' | 'parseNpz';

/**
 * Tensors read per file: enough to reach every kind of entry a mutation makes, while the largest
 * header accepted (a probe of 262,144 tensors) measures its parse, not 262,144 reads.
 */
const READS = 10_000;

/** Reads the first READS tensors as stored and decoded to `dtype`. */
async function readEach(file: { read(name: string): Promise<unknown>; readAs(name: string, dtype: 'f32' | 'f64'): Promise<unknown> }, tensors: readonly { name: string }[], dtype: 'f32' | 'f64'): Promise<void> {
  for (const { name } of tensors.slice(0, READS)) {
    await file.read(name);
    await file.readAs(name, dtype);
  }
}

export const APIS: Record<ApiName, (target: string) => Promise<unknown>> = {
  async openSafetensors(path) {
    const f = await openSafetensors(path);
    try {
      await readEach(f, f.entries, 'f32');
      const first = f.entries[0];
      if (first !== undefined) for await (const _ of f.chunks(first.name, 3));
    } finally {
      await f.close();
    }
  },
  async openModel(path) {
    const m = await openModel(path);
    try {
      await readEach(m, m.tensors, 'f64');
    } finally {
      await m.close();
    }
  },
  describe,
  async openAdapter(dir) {
    const a = await openAdapter(dir);
    try {
      for (const m of a.modules) {
        for (const e of [m.A, m.B, m.magnitude, m.bias]) if (e !== undefined) await a.readAs(e.name, 'f32');
        // The patterns are matched again here, as loading over a model does.
        loraScaling(a.config, m.name);
        isTargetModule(a.config, m.name);
      }
      for (const e of a.others) await a.read(e.name);
    } finally {
      await a.close();
    }
  },
  isMethodFolder,
  readMethodAdapter,
  readMethodFolder: (dir) => readMethodFolder(dir, 'f32'),
  readNpy,
  readNpyHeader,
  parseNpy: async (path) => parseNpy(new Uint8Array(await readFile(path)), path),
  readNpz,
  readNpzHeaders,
  parseNpz: async (path) => parseNpz(new Uint8Array(await readFile(path)), path),
};

export const APIS_OF: Record<Format, readonly ApiName[]> = {
  safetensors: ['openSafetensors', 'openModel', 'describe'],
  model: ['openModel', 'describe'],
  sharded: ['openModel', 'describe'],
  peft: ['openAdapter', 'isMethodFolder', 'describe'],
  method: ['readMethodAdapter', 'readMethodFolder', 'openAdapter', 'describe'],
  npy: ['readNpy', 'readNpyHeader', 'parseNpy', 'describe'],
  npz: ['readNpz', 'readNpzHeaders', 'parseNpz', 'describe'],
};
