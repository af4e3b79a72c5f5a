/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW steps it:
 * p ← p − lr·λ·p; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
 * p ← p − lr·(m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε). State is plain arrays, so it checkpoints.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { NamedParam, Optimizer } from './optimizer.js';

export interface AdamWOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
}

/** The optimizer state of one parameter. */
export interface AdamWState {
  step: number;
  readonly m: Float64Array;
  readonly v: Float64Array;
}

export function adamwState(size: number): AdamWState {
  return { step: 0, m: new Float64Array(size), v: new Float64Array(size) };
}

/** One AdamW step of `param` by `grad` at learning rate lr (PyTorch's defaults: 0.9, 0.999, 1e-8, 0.01). */
export function adamwStep<F extends FloatDType>(param: Tensor<F>, grad: Tensor<F>, state: AdamWState, lr: number, opts: AdamWOptions = {}): void {
  const [b1, b2, eps, wd] = [opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.eps ?? 1e-8, opts.weightDecay ?? 0.01];
  state.step++;
  const c1 = 1 - b1 ** state.step;
  const c2 = 1 - b2 ** state.step;
  const p = param.data;
  const g = grad.data;
  for (let i = 0; i < p.length; i++) {
    p[i] -= lr * wd * p[i];
    state.m[i] = b1 * state.m[i] + (1 - b1) * g[i];
    state.v[i] = b2 * state.v[i] + (1 - b2) * g[i] * g[i];
    p[i] -= (lr * (state.m[i] / c1)) / (Math.sqrt(state.v[i] / c2) + eps);
  }
}

/** AdamW over named parameters, its state the arrays `<name>.m` and `<name>.v`. */
export function adamw(params: readonly NamedParam[], opts: AdamWOptions = {}): Optimizer {
  const states = params.map((p) => adamwState(p.param.data.length));
  const arrays = new Map(params.flatMap((p, i) => [[`${p.name}.m`, states[i].m], [`${p.name}.v`, states[i].v]] as const));
  let steps = 0;
  return {
    name: 'adamw',
    get steps() {
      return steps;
    },
    step(lr) {
      params.forEach((p, i) => adamwStep(p.param, p.grad, states[i], lr, opts));
      steps++;
    },
    stateArrays: () => arrays,
    restore(n) {
      steps = n;
      for (const s of states) s.step = n;
    },
  };
}

/**
 * The learning rate at `step` (0-based) of a linear warmup to `lr` over `warmup` steps, then a
 * cosine decay to `minLr` at `total` (Hugging Face's get_cosine_schedule_with_warmup when minLr is 0).
 */
export function cosineWithWarmup(step: number, lr: number, warmup: number, total: number, minLr = 0): number {
  if (step < warmup) return (lr * step) / Math.max(1, warmup);
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * Scales the gradients in place so their global L2 norm is at most `maxNorm` (torch's
 * clip_grad_norm_: factor maxNorm / (norm + 1e-6) when the norm exceeds it); returns the norm before.
 */
export function clipGradNorm(grads: readonly Tensor<FloatDType>[], maxNorm: number): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.data.length; i++) ss += g.data[i] * g.data[i];
  const norm = Math.sqrt(ss);
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) for (const g of grads) for (let i = 0; i < g.data.length; i++) g.data[i] *= factor;
  return norm;
}
