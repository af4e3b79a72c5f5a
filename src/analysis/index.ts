/**
 * Spectral analysis of checkpoints, after WeightWatcher's definitions: per-matrix metrics from the
 * singular values (stable and effective rank, energy ranks, numerical rank, the power-law exponent
 * α of the eigenvalue spectrum, what a low-rank factorization would save), comparisons of a
 * fine-tuned matrix with its base (update spectrum, principal angles, intruder dimensions), and
 * whole-model analysis streamed one tensor at a time.
 */
export { fitPowerLaw, alphaWarning, EVALS_THRESH, MIN_EVALS, OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH, type PowerLawFit } from './powerlaw.js';
export {
  spectrumMetrics, analyzeMatrix, matrixShape, asMatrix, ENERGY_THRESHOLDS, FAST_K, SAVED_TOLERANCE,
  type SpectrumMetrics, type SpectrumOptions, type MatrixOptions, type EnergyRanks, type SavedAtRank,
} from './spectrum.js';
export { compareMatrices, compareAdapter, lowRankSingularValues, COMPARE_DEFAULTS, type CompareOptions, type Comparison, type Intruders, type AdapterFactors } from './compare.js';
export {
  analyzeModel, summarize, layerIndex, moduleName,
  type AnalyzeModelOptions, type ModelAnalysis, type LayerRecord, type SkippedTensor, type Unmatched, type ModelSummary, type ComparisonSummary,
} from './model.js';
export { renderReport, type ReportOptions } from './report.js';
