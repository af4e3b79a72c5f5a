/**
 * The spectral analysis of a whole checkpoint, one tensor at a time (each read as f32, analyzed and
 * dropped, so a model larger than memory can be analyzed): per-matrix metrics (spectrum.ts), and
 * optionally how the model differs from a base model or what a PEFT adapter does to it
 * (compare.ts). Tensors of two or more float dimensions are matrices (embeddings included); 1-D and
 * integer tensors are listed as skipped.
 */
import { LowrankError, isLowrankError } from '../core/errors.js';
import { isFloatDType, type DType } from '../core/dtype.js';
import { patternOf } from '../core/pattern.js';
import { openModel, type Model, type ModelTensor } from '../io/hf.js';
import { openAdapter, type Adapter, type LoraModule } from '../io/peft.js';
import { backend } from '../backend/index.js';
import { analyzeMatrix, matrixShape, FAST_K, type SpectrumMetrics } from './spectrum.js';
import { compareAdapter, compareMatrices, COMPARE_DEFAULTS, type CompareOptions, type Comparison } from './compare.js';
import { EVALS_THRESH, MIN_EVALS } from './powerlaw.js';

/** Options of {@link analyzeModel}. */
export interface AnalyzeModelOptions extends CompareOptions {
  /** A base model folder: the analyzed model is compared with it as the fine-tuned one (ΔW = model − base). */
  compare?: string;
  /** A PEFT LoRA adapter folder: each adapted matrix is compared with itself plus the adapter's update. */
  adapter?: string;
  /** Only tensors whose name matches (a RegExp, or its source: searched anywhere in the name). */
  targets?: RegExp | string;
  /** Called before each matrix is analyzed (for progress). */
  onTensor?: (name: string, index: number, total: number) => void;
  /** Keep every matrix's singular values in spectrum.values (what the HTML report plots). */
  keepSpectra?: boolean;
}

/** One analyzed matrix. */
export interface LayerRecord {
  /** The tensor's name. */
  readonly name: string;
  /** The last component of the module path, e.g. q_proj (from `...self_attn.q_proj.weight`). */
  readonly module: string;
  /** The block index from `layers.N.` (also `layer.N.`, `h.N.`, `blocks.N.`), or null. */
  readonly layer: number | null;
  readonly dtype: DType;
  /** The stored shape (spectrum.shape is the matrix it was analyzed as). */
  readonly shape: readonly number[];
  /** The metrics of this model's tensor. */
  readonly spectrum: SpectrumMetrics;
  /**
   * With `compare`: base = the other model's tensor, tuned = this one. With `adapter`: base = this
   * tensor, tuned = this tensor plus the adapter's update. Absent for tensors without a counterpart.
   */
  readonly comparison?: Comparison;
}

/** A tensor that was not analyzed, and why. */
export interface SkippedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly reason: string;
}

/** A tensor or adapter module with no counterpart to compare with (analyzed alone when it is in the model). */
export interface Unmatched {
  readonly name: string;
  readonly reason: string;
}

/** Totals and means over the analyzed matrices. */
export interface ModelSummary {
  /** Tensors in the model. */
  readonly tensors: number;
  /** Matrices analyzed. */
  readonly matrices: number;
  /** Tensors not analyzed: 1-D, not float, or not finite (tensors left out by `targets` are not counted). */
  readonly skipped: number;
  /** Parameters in the analyzed matrices. */
  readonly parameters: number;
  /** Matrices with a power-law fit. */
  readonly withAlpha: number;
  readonly overTrained: number;
  readonly underTrained: number;
  /** Means over the matrices with a value (alpha and alphaWeighted: those with a fit). */
  readonly meanAlpha: number | null;
  readonly meanAlphaWeighted: number | null;
  readonly meanLogNorm: number | null;
  readonly meanLogSpectralNorm: number | null;
  readonly meanStableRank: number | null;
  readonly meanEffectiveRank: number | null;
  /** Σ savedAt1pct.params: what factorizing every matrix at 1% relative error would save. */
  readonly parametersSavedAt1pct: number;
  /** Matrices whose savedAt1pct is beyond the computed values (fast mode), left out of that sum. */
  readonly savedUnknown: number;
  /** With `compare` or `adapter`. */
  readonly comparison?: ComparisonSummary;
}

/** Totals over the compared matrices. */
export interface ComparisonSummary {
  readonly compared: number;
  readonly unmatched: number;
  /** Compared matrices that differ from their base. */
  readonly changed: number;
  /** Mean numerical rank of ΔW over the changed matrices (those with a known rank). */
  readonly meanUpdateRank: number | null;
  /** Mean ‖ΔW‖_F / ‖W0‖_F over the changed matrices. */
  readonly meanRelativeUpdate: number | null;
  readonly intruders: number;
  readonly layersWithIntruders: number;
}

