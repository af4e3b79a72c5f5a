/**
 * The `tensor` suite: HOSVD, HOOI (fixed sweeps), CP-ALS (fixed iterations) and TT-SVD on
 * 64×64×64 and 128×128×128 float32 tensors, each lowrank backend side by side in the same run with
 * a numpy implementation of the same algorithm and iteration counts (TensorLy cannot be installed
 * here; the numpy version is written below, step for step what lowrank does: SVDs of the
 * unfoldings, mode products through tensordot, MTTKRP as unfolding · Khatri–Rao, the R×R normal
 * equations solved).
 *
 * Data (seeded): for Tucker and TT a tensor of multilinear rank 16 (a random core times random
 * orthonormal factors) plus 1 % Gaussian noise; for CP a rank-16 CP tensor (random normal factors)
 * plus 1 % noise. Ranks 16 everywhere; HOOI runs 5 sweeps after its HOSVD start, CP-ALS 10
 * iterations from the SVD start. numpy runs in one python3 process per size that loads the same
 * float32 data from a temporary file and times itself (time.perf_counter); lowrank is timed in
 * this process. Medians of REPS runs after one warm-up; the relative reconstruction errors
 * ‖x − x̂‖/‖x‖ are printed for both, which must agree.
 *
 * `npm run bench -- tensor -- quick` runs the 64 size only, once.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tensor as makeTensor, type Tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { backendStatus, useBackend, type BackendName } from '../src/linalg/index.js';
import { cp, cpToTensor, tensorTrain, tucker, tuckerToTensor, ttToTensor } from '../src/tensor/index.js';
import { fmtRatio, fmtSeconds, median, now, printTable, runPythonJson, withTempDir, type SuiteOptions } from './util.js';

export const description = 'HOSVD, HOOI, CP-ALS and TT-SVD on 64³ and 128³ float32 tensors vs the same algorithms in numpy';

const RANK = 16;
const HOOI_SWEEPS = 5;
const CP_ITERS = 10;
const REPS = 3;
const NOISE = 0.01;

type Algo = 'hosvd' | 'hooi' | 'cp' | 'tt';
const ALGOS: readonly Algo[] = ['hosvd', 'hooi', 'cp', 'tt'];

/** A tensor of multilinear rank r (random core, orthonormal factors) or CP rank r, plus noise. */
function structured(kind: 'tucker' | 'cp', n: number, r: number, seed: number): Float32Array {
  const g = rng(seed);
  const x = new Float64Array(n * n * n);
  if (kind === 'cp') {
    const f = [0, 1, 2].map(() => g.fillNormal(new Float64Array(n * r)));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n; k++) {
          let s = 0;
          for (let c = 0; c < r; c++) s += f[0][i * r + c] * f[1][j * r + c] * f[2][k * r + c];
          x[(i * n + j) * n + k] = s;
        }
      }
    }
  } else {
    // Core r×r×r; factors n×r with orthonormal columns (Gram–Schmidt in float64).
    const core = g.fillNormal(new Float64Array(r * r * r));
    const fs = [0, 1, 2].map(() => orthonormal(g.fillNormal(new Float64Array(n * r)), n, r));
    // x = core ×₀ F₀ ×₁ F₁ ×₂ F₂, one mode at a time.
    let y = core;
    let shape = [r, r, r];
    for (let m = 0; m < 3; m++) {
      const out = new Float64Array((y.length / shape[m]) * n);
      const before = shape.slice(0, m).reduce((a, b) => a * b, 1);
      const after = shape.slice(m + 1).reduce((a, b) => a * b, 1);
      for (let a = 0; a < before; a++) {
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < shape[m]; c++) {
            const f = fs[m][i * r + c];
            if (f === 0) continue;
            const src = (a * shape[m] + c) * after;
            const dst = (a * n + i) * after;
            for (let b = 0; b < after; b++) out[dst + b] += f * y[src + b];
          }
        }
      }
      y = out;
      shape = shape.map((d, k) => (k === m ? n : d));
    }
    x.set(y);
  }
  let norm = 0;
  for (const v of x) norm += v * v;
  const scale = (NOISE * Math.sqrt(norm)) / Math.sqrt(x.length);
  const noise = g.fillNormal(new Float64Array(x.length));
  for (let i = 0; i < x.length; i++) x[i] += scale * noise[i];
  return Float32Array.from(x);
}

function orthonormal(a: Float64Array, n: number, r: number): Float64Array {
  for (let c = 0; c < r; c++) {
    for (let p = 0; p < c; p++) {
      let d = 0;
      for (let i = 0; i < n; i++) d += a[i * r + c] * a[i * r + p];
      for (let i = 0; i < n; i++) a[i * r + c] -= d * a[i * r + p];
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i * r + c] ** 2;
    s = Math.sqrt(s);
    for (let i = 0; i < n; i++) a[i * r + c] /= s;
  }
  return a;
}

