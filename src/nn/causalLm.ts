/**
 * The model families behind one interface, for the training loop and evaluation: a causal LM
 * gives logits for token ids and the backward pass of that forward. Which family a folder holds
 * comes from config.json's model_type (gpt2, or the Llama family: llama, qwen2, mistral).
 */
import { LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { Model } from '../io/hf.js';
import { gpt2Backward, gpt2Forward, gpt2Step, loadGpt2, type Gpt2Cache, type Gpt2Model } from './gpt2.js';
import { llamaBackward, llamaForward, llamaStep, loadLlama, type LlamaCache, type LlamaModel } from './llama.js';
import { kvCache, type KvCache } from './kvcache.js';
import type { ModelWeights } from './weights.js';

export type Family = 'llama' | 'gpt2';

export interface CausalLm<F extends FloatDType> extends ModelWeights<F> {
  readonly family: Family;
  readonly dtype: F;
  /**
   * PEFT's fan_in_fan_out: the checkpoint stores the linear weights [in, out] (GPT-2's Conv1D).
   * `weights` always hold them [out, in]; adapters are the same either way.
   */
  readonly fanInFanOut: boolean;
  /** The longest sequence the model takes: max_position_embeddings (Llama), n_positions (GPT-2). */
  readonly context: number;
  /** logits [B·T, vocab] for ids [B·T] (T per sequence), and the backward pass of this forward. */
  forward(ids: Int32Array, batch: number): Promise<{ logits: Tensor<F>; backward(dlogits: Tensor<F>): Promise<void> }>;
  /** An empty KV cache for `batch` sequences of up to `capacity` tokens (`start`: rows of left padding). */
  kvCache(batch: number, capacity: number, start?: Int32Array): KvCache<F>;
  /** Inference: appends ids [B·t] to the cache; the logits of each sequence's last new token [B, vocab]. */
  step(cache: KvCache<F>, ids: Int32Array): Promise<Tensor<F>>;
}

/** What a family gives the interface. */
interface FamilyParts<F extends FloatDType, M, C> {
  readonly forward: (m: M, ids: Int32Array, batch: number) => Promise<{ logits: Tensor<F>; cache: C }>;
  readonly backward: (m: M, cache: C, dlogits: Tensor<F>) => Promise<void>;
  readonly step: (m: M, cache: KvCache<F>, ids: Int32Array) => Promise<Tensor<F>>;
  readonly layers: number;
  /** Width of a cached key or value row: kvHeads·headDim. */
  readonly kvWidth: number;
  readonly context: number;
}

/** A family's forward, backward and inference step behind the interface. */
function causalLm<F extends FloatDType, M extends ModelWeights<F> & { readonly dtype: F }, C>(family: Family, m: M, parts: FamilyParts<F, M, C>): CausalLm<F> {
  return {
    family,
    dtype: m.dtype,
    weights: m.weights,
    adapters: m.adapters,
    fanInFanOut: family === 'gpt2',
    context: parts.context,
    async forward(ids, batch) {
      const { logits, cache } = await parts.forward(m, ids, batch);
      return { logits, backward: (dlogits) => parts.backward(m, cache, dlogits) };
    },
    kvCache: (batch, capacity, start) => kvCache(m.dtype, { batch, capacity, layers: parts.layers, width: parts.kvWidth }, start),
    step: (cache, ids) => parts.step(m, cache, ids),
  };
}

export const llamaLm = <F extends FloatDType>(m: LlamaModel<F>): CausalLm<F> =>
  causalLm<F, LlamaModel<F>, LlamaCache<F>>('llama', m, { forward: llamaForward, backward: llamaBackward, step: llamaStep, layers: m.config.layers, kvWidth: m.config.kvHeads * m.config.headDim, context: m.config.context });

export const gpt2Lm = <F extends FloatDType>(m: Gpt2Model<F>): CausalLm<F> =>
  causalLm<F, Gpt2Model<F>, Gpt2Cache<F>>('gpt2', m, { forward: gpt2Forward, backward: gpt2Backward, step: gpt2Step, layers: m.config.layers, kvWidth: m.config.hidden, context: m.config.positions });

/** PEFT's default LoRA targets per family (its TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export const DEFAULT_TARGETS: Readonly<Record<Family, readonly string[]>> = { llama: ['q_proj', 'v_proj'], gpt2: ['c_attn'] };

/** The family of a config.json object. */
export function familyOf(config: Readonly<Record<string, unknown>> | undefined, file?: string): Family {
  if (config === undefined) throw new LowrankError('E_FORMAT', 'the model folder has no config.json', { file });
  return config.model_type === 'gpt2' ? 'gpt2' : 'llama';
}

/** Loads every weight of a Llama-family or GPT-2 folder as `dtype`. */
export async function loadCausalLm<F extends FloatDType>(model: Model, dtype: F): Promise<CausalLm<F>> {
  return familyOf(model.config, model.path) === 'gpt2' ? gpt2Lm(await loadGpt2(model, dtype)) : llamaLm(await loadLlama(model, dtype));
}
