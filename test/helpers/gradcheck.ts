/** Central-difference checks of analytic gradients (float64). */
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/core/tensor.js';

/**
 * Checks analytic = ∂loss/∂param at the given entries (default: all) by (L(θ + h) − L(θ − h)) / 2h,
 * perturbing `param` in place: |numeric − analytic| ≤ tol·max|analytic|.
 */
export async function checkGradient(name: string, param: Tensor<'f64'>, analytic: Tensor<'f64'>, loss: () => Promise<number> | number, opts: { h: number; tol: number; entries?: Iterable<number> }): Promise<void> {
  const scale = Math.max(1e-12, ...Array.from(analytic.data, Math.abs));
  for (const i of opts.entries ?? param.data.keys()) {
    const x = param.data[i];
    param.data[i] = x + opts.h;
    const up = await loss();
    param.data[i] = x - opts.h;
    const down = await loss();
    param.data[i] = x;
    const numeric = (up - down) / (2 * opts.h);
    assert.ok(Math.abs(numeric - analytic.data[i]) <= opts.tol * scale, `${name}[${i}]: analytic ${analytic.data[i]}, numeric ${numeric}`);
  }
}

/** A few entries of a tensor to check: the first, the last and `extra` seeded picks. */
export function someEntries(length: number, uniform: () => number, extra = 4): Set<number> {
  return new Set([0, length - 1, ...Array.from({ length: extra }, () => Math.floor(uniform() * length))]);
}