/** What {@link analyzeModel} returns (and `lowrank analyze --json` writes). */
export interface ModelAnalysis {
  readonly model: string;
  readonly compare: string | null;
  readonly adapter: string | null;
  readonly fast: boolean;
  /** The compute backend the values came from. */
  readonly backend: string;
  readonly settings: {
    readonly fastK: number;
    readonly minEvals: number;
    readonly evalsThresh: number;
    readonly angleK: number;
    readonly intruderK: number;
    readonly intruderThreshold: number;
  };
  readonly layers: readonly LayerRecord[];
  readonly skipped: readonly SkippedTensor[];
  readonly unmatched: readonly Unmatched[];
  readonly summary: ModelSummary;
}

const LAYER_RE = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\./;

/** The block index of a tensor name (`model.layers.3.mlp.up_proj.weight` → 3), or null. */
export function layerIndex(name: string): number | null {
  const m = LAYER_RE.exec(name);
  return m === null ? null : Number(m[1]);
}

/** The module a tensor belongs to: its name's last component before `.weight` (q_proj, embed_tokens, lm_head). */
export function moduleName(name: string): string {
  const parts = name.replace(/\.weight$/, '').split('.');
  return parts[parts.length - 1];
}

/** Name order with digit runs compared as numbers, so layers.2 comes before layers.10. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    // Split on a capture group: odd positions are digit runs.
    if (i % 2 === 1 && Number(pa[i]) !== Number(pb[i])) return Number(pa[i]) - Number(pb[i]);
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Per-tensor failures that leave the rest of the model worth analyzing. */
function isTensorProblem(e: unknown): e is LowrankError {
  return isLowrankError(e) && (e.code === 'E_NONFINITE' || e.code === 'E_SHAPE');
}

/**
 * Analyzes every matrix of a model folder (or .safetensors file), streaming one tensor at a time,
 * in name order with layer numbers compared as numbers.
 * With `compare`, the model is the fine-tuned one and `compare` its base: tensors are matched by
 * name, and tensors missing on either side or with a changed shape are listed in `unmatched` (not an
 * error). With `adapter`, each LoRA module's weight is compared with the weight plus the module's
 * update.
 *
 * @example
 * const a = await analyzeModel('tuned', { compare: 'base' });
 * a.layers.filter((l) => (l.comparison?.intruders.count ?? 0) > 0);
 */
