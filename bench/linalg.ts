/**
 * The `linalg` suite: dense linear algebra on every available lowrank backend, side by side in the
 * same run with numpy (python3, its bundled OpenBLAS), jax-js (its wasm device) and ml-matrix.
 *
 * Groups (float32 unless said otherwise; every matrix from a seeded normal RNG):
 *   gemm 1024, 2048, 4096 (C = A·B, 2mnk flops), each lowrank backend also timed through its
 *   matmul kernel alone (`<backend> kernel`: no finiteness checks, no output copy);
 *   qr 2048 (thin: Q and R), svd 1024 and 2048, 4096 on native only (thin: U, s, Vt), eigh 2048
 *   (values and vectors);
 *   rsvd rank 64 of 4096x4096, oversample 10, niter 2 (numpy: the same Halko steps in python),
 *   with its two building blocks (the 4096x4096·4096x74 product and the 4096x74 QR) timed alone;
 *   the smaller sizes the slow peers can finish: svd and eigh 256 and 512 for jax-js, qr, svd and
 *   eigh 512 and 1024 for ml-matrix (float64: it computes on JS numbers, on Matrix.rand), where
 *   lowrank and numpy run too.
 * The js backend (the plain TypeScript reference) runs once at gemm 1024 and svd 1024 only.
 *
 * Within a group the participants alternate round by round (the starting one rotating), so drift
 * from other load hits all alike, with a short pause after every run (see GAP_MS); medians are
 * reported and every ratio is taken within the run. A participant stops repeating after
 * GROUP_BUDGET_S seconds in a group and skips a size its previous one predicts over PREDICT_SKIP_S.
 * numpy runs in one python3 process per group that loads the same matrices from a temporary file
 * and times itself with time.perf_counter between commands sent on its stdin (data loading and
 * process start are not timed). Every lowrank backend and jax-js is checked against numpy on the
 * same input (a Frobenius norm, singular values, |diag R|, extreme eigenvalues).
 *
 * `npm run bench -- linalg -- quick` is a smoke run at 1/8 of the sides (about half a minute).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { backendStatus, eigh, matmul, qr, rsvd, svd, useBackend, type Backend, type BackendName, type BackendStatus } from '../src/linalg/index.js';
import { nativeInfo } from '../src/backend/native/index.js';
import { tensor, type Tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { fmtRatio, fmtSeconds, median, now, printTable, PY_MAX_RSS, requireNumpy, withTempDir, type SuiteOptions } from './util.js';

export const description = 'gemm, qr, svd, eigh, rsvd on every backend vs numpy (OpenBLAS), jax-js and ml-matrix';

// ---- the plan -------------------------------------------------------------------------------------

type Op = 'gemm' | 'qr' | 'svd' | 'eigh' | 'rsvd';
type Peer = 'numpy' | 'jax-js' | 'ml-matrix';

/** Lowrank's rsvd defaults, used by the numpy Halko script too. */
const RSVD = { rank: 64, oversample: 10, niter: 2, side: 4096 } as const;
/** The sketch width l = rank + oversample. */
const SKETCH = RSVD.rank + RSVD.oversample;

/** One participant of a group: who, how many timed runs at most, and whether one untimed run comes first. */
interface Entry {
  /** A backend name, `<backend> kernel` (the backend's matmul without the linalg frontend), or a peer. */
  readonly who: string;
  readonly reps: number;
  readonly warmup: boolean;
}

interface GroupSpec {
  readonly op: Op;
  /** gemm: [m, k, n] (m×k · k×n); qr, svd: [m, n]; eigh: [n]; rsvd: [m, n]. */
  readonly dims: readonly number[];
  /** What the group is, in the table ('2048', '4096x4096·4096x74'). */
  readonly label: string;
  /** Shown after the op in the table ('rsvd step'). */
  readonly tag?: string;
  readonly entries: readonly Entry[];
}

/**
 * Pause after every run: OpenBLAS's worker threads busy-wait for about 0.1 s after a call before
 * they sleep, so without it numpy's spinning threads slow down the native run that follows (and
 * the other way round) on 2 cores.
 */
const GAP_MS = 300;
const pause = (): Promise<void> => new Promise((res) => setTimeout(res, GAP_MS));
/** A participant stops repeating once its runs in a group add up to this many seconds. */
const GROUP_BUDGET_S = 45;
/** A participant skips a group when its time there, predicted from the previous size, exceeds this. */
const PREDICT_SKIP_S = 90;

function buildPlan(backends: readonly BackendName[]): GroupSpec[] {
  const fast = backends.filter((b) => b !== 'js');
  const lr = (reps: number, warmup: boolean, only?: readonly BackendName[]): Entry[] =>
    fast.filter((b) => only === undefined || only.includes(b)).map((who) => ({ who, reps, warmup }));
  const kernel = (reps: number): Entry[] => fast.map((b) => ({ who: `${b} kernel`, reps, warmup: true }));
  const js = backends.includes('js') ? [{ who: 'js', reps: 1, warmup: false }] : [];
  const e = (who: string, reps: number, warmup: boolean): Entry => ({ who, reps, warmup });
  const sq = (op: Op, n: number, entries: Entry[]): GroupSpec => ({ op, dims: op === 'eigh' ? [n] : op === 'gemm' ? [n, n, n] : [n, n], label: String(n), entries });
  return [
    sq('gemm', 1024, [...lr(5, true), ...kernel(5), ...js, e('numpy', 5, true), e('jax-js', 5, true)]),
    sq('gemm', 2048, [...lr(5, true), ...kernel(5), e('numpy', 5, true), e('jax-js', 3, true)]),
    sq('gemm', 4096, [...lr(5, true), ...kernel(5), e('numpy', 5, true), e('jax-js', 2, true)]),
    sq('qr', 512, [...lr(5, true), e('numpy', 5, true), e('ml-matrix', 1, false)]),
    sq('qr', 1024, [...lr(3, true), e('numpy', 3, true), e('ml-matrix', 1, false)]),
    sq('qr', 2048, [...lr(5, false), e('numpy', 5, false)]),
    sq('svd', 256, [...lr(5, true), e('numpy', 5, true), e('jax-js', 2, true)]),
    sq('svd', 512, [...lr(3, true), e('numpy', 3, true), e('ml-matrix', 1, false), e('jax-js', 1, false)]),
    sq('svd', 1024, [...lr(5, false), ...js, e('numpy', 5, false), e('ml-matrix', 1, false)]),
    sq('svd', 2048, [...lr(5, false), e('numpy', 5, false)]),
    sq('svd', 4096, [...lr(2, false, ['native']), e('numpy', 2, false)]),
    sq('eigh', 256, [...lr(5, true), e('numpy', 5, true), e('jax-js', 2, true)]),
    sq('eigh', 512, [...lr(3, true), e('numpy', 3, true), e('ml-matrix', 1, false), e('jax-js', 1, false)]),
    sq('eigh', 1024, [...lr(3, false), e('numpy', 3, false), e('ml-matrix', 1, false)]),
    sq('eigh', 2048, [...lr(5, false), e('numpy', 5, false)]),
    { op: 'gemm', dims: [RSVD.side, RSVD.side, SKETCH], label: `${RSVD.side}x${RSVD.side}·${RSVD.side}x${SKETCH}`, tag: 'rsvd step', entries: [...lr(5, true), ...kernel(5), e('numpy', 5, true)] },
    { op: 'qr', dims: [RSVD.side, SKETCH], label: `${RSVD.side}x${SKETCH}`, tag: 'rsvd step', entries: [...lr(5, true), e('numpy', 5, true)] },
    { op: 'rsvd', dims: [RSVD.side, RSVD.side], label: `${RSVD.side} r${RSVD.rank}`, entries: [...lr(5, true), e('numpy', 5, true)] },
  ];
}

