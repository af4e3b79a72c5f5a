/**
 * SoKA (2025): W (out × in) with out = m1·m2, in = n1·n2 (the most balanced factorizations) is
 * approximated by Kronecker products through the Van Loan–Pitsianis rearrangement and its SVD,
 * W ≈ Σ_i A_i ⊗ B_i (√σ_i in each factor); the adapter starts on the principal terms, their number
 * chosen by energy (`energy`, e.g. 0.9) or at the elbow of the rearranged spectrum (`elbow`),
 * capped at the rank asked for; the rest of W is the frozen residual. Saved keys: soka_A
 * [r, m1, n1], soka_B [r, m2, n2]; both trainable.
 */
import { kronSvd } from '../linalg/special.js';
import { factorizeDim } from '../tensor/tensorize.js';
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { elbowRank, energyRank } from './split.js';
import type { AdapterMethod } from './types.js';

/** The Kronecker factor shapes of an out × in weight: [m1, n1] and [m2, n2]. */
export function kronShapes(out: number, inF: number): { a: [number, number]; b: [number, number] } {
  const [m1, m2] = factorizeDim(out, 2);
  const [n1, n2] = factorizeDim(inF, 2);
  return { a: [m1, n1], b: [m2, n2] };
}

export const method: AdapterMethod = {
  name: 'soka',
  summary: 'Kronecker-product SVD of W, the principal terms trainable, rank by energy or elbow (SoKA)',
  changesBase: true,
  keys: { A: 'soka_A', B: 'soka_B' },
  async init(w, opts) {
    const [out, inF] = w.shape;
    const { a: [m1, n1], b: [m2, n2] } = kronShapes(out, inF);
    const kmax = Math.min(m1 * n1, m2 * n2);
    if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${opts.rank}`);
    const full = await kronSvd(w as Tensor<'f64'>, [m1, n1], [m2, n2], kmax);
    let r = Math.min(opts.rank, kmax);
    if (opts.elbow === true) r = Math.min(r, elbowRank(full.s.data));
    else if (opts.energy !== undefined) r = Math.min(r, energyRank(full.s.data, opts.energy));
    const A = tensor(w.dtype, [r, m1, n1]);
    const B = tensor(w.dtype, [r, m2, n2]);
    const approx = tensor(w.dtype, [out, inF]);
    for (let t = 0; t < r; t++) {
      const [a, b] = [full.a[t].data, full.b[t].data];
      A.data.set(a, t * m1 * n1);
      B.data.set(b, t * m2 * n2);
      for (let i1 = 0; i1 < m1; i1++)
        for (let j1 = 0; j1 < n1; j1++)
          for (let i2 = 0; i2 < m2; i2++)
            for (let j2 = 0; j2 < n2; j2++) approx.data[(i1 * m2 + i2) * inF + j1 * n2 + j2] += a[i1 * n1 + j1] * b[i2 * n2 + j2];
    }
    return { tensors: { A: A as Tensor<FloatDType>, B: B as Tensor<FloatDType> }, removed: { dense: approx as Tensor<FloatDType> }, rank: r };
  },
  trainableParams(out, inF, r) {
    const { a, b } = kronShapes(out, inF);
    return r * (a[0] * a[1] + b[0] * b[1]);
  },
};
