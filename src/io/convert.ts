/**
 * Rewriting a model: change the storage dtype of its float tensors and re-shard it, one tensor at
 * a time (peak memory: about one tensor in f32 plus its encoding).
 */
import { isFloatDType } from '../core/dtype.js';
import { encodeFloat } from '../core/tensor.js';
import { openModel, writeModel, type ModelWriteResult } from './hf.js';
import type { TensorSource } from './safetensors/writer.js';
import type { WriteOptions } from './atomic.js';

/** The storage dtypes a model can be converted to, with the names config.json uses for them. */
export const TORCH_DTYPES = { f32: 'float32', bf16: 'bfloat16', f16: 'float16', f64: 'float64' } as const;
/** A storage dtype {@link convertModel} can write. */
export type ModelDType = keyof typeof TORCH_DTYPES;

/** Options of {@link convertModel}. */
export interface ConvertOptions extends WriteOptions {
  /** Store every float tensor as this dtype (rounding to nearest even); integer tensors are copied. */
  dtype?: ModelDType;
  /** Largest shard in bytes; default one file. */
  maxShardSize?: number;
  /** Called before each tensor is written. */
  onTensor?: (name: string, index: number, count: number) => void;
}

/**
 * Reads the model at `src` (folder or .safetensors file) and writes it to the folder `dst`,
 * optionally in another dtype and sharding; config.json is copied (with `torch_dtype` updated).
 */
export async function convertModel(src: string, dst: string, opts: ConvertOptions = {}): Promise<ModelWriteResult> {
  const model = await openModel(src);
  try {
    const target = opts.dtype;
    const sources: TensorSource[] = model.tensors.map((t, i) => {
      const convert = target !== undefined && isFloatDType(t.dtype) && t.dtype !== target;
      return {
        name: t.name,
        dtype: convert ? target : t.dtype,
        shape: t.shape,
        data: async () => {
          opts.onTensor?.(t.name, i, model.tensors.length);
          return convert ? encodeFloat(await model.readAs(t.name, target === 'f64' ? 'f64' : 'f32'), target).data : (await model.read(t.name)).data;
        },
      };
    });
    // transformers ≥ 4.56 writes `dtype`, older versions `torch_dtype`: update whichever is there.
    const config = model.config === undefined || target === undefined ? model.config : { ...model.config, torch_dtype: TORCH_DTYPES[target], ...('dtype' in model.config ? { dtype: TORCH_DTYPES[target] } : {}) };
    return await writeModel(dst, sources, { config, maxShardSize: opts.maxShardSize, overwrite: opts.overwrite, metadata: model.metadata });
  } finally {
    await model.close();
  }
}
