/**
 * Writing a copy of a model folder with some tensors replaced (merged weights, residual weights):
 * the same shard files, index, tensor order and dtypes, the folder's other files (config.json,
 * tokenizer, ...) copied; streamed one tensor at a time and written atomically.
 */
import type { Tensor } from '../core/tensor.js';
import { writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { INDEX_FILE, type Model, type ModelTensor } from './hf.js';
import { writeSafetensors, type TensorSource } from './safetensors/writer.js';
import { fs } from './fs.js';
import { join } from './paths.js';

const WEIGHT_SUFFIXES = ['.safetensors', '.bin', '.pt', '.pth', '.ckpt', '.gguf', '.h5', '.msgpack', '.onnx'];

/** Options of {@link rewriteModel}. */
export interface RewriteOptions extends WriteOptions {
  /** Called before each tensor is written. */
  readonly onTensor?: (name: string, index: number, count: number) => void;
}

/** A shard's tensors in the model's order: what {@link rewriteModel} writes into that shard. */
function shardTensors(model: Model, shard: string): ModelTensor[] {
  return model.tensors.filter((t) => t.shard === shard);
}

/** The order in which {@link rewriteModel} asks for the tensors: shard by shard, each in the model's order. */
export function rewriteOrder(model: Model): string[] {
  return model.shards.flatMap((shard) => shardTensors(model, shard).map((t) => t.name));
}

/**
 * Writes `model` to `out` with each tensor for which `replace` returns one replaced (it must have
 * the tensor's dtype and shape); returns the other files copied.
 *
 * @example
 * await rewriteModel(model, 'out', async (t) => (t.name === 'lm_head.weight' ? newHead : undefined));
 */
export async function rewriteModel(model: Model, out: string, replace: (t: ModelTensor) => Promise<Tensor | undefined>, opts: RewriteOptions = {}): Promise<{ copied: string[] }> {
  const count = model.tensors.length;
  let index = 0;
  const sources = (shard: string): TensorSource[] =>
    shardTensors(model, shard).map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      data: async () => {
        opts.onTensor?.(t.name, index++, count);
        return ((await replace(t)) ?? (await model.read(t.name))).data;
      },
    }));
  const copied: string[] = [];
  const single = (await fs().stat(model.path)).isFile();
  await writeDirAtomic(
    out,
    async (tmp) => {
      const metadata = { format: 'pt', ...model.metadata };
      for (const shard of model.shards) await writeSafetensors(join(tmp, shard), sources(shard), { metadata });
      if (model.shards.length > 1) {
        const weightMap: Record<string, string> = Object.create(null) as Record<string, string>;
        let total = 0;
        for (const t of model.tensors) {
          weightMap[t.name] = t.shard;
          total += t.byteLength;
        }
        await writeTextFile(join(tmp, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
      }
      if (!single) {
        for (const name of (await fs().readdir(model.path)).sort()) {
          if (WEIGHT_SUFFIXES.some((s) => name.endsWith(s)) || name.endsWith('.index.json')) continue;
          if (!(await fs().stat(join(model.path, name))).isFile()) continue;
          await fs().copyFile(join(model.path, name), join(tmp, name));
          copied.push(name);
        }
      }
    },
    opts,
  );
  return { copied };
}