export async function analyzeModel(dir: string, opts: AnalyzeModelOptions = {}): Promise<ModelAnalysis> {
  if (opts.compare !== undefined && opts.adapter !== undefined) throw new LowrankError('E_USAGE', 'compare with a base model or with an adapter, not both at once');
  const targets = opts.targets === undefined ? undefined : patternOf(opts.targets);
  const selected = (name: string): boolean => targets === undefined || targets.test(name);

  const opened: { close(): Promise<void> }[] = [];
  try {
    const model = await openModel(dir);
    opened.push(model);
    let base: Model | undefined;
    let adapter: Adapter | undefined;
    if (opts.compare !== undefined) {
      base = await openModel(opts.compare);
      opened.push(base);
    }
    if (opts.adapter !== undefined) {
      adapter = await openAdapter(opts.adapter);
      opened.push(adapter);
      if (adapter.modules.length === 0) {
        throw new LowrankError('E_UNSUPPORTED', `the adapter has no LoRA modules (peft_type ${adapter.config.peft_type}); only LoRA adapters can be analyzed`, { file: opts.adapter });
      }
    }

    const skipped: SkippedTensor[] = [];
    const unmatched: Unmatched[] = [];
    const work: ModelTensor[] = [];
    for (const t of model.tensors) {
      if (!selected(t.name)) continue;
      if (!isFloatDType(t.dtype)) skipped.push({ name: t.name, dtype: t.dtype, shape: t.shape, reason: `${t.dtype} is not a float type` });
      else if (matrixShape(t.shape) === null) skipped.push({ name: t.name, dtype: t.dtype, shape: t.shape, reason: t.shape.length < 2 ? `${t.shape.length}-D` : 'empty' });
      else work.push(t);
    }

    work.sort((a, b) => naturalCompare(a.name, b.name));

    const modules = new Map<string, LoraModule>();
    if (adapter !== undefined) {
      for (const m of adapter.modules) {
        const weight = `${m.name}.weight`;
        if (!model.has(weight)) unmatched.push({ name: m.name, reason: `adapter module has no weight ${weight} in the model` });
        else modules.set(weight, m);
      }
    }
    if (base !== undefined) {
      for (const t of base.tensors) {
        if (selected(t.name) && isFloatDType(t.dtype) && matrixShape(t.shape) !== null && !model.has(t.name)) unmatched.push({ name: t.name, reason: 'only in the base model' });
      }
    }

    const matrixOpts = { ...opts, keepValues: opts.keepSpectra === true };
    const layers: LayerRecord[] = [];
    for (const [i, t] of work.entries()) {
      opts.onTensor?.(t.name, i, work.length);
      const rec = { name: t.name, module: moduleName(t.name), layer: layerIndex(t.name), dtype: t.dtype, shape: t.shape };
      try {
        const w = await model.readAs(t.name, 'f32');
        let comparison: Comparison | undefined;
        if (base !== undefined) {
          if (!base.has(t.name)) unmatched.push({ name: t.name, reason: 'not in the base model' });
          else if (fmtShape(base.entry(t.name).shape) !== fmtShape(t.shape)) {
            unmatched.push({ name: t.name, reason: `shape ${fmtShape(t.shape)} here, ${fmtShape(base.entry(t.name).shape)} in the base model` });
          } else comparison = await compareMatrices(await base.readAs(t.name, 'f32'), w, matrixOpts);
        }
        const mod = modules.get(t.name);
        if (adapter !== undefined && mod !== undefined) {
          try {
            comparison = await compareAdapter(w, {
              A: await adapter.readAs(mod.A.name, 'f32'),
              B: await adapter.readAs(mod.B.name, 'f32'),
              scaling: mod.scaling,
              kind: mod.kind,
              fanInFanOut: adapter.config.fan_in_fan_out,
              magnitude: mod.magnitude === undefined ? undefined : await adapter.readAs(mod.magnitude.name, 'f32'),
            }, matrixOpts);
          } catch (e) {
            if (!isLowrankError(e) || (e.code !== 'E_SHAPE' && e.code !== 'E_UNSUPPORTED')) throw e;
            unmatched.push({ name: mod.name, reason: e.message });
          }
        }
        const spectrum = comparison === undefined ? await analyzeMatrix(w, matrixOpts) : base !== undefined ? comparison.tuned : comparison.base;
        layers.push(comparison === undefined ? { ...rec, spectrum } : { ...rec, spectrum, comparison });
      } catch (e) {
        if (!isTensorProblem(e)) throw e;
        skipped.push({ name: t.name, dtype: t.dtype, shape: t.shape, reason: e.message });
      }
    }

    return {
      model: dir,
      compare: opts.compare ?? null,
      adapter: opts.adapter ?? null,
      fast: opts.fast === true,
      backend: backend().name,
      settings: {
        fastK: opts.fastK ?? FAST_K,
        minEvals: opts.minEvals ?? MIN_EVALS,
        evalsThresh: opts.evalsThresh ?? EVALS_THRESH,
        angleK: opts.angleK ?? COMPARE_DEFAULTS.angleK,
        intruderK: opts.intruderK ?? COMPARE_DEFAULTS.intruderK,
        intruderThreshold: opts.intruderThreshold ?? COMPARE_DEFAULTS.intruderThreshold,
      },
      layers,
      skipped,
      unmatched,
      summary: summarize(model.tensors.length, layers, skipped.length, unmatched.length, base !== undefined || adapter !== undefined),
    };
  } finally {
    await Promise.all(opened.map((o) => o.close()));
  }
}

function mean(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
}

/** The summary of a list of layer records (exported for reports that filter layers). */
export function summarize(tensors: number, layers: readonly LayerRecord[], skipped: number, unmatched: number, compared: boolean): ModelSummary {
  const s = layers.map((l) => l.spectrum);
  const withAlpha = s.filter((x) => x.alpha !== null);
  const summary: ModelSummary = {
    tensors,
    matrices: layers.length,
    skipped,
    parameters: s.reduce((a, x) => a + x.shape[0] * x.shape[1], 0),
    withAlpha: withAlpha.length,
    overTrained: s.filter((x) => x.warning === 'over-trained').length,
    underTrained: s.filter((x) => x.warning === 'under-trained').length,
    meanAlpha: mean(withAlpha.map((x) => x.alpha)),
    meanAlphaWeighted: mean(withAlpha.map((x) => x.alphaWeighted)),
    meanLogNorm: mean(s.map((x) => x.logNorm)),
    meanLogSpectralNorm: mean(s.map((x) => x.logSpectralNorm)),
    meanStableRank: mean(s.map((x) => x.stableRank)),
    meanEffectiveRank: mean(s.map((x) => x.effectiveRank)),
    parametersSavedAt1pct: s.reduce((a, x) => a + (x.savedAt1pct?.params ?? 0), 0),
    savedUnknown: s.filter((x) => x.savedAt1pct === null).length,
  };
  if (!compared) return summary;
  const cs = layers.flatMap((l) => (l.comparison === undefined ? [] : [l.comparison]));
  const changed = cs.filter((c) => !c.identical);
  return {
    ...summary,
    comparison: {
      compared: cs.length,
      unmatched,
      changed: changed.length,
      meanUpdateRank: mean(changed.map((c) => c.update.numericalRank)),
      meanRelativeUpdate: mean(changed.map((c) => c.relativeUpdate)),
      intruders: cs.reduce((a, c) => a + c.intruders.count, 0),
      layersWithIntruders: cs.filter((c) => c.intruders.count > 0).length,
    },
  };
}
