/**
 * Matrix products on the WebAssembly kernels: JavaScript owns the memory, copies the operands in,
 * splits C among the workers, and copies C out.
 *
 * Memory: each thread packs into its own scratch (see engine.ts); the blocks of op(A), op(B) and C
 * of the current step lie on the engine's heap. A product whose operands exceed the working limit
 * (1 GiB by default) is computed in tiles of C and slices of k, copied in and out one at a time.
 *
 * Threads: C (or the current tile of it) is split into contiguous row ranges (when it has at
 * least as many rows as columns) or column ranges, one per worker; each worker packs its own
 * panels. Every element of C is the left-to-right sum over k computed by the same micro-kernel
 * whatever the split and the tiling (the kernels continue a sum across k slices), so results are
 * bit-identical for any number of threads and any working limit. Small products run on the calling
 * thread: posting to workers costs more than they take.
 */
import { LowrankError } from '../../core/errors.js';
import type { FloatArray, Matrix } from '../types.js';
import { ALIGN, alignUp, dtypeOf, elementBytes, type Engine } from './engine.js';
import { kernel, type Dtype, type Job } from './protocol.js';

/** The smallest working limit honoured: three 64×64 float64 blocks. */
const MIN_WORKING_BYTES = 3 * 64 * 64 * 8 + 3 * ALIGN;
/** Rows of C per thread are multiples of this (a multiple of the micro-tiles' 6 rows and of 8). */
const ROW_UNIT = 24;
/** Columns of C per thread are multiples of this (a multiple of the micro-tiles' 8 or 4 columns). */
const COL_UNIT = 8;

/** Settings of the products. */
export interface GemmOptions {
  /** Products of fewer floating-point operations (2·m·n·k) than this run on the calling thread. */
  readonly minThreadedFlops: number;
  /** The most bytes the operand blocks may take in WebAssembly memory before the product is tiled. */
  readonly workingBytes: number;
}

/** Copies rows r0…r0+rows, columns c0…c0+cols of a row-major matrix with `srcCols` columns into `dst` (dense). */
function copyIn(src: FloatArray, srcCols: number, r0: number, rows: number, c0: number, cols: number, dst: FloatArray): void {
  if (c0 === 0 && cols === srcCols) {
    dst.set(src.subarray(r0 * srcCols, (r0 + rows) * srcCols));
    return;
  }
  for (let r = 0; r < rows; r++) {
    const s = (r0 + r) * srcCols + c0;
    dst.set(src.subarray(s, s + cols), r * cols);
  }
}

/** Copies a dense rows×cols block into rows r0…, columns c0… of a row-major matrix with `dstCols` columns. */
function copyOut(src: FloatArray, rows: number, cols: number, dst: FloatArray, dstCols: number, r0: number, c0: number): void {
  if (c0 === 0 && cols === dstCols) {
    dst.set(src.subarray(0, rows * cols), r0 * dstCols);
    return;
  }
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * cols, (r + 1) * cols), (r0 + r) * dstCols + c0);
}

/** Block sizes so that the three blocks fit in `budget` bytes: halves the largest side until they do. */
function planTiles(m: number, n: number, k: number, size: number, budget: number): { mb: number; nb: number; kb: number } {
  let mb = m;
  let nb = n;
  let kb = k;
  const bytes = (): number => alignUp(mb * kb * size) + alignUp(kb * nb * size) + alignUp(mb * nb * size);
  while (bytes() > budget) {
    const largest = Math.max(mb, nb, kb);
    if (largest <= 64) throw new LowrankError('E_INTERNAL', `wasm matmul: ${budget} bytes of working memory cannot hold 64×64 blocks`);
    const half = Math.max(64, Math.ceil(largest / 2 / 64) * 64);
    if (mb === largest) mb = half;
    else if (nb === largest) nb = half;
    else kb = half;
  }
  return { mb, nb, kb };
}

/** C = op(A)·op(B) of the inputs' element type (computed in it), as one task of the engine. */
export function matmulOn<A extends FloatArray>(engine: Engine, options: GemmOptions, a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean): Promise<Matrix<A>> {
  return engine.exclusive(() => product(engine, options, a, b, transA, transB));
}

