/**
 * The adapter training loop: a Llama-family model with a LoRA-pair adapter (LoRA, or a
 * weight-derived init — PiSSA, MiLoRA, OLoRA, SoMA — that trains as LoRA over its residual) on its
 * target layers; AdamW on the adapter only, warmup + cosine schedule, gradient accumulation and
 * global-norm clipping; evaluation loss and perplexity.
 */
import { LowrankError } from '../core/errors.js';
import { encodeFloat, tensor, type Tensor } from '../core/tensor.js';
import { writeAdapter, type LoraConfig, type LoraModuleTensors } from '../io/peft.js';
import type { FloatDType, Storage } from '../core/dtype.js';
import { getMethod } from '../methods/registry.js';
import { scalingOf } from '../methods/types.js';
import { loraTerm, type LoraTerm } from '../methods/lora.js';
import { llamaBackward, llamaForward, type LlamaModel } from '../nn/llama.js';
import { crossEntropy, IGNORE } from '../nn/loss.js';
import { adamwState, adamwStep, clipGradNorm, cosineWithWarmup, type AdamWState } from '../optim/adamw.js';
import { selectLayers, type LayerTargets } from '../tools/targets.js';
import { batchAt, shuffled, type Sequence } from './data.js';

/** How to train. */
export interface TrainOptions {
  /** lora, pissa, milora, olora or soma (LoRA-pair methods). */
  readonly method: string;
  readonly rank: number;
  readonly alpha?: number;
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
  /** Stop after this step (the schedule still spans `steps`): an interrupted run. */
  readonly stopAt?: number;
  readonly onStep?: (info: { step: number; loss: number; lr: number; tokens: number }) => void;
}

/** The adapter being trained: per module its LoRA term and optimizer state. */
export interface TrainedAdapter<F extends FloatDType> {
  readonly method: string;
  readonly scaling: number;
  readonly modules: Map<string, { term: LoraTerm<F>; stateA: AdamWState; stateB: AdamWState; init: { A: Tensor<F>; B: Tensor<F> } }>;
}

/**
 * Initializes the adapter on the model's target layers (replacing W by the residual for methods
 * that change the base) and attaches its terms to the model.
 */
export async function attachAdapter<F extends FloatDType>(m: LlamaModel<F>, opts: TrainOptions): Promise<TrainedAdapter<F>> {
  const method = getMethod(opts.method);
  if (Object.keys(method.keys).sort().join() !== 'A,B') throw new LowrankError('E_UNSUPPORTED', `training ${opts.method} is not implemented yet (LoRA-pair methods: lora, pissa, milora, olora, soma)`);
  const specs = [...m.weights].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype }));
  const layers = selectLayers(specs, opts.targets ?? 'all-linear').filter((t) => t.name !== 'lm_head.weight');
  if (layers.length === 0) throw new LowrankError('E_USAGE', 'no layer of the model matches the targets');
  const initOpts = { rank: opts.rank, alpha: opts.alpha, niter: opts.niter, seed: opts.seed };
  const scaling = scalingOf(initOpts);
  const modules: TrainedAdapter<F>['modules'] = new Map();
  for (const [i, l] of layers.entries()) {
    const w = m.weights.get(l.name) as Tensor<F>;
    const init = await method.init(w, { ...initOpts, seed: (opts.seed ?? 0) + i });
    if (init.residual !== undefined) w.data.set(init.residual.data);
    const A = init.tensors.A as Tensor<F>;
    const B = init.tensors.B as Tensor<F>;
    const module = l.name.slice(0, -'.weight'.length);
    const term = loraTerm(A, B, scaling);
    m.adapters.set(module, term);
    modules.set(module, { term, stateA: adamwState(A.data.length), stateB: adamwState(B.data.length), init: { A: tensor(A.dtype, A.shape, A.data.slice() as Storage<F>), B: tensor(B.dtype, B.shape, B.data.slice() as Storage<F>) } });
  }
  return { method: opts.method, scaling, modules };
}

