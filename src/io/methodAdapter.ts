/**
 * The adapter folder of methods whose parameters are not a LoRA pair (SVFit, LoLDU, SoKA, SORSA,
 * SALT, KaSA): PEFT's layout — adapter_config.json and adapter_model.safetensors with keys
 * `base_model.model.<module>.<key>` — with `peft_type: "LOWRANK"` (so PEFT does not mistake it for
 * one of its own), `lowrank_method` naming the method and `lowrank_keys` mapping each role to its
 * key suffix. Factors are stored for the weight as [out, in] whatever the checkpoint's layout.
 */
import { join } from 'node:path';
import type { Tensor } from '../core/tensor.js';
import { writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, KEY_PREFIX } from './peft.js';
import { writeSafetensors } from './safetensors/writer.js';

/** The peft_type of these folders. */
export const METHOD_ADAPTER_TYPE = 'LOWRANK';

/**
 * Writes a method adapter folder (atomically).
 *
 * @example
 * await writeMethodAdapter('svfit', { lowrank_method: 'svfit', r: 8 }, [{ module: 'model.layers.0.self_attn.q_proj', key: 'svfit_sigma', tensor: sigma }]);
 */
export async function writeMethodAdapter(dir: string, config: Readonly<Record<string, unknown>>, tensors: readonly { module: string; key: string; tensor: Tensor }[], opts: WriteOptions & { metadata?: Readonly<Record<string, string>> } = {}): Promise<void> {
  const sorted = Object.fromEntries(Object.entries({ ...config, peft_type: METHOD_ADAPTER_TYPE }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const sources = tensors.map(({ module, key, tensor }) => ({ name: `${KEY_PREFIX}${module}.${key}`, dtype: tensor.dtype, shape: tensor.shape, data: tensor.data }));
  await writeDirAtomic(dir, async (tmp) => {
    await writeTextFile(join(tmp, ADAPTER_CONFIG), JSON.stringify(sorted, null, 2) + '\n');
    await writeSafetensors(join(tmp, ADAPTER_WEIGHTS), sources, { metadata: { ...opts.metadata, format: 'pt' } });
  }, opts);
}
