/**
 * The MLP nonlinearities, elementwise: SwiGLU's silu(gate) ⊙ up (Llama) and GPT-2's tanh GELU
 * ("gelu_new"), each with its backward.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

const sigmoid = (a: number): number => 1 / (1 + Math.exp(-a));

/** h = silu(gate) ⊙ up. */
export function swigluForward<F extends FloatDType>(gate: Tensor<F>, up: Tensor<F>): Tensor<F> {
  const h = tensor(gate.dtype, gate.shape);
  for (let i = 0; i < h.data.length; i++) {
    const a = gate.data[i];
    h.data[i] = a * sigmoid(a) * up.data[i];
  }
  return h;
}

/** dgate = dh ⊙ up ⊙ σ(a)(1 + a(1 − σ(a))), dup = dh ⊙ silu(a). */
export function swigluBackward<F extends FloatDType>(gate: Tensor<F>, up: Tensor<F>, dh: Tensor<F>): { dgate: Tensor<F>; dup: Tensor<F> } {
  const dgate = tensor(gate.dtype, gate.shape);
  const dup = tensor(up.dtype, up.shape);
  for (let i = 0; i < dh.data.length; i++) {
    const a = gate.data[i];
    const s = sigmoid(a);
    dgate.data[i] = dh.data[i] * up.data[i] * s * (1 + a * (1 - s));
    dup.data[i] = dh.data[i] * a * s;
  }
  return { dgate, dup };
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
