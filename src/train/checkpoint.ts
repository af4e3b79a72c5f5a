/**
 * Training checkpoints: the adapter's factors and AdamW state (m, v, step) of every module, and the
 * step reached, in one safetensors file written atomically. Resuming re-creates the adapter with
 * the same options (the inits are deterministic, so PiSSA's residual comes back bit for bit),
 * loads this state, and continues at the saved step with the same data order — the result equals
 * an uninterrupted run.
 */
import { LowrankError } from '../core/errors.js';
import type { FloatDType } from '../core/dtype.js';
import { openSafetensors } from '../io/safetensors/reader.js';
import { writeSafetensors, type TensorSource } from '../io/safetensors/writer.js';
import type { TrainedAdapter } from './loop.js';

const PARTS = ['A', 'B', 'mA', 'vA', 'mB', 'vB'] as const;

/** Writes the adapter state after `step` optimizer steps to `file` (atomically). */
export async function saveCheckpoint<F extends FloatDType>(file: string, adapter: TrainedAdapter<F>, step: number): Promise<void> {
  const sources: TensorSource[] = [];
  for (const [name, { term, stateA, stateB }] of adapter.modules) {
    const arrays = { A: term.A.data, B: term.B.data, mA: stateA.m, vA: stateA.v, mB: stateB.m, vB: stateB.v };
    for (const part of PARTS) {
      const data = arrays[part];
      sources.push({ name: `${name}.${part}`, dtype: data instanceof Float64Array ? 'f64' : 'f32', shape: [data.length], data });
    }
  }
  await writeSafetensors(file, sources, { metadata: { lowrank_checkpoint: '1', method: adapter.method, step: String(step) }, overwrite: true });
}

/** Loads a checkpoint into a freshly attached adapter of the same shape; returns the step to continue from. */
export async function loadCheckpoint<F extends FloatDType>(file: string, adapter: TrainedAdapter<F>): Promise<number> {
  const f = await openSafetensors(file);
  try {
    const meta = f.metadata ?? {};
    if (meta.lowrank_checkpoint !== '1') throw new LowrankError('E_FORMAT', 'not a lowrank training checkpoint', { file });
    if (meta.method !== adapter.method) throw new LowrankError('E_USAGE', `the checkpoint trained ${String(meta.method)}, not ${adapter.method}`, { file });
    const step = Number(meta.step);
    for (const [name, { term, stateA, stateB }] of adapter.modules) {
      const arrays = { A: term.A.data, B: term.B.data, mA: stateA.m, vA: stateA.v, mB: stateB.m, vB: stateB.v };
      for (const part of PARTS) {
        const key = `${name}.${part}`;
        if (!f.entries.some((e) => e.name === key)) throw new LowrankError('E_FORMAT', `the checkpoint has no ${key}: was it written with other targets or rank?`, { file });
        const t = await f.readAs(key, arrays[part] instanceof Float64Array ? 'f64' : 'f32');
        if (t.data.length !== arrays[part].length) throw new LowrankError('E_SHAPE', `${key} has ${t.data.length} values, the adapter ${arrays[part].length}`, { file });
        arrays[part].set(t.data);
      }
      stateA.step = step;
      stateB.step = step;
    }
    return step;
  } finally {
    await f.close();
  }
}