/** Runs `opts.steps` optimizer steps on the training sequences; returns the loss of each step. */
export async function train<F extends FloatDType>(m: LlamaModel<F>, adapter: TrainedAdapter<F>, data: readonly Sequence[], opts: TrainOptions, startStep = 0): Promise<number[]> {
  if (data.length === 0) throw new LowrankError('E_USAGE', 'no training sequences (the data is shorter than one sequence)');
  const accumulate = opts.accumulate ?? 1;
  const order = shuffled(data, opts.seed ?? 0);
  const losses: number[] = [];
  const t = data[0].inputs.length;
  const end = Math.min(opts.steps, opts.stopAt ?? opts.steps);
  for (let step = startStep; step < end; step++) {
    for (const { term } of adapter.modules.values()) {
      term.dA.data.fill(0);
      term.dB.data.fill(0);
    }
    let loss = 0;
    for (let micro = 0; micro < accumulate; micro++) {
      const { inputs, targets } = batchAt(order, opts.batch, step * accumulate + micro);
      const { logits, cache } = await llamaForward(m, inputs, opts.batch);
      const ce = crossEntropy(logits, targets);
      loss += ce.loss / accumulate;
      for (let i = 0; i < ce.dlogits.data.length; i++) ce.dlogits.data[i] /= accumulate;
      await llamaBackward(m, cache, ce.dlogits);
    }
    const grads = [...adapter.modules.values()].flatMap(({ term }) => [term.dA, term.dB]);
    if (opts.clip !== undefined) clipGradNorm(grads, opts.clip);
    const lr = cosineWithWarmup(step, opts.lr, opts.warmup ?? 0, opts.steps);
    for (const { term, stateA, stateB } of adapter.modules.values()) {
      adamwStep(term.A, term.dA, stateA, lr, { weightDecay: opts.weightDecay ?? 0 });
      adamwStep(term.B, term.dB, stateB, lr, { weightDecay: opts.weightDecay ?? 0 });
    }
    losses.push(loss);
    opts.onStep?.({ step: step + 1, loss, lr, tokens: (step + 1) * accumulate * opts.batch * t });
  }
  return losses;
}

/** Mean loss over every target of the sequences, and its perplexity exp(loss). */
export async function evaluate<F extends FloatDType>(m: LlamaModel<F>, data: readonly Sequence[], batch: number): Promise<{ loss: number; perplexity: number; tokens: number }> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i * batch < data.length; i++) {
    const part = data.slice(i * batch, (i + 1) * batch);
    const { inputs, targets } = batchAt(part, part.length, 0);
    const ce = crossEntropy((await llamaForward(m, inputs, part.length)).logits, targets);
    sum += ce.loss * ce.count;
    count += ce.count;
  }
  if (count === 0) throw new LowrankError('E_USAGE', `the evaluation data has no target tokens (all ${IGNORE})`);
  return { loss: sum / count, perplexity: Math.exp(sum / count), tokens: count };
}

/**
 * Writes the trained adapter as a PEFT LoRA folder that applies to the original base model: a
 * plain LoRA as trained, or — for methods that trained over a residual — PEFT's conversion to a
 * rank-2r LoRA, [B | −B0]·[A ; A0] with lora_alpha doubled so the scaling is unchanged.
 */
export async function saveTrainedAdapter<F extends FloatDType>(adapter: TrainedAdapter<F>, out: string, opts: { rank: number; alpha?: number; baseModel: string; overwrite?: boolean }): Promise<LoraConfig> {
  const changesBase = getMethod(adapter.method).changesBase;
  const alpha = opts.alpha ?? opts.rank;
  const modules: LoraModuleTensors[] = [];
  for (const [name, { term, init }] of adapter.modules) {
    if (!changesBase) {
      modules.push({ name, A: encodeFloat(term.A, 'f32'), B: encodeFloat(term.B, 'f32') });
      continue;
    }
    const [r, inF] = term.A.shape;
    const outF = term.B.shape[0];
    const A = tensor('f32', [2 * r, inF]);
    A.data.set(term.A.data, 0);
    A.data.set(init.A.data, r * inF);
    const B = tensor('f32', [outF, 2 * r]);
    for (let i = 0; i < outF; i++) {
      for (let k = 0; k < r; k++) {
        B.data[i * 2 * r + k] = term.B.data[i * r + k];
        B.data[i * 2 * r + r + k] = -init.B.data[i * r + k];
      }
    }
    modules.push({ name, A, B });
  }
  const r = changesBase ? 2 * opts.rank : opts.rank;
  const targets = [...new Set([...adapter.modules.keys()].map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
  return writeAdapter(out, { r, lora_alpha: changesBase ? 2 * alpha : alpha, target_modules: targets, init_lora_weights: true, base_model_name_or_path: opts.baseModel, task_type: 'CAUSAL_LM' }, modules, { overwrite: opts.overwrite, metadata: { lowrank_method: adapter.method } });
}
