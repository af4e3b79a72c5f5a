/**
 * PEFT adapter folders: `adapter_config.json` + `adapter_model.safetensors`, with PEFT's key names
 * (`base_model.model.<module>.lora_A.weight` [r, in], `.lora_B.weight` [out, r],
 * `.lora_magnitude_vector` [out], `.lora_embedding_A` [r, vocab], `.lora_embedding_B` [dim, r]) and
 * its config semantics (scaling alpha/r or alpha/sqrt(r), rank_pattern/alpha_pattern, target_modules
 * as a list or a regex).
 */
import { compilePattern, type Pattern } from '../core/pattern.js';
import { FormatError, LowrankError, brief } from '../core/errors.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { repairTarget, writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { readJsonObject } from './files.js';
import { openSafetensors, type SafetensorsFile } from './safetensors/reader.js';
import { writeSafetensors, type TensorSource } from './safetensors/writer.js';
import type { SafetensorsEntry } from './safetensors/header.js';
import { fs } from './fs.js';
import { join } from './paths.js';

/** The config file of a PEFT adapter folder. */
export const ADAPTER_CONFIG = 'adapter_config.json';
/** The weights file of a PEFT adapter folder. */
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** The prefix PEFT's PeftModel → LoraModel wrapping puts before every module path. */
export const KEY_PREFIX = 'base_model.model.';

/**
 * A LoRA adapter config with PEFT's field names. Fields lowrank does not interpret are kept as read
 * (and written back), but are not part of the type, so a misspelt field fails to compile.
 */
export interface LoraConfig {
  readonly peft_type: string;
  readonly r: number;
  readonly lora_alpha: number;
  /** Module name suffixes, or a regex that must match a whole module name, or 'all-linear'. */
  readonly target_modules: readonly string[] | string | null;
  readonly use_rslora: boolean;
  /** Regex → rank, first match wins (PEFT matches `(.*\.)?(key)$` against the module name). */
  readonly rank_pattern: Readonly<Record<string, number>>;
  readonly alpha_pattern: Readonly<Record<string, number>>;
  /** True when the base weight is stored [in, out] (GPT-2's Conv1D). */
  readonly fan_in_fan_out: boolean;
  /** `true`, `false`, `'gaussian'`, `'pissa'`, `'pissa_niter_N'`, `'olora'`, ... */
  readonly init_lora_weights: boolean | string;
  readonly use_dora: boolean;
  readonly modules_to_save: readonly string[] | null;
  readonly base_model_name_or_path: string | null;
  readonly bias: 'none' | 'all' | 'lora_only';
  readonly lora_dropout: number;
  readonly task_type: string | null;
  readonly inference_mode: boolean;
  readonly layers_to_transform: readonly number[] | number | null;
  readonly layers_pattern: readonly string[] | string | null;
  /** Modules never adapted (PEFT ≥ 0.14): a name list or a full-match regex. */
  readonly exclude_modules?: readonly string[] | string | null;
}

/** PEFT's LoraConfig defaults, plus the bookkeeping fields save_pretrained writes. */
const LORA_DEFAULTS = {
  peft_type: 'LORA',
  task_type: null,
  base_model_name_or_path: null,
  revision: null,
  inference_mode: true,
  r: 8,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: null,
  fan_in_fan_out: false,
  bias: 'none',
  use_rslora: false,
  modules_to_save: null,
  init_lora_weights: true,
  layers_to_transform: null,
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  megatron_config: null,
  megatron_core: 'megatron.core',
  loftq_config: {},
  use_dora: false,
  auto_mapping: null,
} as const;

