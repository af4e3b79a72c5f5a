/**
 * Saving and reading an adapter in its method's own format (AdapterMethod.format): a PEFT tuner's
 * folder where PEFT has the tuner (peft_type VERA, VBLORA, ...: its config fields and exact keys,
 * shared projections under their model-level keys), else lowrank's `LOWRANK` layout
 * (`lowrank_method`, `lowrank_keys`, `lowrank_shared_keys`). Per-layer tensors are keyed
 * `base_model.model.<module>.<key>`; the method's options are config fields (their PEFT names).
 * The safetensors metadata records what PEFT's config cannot: the method, each module's
 * [out, in] shape (`lowrank_shapes`) and the seed, so an adapter written here reads back without
 * its base model, and regenerated bases are checked against the saved ones.
 */
import { FormatError, LowrankError, brief } from '../core/errors.js';
import { tensor, toFloat, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { writeDirAtomic, writeTextFile, type WriteOptions } from '../io/atomic.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, KEY_PREFIX, readAdapterConfig } from '../io/peft.js';
import { openSafetensors } from '../io/safetensors/reader.js';
import { writeSafetensors, type TensorSource } from '../io/safetensors/writer.js';
import { ALL_METHODS } from './all.js';
import { configOf, fromPeftFields, peftFields } from './options.js';
import { LOWRANK_TYPE, NO_SHARED } from './shared.js';
import type { AdapterFormat, AdapterMethod, InitOptions, LayerShape, Shared } from './types.js';
import { join } from '../io/paths.js';


/** An adapter of a method with its own format, in memory. */
export interface MethodAdapterData<F extends FloatDType = FloatDType> {
  readonly method: AdapterMethod;
  /** rank, alpha, seed and the method's options, as the adapter was made with. */
  readonly opts: InitOptions;
  /** Every module's name and [out, in] shape, in order. */
  readonly layers: readonly LayerShape[];
  /** Per module, its tensors by role. */
  readonly modules: ReadonlyMap<string, Readonly<Record<string, Tensor<F>>>>;
  readonly shared: Shared<F>;
  /** The base stores its linear weights [in, out] (GPT-2's Conv1D). */
  readonly fanInFanOut: boolean;
}

/** The format a method saves in (its own declaration; LOWRANK with its keys otherwise). */
export function formatOf(method: AdapterMethod): AdapterFormat {
  return method.format ?? { peftType: LOWRANK_TYPE, moduleKeys: method.keys, sharedKeys: {} };
}

/** Writes the adapter folder (atomically). */
export async function writeMethodFolder(dir: string, a: MethodAdapterData, opts: WriteOptions & { baseModel?: string; targetModules?: readonly string[] | string } = {}): Promise<Record<string, unknown>> {
  const fmt = formatOf(a.method);
  const values = configOf(a.method.name, a.method.options ?? {}, a.opts.options);
  const targets = opts.targetModules ?? [...new Set(a.layers.map((l) => l.name.slice(l.name.lastIndexOf('.') + 1)))].sort();
  const config: Record<string, unknown> = {
    base_model_name_or_path: opts.baseModel ?? null,
    bias: 'none',
    fan_in_fan_out: a.fanInFanOut,
    inference_mode: true,
    layers_pattern: null,
    layers_to_transform: null,
    modules_to_save: null,
    r: a.opts.rank,
    target_modules: targets,
    task_type: 'CAUSAL_LM',
    ...peftFields(a.method.options ?? {}, values),
    ...fmt.fields?.(a.opts, a.layers),
    peft_type: fmt.peftType,
    ...(fmt.peftType === LOWRANK_TYPE ? { lowrank_method: a.method.name, lowrank_keys: fmt.moduleKeys, lowrank_shared_keys: fmt.sharedKeys, seed: a.opts.seed ?? 0, use_rslora: a.opts.useRslora === true, ...(a.opts.alpha === undefined ? {} : { lora_alpha: a.opts.alpha }) } : {}),
  };
  const sorted = Object.fromEntries(Object.entries(config).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  const sources: TensorSource[] = [];
  for (const [role, key] of Object.entries(fmt.sharedKeys)) {
    const t = a.shared.tensors[role];
    if (t === undefined) throw new LowrankError('E_INTERNAL', `${a.method.name} has no shared tensor ${role} to save`);
    sources.push(source(key, t, fmt.integerRoles?.[role]));
  }
  for (const l of a.layers) {
    const m = a.modules.get(l.name);
    if (m === undefined) throw new LowrankError('E_INTERNAL', `no tensors for module ${l.name}`);
    for (const [role, key] of Object.entries(fmt.moduleKeys)) {
      const t = m[role];
      if (t === undefined) throw new LowrankError('E_INTERNAL', `${a.method.name} module ${l.name} has no ${role} tensor`);
      sources.push(source(`${KEY_PREFIX}${l.name}.${key}`, t, fmt.integerRoles?.[role]));
    }
    for (const [key, role] of Object.entries(fmt.layerCopies ?? {})) sources.push(source(`${KEY_PREFIX}${l.name}.${key}`, a.shared.tensors[role], undefined));
  }
  const metadata = { format: 'pt', lowrank_method: a.method.name, lowrank_shapes: JSON.stringify(Object.fromEntries(a.layers.map((l) => [l.name, l.shape]))), lowrank_seed: String(a.opts.seed ?? 0), lowrank_rank: String(a.opts.rank) };
  await writeDirAtomic(dir, async (tmp) => {
    await writeTextFile(join(tmp, ADAPTER_CONFIG), JSON.stringify(sorted, null, 2) + '\n');
    await writeSafetensors(join(tmp, ADAPTER_WEIGHTS), sources, { metadata });
  }, opts);
  return sorted;
}

/** A tensor to write: float32, or the integer type its role is stored as. */
function source(name: string, t: Tensor<FloatDType>, integer: 'i64' | 'i32' | 'i16' | 'u8' | undefined): TensorSource {
  if (integer === undefined) return { name, dtype: 'f32', shape: t.shape, data: toFloat(t, 'f32').data };
  const out = tensor(integer, t.shape);
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i];
    if (!Number.isInteger(v)) throw new LowrankError('E_INTERNAL', `${name} holds ${v}, not an integer`);
    if (out.data instanceof BigInt64Array) out.data[i] = BigInt(v);
    else out.data[i] = v;
  }
  return { name, dtype: integer, shape: t.shape, data: out.data };
}

