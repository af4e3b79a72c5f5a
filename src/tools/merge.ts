/**
 * Merging LoRA adapters into a base model, and combining several adapters into one, with PEFT's
 * semantics (`merge_and_unload`, `add_weighted_adapter`).
 *
 * Merging: per LoRA module, W ← W + Σ_k w_k·s_k·B_k·A_k (s_k the module's PEFT scaling, alpha/r or
 * alpha/√r through rank_pattern/alpha_pattern; transposed for fan_in_fan_out and for embedding
 * LoRA, as PEFT's get_delta_weight does). This is the weighted sum of the adapters' updates, not
 * PEFT's `linear` combination, which mixes the A's and the B's separately and so adds cross terms
 * B_j·A_k. A single DoRA adapter (weight 1) merges as PEFT's DoRA layer does:
 * W' = (m / ‖W + s·B·A‖_row)·(W + s·B·A), the norm taken over each output row (PEFT's
 * `get_weight_norm`, `torch.linalg.norm(weight, dim=1)` on the [out, in] weight). modules_to_save
 * tensors replace the base's (converted to the base's dtype). The base is streamed one tensor at a time, arithmetic is float64,
 * and each merged tensor is rounded once into the base's dtype (nearest even for bf16/f16).
 *
 * Combining (into a new adapter folder, scaling 1 in every module):
 * - `cat`: A = [A_1; …; A_n] (rows stacked), B = [w_1·s_1·B_1 | … | w_n·s_n·B_n]: rank Σ r_k, and
 *   B·A equals the weighted sum exactly (PEFT's `cat`, with the weights and scalings folded into B).
 * - `svd`: the SVD U·Σ·Vᵀ of the weighted sum, computed from the stacked factors (QR of each,
 *   SVD of the small core; the out × in matrix is never formed), truncated to `rank`:
 *   B = U_k·diag(√σ), A = diag(√σ)·V_kᵀ, the Eckart–Young optimum at rank k. Without `rank`, the full
 *   rank min(Σ r_k, out, in).
 * - `linear`: the exact weighted sum re-factored by SVD at full rank min(Σ r_k, out, in) (the same
 *   as `svd` without `rank`). Deliberately not PEFT's `linear` (cross terms).
 * - `ties`, `dare_linear`, `dare_ties`, `magnitude_prune`: each adapter's dense update s_k·B_k·A_k is
 *   pruned and merged elementwise with weights w_k (./taskArithmetic.ts has the definitions, PEFT's
 *   merge_utils), and the merged out × in matrix is truncated by SVD to `rank` (default: the largest
 *   rank among the adapters, as PEFT's svd_rank). These are PEFT's `ties_svd`, `dare_linear_svd`,
 *   `dare_ties_svd` and `magnitude_prune_svd`: pruning and sign election act on the updates
 *   themselves. PEFT's plain `ties`/`dare_*`/`magnitude_prune` prune and elect signs over the entries
 *   of the A's and the B's separately, which has no meaning for the update B·A (and adds cross
 *   terms, as `linear`), so they are not offered. Two more differences from PEFT: its `*_svd` path
 *   multiplies get_delta_weight (which already includes the scaling) by weight·scaling, applying
 *   the scaling twice; here it is applied once. And DARE rescales the kept entries (see
 *   taskArithmetic.ts).
 */