/** A complete LoRA config from the fields given (PEFT's defaults for the rest), validated. */
export function loraConfig(fields: Partial<LoraConfig> = {}, file?: string): LoraConfig {
  const c = { ...LORA_DEFAULTS, ...fields } as LoraConfig;
  // From a file, a bad field is a malformed file; from a caller, a bad argument.
  const code = file === undefined ? 'E_USAGE' : 'E_FORMAT';
  const bad = (msg: string): never => {
    throw new LowrankError(code, msg, { file });
  };
  if (!Number.isInteger(c.r) || c.r <= 0) bad(`r must be a positive integer, got ${brief(c.r)}`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha)) bad(`lora_alpha must be a number, got ${brief(c.lora_alpha)}`);
  const tm = c.target_modules;
  if (tm !== null && typeof tm !== 'string' && !(Array.isArray(tm) && tm.every((t) => typeof t === 'string'))) {
    bad('target_modules must be a list of names, a regex string, or null');
  }
  if (typeof tm === 'string' && tm !== 'all-linear') compile(tm, namesSource(tm), file, code);
  for (const [field, pattern] of [['rank_pattern', c.rank_pattern], ['alpha_pattern', c.alpha_pattern]] as const) {
    if (typeof pattern !== 'object' || pattern === null || Array.isArray(pattern)) bad(`${field} must be an object`);
    for (const [k, v] of Object.entries(pattern)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || (field === 'rank_pattern' && (!Number.isInteger(v) || v <= 0))) {
        bad(`${field}['${k}'] must be a ${field === 'rank_pattern' ? 'positive integer' : 'number'}`);
      }
    }
    // A plain name is a valid pattern as it is; the others are counted before any is compiled.
    const regexKeys = Object.keys(pattern).filter((k) => !PLAIN_KEY.test(k));
    if (regexKeys.length > MAX_REGEX_KEYS) bad(`${field} has ${regexKeys.length} regex keys; lowrank reads at most ${MAX_REGEX_KEYS} (keys that are plain module names are not limited)`);
    for (const k of regexKeys) compile(k, keySource(k), file, code);
  }
  const isNames = (v: unknown): boolean => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  if (c.modules_to_save !== null && !(Array.isArray(c.modules_to_save) && isNames(c.modules_to_save))) bad('modules_to_save must be a list of names or null');
  if (c.layers_pattern !== null && !isNames(c.layers_pattern)) bad('layers_pattern must be a name, a list of names, or null');
  if (c.exclude_modules !== undefined && c.exclude_modules !== null && !isNames(c.exclude_modules)) bad('exclude_modules must be a list of names, a regex string, or null');
  // Every pattern matched later is compiled now: a bad one is a malformed file, named with its folder.
  if (typeof c.exclude_modules === 'string') compile(c.exclude_modules, namesSource(c.exclude_modules), file, code);
  for (const m of c.modules_to_save ?? []) compile(m, saveSource(m), file, code);
  for (const p of layerPatterns(c)) compile(p, layerSource(p), file, code);
  const ltt = c.layers_to_transform;
  if (ltt !== null && !Number.isInteger(ltt) && !(Array.isArray(ltt) && ltt.every((x) => Number.isInteger(x)))) bad('layers_to_transform must be an integer, a list of integers, or null');
  if (c.base_model_name_or_path !== null && typeof c.base_model_name_or_path !== 'string') bad('base_model_name_or_path must be a string or null');
  if (!['none', 'all', 'lora_only'].includes(c.bias)) bad(`bias must be 'none', 'all' or 'lora_only'`);
  if (typeof c.use_dora !== 'boolean') bad('use_dora must be true or false');
  if (typeof c.use_rslora !== 'boolean') bad('use_rslora must be true or false');
  if (typeof c.fan_in_fan_out !== 'boolean') bad('fan_in_fan_out must be true or false');
  if (typeof c.init_lora_weights !== 'boolean' && typeof c.init_lora_weights !== 'string') bad('init_lora_weights must be a boolean or a string');
  return c;
}

/** The regexes PEFT builds from a config's patterns, one function each (validation and matching use the same). */
const namesSource = (names: string): string => `^(?:${names})$`;
const keySource = (key: string): string => `^(.*\\.)?(${key})$`;
const saveSource = (module: string): string => `^(?:|.*\\.)${module}(?:$|\\..*)`;
const layerSource = (pattern: string): string => `^.*\\.${pattern}\\.(\\d+)\\.`;
const layerPatterns = (c: LoraConfig): readonly string[] => {
  const lp = c.layers_pattern;
  return lp === null || lp.length === 0 ? ['[^.]*'] : typeof lp === 'string' ? [lp] : lp;
};

/** A config pattern on RE2 (see core/pattern.ts; PEFT's patterns need no lookarounds or backreferences), named by its key. */
function compile(key: string, source: string, file = ADAPTER_CONFIG, code: 'E_USAGE' | 'E_FORMAT' = 'E_USAGE'): Pattern {
  return compilePattern(source, `pattern '${key.slice(0, 100)}'`, code, { file });
}

/**
 * A rank_pattern / alpha_pattern ready to match many modules: keys that are plain names (every
 * regex character escaped, as patternKey writes them) by name in a map, the others as regexes; the
 * first key in order that matches wins, as in PEFT.
 */
