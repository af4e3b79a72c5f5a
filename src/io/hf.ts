/**
 * Hugging Face model folders: `config.json` plus `model.safetensors`, or shards listed by
 * `model.safetensors.index.json`. Opening reads the config and the shard headers only; tensors are
 * read one at a time by name.
 */
import { FormatError, LowrankError, fromSystemError } from '../core/errors.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { byteSize, type Tensor } from '../core/tensor.js';
import { repairTarget, writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { MAX_JSON_BYTES, readBytes, readJsonObject } from './files.js';
import { brief, JsonScanner } from './jsonScan.js';
import { NameIndex } from './nameIndex.js';
import { openSafetensors, type SafetensorsFile } from './safetensors/reader.js';
import { writeSafetensors, type TensorSource } from './safetensors/writer.js';
import type { SafetensorsEntry } from './safetensors/header.js';
import { fs } from './fs.js';
import { basename, join } from './paths.js';

/** A tensor of a model and the shard that holds it. */
export interface ModelTensor extends SafetensorsEntry {
  /** The shard file's name inside the folder. */
  readonly shard: string;
}

/** An open model: a folder (or a single .safetensors file). Close it when done. */
export interface Model {
  /** The folder, or the file when a single file was opened. */
  readonly path: string;
  /** config.json, when the folder has one. */
  readonly config: Readonly<Record<string, unknown>> | undefined;
  /** The shard files' names, in order. */
  readonly shards: readonly string[];
  /** Every tensor, shard by shard, in file order. */
  readonly tensors: readonly ModelTensor[];
  /** The `__metadata__` of the first shard. */
  readonly metadata: Readonly<Record<string, string>> | undefined;
  has(name: string): boolean;
  /** A tensor's entry; `E_NOT_FOUND` naming the folder when absent. */
  entry(name: string): ModelTensor;
  /** A tensor as stored. */
  read(name: string): Promise<Tensor>;
  /** A tensor decoded to f32/f64. */
  readAs<F extends FloatDType>(name: string, dtype: F, opts?: { into?: Storage<F> }): Promise<Tensor<F>>;
  close(): Promise<void>;
}

/** The file name of a single-file Hugging Face checkpoint. */
export const SINGLE_FILE = 'model.safetensors';
/** The file name of a sharded checkpoint's index (`metadata.total_size`, `weight_map`). */
export const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Opens a model folder (config.json + model.safetensors, or shards through the index; any
 * `*.safetensors.index.json` or single `*.safetensors` is accepted), or a lone .safetensors file.
 */
export async function openModel(path: string): Promise<Model> {
  await repairTarget(path);
  const st = await fs().stat(path).catch((e: unknown) => {
    throw fromSystemError(e, 'opening the model', path);
  });
  if (st.isFile()) return assemble(path, undefined, [[basename(path), await openSafetensors(path)]], undefined);
  const names = await fs().readdir(path).catch((e: unknown) => {
    throw fromSystemError(e, 'listing the model folder', path);
  });
  const config = names.includes('config.json') ? await readJsonObject(join(path, 'config.json')) : undefined;
  const index = names.includes(INDEX_FILE) ? INDEX_FILE : names.find((n) => n.endsWith('.safetensors.index.json'));
  let shardNames: string[];
  let weightMap: WeightMap | undefined;
  if (index !== undefined) {
    weightMap = await readIndex(join(path, index));
    shardNames = [...new Set(weightMap.shards)].sort();
  } else {
    const files = names.filter((n) => n.endsWith('.safetensors')).sort();
    if (files.length === 0) throw new LowrankError('E_NOT_FOUND', 'no .safetensors file and no safetensors index in this folder', { file: path });
    if (files.length > 1 && !files.includes(SINGLE_FILE)) {
      throw new LowrankError('E_FORMAT', `${files.length} .safetensors files but no index naming which tensors each holds`, { file: path });
    }
    shardNames = [files.includes(SINGLE_FILE) ? SINGLE_FILE : files[0]];
  }
  const opened: [string, SafetensorsFile][] = [];
  try {
    for (const name of shardNames) opened.push([name, await openSafetensors(join(path, name))]);
    return assemble(path, config, opened, weightMap);
  } catch (e) {
    await Promise.all(opened.map(([, f]) => f.close()));
    throw e;
  }
}

function assemble(path: string, config: Record<string, unknown> | undefined, shards: [string, SafetensorsFile][], weightMap: WeightMap | undefined): Model {
  const tensors: ModelTensor[] = [];
  const owner: SafetensorsFile[] = [];
  for (const [shard, file] of shards) {
    for (const e of file.entries) {
      tensors.push({ name: e.name, dtype: e.dtype, shape: e.shape, byteOffset: e.byteOffset, byteLength: e.byteLength, shard });
      owner.push(file);
    }
  }
  let indexOf = (name: string): number => shards[0][1].indexOf(name);
  if (shards.length > 1 || weightMap !== undefined) {
    const byName = crossShardIndex(path, tensors);
    if (weightMap !== undefined) checkWeightMap(path, tensors, byName, weightMap);
    indexOf = (name) => byName.find(name);
  }
  const get = (name: string): { t: ModelTensor; file: SafetensorsFile } => {
    const i = indexOf(name);
    if (i < 0) throw new LowrankError('E_NOT_FOUND', 'no such tensor in this model', { file: path, tensor: name });
    return { t: tensors[i], file: owner[i] };
  };
  return {
    path,
    config,
    shards: shards.map(([n]) => n),
    tensors,
    metadata: shards[0]?.[1].metadata,
    has: (name) => indexOf(name) >= 0,
    entry: (name) => get(name).t,
    read: (name) => get(name).file.read(name),
    readAs: (name, dtype, opts) => get(name).file.readAs(name, dtype, opts),
    close: async () => {
      await Promise.all(shards.map(([, f]) => f.close()));
    },
  };
}

/** The names of `tensors` (one shard's file has this lookup already), after checking that no two shards hold one name. */
function crossShardIndex(path: string, tensors: readonly ModelTensor[]): NameIndex {
  const byName = new NameIndex(tensors.map((t) => t.name));
  const twice = byName.firstDuplicate();
  if (twice !== undefined) {
    const t = tensors[twice.second];
    throw new FormatError(`tensor is in both ${tensors[twice.first].shard} and ${t.shard}`, { file: path, tensor: t.name });
  }
  return byName;
}

/** Every tensor must be where the index says, and every tensor the index lists must be somewhere (two merges of sorted names, no lookups). */
function checkWeightMap(path: string, tensors: readonly ModelTensor[], byName: NameIndex, weightMap: WeightMap): void {
  const listed = byName.positionsIn(weightMap.byName);
  tensors.forEach((t, i) => {
    const where = listed[i] < 0 ? undefined : weightMap.shards[listed[i]];
    if (where !== t.shard) {
      throw new FormatError(where === undefined ? `tensor in ${t.shard} is missing from the index` : `index puts this tensor in ${where}, but it is in ${t.shard}`, { file: path, tensor: t.name });
    }
  });
  const held = weightMap.byName.positionsIn(byName);
  held.forEach((at, i) => {
    if (at < 0) throw new FormatError(`the index lists this tensor in ${weightMap.shards[i]}, which does not hold it`, { file: path, tensor: weightMap.names[i] });
  });
}

/** A sharded model's weight_map: each tensor's name and shard file, in the index's order, and a lookup by name. */
interface WeightMap {
  readonly names: readonly string[];
  readonly shards: readonly string[];
  readonly byName: NameIndex;
}

const WEIGHT_MAP = ['"weight_map"'];
/**
 * The most tensors a sharded model's index may list (an `E_LIMIT` error past it). The largest
 * published checkpoints list some hundreds of thousands (a quantized 1T-parameter MoE: experts ×
 * layers × 3 projections × qweight/scales/zeros); each shard still holds at most MAX_TENSORS.
 */
export const MAX_MODEL_TENSORS = 2 ** 20;

/** How many distinct shard names one string each at most (shards repeat; a hostile index need not). */
const MAX_SHARED_SHARDS = 4096;

/**
 * Reads the index with the JSON scanner (no JSON tree of up to MAX_MODEL_TENSORS names), refusing
 * a tensor listed twice and shards that are not plain file names.
 */
async function readIndex(file: string): Promise<WeightMap> {
  const s = new JsonScanner(await readBytes(file, MAX_JSON_BYTES), file, 'index', 0);
  if (s.peek() !== 0x7b) {
    s.skipValue();
    s.finish();
    throw new FormatError('must hold a JSON object', { file });
  }
  let map: { names: string[]; shards: unknown[] } | undefined;
  for (let more = s.enter(); more; more = s.next()) {
    if (s.knownName(WEIGHT_MAP) !== 0) {
      s.skipValue();
      continue;
    }
    map = scanWeightMap(s, file);
  }
  s.finish();
  if (map === undefined) throw new FormatError('index has no weight_map object', { file });
  const { names, shards } = map;
  if (names.length === 0) throw new FormatError('index weight_map is empty', { file });
  const files: string[] = [];
  shards.forEach((shard, i) => {
    if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard.includes('\\') || shard === '..' || shard === '.') {
      throw new FormatError(`weight_map entry ${brief(shard)} is not a file name inside the folder`, { file, tensor: names[i] });
    }
    files.push(shard);
  });
  const byName = new NameIndex(names);
  const twice = byName.firstDuplicate();
  if (twice !== undefined) throw new FormatError('weight_map lists this tensor twice', { file, tensor: names[twice.second] });
  return { names, shards: files, byName };
}

