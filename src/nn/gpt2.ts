/**
 * GPT-2 with an explicit forward and backward over token ids [B, T]:
 *
 *   x = wte[ids] + wpe[pos]; per layer: a = x + c_proj(attn(split(c_attn(ln_1(x)))))
 *                                       x = a + mlp.c_proj(gelu(mlp.c_fc(ln_2(a))))
 *   logits = ln_f(x)·wteᵀ
 *
 * GPT-2 stores its Conv1D weights [in, out] (PEFT's fan_in_fan_out); they are transposed to
 * [out, in] at load, so linear layers and adapters (lora_A [r, in], lora_B [out, r]) are the same as
 * Llama's. Gradients of base weights come out in that [out, in] orientation.
 */
import { asOutIn } from '../io/layout.js';
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { Model } from '../io/hf.js';
import { attentionBackward, attentionCachedForward, attentionForward, type AttentionCache, type AttentionShape } from './attention.js';
import { kvWrite, lastRows, newTokens, positions, type KvCache } from './kvcache.js';
import { geluBackward, geluForward } from './activations.js';
import { embeddingBackward, embeddingForward } from './embedding.js';
import { linearBackward, linearForward, type LinearAdapter } from './linear.js';
import { addInto, linearOf, sum, weight } from './weights.js';
import { layerNormBackward, layerNormForward, type LayerNormCache } from './norm.js';

export interface Gpt2Config {
  readonly vocabSize: number;
  readonly positions: number;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly eps: number;
}

export function gpt2ConfigOf(c: Readonly<Record<string, unknown>>, file?: string): Gpt2Config {
  const num = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new LowrankError('E_FORMAT', `config.json: ${k} must be a number`, { file });
    return v;
  };
  if (c.model_type !== undefined && c.model_type !== 'gpt2') throw new LowrankError('E_UNSUPPORTED', `model_type '${String(c.model_type)}' is not gpt2`, { file });
  return { vocabSize: num('vocab_size'), positions: num('n_positions'), hidden: num('n_embd'), layers: num('n_layer'), heads: num('n_head'), eps: num('layer_norm_epsilon', 1e-5) };
}

export interface Gpt2Model<F extends FloatDType> {
  readonly config: Gpt2Config;
  readonly dtype: F;
  /** By Hugging Face name; Conv1D weights already [out, in]. */
  readonly weights: ReadonlyMap<string, Tensor<F>>;
  readonly adapters: Map<string, LinearAdapter<F>>;
}


