/**
 * The native backend: OpenBLAS (CBLAS) and LAPACKE through an N-API addon written in C
 * (native/lowrank.c, with the training kernels in native/nn.c), built at install by scripts/build-native.mjs when the system libraries are
 * present. The addon runs each kernel on a libuv pool thread and resolves a promise, so the event
 * loop (progress bars, Ctrl-C) keeps running during long decompositions. The exception is a gemm
 * of at most 2^21 multiply-adds (a 128³ product, ~0.1 ms): it runs on the calling thread and its
 * promise is already settled, since the trip through the pool would cost about as much as it.
 *
 * Calls are serialized: OpenBLAS already spreads one call over all cores, and running several at
 * once would oversubscribe them and tie up the libuv pool that file reads also use.
 *
 * Inputs that LAPACK overwrites are copied when the call is made. The read-only inputs of matmul,
 * qr/orthonormalize and solveTriangular (A and B; A; T) are read in place while the work runs, since copying them would
 * cost as much as a skinny product: like a buffer passed to fs.write, they must not be changed or
 * transferred until the promise settles.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LowrankError } from '../../core/errors.js';
import { nnKernels } from '../js/nn.js';
import type { AttentionShape, Backend, CachedAttentionShape, FloatArray, Matrix, SvdJob, SvdResult } from '../types.js';

/** Where the addon is, relative to the package root. */
const ADDON = join('native', 'build', 'Release', 'lowrank_native.node');

/** What to do when the addon is missing. */
const HOW_TO_GET =
  'install the system libraries (Debian/Ubuntu: apt-get install libopenblas-dev liblapacke-dev), ' +
  'then run `npm rebuild lowrank` (or `npm run build:native` in a checkout)';

/** What the OpenBLAS library behind the addon reports. */
interface AddonInfo {
  readonly config: string;
  readonly corename: string;
  readonly threads: number;
  readonly parallel: string;
}

/** The functions native/lowrank.c exports (all arrays row-major; results have the input's type). */
interface Addon {
  gemm(a: FloatArray, aRows: number, aCols: number, b: FloatArray, bRows: number, bCols: number, transA: boolean, transB: boolean, c?: FloatArray, alpha?: number): Promise<FloatArray>;
  gemm(a: Float32Array, aRows: number, aCols: number, b: Float32Array, bRows: number, bCols: number, transA: boolean, transB: boolean, c: Float32Array, alpha: number, f16: boolean): Promise<Uint16Array>;
  encodeHalf(x: Float32Array, f16: boolean): Promise<Uint16Array>;
  decodeHalf(bits: Uint16Array, f16: boolean): Promise<Float32Array>;
  qr(a: FloatArray, rows: number, cols: number): Promise<[FloatArray, FloatArray]>;
  /** With qOnly: Q alone (CholeskyQR2 for a tall float32 A of at most 32 columns, else Householder). */
  qr(a: FloatArray, rows: number, cols: number, qOnly: true): Promise<FloatArray>;
  svd(a: FloatArray, rows: number, cols: number, job: SvdJob): Promise<[FloatArray, FloatArray | null, FloatArray | null]>;
  eigh(a: FloatArray, n: number, vectors: boolean): Promise<[FloatArray, FloatArray | null]>;
  lu(a: FloatArray, rows: number, cols: number): Promise<[FloatArray, Int32Array]>;
  cholesky(a: FloatArray, n: number): Promise<FloatArray>;
  trsm(t: FloatArray, n: number, b: FloatArray, cols: number, lower: boolean, trans: boolean, unitDiagonal: boolean): Promise<FloatArray>;
  info(): AddonInfo;
  allFinite(a: FloatArray): boolean;
  /** renameat2(RENAME_EXCHANGE): 0 when swapped, else the errno; −1 where there is no such call (absent from addons built before it). */
  renameExchange?(a: string, b: string): number;
  /** The float32 training kernels of native/nn.c (see js_nn there for each kind's inputs and outputs). */
  retainMemory(on: boolean): void;
  nn(kind: string, inputs: (Float32Array | Int32Array)[], dims: number[], scalar: number): Promise<Float32Array | (Float32Array | Float64Array)[]>;
}

/** What {@link nativeInfo} reports: the OpenBLAS build behind the addon, or why there is none. */
export type NativeInfo =
  | {
      readonly available: true;
      /** The addon file that was loaded. */
      readonly path: string;
      /** openblas_get_config(), e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64". */
      readonly config: string;
      /** openblas_get_corename(): the CPU kernel set in use, e.g. "Haswell". */
      readonly corename: string;
      /** openblas_get_num_threads(): how many threads one call may use. */
      readonly threads: number;
      /** openblas_get_parallel(): "sequential", "pthreads" or "openmp". */
      readonly parallel: string;
    }
  | { readonly available: false; readonly reason: string };

