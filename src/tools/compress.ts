/**
 * SVD compression of a model's weight matrices with per-layer rank policies ({@link RankPolicy}).
 *
 * Per targeted weight W (m × n, read one at a time and decomposed in float32, or in float64 for
 * f64 weights), the thin SVD W = U·diag(σ)·Vᵀ is truncated to the policy's rank k and written as two factors:
 * `<module>.lowrank_U` [m, k] = U_k·diag(√σ_k) and `<module>.lowrank_V` [k, n] = diag(√σ_k)·V_kᵀ
 * (W ≈ lowrank_U · lowrank_V), stored in W's dtype (f32 for a non-float weight), in place of
 * `<module>.weight`. With `materialize`, the dense rank-k matrix U_k·diag(σ_k)·V_kᵀ is written
 * instead, under the same name and dtype: a normal model folder. A layer is left unchanged when its
 * factors would not save parameters (k·(m + n) ≥ m·n). Every other tensor, and config.json, is
 * copied unchanged.
 *
 * The output folder (written atomically, a single model.safetensors) holds `lowrank_manifest.json`:
 *
 * ```json
 * { "format": "lowrank-svd", "version": 1, "policy": "energy:0.95", "materialized": false,
 *   "modules": { "model.layers.0.mlp.up_proj": { "weight": "model.layers.0.mlp.up_proj.weight",
 *     "shape": [m, n], "dtype": "f32", "rank": k, "relative_error": 0.01,
 *     "U": "model.layers.0.mlp.up_proj.lowrank_U", "V": "model.layers.0.mlp.up_proj.lowrank_V" } },
 *   "skipped": { "model.layers.0.mlp.down_proj": { "weight": "…", "shape": [m, n], "rank": k } } }
 * ```
 *
 * (`U`/`V` are absent when materialized). {@link openCompressed} reads such a folder back.
 * The relative error is ‖W − U·V‖_F/‖W‖_F = √(Σ_{i>k} σᵢ²)/‖W‖_F (0 for an all-zero W).
 *
 * Policies that need spectra (energy, budget, heavy-tail) take two passes: the singular values of
 * every target first (svdvals), then the factors while writing.
 */
import { LowrankError } from '../core/errors.js';
import { encodeFloat, numel, tensor, type Tensor } from '../core/tensor.js';
import { residualSquares, sqrtSplit } from '../linalg/lowrank.js';
import { decodeAs, encodeAs } from '../linalg/cast.js';
import { backend } from '../backend/index.js';
import type { DType } from '../core/dtype.js';
import { svd, svdvals } from '../linalg/decompositions.js';
import { truncatedSvd, type Keep, type Truncation, type TruncationMethod } from '../linalg/truncated.js';
import { fs } from '../io/fs.js';
import { writeAll } from '../io/atomic.js';
import { viewStorage, type Storage } from '../core/dtype.js';
import { scratch, type Scratch } from '../core/scratch.js';
import { matmul } from '../linalg/matmul.js';
import { openModel, SINGLE_FILE, type Model } from '../io/hf.js';
import { checkOutput, writeDirAtomic, writeTextFile, type WriteOptions } from '../io/atomic.js';
import { readJsonObject } from '../io/files.js';
import { writeSafetensors, type TensorSource } from '../io/safetensors/writer.js';
import { checkPolicy, chooseRanks, formatPolicy, needsSpectra, usefulRank, type LayerSpectrum, type RankPolicy } from './policy.js';
import { isDefaultLinear } from './targets.js';
import { patternOf, type Pattern } from '../core/pattern.js';
import { join } from '../io/paths.js';

/** The manifest's file name inside a compressed model folder. */
export const MANIFEST_FILE = 'lowrank_manifest.json';
/** The manifest format version written. */
export const MANIFEST_VERSION = 1;