/** Loads a GPT-2 folder as `dtype` (names without the `transformer.` prefix get it). */
export async function loadGpt2<F extends FloatDType>(model: Model, dtype: F): Promise<Gpt2Model<F>> {
  if (model.config === undefined) throw new LowrankError('E_FORMAT', 'the model folder has no config.json', { file: model.path });
  const config = gpt2ConfigOf(model.config, model.path);
  const weights = new Map<string, Tensor<F>>();
  for (const t of model.tensors) {
    const name = t.name.startsWith('transformer.') || t.name.startsWith('lm_head.') ? t.name : `transformer.${t.name}`;
    const x = await model.readAs(t.name, dtype);
    weights.set(name, asOutIn(model, name, x)); // Conv1D's [in, out] as [out, in]
  }
  for (const n of ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.ln_f.weight']) if (!weights.has(n)) throw new LowrankError('E_NOT_FOUND', `missing tensor ${n}`, { file: model.path });
  return { config, dtype, weights, adapters: new Map() };
}

interface LayerCache<F extends FloatDType> {
  x: Tensor<F>;
  n1: Tensor<F>;
  ln1: LayerNormCache;
  q: Tensor<F>;
  k: Tensor<F>;
  v: Tensor<F>;
  att: AttentionCache<F>;
  o: Tensor<F>;
  a: Tensor<F>;
  n2: Tensor<F>;
  ln2: LayerNormCache;
  fc: Tensor<F>;
  act: Tensor<F>;
}

export interface Gpt2Cache<F extends FloatDType> {
  readonly ids: Int32Array;
  readonly shape: AttentionShape;
  readonly layers: LayerCache<F>[];
  readonly xFinal: Tensor<F>;
  readonly nFinal: Tensor<F>;
  readonly lnFinal: LayerNormCache;
}

/** Columns [from, from + width) of x [N, cols]. */
function cols<F extends FloatDType>(x: Tensor<F>, from: number, width: number): Tensor<F> {
  const [n, c] = x.shape;
  const out = tensor(x.dtype, [n, width]);
  for (let i = 0; i < n; i++) out.data.set(x.data.subarray(i * c + from, i * c + from + width), i * width);
  return out;
}

export async function gpt2Forward<F extends FloatDType>(m: Gpt2Model<F>, ids: Int32Array, batch: number): Promise<{ logits: Tensor<F>; cache: Gpt2Cache<F> }> {
  const c = m.config;
  if (ids.length % batch !== 0) throw new LowrankError('E_SHAPE', `${ids.length} token ids do not split into ${batch} sequences`);
  const t = ids.length / batch;
  if (t > c.positions) throw new LowrankError('E_SHAPE', `sequences of ${t} tokens exceed n_positions ${c.positions}`);
  const C = c.hidden;
  const shape: AttentionShape = { batch, t, heads: c.heads, kvHeads: c.heads, headDim: C / c.heads };
  let x = embeddingForward(weight(m, 'transformer.wte.weight'), ids);
  const wpe = weight(m, 'transformer.wpe.weight');
  for (let i = 0; i < ids.length; i++) for (let j = 0; j < C; j++) x.data[i * C + j] += wpe.data[(i % t) * C + j];
  const layers: LayerCache<F>[] = [];
  for (let l = 0; l < c.layers; l++) {
    const p = `transformer.h.${l}`;
    const { y: n1, cache: ln1 } = layerNormForward(x, weight(m, `${p}.ln_1.weight`), weight(m, `${p}.ln_1.bias`), c.eps);
    const qkv = await linearForward(linearOf(m, `${p}.attn.c_attn`), n1);
    const [q, k, v] = [cols(qkv, 0, C), cols(qkv, C, C), cols(qkv, 2 * C, C)];
    const { o, cache: att } = await attentionForward(q, k, v, shape);
    const a = sum(x, await linearForward(linearOf(m, `${p}.attn.c_proj`), o));
    const { y: n2, cache: ln2 } = layerNormForward(a, weight(m, `${p}.ln_2.weight`), weight(m, `${p}.ln_2.bias`), c.eps);
    const fc = await linearForward(linearOf(m, `${p}.mlp.c_fc`), n2);
    const act = geluForward(fc);
    layers.push({ x, n1, ln1, q, k, v, att, o, a, n2, ln2, fc, act });
    x = sum(a, await linearForward(linearOf(m, `${p}.mlp.c_proj`), act));
  }
  const { y: nFinal, cache: lnFinal } = layerNormForward(x, weight(m, 'transformer.ln_f.weight'), weight(m, 'transformer.ln_f.bias'), c.eps);
  const logits = await linearForward({ weight: weight(m, 'transformer.wte.weight') }, nFinal);
  return { logits, cache: { ids, shape, layers, xFinal: x, nFinal, lnFinal } };
}

/**
 * Inference: appends t tokens per sequence, ids [B·t], to the cache and returns the logits of each
 * sequence's last new token [B, vocab] (gpt2Forward's arithmetic, positions from the cache).
 */
export async function gpt2Step<F extends FloatDType>(m: Gpt2Model<F>, cache: KvCache<F>, ids: Int32Array): Promise<Tensor<F>> {
  const c = m.config;
  const C = c.hidden;
  const t = newTokens(cache, ids);
  const pos = positions(cache, t);
  let x = embeddingForward(weight(m, 'transformer.wte.weight'), ids);
  const wpe = weight(m, 'transformer.wpe.weight');
  for (const [i, p] of pos.entries()) {
    if (p >= c.positions) throw new LowrankError('E_SHAPE', `position ${p} exceeds n_positions ${c.positions}`);
    for (let j = 0; j < C; j++) x.data[i * C + j] += wpe.data[p * C + j];
  }
  for (let l = 0; l < c.layers; l++) {
    const p = `transformer.h.${l}`;
    const { y: n1 } = layerNormForward(x, weight(m, `${p}.ln_1.weight`), weight(m, `${p}.ln_1.bias`), c.eps);
    const qkv = await linearForward(linearOf(m, `${p}.attn.c_attn`), n1);
    kvWrite(cache, l, cols(qkv, C, C), cols(qkv, 2 * C, C), t);
    const o = await attentionCachedForward(cols(qkv, 0, C), cache, l, t, c.heads);
    const a = sum(x, await linearForward(linearOf(m, `${p}.attn.c_proj`), o));
    const { y: n2 } = layerNormForward(a, weight(m, `${p}.ln_2.weight`), weight(m, `${p}.ln_2.bias`), c.eps);
    x = sum(a, await linearForward(linearOf(m, `${p}.mlp.c_proj`), geluForward(await linearForward(linearOf(m, `${p}.mlp.c_fc`), n2))));
  }
  cache.length += t;
  const { y: nFinal } = layerNormForward(lastRows(x, cache.batch, t), weight(m, 'transformer.ln_f.weight'), weight(m, 'transformer.ln_f.bias'), c.eps);
  return linearForward({ weight: weight(m, 'transformer.wte.weight') }, nFinal);
}

export async function gpt2Backward<F extends FloatDType>(m: Gpt2Model<F>, cache: Gpt2Cache<F>, dlogits: Tensor<F>, grads: ReadonlyMap<string, Tensor<F>> = new Map()): Promise<void> {
  const c = m.config;
  const C = c.hidden;
  const g = (name: string): Tensor<F> | undefined => grads.get(name);
  const linGrads = (module: string) => ({ weight: g(`${module}.weight`), bias: g(`${module}.bias`) });
  const dn = await linearBackward({ weight: weight(m, 'transformer.wte.weight') }, cache.nFinal, dlogits, { weight: g('transformer.wte.weight') });
  let dx = layerNormBackward(cache.xFinal, weight(m, 'transformer.ln_f.weight'), cache.lnFinal, dn, g('transformer.ln_f.weight'), g('transformer.ln_f.bias'));
  for (let l = c.layers - 1; l >= 0; l--) {
    const p = `transformer.h.${l}`;
    const L = cache.layers[l];
    const dact = await linearBackward(linearOf(m, `${p}.mlp.c_proj`), L.act, dx, linGrads(`${p}.mlp.c_proj`));
    const dn2 = await linearBackward(linearOf(m, `${p}.mlp.c_fc`), L.n2, geluBackward(L.fc, dact), linGrads(`${p}.mlp.c_fc`));
    const da = layerNormBackward(L.a, weight(m, `${p}.ln_2.weight`), L.ln2, dn2, g(`${p}.ln_2.weight`), g(`${p}.ln_2.bias`));
    addInto(da, dx);
    const dout = await linearBackward(linearOf(m, `${p}.attn.c_proj`), L.o, da, linGrads(`${p}.attn.c_proj`));
    const { dq, dk, dv } = await attentionBackward(L.q, L.k, L.v, cache.shape, L.att, dout);
    const n = dq.shape[0];
    const dqkv = tensor(dq.dtype, [n, 3 * C]);
    for (let i = 0; i < n; i++) {
      dqkv.data.set(dq.data.subarray(i * C, (i + 1) * C), i * 3 * C);
      dqkv.data.set(dk.data.subarray(i * C, (i + 1) * C), i * 3 * C + C);
      dqkv.data.set(dv.data.subarray(i * C, (i + 1) * C), i * 3 * C + 2 * C);
    }
    const dn1 = await linearBackward(linearOf(m, `${p}.attn.c_attn`), L.n1, dqkv, linGrads(`${p}.attn.c_attn`));
    const dxl = layerNormBackward(L.x, weight(m, `${p}.ln_1.weight`), L.ln1, dn1, g(`${p}.ln_1.weight`), g(`${p}.ln_1.bias`));
    addInto(dxl, da);
    dx = dxl;
  }
  const dwte = g('transformer.wte.weight');
  if (dwte !== undefined) embeddingBackward(dwte, cache.ids, dx);
  const dwpe = g('transformer.wpe.weight');
  if (dwpe !== undefined) {
    const t = cache.shape.t;
    for (let i = 0; i < cache.ids.length; i++) for (let j = 0; j < C; j++) dwpe.data[(i % t) * C + j] += dx.data[i * C + j];
  }
}