/**
 * `-- quick`: a smoke test of the whole suite in under a minute, every side of 256 or more divided
 * by 8 and one timed run each; its sizes are not the issue's, so the targets read NOT MEASURED.
 */
function quickPlan(plan: readonly GroupSpec[]): GroupSpec[] {
  const shrink = (d: number): number => (d >= 256 ? d / 8 : d);
  return plan.map((g) => ({
    ...g,
    dims: g.dims.map(shrink),
    label: g.label.replace(/\d+/g, (d) => String(shrink(Number(d)))),
    entries: g.entries.map((e) => ({ ...e, reps: 1 })),
  }));
}

// ---- data -----------------------------------------------------------------------------------------

/** Seeded inputs, shared by all participants of a group (numpy reads the same bytes from a file). */
class DataStore {
  private readonly arrays = new Map<string, Float32Array>();
  private readonly files = new Map<string, string>();
  constructor(private readonly dir: string) {}

  /** A rows×cols normal matrix, or the symmetric (A + Aᵀ)/2 of one when `sym`. */
  get(rows: number, cols: number, seed: number, sym = false): { key: string; data: Float32Array } {
    const key = `${rows}x${cols}-s${seed}${sym ? '-sym' : ''}`;
    let data = this.arrays.get(key);
    if (data === undefined) {
      data = new Float32Array(rows * cols);
      rng(seed).fillNormal(data);
      if (sym) {
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < i; j++) {
            const v = 0.5 * (data[i * cols + j] + data[j * cols + i]);
            data[i * cols + j] = v;
            data[j * cols + i] = v;
          }
        }
      }
      this.arrays.set(key, data);
    }
    return { key, data };
  }

  /** The file holding an array made by {@link get} (raw little-endian float32, row-major). */
  async file(key: string): Promise<string> {
    let path = this.files.get(key);
    if (path === undefined) {
      const data = this.arrays.get(key);
      if (data === undefined) throw new Error(`no data ${key}`);
      path = join(this.dir, `${key}.f32`);
      await writeFile(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.files.set(key, path);
    }
    return path;
  }

  /** Forgets every array but those named (files stay until the folder is removed). */
  keepOnly(keys: readonly string[]): void {
    for (const k of [...this.arrays.keys()]) if (!keys.includes(k)) this.arrays.delete(k);
  }
}

/** The inputs of a group: A (and B for gemm). */
function groupInputs(g: GroupSpec, store: DataStore): { a: { key: string; data: Float32Array }; b?: { key: string; data: Float32Array }; rows: number; cols: number } {
  if (g.op === 'gemm') {
    const [m, k, n] = g.dims;
    return { a: store.get(m, k, 1), b: store.get(k, n, 2), rows: m, cols: k };
  }
  const [m, n] = g.op === 'eigh' ? [g.dims[0], g.dims[0]] : g.dims;
  return { a: store.get(m, n, 1, g.op === 'eigh'), rows: m, cols: n };
}

// ---- participants ---------------------------------------------------------------------------------

/** A few numbers that every correct implementation of the op agrees on for the same input. */
type Check = Record<string, number>;

interface RunResult {
  readonly seconds: number;
  readonly check?: Check;
}

interface Runner {
  run(): Promise<RunResult>;
  close(): Promise<void>;
}

