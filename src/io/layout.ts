/**
 * How a checkpoint lays out its linear weights, resolved where the weights are read: PyTorch's
 * nn.Linear stores [out, in], GPT-2's Conv1D stores [in, out] (PEFT's fan_in_fan_out). Everything
 * above io asks for layers as [out, in] through these.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { transpose } from '../linalg/lowrank.js';

/** Model types whose linear layers are GPT-2 Conv1D, stored [in, out]. */
const CONV1D_MODELS = new Set(['gpt2', 'openai-gpt']);

/** True when config.json's model_type stores linear weights [in, out] (PEFT's fan_in_fan_out). */
export function isConv1dModel(config: Readonly<Record<string, unknown>> | undefined): boolean {
  return typeof config?.model_type === 'string' && CONV1D_MODELS.has(config.model_type);
}

/** The Conv1D weights of those models (their embeddings and head are stored as usual). */
const CONV1D_WEIGHT = /(^|\.)(c_attn|c_proj|c_fc)\.weight$/;

interface Layout {
  readonly config?: Readonly<Record<string, unknown>>;
}

/** True when the model stores this weight [in, out]. */
export function storedInOut(model: Layout, name: string): boolean {
  return isConv1dModel(model.config) && CONV1D_WEIGHT.test(name);
}

/** The [out, in] of a stored 2-D weight. */
export function outIn(model: Layout, name: string, shape: readonly number[]): [number, number] {
  return storedInOut(model, name) ? [shape[1], shape[0]] : [shape[0], shape[1]];
}

/** A stored 2-D weight as [out, in] (a transposed copy where the checkpoint stores it [in, out]). */
export function asOutIn<F extends FloatDType>(model: Layout, name: string, stored: Tensor<F>): Tensor<F> {
  return storedInOut(model, name) ? transpose(stored) : stored;
}

/** Every 2-D weight of a model as its module's [out, in] (module name without `.weight`). */
export function linearShapes(model: Layout & { readonly tensors: readonly { readonly name: string; readonly shape: readonly number[] }[] }): Map<string, readonly [number, number]> {
  const out = new Map<string, readonly [number, number]>();
  for (const t of model.tensors) if (t.shape.length === 2 && t.name.endsWith('.weight')) out.set(t.name.slice(0, -'.weight'.length), outIn(model, t.name, t.shape));
  return out;
}