/** Options of {@link compressModel}. */
export interface CompressOptions extends WriteOptions {
  /** The model folder (or .safetensors file) to compress; not modified. */
  readonly model: string;
  /** The rank policy. */
  readonly policy: RankPolicy;
  /**
   * A regex searched in module names (the weight name without `.weight`); matching 2-D float
   * `.weight` tensors are targets. Default: every 2-D `.weight` except embeddings and output heads.
   */
  readonly targets?: RegExp | string;
  /** The output folder, written atomically. */
  readonly out: string;
  /** Write the dense rank-k weights in the original names and dtypes instead of factors. */
  readonly materialize?: boolean;
  /**
   * How each weight is decomposed. 'auto' (default): a randomized SVD where the rank is small
   * against the matrix (within 1 % of the Eckart–Young optimum as estimated), the Gram matrix's
   * eigendecomposition where it is large, an incremental randomized QB for energy policies (which
   * meets the energy as measured on the stored factors); 'exact': LAPACK's full SVD of every
   * weight, the factors and manifest as before these methods existed.
   */
  readonly svd?: 'auto' | 'exact';
  /** Called before each SVD: `step` of `steps` (two steps per target for spectral policies). */
  readonly onTensor?: (name: string, step: number, steps: number) => void;
}

/** What happened to one targeted weight. */
export interface CompressedLayer {
  /** The module name (weight name without `.weight`). */
  readonly module: string;
  readonly weight: string;
  readonly shape: readonly [number, number];
  readonly dtype: DType;
  /** The rank the policy chose. */
  readonly rank: number;
  /** False when the factors would not save parameters: the weight is copied unchanged. */
  readonly factored: boolean;
  /** Parameters before (m·n) and after (k·(m + n), or m·n when not factored). */
  readonly paramsBefore: number;
  readonly paramsAfter: number;
  /**
   * ‖W − W_k‖_F/‖W‖_F (0 when not factored): from the spectrum with `svd: 'exact'`, else measured
   * on the factors as stored.
   */
  readonly relativeError: number;
  /** √(Σ_{i>k} σᵢ²)/‖W‖_F, the least error at rank k; a lower estimate when not `optimumExact`. */
  readonly optimumError: number;
  readonly optimumExact: boolean;
  /** How W was decomposed (absent when not factored). */
  readonly method?: TruncationMethod;
  /** Why the method is not the one first chosen. */
  readonly note?: string;
}

/** What {@link compressModel} wrote. */
export interface CompressReport {
  readonly out: string;
  readonly policy: string;
  readonly materialized: boolean;
  readonly layers: readonly CompressedLayer[];
  /** Parameters of the targeted weights, and of every tensor of the model, before and after. */
  readonly parameters: {
    readonly targeted: { readonly before: number; readonly after: number };
    readonly total: { readonly before: number; readonly after: number };
  };
}

/** One module of a manifest. */
export interface ManifestModule {
  readonly weight: string;
  readonly shape: [number, number];
  readonly dtype: string;
  readonly rank: number;
  readonly relative_error: number;
  /** How the layer was decomposed (absent in manifests written before these methods existed). */
  readonly method?: TruncationMethod;
  readonly U?: string;
  readonly V?: string;
}

/** The contents of `lowrank_manifest.json`. */
export interface CompressManifest {
  readonly format: 'lowrank-svd';
  readonly version: number;
  readonly policy: string;
  readonly materialized: boolean;
  readonly modules: Readonly<Record<string, ManifestModule>>;
  readonly skipped: Readonly<Record<string, { weight: string; shape: [number, number]; rank: number }>>;
}

const FLOAT_DTYPES = new Set<DType>(['f64', 'f32', 'f16', 'bf16']);

/**
 * Compresses every targeted weight matrix of a model by truncated SVD, with ranks from a policy,
 * and writes the result as a new folder (factors plus manifest, or dense with `materialize`).
 *
 * @example
 * const rep = await compressModel({ model: 'llama', policy: parsePolicy('energy:0.95'), out: 'llama-lr' });
 * console.log(rep.parameters.total, rep.layers.map((l) => [l.module, l.rank, l.relativeError]));
 */
export async function compressModel(opts: CompressOptions): Promise<CompressReport> {
  checkPolicy(opts.policy);
  if (opts.svd !== undefined && opts.svd !== 'auto' && opts.svd !== 'exact') throw new LowrankError('E_USAGE', `svd must be 'auto' or 'exact', got '${String(opts.svd)}'`);
  await checkOutput(opts.out, opts.overwrite);
  const targets = opts.targets === undefined ? undefined : patternOf(opts.targets);
  const model = await openModel(opts.model);
  // Freed buffers stay in the process for the next weight's (similar sizes): a fresh one costs a
  // page fault per 4 KiB, which took half the fast path's time.
  const release = opts.svd === 'exact' ? undefined : backend().retainFreedMemory();
  try {
    return await run(model, targets, opts);
  } finally {
    release?.();
    await model.close();
  }
}

