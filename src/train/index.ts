/**
 * Training adapters on a causal LM (the loop, data packing, the built-in task) and lowrank's main
 * job: the built-in model fine-tuned on addition with LoRA and PiSSA side by side.
 */
export { attachAdapter, train, evaluate, saveTrainedAdapter, loadAdapterInto, trainableMethods, trainableCount, type TrainOptions, type TrainedAdapter } from './loop.js';
export { pack, shuffled, readJsonl, readPrompts, type Example, type Sequence } from './data.js';
export {
  runMainJob, builtinTask, additionTask, defaultLr, BUILTIN_MODEL, BUILTIN_FILES, BUILTIN_TRAINING, MAIN_JOB,
  type MainJobOptions, type MainJobResult, type MainJobRow, type Accuracy, type BuiltinTask,
} from './mainJob.js';
