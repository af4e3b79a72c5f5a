/**
 * The two row-parallel steps of the wasm decompositions: accumulating an orthogonal factor from
 * stored Householder reflectors (independent per row), and applying the rotations a QR iteration
 * logged (independent per column). Both split their work among the engine's threads with no
 * communication until the end.
 */
import { LowrankError } from '../../core/errors.js';
import type { RowOps } from '../js/util.js';
import type { FloatArray } from '../types.js';
import { splitByCost, type Engine } from './engine.js';
import { kernel, type Dtype } from './protocol.js';

/** Work (in flops) below which a step runs on the calling thread: a worker round trip costs more. */
const MIN_PARALLEL_FLOPS = 2 ** 22;

/**
 * Rows 0 … rows of Qᵀ into x (row stride ld) from the reflectors in refl (row stride ldr; τ at
 * taus; reflector k starts at column k + off): see formRows in assembly/householder.ts.
 */
export async function formFactorRows(
  engine: Engine,
  dtype: Dtype,
  x: number,
  ld: number,
  rows: number,
  refl: number,
  ldr: number,
  taus: number,
  nrefl: number,
  off: number,
): Promise<void> {
  // Row r meets reflectors 0 … min(r − off, nrefl − 1), reflector k over ld − k − off columns.
  const cost = (r: number): number => {
    const top = Math.min(r - off, nrefl - 1);
    return top < 0 ? 1 : (top + 1) * (ld - off) - (top * (top + 1)) / 2;
  };
  let total = 0;
  for (let r = 0; r < rows; r++) total += 4 * cost(r);
  const parts = total < MIN_PARALLEL_FLOPS ? 1 : engine.threads;
  const name = kernel(dtype, 'formRows');
  await engine.run(splitByCost(rows, parts, 4, cost).map(([r0, r1]) => ({ kernel: name, args: [x, ld, r0, r1, refl, ldr, taus, nrefl, off] })));
}

/**
 * The row operations of a QR iteration on an n×ld matrix x in the engine's memory, logged: the
 * rotations go to a log in the memory (applied by {@link RotationLog.flush}, or at once on this
 * thread if the log fills up), the final swaps and sign changes to a permutation read by the
 * copy-out methods.
 */
export class RotationLog implements RowOps {
  private count = 0;
  private readonly codes: Int32Array;
  private readonly cs: FloatArray;
  /** Logical row i is sign[i] times stored row perm[i]. */
  private readonly perm: Int32Array;
  private readonly sign: Int8Array;
  private permuted = false;

  /**
   * @param x the matrix (byte address), `rows` rows of `ld` elements
   * @param logAt room for `capacity` int32 codes; csAt for 2·capacity elements
   */
  constructor(
    private readonly engine: Engine,
    private readonly dtype: Dtype,
    private readonly x: number,
    private readonly ld: number,
    rows: number,
    private readonly logAt: number,
    private readonly csAt: number,
    private readonly capacity: number,
  ) {
    this.codes = engine.i32(logAt, capacity);
    this.cs = engine.view(dtype, csAt, 2 * capacity);
    this.perm = Int32Array.from({ length: rows }, (_, i) => i);
    this.sign = new Int8Array(rows).fill(1);
  }

  /** Bytes of memory a log of `capacity` entries takes: [codes, cs]. */
  static bytes(dtype: Dtype, capacity: number): [number, number] {
    return [4 * capacity, 2 * capacity * (dtype === 'f32' ? 4 : 8)];
  }

  rotate(a: number, b: number, c: number, s: number): void {
    if (this.permuted) throw new LowrankError('E_INTERNAL', 'wasm rotation log: a rotation after the final permutation');
    const t = this.count;
    this.codes[t] = 2 * a + (b === a - 1 ? 1 : 0);
    this.cs[2 * t] = c;
    this.cs[2 * t + 1] = s;
    if (++this.count === this.capacity) {
      this.engine.call({ kernel: kernel(this.dtype, 'rotate'), args: [this.x, this.ld, 0, this.ld, this.logAt, this.csAt, this.count] });
      this.count = 0;
    }
  }

  swap(a: number, b: number): void {
    this.permuted = true;
    const p = this.perm[a];
    this.perm[a] = this.perm[b];
    this.perm[b] = p;
    const s = this.sign[a];
    this.sign[a] = this.sign[b];
    this.sign[b] = s;
  }

  negate(a: number): void {
    this.permuted = true;
    this.sign[a] = -this.sign[a];
  }

  /** Applies the logged rotations, the columns split among the threads. */
  async flush(): Promise<void> {
    const count = this.count;
    if (count === 0) return;
    this.count = 0;
    const parts = 6 * count * this.ld < MIN_PARALLEL_FLOPS ? 1 : this.engine.threads;
    const name = kernel(this.dtype, 'rotate');
    const ranges = splitByCost(this.ld, parts, 16, () => 1);
    await this.engine.run(ranges.map(([c0, c1]) => ({ kernel: name, args: [this.x, this.ld, c0, c1, this.logAt, this.csAt, count] })));
  }

  /** out (rows × ld, row-major) ← logical rows 0 … rows. Call after {@link flush}. */
  copyRows(out: FloatArray, rows: number): void {
    const ld = this.ld;
    const x = this.engine.view(this.dtype, this.x, this.perm.length * ld);
    for (let i = 0; i < rows; i++) {
      const src = this.perm[i] * ld;
      if (this.sign[i] > 0) out.set(x.subarray(src, src + ld), i * ld);
      else for (let j = 0; j < ld; j++) out[i * ld + j] = -x[src + j];
    }
  }

  /** out (ld × cols, row-major) ← the transpose of logical rows 0 … cols. Call after {@link flush}. */
  copyColumns(out: FloatArray, cols: number): void {
    const ld = this.ld;
    const x = this.engine.view(this.dtype, this.x, this.perm.length * ld);
    for (let i = 0; i < cols; i++) {
      const src = this.perm[i] * ld;
      const sg = this.sign[i];
      for (let j = 0; j < ld; j++) out[j * cols + i] = sg * x[src + j];
    }
  }
}