/** The method an adapter config belongs to when it is one with its own format; undefined for a PEFT LoRA. */
export function methodOfConfig(config: Readonly<Record<string, unknown>>, file: string): AdapterMethod | undefined {
  const type = config.peft_type;
  if (type === 'LORA' || type === undefined) return undefined;
  if (type === LOWRANK_TYPE) {
    const name = config.lowrank_method;
    const m = ALL_METHODS.find((x) => x.name === name);
    if (m === undefined) throw new FormatError(`names lowrank_method ${brief(name)}, which this version does not know`, { file });
    return m;
  }
  const m = ALL_METHODS.find((x) => x.format?.peftType === type);
  if (m === undefined) {
    const known = ['LORA', ...ALL_METHODS.flatMap((x) => (x.format !== undefined && x.format.peftType !== LOWRANK_TYPE ? [x.format.peftType] : []))];
    throw new LowrankError('E_UNSUPPORTED', `is a PEFT ${brief(type)} adapter; lowrank reads peft_type ${known.join(', ')} and its own LOWRANK adapters`, { file });
  }
  return m;
}

/** True when the folder's config is an adapter of a method with its own format. */
export async function isMethodFolder(dir: string): Promise<boolean> {
  const { cfgPath, fields } = await readAdapterConfig(dir);
  return methodOfConfig(fields, cfgPath) !== undefined;
}

/** How far past the largest module dimension a saved adapter's rank may go (VeRA and NOLA use ranks above a small model's width). */
const MAX_RANK_FACTOR = 16;

/**
 * Reads a method adapter folder, its tensors in `dtype`. Module shapes come from the file's
 * metadata (adapters written here) or from `shapes` (a PEFT-written adapter: the base model's);
 * the shared state is the method's `prepare` with the saved shared tensors put over it — and a
 * saved frozen basis must equal the one its seed regenerates (adapters written here).
 */
