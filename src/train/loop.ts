/**
 * The adapter training loop: a Llama-family model with an adapter method's training terms on its
 * target layers (LoRA and DoRA; PiSSA, MiLoRA, OLoRA, SoMA as LoRA over their residual; SVFit and
 * LoLDU training the middle of a frozen factorization); AdamW on the adapter only, warmup + cosine schedule, gradient accumulation and
 * global-norm clipping; evaluation loss and perplexity.
 */
import { LowrankError } from '../core/errors.js';
import { encodeFloat, tensor, type Tensor } from '../core/tensor.js';
import { writeAdapter, type LoraModuleTensors } from '../io/peft.js';
import type { FloatDType } from '../core/dtype.js';
import { getMethod, methodNames } from '../methods/registry.js';
import { residual } from '../methods/split.js';
import { NO_SHARED } from '../methods/shared.js';
import { type AdapterMethod, type InitOptions, type LayerInit, type LayerShape, type Shared, type TrainTerm } from '../methods/types.js';
import type { OptionValues } from '../methods/options.js';
import { writeMethodFolder } from '../methods/adapterFile.js';
import { loadAdapter } from '../infer/adapters.js';
import { backend } from '../backend/index.js';
import type { CausalLm } from '../nn/causalLm.js';
import { crossEntropy, IGNORE } from '../nn/loss.js';
import { adamw, clipGradNorm, cosineWithWarmup } from '../optim/adamw.js';
import type { NamedParam, Optimizer } from '../optim/optimizer.js';
import { selectLayers, type LayerTargets } from '../tools/targets.js';
import { batchAt, shuffled, type Sequence } from './data.js';

/** How to train. */
export interface TrainOptions {
  /** A method with a training term: lora, dora, pissa, milora, olora, soma, svfit, loldu. */
  readonly method: string;
  readonly rank: number;
  readonly alpha?: number;
  readonly useRslora?: boolean;
  readonly targets?: LayerTargets;
  readonly steps: number;
  readonly batch: number;
  /** Micro-batches per optimizer step. Default 1. */
  readonly accumulate?: number;
  readonly lr: number;
  readonly warmup?: number;
  readonly weightDecay?: number;
  readonly clip?: number;
  readonly seed?: number;
  readonly niter?: number;
  /** SVFit: the energy fraction that picks each layer's rank (default 0.99, capped at `rank`). */
  readonly energy?: number;
  /** The method's own options (`--set key=value`). */
  readonly options?: OptionValues;
  /** Stop after this step (the schedule still spans `steps`): an interrupted run. */
  readonly stopAt?: number;
  readonly onStep?: (info: { step: number; loss: number; lr: number; tokens: number }) => void;
}

/** The adapter being trained: per module its term (trained tensors and gradients) and optimizer state per role. */
export interface TrainedAdapter<F extends FloatDType> {
  readonly method: string;
  /** The base model stores its linear weights [in, out] (GPT-2): PEFT's fan_in_fan_out. */
  readonly fanInFanOut: boolean;
  /** Per module: its term and the init it started from (frozen per-layer tensors live there). */
  readonly modules: Map<string, { term: TrainTerm<F>; init: LayerInit }>;
  /** State shared across the layers. */
  readonly shared: Shared<F>;
  /** Every trained tensor by name: `<module>.<role>`, and `@shared.<role>` for trained shared ones. */
  readonly params: readonly NamedParam<F>[];
  readonly optimizer: Optimizer;
  /** The options the method was initialized with. */
  readonly initOptions: InitOptions;
  /** The targeted layers, [out, in]. */
  readonly layers: readonly LayerShape[];
}

/**
 * Initializes the method on the model's target layers (replacing W by the residual for methods
 * that change the base) and attaches its training terms to the model.
 */