/** The weight_map object at the cursor: its names and their values (strings, or an Invalid); undefined for a value that is no object. */
function scanWeightMap(s: JsonScanner, file: string): { names: string[]; shards: unknown[] } | undefined {
  if (s.peek() !== 0x7b) {
    s.skipValue();
    return undefined;
  }
  const names: string[] = [];
  const shards: unknown[] = [];
  const shared = new Map<string, string>();
  for (let more = s.enter(); more; more = s.next()) {
    if (names.length === MAX_MODEL_TENSORS) throw new LowrankError('E_LIMIT', `the index lists more than ${MAX_MODEL_TENSORS} tensors, the most lowrank reads in one model`, { file });
    names.push(s.name());
    if (s.peek() !== 0x22) {
      shards.push(s.describe());
      continue;
    }
    const shard = s.string();
    const one = shared.get(shard);
    if (one === undefined && shared.size < MAX_SHARED_SHARDS) shared.set(shard, shard);
    shards.push(one ?? shard);
  }
  return { names, shards };
}

/**
 * Parses a shard size as Hugging Face writes it: a byte count, or a number with KB/MB/GB (powers
 * of 1000) or KiB/MiB/GiB (powers of 1024).
 */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return checkSize(text, String(text));
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(text);
  if (m === null) throw new LowrankError('E_USAGE', `size '${text}' is not a number of bytes like 500MB or 5GiB`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as 'B' | 'K' | 'M' | 'G' | 'T'];
  const base = unit.includes('I') ? 1024 : 1000;
  return checkSize(Math.floor(Number(m[1]) * base ** pow), text);
}