function isTarget(name: string, shape: readonly number[], dtype: DType, targets: Pattern | undefined): boolean {
  if (!name.endsWith('.weight') || shape.length !== 2 || !FLOAT_DTYPES.has(dtype)) return false;
  const module = name.slice(0, -'.weight'.length);
  return targets !== undefined ? targets.test(module) : isDefaultLinear(module);
}

async function run(model: Model, targets: Pattern | undefined, opts: CompressOptions): Promise<CompressReport> {
  const policy = opts.policy;
  const materialize = opts.materialize ?? false;
  const exact = opts.svd === 'exact';
  const chosen = model.tensors.filter((t) => isTarget(t.name, t.shape, t.dtype, targets));
  if (chosen.length === 0) {
    throw new LowrankError('E_USAGE', targets === undefined ? 'the model has no 2-D weight matrix to compress' : `no 2-D weight matrix matches targets /${targets.source}/`, { file: model.path });
  }
  // Spectra first for the global policies (and, exactly, for energy); an energy share on the fast
  // path is met layer by layer in a first pass that keeps its factors in scratch files.
  const perLayerEnergy = !exact && policy.kind === 'energy' ? policy.energy : undefined;
  const spectral = needsSpectra(policy) && perLayerEnergy === undefined;
  const steps = chosen.length * (spectral ? 2 : 1);
  let step = 0;
  const spectra: LayerSpectrum[] = [];
  for (const t of chosen) {
    const [m, n] = t.shape;
    let sigma: Float64Array = new Float64Array(0);
    if (spectral) {
      opts.onTensor?.(t.name, step++, steps);
      sigma = Float64Array.from((await withTensor(model.path, t.name, async () => svdvals(await model.readAs(t.name, workDtype(t.dtype))))).data);
    }
    spectra.push({ m, n, sigma });
  }
  const ranks = perLayerEnergy !== undefined ? chosen.map(() => 0) : chooseRanks(policy, spectra);
  const layers = new Map<string, CompressedLayer>();
  const plan: Planned[] = chosen.map((t, i) => {
    const [m, n] = t.shape;
    const k = ranks[i];
    return { entry: t, m, n, k, factored: k <= usefulRank(m, n) };
  });

  // The factors of one weight, computed (or read back from scratch) when the writer first asks for either tensor.
  const pending = new Map<string, Promise<{ u: Tensor; v: Tensor }>>();
  const take = scratch(); // one weight is decomposed at a time: the writer asks for them in order
  const spilled = new Map<string, { u: string; v: string }>();
  const compute = (p: Planned): Promise<{ u: Tensor; v: Tensor }> => {
    const kept = spilled.get(p.entry.name);
    if (kept !== undefined) return unspill(p, kept, materialize);
    opts.onTensor?.(p.entry.name, step++, steps);
    return withTensor(model.path, p.entry.name, () => (exact ? factorize(model, p, materialize, layers) : factorizeFast(model, p, { rank: p.k }, materialize, layers, take)));
  };
  const factors = (p: Planned): Promise<{ u: Tensor; v: Tensor }> => {
    let hit = pending.get(p.entry.name);
    if (hit === undefined) {
      hit = compute(p);
      pending.set(p.entry.name, hit);
    }
    return hit;
  };

  await writeDirAtomic(
    opts.out,
    async (dir) => {
      if (perLayerEnergy !== undefined) {
        for (const [i, p] of plan.entries()) {
          opts.onTensor?.(p.entry.name, step++, steps);
          const f = await withTensor(model.path, p.entry.name, () => factorizeFast(model, p, { energy: perLayerEnergy }, materialize, layers, take));
          p.k = layers.get(p.entry.name)?.rank ?? p.k;
          p.factored = p.k <= usefulRank(p.m, p.n);
          if (!p.factored) continue;
          const files = { u: join(dir, `.scratch-${i}-u`), v: join(dir, `.scratch-${i}-v`) };
          await spill(files.u, f.u.data);
          await spill(files.v, f.v.data);
          spilled.set(p.entry.name, files);
        }
      }
      if (model.config !== undefined) await writeTextFile(join(dir, 'config.json'), JSON.stringify(model.config, null, 2) + '\n');
      await writeSafetensors(join(dir, SINGLE_FILE), sources(model, plan, materialize, factors, pending), { metadata: { format: 'pt', ...model.metadata } });
      for (const p of plan) if (!p.factored) layers.set(p.entry.name, layerReport(p, 0, 0, true));
      const ordered = plan.map((p) => layers.get(p.entry.name) as CompressedLayer);
      await writeTextFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest(policy, materialize, ordered), null, 2) + '\n');
    },
    { overwrite: opts.overwrite ?? false },
  );

  const ordered = plan.map((p) => layers.get(p.entry.name) as CompressedLayer);
  const tb = ordered.reduce((s, l) => s + l.paramsBefore, 0);
  const ta = ordered.reduce((s, l) => s + l.paramsAfter, 0);
  const all = model.tensors.reduce((s, t) => s + numel(t.shape), 0);
  return {
    out: opts.out,
    policy: formatPolicy(policy),
    materialized: materialize,
    layers: ordered,
    parameters: { targeted: { before: tb, after: ta }, total: { before: all, after: materialize ? all : all - tb + ta } },
  };
}