function frob(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function sum(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

/** A lowrank backend through the linalg frontend, or (`kernel`) its matmul kernel alone. */
function lowrankRunner(name: BackendName, kernelOnly: boolean, g: GroupSpec, store: DataStore): Runner {
  const inp = groupInputs(g, store);
  const a = tensor('f32', [inp.rows, inp.cols], inp.a.data);
  const b = inp.b === undefined ? undefined : tensor('f32', [g.dims[1], g.dims[2]], inp.b.data);
  const work = async (be: Backend): Promise<() => Check> => {
    switch (g.op) {
      case 'gemm': {
        if (b === undefined) throw new Error('gemm without B');
        if (kernelOnly) {
          const c = await be.matmul({ rows: a.shape[0], cols: a.shape[1], data: a.data }, { rows: b.shape[0], cols: b.shape[1], data: b.data }, false, false);
          return () => ({ frob: frob(c.data) });
        }
        const c = await matmul(a, b);
        return () => ({ frob: frob(c.data) });
      }
      case 'qr': {
        const { r } = await qr(a);
        return () => diagR(r);
      }
      case 'svd': {
        const { s } = await svd(a);
        return () => ({ s0: s.data[0], ssum: sum(s.data) });
      }
      case 'eigh': {
        const { values } = await eigh(a);
        return () => ({ min: values.data[0], max: values.data[values.data.length - 1] });
      }
      case 'rsvd': {
        const { s } = await rsvd(a, RSVD.rank, { oversample: RSVD.oversample, niter: RSVD.niter, seed: 0 });
        return () => ({ s0: s.data[0] });
      }
    }
  };
  return {
    async run() {
      const be = useBackend(name);
      const t0 = now();
      const check = await work(be);
      const seconds = now() - t0;
      return { seconds, check: check() };
    },
    async close() {},
  };
}

function diagR(r: Tensor<'f32'>): Check {
  const [k, n] = r.shape;
  let s = 0;
  for (let i = 0; i < Math.min(k, n); i++) s += Math.abs(r.data[i * n + i]);
  return { diagR: s };
}

// ---- numpy: one python3 process per group, driven through its stdin ------------------------------

const NUMPY_PEER = `
import json, sys, time
spec = json.loads(sys.argv[1])
op = spec['op']

def load(path, rows, cols):
    return np.fromfile(path, dtype=np.float32).reshape(rows, cols)

def halko(a, k, p, niter, gen):
    m, n = a.shape
    l = min(k + p, m, n)
    omega = gen.standard_normal((n, l), dtype=np.float32)
    q, _ = np.linalg.qr(a @ omega)
    for _ in range(niter):
        z, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ z)
    b = q.T @ a
    ub, s, vt = np.linalg.svd(b, full_matrices=False)
    u = q @ ub
    return u[:, :k], s[:k], vt[:k]

if op == 'gemm':
    m, k, n = spec['dims']
    a, b = load(spec['a'], m, k), load(spec['b'], k, n)
    work = lambda: a @ b
    check = lambda c: {'frob': float(np.linalg.norm(c.astype(np.float64)))}
elif op == 'qr':
    m, n = spec['dims']
    a = load(spec['a'], m, n)
    work = lambda: np.linalg.qr(a)
    check = lambda r: {'diagR': float(np.abs(np.diag(r[1])).astype(np.float64).sum())}
elif op == 'svd':
    m, n = spec['dims']
    a = load(spec['a'], m, n)
    work = lambda: np.linalg.svd(a, full_matrices=False)
    check = lambda r: {'s0': float(r[1][0]), 'ssum': float(r[1].astype(np.float64).sum())}
elif op == 'eigh':
    n = spec['dims'][0]
    a = load(spec['a'], n, n)
    work = lambda: np.linalg.eigh(a)
    check = lambda r: {'min': float(r[0][0]), 'max': float(r[0][-1])}
elif op == 'rsvd':
    m, n = spec['dims']
    a = load(spec['a'], m, n)
    gen = np.random.default_rng(0)
    work = lambda: halko(a, spec['rank'], spec['oversample'], spec['niter'], gen)
    check = lambda r: {'s0': float(r[1][0])}
else:
    raise SystemExit('unknown op ' + op)

def blas():
    try:
        b = np.show_config(mode='dicts')['Build Dependencies']['blas']
        out = '%s %s (%s)' % (b.get('name', '?'), b.get('version', '?'), b.get('openblas configuration', '').strip())
    except Exception as e:
        return 'unknown (%s)' % e
    try:  # the kernel set chosen at run time (DYNAMIC_ARCH) and the thread count, from the library itself
        import ctypes, glob, os
        for path in glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs', '*openblas*')):
            lib = ctypes.CDLL(path)
            for suffix in ('64_', ''):
                for prefix in ('scipy_openblas', 'openblas'):
                    core = getattr(lib, '%s_get_corename%s' % (prefix, suffix), None)
                    nth = getattr(lib, '%s_get_num_threads%s' % (prefix, suffix), None)
                    if core is not None and nth is not None:
                        core.restype = ctypes.c_char_p
                        return '%s, kernel %s, %d threads' % (out, core().decode(), nth())
    except Exception:
        pass
    return out

print(json.dumps({'ready': True, 'numpy': np.__version__, 'blas': blas()}), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == 'quit':
        break
    t0 = time.perf_counter()
    r = work()
    dt = time.perf_counter() - t0
    out = {'seconds': dt}
    if cmd == 'run':
        out['check'] = check(r)
    del r
    print(json.dumps(out), flush=True)
print(json.dumps({'maxRssBytes': _max_rss_bytes()}), flush=True)
`;

interface NumpyInfo {
  numpy: string;
  blas: string;
}

/** A python3 process holding one group's data; each `run`/`warmup` line on its stdin times one run. */
class PythonPeer {
  private readonly lines: AsyncIterator<string>;
  private stderr = '';
  private exited = false;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    child.on('exit', () => {
      this.exited = true;
    });
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(spec: Record<string, unknown>): Promise<{ peer: PythonPeer; info: NumpyInfo }> {
    const child = spawn('python3', ['-c', `import numpy as np\n${PY_MAX_RSS}\n${NUMPY_PEER}`, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new PythonPeer(child);
    const ready = await peer.next();
    return { peer, info: { numpy: String(ready.numpy), blas: String(ready.blas) } };
  }

  private async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done === true) {
      await new Promise((res) => setTimeout(res, 50));
      throw new Error(`the numpy process ended early:\n${this.stderr.trim()}`);
    }
    try {
      return JSON.parse(r.value) as Record<string, unknown>;
    } catch {
      throw new Error(`the numpy process printed: ${r.value}\n${this.stderr.trim()}`);
    }
  }

  async request(cmd: 'run' | 'warmup'): Promise<RunResult> {
    this.child.stdin.write(`${cmd}\n`);
    const r = await this.next();
    return { seconds: Number(r.seconds), check: r.check as Check | undefined };
  }

  async close(): Promise<number | undefined> {
    if (this.exited) return undefined;
    try {
      this.child.stdin.end('quit\n');
      const r = await this.next();
      return Number(r.maxRssBytes);
    } catch {
      return undefined;
    } finally {
      if (!this.exited) this.child.kill();
    }
  }
}

let numpyInfo: NumpyInfo | undefined;

async function numpyRunner(g: GroupSpec, store: DataStore): Promise<Runner & { warmupRun(): Promise<RunResult> }> {
  const inp = groupInputs(g, store);
  const spec: Record<string, unknown> = { op: g.op, dims: g.dims, a: await store.file(inp.a.key) };
  if (inp.b !== undefined) spec.b = await store.file(inp.b.key);
  if (g.op === 'rsvd') Object.assign(spec, { rank: RSVD.rank, oversample: RSVD.oversample, niter: RSVD.niter });
  const { peer, info } = await PythonPeer.start(spec);
  numpyInfo ??= info;
  return {
    run: () => peer.request('run'),
    warmupRun: () => peer.request('warmup'),
    async close() {
      await peer.close();
    },
  };
}

// ---- jax-js (its wasm device) ---------------------------------------------------------------------

type JaxModule = typeof import('@jax-js/jax');
type JaxArray = import('@jax-js/jax').Array;

let jaxState: { jax: JaxModule; version: string; threads: string } | { reason: string } | undefined;

/** Loads and starts jax-js once; a smoke test (a small product checked by hand) must pass. */
async function loadJax(): Promise<{ jax: JaxModule; version: string; threads: string } | { reason: string }> {
  if (jaxState !== undefined) return jaxState;
  try {
    const jax = await import('@jax-js/jax');
    const devices = await jax.init('wasm');
    if (!devices.includes('wasm')) throw new Error(`its wasm device did not start (devices: ${devices.join(', ')})`);
    jax.defaultDevice('wasm');
    const np = jax.numpy;
    const x = np.array(new Float32Array([1, 2, 3, 4])).reshape([2, 2]);
    const y = np.matmul(x.ref, x).dataSync();
    if (Array.from(y).join() !== '7,10,15,22') throw new Error(`a 2x2 smoke test gave ${Array.from(y).join()}`);
    // jax-js spreads wasm kernels over Web Workers only when the global Worker exists (not in Node).
    const threads = typeof (globalThis as { Worker?: unknown }).Worker === 'undefined' ? '1 thread (Node has no global Worker)' : 'Web Workers';
    jaxState = { jax, version: packageVersion('@jax-js/jax'), threads };
  } catch (e) {
    jaxState = { reason: e instanceof Error ? e.message : String(e) };
  }
  return jaxState;
}

async function jaxRunner(g: GroupSpec, store: DataStore): Promise<Runner> {
  const st = await loadJax();
  if ('reason' in st) throw new Error(`jax-js cannot run here: ${st.reason}`);
  const np = st.jax.numpy;
  const inp = groupInputs(g, store);
  const a: JaxArray = np.array(inp.a.data).reshape([inp.rows, inp.cols]);
  await a.blockUntilReady();
  let b: JaxArray | undefined;
  if (inp.b !== undefined) {
    b = np.array(inp.b.data).reshape([g.dims[1], g.dims[2]]);
    await b.blockUntilReady();
  }
  // Every result is read back with dataSync() (a blocking read, which also frees it).
  const work = (): (() => Check) => {
    switch (g.op) {
      case 'gemm': {
        if (b === undefined) throw new Error('gemm without B');
        const c = np.matmul(a.ref, b.ref).dataSync();
        return () => ({ frob: frob(c) });
      }
      case 'svd': {
        const [u, s, vt] = np.linalg.svd(a.ref, { fullMatrices: false });
        const sv = s.dataSync();
        u.dataSync();
        vt.dataSync();
        return () => ({ s0: sv[0], ssum: sum(sv) });
      }
      case 'eigh': {
        const [w, v] = np.linalg.eigh(a.ref);
        const wv = w.dataSync();
        v.dataSync();
        return () => ({ min: wv[0], max: wv[wv.length - 1] });
      }
      default:
        throw new Error(`jax-js has no ${g.op} here`);
    }
  };
  return {
    async run() {
      const t0 = now();
      const check = work();
      const seconds = now() - t0;
      return { seconds, check: check() };
    },
    async close() {
      a.dispose();
      b?.dispose();
    },
  };
}

// ---- ml-matrix (float64, on Matrix.rand) ----------------------------------------------------------

const importMl = () => import('ml-matrix');
type MlModule = Awaited<ReturnType<typeof importMl>>;
let mlState: { ml: MlModule; version: string } | { reason: string } | undefined;

async function loadMl(): Promise<{ ml: MlModule; version: string } | { reason: string }> {
  if (mlState !== undefined) return mlState;
  try {
    mlState = { ml: await importMl(), version: packageVersion('ml-matrix') };
  } catch (e) {
    mlState = { reason: e instanceof Error ? e.message : String(e) };
  }
  return mlState as { ml: MlModule; version: string } | { reason: string };
}

async function mlRunner(g: GroupSpec): Promise<Runner> {
  const st = await loadMl();
  if ('reason' in st) throw new Error(`ml-matrix cannot run here: ${st.reason}`);
  const { Matrix, SVD, QrDecomposition, EigenvalueDecomposition } = st.ml;
  const [m, n] = g.op === 'eigh' ? [g.dims[0], g.dims[0]] : g.dims;
  const a = Matrix.rand(m, n);
  if (g.op === 'eigh') a.add(a.transpose()); // in place: A + Aᵀ, symmetric
  const work = (): void => {
    if (g.op === 'svd') new SVD(a);
    else if (g.op === 'qr') {
      const d = new QrDecomposition(a);
      void d.orthogonalMatrix; // Q is formed on first access; lowrank and numpy return it too
      void d.upperTriangularMatrix;
    } else if (g.op === 'eigh') new EigenvalueDecomposition(a, { assumeSymmetric: true });
    else throw new Error(`ml-matrix has no ${g.op} here`);
  };
  return {
    async run() {
      const t0 = now();
      work();
      return { seconds: now() - t0 };
    },
    async close() {},
  };
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      } catch {
        // not here; look in the parent
      }
      dir = dirname(dir);
    }
  } catch {
    // fall through
  }
  return '?';
}