export async function readMethodFolder<F extends FloatDType>(dir: string, dtype: F, opts: { shapes?: ReadonlyMap<string, readonly [number, number]> } = {}): Promise<MethodAdapterData<F>> {
  const { cfgPath, fields: config } = await readAdapterConfig(dir);
  const wPath = join(dir, ADAPTER_WEIGHTS);
  const method = methodOfConfig(config, cfgPath);
  if (method === undefined) throw new FormatError('is a PEFT LoRA adapter, not a method adapter', { file: cfgPath });
  const fmt = formatOf(method);
  const rank = config.r;
  if (!Number.isSafeInteger(rank) || (rank as number) < 1) throw new FormatError(`r must be a positive integer, got ${brief(rank)}`, { file: cfgPath });
  const file = await openSafetensors(wPath);
  try {
    const meta = file.metadata ?? {};
    const seed = meta.lowrank_seed === undefined ? (typeof config.seed === 'number' ? config.seed : 0) : Number(meta.lowrank_seed);
    const initOpts: InitOptions = {
      rank: rank as number,
      seed,
      ...(typeof config.lora_alpha === 'number' ? { alpha: config.lora_alpha } : {}),
      ...(typeof config.use_rslora === 'boolean' ? { useRslora: config.use_rslora } : {}),
      ...fmt.readOptions?.(config),
      options: fromPeftFields(method.options ?? {}, config),
    };
    try {
      configOf(method.name, method.options ?? {}, initOpts.options);
    } catch (e) {
      throw e instanceof LowrankError ? new FormatError(e.message, { file: cfgPath }) : e;
    }
    const sharedRole = new Map(Object.entries(fmt.sharedKeys).map(([role, key]) => [key, role]));
    const moduleRole = new Map([...Object.keys(fmt.layerCopies ?? {}).map((key) => [key, IGNORED] as const), ...Object.entries(fmt.moduleKeys).map(([role, key]) => [key, role] as const)]);
    const modules = new Map<string, Record<string, Tensor<F>>>();
    const saved: Record<string, Tensor<F>> = {};
    for (const e of file.entries) {
      const role = sharedRole.get(e.name);
      if (role !== undefined) {
        saved[role] = await file.readAs(e.name, dtype);
        continue;
      }
      const found = e.name.startsWith(KEY_PREFIX) ? splitKey(e.name.slice(KEY_PREFIX.length), moduleRole) : undefined;
      if (found?.role === IGNORED) continue;
      if (found === undefined) throw new FormatError(`has a tensor that is none of ${method.name}'s keys (${[...moduleRole.keys(), ...sharedRole.keys()].join(', ')})`, { file: wPath, tensor: e.name });
      const m = modules.get(found.module) ?? {};
      m[found.role] = await file.readAs(e.name, dtype);
      modules.set(found.module, m);
    }
    for (const [module, m] of modules) {
      for (const role of Object.keys(fmt.moduleKeys)) if (m[role] === undefined) throw new FormatError(`module ${module} has no ${role} tensor (${fmt.moduleKeys[role]})`, { file: wPath });
    }
    const metaShapes = parseShapes(meta.lowrank_shapes, wPath);
    const layers: LayerShape[] = [...modules.keys()].map((name) => {
      const shape = metaShapes?.get(name) ?? opts.shapes?.get(name);
      if (shape === undefined) throw new LowrankError('E_USAGE', `the shape of module ${name} is not recorded in the adapter: give the base model`, { file: wPath });
      return { name, shape };
    });
    // A rank far past every module's size would only make `prepare` allocate and fill a shared basis for seconds.
    const largest = layers.reduce((most, l) => l.shape.reduce((a, d) => Math.max(a, d), most), 0);
    if (layers.length > 0 && initOpts.rank > MAX_RANK_FACTOR * largest) throw new FormatError(`r ${initOpts.rank} is more than ${MAX_RANK_FACTOR}× the largest module dimension (${largest})`, { file: cfgPath });
    const shared = method.prepare === undefined ? NO_SHARED : await method.prepare(layers, initOpts, dtype);
    for (const [role, t] of Object.entries(saved)) {
      const into = shared.tensors[role];
      if (into === undefined || into.data.length !== t.data.length) throw new LowrankError('E_SHAPE', `shared ${role} is [${t.shape.join(', ')}], the ${method.name} config makes it [${into?.shape.join(', ') ?? ''}]`, { file: wPath, tensor: fmt.sharedKeys[role] });
      if (metaShapes !== undefined && !(role in shared.grads) && !close(into, t)) {
        throw new LowrankError('E_FORMAT', `the saved ${role} is not the basis its seed ${seed} regenerates: the adapter's seed or its projections were changed`, { file: wPath, tensor: fmt.sharedKeys[role] });
      }
      into.data.set(t.data);
    }
    for (const [role, key] of Object.entries(fmt.sharedKeys)) {
      if (saved[role] === undefined) throw new FormatError(`has no ${key}: ${method.name} adapters must carry their shared ${role} (a basis seeded by another library cannot be regenerated here; PEFT writes it with save_projection true)`, { file: wPath });
    }
    return { method, opts: initOpts, layers, modules, shared, fanInFanOut: config.fan_in_fan_out === true };
  } finally {
    await file.close();
  }
}

/** The role of per-layer copies of shared tensors (skipped when read). */
const IGNORED = '\0ignored';

/** `<module>.<key>` split by the known keys (a key may contain dots): by map lookups, not a scan. */
function splitKey(rest: string, roles: ReadonlyMap<string, string>): { module: string; role: string } | undefined {
  for (let i = rest.lastIndexOf('.'); i > 0; i = rest.lastIndexOf('.', i - 1)) {
    const role = roles.get(rest.slice(i + 1));
    if (role !== undefined) return { module: rest.slice(0, i), role };
  }
  return undefined;
}

function parseShapes(text: string | undefined, file: string): Map<string, readonly [number, number]> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FormatError('has lowrank_shapes metadata that is not JSON', { file });
  }
  if (typeof v !== 'object' || v === null) throw new FormatError('has lowrank_shapes metadata that is not an object', { file });
  const out = new Map<string, readonly [number, number]>();
  for (const [k, s] of Object.entries(v)) {
    if (!Array.isArray(s) || s.length !== 2 || !s.every((x) => Number.isSafeInteger(x) && x > 0)) throw new FormatError(`lowrank_shapes has a bad shape for ${k}`, { file });
    out.set(k, [s[0] as number, s[1] as number]);
  }
  return out;
}

/** Equal to float32 rounding (bases are saved in float32). */
function close(a: Tensor<FloatDType>, b: Tensor<FloatDType>): boolean {
  for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i] - b.data[i]) > 1e-6 * Math.max(1, Math.abs(a.data[i]))) return false;
  return true;
}
