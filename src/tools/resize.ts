/**
 * Re-ranking an existing LoRA adapter, with the semantics of kohya-ss sd-scripts'
 * `networks/resize_lora.py`: per module, the SVD of the update ΔW = scaling·B·A is truncated to a
 * fixed rank, or to the rank a dynamic rule picks from the singular values (`sv_ratio`, `sv_fro`,
 * `sv_cumulative`, capped at the fixed rank when both are given); an all-zero update keeps rank 1.
 *
 * The SVD comes from the factors, never from the out × in matrix: with B = Q_B·R_B and
 * Aᵀ = Q_A·R_A (thin QRs, Q with orthonormal columns), B·A = Q_B·(R_B·R_Aᵀ)·Q_Aᵀ, so the SVD of
 * the small r × r core R_B·R_Aᵀ = U_s·Σ·V_sᵀ gives B·A = (Q_B·U_s)·Σ·(Q_A·V_s)ᵀ exactly, in
 * O((out + in)·r²) work.
 *
 * Differences from kohya, all documented on the options: without `rank` a dynamic rule is capped
 * only by the old rank (kohya's new_rank defaults to 4), a rank above the old one keeps the old one
 * (kohya pads with zero directions), and the statistics of an all-zero update are 1, not NaN.
 *
 * The output is a PEFT adapter whose scaling is 1 in every module (kohya keeps its scale in
 * `alpha = scale·new_rank`; PEFT's scaling is per module lora_alpha/r, so the scale is folded into
 * the factors instead): A = diag(√σ)·Vᵀ, B = U·diag(√σ) as mergekit's extraction writes them,
 * r = lora_alpha = the largest new rank, and every module with another rank in both rank_pattern
 * and alpha_pattern.
 */
import { leading, lowRankSvd, sqrtSplit } from '../linalg/lowrank.js';
import { LowrankError } from '../core/errors.js';
import { encodeFloat, toFloat, type Tensor } from '../core/tensor.js';
import type { DType } from '../core/dtype.js';
import { perModuleRanks, openAdapter, writeAdapter, type Adapter, type LoraConfig, type LoraModule, type LoraModuleTensors } from '../io/peft.js';
import type { TensorSource } from '../io/safetensors/writer.js';
import { checkRankRule, dynamicRank, KOHYA_MIN_SV, rankStats, type RankRule } from './ranks.js';

/** Options of {@link resizeAdapter}. */
export interface ResizeOptions {
  /** The PEFT LoRA adapter folder to resize (not modified). */
  readonly adapter: string;
  /** The output adapter folder, written atomically. */
  readonly out: string;
  /**
   * The new rank (a module whose old rank is lower keeps it); with `dynamic`, the largest rank the
   * rule may pick. A rule without a rank is capped only by each module's old rank.
   */
  readonly rank?: number;
  /** A rule that picks each module's rank from its singular values. */
  readonly dynamic?: RankRule;
  /** Replace an existing output folder. Default false (an `E_EXISTS` error). */
  readonly overwrite?: boolean;
  /** Called before each module is resized. */
  readonly onModule?: (name: string, index: number, count: number) => void;
}

/** What happened to one module (kohya's verbose line, plus the error of the new update). */
export interface ResizedModule {
  readonly name: string;
  readonly oldRank: number;
  readonly newRank: number;
  /** Σ_{i≤k} σᵢ / Σ σ (1 for an all-zero update). */
  readonly sumRetained: number;
  /** √(Σ_{i≤k} σᵢ² / Σ σ²) (1 for an all-zero update). */
  readonly froRetained: number;
  /** σ_1 / σ_k (Infinity when σ_k is exactly 0, 1 for an all-zero update). */
  readonly maxRatio: number;
  /** ‖ΔW_new − ΔW_old‖_F = √(Σ_{i>k} σᵢ²). */
  readonly froError: number;
  /** ‖ΔW_old‖_F = √(Σ σᵢ²). */
  readonly froNorm: number;
  /** The singular values of the old update scaling·B·A, descending (min(r, out, in) of them). */
  readonly singularValues: Float64Array;
}