/** What the writer writes: every tensor, with each factored weight replaced by its factors (or its dense W_k). */
function sources(model: Model, plan: readonly Planned[], materialize: boolean, factors: (p: Planned) => Promise<{ u: Tensor; v: Tensor }>, pending: Map<string, unknown>): TensorSource[] {
  const out: TensorSource[] = [];
  const byWeight = new Map(plan.map((p) => [p.entry.name, p]));
  for (const t of model.tensors) {
    const p = byWeight.get(t.name);
    const module = t.name.slice(0, -'.weight'.length);
    if (p === undefined || !p.factored) {
      out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: async () => (await model.read(t.name)).data });
    } else if (materialize) {
      out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: async () => {
        const { u } = await factors(p);
        pending.delete(p.entry.name);
        return u.data;
      } });
    } else {
      const dtype = storeAs(t.dtype);
      out.push(
        { name: `${module}.lowrank_U`, dtype, shape: [p.m, p.k], data: async () => (await factors(p)).u.data },
        { name: `${module}.lowrank_V`, dtype, shape: [p.k, p.n], data: async () => {
          const { v } = await factors(p);
          pending.delete(p.entry.name);
          return v.data;
        } },
      );
    }
  }
  return out;
}

/** Writes a factor's bytes to a scratch file inside the output folder being written. */
async function spill(path: string, data: Storage): Promise<void> {
  const fh = await fs().open(path, 'wx');
  try {
    await writeAll(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0);
  } finally {
    await fh.close();
  }
}

/** A weight's factors (or dense W_k, as `u`) back from their scratch files, which are removed. */
async function unspill(p: Planned, files: { u: string; v: string }, materialize: boolean): Promise<{ u: Tensor; v: Tensor }> {
  const dtype = storeAs(p.entry.dtype);
  const read = async (path: string, shape: number[]): Promise<Tensor> => {
    const bytes = (await fs().readFile(path)).slice(); // a fresh, aligned buffer
    await fs().rm(path);
    return tensor(dtype, shape, viewStorage(dtype, bytes.buffer, 0, numel(shape)));
  };
  const u = await read(files.u, materialize ? [p.m, p.n] : [p.m, p.k]);
  const v = await read(files.v, materialize ? [0] : [p.k, p.n]);
  return { u, v };
}

interface Planned {
  readonly entry: { name: string; dtype: DType };
  readonly m: number;
  readonly n: number;
  /** The rank: from the policy, or (an energy share on the fast path) from the first pass. */
  k: number;
  factored: boolean;
}

function layerReport(p: Planned, relativeError: number, optimumError: number, optimumExact: boolean, method?: TruncationMethod, note?: string): CompressedLayer {
  const before = p.m * p.n;
  return {
    module: p.entry.name.slice(0, -'.weight'.length),
    weight: p.entry.name,
    shape: [p.m, p.n],
    dtype: p.entry.dtype,
    rank: p.k,
    factored: p.factored,
    paramsBefore: before,
    paramsAfter: p.factored ? p.k * (p.m + p.n) : before,
    relativeError,
    optimumError,
    optimumExact,
    ...(method !== undefined ? { method } : {}),
    ...(note !== undefined ? { note } : {}),
  };
}

