/**
 * The Llama family (Llama, Qwen2, Mistral, SmolLM config fields) with an explicit forward and
 * backward over token ids [B, T]:
 *
 *   x = E[ids]; per layer: h = x + o(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rms(x)
 *                          x = h + down(silu(gate(n2)) ⊙ up(n2)),          n2 = rms(h)
 *   logits = lm_head(rms(x))   (lm_head = E when tie_word_embeddings)
 *
 * Every linear layer can carry an adapter (LinearAdapter); gradients of the base weights are
 * accumulated only into the buffers passed in `grads` (adapter training leaves them out).
 */
import { LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { Model } from '../io/hf.js';
import { attentionBackward, attentionCachedForward, attentionForward, type AttentionCache, type AttentionShape } from './attention.js';
import { kvWrite, lastRows, newTokens, positions, type KvCache } from './kvcache.js';
import { swigluBackward, swigluForward } from './activations.js';
import { embeddingBackward, embeddingForward } from './embedding.js';
import { linearBackward, linearForward, type LinearAdapter } from './linear.js';
import { addInto, linearOf, sum, weight } from './weights.js';
import { rmsNormBackward, rmsNormForward, type RmsNormCache } from './norm.js';
import { ropeApply, ropeTables, ropeTablesAt } from './rope.js';

/** The config.json fields the architecture needs. */
export interface LlamaConfig {
  readonly vocabSize: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  readonly tieEmbeddings: boolean;
  /** max_position_embeddings: the longest sequence the model was trained for. */
  readonly context: number;
  /** Qwen2 has biases on q, k and v. */
  readonly qkvBias: boolean;
}

const LLAMA_TYPES = new Set(['llama', 'qwen2', 'mistral']);

/** Reads a config.json object (Llama, Qwen2, Mistral, SmolLM = llama). */
export function llamaConfigOf(c: Readonly<Record<string, unknown>>, file?: string): LlamaConfig {
  const num = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new LowrankError('E_FORMAT', `config.json: ${k} must be a number`, { file });
    return v;
  };
  if (typeof c.model_type === 'string' && !LLAMA_TYPES.has(c.model_type)) throw new LowrankError('E_UNSUPPORTED', `model_type '${c.model_type}' is not a Llama-family model (llama, qwen2, mistral)`, { file });
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  const kvHeads = num('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw new LowrankError('E_FORMAT', `config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, { file });
  return {
    vocabSize: num('vocab_size'),
    hidden,
    intermediate: num('intermediate_size'),
    layers: num('num_hidden_layers'),
    heads,
    kvHeads,
    headDim: typeof c.head_dim === 'number' ? c.head_dim : hidden / heads,
    rmsEps: num('rms_norm_eps', 1e-6),
    ropeTheta: typeof (c.rope_parameters as { rope_theta?: unknown } | undefined)?.rope_theta === 'number' ? ((c.rope_parameters as { rope_theta: number }).rope_theta) : num('rope_theta', 10000),
    tieEmbeddings: c.tie_word_embeddings === true,
    context: num('max_position_embeddings', 2048),
    qkvBias: c.model_type === 'qwen2',
  };
}

/** The weights by Hugging Face name, in one float dtype, plus an adapter per linear module. */
export interface LlamaModel<F extends FloatDType> {
  readonly config: LlamaConfig;
  readonly dtype: F;
  readonly weights: ReadonlyMap<string, Tensor<F>>;
  /** Adapters by module name (e.g. model.layers.0.self_attn.q_proj). */
  readonly adapters: Map<string, LinearAdapter<F>>;
}

/** Loads every weight of a Llama-family folder as `dtype`. */
export async function loadLlama<F extends FloatDType>(model: Model, dtype: F): Promise<LlamaModel<F>> {
  if (model.config === undefined) throw new LowrankError('E_FORMAT', 'the model folder has no config.json', { file: model.path });
  const config = llamaConfigOf(model.config, model.path);
  const weights = new Map<string, Tensor<F>>();
  for (const t of model.tensors) weights.set(t.name, await model.readAs(t.name, dtype));
  const need = ['model.embed_tokens.weight', 'model.norm.weight', ...(config.tieEmbeddings ? [] : ['lm_head.weight'])];
  for (const n of need) if (!weights.has(n)) throw new LowrankError('E_NOT_FOUND', `missing tensor ${n}`, { file: model.path });
  return { config, dtype, weights, adapters: new Map() };
}

interface LayerCache<F extends FloatDType> {
  x: Tensor<F>;
  n1: Tensor<F>;
  rms1: RmsNormCache<F>;
  q: Tensor<F>;
  k: Tensor<F>;
  v: Tensor<F>;
  att: AttentionCache<F>;
  a: Tensor<F>;
  h: Tensor<F>;
  n2: Tensor<F>;
  rms2: RmsNormCache<F>;
  gate: Tensor<F>;
  up: Tensor<F>;
  act: Tensor<F>;
}

/** What the backward pass needs from the forward pass. */
export interface LlamaCache<F extends FloatDType> {
  readonly ids: Int32Array;
  readonly shape: AttentionShape;
  readonly layers: LayerCache<F>[];
  readonly xFinal: Tensor<F>;
  readonly nFinal: Tensor<F>;
  readonly rmsFinal: RmsNormCache<F>;
}

/** logits [B·T, vocab] for ids [B·T] (batch-major, T per sequence), and the cache for backward. */
export async function llamaForward<F extends FloatDType>(m: LlamaModel<F>, ids: Int32Array, batch: number): Promise<{ logits: Tensor<F>; cache: LlamaCache<F> }> {
  const c = m.config;
  if (ids.length % batch !== 0) throw new LowrankError('E_SHAPE', `${ids.length} token ids do not split into ${batch} sequences`);
  const t = ids.length / batch;
  const shape: AttentionShape = { batch, t, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim };
  const tables = ropeTables(t, c.headDim, c.ropeTheta);
  let x = embeddingForward(weight(m, 'model.embed_tokens.weight'), ids);
  const layers: LayerCache<F>[] = [];
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const { y: n1, cache: rms1 } = await rmsNormForward(x, weight(m, `${p}.input_layernorm.weight`), c.rmsEps);
    const q = await linearForward(linearOf(m, `${p}.self_attn.q_proj`, c.qkvBias), n1);
    const k = await linearForward(linearOf(m, `${p}.self_attn.k_proj`, c.qkvBias), n1);
    const v = await linearForward(linearOf(m, `${p}.self_attn.v_proj`, c.qkvBias), n1);
    ropeApply(q, t, c.headDim, tables);
    ropeApply(k, t, c.headDim, tables);
    const { o: a, cache: att } = await attentionForward(q, k, v, shape);
    const h = sum(x, await linearForward(linearOf(m, `${p}.self_attn.o_proj`, false), a));
    const { y: n2, cache: rms2 } = await rmsNormForward(h, weight(m, `${p}.post_attention_layernorm.weight`), c.rmsEps);
    const gate = await linearForward(linearOf(m, `${p}.mlp.gate_proj`, false), n2);
    const up = await linearForward(linearOf(m, `${p}.mlp.up_proj`, false), n2);
    const act = await swigluForward(gate, up);
    layers.push({ x, n1, rms1, q, k, v, att, a, h, n2, rms2, gate, up, act });
    x = sum(h, await linearForward(linearOf(m, `${p}.mlp.down_proj`, false), act));
  }
  const { y: nFinal, cache: rmsFinal } = await rmsNormForward(x, weight(m, 'model.norm.weight'), c.rmsEps);
  const logits = await linearForward({ weight: weight(m, c.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), adapter: m.adapters.get('lm_head') }, nFinal);
  return { logits, cache: { ids, shape, layers, xFinal: x, nFinal, rmsFinal } };
}

