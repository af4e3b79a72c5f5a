/**
 * LoRA extraction: the best rank-r approximation of what fine-tuning changed, per weight matrix,
 * saved as a LoRA adapter — as mergekit's `mergekit-extract-lora` and kohya-ss sd-scripts'
 * `extract_lora_from_models.py` do. For each target, ΔW = W_tuned − W_base (float32), an exact thin
 * SVD ΔW = U·diag(σ)·Vᵀ, and the factors A = diag(√σ_r)·Vᵀ_r, B = U_r·diag(√σ_r), so that
 * B·A is ΔW's truncated SVD (Eckart–Young: no rank-r matrix is closer in Frobenius norm).
 * Streams one tensor at a time from each model.
 */
import { residualSquares, sqrtSplit, transpose } from '../linalg/lowrank.js';
import { checkOutput } from '../io/atomic.js';
import { fs } from '../io/fs.js';
import { dirname, resolve } from '../io/paths.js';
import { LowrankError } from '../core/errors.js';
import { isFloatDType, type FloatDType } from '../core/dtype.js';
import { encodeFloat, numel, tensor, toFloat, type Tensor } from '../core/tensor.js';
import { openModel, type Model } from '../io/hf.js';
import { isTargetModule, patternKey, loraConfig, loraKeys, loraScaling, writeAdapter, KEY_PREFIX, type LoraConfig, type LoraModuleTensors } from '../io/peft.js';
import { writeMlxAdapter } from '../io/mlx.js';
import { writeSafetensors, type TensorSource } from '../io/safetensors/writer.js';
import type { WriteOptions } from '../io/atomic.js';
import { scratch, type Scratch } from '../core/scratch.js';
import { backend } from '../backend/index.js';
import { truncatedSvd, type TruncationMethod } from '../linalg/truncated.js';
import { dynamicRank, dynamicRankOfLeading, rankStats, type RankRule } from './ranks.js';
import { EMBEDDING_NAMES, HEAD_NAMES, isDefaultLinear, lastPart } from './targets.js';
import { patternOf, type Pattern } from '../core/pattern.js';
import { isConv1dModel } from '../io/layout.js';

/** The adapter layouts {@link extractLora} writes. */
export type ExtractFormat = 'peft' | 'kohya' | 'mlx';

/** The dtypes the factors can be stored in. */
export type FactorDType = 'f32' | 'bf16' | 'f16';

/** Options of {@link extractLora}. */
export interface ExtractOptions extends WriteOptions {
  /** The base model: a Hugging Face folder (sharded or not) or a .safetensors file. */
  base: string;
  /** The fine-tuned model, with the base's tensor names. */
  tuned: string;
  /** The output: an adapter folder (peft, mlx) or a .safetensors file (kohya). Written atomically. */
  out: string;
  /** The largest rank of any module (mergekit's --max-rank, kohya's --dim). */
  rank: number;
  /** A dynamic rank rule (kohya's sv_ratio / sv_fro / sv_cumulative), capped at `rank`. */
  dynamic?: RankRule;
  /**
   * Clamp A and B to ±(the Q-quantile of |[A, B]|), Q in (0, 1], as kohya does with 0.99. Off by
   * default: clamping trims outliers of the factors, so B·A is no longer the best rank-r
   * approximation (the report's `residual` then exceeds `optimum`).
   */
  clampQuantile?: number;
  /**
   * Which modules (tensor name without `.weight`) to extract: a regex searched in the module name
   * (anchor it with ^…$ for a full match). Matching 2-D weights are extracted, and 4-D conv kernels
   * too. Default: every 2-D `.weight` except embeddings and output heads (PEFT's "all-linear").
   */
  targets?: RegExp | string;
  /**
   * 'peft' (default): an adapter folder; 'kohya': one .safetensors with lora_up/lora_down/alpha;
   * 'mlx': an mlx-lm adapter folder (io/mlx.ts; linear layers under model.layers.<i> only).
   */
  format?: ExtractFormat;
  /**
   * Save every changed tensor that no LoRA carries (norms, biases, resized embeddings, changed
   * matrices outside the targets) in full, as PEFT's modules_to_save (peft format only). Tensors
   * of a module that carries a LoRA (a target's bias) cannot be saved this way and stay listed.
   */
  saveModules?: boolean;
  /**
   * How each ΔW is decomposed: 'auto' (default: a randomized SVD when the rank is small against
   * the matrix, within 1 % of the Eckart–Young optimum as estimated, else exact or Gram), or one
   * method for every matrix. 'exact' is LAPACK's full SVD, as mergekit and kohya do.
   */
  svd?: 'auto' | TruncationMethod;
  /** Storage dtype of the factors. Default: each tuned weight's dtype (f32 for other dtypes). */
  dtype?: FactorDType;
  /**
   * True when the models store linear weights [in, out] (GPT-2's Conv1D); the adapter then gets
   * `fan_in_fan_out: true`. Default: true for config.json model_type gpt2 / openai-gpt.
   */
  fanInFanOut?: boolean;
  /** `base_model_name_or_path` of the adapter config. Default: `base` as given. */
  baseModelName?: string;
  /** `task_type` of the adapter config. Default 'CAUSAL_LM' (as mergekit writes). */
  taskType?: string | null;
  /** Called before each tensor is compared or decomposed. */
  onTensor?: (name: string, index: number, count: number) => void;
}