/** The SVD of one weight truncated to its rank: the two factors, or (materialize) the dense W_k as `u`. */
async function factorize(model: Model, p: Planned, materialize: boolean, layers: Map<string, CompressedLayer>): Promise<{ u: Tensor; v: Tensor }> {
  const work = workDtype(p.entry.dtype);
  const w = await model.readAs(p.entry.name, work);
  const { u, s, vt } = await svd(w);
  const { m, n, k } = p;
  const q = s.data.length;
  let total = 0;
  let tail = 0;
  for (let i = 0; i < q; i++) {
    const x = s.data[i] * s.data[i];
    total += x;
    if (i >= k) tail += x;
  }
  const rel = total === 0 ? 0 : Math.sqrt(tail / total);
  layers.set(p.entry.name, layerReport(p, rel, rel, true, 'exact'));
  const uk = tensor(work, [m, k]);
  const vk = tensor(work, [k, n]);
  for (let j = 0; j < k; j++) {
    const root = materialize ? s.data[j] : Math.sqrt(s.data[j]);
    for (let i = 0; i < m; i++) uk.data[i * k + j] = u.data[i * q + j] * root;
    const vr = materialize ? 1 : Math.sqrt(s.data[j]);
    for (let c = 0; c < n; c++) vk.data[j * n + c] = vt.data[j * n + c] * vr;
  }
  const dtype = storeAs(p.entry.dtype);
  if (materialize) {
    const dense = await matmul(uk, vk);
    return { u: encodeFloat(dense, dtype), v: dense };
  }
  return { u: encodeFloat(uk, dtype), v: encodeFloat(vk, dtype) };
}

/**
 * One weight by {@link truncatedSvd} at a rank or an energy share, its factors (or dense W_k)
 * rounded to the weight's dtype and the error measured on them. An energy share the rounding
 * takes the factors below gets one more rank, until it holds.
 */
async function factorizeFast(model: Model, p: Planned, keep: Keep, materialize: boolean, layers: Map<string, CompressedLayer>, take: Scratch): Promise<{ u: Tensor; v: Tensor }> {
  const w = workDtype(p.entry.dtype) === 'f64' ? await model.readAs(p.entry.name, 'f64') : await model.readAs(p.entry.name, 'f32', { into: take(0, p.m * p.n) });
  const dtype = storeAs(p.entry.dtype);
  const q = Math.min(p.m, p.n);
  let t: Truncation = await truncatedSvd(w, keep);
  for (;;) {
    const { stored, decoded } = await storedFactors(t, materialize, dtype);
    const errSq = await residualSquares(w, decoded.v === undefined ? decoded.u : { left: decoded.u, right: decoded.v, scale: 1 });
    const total = t.total;
    if ('energy' in keep && total > 0 && 1 - errSq / total < keep.energy && t.rank < q) {
      t = await truncatedSvd(w, { rank: t.rank + 1 }, { method: t.method });
      continue;
    }
    const planned = { ...p, k: t.rank };
    const rel = total === 0 ? 0 : Math.sqrt(errSq / total);
    layers.set(p.entry.name, layerReport(planned, rel, total === 0 ? 0 : Math.sqrt(t.optimumSq / total), t.optimumExact, t.method, t.note));
    return stored;
  }
}

/** U_k·diag(√σ) and diag(√σ)·V_kᵀ (or the dense W_k as `u`) in the storage dtype, and their values decoded back. */
async function storedFactors(t: Truncation, materialize: boolean, dtype: 'f64' | 'f32' | 'f16' | 'bf16'): Promise<{ stored: { u: Tensor; v: Tensor }; decoded: { u: Tensor<'f32' | 'f64'>; v?: Tensor<'f32' | 'f64'> } }> {
  const { left, right } = sqrtSplit(t);
  const round = async (x: Tensor<'f32' | 'f64'>): Promise<{ stored: Tensor; decoded: Tensor<'f32' | 'f64'> }> => {
    const stored = await encodeAs(x, dtype);
    return { stored, decoded: dtype === x.dtype ? x : await decodeAs(stored, x.dtype) };
  };
  if (materialize) {
    const dense = await round(await matmul(left, right));
    return { stored: { u: dense.stored, v: tensor(dtype, [0]) }, decoded: { u: dense.decoded } };
  }
  const [u, v] = [await round(left), await round(right)];
  return { stored: { u: u.stored, v: v.stored }, decoded: { u: u.decoded, v: v.decoded } };
}

