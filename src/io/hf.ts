/**
 * Hugging Face model folders: `config.json` plus `model.safetensors`, or shards listed by
 * `model.safetensors.index.json`. Opening reads the config and the shard headers only; tensors are
 * read one at a time by name.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError, LowrankError, brief, fromSystemError } from '../core/errors.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { byteSize, type Tensor } from '../core/tensor.js';
import { repairTarget, writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { readJsonObject } from './files.js';
import { NameIndex } from './nameIndex.js';
import { openSafetensors, type SafetensorsFile } from './safetensors/reader.js';
import { writeSafetensors, type TensorSource } from './safetensors/writer.js';
import type { SafetensorsEntry } from './safetensors/header.js';

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
  const st = await stat(path).catch((e: unknown) => {
    throw fromSystemError(e, 'opening the model', path);
  });
  if (st.isFile()) return assemble(path, undefined, [[basename(path), await openSafetensors(path)]], undefined);
  const names = await readdir(path).catch((e: unknown) => {
    throw fromSystemError(e, 'listing the model folder', path);
  });
  const config = names.includes('config.json') ? await readJsonObject(join(path, 'config.json')) : undefined;
  const index = names.includes(INDEX_FILE) ? INDEX_FILE : names.find((n) => n.endsWith('.safetensors.index.json'));
  let shardNames: string[];
  let weightMap: Map<string, string> | undefined;
  if (index !== undefined) {
    weightMap = await readIndex(join(path, index));
    shardNames = [...new Set(weightMap.values())].sort();
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

function assemble(path: string, config: Record<string, unknown> | undefined, shards: [string, SafetensorsFile][], weightMap: Map<string, string> | undefined): Model {
  const tensors: ModelTensor[] = [];
  const owner: SafetensorsFile[] = [];
  for (const [shard, file] of shards) {
    for (const e of file.entries) {
      tensors.push({ name: e.name, dtype: e.dtype, shape: e.shape, byteOffset: e.byteOffset, byteLength: e.byteLength, shard });
      owner.push(file);
    }
  }
  const indexOf = shards.length === 1 ? (name: string) => shards[0][1].indexOf(name) : crossShardIndex(path, tensors);
  if (weightMap !== undefined) checkWeightMap(path, tensors, indexOf, weightMap);
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

/** Where each name is in `tensors` (one shard's file has this lookup already), after checking that no two shards hold one name. */
function crossShardIndex(path: string, tensors: readonly ModelTensor[]): (name: string) => number {
  const byName = new NameIndex(tensors.map((t) => t.name));
  const twice = byName.firstDuplicate();
  if (twice !== undefined) {
    const t = tensors[twice.second];
    throw new FormatError(`tensor is in both ${tensors[twice.first].shard} and ${t.shard}`, { file: path, tensor: t.name });
  }
  return (name) => byName.find(name);
}

/** Every tensor must be where the index says, and every tensor the index lists must be somewhere. */
function checkWeightMap(path: string, tensors: readonly ModelTensor[], indexOf: (name: string) => number, weightMap: Map<string, string>): void {
  for (const t of tensors) {
    const where = weightMap.get(t.name);
    if (where !== t.shard) {
      throw new FormatError(where === undefined ? `tensor in ${t.shard} is missing from the index` : `index puts this tensor in ${where}, but it is in ${t.shard}`, { file: path, tensor: t.name });
    }
  }
  for (const [name, shard] of weightMap) {
    if (indexOf(name) < 0) throw new FormatError(`the index lists this tensor in ${shard}, which does not hold it`, { file: path, tensor: name });
  }
}

async function readIndex(file: string): Promise<Map<string, string>> {
  const idx = await readJsonObject(file);
  const wm = idx.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new FormatError('index has no weight_map object', { file });
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard.includes('\\') || shard === '..' || shard === '.') {
      throw new FormatError(`weight_map entry ${brief(shard)} is not a file name inside the folder`, { file, tensor: name });
    }
    map.set(name, shard);
  }
  if (map.size === 0) throw new FormatError('index weight_map is empty', { file });
  return map;
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