interface PatternIndex {
  /** A plain key's name → its first position and value. */
  readonly names: Map<string, { at: number; value: number }>;
  /** The regex keys, in order, in blocks: each block's `any` (compiled when first needed) matches where one of its keys may. */
  readonly blocks: { readonly keys: { at: number; key: string; value: number }[]; any?: Pattern }[];
}

/**
 * The most regex keys (not plain module names) a rank_pattern or alpha_pattern may have: each is
 * compiled on RE2 and tried on every module in turn; real configs have a handful.
 */
export const MAX_REGEX_KEYS = 256;
/** Regex keys per block: a module tries one pattern per block, then the keys of the first block that matches. */
const BLOCK_KEYS = 16;

const patternIndexes = new WeakMap<object, PatternIndex>();
const PLAIN_KEY = /^(?:[^\\^$.|?*+()[\]{}]|\\[\\^$.|?*+()[\]{}\-/])*$/;

function patternIndex(pattern: Readonly<Record<string, number>>): PatternIndex {
  let index = patternIndexes.get(pattern);
  if (index !== undefined) return index;
  index = { names: new Map(), blocks: [] };
  for (const [at, [key, value]] of Object.entries(pattern).entries()) {
    if (!PLAIN_KEY.test(key)) {
      // A key that is not a whole regex by itself (`a)|(b`) would change its neighbours' meaning in a block's pattern: it gets a block of its own.
      const last = index.blocks.at(-1);
      if (last !== undefined && last.keys.length < BLOCK_KEYS && selfContained(key) && selfContained(last.keys[0].key)) last.keys.push({ at, key, value });
      else index.blocks.push({ keys: [{ at, key, value }] });
    } else {
      const name = key.replace(/\\(.)/g, '$1');
      if (!index.names.has(name)) index.names.set(name, { at, value });
    }
  }
  patternIndexes.set(pattern, index);
  return index;
}

/** The value of the first key matching `(.*\.)?(key)$` on the module name: plain keys by its dotted suffixes, regex keys before them in order by RE2. */
function patternValue(pattern: Readonly<Record<string, number>>, module: string): number | undefined {
  const { names, blocks } = patternIndex(pattern);
  let best: { at: number; value: number } | undefined;
  // The name and each suffix after a dot ("a.b.c", "b.c", "c"): where `(.*\.)?` lets a key start.
  for (let from = 0; ; ) {
    const hit = names.get(module.slice(from));
    if (hit !== undefined && (best === undefined || hit.at < best.at)) best = hit;
    const dot = module.indexOf('.', from);
    if (dot < 0) break;
    from = dot + 1;
  }
  for (const block of blocks) {
    if (best !== undefined && block.keys[0].at > best.at) break;
    if (block.keys.length > 1) {
      block.any ??= compile(block.keys[0].key, keySource(block.keys.map((k) => `(?:${k.key})`).join('|')));
      if (!block.any.test(module)) continue;
    }
    for (const r of block.keys) {
      if (best !== undefined && r.at > best.at) break;
      if (compile(r.key, keySource(r.key)).test(module)) return r.value;
    }
  }
  return best?.value;
}

/** Whether a key is a regex on its own (balanced groups): only then can `(?:key)` stand beside others in one pattern. */
function selfContained(key: string): boolean {
  try {
    compilePattern(key);
    return true;
  } catch {
    return false;
  }
}

