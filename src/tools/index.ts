/**
 * Checkpoint tools over model and adapter folders, one tensor at a time: LoRA extraction from a
 * fine-tuned model and its base, re-ranking an adapter, and kohya's dynamic rank rules they share.
 * Node only (they read and write folders).
 */
export { extractLora, type ExtractOptions, type ExtractReport, type ExtractedModule, type ChangedTensor, type ExtractFormat, type FactorDType } from './extract.js';
export { resizeAdapter, loraSvd, type ResizeOptions, type ResizeResult, type ResizedModule } from './resize.js';
export { dynamicRank, parseRankRule, rankStats, RANK_RULES, KOHYA_MIN_SV, type RankRule, type RankRuleName, type RankStats } from './ranks.js';