/** One extracted module. */
export interface ExtractedModule {
  /** Module path (tensor name without `.weight`). */
  readonly name: string;
  /** linear; conv1d (stored [in, out], fan_in_fan_out); conv (a 4-D kernel, flattened); embedding. */
  readonly kind: 'linear' | 'conv1d' | 'conv' | 'embedding';
  /** The weight's stored shape. */
  readonly shape: readonly number[];
  /** The rank kept. */
  readonly rank: number;
  /** ‖ΔW‖_F. */
  readonly deltaNorm: number;
  /** ‖ΔW − B·A‖_F with the factors as stored (after clamping and rounding to their dtype). */
  readonly residual: number;
  /**
   * √(Σ_{i>r} σ_i²): the Eckart–Young optimum, the least error of any rank-r approximation; on
   * the randomized path (optimumExact false) a lower estimate of it.
   */
  readonly optimum: number;
  readonly optimumExact: boolean;
  /** Σ_{i≤r} σ_i² / Σ σ_i² (of the factors' spectrum, before rounding to their dtype). */
  readonly energyRetained: number;
  /** σ_1 … σ_r. */
  readonly sigma: readonly number[];
  /** How ΔW was decomposed. */
  readonly method: TruncationMethod;
  /** Why the method is not the one first chosen (a rule that needs the whole spectrum, a result above tolerance). */
  readonly note?: string;
}

/** A tensor that differs between the models and that no LoRA factor pair carries. */
export interface ChangedTensor {
  readonly name: string;
  /** Why it is not in a LoRA: not a matrix (norms, biases), a matrix outside the targets, or shapes that differ. */
  readonly reason: 'not a matrix' | 'not targeted' | 'shape mismatch';
  readonly baseShape: readonly number[];
  readonly tunedShape: readonly number[];
  /** max |tuned − base| (absent when the shapes differ or the dtype is not a float). */
  readonly maxAbsDiff?: number;
  /** True when saved in full as modules_to_save. */
  readonly saved: boolean;
  /** Why it could not be saved, when saveModules was asked. */
  readonly note?: string;
}

/** What {@link extractLora} did. */
export interface ExtractReport {
  readonly out: string;
  readonly format: ExtractFormat;
  /** The adapter config written (peft format). */
  readonly config?: LoraConfig;
  readonly modules: readonly ExtractedModule[];
  /** Target modules whose ΔW is exactly zero: skipped. */
  readonly unchanged: readonly string[];
  /** Changed tensors outside the LoRA. */
  readonly changed: readonly ChangedTensor[];
  /** Modules saved in full (PEFT modules_to_save). */
  readonly savedModules: readonly string[];
  readonly onlyInBase: readonly string[];
  readonly onlyInTuned: readonly string[];
  readonly totals: {
    readonly modules: number;
    /** Elements of all A and B factors. */
    readonly parameters: number;
    /** √Σ ‖ΔW‖_F² over the extracted modules. */
    readonly deltaNorm: number;
    /** √Σ ‖ΔW − B·A‖_F² over the extracted modules. */
    readonly residual: number;
    /** √Σ optimum² over the extracted modules. */
    readonly optimum: number;
    /** Share of Σ ‖ΔW‖_F² kept by the factors' spectra. */
    readonly energyRetained: number;
  };
}

