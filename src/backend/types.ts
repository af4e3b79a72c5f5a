/**
 * The backend interface: the dense kernels every algorithm in lowrank reduces to. Each backend
 * (js: plain TypeScript, the reference; wasm: SIMD kernels on worker threads; native: OpenBLAS and
 * LAPACKE through an N-API addon) implements all of them for float32 and float64.
 *
 * Conventions, the same for every backend:
 * - matrices are dense and row-major; inputs are never modified; outputs are new arrays of the
 *   input's element type;
 * - every call returns a Promise (wasm and native run off the main thread);
 * - inputs are already validated by the linalg frontend (finite values, matching shapes, same
 *   dtype), so backends do not re-check them.
 */

/** The element arrays backends compute on. */
export type FloatArray = Float32Array | Float64Array;

/** A dense row-major matrix: element (i, j) is `data[i * cols + j]`. */
export interface Matrix<A extends FloatArray = FloatArray> {
  readonly rows: number;
  readonly cols: number;
  readonly data: A;
}

/** The backends lowrank has. */
export type BackendName = 'js' | 'wasm' | 'native';

/** The 16-bit float formats the backends convert float32 to and from. */
export type HalfFormat = 'bf16' | 'f16';

/** What to compute of an SVD. */
export type SvdJob = 'thin' | 'full' | 'values';

/**
 * Causal attention over rows [batch·t, heads·headDim] (queries) and [batch·t, kvHeads·headDim]
 * (keys, values): query head h reads key/value head h / (heads / kvHeads).
 */
