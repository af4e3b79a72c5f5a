/**
 * lowrank: the low-rank structure of neural networks, in TypeScript.
 *
 * The API is grouped in namespaces: `core` (tensors, dtypes, errors, seeded RNG), `io` (model
 * files), `linalg` (dense linear algebra on the fastest available backend), `tensor` (Tucker,
 * CP, tensor-train decompositions and entanglement spectra), `tools` (LoRA extraction, resizing,
 * merging, compression and adapter initialization over model and adapter folders), `methods` (the
 * weight-derived adapter initializers: PiSSA, MiLoRA, OLoRA, SVFit, ...), `analysis` (spectral
 * metrics of checkpoints), `infer` (text generation with a KV cache, adapters applied unmerged) and
 * `train` (adapters trained on a causal LM; the main job on the built-in model).
 */
export * as io from './io/index.js';
export * as core from './core/index.js';
export * as linalg from './linalg/index.js';
export * as tensor from './tensor/index.js';
export * as tools from './tools/index.js';
export * as analysis from './analysis/index.js';
export * as methods from './methods/index.js';
export * as infer from './infer/index.js';
export * as train from './train/index.js';
export { LowrankError, FormatError, isLowrankError, type ErrorCode } from './core/errors.js';
export type { Tensor, TensorSpec } from './core/tensor.js';
export type { DType, FloatDType, Storage } from './core/dtype.js';
// Regexes from users and files on RE2 (not in the browser entry, which imports no npm package).
export { compilePattern, patternOf, type Pattern } from './core/pattern.js';
