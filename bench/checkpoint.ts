/**
 * What the checkpoint benchmarks (tools, init) share: the model shapes, running `lowrank` in a
 * fresh process under a python3 timer (wall time and peak RSS), BLAS thread settings for the numpy
 * peers, and the numpy peers' safetensors reader.
 */
import { fileURLToPath } from 'node:url';
import type { LlamaShape } from '../src/io/synthetic.js';
import { blasSettings, fastestOf, runPythonJson } from './util.js';

/** Wall time and peak RSS of one run. */
export interface Measured {
  seconds: number;
  maxRssBytes: number;
}

const LOWRANK_BIN = fileURLToPath(new URL('../../bin/lowrank.js', import.meta.url));

/** TinyLlama-1.1B's shapes, the default: about an hour on a 2-core machine (each tool runs ~150 full SVDs up to 5632 × 2048). */
export const TINYLLAMA: LlamaShape = { hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000 };
/** `-- medium`: TinyLlama's vocabulary and head layout at half the width and 4 layers (~0.1B parameters). */
export const MEDIUM: LlamaShape = { hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 4, num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 32000 };
/** `-- 7b`: Llama-2-7B's shapes (6.7B parameters, 13.5 GB in bf16; generating it takes several minutes). */
export const LLAMA2_7B: LlamaShape = { hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000 };
/** The smoke-test model (`-- quick`). */
export const QUICK: LlamaShape = { hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 4096 };

/** Runs `fn` with the BLAS thread-count variables set for its python children (unchanged when undefined). */
export function withBlasThreads<T>(threads: string | undefined, fn: () => T): T {
  if (threads === undefined) return fn();
  const names = ['OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'];
  const saved = names.map((n) => process.env[n]);
  for (const n of names) process.env[n] = threads;
  try {
    return fn();
  } finally {
    names.forEach((n, i) => {
      if (saved[i] === undefined) delete process.env[n];
      else process.env[n] = saved[i];
    });
  }
}

/** `run` under each OpenBLAS setting (the environment as is, and without the overrides), the fastest kept. */
export function fastest<T extends Measured>(run: (env: NodeJS.ProcessEnv) => T): T & { config: string; tried: { config: string; seconds: number }[] } {
  return fastestOf(blasSettings().map(({ name, env }) => ({ config: name, run: () => run(env) })), (r) => r.seconds);
}

/** Runs `node bin/lowrank.js …` under a python3 parent that reports its wall time and peak RSS. */
export function timeLowrank(args: readonly string[], env?: NodeJS.ProcessEnv): Measured {
  return runPythonJson<Measured>(TIMER_SCRIPT, [process.execPath, LOWRANK_BIN, ...args], 'python3', env);
}

const TIMER_SCRIPT = `
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
t = time.perf_counter() - t0
if r.returncode != 0:
    sys.stderr.write(r.stderr.decode(errors='replace'))
    sys.exit(r.returncode if r.returncode > 0 else 1)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({'seconds': t, 'maxRssBytes': rss if sys.platform == 'darwin' else rss * 1024}))
`;

/**
 * Python (numpy) functions: open_model(path) → {name: entry} from the safetensors headers of a
 * model folder (8-byte little-endian length, JSON), and read(entry) → float32 array, decoding bf16
 * by shifting the uint16 words into the high half of a uint32. No packages besides numpy.
 */
export const NUMPY_READER = `
def open_model(path):
    idx = os.path.join(path, 'model.safetensors.index.json')
    files = sorted(set(json.load(open(idx))['weight_map'].values())) if os.path.exists(idx) else ['model.safetensors']
    tensors = {}
    for f in files:
        p = os.path.join(path, f)
        with open(p, 'rb') as fh:
            (n,) = struct.unpack('<Q', fh.read(8))
            header = json.loads(fh.read(n))
        for name, e in header.items():
            if name != '__metadata__':
                tensors[name] = (p, 8 + n + e['data_offsets'][0], e['dtype'], e['shape'])
    return tensors

def read(entry):
    p, off, dtype, shape = entry
    assert dtype == 'BF16', dtype
    count = 1
    for s in shape: count *= s
    with open(p, 'rb') as fh:
        fh.seek(off)
        u = np.fromfile(fh, dtype=np.uint16, count=count)
    return (u.astype(np.uint32) << 16).view(np.float32).reshape(shape)

`;

/** The model and numpy settings a checkpoint suite's arguments choose: `quick`, `medium`, `7b` (default 1.1B), `numpy-threads=N`. */
export function checkpointArgs(args: readonly string[]): { quick: boolean; medium: boolean; sevenB: boolean; shape: LlamaShape; shardSize: number; numpyThreads: string | undefined } {
  const quick = args.includes('quick');
  const medium = args.includes('medium');
  const sevenB = args.includes('7b');
  const threadsArg = args.find((a) => a.startsWith('numpy-threads='));
  return {
    quick,
    medium,
    sevenB,
    shape: quick ? QUICK : medium ? MEDIUM : sevenB ? LLAMA2_7B : TINYLLAMA,
    shardSize: quick ? 16e6 : medium ? 100e6 : sevenB ? 10e9 : 2e9,
    numpyThreads: threadsArg === undefined ? undefined : threadsArg.slice('numpy-threads='.length),
  };
}

/** Python (numpy): rsvd(w, k, p, iters, seed) — the Halko sketch, QR after every product (lowrank's rsvd). */
export const NUMPY_RSVD = `
def rsvd(w, k, p, iters, seed=0):
    m, n = w.shape
    l = min(k + p, m, n)
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(w @ g.standard_normal((n, l), dtype=np.float32))
    for _ in range(iters):
        z, _ = np.linalg.qr(w.T @ q)
        q, _ = np.linalg.qr(w @ z)
    u, s, vt = np.linalg.svd(q.T @ w, full_matrices=False)
    return (q @ u)[:, :k], s[:k], vt[:k]
`;