// ---- running a group ------------------------------------------------------------------------------

interface Participant {
  readonly who: string;
  readonly reps: number;
  readonly warmup: boolean;
  times: number[];
  check?: Check;
  checkDiff?: number;
  error?: string;
  skipped?: string;
  maxReps: number;
}

interface GroupResult {
  readonly op: Op;
  readonly label: string;
  readonly tag?: string;
  readonly dims: readonly number[];
  /** 2mnk for gemm. */
  readonly flops?: number;
  readonly participants: Participant[];
}

/** Rough cost of a group, to predict a participant's time from its previous group of the same op. */
function cost(g: GroupSpec): number {
  if (g.op === 'gemm') return g.dims[0] * g.dims[1] * g.dims[2];
  const [m, n] = g.op === 'eigh' ? [g.dims[0], g.dims[0]] : g.dims;
  return m * n * Math.min(m, n);
}

const CHECK_TOL: Record<Op, number> = { gemm: 1e-4, qr: 1e-3, svd: 1e-3, eigh: 1e-3, rsvd: 0.05 };

/** The largest relative difference of two checks (eigenvalues relative to the largest magnitude). */
function checkDiff(op: Op, mine: Check, ref: Check): number {
  let worst = 0;
  const scale = op === 'eigh' ? Math.max(Math.abs(ref.min), Math.abs(ref.max)) : undefined;
  for (const [k, v] of Object.entries(ref)) {
    const x = mine[k];
    if (x === undefined) continue;
    const d = Math.abs(x - v) / Math.max(1e-30, scale ?? Math.abs(v));
    worst = Math.max(worst, Number.isFinite(d) ? d : Infinity);
  }
  return worst;
}

