/**
 * Dense linear algebra on f32/f64 tensors, computed on the fastest available backend (see
 * `backend/`). Every routine returns a Promise; inputs are never modified; NaN or Inf in an input
 * is an E_NONFINITE error naming the routine.
 */
export { matmul, matmulAdd, matmulAddAs, type MatmulOptions, type MatmulAddOptions } from './matmul.js';
export { encodeAs, decodeAs } from './cast.js';
export { qr, svd, svdvals, svdSmallest, eigh, lu, ldu, cholesky, type SvdOptions } from './decompositions.js';
export { solveTriangular, solve, lstsq, type TriangularOptions } from './solve.js';
export { rsvd, type RsvdOptions } from './rsvd.js';
export { truncatedSvd, type Keep, type RankCut, type Truncation, type TruncationMethod, type TruncatedSvdOptions } from './truncated.js';
export { dctBasis, kronSvd, principalAngles, type KronSvd } from './special.js';
export { backend, useBackend, backendStatus, backendReason, type Backend, type BackendName, type BackendStatus } from '../backend/index.js';
