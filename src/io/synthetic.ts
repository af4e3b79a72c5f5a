/**
 * Synthetic checkpoints: the tensor names, shapes and config.json of Llama- and GPT-2-shaped models,
 * filled lazily with seeded random weights. Tests, benchmarks and the tour make their models here
 * instead of downloading any.
 */
import { encodeFloat, tensor, type TensorSpec } from '../core/tensor.js';
import { rng } from '../core/rng.js';
import type { TensorSource } from './safetensors/writer.js';

/** The Llama config fields that decide tensor shapes (Hugging Face names). */
export interface LlamaShape {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  tie_word_embeddings?: boolean;
}

/** A Llama config.json for these shapes, as transformers writes it. */
export function llamaConfig(s: LlamaShape, dtype: 'bfloat16' | 'float32' | 'float16' = 'bfloat16'): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    torch_dtype: dtype,
    ...s,
    tie_word_embeddings: s.tie_word_embeddings ?? false,
  };
}

/** Every tensor of a Llama checkpoint with these shapes, in the order transformers saves them. */
export function llamaTensors(s: LlamaShape): TensorSpec[] {
  const h = s.hidden_size;
  const hd = h / s.num_attention_heads;
  const kv = s.num_key_value_heads * hd;
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', dtype: 'f32', shape: [s.vocab_size, h] }];
  for (let i = 0; i < s.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, dtype: 'f32', shape: [h] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: 'f32', shape: [h, h] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: 'f32', shape: [kv, h] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: 'f32', shape: [kv, h] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: 'f32', shape: [h, h] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: 'f32', shape: [h] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: 'f32', shape: [s.intermediate_size, h] },
      { name: `${p}.mlp.up_proj.weight`, dtype: 'f32', shape: [s.intermediate_size, h] },
      { name: `${p}.mlp.down_proj.weight`, dtype: 'f32', shape: [h, s.intermediate_size] },
    );
  }
  specs.push({ name: 'model.norm.weight', dtype: 'f32', shape: [h] });
  if (!(s.tie_word_embeddings ?? false)) specs.push({ name: 'lm_head.weight', dtype: 'f32', shape: [s.vocab_size, h] });
  return specs;
}

/** The GPT-2 config fields that decide tensor shapes. */
export interface Gpt2Shape {
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_positions: number;
  vocab_size: number;
}

/** A GPT-2 config.json for these shapes. */
export function gpt2Config(s: Gpt2Shape): Record<string, unknown> {
  return { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_inner: null, torch_dtype: 'float32', ...s };
}

/** Every tensor of a GPT-2 checkpoint; Conv1D weights are stored [in, out], as GPT-2 does. */
export function gpt2Tensors(s: Gpt2Shape): TensorSpec[] {
  const e = s.n_embd;
  const specs: TensorSpec[] = [
    { name: 'transformer.wte.weight', dtype: 'f32', shape: [s.vocab_size, e] },
    { name: 'transformer.wpe.weight', dtype: 'f32', shape: [s.n_positions, e] },
  ];
  for (let i = 0; i < s.n_layer; i++) {
    const p = `transformer.h.${i}`;
    for (const ln of ['ln_1', 'ln_2']) specs.push({ name: `${p}.${ln}.weight`, dtype: 'f32', shape: [e] }, { name: `${p}.${ln}.bias`, dtype: 'f32', shape: [e] });
    for (const [mod, din, dout] of [['attn.c_attn', e, 3 * e], ['attn.c_proj', e, e], ['mlp.c_fc', e, 4 * e], ['mlp.c_proj', 4 * e, e]] as const) {
      specs.push({ name: `${p}.${mod}.weight`, dtype: 'f32', shape: [din, dout] }, { name: `${p}.${mod}.bias`, dtype: 'f32', shape: [dout] });
    }
  }
  specs.push({ name: 'transformer.ln_f.weight', dtype: 'f32', shape: [e] }, { name: 'transformer.ln_f.bias', dtype: 'f32', shape: [e] });
  return specs;
}

/**
 * Lazy sources with seeded weights for these specs, stored as `dtype`: matrices ~ N(0, std²),
 * norm weights 1 and biases 0 (1-D tensors whose name ends in `bias` are 0, other 1-D tensors 1).
 * Each tensor's values depend only on the seed and its position, so a tensor is made only when the
 * writer asks for it.
 */
export function randomWeights(specs: readonly TensorSpec[], opts: { seed: number; dtype: 'f32' | 'bf16' | 'f16'; std?: number }): TensorSource[] {
  return specs.map((spec, i) => ({
    name: spec.name,
    dtype: opts.dtype,
    shape: spec.shape,
    data: () => {
      const t = tensor('f32', spec.shape);
      if (spec.shape.length >= 2) rng(opts.seed * 100003 + i).fillNormal(t.data, 0, opts.std ?? 0.02);
      else t.data.fill(spec.name.endsWith('bias') ? 0 : 1);
      return encodeFloat(t, opts.dtype).data;
    },
  }));
}
