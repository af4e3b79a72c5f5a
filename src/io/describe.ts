/**
 * What is in a file or folder: every tensor (name, dtype, shape, bytes, shard), totals by dtype,
 * the config's architecture fields and, for an adapter, its method, rank and targets. Reads headers
 * and configs only. `lowrank inspect` prints this.
 */
import { byteSize, numel } from '../core/tensor.js';
import { toSafetensorsDType, type DType } from '../core/dtype.js';
import { fromSystemError } from '../core/errors.js';
import { openModel } from './hf.js';
import { isAdapterFolder, openAdapter, loraScaling } from './peft.js';
import { readNpyHeader } from './npy.js';
import { readNpzHeaders } from './npz.js';
import { fs } from './fs.js';
import { basename } from './paths.js';

/** One tensor in a description. */
export interface TensorRow {
  name: string;
  /** The safetensors dtype name (F32, BF16, ...). */
  dtype: string;
  shape: number[];
  bytes: number;
  shard?: string;
}

/** Totals of a group of tensors. */
export interface Totals {
  tensors: number;
  parameters: number;
  bytes: number;
}

/** A description of a model, adapter or safetensors file. */
export interface Description {
  path: string;
  kind: 'model' | 'adapter' | 'safetensors' | 'npy' | 'npz';
  shards: string[];
  /** Architecture fields of config.json (only those present). */
  architecture?: Record<string, unknown>;
  adapter?: AdapterSummary;
  metadata?: Record<string, string>;
  tensors: TensorRow[];
  totals: Totals & { byDtype: Record<string, Totals> };
}

/** The adapter part of a description. */
export interface AdapterSummary {
  peft_type: string;
  /** `lora`, `dora`, or the init method (`pissa`, `olora`, ...) recorded in init_lora_weights. */
  method: string;
  r?: number;
  lora_alpha?: number;
  use_rslora?: boolean;
  target_modules?: unknown;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  base_model_name_or_path?: string | null;
  modules: number;
  /** Distinct ranks over the adapted modules. */
  ranks?: number[];
  scalings?: number[];
}

const ARCH_FIELDS = [
  'architectures', 'model_type', 'torch_dtype', 'dtype', 'hidden_size', 'intermediate_size', 'num_hidden_layers',
  'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size', 'max_position_embeddings', 'rope_theta',
  'rms_norm_eps', 'tie_word_embeddings', 'n_embd', 'n_layer', 'n_head', 'n_positions', 'n_inner',
];

/**
 * Describes a model folder, an adapter folder, a .safetensors, .npy or .npz file from their headers
 * alone (for .npz, the zip directory and each member's .npy header).
 */
export async function describe(path: string): Promise<Description> {
  const st = await fs().stat(path).catch((e: unknown) => {
    throw fromSystemError(e, 'inspecting', path);
  });
  if (st.isDirectory() && (await isAdapterFolder(path))) return describeAdapter(path);
  if (st.isFile() && /\.np[yz]$/.test(path)) {
    const arrays = path.endsWith('.npy') ? { [basename(path)]: await readNpyHeader(path) } : await readNpzHeaders(path);
    const tensors = Object.entries(arrays).map(([name, h]) => row(name, h.dtype, h.shape, byteSize(h.dtype, h.shape)));
    return { path, kind: path.endsWith('.npy') ? 'npy' : 'npz', shards: [], tensors, totals: totals(tensors) };
  }
  const model = await openModel(path);
  try {
    const tensors = model.tensors.map((t) => row(t.name, t.dtype, t.shape, t.byteLength, model.shards.length > 1 ? t.shard : undefined));
    const config = model.config;
    const architecture = config === undefined ? undefined : Object.fromEntries(ARCH_FIELDS.filter((f) => f in config).map((f) => [f, plain(config[f])]));
    return {
      path,
      kind: st.isDirectory() ? 'model' : 'safetensors',
      shards: [...model.shards],
      architecture,
      metadata: model.metadata === undefined ? undefined : { ...model.metadata },
      tensors,
      totals: totals(tensors),
    };
  } finally {
    await model.close();
  }
}

async function describeAdapter(dir: string): Promise<Description> {
  const a = await openAdapter(dir);
  try {
    const c = a.config;
    const tensors = a.file.entries.map((t) => row(t.name, t.dtype, t.shape, t.byteLength));
    const isLora = c.peft_type === 'LORA';
    const init = c.init_lora_weights;
    const method = !isLora ? c.peft_type.toLowerCase() : c.use_dora ? 'dora' : typeof init === 'string' ? init : 'lora';
    const adapter: AdapterSummary = isLora
      ? {
          peft_type: c.peft_type,
          method,
          r: c.r,
          lora_alpha: c.lora_alpha,
          use_rslora: c.use_rslora,
          target_modules: c.target_modules,
          rank_pattern: { ...c.rank_pattern },
          alpha_pattern: { ...c.alpha_pattern },
          base_model_name_or_path: c.base_model_name_or_path,
          modules: a.modules.length,
          ranks: [...new Set(a.modules.map((m) => m.r))].sort((x, y) => x - y),
          scalings: [...new Set(a.modules.map((m) => loraScaling(c, m.name).scaling))].sort((x, y) => x - y),
        }
      : { peft_type: c.peft_type, method, target_modules: c.target_modules, modules: 0 };
    return { path: dir, kind: 'adapter', shards: [a.file.path], adapter, metadata: a.file.metadata === undefined ? undefined : { ...a.file.metadata }, tensors, totals: totals(tensors) };
  } finally {
    await a.close();
  }
}

/** A config value as shown: primitives and short lists of them as they are, anything else summarized. */
function plain(v: unknown): unknown {
  const primitive = (x: unknown): boolean => x === null || ['string', 'number', 'boolean'].includes(typeof x);
  if (primitive(v)) return typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v;
  if (Array.isArray(v) && v.length <= 64 && v.every((x) => primitive(x) && !(typeof x === 'string' && x.length > 200))) return v;
  return `(${Array.isArray(v) ? `a list of ${v.length}` : 'an object'}, not shown)`;
}

function row(name: string, dtype: DType, shape: readonly number[], bytes: number, shard?: string): TensorRow {
  return shard === undefined ? { name, dtype: toSafetensorsDType(dtype), shape: [...shape], bytes } : { name, dtype: toSafetensorsDType(dtype), shape: [...shape], bytes, shard };
}

function totals(rows: readonly TensorRow[]): Totals & { byDtype: Record<string, Totals> } {
  const byDtype: Record<string, Totals> = {};
  const all: Totals = { tensors: 0, parameters: 0, bytes: 0 };
  for (const r of rows) {
    const n = numel(r.shape);
    const d = (byDtype[r.dtype] ??= { tensors: 0, parameters: 0, bytes: 0 });
    for (const t of [d, all]) {
      t.tensors++;
      t.parameters += n;
      t.bytes += r.bytes;
    }
  }
  return { ...all, byDtype };
}
