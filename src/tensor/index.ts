/**
 * Tensor decompositions on the compute core (TensorLy's functions, in TypeScript): building
 * blocks (unfold, fold, mode products, Khatri–Rao, Kronecker, tensorizing a matrix), Tucker
 * (HOSVD, HOOI, partial), CP by alternating least squares, tensor trains (TT-SVD) and TT-matrices,
 * and the bond entanglement spectra of a matrix read as a matrix product state. Every
 * decomposition returns a small factorized object (types.ts) that {@link toTensor} reconstructs and
 * {@link parameterCount} counts. Heavy routines return Promises, like `linalg`.
 */
export { unfold, fold, reshape, permute } from './unfold.js';
export { modeProduct, multiModeProduct, khatriRao, kron, type ModeProductOptions } from './products.js';
export { factorizeDim, tensorizeMatrix, matrixFromTensorized, type TensorizeOptions } from './tensorize.js';
export { tucker, partialTucker, tuckerRanks, tuckerToTensor, tuckerParameters, type TuckerRanks, type TuckerOptions, type PartialTuckerOptions, type TuckerResult } from './tucker.js';
export { cp, cpToTensor, cpParameters, type CpOptions, type CpResult } from './cp.js';
export { tensorTrain, ttMatrix, ttToTensor, ttMatrixToMatrix, ttRanks, ttParameters, ttMatrixParameters, type TensorTrainOptions, type TTMatrixOptions } from './tt.js';
export { entanglement, type EntanglementOptions, type EntanglementBond, type Entanglement } from './entanglement.js';
export { toTensor, parameterCount } from './forms.js';
export type { TuckerTensor, CPTensor, TTTensor, TTMatrix, Factorized } from './types.js';
