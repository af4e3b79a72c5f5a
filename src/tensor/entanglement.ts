/**
 * The entanglement spectrum of a weight or update matrix read as a matrix product state
 * ("Artificial Entanglement in the Fine-Tuning of Large Language Models"): the von Neumann entropy
 * of the normalized squared singular values at every bipartition of the sites.
 */
import { LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { backend } from '../backend/index.js';
import { eps } from '../linalg/check.js';
import { prod, tensorArg } from './check.js';
import { dimsArg, tensorizeArgs, tensorizeUnchecked } from './tensorize.js';

/** Options of {@link entanglement}. */
export interface EntanglementOptions {
  /**
   * The sites of the MPS. A flat list [d₀, d₁, …] with Π dₖ = numel(w): w's elements in row-major
   * order reshaped to those dimensions, site k of size dₖ (so [...rowDims, ...colDims] puts the
   * row factors first, and the bond between them and the column factors is w's own SVD). Or
   * { rowDims, colDims } for a [Π rowDims, Π colDims] matrix, paired as in a tensor-train matrix
   * (MPO): site k is (i_k, j_k), of size rowDims[k]·colDims[k].
   */
  dims: readonly number[] | { readonly rowDims: readonly number[]; readonly colDims: readonly number[] };
}

/** The entanglement across one bond. */
export interface EntanglementBond {
  /** The bond between site `position` and site `position + 1` (0-based). */
  readonly position: number;
  /** Von Neumann entropy −Σ p·ln p in nats (natural log), accumulated in float64; 0 for a zero w. */
  readonly entropy: number;
  /**
   * The Schmidt spectrum p_i = σ_i²/Σσ², descending, min(left, right) values (all 0 for a zero w),
   * in float64.
   */
  readonly spectrum: Float64Array;
  /**
   * The Schmidt rank: the number of σ_i > σ₀·max(left, right)·ε (numpy's `matrix_rank` cutoff,
   * ε of w's dtype); 0 for a zero w.
   */
  readonly rank: number;
}

/** The result of {@link entanglement}. */
export interface Entanglement {
  /** The site sizes. */
  readonly sites: number[];
  /** One entry per bond, sites − 1 of them. */
  readonly bonds: EntanglementBond[];
  /**
   * ln of each bond's largest Schmidt rank, ln min(Π left sites, Π right sites): the entropy of a
   * maximally entangled bond (the volume-law reference).
   */
  readonly maxEntropy: number[];
}

/**
 * The entanglement spectrum of w as an MPS over `dims`: at every bond k, the singular values of the
 * (sites ≤ k) × (sites > k) matricization (exactly those at bond k of an untruncated TT-SVD),
 * p = σ²/Σσ² and the entropy S = −Σ p·ln p (natural log; p = 0 terms skipped). Each bond is one
 * values-only SVD (no Gram matrix) in w's dtype. A product state (a Kronecker product matching the
 * sites) has S = 0 at every bond; a maximally entangled bond has S = maxEntropy.
 *
 * @example
 * const e = await tensor.entanglement(deltaW, { dims: [16, 16, 16, 16] }); // deltaW: [256, 256]
 * e.bonds.map((b) => b.entropy / e.maxEntropy[b.position]); // the entropy profile, 0 … 1
 * const m = await tensor.entanglement(w, { dims: { rowDims: [16, 16, 16], colDims: [16, 16, 16] } }); // MPO pairing
 */
export async function entanglement<F extends FloatDType>(w: Tensor<F>, opts: EntanglementOptions): Promise<Entanglement> {
  const routine = 'entanglement';
  const dims = opts?.dims;
  if (dims === undefined || dims === null || typeof dims !== 'object') throw new LowrankError('E_USAGE', `${routine}: dims is required (a list of site sizes, or { rowDims, colDims })`);
  let sites: number[];
  let data: Tensor<F>['data'];
  if (Array.isArray(dims)) {
    dimsArg(routine, 'dims', dims);
    tensorArg(routine, 'w', w);
    if (prod(dims) !== w.data.length) {
      throw new LowrankError('E_SHAPE', `${routine}: dims [${dims}] (product ${prod(dims)}) do not fit w of shape [${w.shape}] (${w.data.length} elements)`, { shape: w.shape });
    }
    sites = [...dims];
    data = w.data;
  } else {
    const { rowDims, colDims } = dims as { rowDims: readonly number[]; colDims: readonly number[] };
    tensorizeArgs(routine, w, rowDims, colDims, true);
    sites = rowDims.map((m, k) => m * colDims[k]);
    data = tensorizeUnchecked(w, rowDims, colDims, true).data;
  }
  if (sites.length < 2) throw new LowrankError('E_USAGE', `${routine}: dims must describe at least 2 sites (one bond), got ${sites.length}`);

  const total = data.length;
  const bonds: EntanglementBond[] = [];
  const maxEntropy: number[] = [];
  let left = 1;
  for (let k = 0; k < sites.length - 1; k++) {
    left *= sites[k];
    const right = total / left;
    // The bipartition's matricization is the row-major reshape of the site-ordered data: no copy.
    const { s } = await backend().svd({ rows: left, cols: right, data }, 'values');
    bonds.push({ position: k, ...schmidt(s, Math.max(left, right) * eps(w.dtype)) });
    maxEntropy.push(Math.log(Math.min(left, right)));
  }
  return { sites, bonds, maxEntropy };
}

/** p = σ²/Σσ², −Σ p ln p and the rank (σ > σ₀·cut) of descending singular values, in float64. */
function schmidt(s: ArrayLike<number>, cut: number): { entropy: number; spectrum: Float64Array; rank: number } {
  const spectrum = new Float64Array(s.length);
  let norm2 = 0;
  for (let i = 0; i < s.length; i++) norm2 += s[i] * s[i];
  if (norm2 === 0) return { entropy: 0, spectrum, rank: 0 };
  let entropy = 0;
  let rank = 0;
  const threshold = s[0] * cut;
  for (let i = 0; i < s.length; i++) {
    const p = (s[i] * s[i]) / norm2;
    spectrum[i] = p;
    if (p > 0) entropy -= p * Math.log(p);
    if (s[i] > threshold) rank++;
  }
  return { entropy, spectrum, rank };
}
