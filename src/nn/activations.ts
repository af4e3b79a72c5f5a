/**
 * The MLP nonlinearities, elementwise: SwiGLU's silu(gate) ⊙ up (Llama) and GPT-2's tanh GELU
 * ("gelu_new"), each with its backward.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';

/** h = silu(gate) ⊙ up, silu(a) = a·σ(a) = a / (1 + e^(−a)) (on the backend). */
export async function swigluForward<F extends FloatDType>(gate: Tensor<F>, up: Tensor<F>): Promise<Tensor<F>> {
  return tensor(gate.dtype, gate.shape, await backend().swiglu(gate.data, up.data));
}

/** dgate = dh ⊙ up ⊙ σ(a)(1 + a(1 − σ(a))), dup = dh ⊙ silu(a). */
export async function swigluBackward<F extends FloatDType>(gate: Tensor<F>, up: Tensor<F>, dh: Tensor<F>): Promise<{ dgate: Tensor<F>; dup: Tensor<F> }> {
  const { dgate, dup } = await backend().swigluBackward(dh.data, gate.data, up.data);
  return { dgate: tensor(gate.dtype, gate.shape, dgate), dup: tensor(up.dtype, up.shape, dup) };
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluForward<F extends FloatDType>(x: Tensor<F>): Tensor<F> {
  const y = tensor(x.dtype, x.shape);
  for (let i = 0; i < y.data.length; i++) {
    const a = x.data[i];
    y.data[i] = 0.5 * a * (1 + Math.tanh(GELU_C * (a + 0.044715 * a * a * a)));
  }
  return y;
}

export function geluBackward<F extends FloatDType>(x: Tensor<F>, dy: Tensor<F>): Tensor<F> {
  const dx = tensor(x.dtype, x.shape);
  for (let i = 0; i < dx.data.length; i++) {
    const a = x.data[i];
    const u = GELU_C * (a + 0.044715 * a * a * a);
    const th = Math.tanh(u);
    const du = GELU_C * (1 + 3 * 0.044715 * a * a);
    dx.data[i] = dy.data[i] * (0.5 * (1 + th) + 0.5 * a * (1 - th * th) * du);
  }
  return dx;
}