function relError(x: Float32Array, y: Tensor<'f32'>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i] - y.data[i]) ** 2;
    den += x[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** One lowrank run of an algorithm, returning the reconstruction. */
async function lowrankRun(algo: Algo, x: Tensor<'f32'>): Promise<() => Promise<Tensor<'f32'>>> {
  const ranks = [RANK, RANK, RANK];
  if (algo === 'hosvd') {
    const t = await tucker(x, ranks, { method: 'hosvd' });
    return () => tuckerToTensor(t);
  }
  if (algo === 'hooi') {
    const t = await tucker(x, ranks, { method: 'hooi', tol: 0, maxIter: HOOI_SWEEPS });
    return () => tuckerToTensor(t);
  }
  if (algo === 'cp') {
    const t = await cp(x, RANK, { init: 'svd', tol: 0, maxIter: CP_ITERS });
    return () => cpToTensor(t);
  }
  const t = await tensorTrain(x, { maxRank: RANK });
  return () => ttToTensor(t);
}

const NUMPY_PEER = String.raw`
import json, sys, time
spec = json.loads(sys.argv[1])
R = spec['rank']; reps = spec['reps']; n = spec['n']
data = {k: np.fromfile(f, dtype=np.float32).reshape(n, n, n) for k, f in spec['files'].items()}

def unfold(t, m):
    return np.moveaxis(t, m, 0).reshape(t.shape[m], -1)

def mode_dot(t, u, m, transpose=False):
    return np.moveaxis(np.tensordot(u.T if transpose else u, t, axes=([1], [m])), 0, m)

def top(a, r):
    return np.linalg.svd(a, full_matrices=False)[0][:, :r]

def hosvd(t, ranks):
    fs = [top(unfold(t, m), r) for m, r in enumerate(ranks)]
    core = t
    for m, u in enumerate(fs): core = mode_dot(core, u, m, True)
    return core, fs

def hooi(t, ranks, sweeps):
    core, fs = hosvd(t, ranks)
    for _ in range(sweeps):
        for m in range(t.ndim):
            y = t
            for k, u in enumerate(fs):
                if k != m: y = mode_dot(y, u, k, True)
            fs[m] = top(unfold(y, m), ranks[m])
        core = t
        for k, u in enumerate(fs): core = mode_dot(core, u, k, True)
    return core, fs

def tucker_to_tensor(out):
    core, fs = out
    for k, u in enumerate(fs): core = mode_dot(core, u, k)
    return core

def khatri_rao(ms):
    out = ms[0]
    for m in ms[1:]: out = (out[:, None, :] * m[None, :, :]).reshape(-1, out.shape[1])
    return out

def cp_als(t, rank, iters):
    unf = [unfold(t, m) for m in range(t.ndim)]
    fs = [top(u, rank) for u in unf]
    for _ in range(iters):
        for m in range(t.ndim):
            v = np.ones((rank, rank), dtype=t.dtype)
            for k, f in enumerate(fs):
                if k != m: v = v * (f.T @ f)
            mt = unf[m] @ khatri_rao([f for k, f in enumerate(fs) if k != m])
            fs[m] = np.linalg.solve(v, mt.T).T
    return fs

def cp_to_tensor(fs):
    return (fs[0] @ khatri_rao(fs[1:]).T).reshape([f.shape[0] for f in fs])

def tt_svd(t, max_rank):
    dims = t.shape; cores = []; rp = 1; c = t
    for k in range(len(dims) - 1):
        u, s, vt = np.linalg.svd(c.reshape(rp * dims[k], -1), full_matrices=False)
        r = min(max_rank, s.size)
        cores.append(u[:, :r].reshape(rp, dims[k], r))
        c = s[:r, None] * vt[:r]
        rp = r
    cores.append(c.reshape(rp, dims[-1], 1))
    return cores

def tt_to_tensor(cores):
    y = cores[0].reshape(-1, cores[0].shape[2])
    for c in cores[1:]: y = (y @ c.reshape(c.shape[0], -1)).reshape(-1, c.shape[2])
    return y.reshape([c.shape[1] for c in cores])

ranks = [R, R, R]
algos = {
    'hosvd': ('tucker', lambda x: hosvd(x, ranks), tucker_to_tensor),
    'hooi': ('tucker', lambda x: hooi(x, ranks, spec['hooi']), tucker_to_tensor),
    'cp': ('cp', lambda x: cp_als(x, R, spec['cp']), cp_to_tensor),
    'tt': ('tucker', lambda x: tt_svd(x, R), tt_to_tensor),
}
res = {}
for name in spec['algos']:
    kind, run, rec = algos[name]
    x = data[kind]
    out = run(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); out = run(x); times.append(time.perf_counter() - t0)
    y = rec(out).astype(np.float64); x64 = x.astype(np.float64)
    res[name] = {'times': times, 'error': float(np.linalg.norm((x64 - y).ravel()) / np.linalg.norm(x64.ravel()))}
print(json.dumps(res))
`;

interface Row {
  algo: Algo;
  n: number;
  numpy: { median: number; error: number };
  lowrank: Record<string, { median: number; error: number } | { error: string }>;
}

export async function run(opts: SuiteOptions): Promise<unknown> {
  const quick = opts.args.includes('quick');
  const sizes = quick ? [64] : [64, 128];
  const reps = quick ? 1 : REPS;
  const backends = backendStatus()
    .filter((s) => s.available && s.name !== 'js')
    .map((s) => s.name as BackendName);
  console.log(`lowrank backends: ${backends.join(', ')} (js is the plain reference and is not timed here)`);
  console.log(`rank ${RANK}; HOOI ${HOOI_SWEEPS} sweeps after HOSVD; CP-ALS ${CP_ITERS} iterations from the SVD start; median of ${reps} after a warm-up\n`);
  const rows: Row[] = [];
  await withTempDir('lowrank-bench-tensor-', async (dir) => {
    for (const n of sizes) {
      const data = { tucker: structured('tucker', n, RANK, 100 + n), cp: structured('cp', n, RANK, 200 + n) };
      const files = { tucker: join(dir, `tucker-${n}.bin`), cp: join(dir, `cp-${n}.bin`) };
      await writeFile(files.tucker, data.tucker);
      await writeFile(files.cp, data.cp);
      const np = runPythonJson<Record<Algo, { times: number[]; error: number }>>(NUMPY_PEER, [JSON.stringify({ n, rank: RANK, reps, files, hooi: HOOI_SWEEPS, cp: CP_ITERS, algos: ALGOS })]);
      for (const algo of ALGOS) {
        const x = makeTensor('f32', [n, n, n], algo === 'cp' ? data.cp : data.tucker);
        const row: Row = { algo, n, numpy: { median: median(np[algo].times), error: np[algo].error }, lowrank: {} };
        for (const b of backends) {
          useBackend(b);
          try {
            let rec = await lowrankRun(algo, x); // warm-up
            const times: number[] = [];
            for (let i = 0; i < reps; i++) {
              const t0 = now();
              rec = await lowrankRun(algo, x);
              times.push(now() - t0);
            }
            row.lowrank[b] = { median: median(times), error: relError(x.data, await rec()) };
          } catch (e) {
            row.lowrank[b] = { error: e instanceof Error ? e.message : String(e) };
          }
        }
        rows.push(row);
        const cells = backends.map((b) => {
          const r = row.lowrank[b];
          return typeof r.error === 'string' ? `${b}: failed (${r.error})` : `${b} ${fmtSeconds((r as { median: number }).median)}`;
        });
        console.log(`  ${algo} ${n}³: numpy ${fmtSeconds(row.numpy.median)}; ${cells.join('; ')}`);
      }
    }
  });
  console.log('');
  const header = ['algorithm', 'size', 'numpy', ...backends, ...backends.map((b) => `${b} speed / numpy`), 'error numpy', ...backends.map((b) => `error ${b}`)];
  printTable(
    header,
    rows.map((r) => {
      const t = backends.map((b) => ('median' in r.lowrank[b] ? (r.lowrank[b] as { median: number }).median : undefined));
      const errs = backends.map((b) => ('median' in r.lowrank[b] ? (r.lowrank[b] as { error: number }).error.toExponential(3) : 'failed'));
      return [r.algo, `${r.n}³`, fmtSeconds(r.numpy.median), ...t.map((v) => (v === undefined ? '—' : fmtSeconds(v))), ...t.map((v) => (v === undefined ? '—' : fmtRatio(r.numpy.median / v))), r.numpy.error.toExponential(3), ...errs];
    }),
  );
  // Target: native no slower than numpy, with the same reconstruction error.
  const targets = rows.map((r) => {
    const nat = r.lowrank.native;
    if (nat === undefined || !('median' in nat)) return { target: `native ${r.algo} ${r.n}³`, status: 'NOT MEASURED' };
    const speed = r.numpy.median / nat.median;
    const sameError = Math.abs(nat.error - r.numpy.error) <= 1e-3 * Math.max(r.numpy.error, 1e-6) + 1e-5;
    const status = speed >= 1 && sameError ? 'PASS' : 'MISS';
    return { target: `native ${r.algo} ${r.n}³: no slower than numpy, same error`, status, speed, errorNative: nat.error, errorNumpy: r.numpy.error };
  });
  console.log('\ntargets (native against numpy, same run):');
  for (const t of targets) {
    const extra = 'speed' in t ? `${fmtRatio(t.speed as number)} numpy's speed; error ${(t.errorNative as number).toExponential(3)} vs numpy ${(t.errorNumpy as number).toExponential(3)}` : '';
    console.log(`  ${t.status.padEnd(12)} ${t.target}${extra === '' ? '' : `: ${extra}`}`);
  }
  return { rank: RANK, hooiSweeps: HOOI_SWEEPS, cpIterations: CP_ITERS, reps, rows, targets };
}
