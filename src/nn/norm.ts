/**
 * RMSNorm (Llama: y = x / √(mean(x²) + ε) · g) and LayerNorm (GPT-2: y = (x − μ)/√(var + ε) · g + b)
 * over the last dimension of rows [N, C], each forward caching the per-row statistic its backward
 * needs.
 */
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { LowrankError } from '../core/errors.js';
import { backend } from '../backend/index.js';

export interface RmsNormCache<F extends FloatDType> {
  /** 1/√(mean(x²) + ε) per row. */
  readonly rstd: Tensor<F>['data'];
}

/** y = x / √(mean(x²) + ε) · g (on the backend: src/backend/js/nn.ts, native/nn.c). */
export async function rmsNormForward<F extends FloatDType>(x: Tensor<F>, g: Tensor<F>, eps: number): Promise<{ y: Tensor<F>; cache: RmsNormCache<F> }> {
  const [n, c] = x.shape;
  checkGain(g, c);
  const { y, rstd } = await backend().rmsNorm({ rows: n, cols: c, data: x.data }, g.data, eps);
  return { y: tensor(x.dtype, x.shape, y), cache: { rstd } };
}

/** dx = r·(g⊙dy) − r³/C·x·Σ(g⊙dy⊙x); dg += Σ_rows dy⊙x·r. */
export async function rmsNormBackward<F extends FloatDType>(x: Tensor<F>, g: Tensor<F>, cache: RmsNormCache<F>, dy: Tensor<F>, dg?: Tensor<F>): Promise<Tensor<F>> {
  const [n, c] = x.shape;
  const r = await backend().rmsNormBackward({ rows: n, cols: c, data: dy.data }, x.data, g.data, cache.rstd);
  if (dg !== undefined) for (let j = 0; j < c; j++) dg.data[j] += r.dg[j];
  return tensor(x.dtype, x.shape, r.dx);
}

function checkGain(g: Tensor<FloatDType>, c: number): void {
  if (g.data.length !== c) throw new LowrankError('E_SHAPE', `norm weight has ${g.data.length} elements for rows of ${c}`);
}

export interface LayerNormCache {
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
}

export function layerNormForward<F extends FloatDType>(x: Tensor<F>, g: Tensor<F>, b: Tensor<F>, eps: number): { y: Tensor<F>; cache: LayerNormCache } {
  const [n, c] = x.shape;
  const y = tensor(x.dtype, x.shape);
  const mean = new Float64Array(n);
  const rstd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let j = 0; j < c; j++) m += x.data[i * c + j];
    m /= c;
    let v = 0;
    for (let j = 0; j < c; j++) v += (x.data[i * c + j] - m) ** 2;
    const r = 1 / Math.sqrt(v / c + eps);
    mean[i] = m;
    rstd[i] = r;
    for (let j = 0; j < c; j++) y.data[i * c + j] = (x.data[i * c + j] - m) * r * g.data[j] + b.data[j];
  }
  return { y, cache: { mean, rstd } };
}

/** With x̂ = (x − μ)·r and d = g⊙dy: dx = r·(d − mean(d) − x̂·mean(d⊙x̂)); dg += Σ dy⊙x̂; db += Σ dy. */
export function layerNormBackward<F extends FloatDType>(x: Tensor<F>, g: Tensor<F>, cache: LayerNormCache, dy: Tensor<F>, dg?: Tensor<F>, db?: Tensor<F>): Tensor<F> {
  const [n, c] = x.shape;
  const dx = tensor(x.dtype, x.shape);
  for (let i = 0; i < n; i++) {
    const [m, r] = [cache.mean[i], cache.rstd[i]];
    let dMean = 0;
    let dxhatMean = 0;
    for (let j = 0; j < c; j++) {
      const o = i * c + j;
      const d = g.data[j] * dy.data[o];
      dMean += d;
      dxhatMean += d * (x.data[o] - m) * r;
    }
    dMean /= c;
    dxhatMean /= c;
    for (let j = 0; j < c; j++) {
      const o = i * c + j;
      const xhat = (x.data[o] - m) * r;
      dx.data[o] = r * (g.data[j] * dy.data[o] - dMean - xhat * dxhatMean);
      if (dg !== undefined) dg.data[j] += dy.data[o] * xhat;
      if (db !== undefined) db.data[j] += dy.data[o];
    }
  }
  return dx;
}