/** What {@link resizeAdapter} wrote. */
export interface ResizeResult {
  readonly out: string;
  /** The config written (r = lora_alpha = the largest new rank; scaling 1 in every module). */
  readonly config: LoraConfig;
  /** One entry per module, in natural order of the names (layers.2 before layers.10). */
  readonly modules: readonly ResizedModule[];
  /** LoRA parameters (lora_A + lora_B elements) before and after. */
  readonly parameters: { readonly before: number; readonly after: number };
}

/**
 * The SVD of scaling·B·A computed from the factors: u (out × q), s (q, descending), vt (q × in),
 * q = min(r, out, in), in float64 whatever the factors' dtype. Exact up to rounding, without
 * forming the out × in product.
 *
 * @example
 * const { u, s, vt } = await loraSvd(B, A, 2); // the update PEFT adds: 2·B·A
 */
export async function loraSvd(b: Tensor, a: Tensor, scaling = 1): Promise<{ u: Tensor<'f64'>; s: Tensor<'f64'>; vt: Tensor<'f64'> }> {
  return lowRankSvd({ left: asF64(b, 'B'), right: asF64(a, 'A'), scale: scaling });
}

/**
 * Resizes every LoRA module of a PEFT adapter folder and writes the result as a new adapter folder
 * (atomically; an existing one only with `overwrite`). Other tensors (modules_to_save, lora_B
 * biases, DoRA magnitudes) and config fields are kept; rank_pattern/alpha_pattern are rewritten and
 * use_rslora is false, since the scaling is folded into the factors.
 *
 * @example
 * const res = await resizeAdapter({ adapter: 'my-lora', out: 'my-lora-r8', rank: 8 });
 * const dyn = await resizeAdapter({ adapter: 'my-lora', out: 'my-lora-dyn', dynamic: { rule: 'sv_fro', value: 0.9 }, rank: 32 });
 * for (const m of dyn.modules) console.log(m.name, m.oldRank, '→', m.newRank, m.froRetained);
 */
export async function resizeAdapter(opts: ResizeOptions): Promise<ResizeResult> {
  checkOptions(opts);
  const adapter = await openAdapter(opts.adapter);
  try {
    return await resizeOpen(adapter, opts);
  } finally {
    await adapter.close();
  }
}

async function resizeOpen(adapter: Adapter, opts: ResizeOptions): Promise<ResizeResult> {
  const file = adapter.dir;
  if (adapter.config.peft_type !== 'LORA') {
    throw new LowrankError('E_UNSUPPORTED', `resize handles LoRA adapters; this one is peft_type '${adapter.config.peft_type}'`, { file });
  }
  if (adapter.modules.length === 0) throw new LowrankError('E_FORMAT', 'the adapter has no LoRA modules to resize', { file });
  for (const m of adapter.modules) {
    if (m.A.shape.length !== 2 || m.B.shape.length !== 2) {
      throw new LowrankError('E_UNSUPPORTED', `lora_A [${m.A.shape.join(', ')}]: convolution LoRA modules are not supported by resize`, { file, tensor: m.name });
    }
  }
  const reports: ResizedModule[] = [];
  const tensors: LoraModuleTensors[] = [];
  const extra: TensorSource[] = adapter.others.map((e) => lazy(adapter, e.name, e.dtype, e.shape));
  let before = 0;
  let after = 0;
  const order = [...adapter.modules].sort((x, y) => naturalCompare(x.name, y.name));
  for (const [i, m] of order.entries()) {
    opts.onModule?.(m.name, i, order.length);
    const { report, A, B } = await withModule(file, m.name, () => resizeModule(adapter, m, opts));
    reports.push(report);
    const magnitude = m.magnitude === undefined ? undefined : await adapter.read(m.magnitude.name);
    tensors.push({ name: m.name, kind: m.kind, A, B, magnitude });
    if (m.bias !== undefined) extra.push(lazy(adapter, m.bias.name, m.bias.dtype, m.bias.shape));
    before += m.A.shape[0] * m.A.shape[1] + m.B.shape[0] * m.B.shape[1];
    after += A.data.length + B.data.length;
  }
  const config = resizedConfig(adapter.config, reports);
  const written = await writeAdapter(opts.out, config, tensors, { extra, overwrite: opts.overwrite ?? false });
  return { out: opts.out, config: written, modules: reports, parameters: { before, after } };
}