import { LowrankError } from '../core/errors.js';
import type { DType } from '../core/dtype.js';
import { encodeFloat, tensor, toFloat, type Tensor } from '../core/tensor.js';
import { openModel, type Model } from '../io/hf.js';
import { rewriteModel } from '../io/rewrite.js';
import { openAdapter, perModuleRanks, writeAdapter, KEY_PREFIX, type Adapter, type LoraConfig, type LoraModule, type LoraModuleTensors } from '../io/peft.js';
import type { TensorSource } from '../io/safetensors/writer.js';
import { matmul } from '../linalg/matmul.js';
import { svd } from '../linalg/decompositions.js';
import { rng } from '../core/rng.js';
import { loraSvd } from './resize.js';
import { linearShapes, storedInOut } from '../io/layout.js';
import { leading, sqrtSplit, tailError, toDense } from '../linalg/lowrank.js';
import { applyDoraMagnitude } from '../methods/dora.js';
import { isMethodFolder, readMethodFolder, type MethodAdapterData } from '../methods/adapterFile.js';
import type { LayerShape } from '../methods/types.js';
import { checkDensity, mergeTasks, TASK_MERGES, type MajoritySign, type TaskMerge } from './taskArithmetic.js';

/** One adapter to merge or combine, and its weight. */
export interface WeightedAdapter {
  /** A PEFT LoRA adapter folder. */
  readonly dir: string;
  /** The factor w_k of its update. Default 1. */
  readonly weight?: number;
}

/** Options of {@link mergeAdapters}. */
export interface MergeOptions {
  /** The base model folder (or a single .safetensors file); not modified. */
  readonly base: string;
  /** The adapters whose weighted updates are added. */
  readonly adapters: readonly WeightedAdapter[];
  /** The output model folder, written atomically. */
  readonly out: string;
  /** Replace an existing output folder. Default false (an `E_EXISTS` error). */
  readonly overwrite?: boolean;
  /** Called before each base tensor is written. */
  readonly onTensor?: (name: string, index: number, count: number) => void;
}

/** What {@link mergeAdapters} wrote. */
export interface MergeResult {
  readonly out: string;
  readonly shards: readonly string[];
  /** Base tensors that received a LoRA update (names of the weights). */
  readonly merged: readonly string[];
  /** Base tensors replaced by an adapter's modules_to_save tensor. */
  readonly replaced: readonly string[];
  /** Tensors copied unchanged. */
  readonly unchanged: number;
  /** Other files of the base folder copied (config.json, tokenizer files, ...). */
  readonly copied: readonly string[];
}

/** How {@link combineAdapters} combines the updates. */
export type CombineMethod = 'linear' | 'cat' | 'svd' | TaskMerge;
/** The combination methods, for CLI validation. */
export const COMBINE_METHODS: readonly CombineMethod[] = ['linear', 'cat', 'svd', ...TASK_MERGES];
/** The combination methods that truncate to a rank. */
const RANKED: readonly CombineMethod[] = ['svd', ...TASK_MERGES];

/** Options of {@link combineAdapters}. */
export interface CombineOptions {
  readonly adapters: readonly WeightedAdapter[];
  readonly combine: CombineMethod;
  /**
   * The rank of `svd` (default: full rank) and of the elementwise merges (default: the largest
   * rank among the adapters); not accepted by `cat` and `linear`.
   */
  readonly rank?: number;
  /** The fraction of each update's entries kept by ties, dare_* and magnitude_prune, in (0, 1]. */
  readonly density?: number;
  /** TIES's sign election for ties and dare_ties. Default `total`. */
  readonly majoritySign?: MajoritySign;
  /** The seed of DARE's random drops. Default 0. */
  readonly seed?: number;
  /** The output adapter folder, written atomically. */
  readonly out: string;
  readonly overwrite?: boolean;
  /** Called before each module is combined. */
  readonly onModule?: (name: string, index: number, count: number) => void;
}

/** What {@link combineAdapters} wrote. */
export interface CombineResult {
  readonly out: string;
  readonly config: LoraConfig;
  /** Per module: the new rank, and for svd the relative Frobenius error of the truncation. */
  readonly modules: readonly { readonly name: string; readonly rank: number; readonly relError: number }[];
}

/**
 * Merges LoRA adapters into a base model and writes the merged model folder: the same shard files
 * and index, the same dtypes, config.json and other non-weight files copied.
 *
 * @example
 * await mergeAdapters({ base: 'llama', adapters: [{ dir: 'my-lora' }], out: 'llama-merged' });
 * await mergeAdapters({ base: 'llama', adapters: [{ dir: 'a', weight: 0.7 }, { dir: 'b', weight: 0.3 }], out: 'mix' });
 */
