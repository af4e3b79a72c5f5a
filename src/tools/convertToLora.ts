/**
 * Turning an adapter trained over a residual base (PiSSA, MiLoRA, OLoRA: the base was W − s·B0·A0)
 * into a plain LoRA on the original W, as PEFT's `save_pretrained(...,
 * path_initial_model_for_weight_conversion=...)` does: the change to the original weight is
 * ΔW = s·(B·A − B0·A0) = s·[B | −B0]·[A ; A0], a LoRA of rank 2r with the same scaling — so r and
 * every rank_pattern value double, and lora_alpha (and alpha_pattern) double too (×√2 with rsLoRA,
 * whose scaling is alpha/√r; PEFT refuses rsLoRA with rank or alpha patterns, and so does this).
 * The output records init_lora_weights true.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, encodeFloat } from '../core/tensor.js';
import type { TensorSource } from '../io/safetensors/writer.js';
import { loraConfig, loraScaling, openAdapter, perModuleRanks, writeAdapter, type Adapter, type LoraConfig, type LoraModuleTensors } from '../io/peft.js';
import { openModel } from '../io/hf.js';
import { truncate } from '../linalg/lowrank.js';
import { isMethodFolder, readMethodFolder } from '../methods/adapterFile.js';
import { linearShapes } from '../io/layout.js';

/** Options of {@link convertToLora}. */
export interface ConvertToLoraOptions {
  /** The adapter as it was at initialization (before training). */
  readonly initial: string;
  /** The trained adapter. */
  readonly trained: string;
  readonly out: string;
  readonly overwrite?: boolean;
}

/**
 * Writes the rank-2r LoRA that applies the trained adapter's change to the original base weights.
 *
 * @example
 * await convertToLora({ initial: 'pissa-init', trained: 'pissa-trained', out: 'pissa-as-lora' });
 */
export async function convertToLora(opts: ConvertToLoraOptions): Promise<{ out: string; config: LoraConfig; modules: number }> {
  const init = await openAdapter(opts.initial);
  try {
    const trained = await openAdapter(opts.trained);
    try {
      return await run(init, trained, opts);
    } finally {
      await trained.close();
    }
  } finally {
    await init.close();
  }
}

async function run(init: Adapter, trained: Adapter, opts: ConvertToLoraOptions): Promise<{ out: string; config: LoraConfig; modules: number }> {
  const c = trained.config;
  for (const a of [init, trained]) if (a.modules.length === 0) throw new LowrankError('E_FORMAT', 'not a LoRA adapter (no lora_A / lora_B tensors)', { file: a.dir });
  for (const key of ['r', 'lora_alpha', 'use_rslora', 'fan_in_fan_out'] as const) {
    if (JSON.stringify(init.config[key]) !== JSON.stringify(c[key])) throw new LowrankError('E_USAGE', `the initial and trained adapters differ in ${key}`, { file: opts.initial });
  }
  const patterns = Object.keys(c.rank_pattern).length + Object.keys(c.alpha_pattern).length > 0;
  if (c.use_rslora && patterns) throw new LowrankError('E_UNSUPPORTED', 'rsLoRA with rank_pattern/alpha_pattern cannot be converted (PEFT refuses it too): the doubled rank changes alpha/√r differently per module', { file: opts.trained });
  if (c.use_dora) throw new LowrankError('E_UNSUPPORTED', 'DoRA adapters cannot be converted this way', { file: opts.trained });
  const byName = new Map(init.modules.map((m) => [m.name, m]));
  const modules: LoraModuleTensors[] = [];
  for (const m of trained.modules) {
    const m0 = byName.get(m.name);
    const ctx = { file: opts.initial, tensor: m.name };
    if (m0 === undefined) throw new LowrankError('E_NOT_FOUND', 'the initial adapter has no such module', ctx);
    if (m0.A.shape.join() !== m.A.shape.join() || m0.B.shape.join() !== m.B.shape.join()) throw new LowrankError('E_SHAPE', 'the initial and trained factors differ in shape', ctx);
    if (m.A.shape.length !== 2) throw new LowrankError('E_UNSUPPORTED', 'convolution LoRA modules are not supported', ctx);
    const [r, inF] = m.A.shape;
    const out = m.B.shape[0];
    const [a, a0, b, b0] = await Promise.all([trained.readAs(m.A.name, 'f64'), init.readAs(m0.A.name, 'f64'), trained.readAs(m.B.name, 'f64'), init.readAs(m0.B.name, 'f64')]);
    const A = tensor('f64', [2 * r, inF]);
    A.data.set(a.data, 0);
    A.data.set(a0.data, r * inF);
    const B = tensor('f64', [out, 2 * r]);
    for (let i = 0; i < out; i++) {
      for (let k = 0; k < r; k++) {
        B.data[i * 2 * r + k] = b.data[i * r + k];
        B.data[i * 2 * r + r + k] = -b0.data[i * r + k];
      }
    }
    const dtype = m.A.dtype === 'bf16' || m.A.dtype === 'f16' || m.A.dtype === 'f64' ? m.A.dtype : 'f32';
    modules.push({ name: m.name, kind: m.kind, A: encodeFloat(A, dtype), B: encodeFloat(B, dtype) });
  }
  const alphaFactor = c.use_rslora ? Math.SQRT2 : 2;
  const double = (p: Readonly<Record<string, number>>, f: number): Record<string, number> => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v * f]));
  const fields: Partial<LoraConfig> = {
    ...c,
    r: 2 * c.r,
    lora_alpha: alphaFactor * c.lora_alpha,
    rank_pattern: double(c.rank_pattern, 2),
    alpha_pattern: double(c.alpha_pattern, 2),
    init_lora_weights: true,
  };
  const full = loraConfig(fields);
  for (const m of trained.modules) {
    const after = loraScaling(full, m.name).scaling;
    if (Math.abs(after - m.scaling) > 1e-12 * Math.abs(m.scaling)) throw new LowrankError('E_INTERNAL', `conversion would change the scaling ${m.scaling} → ${after}`, { tensor: m.name });
  }
  const extra: TensorSource[] = trained.others.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: async () => (await trained.read(e.name)).data }));
  const config = await writeAdapter(opts.out, fields, modules, { overwrite: opts.overwrite ?? false, extra });
  return { out: opts.out, config, modules: modules.length };
}

