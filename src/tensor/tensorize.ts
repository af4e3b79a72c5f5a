/**
 * Tensorization: a matrix's dimensions split into factors (M = m₀·m₁⋯, N = n₀·n₁⋯) and the matrix
 * viewed as a higher-order tensor over them, either plainly [m₀, m₁, …, n₀, n₁, …] or interleaved
 * [m₀, n₀, m₁, n₁, …] as tensor-train matrices (MPOs) pair them.
 */
import { LowrankError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { prod, tensorArg } from './check.js';
import { permute, reshape } from './unfold.js';

/** Options of {@link tensorizeMatrix} and {@link matrixFromTensorized}. */
export interface TensorizeOptions {
  /**
   * Order the dimensions [m₀, n₀, m₁, n₁, …] (the tensor-train-matrix pairing; needs as many row
   * as column factors) instead of [m₀, m₁, …, n₀, n₁, …]. Default false.
   */
  interleave?: boolean;
}

/**
 * `parts` positive integers whose product is n, as balanced as possible, in descending order: the
 * largest factor is as small as it can be, then the next largest, and so on (the lexicographically
 * smallest descending list). A prime n gives [n, 1, …, 1].
 *
 * @example
 * tensor.factorizeDim(4096, 3); // [16, 16, 16]
 * tensor.factorizeDim(768, 2);  // [32, 24]
 * tensor.factorizeDim(11008, 3); // [43, 16, 16]
 */
export function factorizeDim(n: number, parts: number): number[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new LowrankError('E_USAGE', `factorizeDim: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(parts) || parts < 1 || parts > 64) throw new LowrankError('E_USAGE', `factorizeDim: parts must be an integer in 1..64, got ${parts}`);
  const divisors = divisorsOf(n);
  const memo = new Map<string, number[] | null>();
  const out = balanced(n, parts, n, divisors, memo);
  if (out === null) throw new LowrankError('E_INTERNAL', `factorizeDim: no factorization of ${n} into ${parts} parts`);
  return out;
}

/**
 * The most balanced descending factorization of m into k parts, each ≤ cap, or null when there is
 * none. The first (largest) factor is the smallest divisor f ≥ ⌈m^(1/k)⌉ that leaves a feasible
 * rest; the rest is then the most balanced factorization of m/f capped at f.
 */
function balanced(m: number, k: number, cap: number, divisors: readonly number[], memo: Map<string, number[] | null>): number[] | null {
  if (k === 1) return m <= cap ? [m] : null;
  const key = `${m},${k},${cap}`;
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  let result: number[] | null = null;
  const lower = Math.pow(m, 1 / k) * (1 - 1e-12);
  for (const f of divisors) {
    if (f > cap || f > m) break;
    if (f < lower || m % f !== 0) continue;
    const rest = balanced(m / f, k - 1, f, divisors, memo);
    if (rest !== null) {
      result = [f, ...rest];
      break;
    }
  }
  memo.set(key, result);
  return result;
}

/** The divisors of n, ascending (trial division up to √n). */
function divisorsOf(n: number): number[] {
  const small: number[] = [];
  const large: number[] = [];
  for (let d = 1; d * d <= n; d++) {
    if (n % d !== 0) continue;
    small.push(d);
    if (d * d !== n) large.push(n / d);
  }
  return [...small, ...large.reverse()];
}

/** Checks a list of factors (positive integers). */
export function dimsArg(routine: string, name: string, dims: readonly number[]): readonly number[] {
  if (!Array.isArray(dims) || dims.length === 0) throw new LowrankError('E_USAGE', `${routine}: ${name} must be a non-empty list of positive integers`);
  if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new LowrankError('E_USAGE', `${routine}: ${name} [${dims}] must be positive integers`);
  return dims;
}

/** Checks that w is a finite [Π rowDims, Π colDims] f32/f64 matrix and the factor lists fit it. */
export function tensorizeArgs<F extends FloatDType>(routine: string, w: Tensor<F>, rowDims: readonly number[], colDims: readonly number[], interleave: boolean): void {
  dimsArg(routine, 'rowDims', rowDims);
  dimsArg(routine, 'colDims', colDims);
  tensorArg(routine, 'w', w, 2);
  if (w.shape.length !== 2) throw new LowrankError('E_SHAPE', `${routine}: w must be a matrix (2-D), got [${w.shape}]`, { shape: w.shape });
  const [m, n] = w.shape;
  if (prod(rowDims) !== m || prod(colDims) !== n) {
    throw new LowrankError('E_SHAPE', `${routine}: rowDims [${rowDims}] (product ${prod(rowDims)}) and colDims [${colDims}] (product ${prod(colDims)}) do not factor a [${m}, ${n}] matrix`, { shape: w.shape });
  }
  if (interleave && rowDims.length !== colDims.length) {
    throw new LowrankError('E_SHAPE', `${routine}: interleaving needs as many row as column factors, got [${rowDims}] and [${colDims}]`);
  }
}

/** [0, d, 1, d+1, …]: the permutation from [m₀…, n₀…] to [m₀, n₀, m₁, n₁, …]. */
function interleavePerm(d: number): number[] {
  const perm: number[] = [];
  for (let k = 0; k < d; k++) perm.push(k, d + k);
  return perm;
}

/** The plain order's permutation back from the interleaved one: [0, 2, 4, …, 1, 3, 5, …]. */
function deinterleavePerm(d: number): number[] {
  const perm: number[] = [];
  for (let k = 0; k < d; k++) perm.push(2 * k);
  for (let k = 0; k < d; k++) perm.push(2 * k + 1);
  return perm;
}

/** {@link tensorizeMatrix} without the argument checks. */
export function tensorizeUnchecked<F extends FloatDType>(w: Tensor<F>, rowDims: readonly number[], colDims: readonly number[], interleave: boolean): Tensor<F> {
  const plain = reshape(w, [...rowDims, ...colDims]);
  return interleave ? permute(plain, interleavePerm(rowDims.length)) : plain;
}

/** {@link matrixFromTensorized} without the argument checks. */
export function matrixFromTensorizedUnchecked<F extends FloatDType>(t: Tensor<F>, rowDims: readonly number[], colDims: readonly number[], interleave: boolean): Tensor<F> {
  const plain = interleave ? permute(t, deinterleavePerm(rowDims.length)) : t;
  return reshape(plain, [prod(rowDims), prod(colDims)]);
}

/**
 * A [M, N] matrix (M = Π rowDims, N = Π colDims) as a tensor: shape [...rowDims, ...colDims] (a
 * row-major reshape sharing w's storage), or with `interleave` [m₀, n₀, m₁, n₁, …] (a copy, the
 * order of tensor-train matrices). Row index i = (i₀, i₁, …) and column index j = (j₀, j₁, …) are
 * row-major over their factors. Throws E_SHAPE when the products do not match.
 *
 * @example
 * const t = tensor.tensorizeMatrix(w, [16, 16, 16], [32, 24], {}); // w: [4096, 768] → [16, 16, 16, 32, 24]
 * const ti = tensor.tensorizeMatrix(w, [64, 64], [32, 24], { interleave: true }); // [64, 32, 64, 24]
 */
export function tensorizeMatrix<F extends FloatDType>(w: Tensor<F>, rowDims: readonly number[], colDims: readonly number[], opts: TensorizeOptions = {}): Tensor<F> {
  const interleave = opts.interleave ?? false;
  tensorizeArgs('tensorizeMatrix', w, rowDims, colDims, interleave);
  return tensorizeUnchecked(w, rowDims, colDims, interleave);
}

/**
 * The inverse of {@link tensorizeMatrix}: a tensor of shape [...rowDims, ...colDims] (or, with
 * `interleave`, [m₀, n₀, m₁, n₁, …]) back as the [Π rowDims, Π colDims] matrix (a reshape sharing
 * t's storage, or with `interleave` a copy). Throws E_SHAPE when t's shape is not that.
 *
 * @example
 * const w2 = tensor.matrixFromTensorized(ti, [64, 64], [32, 24], { interleave: true }); // w2 equals w
 */
export function matrixFromTensorized<F extends FloatDType>(t: Tensor<F>, rowDims: readonly number[], colDims: readonly number[], opts: TensorizeOptions = {}): Tensor<F> {
  const routine = 'matrixFromTensorized';
  const interleave = opts.interleave ?? false;
  dimsArg(routine, 'rowDims', rowDims);
  dimsArg(routine, 'colDims', colDims);
  tensorArg(routine, 't', t);
  if (interleave && rowDims.length !== colDims.length) {
    throw new LowrankError('E_SHAPE', `${routine}: interleaving needs as many row as column factors, got [${rowDims}] and [${colDims}]`);
  }
  const expected = interleave ? interleavePerm(rowDims.length).map((p) => [...rowDims, ...colDims][p]) : [...rowDims, ...colDims];
  if (t.shape.length !== expected.length || t.shape.some((d, k) => d !== expected[k])) {
    throw new LowrankError('E_SHAPE', `${routine}: expected a tensor of shape [${expected}], got [${t.shape}]`, { shape: t.shape });
  }
  return matrixFromTensorizedUnchecked(t, rowDims, colDims, interleave);
}