async function product<A extends FloatArray>(engine: Engine, options: GemmOptions, a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean): Promise<Matrix<A>> {
  const dtype = dtypeOf(a.data);
  const size = elementBytes(dtype);
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const out = (dtype === 'f32' ? new Float32Array(m * n) : new Float64Array(m * n)) as A;
  if (m === 0 || n === 0 || k === 0) return { rows: m, cols: n, data: out };

  const blocksAt = engine.heap;
  let limit = Math.min(Math.max(options.workingBytes, MIN_WORKING_BYTES), engine.maxBytes - blocksAt);
  let plan = planTiles(m, n, k, size, limit);
  const layout = (): { aAt: number; bAt: number; cAt: number; end: number } => {
    const aAt = blocksAt;
    const bAt = aAt + alignUp(plan.mb * plan.kb * size);
    const cAt = bAt + alignUp(plan.kb * plan.nb * size);
    return { aAt, bAt, cAt, end: cAt + plan.mb * plan.nb * size };
  };
  let at = layout();
  if (!engine.grow(at.end)) {
    // The host refused more memory: tile within what there is.
    limit = engine.memory.buffer.byteLength - blocksAt;
    if (limit < MIN_WORKING_BYTES) {
      throw new LowrankError('E_UNSUPPORTED', `wasm matmul: cannot grow WebAssembly memory to ${Math.ceil(at.end / 2 ** 20)} MiB`, { shape: [m, k, n] });
    }
    plan = planTiles(m, n, k, size, limit);
    at = layout();
  }

  const { mb, nb, kb } = plan;
  for (let i0 = 0; i0 < m; i0 += mb) {
    const rows = Math.min(mb, m - i0);
    for (let j0 = 0; j0 < n; j0 += nb) {
      const cols = Math.min(nb, n - j0);
      for (let p0 = 0; p0 < k; p0 += kb) {
        const depth = Math.min(kb, k - p0);
        // op(A)[i0…, p0…] stays in A's layout: rows×depth (lda = depth), or depth×rows transposed (lda = rows).
        const aBlock = engine.view(dtype, at.aAt, rows * depth);
        if (transA) copyIn(a.data, a.cols, p0, depth, i0, rows, aBlock);
        else copyIn(a.data, a.cols, i0, rows, p0, depth, aBlock);
        const bBlock = engine.view(dtype, at.bAt, depth * cols);
        if (transB) copyIn(b.data, b.cols, j0, cols, p0, depth, bBlock);
        else copyIn(b.data, b.cols, p0, depth, j0, cols, bBlock);
        await block(engine, options, dtype, size, transA, transB, rows, cols, depth, at.aAt, transA ? rows : depth, at.bAt, transB ? depth : cols, at.cAt, cols, p0 > 0);
      }
      copyOut(engine.view(dtype, at.cAt, rows * cols), rows, cols, out, n, i0, j0);
    }
  }
  return { rows: m, cols: n, data: out };
}

/** One block product C = op(A)·op(B) (or C += … when accumulate), split among the threads when large. */
async function block(
  engine: Engine,
  options: GemmOptions,
  dtype: Dtype,
  size: number,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
  ldc: number,
  accumulate: boolean,
): Promise<void> {
  const name = kernel(dtype, 'gemm');
  const ta = transA ? 1 : 0;
  const tb = transB ? 1 : 0;
  const acc = accumulate ? 1 : 0;
  const byRows = m >= n;
  const unit = byRows ? ROW_UNIT : COL_UNIT;
  const parts = 2 * m * n * k < options.minThreadedFlops ? 1 : Math.min(engine.threads, Math.ceil((byRows ? m : n) / unit));
  if (parts <= 1) {
    engine.call({ kernel: name, args: [ta, tb, m, n, k, a, lda, b, ldb, c, ldc, acc, engine.scratch(0)] });
    return;
  }
  const dim = byRows ? m : n;
  const units = Math.ceil(dim / unit);
  const jobs: Job[] = [];
  for (let t = 0; t < parts; t++) {
    const from = Math.min(dim, Math.round((units * t) / parts) * unit);
    const to = Math.min(dim, Math.round((units * (t + 1)) / parts) * unit);
    if (to <= from) continue;
    const work = engine.scratch(jobs.length);
    if (byRows) {
      // Rows from…to of op(A) and C.
      const aPart = a + (transA ? from : from * lda) * size;
      jobs.push({ kernel: name, args: [ta, tb, to - from, n, k, aPart, lda, b, ldb, c + from * ldc * size, ldc, acc, work] });
    } else {
      // Columns from…to of op(B) and C.
      const bPart = b + (transB ? from * ldb : from) * size;
      jobs.push({ kernel: name, args: [ta, tb, m, to - from, k, a, lda, bPart, ldb, c + from * size, ldc, acc, work] });
    }
  }
  await engine.run(jobs);
}
