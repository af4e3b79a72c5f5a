/**
 * Checkpoint tools over model and adapter folders, one tensor at a time: LoRA extraction from a
 * fine-tuned model and its base, re-ranking an adapter, merging adapters into a model or combining
 * them, SVD compression with rank policies, and kohya's dynamic rank rules they share.
 * They read and write folders on the file system io uses (io/fs.ts): the disk in Node, a page's files in a browser.
 */
export { extractLora, type ExtractOptions, type ExtractReport, type ExtractedModule, type ChangedTensor, type ExtractFormat, type FactorDType } from './extract.js';
export { resizeAdapter, loraSvd, type ResizeOptions, type ResizeResult, type ResizedModule } from './resize.js';
export { dynamicRank, parseRankRule, rankStats, RANK_RULES, KOHYA_MIN_SV, type RankRule, type RankRuleName, type RankStats } from './ranks.js';
export { mergeAdapters, combineAdapters, COMBINE_METHODS, type MergeOptions, type MergeResult, type CombineOptions, type CombineResult, type CombineMethod, type WeightedAdapter } from './merge.js';
export { compressModel, openCompressed, MANIFEST_FILE, MANIFEST_VERSION, type CompressOptions, type CompressReport, type CompressedLayer, type CompressManifest, type CompressedModel } from './compress.js';
export { parsePolicy, chooseRanks, formatPolicy, type RankPolicy } from './policy.js';
export { mergeTasks, magnitudePrune, randomPrune, TASK_MERGES, type TaskMerge, type MajoritySign, type TaskMergeOptions } from './taskArithmetic.js';
export { initAdapter, type InitAdapterOptions, type InitAdapterResult } from './init.js';
export { convertToLora, type ConvertToLoraOptions } from './convertToLora.js';
export { adapterParams, type MethodParams } from './params.js';
export { selectLayers, parseLayerTargets, type LayerTargets } from './targets.js';