export async function attachAdapter<F extends FloatDType>(m: CausalLm<F>, opts: TrainOptions): Promise<TrainedAdapter<F>> {
  const method = getMethod(opts.method);
  if (method.trainTerm === undefined) throw new LowrankError('E_UNSUPPORTED', `training ${opts.method} is not implemented (trainable: ${trainableMethods().join(', ')})`);
  const specs = [...m.weights].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype }));
  const layers = selectLayers(specs, opts.targets ?? 'all-linear').filter((t) => t.name !== 'lm_head.weight');
  if (layers.length === 0) throw new LowrankError('E_USAGE', 'no layer of the model matches the targets');
  const initOpts: InitOptions = { rank: opts.rank, alpha: opts.alpha, useRslora: opts.useRslora, niter: opts.niter, seed: opts.seed, energy: opts.energy, options: opts.options };
  const dtype = m.dtype;
  // The model's weights are [out, in] whatever the stored layout (GPT-2's Conv1D is transposed at load).
  const shapes: LayerShape[] = layers.map((l) => ({ name: moduleOf(l.name), shape: [l.shape[0], l.shape[1]] }));
  const shared = method.prepare === undefined ? NO_SHARED : await method.prepare(shapes, initOpts, dtype);
  const modules: TrainedAdapter<F>['modules'] = new Map();
  for (const [i, l] of layers.entries()) {
    const w = m.weights.get(l.name) as Tensor<F>;
    const layerOpts = { ...initOpts, seed: (opts.seed ?? 0) + i, layer: { name: moduleOf(l.name), index: i } };
    const init = await method.init(w, layerOpts, shared);
    if (init.removed !== undefined) w.data.set((await residual(w, init.removed)).data);
    const term = method.trainTerm(w, init, layerOpts, shared);
    const module = moduleOf(l.name);
    m.adapters.set(module, term);
    modules.set(module, { term, init });
  }
  const params: NamedParam<F>[] = [
    ...[...modules].flatMap(([module, { term }]) => Object.entries(term.params).map(([role, param]) => ({ name: `${module}.${role}`, param, grad: term.grads[role] }))),
    ...Object.entries(shared.grads).map(([role, grad]) => ({ name: `${SHARED_PREFIX}.${role}`, param: shared.tensors[role], grad })),
  ];
  return { method: opts.method, fanInFanOut: m.fanInFanOut, modules, shared, params, optimizer: adamw(params, { weightDecay: opts.weightDecay ?? 0 }), initOptions: initOpts, layers: shapes };
}

/** The name prefix of trained shared tensors (no module is named so: module names are dotted paths). */
export const SHARED_PREFIX = '@shared';

function moduleOf(weight: string): string {
  return weight.slice(0, -'.weight'.length);
}

/** The methods with a training term. */
export function trainableMethods(): string[] {
  return methodNames().filter((n) => getMethod(n).trainTerm !== undefined);
}

/** Trainable parameters of an attached adapter. */
export function trainableCount<F extends FloatDType>(adapter: TrainedAdapter<F>): number {
  let n = 0;
  for (const p of adapter.params) n += p.param.data.length;
  return n;
}

/** Runs `opts.steps` optimizer steps on the training sequences; returns the loss of each step. */
export async function train<F extends FloatDType>(m: CausalLm<F>, adapter: TrainedAdapter<F>, data: readonly Sequence[], opts: TrainOptions, startStep = 0): Promise<number[]> {
  if (data.length === 0) throw new LowrankError('E_USAGE', 'no training sequences (the data is shorter than one sequence)');
  const accumulate = opts.accumulate ?? 1;
  const order = shuffled(data, opts.seed ?? 0);
  const losses: number[] = [];
  const t = data[0].inputs.length;
  const end = Math.min(opts.steps, opts.stopAt ?? opts.steps);
  const release = backend().retainFreedMemory();
  try {
    for (let step = startStep; step < end; step++) await trainStep(m, adapter, order, opts, step, accumulate, losses, t);
  } finally {
    release();
  }
  return losses;
}

/** One optimizer step (`accumulate` micro-batches); pushes its loss. */
async function trainStep<F extends FloatDType>(m: CausalLm<F>, adapter: TrainedAdapter<F>, order: readonly Sequence[], opts: TrainOptions, step: number, accumulate: number, losses: number[], t: number): Promise<void> {
  for (const p of adapter.params) p.grad.data.fill(0);
  let loss = 0;
  for (let micro = 0; micro < accumulate; micro++) {
    const { inputs, targets } = batchAt(order, opts.batch, step * accumulate + micro);
    const { logits, backward } = await m.forward(inputs, opts.batch);
    const ce = await crossEntropy(logits, targets);
    loss += ce.loss / accumulate;
    if (accumulate > 1) for (let i = 0; i < ce.dlogits.data.length; i++) ce.dlogits.data[i] /= accumulate;
    await backward(ce.dlogits);
  }
  if (opts.clip !== undefined) clipGradNorm(adapter.params.map((p) => p.grad), opts.clip);
  const lr = cosineWithWarmup(step, opts.lr, opts.warmup ?? 0, opts.steps);
  adapter.optimizer.step(lr);
  const { onStep } = getMethod(adapter.method);
  if (onStep !== undefined) onStep({ step: step + 1, totalSteps: opts.steps, terms: new Map([...adapter.modules].map(([n, { term }]) => [n, term])), shared: adapter.shared });
  losses.push(loss);
  opts.onStep?.({ step: step + 1, loss, lr, tokens: (step + 1) * accumulate * opts.batch * t });
}