export async function mergeAdapters(opts: MergeOptions): Promise<MergeResult> {
  checkAdapters(opts.adapters);
  const adapters: (Adapter | MethodAdapterData<'f64'>)[] = [];
  let base: Model | undefined;
  try {
    base = await openModel(opts.base);
    for (const a of opts.adapters) adapters.push((await isMethodFolder(a.dir)) ? await readMethodFolder(a.dir, 'f64', { shapes: linearShapes(base) }) : await openLora(a.dir));
    return await mergeOpen(base, adapters, opts);
  } finally {
    await base?.close();
    await Promise.all(adapters.map((a) => ('close' in a ? a.close() : undefined)));
  }
}

/** One adapter's update of one base weight: a PEFT LoRA module, or a method's ΔW. */
interface LoraUpdate {
  adapter: Adapter;
  module: LoraModule;
  weight: number;
}
type Update = LoraUpdate | MethodUpdate;
interface MethodUpdate {
  method: MethodAdapterData<'f64'>;
  layer: LayerShape;
  weight: number;
}

async function mergeOpen(base: Model, adapters: (Adapter | MethodAdapterData<'f64'>)[], opts: MergeOptions): Promise<MergeResult> {
  const weights = opts.adapters.map((a) => a.weight ?? 1);
  const updates = new Map<string, Update[]>();
  const replacements = new Map<string, { adapter: Adapter; key: string }>();
  const add = (target: string, u: Update): void => {
    const list = updates.get(target) ?? [];
    list.push(u);
    updates.set(target, list);
  };
  adapters.forEach((adapter, k) => {
    if (!('dir' in adapter)) {
      for (const l of adapter.layers) {
        const target = `${l.name}.weight`;
        if (!base.has(target)) throw new LowrankError('E_NOT_FOUND', `the base model has no tensor ${target} for this ${adapter.method.name} module`, { file: opts.adapters[k].dir, tensor: l.name });
        add(target, { method: adapter, layer: l, weight: weights[k] });
      }
      return;
    }
    for (const m of adapter.modules) {
      const ctx = { file: adapter.dir, tensor: m.name };
      if (m.bias !== undefined) throw new LowrankError('E_UNSUPPORTED', 'lora_bias (a bias on lora_B) is not supported by merge', ctx);
      if (m.magnitude !== undefined && (adapters.length > 1 || weights[k] !== 1)) {
        throw new LowrankError('E_UNSUPPORTED', 'a DoRA adapter can only be merged alone with weight 1', ctx);
      }
      const target = `${m.name}.weight`;
      if (!base.has(target)) throw new LowrankError('E_NOT_FOUND', `the base model has no tensor ${target} for this LoRA module`, ctx);
      add(target, { adapter, module: m, weight: weights[k] });
    }
    for (const e of adapter.others) {
      const name = savedName(e.name);
      const ctx = { file: adapter.dir, tensor: e.name };
      if (!base.has(name)) throw new LowrankError('E_NOT_FOUND', `modules_to_save tensor has no base tensor ${name} to replace`, ctx);
      const shape = base.entry(name).shape;
      if (shape.join() !== e.shape.join()) throw new LowrankError('E_SHAPE', `modules_to_save tensor [${e.shape.join(', ')}] does not match the base's [${shape.join(', ')}] (resized vocabularies are not supported)`, ctx);
      if (replacements.has(name)) throw new LowrankError('E_UNSUPPORTED', `two adapters save ${name} in modules_to_save`, ctx);
      if (updates.has(name)) throw new LowrankError('E_UNSUPPORTED', `${name} is both a LoRA target and in modules_to_save`, ctx);
      replacements.set(name, { adapter, key: e.name });
    }
  });
  for (const name of replacements.keys()) {
    if (updates.has(name)) throw new LowrankError('E_UNSUPPORTED', `${name} is both a LoRA target and in modules_to_save`);
  }

  const count = base.tensors.length;
  const { copied } = await rewriteModel(base, opts.out, async (t) => {
    const ups = updates.get(t.name);
    if (ups !== undefined) return mergeTensor(base, t.name, t.dtype, ups);
    const rep = replacements.get(t.name);
    if (rep !== undefined) return replacement(rep.adapter, rep.key, t.dtype, base.path);
    return undefined;
  }, { overwrite: opts.overwrite ?? false, onTensor: opts.onTensor });
  return { out: opts.out, shards: base.shards, merged: [...updates.keys()], replaced: [...replacements.keys()], unchanged: count - updates.size - replacements.size, copied };
}