function checkSize(n: number, text: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new LowrankError('E_USAGE', `size '${text}' must be a positive number of bytes`);
  return n;
}

/** What {@link writeModel} writes. */
export interface ModelWriteOptions extends WriteOptions {
  /** config.json contents (omitted when undefined). */
  config?: Readonly<Record<string, unknown>>;
  /** Largest shard, in bytes of tensor data (as Hugging Face counts it). Default: one file. */
  maxShardSize?: number;
  /** `__metadata__` of every shard; `format: pt` is added when absent, as transformers expects. */
  metadata?: Readonly<Record<string, string>>;
}

/** What was written. */
export interface ModelWriteResult {
  readonly shards: readonly string[];
  readonly totalSize: number;
}

/**
 * Writes a model folder atomically: config.json and either model.safetensors or
 * model-0000k-of-0000n.safetensors shards with model.safetensors.index.json. Tensors are assigned to
 * shards in the order given, starting a new shard when the next tensor would pass
 * `maxShardSize` (a larger tensor gets a shard of its own), as transformers' sharding does. Tensor
 * data may be lazy, so a model larger than memory can be written.
 */
export async function writeModel(dir: string, tensors: Iterable<TensorSource>, opts: ModelWriteOptions = {}): Promise<ModelWriteResult> {
  const list = [...tensors];
  const seen = new Set<string>();
  for (const t of list) {
    if (seen.has(t.name)) throw new LowrankError('E_USAGE', 'two tensors have this name', { file: dir, tensor: t.name });
    seen.add(t.name);
  }
  const max = opts.maxShardSize ?? Infinity;
  const groups: TensorSource[][] = [[]];
  let current = 0;
  let totalSize = 0;
  for (const t of list) {
    const bytes = byteSize(t.dtype, t.shape);
    const group = groups[groups.length - 1];
    if (group.length > 0 && current + bytes > max) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(t);
    current += bytes;
    totalSize += bytes;
  }
  const n = groups.length;
  const names = n === 1 ? [SINGLE_FILE] : groups.map((_, i) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`);
  const metadata = { format: 'pt', ...opts.metadata };
  await writeDirAtomic(
    dir,
    async (tmp) => {
      if (opts.config !== undefined) await writeTextFile(join(tmp, 'config.json'), JSON.stringify(opts.config, null, 2) + '\n');
      for (let i = 0; i < n; i++) await writeSafetensors(join(tmp, names[i]), groups[i], { metadata });
      if (n > 1) {
        const weightMap: Record<string, string> = Object.create(null) as Record<string, string>; // a tensor may be named __proto__
        groups.forEach((g, i) => g.forEach((t) => (weightMap[t.name] = names[i])));
        const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
        await writeTextFile(join(tmp, INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
      }
    },
    opts,
  );
  return { shards: names, totalSize };
}

function pad5(i: number): string {
  return String(i).padStart(5, '0');
}