interface Ctx {
  readonly store: DataStore;
  readonly t0: number;
  /** Last median per `${op}:${who}` and the cost of that group. */
  readonly last: Map<string, { seconds: number; cost: number }>;
}

function stamp(ctx: Ctx): string {
  return `[${(now() - ctx.t0).toFixed(0).padStart(4)} s]`;
}

async function makeRunner(who: string, g: GroupSpec, ctx: Ctx): Promise<Runner & { warmupRun?(): Promise<RunResult> }> {
  if (who === 'numpy') return numpyRunner(g, ctx.store);
  if (who === 'jax-js') return jaxRunner(g, ctx.store);
  if (who === 'ml-matrix') return mlRunner(g);
  const kernelOnly = who.endsWith(' kernel');
  return lowrankRunner((kernelOnly ? who.slice(0, -' kernel'.length) : who) as BackendName, kernelOnly, g, ctx.store);
}

async function runGroup(g: GroupSpec, ctx: Ctx): Promise<GroupResult> {
  const title = `${g.op} ${g.label}${g.tag === undefined ? '' : ` (${g.tag})`}`;
  const parts: Participant[] = g.entries.map((e) => ({ ...e, times: [], maxReps: e.reps }));
  const runners = new Map<string, Runner & { warmupRun?(): Promise<RunResult> }>();
  console.log(`${stamp(ctx)} ${title}: ${parts.map((p) => `${p.who} ${p.reps}${p.warmup ? '+w' : ''}`).join(', ')}`);
  try {
    for (const p of parts) {
      const prev = ctx.last.get(`${g.op}:${p.who}`);
      if (prev !== undefined) {
        const predicted = (prev.seconds * cost(g)) / prev.cost;
        if (predicted > PREDICT_SKIP_S) {
          p.skipped = `predicted ${fmtSeconds(predicted)} per run from the previous size`;
          console.log(`         ${p.who}: skipped (${p.skipped})`);
          continue;
        }
      }
      try {
        const r = await makeRunner(p.who, g, ctx);
        runners.set(p.who, r);
        if (p.warmup) {
          await (r.warmupRun ?? r.run)();
          await pause();
        }
      } catch (e) {
        p.error = e instanceof Error ? e.message : String(e);
        console.log(`         ${p.who}: FAILED to start: ${p.error.split('\n')[0]}`);
      }
    }
    const active = parts.filter((p) => runners.has(p.who));
    const rounds = Math.max(0, ...active.map((p) => p.maxReps));
    for (let round = 0; round < rounds; round++) {
      const shift = round % Math.max(1, active.length);
      const order = [...active.slice(shift), ...active.slice(0, shift)];
      const line: string[] = [];
      for (const p of order) {
        if (p.error !== undefined || p.times.length >= p.maxReps) continue;
        try {
          const r = await (runners.get(p.who) as Runner).run();
          await pause();
          p.times.push(r.seconds);
          if (p.check === undefined && r.check !== undefined) p.check = r.check;
          line.push(`${p.who} ${fmtSeconds(r.seconds)}`);
          if (sum(p.times) >= GROUP_BUDGET_S) p.maxReps = p.times.length;
        } catch (e) {
          p.error = e instanceof Error ? e.message : String(e);
          line.push(`${p.who} FAILED`);
          console.log(`         ${p.who}: FAILED: ${p.error.split('\n')[0]}`);
        }
      }
      if (line.length > 0) console.log(`${stamp(ctx)}   run ${round + 1}: ${line.join(' | ')}`);
    }
  } finally {
    for (const r of runners.values()) await r.close().catch(() => undefined);
  }
  // Same work: every participant on numpy's input against numpy's answer.
  const ref = parts.find((p) => p.who === 'numpy')?.check;
  const checks: string[] = [];
  for (const p of parts) {
    if (p.who === 'numpy' || p.check === undefined || ref === undefined) continue;
    p.checkDiff = checkDiff(g.op, p.check, ref);
    const ok = p.checkDiff <= CHECK_TOL[g.op];
    checks.push(`${p.who} ${p.checkDiff.toExponential(0)}${ok ? '' : ' DISAGREES'}`);
  }
  const flops = g.op === 'gemm' ? 2 * g.dims[0] * g.dims[1] * g.dims[2] : undefined;
  const np = parts.find((p) => p.who === 'numpy');
  const summary = parts
    .filter((p) => p.times.length > 0)
    .map((p) => {
      const m = median(p.times);
      const rate = flops === undefined ? '' : ` ${(flops / m / 1e9).toFixed(1)} GFLOP/s`;
      const vs = np !== undefined && np.times.length > 0 && p !== np ? ` (${fmtR(median(np.times) / m)} numpy)` : '';
      return `${p.who} ${fmtSeconds(m)}${rate}${vs}`;
    });
  console.log(`         median: ${summary.join(' | ')}`);
  if (checks.length > 0) console.log(`         vs numpy's answer (relative, tolerance ${CHECK_TOL[g.op]}): ${checks.join(', ')}`);
  for (const p of parts) if (p.times.length > 0) ctx.last.set(`${g.op}:${p.who}`, { seconds: median(p.times), cost: cost(g) });
  return { op: g.op, label: g.label, tag: g.tag, dims: g.dims, flops, participants: parts };
}