/** A modules_to_save tensor in the base tensor's dtype (as stored when equal, else rounded once to nearest even). */
async function replacement(adapter: Adapter, key: string, dtype: DType, file: string): Promise<Tensor> {
  const t = await adapter.read(key);
  if (t.dtype === dtype) return t;
  return encodeFloat(toFloat(t, 'f64'), storage(dtype, file, key));
}

/** The base tensor name of a modules_to_save key (`base_model.model.lm_head.weight` → `lm_head.weight`). */
function savedName(key: string): string {
  const name = key.startsWith(KEY_PREFIX) ? key.slice(KEY_PREFIX.length) : key;
  return name.replace('.modules_to_save.', '.').replace('.original_module.', '.');
}

/** W + Σ w·s·ΔW (or DoRA's rescaled merge), in float64, rounded once into the base dtype. */
async function mergeTensor(base: Model, name: string, dtype: DType, ups: readonly Update[]): Promise<Tensor> {
  const w = await base.readAs(name, 'f64');
  if (w.shape.length !== 2) throw new LowrankError('E_UNSUPPORTED', `base weight [${w.shape.join(', ')}]: only matrix weights can be merged`, { file: base.path, tensor: name });
  const [rows, cols] = w.shape;
  for (const u of ups) {
    if ('method' in u) {
      await addMethodDelta(w, u, storedInOut(base, name));
      continue;
    }
    const m = u.module;
    const ctx = { file: u.adapter.dir, tensor: m.name };
    if (m.A.shape.length !== 2 || m.B.shape.length !== 2) throw new LowrankError('E_UNSUPPORTED', 'convolution LoRA modules are not supported by merge', ctx);
    const a = await u.adapter.readAs(m.A.name, 'f64');
    const b = await u.adapter.readAs(m.B.name, 'f64');
    const delta = await matmul(b, a); // [out, in]
    const [out, inF] = delta.shape;
    // PEFT's get_delta_weight transposes for fan_in_fan_out (Conv1D stored [in, out]) and for embeddings.
    const transposed = m.kind === 'embedding' || u.adapter.config.fan_in_fan_out;
    const [eo, ei] = transposed ? [inF, out] : [out, inF];
    if (eo !== rows || ei !== cols) {
      throw new LowrankError('E_SHAPE', `the update B·A${transposed ? 'ᵀ' : ''} is [${eo}, ${ei}] but the base weight is [${rows}, ${cols}]`, ctx);
    }
    const f = u.weight * m.scaling;
    const d = delta.data;
    const wd = w.data;
    if (transposed) {
      for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) wd[j * cols + i] += f * d[i * inF + j];
    } else {
      for (let i = 0; i < wd.length; i++) wd[i] += f * d[i];
    }
    if (m.magnitude !== undefined) applyDoraMagnitude(w, toFloat(await u.adapter.read(m.magnitude.name), 'f64').data, transposed);
  }
  return encodeFloat(w, storage(dtype, base.path, name));
}

