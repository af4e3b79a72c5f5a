/**
 * The adapter folder of methods whose parameters are not a LoRA pair (SVFit, LoLDU, SoKA, SORSA,
 * SALT, KaSA): PEFT's layout — adapter_config.json and adapter_model.safetensors with keys
 * `base_model.model.<module>.<key>` — with `peft_type: "LOWRANK"` (so PEFT does not mistake it for
 * one of its own), `lowrank_method` naming the method and `lowrank_keys` mapping each role to its
 * key suffix. Factors are stored for the weight as [out, in] whatever the checkpoint's layout.
 */
import type { Tensor } from '../core/tensor.js';
import { writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, KEY_PREFIX, readAdapterConfig } from './peft.js';
import { writeSafetensors } from './safetensors/writer.js';
import { openSafetensors } from './safetensors/reader.js';
import { FormatError, brief } from '../core/errors.js';
import { join } from './paths.js';

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

/** A method adapter folder as read back: its config and, per module, its tensors by role. */
export interface MethodAdapter {
  readonly dir: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly method: string;
  readonly modules: ReadonlyMap<string, Readonly<Record<string, Tensor>>>;
}

/**
 * Reads a method adapter folder written by {@link writeMethodAdapter} (all of it: these adapters
 * are small). E_FORMAT when the config is not one, or a tensor is missing or unexpected.
 *
 * @example
 * const a = await readMethodAdapter('svfit-init');
 * const sigma = a.modules.get('model.layers.0.self_attn.q_proj')?.sigma;
 */
export async function readMethodAdapter(dir: string): Promise<MethodAdapter> {
  const { cfgPath, fields: config } = await readAdapterConfig(dir);
  if (config.peft_type !== METHOD_ADAPTER_TYPE || typeof config.lowrank_method !== 'string') throw new FormatError(`is not a lowrank method adapter (peft_type ${brief(config.peft_type)})`, { file: cfgPath });
  const keys = config.lowrank_keys;
  if (typeof keys !== 'object' || keys === null || Object.values(keys).some((k) => typeof k !== 'string')) throw new FormatError('has no lowrank_keys map', { file: cfgPath });
  // Key suffix → its role and place (a name could end in two keys: the first listed wins, as before).
  const roleOf = new Map<string, { role: string; at: number }>();
  for (const [at, [role, key]] of Object.entries(keys as Record<string, string>).entries()) if (!roleOf.has(key)) roleOf.set(key, { role, at });
  /** The key a tensor name ends in (after a dot, past the prefix), by looking up each dotted suffix: no scan of every key. */
  const keyOf = (name: string): { key: string; role: string } | undefined => {
    if (!name.startsWith(KEY_PREFIX)) return undefined;
    let best: { key: string; role: string; at: number } | undefined;
    for (let dot = name.indexOf('.', KEY_PREFIX.length); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const key = name.slice(dot + 1);
      const hit = roleOf.get(key);
      if (hit !== undefined && (best === undefined || hit.at < best.at)) best = { key, ...hit };
    }
    return best;
  };
  const file = await openSafetensors(join(dir, ADAPTER_WEIGHTS));
  const modules = new Map<string, Record<string, Tensor>>();
  try {
    for (const e of file.entries) {
      const hit = keyOf(e.name);
      if (hit === undefined) throw new FormatError('has a tensor that is none of lowrank_keys', { file: join(dir, ADAPTER_WEIGHTS), tensor: e.name });
      const module = e.name.slice(KEY_PREFIX.length, -hit.key.length - 1);
      const m = modules.get(module) ?? {};
      m[hit.role] = await file.read(e.name);
      modules.set(module, m);
    }
  } finally {
    await file.close();
  }
  for (const [module, m] of modules) {
    for (const { role } of roleOf.values()) if (m[role] === undefined) throw new FormatError(`module ${module} has no ${role} tensor`, { file: join(dir, ADAPTER_WEIGHTS) });
  }
  return { dir, config, method: config.lowrank_method, modules };
}
