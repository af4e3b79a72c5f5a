/**
 * Reading and writing the files people have: safetensors, Hugging Face model folders, PEFT
 * adapter folders, and numpy's .npy/.npz.
 */
export * from './safetensors/index.js';
export { writeFileAtomic, writeDirAtomic, removeTempOutputsSync, type WriteOptions } from './atomic.js';
