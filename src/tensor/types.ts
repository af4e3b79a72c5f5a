/**
 * The factorized forms the decompositions return: small objects of plain tensors (TensorLy's
 * TuckerTensor, CPTensor, TTTensor and TTMatrix), each tagged with its `kind` so that
 * {@link toTensor} and {@link parameterCount} in forms.ts take any of them.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

/**
 * x ≈ core ×_{modes[0]} factors[0] ×_{modes[1]} factors[1] …: factor k is I_{modes[k]} × R_k with
 * orthonormal columns, the core has R_k in dimension modes[k] and x's size in every other dimension
 * (all modes for {@link tucker}, some for partialTucker).
 */
export interface TuckerTensor<F extends FloatDType = FloatDType> {
  readonly kind: 'tucker';
  readonly core: Tensor<F>;
  readonly factors: readonly Tensor<F>[];
  /** The dimension each factor belongs to. */
  readonly modes: readonly number[];
  /** The shape of the tensor it approximates. */
  readonly shape: readonly number[];
}

/** x ≈ Σ_r weights[r] · a₀[:, r] ∘ a₁[:, r] ∘ …: factor k is I_k × R. */
export interface CPTensor<F extends FloatDType = FloatDType> {
  readonly kind: 'cp';
  /** R weights (all 1 unless the factors were normalized). */
  readonly weights: Tensor<F>;
  readonly factors: readonly Tensor<F>[];
  readonly shape: readonly number[];
}

/**
 * Tensor train (matrix product state): x[i₀, …, i_{N−1}] = G₀[:, i₀, :]·G₁[:, i₁, :]⋯, core k of
 * shape [r_k, I_k, r_{k+1}] with r₀ = r_N = 1.
 */
export interface TTTensor<F extends FloatDType = FloatDType> {
  readonly kind: 'tt';
  readonly cores: readonly Tensor<F>[];
  readonly shape: readonly number[];
}

/**
 * A matrix (M × N, M = Π rowDims, N = Π colDims) in tensor-train-matrix (matrix product operator)
 * form: W[(i₀…), (j₀…)] = G₀[:, i₀, j₀, :]·G₁[:, i₁, j₁, :]⋯, core k of shape
 * [r_k, rowDims[k], colDims[k], r_{k+1}], row and column indices row-major over their dims.
 */
export interface TTMatrix<F extends FloatDType = FloatDType> {
  readonly kind: 'ttMatrix';
  readonly cores: readonly Tensor<F>[];
  readonly rowDims: readonly number[];
  readonly colDims: readonly number[];
}

/** Any factorized form. */
export type Factorized<F extends FloatDType = FloatDType> = TuckerTensor<F> | CPTensor<F> | TTTensor<F> | TTMatrix<F>;