// ---- the suite ------------------------------------------------------------------------------------

export async function run(opts: SuiteOptions): Promise<unknown> {
  requireNumpy();
  const quick = opts.args.includes('quick');
  const status = backendStatus();
  const backends = status.filter((s) => s.available).map((s) => s.name);
  return withTempDir('lowrank-bench-linalg-', async (dir) => {
    const jax = await loadJax();
    const ml = await loadMl();
    const ni = nativeInfo();
    console.log('lowrank backends:');
    for (const s of status) console.log(`  ${s.name.padEnd(7)} ${s.available ? 'available' : `unavailable: ${s.detail}`}`);
    if (ni.available) console.log(`  native: ${ni.config}; kernel ${ni.corename}, ${ni.threads} threads (${ni.parallel})`);
    console.log(`  js is the plain reference: it runs once, at gemm 1024 and svd 1024 only`);
    console.log('peers:');
    console.log(`  numpy: python3, one process per group, float32, timed inside python (time.perf_counter)`);
    console.log(`  jax-js: ${'reason' in jax ? `CANNOT RUN here (${jax.reason}); its columns stay empty` : `${jax.version}, wasm device, ${jax.threads}; float32 matmul at 1024-4096, svd and eigh (Jacobi) at 256 and 512 only (no qr)`}`);
    console.log(`  ml-matrix: ${'reason' in ml ? `CANNOT RUN here (${ml.reason})` : `${ml.version}, float64 (JS numbers) on Matrix.rand; qr, svd and eigh (EigenvalueDecomposition) at 512 and 1024 only, one run each`}`);
    console.log(`  (a run of each slow peer at the next size up would take over a minute; a participant also stops repeating after ${GROUP_BUDGET_S} s in a group)\n`);

    const ctx: Ctx = { store: new DataStore(dir), t0: now(), last: new Map() };
    const plan = quick ? quickPlan(buildPlan(backends)) : buildPlan(backends);
    if (quick) console.log('QUICK smoke run: sides divided by 8, one run each; the targets are not measured at these sizes\n');
    const groups: GroupResult[] = [];
    for (const g of plan) {
      groups.push(await runGroup(g, ctx));
      const inp = groupInputs(g, ctx.store);
      ctx.store.keepOnly([inp.a.key]); // the 4096 A is reused by the later groups
    }
    await rm(dir, { recursive: true, force: true });

    console.log();
    printResultTable(groups, backends);
    console.log();
    const nativeBlas = ni.available ? `${ni.config}, kernel ${ni.corename}, ${ni.threads} threads` : 'unavailable';
    if (quick) console.log("targets: not evaluated in a quick run (these are not the issue's sizes)");
    const targets = quick ? [] : evaluateTargets(groups, status, nativeBlas);
    return {
      numpy: numpyInfo,
      native: ni,
      backends: status,
      jax: 'reason' in jax ? { available: false, reason: jax.reason } : { available: true, version: jax.version, device: 'wasm', threads: jax.threads },
      mlMatrix: 'reason' in ml ? { available: false, reason: ml.reason } : { available: true, version: ml.version, dtype: 'f64' },
      settings: { quick, groupBudgetSeconds: GROUP_BUDGET_S, predictSkipSeconds: PREDICT_SKIP_S, rsvd: RSVD },
      groups: groups.map((g) => ({
        op: g.op,
        label: g.label,
        tag: g.tag,
        dims: g.dims,
        flops: g.flops,
        participants: Object.fromEntries(
          g.participants.map((p) => [
            p.who,
            {
              dtype: p.who === 'ml-matrix' ? 'f64' : 'f32',
              warmup: p.warmup,
              seconds: p.times,
              medianSeconds: p.times.length > 0 ? median(p.times) : undefined,
              gflops: g.flops !== undefined && p.times.length > 0 ? g.flops / median(p.times) / 1e9 : undefined,
              check: p.check,
              relDiffToNumpy: p.checkDiff,
              error: p.error,
              skipped: p.skipped,
            },
          ]),
        ),
      })),
      targets,
    };
  });
}

// ---- the table ------------------------------------------------------------------------------------

/** A ratio such as `0.83x`, with two significant digits below 0.1 (`0.0045x`). */
function fmtR(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return 'n/a';
  return r >= 0.1 ? fmtRatio(r) : `${r.toPrecision(2)}x`;
}

function med(g: GroupResult | undefined, who: string): number | undefined {
  const p = g?.participants.find((x) => x.who === who);
  return p === undefined || p.times.length === 0 ? undefined : median(p.times);
}

/** Speed of `who` relative to `peer` (peer's time / who's time; for gemm the GFLOP/s ratio). */
function speed(g: GroupResult | undefined, who: string, peer: string): number | undefined {
  const a = med(g, who);
  const b = med(g, peer);
  return a === undefined || b === undefined ? undefined : b / a;
}

function cell(g: GroupResult, who: string): string {
  const p = g.participants.find((x) => x.who === who);
  if (p === undefined) return '—';
  if (p.times.length === 0) return p.error !== undefined ? 'failed' : p.skipped !== undefined ? 'skipped' : '—';
  const m = median(p.times);
  const n = p.times.length > 1 ? '' : ' (1 run)';
  return g.flops === undefined ? `${fmtSeconds(m)}${n}` : `${fmtSeconds(m)} ${(g.flops / m / 1e9).toFixed(1)} GF/s${n}`;
}

function printResultTable(groups: readonly GroupResult[], backends: readonly BackendName[]): void {
  const fast = backends.filter((b) => b !== 'js');
  const peers: Peer[] = ['numpy', 'jax-js', 'ml-matrix'];
  const header = ['op', 'size', 'dtype', ...backends, ...peers];
  for (const b of backends) header.push(`${b}/numpy`);
  for (const b of fast) header.push(`${b}/jax-js`, `${b}/ml-matrix`);
  const rows = groups.map((g) => {
    const hasMl = g.participants.some((p) => p.who === 'ml-matrix' && p.times.length > 0);
    const r = [g.tag === undefined ? g.op : `${g.op} (${g.tag})`, g.label, hasMl ? 'f32 (ml f64)' : 'f32'];
    for (const who of [...backends, ...peers]) r.push(cell(g, who));
    const ratio = (x: number | undefined): string => (x === undefined ? '—' : fmtR(x));
    for (const b of backends) r.push(ratio(speed(g, b, 'numpy')));
    for (const b of fast) r.push(ratio(speed(g, b, 'jax-js')), ratio(speed(g, b, 'ml-matrix')));
    return r;
  });
  console.log('medians (GF/s = 2mnk / time for gemm; "(1 run)" marks a single timed run). Ratios are speed ratios measured in this run:');
  console.log('b/peer = peer\'s time / b\'s time, so above 1x means the lowrank backend is faster (for gemm, the GFLOP/s ratio).\n');
  printTable(header, rows);
}

