/**
 * Initializing an adapter from a model's weights (PiSSA, MiLoRA, OLoRA, ... — src/methods): per
 * target layer the method's init of W, written as a PEFT adapter folder, and, for methods that
 * change the base, the residual model folder the adapter is trained over.
 *
 * The adapter's `init_lora_weights` is `true`, so that PEFT loads it as a plain LoRA over the
 * residual: with "pissa" or "olora" there PEFT runs the init again when it loads the adapter,
 * subtracting a second B·A from the residual (measured with PEFT 0.21: logits 67 % off), and it
 * rejects values it does not know ("milora"). PEFT's own docs save the initial adapter with
 * `init_lora_weights = True` for the same reason. The method is recorded in the weights file's
 * metadata instead (`lowrank_init`, with `lowrank_rank` and `lowrank_niter`).
 * Weights are decomposed in float32 (float64 when stored so), as PEFT does; the residual is
 * rounded once into the stored dtype; the factors are saved in float32. Streamed one tensor at a
 * time.
 */
import { checkOutput } from '../io/atomic.js';
import { LowrankError } from '../core/errors.js';
import { encodeFloat, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { openModel, type Model } from '../io/hf.js';
import { rewriteModel, rewriteOrder } from '../io/rewrite.js';
import { writeAdapter, type LoraConfig, type LoraModuleTensors } from '../io/peft.js';
import { writeMethodAdapter, METHOD_ADAPTER_TYPE } from '../io/methodAdapter.js';
import { getMethod } from '../methods/registry.js';
import { copyOf, residualAs } from '../methods/split.js';
import { readAhead } from '../io/readAhead.js';
import { backend } from '../backend/index.js';
import { NO_SHARED } from '../methods/shared.js';
import { type AdapterMethod, type InitOptions, type LayerInit, type LayerShape } from '../methods/types.js';
import { configOf, type OptionValues } from '../methods/options.js';
import { writeMethodFolder } from '../methods/adapterFile.js';
import { lastPart, selectLayers, isRegexTarget, type LayerTargets } from './targets.js';
import { asOutIn, isConv1dModel, outIn, storedInOut } from '../io/layout.js';

/** Options of {@link initAdapter}. */
export interface InitAdapterOptions {
  /** The model folder (not modified). */
  readonly model: string;
  /** A method name of src/methods (pissa, milora, olora, ...). */
  readonly method: string;
  readonly rank: number;
  /** lora_alpha (default: rank, scaling 1). */
  readonly alpha?: number;
  readonly useRslora?: boolean;
  /** The layers (see {@link LayerTargets}). Default 'all-linear'. */
  readonly targets?: LayerTargets;
  /** Randomized SVD with this many power iterations (PiSSA, SORSA, SALT); default exact. */
  readonly niter?: number;
  /** SVFit, SoKA: choose each layer's rank by this energy fraction (capped at rank). */
  readonly energy?: number;
  /** SoKA: choose each layer's rank at the spectrum's elbow (capped at rank). */
  readonly elbow?: boolean;
  readonly seed?: number;
  /** The method's own options (its declaration in src/methods). */
  readonly options?: OptionValues;
  /** The adapter folder. */
  readonly out: string;
  /** The residual model folder (methods that change the base). Default `<out>-residual`. */
  readonly residualOut?: string;
  readonly overwrite?: boolean;
  readonly onTensor?: (name: string, index: number, count: number) => void;
}

/** What {@link initAdapter} wrote. */
export interface InitAdapterResult {
  readonly out: string;
  readonly residualOut?: string;
  /** adapter_config.json as written (a PEFT LoraConfig for LoRA-pair methods). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly method: string;
  /** Per layer: module name, [out, in], rank, trainable parameters. */
  readonly layers: readonly { readonly name: string; readonly shape: readonly [number, number]; readonly rank: number; readonly trainable: number }[];
  readonly trainable: number;
}

/**
 * Initializes an adapter of a weight-derived method on a model and writes it (and the residual
 * model when the method changes the base).
 *
 * @example
 * const res = await initAdapter({ model: 'llama', method: 'pissa', rank: 16, niter: 4, targets: ['q_proj', 'v_proj'], out: 'pissa-init' });
 * // PEFT: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('pissa-init-residual'), 'pissa-init')
 */
export async function initAdapter(opts: InitAdapterOptions): Promise<InitAdapterResult> {
  const method = getMethod(opts.method);
  if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${opts.rank}`);
  if (opts.niter !== undefined && (!Number.isInteger(opts.niter) || opts.niter < 0)) throw new LowrankError('E_USAGE', `niter must be a non-negative integer, got ${opts.niter}`);
  const model = await openModel(opts.model);
  try {
    return await run(model, method, opts);
  } finally {
    await model.close();
  }
}

async function run(model: Model, method: AdapterMethod, opts: InitAdapterOptions): Promise<InitAdapterResult> {
  const residualOut = method.changesBase ? (opts.residualOut ?? `${opts.out}-residual`) : undefined;
  for (const out of [opts.out, residualOut]) if (out !== undefined) await checkOutput(out, opts.overwrite);
  const fifo = isConv1dModel(model.config);
  const targets = opts.targets ?? 'all-linear';
  const chosen = selectLayers(model.tensors, targets);
  if (chosen.length === 0) throw new LowrankError('E_USAGE', `no 2-D weight of the model matches the targets ${String(targets)}`, { file: opts.model });
  const initOpts: InitOptions = { rank: opts.rank, alpha: opts.alpha, useRslora: opts.useRslora, niter: opts.niter, seed: opts.seed, energy: opts.energy, elbow: opts.elbow, options: opts.options };
  configOf(method.name, method.options ?? {}, opts.options);
  const dtypeOf = (name: string): FloatDType => (model.entry(name).dtype === 'f64' ? 'f64' : 'f32');
  const shapes: LayerShape[] = chosen.map((t) => ({ name: t.name.slice(0, -'.weight'.length), shape: outIn(model, t.name, t.shape) }));
  const shared = method.prepare === undefined ? NO_SHARED : await method.prepare(shapes, initOpts, dtypeOf(chosen[0].name));

  // Each layer's init runs once, when the residual writer (or, without one, the loop) asks for it.
  const inits = new Map<string, LayerInit>();
  const order = new Map(chosen.map((t, i) => [t.name, i]));
  // Weights are read in the order they are decomposed, the next while this one is (into two
  // buffers used in turn: an init and its residual are done before the weight after next is read).
  const names = new Set(chosen.map((t) => t.name));
  const read = readAhead(model, residualOut !== undefined ? rewriteOrder(model).filter((n) => names.has(n)) : chosen.map((t) => t.name));
  const initOf = async (name: string): Promise<{ init: LayerInit; stored: Tensor<FloatDType> }> => {
    const stored = await read(name);
    const index = order.get(name) ?? 0;
    const init = await method.init(asOutIn(model, name, stored), { ...initOpts, layer: { name: shapes[index].name, index } }, shared).catch((e: unknown) => {
      if (e instanceof LowrankError) throw new LowrankError(e.code, e.message, { file: opts.model, tensor: name });
      throw e;
    });
    // The factors stay (a factor viewing the weight's reused buffer is copied); the removed part goes with the residual.
    const kept = Object.fromEntries(Object.entries(init.tensors).map(([role, f]) => [role, f.data.buffer === stored.data.buffer ? copyOf<FloatDType>(f) : f]));
    inits.set(name, { tensors: kept, rank: init.rank });
    return { init, stored };
  };
  const release = backend().retainFreedMemory();
  try {
    if (residualOut !== undefined) {
      await rewriteModel(model, residualOut, async (t) => {
        if (!names.has(t.name)) return undefined;
        const { init, stored } = await initOf(t.name);
        if (init.removed === undefined) throw new LowrankError('E_INTERNAL', `method ${method.name} changes the base but removed nothing from it`, { tensor: t.name });
        return residualAs(stored, init.removed, t.dtype as 'f32' | 'f64' | 'bf16' | 'f16', { transposed: storedInOut(model, t.name) });
      }, { overwrite: opts.overwrite, onTensor: opts.onTensor });
    } else {
      for (const [i, t] of chosen.entries()) {
        opts.onTensor?.(t.name, i, chosen.length);
        await initOf(t.name);
      }
    }
  } finally {
    release();
  }

  const layers: { name: string; shape: [number, number]; rank: number; trainable: number }[] = [];
  const perModule: { name: string; init: LayerInit }[] = [];
  for (const t of chosen) {
    const init = inits.get(t.name) as LayerInit;
    const name = t.name.slice(0, -'.weight'.length);
    const [o, i] = outIn(model, t.name, t.shape);
    const rank = init.rank ?? opts.rank;
    layers.push({ name, shape: [o, i], rank, trainable: method.trainableParams(o, i, rank, initOpts) });
    perModule.push({ name, init });
  }
  const targetModules = isRegexTarget(targets) ? targets.source : [...new Set(chosen.map((t) => lastPart(t.name.slice(0, -'.weight'.length))))].sort();
  const metadata: Record<string, string> = { lowrank_init: method.name, lowrank_rank: String(opts.rank) };
  if (opts.niter !== undefined) metadata.lowrank_niter = String(opts.niter);
  const base = residualOut ?? opts.model;
  const common = { target_modules: targetModules, fan_in_fan_out: fifo, base_model_name_or_path: base };
  let config: Record<string, unknown>;
  if (method.format !== undefined) {
    const modules = new Map(perModule.map(({ name, init }) => [name, init.tensors]));
    config = await writeMethodFolder(opts.out, { method, opts: initOpts, layers: shapes, modules, shared, fanInFanOut: fifo }, { baseModel: base, targetModules, overwrite: opts.overwrite });
  } else if (isLoraPair(method)) {
    const modules: LoraModuleTensors[] = perModule.map(({ name, init }) => ({
      name,
      A: encodeFloat(init.tensors.A, 'f32'),
      B: encodeFloat(init.tensors.B, 'f32'),
      ...(init.tensors.magnitude !== undefined ? { magnitude: encodeFloat(init.tensors.magnitude, 'f32') } : {}),
    }));
    const fields: Partial<LoraConfig> = { ...common, r: opts.rank, lora_alpha: opts.alpha ?? opts.rank, use_rslora: opts.useRslora ?? false, use_dora: 'magnitude' in method.keys, init_lora_weights: true, task_type: 'CAUSAL_LM' };
    config = { ...(await writeAdapter(opts.out, fields, modules, { overwrite: opts.overwrite, metadata })) };
  } else {
    const rankPattern = Object.fromEntries(layers.filter((l) => l.rank !== opts.rank).map((l) => [l.name, l.rank]));
    config = {
      ...common,
      peft_type: METHOD_ADAPTER_TYPE,
      lowrank_method: method.name,
      r: opts.rank,
      rank_pattern: rankPattern,
      lowrank_keys: method.keys,
      ...(opts.energy !== undefined ? { energy: opts.energy } : {}),
      ...(opts.elbow === true ? { elbow: true } : {}),
      ...(opts.niter !== undefined ? { niter: opts.niter } : {}),
    };
    const tensors = perModule.flatMap(({ name, init }) => Object.entries(method.keys).map(([role, key]) => ({ module: name, key, tensor: encodeFloat(init.tensors[role], 'f32') })));
    await writeMethodAdapter(opts.out, config, tensors, { overwrite: opts.overwrite, metadata });
  }
  return { out: opts.out, residualOut, config, method: method.name, layers, trainable: layers.reduce((s, l) => s + l.trainable, 0) + (method.sharedParams?.(shapes, initOpts) ?? 0) };
}

/** PEFT's key of each role a LoRA (or DoRA) adapter has. */
const PEFT_LORA_KEYS: Readonly<Record<string, string>> = { A: 'lora_A.weight', B: 'lora_B.weight', magnitude: 'lora_magnitude_vector' };

/** True when the method's adapter is a LoRA pair (plus DoRA's magnitude) under PEFT's keys: PEFT loads it. */
function isLoraPair(method: AdapterMethod): boolean {
  const roles = Object.keys(method.keys);
  return roles.includes('A') && roles.includes('B') && roles.every((r) => PEFT_LORA_KEYS[r] === method.keys[r]);
}