/** W += weight·ΔW of a method adapter's module ([out, in], transposed into a base stored [in, out]). */
async function addMethodDelta(w: Tensor<'f64'>, u: MethodUpdate, inOut: boolean): Promise<void> {
  const a = u.method;
  const { name, shape } = u.layer;
  const tensors = a.modules.get(name);
  if (tensors === undefined || a.method.delta === undefined) throw new LowrankError('E_INTERNAL', `no ΔW for ${name}`);
  const d = await toDense(await a.method.delta(tensors, a.shared, a.opts, shape));
  const [out, inF] = shape;
  const cols = w.shape[1];
  if (w.data.length !== out * inF) throw new LowrankError('E_SHAPE', `the ${a.method.name} update is [${out}, ${inF}] but the base weight is [${w.shape.join(', ')}]`, { tensor: name });
  for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) w.data[inOut ? j * cols + i : i * cols + j] += u.weight * d.data[i * inF + j];
}

function storage(dtype: DType, file: string, name: string): 'f64' | 'f32' | 'f16' | 'bf16' {
  if (dtype === 'f64' || dtype === 'f32' || dtype === 'f16' || dtype === 'bf16') return dtype;
  throw new LowrankError('E_UNSUPPORTED', `base weight stored as ${dtype}: only f64/f32/f16/bf16 weights can be merged`, { file, tensor: name });
}

function checkAdapters(adapters: readonly WeightedAdapter[]): void {
  if (adapters.length === 0) throw new LowrankError('E_USAGE', 'give at least one adapter');
  for (const a of adapters) {
    if (a.weight !== undefined && !Number.isFinite(a.weight)) throw new LowrankError('E_USAGE', `adapter weight must be a finite number, got ${a.weight}`, { file: a.dir });
  }
}

async function openLora(dir: string): Promise<Adapter> {
  const adapter = await openAdapter(dir);
  if (adapter.config.peft_type !== 'LORA') {
    await adapter.close();
    throw new LowrankError('E_UNSUPPORTED', `only LoRA adapters are supported; this one is peft_type '${adapter.config.peft_type}'`, { file: dir });
  }
  return adapter;
}

/**
 * Combines weighted LoRA adapters into one adapter folder whose update in every module is
 * Σ_k w_k·s_k·B_k·A_k (`cat`, `linear`) or its best rank-`rank` approximation (`svd`), or whose
 * update is the best rank-`rank` approximation of the TIES/DARE/magnitude-pruned merge of the
 * updates (see the module comment).
 *
 * @example
 * await combineAdapters({ adapters: [{ dir: 'a', weight: 0.5 }, { dir: 'b', weight: 0.5 }], combine: 'svd', rank: 16, out: 'ab' });
 * await combineAdapters({ adapters: [{ dir: 'a' }, { dir: 'b' }], combine: 'ties', density: 0.2, out: 'ab-ties' });
 */
