/**
 * Reading and writing the files people have: safetensors, Hugging Face model folders, PEFT
 * adapter folders, and numpy's .npy/.npz.
 */
export * from './safetensors/index.js';
export { writeFileAtomic, writeDirAtomic, removeTempOutputsSync, type WriteOptions } from './atomic.js';
export { openModel, writeModel, parseSize, SINGLE_FILE, INDEX_FILE, type Model, type ModelTensor, type ModelWriteOptions, type ModelWriteResult } from './hf.js';
export {
  openAdapter, writeAdapter, loraConfig, loraScaling, loraKeys, isTargetModule, isAdapterFolder, ADAPTER_CONFIG, ADAPTER_WEIGHTS, KEY_PREFIX,
  type Adapter, type LoraConfig, type LoraModule, type LoraModuleTensors, type AdapterWriteOptions,
} from './peft.js';
export { describe, type Description, type TensorRow, type Totals, type AdapterSummary } from './describe.js';
export { llamaConfig, llamaTensors, gpt2Config, gpt2Tensors, randomWeights, type LlamaShape, type Gpt2Shape } from './synthetic.js';
export { parseNpy, encodeNpy, readNpy, writeNpy, readNpyHeader, parseNpyHeader, type NpyHeader } from './npy.js';
export { parseNpz, encodeNpz, readNpz, writeNpz, readNpzHeaders, DEFAULT_NPZ_MAX_BYTES, type NpzReadOptions, type NpzWriteOptions } from './npz.js';
export { convertModel, TORCH_DTYPES, type ModelDType, type ConvertOptions } from './convert.js';
export { rewriteModel, type RewriteOptions } from './rewrite.js';
export { writeMlxAdapter, MLX_ADAPTER_CONFIG, MLX_ADAPTER_WEIGHTS, type MlxModule, type MlxAdapterConfig } from './mlx.js';
export { writeMethodAdapter, readMethodAdapter, METHOD_ADAPTER_TYPE, type MethodAdapter } from './methodAdapter.js';