function checkOptions(o: ExtractOptions): void {
  if (!Number.isInteger(o.rank) || o.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${String(o.rank)}`);
  const q = o.clampQuantile;
  if (q !== undefined && !(q > 0 && q <= 1)) throw new LowrankError('E_USAGE', `clampQuantile must be in (0, 1], got ${String(q)}`);
  const format = o.format ?? 'peft';
  if (format !== 'peft' && format !== 'kohya' && format !== 'mlx') throw new LowrankError('E_USAGE', `format must be 'peft', 'kohya' or 'mlx', got '${String(format)}'`);
  if (format !== 'peft' && o.saveModules === true) throw new LowrankError('E_USAGE', `saveModules needs the peft format (${format} adapters have no modules_to_save)`);
  if (o.dtype !== undefined && !['f32', 'bf16', 'f16'].includes(o.dtype)) throw new LowrankError('E_USAGE', `dtype must be f32, bf16 or f16, got '${String(o.dtype)}'`);
  if (o.dynamic !== undefined) dynamicRank([1], o.dynamic); // validates the rule
  if (o.svd !== undefined && !['auto', 'exact', 'randomized', 'gram'].includes(o.svd)) throw new LowrankError('E_USAGE', `svd must be auto, exact, randomized or gram, got '${String(o.svd)}'`);
}

/** Refuses an existing output (unless overwrite), an output that is an input, or a kohya file's missing folder, before any work. */
async function checkDestination(o: ExtractOptions): Promise<void> {
  const out = resolve(o.out);
  await checkOutput(o.out, o.overwrite, [o.base, o.tuned]);
  // An adapter folder's parents are created; a kohya file goes into a folder that must exist.
  if ((o.format ?? 'peft') === 'kohya' && !(await fs().stat(dirname(out)).then((st) => st.isDirectory(), () => false))) {
    throw new LowrankError('E_NOT_FOUND', 'the folder of the output file does not exist', { file: o.out });
  }
}

/** Reads a float tensor as f32 (into a scratch slot) or, when stored as f64, as f64. */
async function readFloat(m: Model, name: string, take: Scratch, slot: number): Promise<Tensor<FloatDType>> {
  const e = m.entry(name);
  return e.dtype === 'f64' ? m.readAs(name, 'f64') : m.readAs(name, 'f32', { into: take(slot, numel(e.shape)) });
}

/**
 * max |tuned − base| of a tensor both models hold with one shape: 0 when equal, Infinity when a
 * value is NaN on one side only or a non-float tensor differs in any byte.
 */
async function maxDiff(base: Model, tuned: Model, name: string, take: Scratch): Promise<number> {
  const [eb, et] = [base.entry(name), tuned.entry(name)];
  if (isFloatDType(eb.dtype) && isFloatDType(et.dtype)) {
    const [a, b] = [await readFloat(base, name, take, 0), await readFloat(tuned, name, take, 1)];
    let max = 0;
    for (let i = 0; i < a.data.length; i++) {
      const [x, y] = [a.data[i], b.data[i]];
      if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
      const d = Math.abs(y - x);
      if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
    }
    return max;
  }
  if (eb.dtype !== et.dtype) return Infinity;
  const [a, b] = [await base.read(name), await tuned.read(name)];
  const ua = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const ub = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return Infinity;
  return 0;
}

/** The Q-quantile of |values| over both arrays, interpolated linearly (numpy's and torch's default). */
function absQuantile(arrays: readonly Float32Array[], q: number): number {
  const n = arrays.reduce((s, a) => s + a.length, 0);
  const all = new Float32Array(n);
  let off = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) all[off + i] = Math.abs(a[i]);
    off += a.length;
  }
  all.sort();
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return all[lo] + (all[hi] - all[lo]) * (pos - lo);
}

interface Factors {
  readonly rank: number;
  readonly A: Float32Array; // r × n
  readonly B: Float32Array; // m × r
  readonly sigma: Float32Array; // σ_1 … σ_r
  /** ‖M‖²_F. */
  readonly normSq: number;
  readonly optimum: number;
  readonly optimumExact: boolean;
  readonly energyRetained: number;
  readonly method: TruncationMethod;
  readonly note?: string;
}

/** The truncated SVD of M (m × n) and the √σ-split factors of its best rank-r approximation. */
async function factorize(M: Tensor<'f32'>, o: ExtractOptions): Promise<Factors> {
  const rule = o.dynamic;
  const rank = Math.min(o.rank, ...M.shape);
  const cut = rule === undefined ? undefined : (s: Float64Array, total: number, complete: boolean) => (complete ? dynamicRank(s, rule, rank) : dynamicRankOfLeading(s, total, rule, rank));
  const t = await truncatedSvd(M, { rank, cut }, { method: o.svd ?? 'auto' });
  const r = t.rank;
  const split = sqrtSplit(t);
  const [A, B] = [split.right.data, split.left.data];
  if (o.clampQuantile !== undefined) {
    const hi = absQuantile([A, B], o.clampQuantile);
    for (const f of [A, B]) for (let i = 0; i < f.length; i++) f[i] = Math.min(hi, Math.max(-hi, f[i]));
  }
  // The exact path reports kohya's statistics of the whole spectrum, as before the other methods existed.
  const stats = t.optimumExact ? rankStats(t.spectrum, r) : undefined;
  const kept = t.s.data.reduce((acc, v) => acc + v * v, 0);
  return {
    rank: r,
    A,
    B,
    sigma: t.s.data,
    normSq: t.total,
    optimum: stats?.tailNorm ?? Math.sqrt(t.optimumSq),
    optimumExact: t.optimumExact,
    energyRetained: stats?.energyRetained ?? (t.total === 0 ? 1 : kept / t.total),
    method: t.method,
    ...(t.note !== undefined ? { note: t.note } : {}),
  };
}

/** Stores a factor in `dtype` and returns it with its stored values decoded back to f32. */
function store(values: Float32Array, shape: readonly number[], dtype: FactorDType): { stored: Tensor; decoded: Float32Array } {
  const t = tensor('f32', shape, values);
  if (dtype === 'f32') return { stored: t, decoded: values };
  const stored = encodeFloat(t, dtype);
  return { stored, decoded: toFloat(stored, 'f32').data as Float32Array };
}

/** One module's factors as they will be written. */
interface ModuleOut {
  readonly report: ExtractedModule;
  readonly A: Tensor;
  readonly B: Tensor;
}

/** How a target weight is laid out: linear [out, in], conv1d [in, out], embedding [vocab, dim], conv [out, in, kh, kw]. */
function kindOf(name: string, shape: readonly number[], fanInFanOut: boolean): ExtractedModule['kind'] {
  if (shape.length === 4) return 'conv';
  const last = lastPart(name);
  if (EMBEDDING_NAMES.has(last)) return 'embedding';
  if (fanInFanOut && !HEAD_NAMES.has(last)) return 'conv1d';
  return 'linear';
}

async function extractModule(base: Model, tuned: Model, tensorName: string, module: string, kind: ExtractedModule['kind'], o: ExtractOptions, take: Scratch): Promise<ModuleOut | 'zero'> {
  const shape = tuned.entry(tensorName).shape;
  const ctx = { file: o.tuned, tensor: tensorName };
  const delta = await tuned.readAs(tensorName, 'f32', { into: take(0, numel(shape)) });
  const b = await base.readAs(tensorName, 'f32', { into: take(1, numel(shape)) });
  let zero = true;
  for (let i = 0; i < delta.data.length; i++) {
    const d = delta.data[i] - b.data[i];
    if (!Number.isFinite(d)) throw new LowrankError('E_NONFINITE', `the weight difference has a non-finite value at element ${i} (base ${b.data[i]}, tuned ${delta.data[i]})`, ctx);
    delta.data[i] = d;
    if (d !== 0) zero = false;
  }
  if (zero) return 'zero';
  // The matrix whose factors B (m × r) · A (r × n) PEFT multiplies: ΔW as [out, in].
  const transposed = kind === 'conv1d' || (kind === 'embedding' && (o.format ?? 'peft') === 'peft');
  const [m, n] = kind === 'conv' ? [shape[0], shape[1] * shape[2] * shape[3]] : transposed ? [shape[1], shape[0]] : [shape[0], shape[1]];
  const M = tensor('f32', [m, n], transposed ? transpose(tensor('f32', [shape[0], shape[1]], delta.data)).data : delta.data);

  const f = await factorize(M, o);
  const r = f.rank;
  const storedDtype = tuned.entry(tensorName).dtype;
  const dtype: FactorDType = o.dtype ?? (storedDtype === 'bf16' || storedDtype === 'f16' ? storedDtype : 'f32');
  const aShape = kind === 'conv' ? [r, shape[1], shape[2], shape[3]] : [r, n];
  const bShape = kind === 'conv' ? [m, r, 1, 1] : [m, r];
  const A = store(f.A, aShape, dtype);
  const B = store(f.B, bShape, dtype);
  const residual = Math.sqrt(await residualSquares(M, { left: tensor('f32', [m, r], B.decoded), right: tensor('f32', [r, n], A.decoded), scale: 1 }));
  return {
    report: {
      name: module,
      kind,
      shape: [...shape],
      rank: r,
      deltaNorm: Math.sqrt(f.normSq),
      residual,
      optimum: f.optimum,
      optimumExact: f.optimumExact,
      energyRetained: f.energyRetained,
      sigma: Array.from(f.sigma),
      method: f.method,
      ...(f.note !== undefined ? { note: f.note } : {}),
    },
    A: A.stored,
    B: B.stored,
  };
}

/**
 * target_modules for the extracted modules: their last name components when that selects exactly
 * them among the model's modules, else the full list of names (PEFT matches a listed name exactly).
 */
function targetModules(lora: readonly string[], allModules: ReadonlySet<string>, saved: readonly string[]): string[] {
  const suffixes = [...new Set(lora.map(lastPart))].sort();
  const cfg = loraConfig({ target_modules: suffixes, modules_to_save: saved.length > 0 ? saved : null });
  const want = new Set(lora);
  for (const m of allModules) if (isTargetModule(cfg, m) !== want.has(m)) return [...lora].sort();
  return suffixes;
}

/**
 * Extracts a LoRA adapter from a fine-tuned model and its base: per target weight, the truncated
 * SVD of ΔW = tuned − base, split √σ-wise between A and B (mergekit's distribute_scale), at rank
 * `rank` or less (a dynamic rule, or fewer singular values). Modules with ΔW = 0 are skipped.
 *
 * The peft format writes an adapter folder that PEFT loads as is: keys
 * `base_model.model.<module>.lora_A.weight` [r, in] / `.lora_B.weight` [out, r] (conv kernels:
 * [r, in, kh, kw] / [out, r, 1, 1]; embeddings: `lora_embedding_A` [r, vocab] /
 * `lora_embedding_B` [dim, r]), r = lora_alpha = the largest rank (scaling 1), lower ranks in both
 * rank_pattern and alpha_pattern, `fan_in_fan_out` for GPT-2's Conv1D. The kohya format writes one
 * .safetensors with `lora_unet_<module, . → _>.lora_down.weight` / `.lora_up.weight` / `.alpha`
 * (alpha = rank, scale 1). Changed tensors no LoRA carries are listed in the report and, with
 * `saveModules`, saved in full as modules_to_save (`base_model.model.<tensor name>`).
 *
 * @example
 * const report = await extractLora({ base: 'Llama-3.2-1B', tuned: 'my-finetune', rank: 16, out: 'my-lora' });
 * for (const m of report.modules) console.log(m.name, m.rank, m.residual / m.deltaNorm);
 */
export async function extractLora(opts: ExtractOptions): Promise<ExtractReport> {
  checkOptions(opts);
  const format = opts.format ?? 'peft';
  const targets = opts.targets === undefined ? undefined : patternOf(opts.targets);
  await checkDestination(opts);
  const base = await openModel(opts.base);
  try {
    const tuned = await openModel(opts.tuned);
    // Freed buffers stay in the process for the next weight's (similar sizes): a fresh one costs a
    // page fault per 4 KiB.
    const release = opts.svd === 'exact' ? undefined : backend().retainFreedMemory();
    try {
      return await run(base, tuned, format, targets, opts);
    } finally {
      release?.();
      await tuned.close();
    }
  } finally {
    await base.close();
  }
}

async function run(base: Model, tuned: Model, format: ExtractFormat, targets: Pattern | undefined, opts: ExtractOptions): Promise<ExtractReport> {
  const fanInFanOut = opts.fanInFanOut ?? isConv1dModel(base.config ?? tuned.config);
  const names = [...tuned.tensors.map((t) => t.name), ...base.tensors.filter((t) => !tuned.has(t.name)).map((t) => t.name)];
  const onlyInBase = base.tensors.filter((t) => !tuned.has(t.name)).map((t) => t.name);
  const onlyInTuned = tuned.tensors.filter((t) => !base.has(t.name)).map((t) => t.name);
  const isTarget = (name: string, shape: readonly number[]): boolean => {
    if (!name.endsWith('.weight')) return false;
    const module = name.slice(0, -'.weight'.length);
    if (targets !== undefined) return (shape.length === 2 || shape.length === 4) && targets.test(module);
    return shape.length === 2 && isDefaultLinear(module);
  };

  const outs: ModuleOut[] = [];
  const unchanged: string[] = [];
  const changed: { entry: Omit<ChangedTensor, 'saved' | 'note'> }[] = [];
  let targetsSeen = 0;
  const take = scratch();
  for (const [index, name] of names.entries()) {
    opts.onTensor?.(name, index, names.length);
    if (!base.has(name) || !tuned.has(name)) continue;
    const [sb, st] = [base.entry(name).shape, tuned.entry(name).shape];
    if (sb.join() !== st.join()) {
      changed.push({ entry: { name, reason: 'shape mismatch', baseShape: [...sb], tunedShape: [...st] } });
      continue;
    }
    if (isTarget(name, st) && isFloatDType(tuned.entry(name).dtype) && isFloatDType(base.entry(name).dtype)) {
      targetsSeen++;
      const module = name.slice(0, -'.weight'.length);
      const res = await extractModule(base, tuned, name, module, kindOf(module, st, fanInFanOut), { ...opts, format }, take);
      if (res === 'zero') unchanged.push(module);
      else outs.push(res);
      continue;
    }
    const diff = await maxDiff(base, tuned, name, take);
    if (diff === 0) continue;
    const matrix = (st.length === 2 || st.length === 4) && name.endsWith('.weight');
    changed.push({ entry: { name, reason: matrix ? 'not targeted' : 'not a matrix', baseShape: [...sb], tunedShape: [...st], ...(Number.isFinite(diff) ? { maxAbsDiff: diff } : {}) } });
  }
  if (targetsSeen === 0) {
    throw new LowrankError('E_USAGE', targets === undefined ? 'no 2-D weight is in both models with the same shape: nothing to extract' : `no weight matrix of both models matches targets /${targets.source}/`, { file: opts.tuned });
  }
  if (outs.length === 0) {
    throw new LowrankError('E_USAGE', `every target weight is identical in both models (${unchanged.length} compared): nothing to extract`, { file: opts.tuned });
  }

  // Modules saved in full: the changed tensors' modules, unless a LoRA lives on or under them.
  const loraNames = outs.map((o) => o.report.name);
  const loraSet = new Set(loraNames);
  const savedModules = new Set<string>();
  const savedTensors: TensorSource[] = [];
  const changedOut: ChangedTensor[] = changed.map(({ entry }) => {
    if (opts.saveModules !== true) return { ...entry, saved: false };
    const dot = entry.name.lastIndexOf('.');
    const module = dot > 0 ? entry.name.slice(0, dot) : '';
    let note: string | undefined;
    if (module === '') note = 'a top-level tensor belongs to no module';
    else if (loraSet.has(module)) note = 'its module carries a LoRA (PEFT cannot also save it in full)';
    else if (loraNames.some((l) => l.startsWith(module + '.'))) note = 'its module contains a LoRA module';
    if (note !== undefined) return { ...entry, saved: false, note };
    savedModules.add(module);
    const spec = tuned.entry(entry.name);
    savedTensors.push({ name: KEY_PREFIX + entry.name, dtype: spec.dtype, shape: spec.shape, data: async () => (await tuned.read(entry.name)).data });
    return { ...entry, saved: true };
  });
  const saved = [...savedModules].sort();

  const maxRank = Math.max(...outs.map((o) => o.report.rank));
  const reports = outs.map((o) => o.report);
  const totals = summarize(reports, outs);
  let config: LoraConfig | undefined;
  if (format === 'peft') {
    const allModules = new Set<string>();
    for (const n of names) if (n.includes('.')) allModules.add(n.slice(0, n.lastIndexOf('.')));
    const rankPattern: Record<string, number> = {};
    for (const o of outs) if (o.report.rank !== maxRank) rankPattern[patternKey(o.report.name)] = o.report.rank;
    const fields: Partial<LoraConfig> = {
      r: maxRank,
      lora_alpha: maxRank,
      rank_pattern: rankPattern,
      alpha_pattern: { ...rankPattern },
      target_modules: targetModules(loraNames, allModules, saved),
      modules_to_save: saved.length > 0 ? saved : null,
      fan_in_fan_out: outs.some((o) => o.report.kind === 'conv1d'),
      use_rslora: false,
      base_model_name_or_path: opts.baseModelName ?? opts.base,
      task_type: opts.taskType === undefined ? 'CAUSAL_LM' : opts.taskType,
    };
    const full = loraConfig(fields);
    const modules: LoraModuleTensors[] = [];
    const extra: TensorSource[] = [];
    for (const o of outs) {
      const { r } = loraScaling(full, o.report.name);
      if (r !== o.report.rank || !isTargetModule(full, o.report.name)) throw new LowrankError('E_INTERNAL', 'the adapter config does not select this module at its rank', { tensor: o.report.name });
      if (o.report.kind === 'conv') {
        const keys = loraKeys(o.report.name);
        extra.push({ name: keys.A, dtype: o.A.dtype, shape: o.A.shape, data: o.A.data }, { name: keys.B, dtype: o.B.dtype, shape: o.B.shape, data: o.B.data });
      } else {
        modules.push({ name: o.report.name, kind: o.report.kind === 'embedding' ? 'embedding' : 'linear', A: o.A, B: o.B });
      }
    }
    config = await writeAdapter(opts.out, fields, modules, { extra: [...extra, ...savedTensors], overwrite: opts.overwrite });
  } else if (format === 'mlx') {
    for (const o of outs) if (o.report.kind !== 'linear') throw new LowrankError('E_UNSUPPORTED', `mlx-lm adapters hold linear layers stored [out, in]; this module is ${o.report.kind === 'conv1d' ? "a GPT-2 Conv1D (stored [in, out])" : `a ${o.report.kind} layer`}`, { tensor: o.report.name });
    const layers = (base.config ?? tuned.config)?.num_hidden_layers;
    await writeMlxAdapter(opts.out, outs.map((o) => ({ name: o.report.name, A: o.A, B: o.B })), { overwrite: opts.overwrite, numLayers: typeof layers === 'number' ? layers : undefined });
  } else {
    const sources: TensorSource[] = [];
    for (const o of outs) {
      const key = `lora_unet_${o.report.name.replace(/\./g, '_')}`;
      const alpha = encodeFloat(tensor('f32', [], Float32Array.of(o.report.rank)), o.A.dtype as FactorDType);
      sources.push(
        { name: `${key}.lora_down.weight`, dtype: o.A.dtype, shape: o.A.shape, data: o.A.data },
        { name: `${key}.lora_up.weight`, dtype: o.B.dtype, shape: o.B.shape, data: o.B.data },
        { name: `${key}.alpha`, dtype: alpha.dtype, shape: [], data: alpha.data },
      );
    }
    const dynamic = opts.dynamic !== undefined;
    const metadata = { ss_network_module: 'networks.lora', ss_network_dim: dynamic ? 'Dynamic' : String(maxRank), ss_network_alpha: dynamic ? 'Dynamic' : String(maxRank), format: 'pt' };
    await writeSafetensors(opts.out, sources, { metadata, overwrite: opts.overwrite });
  }
  return { out: opts.out, format, config, modules: reports, unchanged, changed: changedOut, savedModules: saved, onlyInBase, onlyInTuned, totals };
}

function summarize(reports: readonly ExtractedModule[], outs: readonly ModuleOut[]): ExtractReport['totals'] {
  let d = 0;
  let res = 0;
  let opt = 0;
  let kept = 0;
  for (const m of reports) {
    d += m.deltaNorm ** 2;
    res += m.residual ** 2;
    opt += m.optimum ** 2;
    kept += m.energyRetained * m.deltaNorm ** 2;
  }
  return {
    modules: reports.length,
    parameters: outs.reduce((s, o) => s + o.A.data.length + o.B.data.length, 0),
    deltaNorm: Math.sqrt(d),
    residual: Math.sqrt(res),
    optimum: Math.sqrt(opt),
    energyRetained: d === 0 ? 1 : kept / d,
  };
}