/** Options of {@link methodToLora}. */
export interface MethodToLoraOptions {
  /** An adapter of a method with its own format (VeRA, NOLA, RandLoRA, ...). */
  readonly adapter: string;
  /** Keep at most this rank per module (PEFT convert_to_lora's int rank). */
  readonly rank?: number;
  /** Keep the smallest rank with Σσ² ≥ energy·Σσ² (PEFT's float rank), capped at `rank`. */
  readonly energy?: number;
  /** The base model, for a PEFT-written adapter whose module shapes are not recorded. */
  readonly base?: string;
  readonly out: string;
  readonly overwrite?: boolean;
}

/** One converted module: its rank and the relative Frobenius error of the truncation. */
export interface ConvertedModule {
  readonly name: string;
  readonly rank: number;
  readonly relError: number;
}

/**
 * Any method's adapter as a PEFT LoRA, as PEFT's `convert_to_lora` does: each module's ΔW
 * truncated by SVD (through the factors; exact when the rank allows), B = U·√Σ, A = √Σ·Vᵀ, scaling 1
 * (per-module ranks in rank_pattern/alpha_pattern).
 *
 * @example
 * const res = await methodToLora({ adapter: 'vera-trained', rank: 16, out: 'vera-as-lora' });
 */
export async function methodToLora(opts: MethodToLoraOptions): Promise<{ out: string; config: LoraConfig; modules: ConvertedModule[] }> {
  if (opts.rank === undefined && opts.energy === undefined) throw new LowrankError('E_USAGE', 'give a rank or an energy fraction');
  if (opts.rank !== undefined && (!Number.isSafeInteger(opts.rank) || opts.rank < 1)) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${opts.rank}`);
  if (!(await isMethodFolder(opts.adapter))) throw new LowrankError('E_USAGE', 'is a PEFT LoRA adapter already (lowrank resize changes its rank)', { file: opts.adapter });
  let shapes: ReadonlyMap<string, readonly [number, number]> | undefined;
  if (opts.base !== undefined) {
    const model = await openModel(opts.base);
    try {
      shapes = linearShapes(model);
    } finally {
      await model.close();
    }
  }
  const a = await readMethodFolder(opts.adapter, 'f64', { shapes });
  const delta = a.method.delta;
  if (delta === undefined) throw new LowrankError('E_UNSUPPORTED', `${a.method.name} adapters have no ΔW to convert`, { file: opts.adapter });
  const converted: ConvertedModule[] = [];
  const modules: LoraModuleTensors[] = [];
  for (const l of a.layers) {
    const t = await truncate(await delta(a.modules.get(l.name) ?? {}, a.shared, a.opts, l.shape), { rank: opts.rank, energy: opts.energy });
    converted.push({ name: l.name, rank: t.rank, relError: t.relError });
    modules.push({ name: l.name, A: encodeFloat(t.value.right, 'f32'), B: encodeFloat(t.value.left, 'f32') });
  }
  const targets = [...new Set(a.layers.map((l) => l.name.slice(l.name.lastIndexOf('.') + 1)))].sort();
  const fields = perModuleRanks(converted, { target_modules: targets, fan_in_fan_out: a.fanInFanOut, init_lora_weights: true, task_type: 'CAUSAL_LM', base_model_name_or_path: opts.base ?? null });
  const config = await writeAdapter(opts.out, fields, modules, { overwrite: opts.overwrite, metadata: { lowrank_converted_from: a.method.name } });
  return { out: opts.out, config, modules: converted };
}