/** Mean loss over every target of the sequences, and its perplexity exp(loss). */
export async function evaluate<F extends FloatDType>(m: CausalLm<F>, data: readonly Sequence[], batch: number): Promise<{ loss: number; perplexity: number; tokens: number }> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i * batch < data.length; i++) {
    const part = data.slice(i * batch, (i + 1) * batch);
    const { inputs, targets } = batchAt(part, part.length, 0);
    const ce = await crossEntropy((await m.forward(inputs, part.length)).logits, targets);
    sum += ce.loss * ce.count;
    count += ce.count;
  }
  if (count === 0) throw new LowrankError('E_USAGE', `the evaluation data has no target tokens (all ${IGNORE})`);
  return { loss: sum / count, perplexity: Math.exp(sum / count), tokens: count };
}

/**
 * Writes the trained adapter as a PEFT LoRA folder that applies to the original base model: each
 * module's term as a LoRA on the original weight (TrainTerm.toLora) — LoRA and DoRA as trained;
 * PiSSA-style methods converted as PEFT converts them, [B | −B0]·[A ; A0] at rank 2r; SVFit and
 * LoLDU as U·diag(trained − initial)·V. Modules of lower rank are padded with zero rows of A and
 * columns of B to the largest (the same update), and lora_alpha = scaling·r.
 */
export async function saveTrainedAdapter<F extends FloatDType>(adapter: TrainedAdapter<F>, out: string, opts: { baseModel: string; overwrite?: boolean }): Promise<Readonly<Record<string, unknown>>> {
  const method = getMethod(adapter.method);
  if (method.format !== undefined) return saveOwnFormat(method, adapter, out, opts);
  const updates = [...adapter.modules].map(([name, { term }]) => {
    if (term.toLora === undefined) throw new LowrankError('E_INTERNAL', `${adapter.method} has neither a format of its own nor a LoRA export`);
    return { name, u: term.toLora() };
  });
  if (updates.length === 0) throw new LowrankError('E_USAGE', 'the adapter has no modules');
  const r = Math.max(...updates.map(({ u }) => u.A.shape[0]));
  const scaling = updates[0].u.scaling;
  const modules: LoraModuleTensors[] = updates.map(({ name, u }) => {
    // One scaling for the folder: a module with another folds the ratio into B.
    const fold = u.scaling / scaling;
    const [k, inF] = u.A.shape;
    const outF = u.B.shape[0];
    const A = tensor('f32', [r, inF]);
    A.data.set(u.A.data);
    const B = tensor('f32', [outF, r]);
    for (let i = 0; i < outF; i++) for (let j = 0; j < k; j++) B.data[i * r + j] = fold * u.B.data[i * k + j];
    return { name, A, B, ...(u.magnitude !== undefined ? { magnitude: encodeFloat(u.magnitude, 'f32') } : {}) };
  });
  const dora = modules.some((x) => x.magnitude !== undefined);
  const targets = [...new Set([...adapter.modules.keys()].map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
  return { ...(await writeAdapter(out, { r, lora_alpha: scaling * r, use_dora: dora, fan_in_fan_out: adapter.fanInFanOut, target_modules: targets, init_lora_weights: true, base_model_name_or_path: opts.baseModel, task_type: 'CAUSAL_LM' }, modules, { overwrite: opts.overwrite, metadata: { lowrank_method: adapter.method } })) };
}

/** A method with its own format: each module's init tensors with the trained ones over them, and the shared state. */
async function saveOwnFormat<F extends FloatDType>(method: AdapterMethod, adapter: TrainedAdapter<F>, out: string, opts: { baseModel: string; overwrite?: boolean }): Promise<Readonly<Record<string, unknown>>> {
  const modules = new Map([...adapter.modules].map(([name, { term, init }]) => [name, { ...(init.tensors as Record<string, Tensor<F>>), ...term.params }]));
  return writeMethodFolder(out, { method, opts: adapter.initOptions, layers: adapter.layers, modules, shared: adapter.shared, fanInFanOut: adapter.fanInFanOut }, { baseModel: opts.baseModel, overwrite: opts.overwrite });
}

/**
 * Puts a saved adapter on the model's layers (for evaluation), next to any already there: a PEFT
 * LoRA or DoRA folder, or an adapter of a method with its own format (infer/adapters.ts reads it).
 */
export async function loadAdapterInto<F extends FloatDType>(m: CausalLm<F>, dir: string): Promise<void> {
  for (const [module, term] of (await loadAdapter(m, dir)).terms) m.adapters.set(module, term);
}