export interface AttentionShape {
  readonly batch: number;
  readonly t: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/**
 * Attention of new tokens over a KV cache: `t` query rows per sequence [batch·t, heads·headDim],
 * keys and values [batch, capacity, kvHeads·headDim] with `past + t` rows filled per sequence.
 */
export interface CachedAttentionShape {
  readonly batch: number;
  /** New tokens (queries) per sequence. */
  readonly t: number;
  /** Tokens already in the cache before them. */
  readonly past: number;
  /** Rows the cache holds per sequence. */
  readonly capacity: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** The result of an SVD: A = U · diag(s) · Vt, s descending and non-negative. */
export interface SvdResult<A extends FloatArray> {
  /** m×k (thin, k = min(m, n)) or m×m (full); absent for 'values'. */
  readonly u?: Matrix<A>;
  readonly s: A;
  /** k×n (thin) or n×n (full); absent for 'values'. */
  readonly vt?: Matrix<A>;
}

/** Products: the dense matrix products everything else is built on. */
export interface Products {
  /** C = op(A) · op(B), where op transposes when asked. */
  matmul<A extends FloatArray>(a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean): Promise<Matrix<A>>;
  /**
   * C + alpha · op(A) · op(B) as a new matrix (C m×n is not modified): a residual W − s·B·A or a
   * merge W + s·B·A in one pass over W.
   */
  matmulAdd<A extends FloatArray>(c: Matrix<A>, a: Matrix<A>, b: Matrix<A>, alpha: number, transA: boolean, transB: boolean): Promise<Matrix<A>>;
  /**
   * C + alpha · op(A) · op(B) for float32 matrices, rounded once to bfloat16 or float16 bits: a
   * residual or merged weight straight into its storage type (the native backend never holds the
   * float32 sum in full).
   */
  matmulAddHalf(c: Matrix<Float32Array>, a: Matrix<Float32Array>, b: Matrix<Float32Array>, alpha: number, transA: boolean, transB: boolean, format: HalfFormat): Promise<Uint16Array>;
}

/** Decompositions and solves. */
export interface Decompositions {
  /** Thin Householder QR: A (m×n) = Q (m×k) · R (k×n), k = min(m, n), Q with orthonormal columns. */
  qr<A extends FloatArray>(a: Matrix<A>): Promise<{ q: Matrix<A>; r: Matrix<A> }>;
  /**
   * An orthonormal basis of A's columns (m×n, m ≥ n, full column rank): the Q of a thin QR, by
   * whatever method the backend does fastest at its precision (native: CholeskyQR2 for float32
   * with at most 32 columns, Householder when that is ill-conditioned). Column signs and, for a
   * rank-deficient A, the basis of the missing directions are not specified.
   */
  orthonormalize<A extends FloatArray>(a: Matrix<A>): Promise<Matrix<A>>;
  /** Singular value decomposition (no Gram-matrix shortcuts: small singular values stay accurate). */
  svd<A extends FloatArray>(a: Matrix<A>, job: SvdJob): Promise<SvdResult<A>>;
  /**
   * Symmetric eigendecomposition from the lower triangle of A: values ascending; vectors as the
   * columns of an n×n matrix when asked.
   */
  eigh<A extends FloatArray>(a: Matrix<A>, vectors: boolean): Promise<{ values: A; vectors?: Matrix<A> }>;
  /**
   * LU with partial pivoting of an m×n matrix: P·A = L·U with L unit lower (m×k) and U upper (k×n)
   * packed in one m×n matrix; row i of P·A is row perm[i] of A.
   */
  lu<A extends FloatArray>(a: Matrix<A>): Promise<{ lu: Matrix<A>; perm: Int32Array }>;
  /**
   * Lower Cholesky factor L of a symmetric positive definite A (A = L·Lᵀ, from the lower
   * triangle); throws LowrankError E_NUMERIC when A is not positive definite.
   */
  cholesky<A extends FloatArray>(a: Matrix<A>): Promise<Matrix<A>>;
  /**
   * Solves op(T) · X = B for X, T square triangular (lower or upper, unit diagonal or not), B n×k.
   */
  solveTriangular<A extends FloatArray>(t: Matrix<A>, b: Matrix<A>, opts: { lower: boolean; trans: boolean; unitDiagonal: boolean }): Promise<Matrix<A>>;
}

/** Checks and conversions of storage. */
export interface Casts {
  /** True when no element is NaN or ±Inf (synchronous: the linalg frontend checks every input with it). */
  allFinite(data: FloatArray): boolean;
  /** float32 values → bfloat16 or float16 bits, rounded to nearest even (as src/core/dtype.ts). */
  encodeHalf(data: Float32Array, format: HalfFormat): Promise<Uint16Array>;
  /** bfloat16 or float16 bits → float32 values, exactly. */
  decodeHalf(bits: Uint16Array, format: HalfFormat): Promise<Float32Array>;
}

/** The training and inference kernels of src/nn. */
export interface NnKernels {
  /**
   * Training kernels (src/nn), each forward next to its backward. Causal grouped-query attention:
   * O = softmax(Q·Kᵀ/√D masked to the past)·V per sequence and head, and P [B, H, T, T].
   */
  attention<A extends FloatArray>(q: A, k: A, v: A, shape: AttentionShape): Promise<{ o: A; p: A }>;
  /** The gradients of q, k and v from P (the forward pass's) and dO. */
  attentionBackward<A extends FloatArray>(q: A, k: A, v: A, p: A, dout: A, shape: AttentionShape): Promise<{ dq: A; dk: A; dv: A }>;
  /**
   * Inference attention over a KV cache: query i of sequence b (cache row past + i) reads cache
   * rows start[b] .. past + i (rows before start[b] are left padding); O [batch·t, heads·headDim],
   * zeros where that range is empty.
   */
  attentionCached<A extends FloatArray>(q: A, kCache: A, vCache: A, start: Int32Array, shape: CachedAttentionShape): Promise<A>;
  /** RMSNorm of the rows of x: y = x·rstd·g, rstd = 1/√(mean(x²) + ε) per row. */
  rmsNorm<A extends FloatArray>(x: Matrix<A>, g: A, eps: number): Promise<{ y: A; rstd: A }>;
  /** dx of RMSNorm, and dg summed over the rows. */
  rmsNormBackward<A extends FloatArray>(dy: Matrix<A>, x: A, g: A, rstd: A): Promise<{ dx: A; dg: A }>;
  /** silu(gate) ⊙ up, elementwise. */
  swiglu<A extends FloatArray>(gate: A, up: A): Promise<A>;
  swigluBackward<A extends FloatArray>(dh: A, gate: A, up: A): Promise<{ dgate: A; dup: A }>;
  /**
   * Softmax cross-entropy of rows of logits against target ids (in range, or `ignore`: the row
   * counts for nothing): the loss summed over counted rows, and (softmax − onehot)/count.
   */
  crossEntropy<A extends FloatArray>(logits: Matrix<A>, targets: Int32Array, ignore: number): Promise<{ lossSum: number; dlogits: A }>;
  /**
   * Keeps memory the process frees for reuse, instead of handing it back to the system, until the
   * returned function is called: for loops that allocate the same sizes again and again (training
   * steps), where every fresh page costs a fault. Calls nest; a no-op where the backend cannot
   * steer the allocator.
   */
  retainFreedMemory(): () => void;
}

/**
 * One implementation of the dense kernels, in four op groups. A backend need not implement them
 * all: {@link PartialBackend} and backend/compose.ts fill the rest from a chain of others.
 */
export interface Backend extends Products, Decompositions, Casts, NnKernels {
  readonly name: BackendName;
}

/** The ops a backend implements itself (any of any group); composeBackend gets the rest elsewhere. */
export type PartialBackend = { readonly name: BackendName } & Partial<Omit<Backend, 'name'>>;
