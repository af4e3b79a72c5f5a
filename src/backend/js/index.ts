/**
 * The plain TypeScript backend: the reference every other backend is checked against. Every kernel
 * works on float64 copies (for float32 inputs too) and rounds to the input's element type at the
 * end; loops walk row-major rows in memory order. Accuracy first, then reasonable speed.
 */
import type { Backend } from '../types.js';
import { cholesky } from './cholesky.js';
import { allFinite } from './finite.js';
import { eigh } from './eigh.js';
import { matmul, matmulAdd } from './gemm.js';
import { decodeHalf, encodeHalf } from './cast.js';
import { lu } from './lu.js';
import { nnKernels } from './nn.js';
import { qr } from './qr.js';
import { svd } from './svd.js';
import { solveTriangular } from './triangular.js';

/** The js backend: synchronous float64 kernels behind the Promise-returning Backend interface. */
export const jsBackend: Backend = {
  name: 'js',
  allFinite,
  matmul: async (a, b, transA, transB) => matmul(a, b, transA, transB),
  matmulAdd: async (c, a, b, alpha, transA, transB) => matmulAdd(c, a, b, alpha, transA, transB),
  encodeHalf,
  decodeHalf,
  matmulAddHalf: async (c, a, b, alpha, transA, transB, format) => encodeHalf(matmulAdd(c, a, b, alpha, transA, transB).data, format),
  ...nnKernels,
  qr: async (a) => qr(a),
  orthonormalize: async (a) => qr(a).q,
  svd: async (a, job) => svd(a, job),
  eigh: async (a, vectors) => eigh(a, vectors),
  lu: async (a) => lu(a),
  cholesky: async (a) => cholesky(a),
  solveTriangular: async (t, b, opts) => solveTriangular(t, b, opts),
};