/**
 * Inference: appends t tokens per sequence, ids [B·t], to the cache (their keys and values, after
 * RoPE at their positions) and returns the logits of each sequence's last new token [B, vocab].
 * The same arithmetic as llamaForward, without what only the backward pass needs.
 */
export async function llamaStep<F extends FloatDType>(m: LlamaModel<F>, cache: KvCache<F>, ids: Int32Array): Promise<Tensor<F>> {
  const c = m.config;
  const t = newTokens(cache, ids);
  const tables = ropeTablesAt(positions(cache, t), c.headDim, c.ropeTheta);
  const n = ids.length;
  let x = embeddingForward(weight(m, 'model.embed_tokens.weight'), ids);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const { y: n1 } = await rmsNormForward(x, weight(m, `${p}.input_layernorm.weight`), c.rmsEps);
    const q = await linearForward(linearOf(m, `${p}.self_attn.q_proj`, c.qkvBias), n1);
    const k = await linearForward(linearOf(m, `${p}.self_attn.k_proj`, c.qkvBias), n1);
    const v = await linearForward(linearOf(m, `${p}.self_attn.v_proj`, c.qkvBias), n1);
    ropeApply(q, n, c.headDim, tables);
    ropeApply(k, n, c.headDim, tables);
    kvWrite(cache, l, k, v, t);
    const a = await attentionCachedForward(q, cache, l, t, c.heads);
    const h = sum(x, await linearForward(linearOf(m, `${p}.self_attn.o_proj`, false), a));
    const { y: n2 } = await rmsNormForward(h, weight(m, `${p}.post_attention_layernorm.weight`), c.rmsEps);
    const gate = await linearForward(linearOf(m, `${p}.mlp.gate_proj`, false), n2);
    const up = await linearForward(linearOf(m, `${p}.mlp.up_proj`, false), n2);
    x = sum(h, await linearForward(linearOf(m, `${p}.mlp.down_proj`, false), await swigluForward(gate, up)));
  }
  cache.length += t;
  const { y: nFinal } = await rmsNormForward(lastRows(x, cache.batch, t), weight(m, 'model.norm.weight'), c.rmsEps);
  return linearForward({ weight: weight(m, c.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), adapter: m.adapters.get('lm_head') }, nFinal);
}

