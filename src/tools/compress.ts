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
import type { DType } from '../core/dtype.js';
import { svd, svdvals } from '../linalg/decompositions.js';
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
  /** ‖W − W_k‖_F/‖W‖_F (0 when not factored). */
  readonly relativeError: number;
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
  await checkOutput(opts.out, opts.overwrite);
  const targets = opts.targets === undefined ? undefined : patternOf(opts.targets);
  const model = await openModel(opts.model);
  try {
    return await run(model, targets, opts);
  } finally {
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
  const chosen = model.tensors.filter((t) => isTarget(t.name, t.shape, t.dtype, targets));
  if (chosen.length === 0) {
    throw new LowrankError('E_USAGE', targets === undefined ? 'the model has no 2-D weight matrix to compress' : `no 2-D weight matrix matches targets /${targets.source}/`, { file: model.path });
  }
  const spectral = needsSpectra(policy);
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
  const ranks = chooseRanks(policy, spectra);
  const layers = new Map<string, CompressedLayer>();
  const plan = chosen.map((t, i) => {
    const [m, n] = t.shape;
    const k = ranks[i];
    return { entry: t, m, n, k, factored: k <= usefulRank(m, n) };
  });

  // The factors of one weight, computed when the writer first asks for either tensor.
  const pending = new Map<string, Promise<{ u: Tensor; v: Tensor }>>();
  const factors = (p: (typeof plan)[number]): Promise<{ u: Tensor; v: Tensor }> => {
    let hit = pending.get(p.entry.name);
    if (hit === undefined) {
      opts.onTensor?.(p.entry.name, step++, steps);
      hit = withTensor(model.path, p.entry.name, () => factorize(model, p, materialize, layers));
      pending.set(p.entry.name, hit);
    }
    return hit;
  };

  const sources: TensorSource[] = [];
  const byWeight = new Map(plan.map((p) => [p.entry.name, p]));
  for (const t of model.tensors) {
    const p = byWeight.get(t.name);
    const module = t.name.slice(0, -'.weight'.length);
    if (p === undefined || !p.factored) {
      sources.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: async () => (await model.read(t.name)).data });
    } else if (materialize) {
      sources.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: async () => {
        const { u } = await factors(p);
        pending.delete(p.entry.name);
        return u.data;
      } });
    } else {
      const dtype = storeAs(t.dtype);
      sources.push(
        { name: `${module}.lowrank_U`, dtype, shape: [p.m, p.k], data: async () => (await factors(p)).u.data },
        { name: `${module}.lowrank_V`, dtype, shape: [p.k, p.n], data: async () => {
          const { v } = await factors(p);
          pending.delete(p.entry.name);
          return v.data;
        } },
      );
    }
  }

  await writeDirAtomic(
    opts.out,
    async (dir) => {
      if (model.config !== undefined) await writeTextFile(join(dir, 'config.json'), JSON.stringify(model.config, null, 2) + '\n');
      await writeSafetensors(join(dir, SINGLE_FILE), sources, { metadata: { format: 'pt', ...model.metadata } });
      for (const p of plan) if (!p.factored) layers.set(p.entry.name, layerReport(p, 0));
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

interface Planned {
  entry: { name: string; dtype: DType };
  m: number;
  n: number;
  k: number;
  factored: boolean;
}

function layerReport(p: Planned, relativeError: number): CompressedLayer {
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
  layers.set(p.entry.name, layerReport(p, total === 0 ? 0 : Math.sqrt(tail / total)));
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
