/**
 * Rotary position embeddings as Hugging Face's Llama applies them ("rotate_half"): for a head of
 * dimension D, pairs (i, i + D/2) at position p turn by the angle p·θ^(−2i/D). The backward pass
 * turns the gradient back by the same angle. Rows are [N, heads·D] with N = batch·T, position
 * p = row mod T (plus `offset`).
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

/** cos and sin tables [T, D/2] for positions offset .. offset + T − 1. */
export function ropeTables(t: number, headDim: number, theta: number, offset = 0): { cos: Float64Array; sin: Float64Array } {
  return ropeTablesAt(Int32Array.from({ length: t }, (_, p) => p + offset), headDim, theta);
}

/** cos and sin tables [N, D/2], row r for position positions[r] (inference: each row its own). */
export function ropeTablesAt(positions: Int32Array, headDim: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2;
  const cos = new Float64Array(positions.length * half);
  const sin = new Float64Array(positions.length * half);
  for (const [r, p] of positions.entries()) {
    for (let i = 0; i < half; i++) {
      const angle = p * theta ** ((-2 * i) / headDim);
      cos[r * half + i] = Math.cos(angle);
      sin[r * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Rotates every head of x [N, heads·D] in place; `inverse` turns the other way (the backward pass). */
export function ropeApply<F extends FloatDType>(x: Tensor<F>, t: number, headDim: number, tables: { cos: Float64Array; sin: Float64Array }, inverse = false): void {
  const [n, width] = x.shape;
  const half = headDim / 2;
  const sign = inverse ? -1 : 1;
  for (let row = 0; row < n; row++) {
    const p = row % t;
    for (let h = 0; h < width; h += headDim) {
      const o = row * width + h;
      for (let i = 0; i < half; i++) {
        const c = tables.cos[p * half + i];
        const s = sign * tables.sin[p * half + i];
        const [a, b] = [x.data[o + i], x.data[o + i + half]];
        x.data[o + i] = a * c - b * s;
        x.data[o + i + half] = b * c + a * s;
      }
    }
  }
}