// ---- the targets ----------------------------------------------------------------------------------

/** What bounds the wasm decompositions, for the notes on their misses. */
const WASM_DECOMPOSITION_BOUND =
  'The wasm decompositions are unblocked (LAPACK level 2): the Householder reduction (QR, bidiagonal, tridiagonal) runs on one thread at memory speed, the factors are accumulated from the reflectors on all threads, and the QR iteration on the bidiagonal or tridiagonal applies about 0.8n² logged rotations per factor (6 flops per element) on all threads. LAPACK blocks the reductions into matrix products and replaces the rotations by divide and conquer (sgesdd, ssyevd), which this backend does not have yet.';

interface TargetResult {
  readonly target: string;
  readonly status: 'PASS' | 'MISS' | 'NOT MEASURED';
  readonly measured: string;
  readonly note?: string;
}

function cpuSimd(): { name: string; lanes: number } {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    if (/\bavx512f\b/.test(flags)) return { name: 'AVX-512', lanes: 16 };
    if (/\bavx2\b/.test(flags)) return { name: 'AVX2', lanes: 8 };
  } catch {
    // not Linux
  }
  return { name: 'the CPU\'s SIMD', lanes: 0 };
}

function spread(g: GroupResult | undefined, who: string): string {
  const p = g?.participants.find((x) => x.who === who);
  if (p === undefined || p.times.length === 0) return 'n/a';
  const lo = Math.min(...p.times);
  const hi = Math.max(...p.times);
  return p.times.length === 1 ? `${fmtSeconds(lo)} (1 run)` : `${fmtSeconds(lo)}–${fmtSeconds(hi)}`;
}

