/**
 * The kernel module of lowrank's wasm backend (the entry scripts/build-wasm.mjs compiles): matrix
 * products, Householder reductions and rotation sequences. Every export takes byte addresses into
 * the imported memory, allocates nothing and keeps no state, so any number of instances (one per
 * worker thread) can run on one shared memory.
 */
export { sgemm, dgemm, sgemmScratchBytes, dgemmScratchBytes } from './gemm';
export { sqr, dqr, sbidiagonalize, dbidiagonalize, stridiagonalize, dtridiagonalize, sformRows, dformRows } from './householder';
export { srotate, drotate } from './rotations';
