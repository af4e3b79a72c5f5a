/**
 * mlx-lm's LoRA adapter folder: `adapters.safetensors` + `adapter_config.json`, as mlx_lm's
 * `load_adapters` reads it (mlx_lm/tuner/utils.py, lora.py). mlx-lm's LoRALinear stores
 * lora_a [in, r] and lora_b [r, out] and adds scale·(x·lora_a)·lora_b, so for PEFT-style factors
 * B [out, r], A [r, in] the update B·A is lora_a = Aᵀ, lora_b = Bᵀ with scale 1. mlx-lm has one rank
 * for every module: lower-rank modules are padded with zero directions (the update is unchanged).
 * Its config names modules by their path inside each transformer block (`self_attn.q_proj`) and
 * applies them to the last `num_layers` blocks, so only modules under `model.layers.<i>.` are
 * accepted.
 */
import { LowrankError } from '../core/errors.js';
import { encodeFloat, tensor, toFloat, type Tensor } from '../core/tensor.js';
import { writeDirAtomic, writeTextFile, type WriteOptions } from './atomic.js';
import { writeSafetensors, type TensorSource } from './safetensors/writer.js';
import { join } from './paths.js';

/** The weights file of an mlx-lm adapter folder. */
export const MLX_ADAPTER_WEIGHTS = 'adapters.safetensors';
/** The config file of an mlx-lm adapter folder. */
export const MLX_ADAPTER_CONFIG = 'adapter_config.json';

/** One LoRA module: its path in the model and its factors (update = B·A). */
export interface MlxModule {
  readonly name: string;
  /** [r, in] */
  readonly A: Tensor;
  /** [out, r] */
  readonly B: Tensor;
}

/** The adapter_config.json fields mlx-lm reads. */
export interface MlxAdapterConfig {
  fine_tune_type: 'lora';
  num_layers: number;
  lora_parameters: { rank: number; scale: number; dropout: number; keys: string[] };
}

const BLOCK = /^model\.layers\.(\d+)\.(.+)$/;

/**
 * Writes an mlx-lm LoRA adapter folder (atomically) and returns its config. `numLayers` is the
 * model's number of transformer blocks (default: one more than the highest block index).
 *
 * @example
 * await writeMlxAdapter('my-lora-mlx', [{ name: 'model.layers.0.self_attn.q_proj', A, B }]);
 */
export async function writeMlxAdapter(dir: string, modules: readonly MlxModule[], opts: WriteOptions & { numLayers?: number } = {}): Promise<MlxAdapterConfig> {
  if (modules.length === 0) throw new LowrankError('E_USAGE', 'an mlx adapter needs at least one module');
  const keys = new Set<string>();
  let top = 0;
  for (const m of modules) {
    const hit = BLOCK.exec(m.name);
    if (hit === null) throw new LowrankError('E_UNSUPPORTED', "mlx-lm adapters hold modules inside the transformer blocks ('model.layers.<i>.…') only", { tensor: m.name });
    top = Math.max(top, Number(hit[1]) + 1);
    keys.add(hit[2]);
    if (m.A.shape.length !== 2 || m.B.shape.length !== 2 || m.A.shape[0] !== m.B.shape[1]) throw new LowrankError('E_SHAPE', `factors of shapes [${m.A.shape.join(', ')}] and [${m.B.shape.join(', ')}] are not a 2-D pair B·A`, { tensor: m.name });
  }
  const rank = Math.max(...modules.map((m) => m.A.shape[0]));
  const numLayers = opts.numLayers ?? top;
  if (numLayers < top) throw new LowrankError('E_USAGE', `numLayers ${numLayers} leaves out block ${top - 1}`);
  const config: MlxAdapterConfig = { fine_tune_type: 'lora', num_layers: numLayers, lora_parameters: { rank, scale: 1, dropout: 0, keys: [...keys].sort() } };
  const sources: TensorSource[] = [];
  for (const m of [...modules].sort((x, y) => x.name.localeCompare(y.name, 'en', { numeric: true }))) {
    const [r, inF] = m.A.shape;
    const out = m.B.shape[0];
    const a = toFloat(m.A, 'f64').data;
    const b = toFloat(m.B, 'f64').data;
    const loraA = new Float64Array(inF * rank); // Aᵀ, zero columns past r
    const loraB = new Float64Array(rank * out); // Bᵀ, zero rows past r
    for (let k = 0; k < r; k++) {
      for (let j = 0; j < inF; j++) loraA[j * rank + k] = a[k * inF + j];
      for (let i = 0; i < out; i++) loraB[k * out + i] = b[i * r + k];
    }
    const dtype = m.A.dtype === 'bf16' || m.A.dtype === 'f16' ? m.A.dtype : 'f32';
    const ta = encodeFloat(tensor('f64', [inF, rank], loraA), dtype);
    const tb = encodeFloat(tensor('f64', [rank, out], loraB), dtype);
    sources.push({ name: `${m.name}.lora_a`, dtype, shape: ta.shape, data: ta.data }, { name: `${m.name}.lora_b`, dtype, shape: tb.shape, data: tb.data });
  }
  await writeDirAtomic(dir, async (tmp) => {
    await writeTextFile(join(tmp, MLX_ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
    await writeSafetensors(join(tmp, MLX_ADAPTER_WEIGHTS), sources, { metadata: { format: 'mlx' } });
  }, opts);
  return config;
}