function evaluateTargets(groups: readonly GroupResult[], status: readonly BackendStatus[], nativeBlas: string): TargetResult[] {
  const find = (op: Op, label: string, tag?: string): GroupResult | undefined => groups.find((g) => g.op === op && g.label === label && g.tag === tag);
  const avail = (b: BackendName): BackendStatus | undefined => status.find((s) => s.name === b);
  const out: TargetResult[] = [];
  const simd = cpuSimd();
  const npBlas = numpyInfo?.blas ?? 'numpy\'s OpenBLAS';

  /** A "speed >= threshold" target; `bound` explains a miss. */
  const atLeast = (target: string, backend: BackendName, value: number | undefined, threshold: number, bound: () => string, timeWording = false): void => {
    const s = avail(backend);
    if (s === undefined || !s.available) {
      out.push({ target, status: 'NOT MEASURED', measured: `the ${backend} backend is unavailable here (${s?.detail ?? 'unknown'})` });
      return;
    }
    if (value === undefined) {
      out.push({ target, status: 'NOT MEASURED', measured: 'no timing (a participant failed or was skipped; see above)' });
      return;
    }
    const measured = timeWording ? `${fmtRatio(value)} numpy's speed (time ${fmtRatio(1 / value)} numpy's; needs <= ${fmtRatio(1 / threshold)})` : `${fmtRatio(value)} (needs >= ${fmtRatio(threshold)})`;
    if (value >= threshold) out.push({ target, status: 'PASS', measured });
    else out.push({ target, status: 'MISS', measured, note: `short by ${(100 * (1 - value / threshold)).toFixed(0)} % (needs ${fmtRatio(threshold / value)} more speed). ${bound()}` });
  };

  // gemm against numpy
  for (const [backend, threshold] of [['native', 0.9], ['wasm', 0.4]] as const) {
    for (const n of ['1024', '2048', '4096']) {
      const g = find('gemm', n);
      atLeast(`${backend} gemm ${n}: >= ${threshold}x numpy's GFLOP/s`, backend, speed(g, backend, 'numpy'), threshold, () => {
        const kern = speed(g, `${backend} kernel`, 'numpy');
        const front = med(g, backend) !== undefined && med(g, `${backend} kernel`) !== undefined ? (med(g, backend) as number) / (med(g, `${backend} kernel`) as number) - 1 : undefined;
        const kernelPart = kern === undefined ? '' : `The kernel alone (backend matmul without the frontend's finiteness checks and output copy) reaches ${fmtRatio(kern)} numpy; the frontend adds ${front === undefined ? '?' : (100 * front).toFixed(0)} % at this size. `;
        const why =
          backend === 'native'
            ? `Both sides are OpenBLAS sgemm: lowrank's native is ${nativeBlas}; numpy's is ${npBlas}; the rest of the gap is the BLAS build or run-to-run noise (native ${spread(g, 'native')}, numpy ${spread(g, 'numpy')}).`
            : `WebAssembly SIMD is 128-bit (4 float32 lanes) against ${simd.lanes > 0 ? `${simd.lanes} lanes of ${simd.name}` : 'wider vectors'} in OpenBLAS's kernels on this CPU, so the per-core peak is ${simd.lanes > 0 ? `1/${simd.lanes / 4}` : 'a fraction'} of numpy's.`;
        return kernelPart + why;
      });
    }
  }
  // svd against numpy
  for (const n of ['1024', '2048', '4096']) {
    const g = find('svd', n);
    atLeast(`native svd ${n}: no slower than numpy`, 'native', speed(g, 'native', 'numpy'), 1, () =>
      `Both call LAPACK sgesdd on the same matrix (lowrank's native: ${nativeBlas}; numpy: ${npBlas}); lowrank adds one input copy, so the gap is the LAPACK/BLAS build or noise (native ${spread(g, 'native')}, numpy ${spread(g, 'numpy')}).`,
      true,
    );
  }
  {
    const g = find('svd', '1024');
    atLeast('wasm svd 1024: within 5x of numpy', 'wasm', speed(g, 'wasm', 'numpy'), 0.2, () => WASM_DECOMPOSITION_BOUND, true);
  }
  // rsvd against the numpy Halko script
  for (const [backend, threshold] of [['native', 1 / 1.5], ['wasm', 1 / 3]] as const) {
    const g = find('rsvd', `${RSVD.side} r${RSVD.rank}`);
    atLeast(`${backend} rsvd rank ${RSVD.rank} of ${RSVD.side}x${RSVD.side} (niter ${RSVD.niter}): within ${fmtRatio(1 / threshold)} of numpy's Halko`, backend, speed(g, backend, 'numpy'), threshold, () => {
      const gg = find('gemm', `${RSVD.side}x${RSVD.side}·${RSVD.side}x${SKETCH}`, 'rsvd step');
      const gq = find('qr', `${RSVD.side}x${SKETCH}`, 'rsvd step');
      const products = 2 * RSVD.niter + 2;
      const qrs = 2 * RSVD.niter + 1;
      const est = (who: string): string => {
        const p = med(gg, who);
        const q = med(gq, who);
        const t = med(g, who);
        if (p === undefined || q === undefined || t === undefined) return `${who}: n/a`;
        return `${who}: ${products} products ${fmtSeconds(products * p)} + ${qrs} QRs ${fmtSeconds(qrs * q)} of ${fmtSeconds(t)}`;
      };
      const kernel = med(gg, `${backend} kernel`);
      const full = med(gg, backend);
      const split =
        kernel === undefined || full === undefined
          ? ''
          : ` One product takes ${fmtSeconds(full)} through linalg.matmul but ${fmtSeconds(kernel)} in the backend kernel alone (${fmtR(speed(gg, `${backend} kernel`, 'numpy'))} numpy): the frontend's finiteness check of the ${RSVD.side}x${RSVD.side} A and the output copy cost ${fmtSeconds(full - kernel)} per product.`;
      return `rsvd is ${products} products with A (${RSVD.side}x${RSVD.side} by ${SKETCH} columns, memory-bound) and ${qrs} QRs of ${RSVD.side}x${SKETCH}, the same steps in both; estimated from the steps timed alone: ${est(backend)}; ${est('numpy')} (product ${fmtR(speed(gg, backend, 'numpy'))} numpy, QR ${fmtR(speed(gq, backend, 'numpy'))} numpy).${split}`;
    });
  }
  // every decomposition at least 20x faster than jax-js and ml-matrix, where they ran
  for (const backend of ['native', 'wasm'] as const) {
    for (const peer of ['jax-js', 'ml-matrix'] as const) {
      for (const op of ['qr', 'svd', 'eigh'] as const) {
        const gs = groups.filter((g) => g.op === op && g.tag === undefined && g.participants.some((p) => p.who === peer));
        if (gs.length === 0) continue;
        const target = `${backend} ${op}: >= 20x faster than ${peer} (${gs.map((g) => g.label).join(', ')})`;
        const s = avail(backend);
        if (s === undefined || !s.available) {
          out.push({ target, status: 'NOT MEASURED', measured: `the ${backend} backend is unavailable here (${s?.detail ?? 'unknown'})` });
          continue;
        }
        const vals = gs.map((g) => ({ label: g.label, v: speed(g, backend, peer) }));
        const measuredVals = vals.filter((x): x is { label: string; v: number } => x.v !== undefined);
        if (measuredVals.length === 0) {
          out.push({ target, status: 'NOT MEASURED', measured: `${peer} did not run (see above)` });
          continue;
        }
        const measured = vals.map((x) => `${x.label}: ${x.v === undefined ? 'n/a' : fmtRatio(x.v)}`).join(', ');
        const worst = measuredVals.reduce((a, b) => (b.v < a.v ? b : a));
        if (worst.v >= 20) out.push({ target, status: 'PASS', measured });
        else {
          const g = gs.find((x) => x.label === worst.label);
          out.push({
            target,
            status: 'MISS',
            measured,
            note: `at ${worst.label} short by ${(100 * (1 - worst.v / 20)).toFixed(0)} %: ${backend} took ${fmtSeconds(med(g, backend) as number)} against ${peer}'s ${fmtSeconds(med(g, peer) as number)}; 20x would need ${fmtSeconds((med(g, peer) as number) / 20)}.` +
              (backend === 'wasm' ? ` ${WASM_DECOMPOSITION_BOUND}` : ''),
          });
        }
      }
    }
  }
  // gemm at least 2x jax-js's wasm throughput
  for (const backend of ['native', 'wasm'] as const) {
    const gs = groups.filter((g) => g.op === 'gemm' && g.tag === undefined);
    const vals = gs.map((g) => ({ label: g.label, v: speed(g, backend, 'jax-js') }));
    const ok = vals.filter((x): x is { label: string; v: number } => x.v !== undefined);
    const target = `${backend} gemm: >= 2x jax-js's wasm GFLOP/s (${gs.map((g) => g.label).join(', ')})`;
    const s = avail(backend);
    if (s === undefined || !s.available) out.push({ target, status: 'NOT MEASURED', measured: `the ${backend} backend is unavailable here (${s?.detail ?? 'unknown'})` });
    else if (ok.length === 0) out.push({ target, status: 'NOT MEASURED', measured: 'jax-js did not run (see above)' });
    else {
      const measured = vals.map((x) => `${x.label}: ${x.v === undefined ? 'n/a' : fmtRatio(x.v)}`).join(', ');
      const worst = ok.reduce((a, b) => (b.v < a.v ? b : a));
      out.push(
        worst.v >= 2
          ? { target, status: 'PASS', measured }
          : { target, status: 'MISS', measured, note: `at ${worst.label} short by ${(100 * (1 - worst.v / 2)).toFixed(0)} %; jax-js runs its wasm matmul on ${'reason' in (jaxState ?? { reason: '' }) ? '?' : (jaxState as { threads: string }).threads}.` },
      );
    }
  }

  console.log('targets (ratios to numpy and the peers measured in this run):');
  for (const t of out) {
    console.log(`  ${t.status.padEnd(12)} ${t.target}: ${t.measured}`);
    if (t.note !== undefined) console.log(`${' '.repeat(15)}${t.note}`);
  }
  return out;
}
