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
import { stat } from 'node:fs/promises';
import { LowrankError } from '../core/errors.js';
import { encodeFloat, tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { isFloatDType } from '../core/dtype.js';
import { openModel, type Model } from '../io/hf.js';
import { rewriteModel } from '../io/rewrite.js';
import { writeAdapter, type LoraConfig, type LoraModuleTensors } from '../io/peft.js';
import { getMethod } from '../methods/registry.js';
import type { AdapterMethod, InitOptions, LayerInit } from '../methods/types.js';
import { isConv1dModel, isDefaultLinear, lastPart } from './targets.js';

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
  /**
   * The layers: module-name suffixes (PEFT's target_modules list, e.g. ['q_proj', 'v_proj']),
   * 'all-linear' (every 2-D weight but embeddings and the output head), or a RegExp matched
   * against the whole module name (PEFT's regex form). Default 'all-linear'.
   */
  readonly targets?: readonly string[] | 'all-linear' | RegExp;
  /** Randomized SVD with this many power iterations (PiSSA); default exact. */
  readonly niter?: number;
  readonly seed?: number;
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
  readonly config: LoraConfig;
  readonly method: string;
  /** Per layer: module name, [out, in], trainable parameters. */
  readonly layers: readonly { readonly name: string; readonly shape: readonly [number, number]; readonly trainable: number }[];
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
  for (const out of [opts.out, residualOut]) {
    if (out === undefined || opts.overwrite === true) continue;
    if (await stat(out).then(() => true, () => false)) throw new LowrankError('E_EXISTS', 'output already exists (pass --force / overwrite: true to replace it)', { file: out });
  }
  const fifo = isConv1dModel(model.config);
  const targets = opts.targets ?? 'all-linear';
  const chosen = model.tensors.filter((t) => {
    if (!t.name.endsWith('.weight') || t.shape.length !== 2 || !isFloatDType(t.dtype)) return false;
    const module = t.name.slice(0, -'.weight'.length);
    if (targets === 'all-linear') return isDefaultLinear(module);
    if (targets instanceof RegExp) return new RegExp(`^(?:${targets.source})$`, targets.flags.replace(/[gy]/g, '')).test(module);
    return targets.includes(lastPart(module));
  });
  if (chosen.length === 0) throw new LowrankError('E_USAGE', `no 2-D weight of the model matches the targets ${String(targets)}`, { file: opts.model });
  const initOpts: InitOptions = { rank: opts.rank, alpha: opts.alpha, useRslora: opts.useRslora, niter: opts.niter, seed: opts.seed };

  // Each layer's init runs once, when the residual writer (or, without one, the loop) asks for it.
  const inits = new Map<string, LayerInit>();
  const initOf = async (name: string): Promise<LayerInit> => {
    const got = inits.get(name);
    if (got !== undefined) return got;
    const stored = model.entry(name);
    const dtype: FloatDType = stored.dtype === 'f64' ? 'f64' : 'f32';
    const read = await model.readAs(name, dtype);
    const w = fifo ? transposed(read) : read;
    const res = await method.init(w, initOpts).catch((e: unknown) => {
      if (e instanceof LowrankError) throw new LowrankError(e.code, e.message, { file: opts.model, tensor: name });
      throw e;
    });
    inits.set(name, res);
    return res;
  };
  const names = new Set(chosen.map((t) => t.name));
  if (residualOut !== undefined) {
    await rewriteModel(model, residualOut, async (t) => {
      if (!names.has(t.name)) return undefined;
      const init = await initOf(t.name);
      inits.set(t.name, { tensors: init.tensors }); // keep the small factors, let the residual go
      const r = init.residual;
      if (r === undefined) throw new LowrankError('E_INTERNAL', `method ${method.name} changes the base but returned no residual`, { tensor: t.name });
      const back = fifo ? transposed(r) : r;
      return encodeFloat(back, t.dtype as 'f32' | 'f64' | 'bf16' | 'f16');
    }, { overwrite: opts.overwrite, onTensor: opts.onTensor });
  } else {
    for (const [i, t] of chosen.entries()) {
      opts.onTensor?.(t.name, i, chosen.length);
      await initOf(t.name);
    }
  }

  const modules: LoraModuleTensors[] = [];
  const layers: { name: string; shape: [number, number]; trainable: number }[] = [];
  for (const t of chosen) {
    const init = await initOf(t.name);
    const name = t.name.slice(0, -'.weight'.length);
    const { A, B } = init.tensors;
    if (A === undefined || B === undefined) throw new LowrankError('E_UNSUPPORTED', `method ${method.name} is not a LoRA pair (A, B); its adapter layout is not written yet`);
    modules.push({ name, A: encodeFloat(A, 'f32'), B: encodeFloat(B, 'f32') });
    const [o, i] = fifo ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]];
    layers.push({ name, shape: [o, i], trainable: method.trainableParams(o, i, opts.rank) });
  }
  const targetModules = targets instanceof RegExp ? targets.source : [...new Set(chosen.map((t) => lastPart(t.name.slice(0, -'.weight'.length))))].sort();
  const fields: Partial<LoraConfig> = {
    r: opts.rank,
    lora_alpha: opts.alpha ?? opts.rank,
    use_rslora: opts.useRslora ?? false,
    target_modules: targetModules,
    init_lora_weights: true,
    fan_in_fan_out: fifo,
    base_model_name_or_path: residualOut ?? opts.model,
    task_type: 'CAUSAL_LM',
  };
  const metadata: Record<string, string> = { lowrank_init: method.name, lowrank_rank: String(opts.rank) };
  if (opts.niter !== undefined) metadata.lowrank_niter = String(opts.niter);
  const config = await writeAdapter(opts.out, fields, modules, { overwrite: opts.overwrite, metadata });
  return { out: opts.out, residualOut, config, method: method.name, layers, trainable: layers.reduce((s, l) => s + l.trainable, 0) };
}

function transposed<F extends FloatDType>(t: Tensor<F>): Tensor<F> {
  const [m, n] = t.shape;
  const out = tensor(t.dtype, [n, m]);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out.data[j * m + i] = t.data[i * n + j];
  return out;
}