/** A module name as a rank_pattern / alpha_pattern key: PEFT reads keys as regexes, so every regex character is escaped. */
export function patternKey(module: string): string {
  return module.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Config fields that give each module its own rank with scaling 1: r = lora_alpha = the largest
 * rank, each module of another rank in rank_pattern and alpha_pattern (as mergekit and kohya's
 * resize write them), use_rslora false. Checked against PEFT's matching (`(.*\.)?(key)$`); when a
 * short name would also match a longer one, every module gets its own key, longest first.
 */
export function perModuleRanks(modules: readonly { readonly name: string; readonly rank: number }[], fields: Partial<LoraConfig> = {}): Partial<LoraConfig> {
  const r = Math.max(...modules.map((m) => m.rank));
  const build = (all: boolean): Partial<LoraConfig> => {
    const chosen = modules.filter((m) => all || m.rank !== r);
    if (all) chosen.sort((x, y) => y.name.length - x.name.length);
    const pattern = Object.fromEntries(chosen.map((m) => [patternKey(m.name), m.rank]));
    return { ...fields, r, lora_alpha: r, use_rslora: false, rank_pattern: pattern, alpha_pattern: { ...pattern } };
  };
  for (const all of [false, true]) {
    const config = build(all);
    const full = loraConfig(config);
    if (modules.every((m) => {
      const got = loraScaling(full, m.name);
      return got.r === m.rank && got.scaling === 1;
    })) return config;
  }
  throw new LowrankError('E_INTERNAL', 'could not write rank_pattern keys that give every module its own rank');
}

/** The rank, alpha and scaling PEFT uses for one module: patterns first, then r / lora_alpha. */
export function loraScaling(config: LoraConfig, module: string): { r: number; alpha: number; scaling: number } {
  const r = patternValue(config.rank_pattern, module) ?? config.r;
  const alpha = patternValue(config.alpha_pattern, module) ?? config.lora_alpha;
  return { r, alpha, scaling: config.use_rslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** A name list matches a module equal to an entry or ending in `.entry`; a string is a full-match regex. */
function matchesNames(names: readonly string[] | string, module: string): boolean {
  if (typeof names === 'string') return compile(names, namesSource(names)).test(module);
  return names.some((t) => module === t || module.endsWith(`.${t}`));
}

/** The layer index PEFT reads from a module name (`...<layers_pattern>.<i>.`), or undefined. */
function layerIndex(config: LoraConfig, module: string): number | undefined {
  for (const p of layerPatterns(config)) {
    const m = compile(p, layerSource(p)).exec(module);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}

/**
 * Whether PEFT would put an adapter on a module, as its check_target_module_exists decides:
 * `exclude_modules` and `modules_to_save` rule a module out; a string `target_modules` is a regex
 * matched against the whole name; a list matches a name equal to an entry, or ending in `.entry`
 * and then (when `layers_to_transform` is set) only in those layers. ('all-linear' depends on the
 * model's layer types, which a name alone does not tell: every name matches here.)
 */
export function isTargetModule(config: LoraConfig, module: string): boolean {
  const exclude = config.exclude_modules;
  if (exclude !== undefined && exclude !== null && exclude.length > 0 && matchesNames(exclude, module)) return false;
  const save = config.modules_to_save ?? [];
  if (save.some((m) => compile(m, saveSource(m)).test(module))) return false;
  const tm = config.target_modules;
  if (tm === null) return false;
  if (tm === 'all-linear') return true;
  if (typeof tm === 'string') return matchesNames(tm, module);
  if (tm.includes(module)) return true;
  if (!matchesNames(tm, module)) return false;
  const layers = config.layers_to_transform;
  if (layers === null) return true;
  const i = layerIndex(config, module);
  return i !== undefined && (typeof layers === 'number' ? i === layers : layers.includes(i));
}

/** The state-dict keys PEFT saves for a module's LoRA tensors. */
export function loraKeys(module: string, kind: 'linear' | 'embedding' = 'linear'): { A: string; B: string; magnitude: string } {
  const base = KEY_PREFIX + module;
  return kind === 'embedding'
    ? { A: `${base}.lora_embedding_A`, B: `${base}.lora_embedding_B`, magnitude: `${base}.lora_magnitude_vector` }
    : { A: `${base}.lora_A.weight`, B: `${base}.lora_B.weight`, magnitude: `${base}.lora_magnitude_vector` };
}

/** One adapted module of a LoRA adapter. */
export interface LoraModule {
  /** Module path without PEFT's prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly kind: 'linear' | 'embedding';
  readonly r: number;
  readonly alpha: number;
  readonly scaling: number;
  readonly A: SafetensorsEntry;
  readonly B: SafetensorsEntry;
  /** DoRA's magnitude vector, when present. */
  readonly magnitude?: SafetensorsEntry;
  /** lora_B's bias, when the adapter was saved with lora_bias. */
  readonly bias?: SafetensorsEntry;
}

/** An open adapter folder. Close it when done. */
export interface Adapter {
  readonly dir: string;
  /** The config as read; for LoRA (`peft_type` 'LORA') with PEFT's defaults filled in. */
  readonly config: LoraConfig;
  readonly file: SafetensorsFile;
  /** The LoRA modules (empty for other PEFT methods), in file order. */
  readonly modules: readonly LoraModule[];
  /** Tensors that belong to no LoRA module (modules_to_save, other methods' parameters). */
  readonly others: readonly SafetensorsEntry[];
  read(name: string): Promise<Tensor>;
  readAs<F extends FloatDType>(name: string, dtype: F, opts?: { into?: Storage<F> }): Promise<Tensor<F>>;
  close(): Promise<void>;
}

const KEY_RE = /^(?:base_model\.model\.)?(.+)\.(lora_A\.weight|lora_B\.weight|lora_B\.bias|lora_embedding_A|lora_embedding_B|lora_magnitude_vector(?:\.weight)?)$/;

/** True when a folder holds an adapter_config.json (after {@link repairTarget}, as for every read of an adapter folder). */
export async function isAdapterFolder(dir: string): Promise<boolean> {
  await repairTarget(dir);
  return fs().stat(join(dir, ADAPTER_CONFIG)).then((s) => s.isFile(), () => false);
}

/**
 * An adapter folder's adapter_config.json (any adapter type) and its path. Every reader of an
 * adapter folder starts here: the folder is repaired first ({@link repairTarget}), in case a
 * writer died replacing it.
 */
export async function readAdapterConfig(dir: string): Promise<{ cfgPath: string; fields: Record<string, unknown> }> {
  await repairTarget(dir);
  const cfgPath = join(dir, ADAPTER_CONFIG);
  return { cfgPath, fields: await readJsonObject(cfgPath) };
}

/** Opens a PEFT adapter folder: reads the config and the weights' header, and pairs up each module's tensors. */
export async function openAdapter(dir: string): Promise<Adapter> {
  const { cfgPath, fields } = await readAdapterConfig(dir);
  if (typeof fields.peft_type !== 'string') throw new FormatError('has no peft_type', { file: cfgPath });
  const isLora = fields.peft_type === 'LORA';
  const config = isLora ? loraConfig(fields as Partial<LoraConfig>, cfgPath) : (fields as unknown as LoraConfig);

  const names = await fs().readdir(dir);
  if (!names.includes(ADAPTER_WEIGHTS)) {
    const legacy = names.includes('adapter_model.bin') ? ' (only adapter_model.bin, a pickle, which lowrank does not load: convert it to safetensors)' : '';
    throw new LowrankError(legacy ? 'E_UNSUPPORTED' : 'E_NOT_FOUND', `no ${ADAPTER_WEIGHTS}${legacy}`, { file: dir });
  }
  const file = await openSafetensors(join(dir, ADAPTER_WEIGHTS));
  try {
    const { modules, others } = isLora ? pairModules(config, file) : { modules: [], others: [...file.entries] };
    return {
      dir,
      config,
      file,
      modules,
      others,
      read: (name) => file.read(name),
      readAs: (name, dtype, opts) => file.readAs(name, dtype, opts),
      close: () => file.close(),
    };
  } catch (e) {
    await file.close();
    throw e;
  }
}

function pairModules(config: LoraConfig, file: SafetensorsFile): { modules: LoraModule[]; others: SafetensorsEntry[] } {
  type Parts = { A?: SafetensorsEntry; B?: SafetensorsEntry; magnitude?: SafetensorsEntry; bias?: SafetensorsEntry; embedding: boolean };
  const parts = new Map<string, Parts>();
  const others: SafetensorsEntry[] = [];
  for (const e of file.entries) {
    const m = KEY_RE.exec(e.name);
    if (m === null) {
      others.push(e);
      continue;
    }
    const p = parts.get(m[1]) ?? { embedding: false };
    const role = m[2];
    if (role.startsWith('lora_embedding')) p.embedding = true;
    if (role === 'lora_A.weight' || role === 'lora_embedding_A') p.A = e;
    else if (role === 'lora_B.weight' || role === 'lora_embedding_B') p.B = e;
    else if (role === 'lora_B.bias') p.bias = e;
    else p.magnitude = e;
    parts.set(m[1], p);
  }
  const modules: LoraModule[] = [];
  for (const [name, p] of parts) {
    const ctx = { file: file.path, tensor: name };
    if (p.A === undefined || p.B === undefined) throw new FormatError(`module has lora_${p.A ? 'A' : 'B'} but no lora_${p.A ? 'B' : 'A'}`, ctx);
    if (p.A.shape.length < 2 || p.B.shape.length < 2) throw new FormatError(`lora_A ${fmt(p.A.shape)} and lora_B ${fmt(p.B.shape)} must be matrices`, ctx);
    const { r, alpha, scaling } = loraScaling(config, name);
    if (p.A.shape[0] !== r || p.B.shape[1] !== r) {
      throw new LowrankError('E_SHAPE', `lora_A ${fmt(p.A.shape)} and lora_B ${fmt(p.B.shape)} do not have the config's rank ${r}`, ctx);
    }
    if (p.magnitude !== undefined && p.magnitude.shape.reduce((a, d) => a * d, 1) !== p.B.shape[0]) {
      throw new LowrankError('E_SHAPE', `magnitude vector ${fmt(p.magnitude.shape)} does not match lora_B's ${p.B.shape[0]} outputs`, ctx);
    }
    modules.push({ name, kind: p.embedding ? 'embedding' : 'linear', r, alpha, scaling, A: p.A, B: p.B, magnitude: p.magnitude, bias: p.bias });
  }
  return { modules, others };
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** One module's tensors to write: lora_A [r, in], lora_B [out, r], and optionally DoRA's magnitude [out]. */
export interface LoraModuleTensors {
  readonly name: string;
  readonly kind?: 'linear' | 'embedding';
  readonly A: Tensor;
  readonly B: Tensor;
  readonly magnitude?: Tensor;
}

/** What {@link writeAdapter} writes. */
export interface AdapterWriteOptions extends WriteOptions {
  /** Extra tensors saved as they are (e.g. modules_to_save weights), under their full key names. */
  extra?: readonly TensorSource[];
  /** More `__metadata__` entries of adapter_model.safetensors (besides format: pt). */
  metadata?: Readonly<Record<string, string>>;
}

/**
 * Writes a LoRA adapter folder that PEFT loads unchanged. Shapes are checked against the config
 * (rank per module through rank_pattern); target_modules defaults to the last name component of
 * every module written.
 */
export async function writeAdapter(dir: string, config: Partial<LoraConfig>, modules: readonly LoraModuleTensors[], opts: AdapterWriteOptions = {}): Promise<LoraConfig> {
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') {
    throw new LowrankError('E_USAGE', `writeAdapter writes LoRA adapters; peft_type '${config.peft_type}' is not LORA`, { file: dir });
  }
  const targets = config.target_modules ?? [...new Set(modules.map((m) => m.name.split('.').pop() as string))].sort();
  const full = loraConfig({ ...config, peft_type: 'LORA', target_modules: targets, use_dora: config.use_dora ?? modules.some((m) => m.magnitude !== undefined) });
  const sources: TensorSource[] = [];
  for (const m of modules) {
    const { r } = loraScaling(full, m.name);
    const ctx = { file: dir, tensor: m.name };
    if (!isTargetModule(full, m.name)) {
      throw new LowrankError('E_USAGE', 'module is not matched by target_modules (or is excluded), so PEFT would not load its weights', ctx);
    }
    if (full.use_dora !== (m.magnitude !== undefined) && (m.kind ?? 'linear') === 'linear') {
      throw new LowrankError('E_USAGE', full.use_dora ? 'use_dora is set but this module has no magnitude vector' : 'module has a DoRA magnitude vector but use_dora is false', ctx);
    }
    const [ra, rb] = [m.A.shape[0], m.B.shape[m.B.shape.length - 1]];
    if (m.A.shape.length !== 2 || m.B.shape.length !== 2 || ra !== r || rb !== r) {
      throw new LowrankError('E_SHAPE', `lora_A ${fmt(m.A.shape)} and lora_B ${fmt(m.B.shape)} must be [${r}, in] and [out, ${r}]`, ctx);
    }
    if (m.magnitude !== undefined && m.magnitude.data.length !== m.B.shape[0]) {
      throw new LowrankError('E_SHAPE', `magnitude has ${m.magnitude.data.length} entries, lora_B has ${m.B.shape[0]} outputs`, ctx);
    }
    const keys = loraKeys(m.name, m.kind);
    sources.push({ name: keys.A, dtype: m.A.dtype, shape: m.A.shape, data: m.A.data });
    sources.push({ name: keys.B, dtype: m.B.dtype, shape: m.B.shape, data: m.B.data });
    if (m.magnitude !== undefined) sources.push({ name: keys.magnitude, dtype: m.magnitude.dtype, shape: [m.magnitude.data.length], data: m.magnitude.data });
  }
  sources.push(...(opts.extra ?? []));
  await writeDirAtomic(
    dir,
    async (tmp) => {
      await writeTextFile(join(tmp, ADAPTER_CONFIG), JSON.stringify(sortKeys(full), null, 2) + '\n');
      await writeSafetensors(join(tmp, ADAPTER_WEIGHTS), sources, { metadata: { ...opts.metadata, format: 'pt' } });
    },
    opts,
  );
  return full;
}

function sortKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