function checkOptions(opts: ResizeOptions): void {
  const { rank, dynamic } = opts;
  if (rank === undefined && dynamic === undefined) throw new LowrankError('E_USAGE', 'resize needs a rank, a dynamic rule, or both (the rank then caps the rule)');
  if (rank !== undefined && (!Number.isInteger(rank) || rank < 1)) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${rank}`);
  if (dynamic !== undefined) checkRankRule(dynamic);
}

/** Adds the adapter folder and module name to an error thrown while resizing one module. */
async function withModule<T>(file: string, name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof LowrankError && e.context.tensor === undefined) throw new LowrankError(e.code, e.message, { file, tensor: name }, { cause: e });
    throw e;
  }
}

async function resizeModule(adapter: Adapter, m: LoraModule, opts: ResizeOptions): Promise<{ report: ResizedModule; A: Tensor; B: Tensor }> {
  const a = await adapter.readAs(m.A.name, 'f64');
  const b = await adapter.readAs(m.B.name, 'f64');
  // The SVD of scaling·B·A from the factors (a negative scaling flips U); kohya's rules read the
  // values of B·A itself, without the scaling.
  const t = await lowRankSvd({ left: b, right: a, scale: m.scaling });
  const scale = Math.abs(m.scaling);
  const sigma = t.s.data;
  const k = chooseRank(scale === 0 ? sigma : sigma.map((x) => x / scale), opts);
  // B = U·diag(√σ), A = diag(√σ)·Vᵀ: the product is the rank-k truncation.
  const split = sqrtSplit(leading(t, k));
  const [u, vt] = [split.left, split.right];
  const report = { name: m.name, oldRank: m.r, newRank: k, ...retained(sigma, k), singularValues: sigma };
  return { report, A: encodeFloat(vt, storeAs(m.A.dtype)), B: encodeFloat(u, storeAs(m.B.dtype)) };
}

/** The dtype new factors are stored in: the old factor's, when it is a float storage type. */
function storeAs(d: DType): 'f64' | 'f32' | 'f16' | 'bf16' {
  return d === 'f64' || d === 'f16' || d === 'bf16' ? d : 'f32';
}

/**
 * kohya's rank choice on the singular values of B·A (descending): the rule's rank, or the fixed
 * rank, capped at the fixed rank and at the number of singular values; 1 for a zero update.
 */
function chooseRank(s: Float64Array, opts: ResizeOptions): number {
  const n = s.length;
  if (n === 0 || s[0] <= KOHYA_MIN_SV) return 1;
  const k = opts.dynamic === undefined ? n : dynamicRank(s, opts.dynamic);
  return Math.max(1, Math.min(k, opts.rank ?? n, n));
}

/** kohya's retained fractions and ratio for keeping the first k of the singular values σ (rankStats). */
function retained(sigma: Float64Array, k: number): Pick<ResizedModule, 'sumRetained' | 'froRetained' | 'maxRatio' | 'froError' | 'froNorm'> {
  const st = rankStats(sigma, k);
  return { sumRetained: st.sumRetained, froRetained: st.froRetained, maxRatio: st.maxRatio, froError: st.tailNorm, froNorm: st.norm };
}

/** The output config: the input's fields with each module's new rank at scaling 1 (io/peft.ts perModuleRanks). */
function resizedConfig(old: LoraConfig, modules: readonly ResizedModule[]): Partial<LoraConfig> {
  return perModuleRanks(modules.map((m) => ({ name: m.name, rank: m.newRank })), old);
}

/** Orders module names with their numbers compared as numbers: layers.2 before layers.10. */
function naturalCompare(x: string, y: string): number {
  return x.localeCompare(y, 'en', { numeric: true });
}

function lazy(adapter: Adapter, name: string, dtype: DType, shape: readonly number[]): TensorSource {
  return { name, dtype, shape, data: async () => (await adapter.read(name)).data };
}

function asF64(t: Tensor, what: string): Tensor<'f64'> {
  if (t.shape.length !== 2) throw new LowrankError('E_SHAPE', `${what} must be a matrix`, { shape: t.shape });
  return t.dtype === 'f64' ? (t as Tensor<'f64'>) : toFloat(t, 'f64');
}

