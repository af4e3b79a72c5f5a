/**
 * The training term of the methods that train only the middle of a frozen factorization (SVFit's
 * singular values, LoLDU's diagonal and scale): y += c·((x·Vᵀ) ⊙ d)·Uᵀ with U [out, r] and
 * V [r, in] frozen, d [r] trained, and c a trained scalar or the constant 1.
 *   forward   h = x·Vᵀ [N, r];  y += c·(h ⊙ d)·Uᵀ
 *   backward  g = dy·U [N, r];  dd_k += c·Σ_n g_nk·h_nk;  dc += Σ_k d_k·Σ_n g_nk·h_nk;  dx += c·(g ⊙ d)·V
 * The base holds W_res = W − U·diag(d0)·V, so on the original weight the trained layer is
 * W + U·diag(c·d − d0)·V: a LoRA with B = U·diag(c·d − d0), A = V and scaling 1.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul } from '../linalg/matmul.js';
import type { TrainTerm } from './types.js';

export function diagonalTerm<F extends FloatDType>(U: Tensor<F>, d: Tensor<F>, V: Tensor<F>, roles: { d: string; scale?: string }, scale?: Tensor<F>): TrainTerm<F> {
  const [out, r] = U.shape;
  const d0 = d.data.slice();
  const dd = tensor(d.dtype, d.shape);
  const dScale = scale === undefined ? undefined : tensor(scale.dtype, scale.shape);
  const c = (): number => (scale === undefined ? 1 : scale.data[0]);
  const params: Record<string, Tensor<F>> = { [roles.d]: d };
  const grads: Record<string, Tensor<F>> = { [roles.d]: dd };
  if (roles.scale !== undefined && scale !== undefined && dScale !== undefined) {
    params[roles.scale] = scale;
    grads[roles.scale] = dScale;
  }
  /** t [N, r] ⊙ (f·d) per column, in place. */
  const scaleColumns = (t: Tensor<F>, f: number): Tensor<F> => {
    for (let i = 0; i < t.data.length; i++) t.data[i] *= f * d.data[i % r];
    return t;
  };
  return {
    params,
    grads,
    async forward(x) {
      return matmul(scaleColumns(await matmul(x, V, { transB: true }), c()), U, { transB: true });
    },
    async backward(x, dy) {
      const h = await matmul(x, V, { transB: true });
      const g = await matmul(dy, U);
      const k = c();
      let ds = 0;
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let n = j; n < g.data.length; n += r) s += g.data[n] * h.data[n];
        dd.data[j] += k * s;
        ds += d.data[j] * s;
      }
      if (dScale !== undefined) dScale.data[0] += ds;
      return matmul(scaleColumns(g, k), V);
    },
    toLora() {
      const B = tensor(U.dtype, [out, r]);
      const k = c();
      for (let i = 0; i < out; i++) for (let j = 0; j < r; j++) B.data[i * r + j] = U.data[i * r + j] * (k * d.data[j] - d0[j]);
      return { A: V, B, scaling: 1 };
    },
  };
}