export async function combineAdapters(opts: CombineOptions): Promise<CombineResult> {
  checkAdapters(opts.adapters);
  if (!COMBINE_METHODS.includes(opts.combine)) throw new LowrankError('E_USAGE', `combine must be one of ${COMBINE_METHODS.join(', ')}, got '${String(opts.combine)}'`);
  const elementwise = (TASK_MERGES as readonly string[]).includes(opts.combine);
  if (elementwise) {
    if (opts.density === undefined) throw new LowrankError('E_USAGE', `${opts.combine} needs a density (the fraction of entries kept)`);
    checkDensity(opts.density);
  } else if (opts.density !== undefined) throw new LowrankError('E_USAGE', `a density is only taken by ${TASK_MERGES.join(', ')}`);
  if (opts.majoritySign !== undefined && !['total', 'frequency'].includes(opts.majoritySign)) throw new LowrankError('E_USAGE', `majoritySign must be total or frequency, got '${String(opts.majoritySign)}'`);
  if (opts.rank !== undefined) {
    if (!RANKED.includes(opts.combine)) throw new LowrankError('E_USAGE', `a rank is not taken by the ${opts.combine} combination (it keeps the summed rank)`);
    if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${opts.rank}`);
  }
  const adapters: Adapter[] = [];
  try {
    for (const a of opts.adapters) adapters.push(await openLora(a.dir));
    return await combineOpen(adapters, opts);
  } finally {
    await Promise.all(adapters.map((a) => a.close()));
  }
}

async function combineOpen(adapters: Adapter[], opts: CombineOptions): Promise<CombineResult> {
  const weights = opts.adapters.map((a) => a.weight ?? 1);
  const fifo = adapters[0].config.fan_in_fan_out;
  const byName = new Map<string, LoraUpdate[]>();
  const extra: TensorSource[] = [];
  const saved = new Set<string>();
  adapters.forEach((adapter, k) => {
    if (adapter.config.fan_in_fan_out !== fifo) throw new LowrankError('E_UNSUPPORTED', 'the adapters disagree on fan_in_fan_out', { file: adapter.dir });
    for (const m of adapter.modules) {
      const ctx = { file: adapter.dir, tensor: m.name };
      if (m.magnitude !== undefined) throw new LowrankError('E_UNSUPPORTED', 'DoRA adapters cannot be combined', ctx);
      if (m.bias !== undefined) throw new LowrankError('E_UNSUPPORTED', 'lora_bias (a bias on lora_B) is not supported by combine', ctx);
      if (m.A.shape.length !== 2 || m.B.shape.length !== 2) throw new LowrankError('E_UNSUPPORTED', 'convolution LoRA modules are not supported by combine', ctx);
      const list = byName.get(m.name) ?? [];
      if (list.length > 0 && (list[0].module.kind !== m.kind || list[0].module.A.shape[1] !== m.A.shape[1] || list[0].module.B.shape[0] !== m.B.shape[0])) {
        throw new LowrankError('E_SHAPE', 'the adapters give this module different shapes or kinds', ctx);
      }
      list.push({ adapter, module: m, weight: weights[k] });
      byName.set(m.name, list);
    }
    for (const e of adapter.others) {
      if (saved.has(e.name)) throw new LowrankError('E_UNSUPPORTED', 'two adapters save this tensor (modules_to_save)', { file: adapter.dir, tensor: e.name });
      saved.add(e.name);
      extra.push({ name: e.name, dtype: e.dtype, shape: e.shape, data: async () => (await adapter.read(e.name)).data });
    }
  });
  if (byName.size === 0) throw new LowrankError('E_FORMAT', 'the adapters have no LoRA modules to combine');
  const names = [...byName.keys()].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
  const tensors: LoraModuleTensors[] = [];
  const modules: { name: string; rank: number; relError: number }[] = [];
  const random = rng(opts.seed ?? 0);
  for (const [i, name] of names.entries()) {
    opts.onModule?.(name, i, names.length);
    const ups = byName.get(name) as LoraUpdate[];
    const dtype = factorDType(ups);
    if ((TASK_MERGES as readonly string[]).includes(opts.combine)) {
      const deltas = await Promise.all(ups.map(async (u) => {
        const d = await matmul(await u.adapter.readAs(u.module.B.name, 'f64'), await u.adapter.readAs(u.module.A.name, 'f64'));
        for (let j = 0; j < d.data.length; j++) d.data[j] *= u.module.scaling;
        return d;
      }));
      const [out, inF] = deltas[0].shape;
      const merged = mergeTasks(opts.combine as TaskMerge, deltas.map((d) => d.data), ups.map((u) => u.weight), { density: opts.density as number, majoritySign: opts.majoritySign, rng: random });
      const f = await svd(tensor('f64', [out, inF], merged));
      const { A, B, rank, relError } = splitTop(f, opts.rank ?? Math.max(...ups.map((u) => u.module.A.shape[0])));
      tensors.push({ name, kind: ups[0].module.kind, A: encodeFloat(A, dtype), B: encodeFloat(B, dtype) });
      modules.push({ name, rank, relError });
      continue;
    }
    const { A, B } = await stacked(ups);
    if (opts.combine === 'cat') {
      tensors.push({ name, kind: ups[0].module.kind, A: encodeFloat(A, dtype), B: encodeFloat(B, dtype) });
      modules.push({ name, rank: A.shape[0], relError: 0 });
      continue;
    }
    const f = await loraSvd(B, A, 1);
    const { A: na, B: nb, rank, relError } = splitTop(f, opts.rank ?? f.s.data.length);
    tensors.push({ name, kind: ups[0].module.kind, A: encodeFloat(na, dtype), B: encodeFloat(nb, dtype) });
    modules.push({ name, rank, relError });
  }
  const config = combinedConfig(adapters, modules);
  const written = await writeAdapter(opts.out, config, tensors, { extra, overwrite: opts.overwrite ?? false });
  return { out: opts.out, config: written, modules };
}

/**
 * The top-k part of an SVD as LoRA factors, B = U_k·diag(√σ), A = diag(√σ)·V_kᵀ, and the relative
 * Frobenius error of the truncation √(Σ_{j≥k} σ_j² / Σ σ_j²).
 */
function splitTop(f: { u: Tensor<'f64'>; s: Tensor<'f64'>; vt: Tensor<'f64'> }, rank: number): { A: Tensor<'f64'>; B: Tensor<'f64'>; rank: number; relError: number } {
  const k = Math.min(rank, f.s.data.length);
  const split = sqrtSplit(leading(f, k));
  return { A: split.right, B: split.left, rank: k, relError: tailError(f.s.data, k) };
}

/** A = [A_1; …; A_n], B = [w_1·s_1·B_1 | … | w_n·s_n·B_n], in float64. */
async function stacked(ups: readonly LoraUpdate[]): Promise<{ A: Tensor<'f64'>; B: Tensor<'f64'> }> {
  const total = ups.reduce((t, u) => t + u.module.A.shape[0], 0);
  const inF = ups[0].module.A.shape[1];
  const out = ups[0].module.B.shape[0];
  const A = tensor('f64', [total, inF]);
  const B = tensor('f64', [out, total]);
  let off = 0;
  for (const u of ups) {
    const r = u.module.A.shape[0];
    const a = await u.adapter.readAs(u.module.A.name, 'f64');
    const b = await u.adapter.readAs(u.module.B.name, 'f64');
    A.data.set(a.data, off * inF);
    const f = u.weight * u.module.scaling;
    for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) B.data[i * total + off + j] = f * b.data[i * r + j];
    off += r;
  }
  return { A, B };
}

/** The factors' output dtype: f64 if any input factor is f64; bf16/f16 if all are; else f32. */
function factorDType(ups: readonly LoraUpdate[]): 'f64' | 'f32' | 'f16' | 'bf16' {
  const ds = ups.flatMap((u) => [u.module.A.dtype, u.module.B.dtype]);
  if (ds.includes('f64')) return 'f64';
  if (ds.every((d) => d === 'bf16')) return 'bf16';
  if (ds.every((d) => d === 'f16')) return 'f16';
  return 'f32';
}

/**
 * The first adapter's config with r = lora_alpha = the largest rank, every module of another rank
 * in rank_pattern and alpha_pattern (its full name), use_rslora false: every scaling is 1.
 */
function combinedConfig(adapters: readonly Adapter[], modules: readonly { name: string; rank: number }[]): Partial<LoraConfig> {
  const save = [...new Set(adapters.flatMap((a) => a.config.modules_to_save ?? []))];
  const { target_modules: _t, rank_pattern: _r, alpha_pattern: _a, ...rest } = adapters[0].config;
  void _t;
  void _r;
  void _a;
  return perModuleRanks(modules, { ...rest, use_dora: false, modules_to_save: save.length > 0 ? save : null });
}