function manifest(policy: RankPolicy, materialized: boolean, layers: readonly CompressedLayer[]): CompressManifest {
  const modules: Record<string, ManifestModule> = Object.create(null) as Record<string, ManifestModule>;
  const skipped: Record<string, { weight: string; shape: [number, number]; rank: number }> = Object.create(null) as Record<string, { weight: string; shape: [number, number]; rank: number }>;
  for (const l of layers) {
    const shape: [number, number] = [l.shape[0], l.shape[1]];
    if (!l.factored) {
      skipped[l.module] = { weight: l.weight, shape, rank: l.rank };
      continue;
    }
    modules[l.module] = {
      weight: l.weight,
      shape,
      dtype: l.dtype,
      rank: l.rank,
      relative_error: l.relativeError,
      ...(l.method !== undefined && l.method !== 'exact' ? { method: l.method } : {}),
      ...(materialized ? {} : { U: `${l.module}.lowrank_U`, V: `${l.module}.lowrank_V` }),
    };
  }
  return { format: 'lowrank-svd', version: MANIFEST_VERSION, policy: formatPolicy(policy), materialized, modules, skipped };
}

/** A compressed model folder opened for reading. Close it when done. */
export interface CompressedModel {
  readonly manifest: CompressManifest;
  /** The underlying model (factor tensors under their own names). */
  readonly model: Model;
  /** A module's factors [m, k] and [k, n] as f32 (E_NOT_FOUND when the module is not factored). */
  factors(module: string): Promise<{ u: Tensor<'f32'>; v: Tensor<'f32'> }>;
  /**
   * A weight of the original model by its name, as f32: U·V for a factored module, else the stored
   * tensor.
   */
  weight(name: string): Promise<Tensor<'f32'>>;
  close(): Promise<void>;
}

/**
 * Opens a folder written by {@link compressModel} and gives back W ≈ U·V per module.
 *
 * @example
 * const c = await openCompressed('llama-lr');
 * const w = await c.weight('model.layers.0.mlp.up_proj.weight'); // U·V, [m, n]
 * await c.close();
 */
export async function openCompressed(dir: string): Promise<CompressedModel> {
  const raw = await readJsonObject(join(dir, MANIFEST_FILE));
  if (raw.format !== 'lowrank-svd' || typeof raw.version !== 'number' || raw.version > MANIFEST_VERSION || typeof raw.modules !== 'object' || raw.modules === null) {
    throw new LowrankError('E_FORMAT', `not a lowrank-svd manifest of version ≤ ${MANIFEST_VERSION}`, { file: join(dir, MANIFEST_FILE) });
  }
  const man = raw as unknown as CompressManifest;
  const model = await openModel(dir);
  const byWeight = new Map(Object.entries(man.modules).map(([mod, e]) => [e.weight, mod]));
  const factors = async (module: string): Promise<{ u: Tensor<'f32'>; v: Tensor<'f32'> }> => {
    const e = Object.hasOwn(man.modules, module) ? man.modules[module] : undefined;
    if (e?.U === undefined || e.V === undefined) throw new LowrankError('E_NOT_FOUND', 'no factors for this module in the manifest', { file: dir, tensor: module });
    const u = await model.readAs(e.U, 'f32');
    const v = await model.readAs(e.V, 'f32');
    if (u.shape[0] !== e.shape[0] || v.shape[1] !== e.shape[1] || u.shape[1] !== e.rank || v.shape[0] !== e.rank) {
      throw new LowrankError('E_FORMAT', `factors [${u.shape.join(', ')}]·[${v.shape.join(', ')}] do not match shape [${e.shape.join(', ')}] at rank ${e.rank}`, { file: dir, tensor: module });
    }
    return { u, v };
  };
  return {
    manifest: man,
    model,
    factors,
    weight: async (name) => {
      const module = byWeight.get(name);
      if (module === undefined || man.materialized) return model.readAs(name, 'f32');
      const { u, v } = await factors(module);
      return matmul(u, v);
    },
    close: () => model.close(),
  };
}

/** The SVD's element type: float64 for f64 weights, float32 (as LAPACK's sgesdd) for the rest. */
function workDtype(d: DType): 'f64' | 'f32' {
  return d === 'f64' ? 'f64' : 'f32';
}

function storeAs(d: DType): 'f64' | 'f32' | 'f16' | 'bf16' {
  return d === 'f64' || d === 'f16' || d === 'bf16' ? d : 'f32';
}

async function withTensor<T>(file: string, name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof LowrankError && e.context.tensor === undefined) throw new LowrankError(e.code, e.message, { file, tensor: name }, { cause: e });
    throw e;
  }
}