let loaded: { addon?: Addon; path?: string; reason?: string } | undefined;

/**
 * Looks for the built addon in this module's folder and its parents up to the package root (the
 * first folder with a package.json), so it is found from both src/ and dist/src/.
 */
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    if (existsSync(join(dir, 'package.json'))) break;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

function loadAddon(): { addon?: Addon; path?: string; reason?: string } {
  if (loaded !== undefined) return loaded;
  const path = findAddon();
  if (path === undefined) {
    loaded = { reason: `the native addon is not built (${ADDON} not found): ${HOW_TO_GET}` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<Addon>;
    const missing = (['gemm', 'qr', 'svd', 'eigh', 'lu', 'cholesky', 'trsm', 'info', 'allFinite', 'encodeHalf', 'decodeHalf', 'nn', 'retainMemory'] as const).filter((f) => typeof addon[f] !== 'function');
    if (missing.length > 0) {
      loaded = { reason: `the native addon at ${path} lacks ${missing.join(', ')}; rebuild it with \`npm run build:native\`` };
    } else {
      loaded = { addon: addon as Addon, path };
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    loaded = { reason: `the native addon at ${path} failed to load (${message}): ${HOW_TO_GET}` };
  }
  return loaded;
}

/** One call at a time (see the module comment). */
let tail: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = tail.then(fn, fn);
  tail = run.catch(() => undefined);
  return run;
}

/** Runs one addon call, turning its errors into LowrankErrors that name the routine. */
async function call<T>(routine: string, shape: readonly number[], fn: () => Promise<T>): Promise<T> {
  try {
    return await serialized(fn);
  } catch (e) {
    if (e instanceof LowrankError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const code = e instanceof Error && (e as Error & { code?: unknown }).code === 'E_NUMERIC' ? 'E_NUMERIC' : 'E_INTERNAL';
    throw new LowrankError(code, `native ${routine}: ${message}`, { shape }, { cause: e });
  }
}

/** The dims of an attention call: batch, t, heads, kv heads, head dim. */
function dims(s: AttentionShape): number[] {
  return [s.batch, s.t, s.heads, s.kvHeads, s.headDim];
}

function matrix<A extends FloatArray>(rows: number, cols: number, data: FloatArray): Matrix<A> {
  return { rows, cols, data: data as A };
}

function makeBackend(addon: Addon): Backend {
  let retaining = 0;
  return {
    name: 'native',

    allFinite: (data) => addon.allFinite(data),

    async matmul<A extends FloatArray>(a: Matrix<A>, b: Matrix<A>, transA: boolean, transB: boolean): Promise<Matrix<A>> {
      const m = transA ? a.cols : a.rows;
      const n = transB ? b.rows : b.cols;
      const c = await call('matmul', [a.rows, a.cols, b.rows, b.cols], () =>
        addon.gemm(a.data, a.rows, a.cols, b.data, b.rows, b.cols, transA, transB),
      );
      return matrix<A>(m, n, c);
    },

    async matmulAdd<A extends FloatArray>(c: Matrix<A>, a: Matrix<A>, b: Matrix<A>, alpha: number, transA: boolean, transB: boolean): Promise<Matrix<A>> {
      const out = await call('matmulAdd', [a.rows, a.cols, b.rows, b.cols], () =>
        addon.gemm(a.data, a.rows, a.cols, b.data, b.rows, b.cols, transA, transB, c.data, alpha),
      );
      return matrix<A>(c.rows, c.cols, out);
    },

    matmulAddHalf: (c, a, b, alpha, transA, transB, format) =>
      call('matmulAddHalf', [a.rows, a.cols, b.rows, b.cols], () => addon.gemm(a.data, a.rows, a.cols, b.data, b.rows, b.cols, transA, transB, c.data, alpha, format === 'f16')),

    // Training kernels: float32 in C (native/nn.c); float64 (gradient checks) on the js reference.
    async attention<A extends FloatArray>(q: A, k: A, v: A, s: AttentionShape): Promise<{ o: A; p: A }> {
      if (!(q instanceof Float32Array)) return nnKernels.attention(q, k, v, s);
      const [o, p] = (await call('attention', [q.length, k.length], () => addon.nn('attention', [q, k as Float32Array, v as Float32Array], dims(s), 0))) as A[];
      return { o, p };
    },
    async attentionBackward<A extends FloatArray>(q: A, k: A, v: A, p: A, dout: A, s: AttentionShape): Promise<{ dq: A; dk: A; dv: A }> {
      if (!(q instanceof Float32Array)) return nnKernels.attentionBackward(q, k, v, p, dout, s);
      const f = [q, k, v, p, dout] as Float32Array[];
      const [dq, dk, dv] = (await call('attentionBackward', [q.length, k.length], () => addon.nn('attentionBackward', f, dims(s), 0))) as A[];
      return { dq, dk, dv };
    },
    async attentionCached<A extends FloatArray>(q: A, kc: A, vc: A, start: Int32Array, s: CachedAttentionShape): Promise<A> {
      if (!(q instanceof Float32Array)) return nnKernels.attentionCached(q, kc, vc, start, s);
      const d = [s.batch, s.t, s.heads, s.kvHeads, s.headDim, s.past, s.capacity];
      return (await call('attentionCached', [q.length, kc.length], () => addon.nn('attentionCached', [q, kc as Float32Array, vc as Float32Array, start], d, 0))) as A;
    },
    async rmsNorm<A extends FloatArray>(x: Matrix<A>, g: A, eps: number): Promise<{ y: A; rstd: A }> {
      if (!(x.data instanceof Float32Array)) return nnKernels.rmsNorm(x, g, eps);
      const [y, rstd] = (await call('rmsNorm', [x.rows, x.cols], () => addon.nn('rmsNorm', [x.data as Float32Array, g as Float32Array], [x.rows, x.cols], eps))) as A[];
      return { y, rstd };
    },
    async rmsNormBackward<A extends FloatArray>(dy: Matrix<A>, x: A, g: A, rstd: A): Promise<{ dx: A; dg: A }> {
      if (!(dy.data instanceof Float32Array)) return nnKernels.rmsNormBackward(dy, x, g, rstd);
      const f = [dy.data, x, g, rstd] as Float32Array[];
      const [dx, dg] = (await call('rmsNormBackward', [dy.rows, dy.cols], () => addon.nn('rmsNormBackward', f, [dy.rows, dy.cols], 0))) as A[];
      return { dx, dg };
    },
    async swiglu<A extends FloatArray>(gate: A, up: A): Promise<A> {
      if (!(gate instanceof Float32Array)) return nnKernels.swiglu(gate, up);
      return (await call('swiglu', [gate.length], () => addon.nn('swiglu', [gate, up as Float32Array], [gate.length], 0))) as A;
    },
    async swigluBackward<A extends FloatArray>(dh: A, gate: A, up: A): Promise<{ dgate: A; dup: A }> {
      if (!(dh instanceof Float32Array)) return nnKernels.swigluBackward(dh, gate, up);
      const f = [dh, gate, up] as Float32Array[];
      const [dgate, dup] = (await call('swigluBackward', [dh.length], () => addon.nn('swigluBackward', f, [dh.length], 0))) as A[];
      return { dgate, dup };
    },
    async crossEntropy<A extends FloatArray>(logits: Matrix<A>, targets: Int32Array, ignore: number): Promise<{ lossSum: number; dlogits: A }> {
      if (!(logits.data instanceof Float32Array)) return nnKernels.crossEntropy(logits, targets, ignore);
      const [dlogits, loss] = (await call('crossEntropy', [logits.rows, logits.cols], () => addon.nn('crossEntropy', [logits.data as Float32Array, targets], [logits.rows, logits.cols], ignore))) as [A, Float64Array];
      return { lossSum: loss[0], dlogits };
    },

    retainFreedMemory() {
      if (retaining++ === 0) addon.retainMemory(true);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        if (--retaining === 0) addon.retainMemory(false);
      };
    },

    encodeHalf: (data, format) => call('encodeHalf', [data.length], () => addon.encodeHalf(data, format === 'f16')),
    decodeHalf: (bits, format) => call('decodeHalf', [bits.length], () => addon.decodeHalf(bits, format === 'f16')),

    async qr<A extends FloatArray>(a: Matrix<A>): Promise<{ q: Matrix<A>; r: Matrix<A> }> {
      const k = Math.min(a.rows, a.cols);
      const [q, r] = await call('qr', [a.rows, a.cols], () => addon.qr(a.data, a.rows, a.cols));
      return { q: matrix<A>(a.rows, k, q), r: matrix<A>(k, a.cols, r) };
    },

    async orthonormalize<A extends FloatArray>(a: Matrix<A>): Promise<Matrix<A>> {
      const q = await call('orthonormalize', [a.rows, a.cols], () => addon.qr(a.data, a.rows, a.cols, true));
      return matrix<A>(a.rows, Math.min(a.rows, a.cols), q);
    },

    async svd<A extends FloatArray>(a: Matrix<A>, job: SvdJob): Promise<SvdResult<A>> {
      const k = Math.min(a.rows, a.cols);
      const [s, u, vt] = await call('svd', [a.rows, a.cols], () => addon.svd(a.data, a.rows, a.cols, job));
      if (job === 'values' || u === null || vt === null) return { s: s as A };
      const uCols = job === 'full' ? a.rows : k;
      const vtRows = job === 'full' ? a.cols : k;
      return { u: matrix<A>(a.rows, uCols, u), s: s as A, vt: matrix<A>(vtRows, a.cols, vt) };
    },

    async eigh<A extends FloatArray>(a: Matrix<A>, vectors: boolean): Promise<{ values: A; vectors?: Matrix<A> }> {
      const [values, vecs] = await call('eigh', [a.rows, a.cols], () => addon.eigh(a.data, a.rows, vectors));
      if (vecs === null) return { values: values as A };
      return { values: values as A, vectors: matrix<A>(a.rows, a.rows, vecs) };
    },

    async lu<A extends FloatArray>(a: Matrix<A>): Promise<{ lu: Matrix<A>; perm: Int32Array }> {
      const [lu, perm] = await call('lu', [a.rows, a.cols], () => addon.lu(a.data, a.rows, a.cols));
      return { lu: matrix<A>(a.rows, a.cols, lu), perm };
    },

    async cholesky<A extends FloatArray>(a: Matrix<A>): Promise<Matrix<A>> {
      const l = await call('cholesky', [a.rows, a.cols], () => addon.cholesky(a.data, a.rows));
      return matrix<A>(a.rows, a.rows, l);
    },

    async solveTriangular<A extends FloatArray>(
      t: Matrix<A>,
      b: Matrix<A>,
      opts: { lower: boolean; trans: boolean; unitDiagonal: boolean },
    ): Promise<Matrix<A>> {
      const x = await call('solveTriangular', [t.rows, t.cols, b.rows, b.cols], () =>
        addon.trsm(t.data, t.rows, b.data, b.cols, opts.lower, opts.trans, opts.unitDiagonal),
      );
      return matrix<A>(b.rows, b.cols, x);
    },
  };
}

let backend: Backend | undefined;

/**
 * Loads the native backend once (later calls return the same result): `backend` when the addon is
 * built and loads, else `reason`, which says why not (not built, or the loader's error) and how to
 * get it.
 */
export function loadNativeBackend(): { backend?: Backend; reason?: string } {
  const r = loadAddon();
  if (r.addon === undefined) return { reason: r.reason };
  backend ??= makeBackend(r.addon);
  return { backend };
}

/** The errnos with which renameat2 says it cannot exchange here (old kernel, file system without it). */
const NO_EXCHANGE = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP']); // libuv names Linux's EOPNOTSUPP ENOTSUP

/**
 * Swaps two existing paths in one step where the OS can (Linux renameat2 RENAME_EXCHANGE through
 * the addon): true when swapped; false when it cannot here (no addon, another OS, a file system
 * without it), for the caller to fall back; a failure of the call itself throws the system error.
 */
export function renameExchange(a: string, b: string): boolean {
  const exchange = loadAddon().addon?.renameExchange;
  if (exchange === undefined) return false;
  const r = exchange(a, b);
  if (r === 0) return true;
  if (r < 0) return false;
  const name = getSystemErrorName(-r);
  if (NO_EXCHANGE.has(name)) return false;
  throw Object.assign(new Error(`renameat2 ${a} <-> ${b}: ${name}`), { code: name, errno: r });
}

/** The OpenBLAS build behind the native backend (config string, kernel, threads) for `lowrank doctor`. */
export function nativeInfo(): NativeInfo {
  const r = loadAddon();
  if (r.addon === undefined || r.path === undefined) return { available: false, reason: r.reason ?? 'unavailable' };
  try {
    const i = r.addon.info();
    return { available: true, path: r.path, config: i.config, corename: i.corename, threads: i.threads, parallel: i.parallel };
  } catch (e) {
    return { available: false, reason: `the native addon failed to report its OpenBLAS build: ${e instanceof Error ? e.message : String(e)}` };
  }
}
