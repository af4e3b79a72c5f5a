/**
 * Training checkpoints: every trained tensor (`<module>.<role>`, `@shared.<role>`) and the
 * optimizer's state arrays under the keys it gives them (AdamW: `<name>.m`, `<name>.v`), and the
 * step reached, in one safetensors file written atomically. Resuming re-creates the adapter with
 * the same options (the inits are deterministic, so PiSSA's residual comes back bit for bit), loads
 * this state, and continues at the saved step with the same data order — the result equals an
 * uninterrupted run.
 */
import { LowrankError } from '../core/errors.js';
import type { FloatDType } from '../core/dtype.js';
import type { FloatArray } from '../backend/types.js';
import { openSafetensors } from '../io/safetensors/reader.js';
import { writeSafetensors, type TensorSource } from '../io/safetensors/writer.js';
import type { TrainedAdapter } from './loop.js';

/** Every array a checkpoint holds, by key. */
function arrays<F extends FloatDType>(adapter: TrainedAdapter<F>): [string, FloatArray][] {
  return [...adapter.params.map((p): [string, FloatArray] => [p.name, p.param.data]), ...adapter.optimizer.stateArrays()];
}

/** Writes the adapter state after `step` optimizer steps to `file` (atomically). */
export async function saveCheckpoint<F extends FloatDType>(file: string, adapter: TrainedAdapter<F>, step: number): Promise<void> {
  const sources: TensorSource[] = arrays(adapter).map(([name, data]) => ({ name, dtype: data instanceof Float64Array ? 'f64' : 'f32', shape: [data.length], data }));
  await writeSafetensors(file, sources, { metadata: { lowrank_checkpoint: '2', method: adapter.method, optimizer: adapter.optimizer.name, step: String(step) }, overwrite: true });
}

/** Loads a checkpoint into a freshly attached adapter of the same shape; returns the step to continue from. */
export async function loadCheckpoint<F extends FloatDType>(file: string, adapter: TrainedAdapter<F>): Promise<number> {
  const f = await openSafetensors(file);
  try {
    const meta = f.metadata ?? {};
    if (meta.lowrank_checkpoint !== '2') throw new LowrankError('E_FORMAT', meta.lowrank_checkpoint === undefined ? 'not a lowrank training checkpoint' : `a lowrank checkpoint of format ${meta.lowrank_checkpoint}, this version reads format 2`, { file });
    if (meta.method !== adapter.method) throw new LowrankError('E_USAGE', `the checkpoint trained ${String(meta.method)}, not ${adapter.method}`, { file });
    const optimizer = meta.optimizer ?? 'adamw';
    if (optimizer !== adapter.optimizer.name) throw new LowrankError('E_USAGE', `the checkpoint's optimizer is ${optimizer}, not ${adapter.optimizer.name}`, { file });
    const step = Number(meta.step);
    if (!Number.isInteger(step) || step < 0) throw new LowrankError('E_FORMAT', `the checkpoint's step is '${String(meta.step)}'`, { file });
    const have = new Set(f.entries.map((e) => e.name));
    for (const [key, data] of arrays(adapter)) {
      if (!have.has(key)) throw new LowrankError('E_FORMAT', `the checkpoint has no ${key}: was it written with other targets or rank?`, { file });
      const t = await f.readAs(key, data instanceof Float64Array ? 'f64' : 'f32');
      if (t.data.length !== data.length) throw new LowrankError('E_SHAPE', `${key} has ${t.data.length} values, the adapter ${data.length}`, { file });
      data.set(t.data);
    }
    adapter.optimizer.restore(step);
    return step;
  } finally {
    await f.close();
  }
}