/**
 * Backpropagates dlogits through the model: adapters accumulate their own gradients; base
 * weights accumulate into `grads` where a buffer for their name is given.
 */
export async function llamaBackward<F extends FloatDType>(m: LlamaModel<F>, cache: LlamaCache<F>, dlogits: Tensor<F>, grads: ReadonlyMap<string, Tensor<F>> = new Map()): Promise<void> {
  const c = m.config;
  const g = (name: string): Tensor<F> | undefined => grads.get(name);
  const linGrads = (module: string) => ({ weight: g(`${module}.weight`), bias: g(`${module}.bias`) });
  const { t } = cache.shape;
  const tables = ropeTables(t, c.headDim, c.ropeTheta);
  const headName = c.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const dn = await linearBackward({ weight: weight(m, headName), adapter: m.adapters.get('lm_head') }, cache.nFinal, dlogits, { weight: g(headName) });
  let dx = await rmsNormBackward(cache.xFinal, weight(m, 'model.norm.weight'), cache.rmsFinal, dn, g('model.norm.weight'));
  for (let l = c.layers - 1; l >= 0; l--) {
    const p = `model.layers.${l}`;
    const L = cache.layers[l];
    // x_out = h + down(act): dh gets dx directly and through the MLP.
    const dact = await linearBackward(linearOf(m, `${p}.mlp.down_proj`, false), L.act, dx, linGrads(`${p}.mlp.down_proj`));
    const { dgate, dup } = await swigluBackward(L.gate, L.up, dact);
    const dn2 = await linearBackward(linearOf(m, `${p}.mlp.gate_proj`, false), L.n2, dgate, linGrads(`${p}.mlp.gate_proj`));
    const dn2b = await linearBackward(linearOf(m, `${p}.mlp.up_proj`, false), L.n2, dup, linGrads(`${p}.mlp.up_proj`));
    addInto(dn2, dn2b);
    const dh = await rmsNormBackward(L.h, weight(m, `${p}.post_attention_layernorm.weight`), L.rms2, dn2, g(`${p}.post_attention_layernorm.weight`));
    addInto(dh, dx);
    // h = x + o(attn): dx gets dh directly and through attention.
    const da = await linearBackward(linearOf(m, `${p}.self_attn.o_proj`, false), L.a, dh, linGrads(`${p}.self_attn.o_proj`));
    const { dq, dk, dv } = await attentionBackward(L.q, L.k, L.v, cache.shape, L.att, da);
    ropeApply(dq, t, c.headDim, tables, true);
    ropeApply(dk, t, c.headDim, tables, true);
    const dn1 = await linearBackward(linearOf(m, `${p}.self_attn.q_proj`, c.qkvBias), L.n1, dq, linGrads(`${p}.self_attn.q_proj`));
    for (const [name, d] of [['k_proj', dk], ['v_proj', dv]] as const) {
      const part = await linearBackward(linearOf(m, `${p}.self_attn.${name}`, c.qkvBias), L.n1, d, linGrads(`${p}.self_attn.${name}`));
      addInto(dn1, part);
    }
    const dxl = await rmsNormBackward(L.x, weight(m, `${p}.input_layernorm.weight`), L.rms1, dn1, g(`${p}.input_layernorm.weight`));
    addInto(dxl, dh);
    dx = dxl;
  }
  const dE = g('model.embed_tokens.weight');
  if (dE !== undefined) embeddingBackward(dE, cache.ids, dx);
}
