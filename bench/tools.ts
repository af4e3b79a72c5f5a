/**
 * The `tools` suite: the command-line tools end to end on a Llama-shaped bf16 checkpoint, each
 * next to numpy doing the same math tensor by tensor.
 *
 * A base checkpoint is written to a temporary folder — by default TinyLlama-1.1B's shapes (hidden
 * 2048, intermediate 5632, 22 layers, 32/4 heads, vocab 32000: 1.1B parameters, bf16, 2 GB shards),
 * about two hours on a 2-core machine because extract and compress each run ~150 full SVDs up to
 * 5632 × 2048 (and numpy the same), and each side runs twice, with the environment as is and
 * without the OpenBLAS overrides, the faster counting (the run prints which); `-- medium` uses
 * hidden 1024, intermediate 2816, 4 layers (~0.1B parameters, 100 MB shards, a few minutes). Then a
 * tuned copy: the same weights plus a planted rank-8 update on every q_proj and v_proj and small
 * Gaussian noise on every matrix, made lazily tensor by tensor from the base so memory stays
 * bounded. Then, each in a fresh process so its peak RSS is its own:
 *
 *   analyze   `lowrank analyze <tuned> --fast --json <tmp>` — numpy: per matrix a randomized SVD
 *             top-64 (Halko, 10 oversamples, 2 power iterations) and ‖W‖_F;
 *   extract   `lowrank extract --base <base> --tuned <tuned> --rank 16 --out <tmp>` — numpy: per
 *             targeted matrix ΔW = tuned − base, `np.linalg.svd(ΔW, full_matrices=False)`, top-16
 *             factors;
 *   compress  `lowrank compress <base> --policy energy:0.9 --out <tmp>` — numpy: per targeted
 *             matrix the SVD, the rank keeping 90 % of Σσ², and the factors.
 *
 * Targeted matrices are every 2-D weight except the embeddings and the output head (the tools'
 * default); analyze covers every 2-D weight. The numpy script parses the safetensors headers
 * itself (8-byte little-endian length, JSON) and decodes bf16 by shifting the uint16 words into
 * the high half of a uint32 (no packages besides numpy). numpy writes no output files; lowrank's
 * times include writing its JSON, adapter or compressed model. lowrank runs as
 * `node bin/lowrank.js …` under a small python3 parent that times it and reads its peak RSS from
 * getrusage(RUSAGE_CHILDREN); numpy reports its own from getrusage(RUSAGE_SELF).
 *
 * `npm run bench -- tools -- quick` runs a small model (hidden 512, 4 layers) as a smoke test.
 * `-- jobs=analyze,extract` runs only those jobs. `-- numpy-threads=N` sets OPENBLAS/OMP/MKL_NUM_THREADS for the numpy runs (multithreaded
 * OpenBLAS slows down badly when the cores are shared with other work).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFloat, tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../src/io/synthetic.js';
import { openModel, writeModel } from '../src/io/hf.js';
import type { TensorSource } from '../src/io/safetensors/writer.js';
import { fmtMiB, fmtRatio, fmtSeconds, now, printTable, requireNumpy, runPythonJson, withTempDir, type SuiteOptions } from './util.js';
import { checkpointArgs, fastest, NUMPY_READER, NUMPY_RSVD, timeLowrank, withBlasThreads, type Measured } from './checkpoint.js';

export const description = 'lowrank analyze --fast / extract / compress on a Llama-shaped bf16 checkpoint vs numpy (time, peak RSS)';

const PLANTED_RANK = 8;
/** Entries of the planted factors B (out × 8) and A (8 × in) ~ N(0, PLANTED_STD²). */
const PLANTED_STD = 0.02;
/** Noise on every matrix of the tuned model, about a tenth of bf16's resolution at the weights' scale. */
const NOISE_STD = 2e-4;
const WEIGHT_STD = 0.02;

type Job = 'analyze' | 'extract' | 'compress';
const JOBS: readonly Job[] = ['analyze', 'extract', 'compress'];

interface NumpyResult extends Measured {
  matrices: number;
  ranks?: number[];
}

export async function run(opts: SuiteOptions): Promise<unknown> {
  const numpy = requireNumpy();
  const { quick, shape, shardSize, numpyThreads } = checkpointArgs(opts.args);
  return withTempDir('lowrank-bench-tools-', async (dir) => {
    const base = join(dir, 'base');
    const tuned = join(dir, 'tuned');
    const t0 = now();
    const specs = llamaTensors(shape);
    const params = specs.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    console.log(`model: hidden ${shape.hidden_size}, intermediate ${shape.intermediate_size}, ${shape.num_hidden_layers} layers, ` +
      `${shape.num_attention_heads}/${shape.num_key_value_heads} heads, vocab ${shape.vocab_size}: ${(params / 1e9).toFixed(3)}B parameters, bf16`);
    const written = await writeModel(base, randomWeights(specs, { seed: 1, dtype: 'bf16', std: WEIGHT_STD }), { config: llamaConfig(shape), maxShardSize: shardSize });
    await writeTuned(base, tuned, shape, shardSize);
    const genSeconds = now() - t0;
    console.log(`wrote base and tuned (${fmtMiB(written.totalSize)} each, ${written.shards.length} shard(s)) in ${fmtSeconds(genSeconds)}\n`);

    const results: Record<string, unknown>[] = [];
    const rows: string[][] = [];
    const only = opts.args.find((a) => a.startsWith('jobs='))?.slice('jobs='.length).split(',');
    if (only !== undefined && only.some((j) => !(JOBS as readonly string[]).includes(j))) throw new Error(`jobs= takes ${JOBS.join(', ')}`);
    for (const job of JOBS.filter((j) => only === undefined || only.includes(j))) {
      const out = join(dir, `out-${job}`);
      const args =
        job === 'analyze' ? ['analyze', tuned, '--fast', '--json', `${out}.json`]
        : job === 'extract' ? ['extract', '--base', base, '--tuned', tuned, '--rank', '16', '--out', out]
        : ['compress', base, '--policy', 'energy:0.9', '--out', out];
      // Each try writes afresh (the output of the one before removed, not overwritten inside the timing).
      const lr = fastest((env) => {
        rmSync(out, { recursive: true, force: true });
        rmSync(`${out}.json`, { force: true });
        return timeLowrank(args, env);
      });
      const np = withBlasThreads(numpyThreads, () => fastest((env) => runPythonJson<NumpyResult>(NUMPY_SCRIPT, [job, job === 'compress' ? base : tuned, base], 'python3', env)));
      const ratio = lr.seconds / np.seconds;
      console.log(`${job}: lowrank ${fmtSeconds(lr.seconds)} ${fmtMiB(lr.maxRssBytes)} (${lr.config}), numpy ${fmtSeconds(np.seconds)} ${fmtMiB(np.maxRssBytes)} (${np.config}; ${np.matrices} matrices)`);
      rows.push([job, fmtSeconds(lr.seconds), fmtMiB(lr.maxRssBytes), fmtSeconds(np.seconds), fmtMiB(np.maxRssBytes), fmtRatio(ratio)]);
      results.push({ job, command: `lowrank ${args.join(' ').replaceAll(dir, '<tmp>')}`, lowrank: lr, numpy: np, timeRatio: ratio });
    }
    console.log('');
    printTable(['job', 'lowrank time', 'lowrank peak RSS', 'numpy time', 'numpy peak RSS', 'time lowrank/numpy'], rows);
    return { quick, numpy, numpyThreads: numpyThreads ?? 'default', shape, parameters: params, bytesPerModel: written.totalSize, shards: written.shards.length, generateSeconds: genSeconds, jobs: results };
  });
}

/** Writes the tuned model: base + a planted rank-8 update on q_proj and v_proj + noise on every matrix, tensor by tensor. */
async function writeTuned(basePath: string, tunedPath: string, shape: LlamaShape, shardSize: number): Promise<void> {
  const base = await openModel(basePath);
  try {
    const sources: TensorSource[] = llamaTensors(shape).map((spec, i) => ({
      name: spec.name,
      dtype: 'bf16',
      shape: spec.shape,
      data: async () => {
        const w = await base.readAs(spec.name, 'f32');
        if (spec.shape.length === 2) {
          const [m, n] = spec.shape;
          const g = rng(7919 + i);
          const noise = g.fillNormal(new Float32Array(m * n), 0, NOISE_STD);
          const d = w.data;
          for (let k = 0; k < d.length; k++) d[k] += noise[k];
          if (/\.(q_proj|v_proj)\.weight$/.test(spec.name)) addLowRank(d, m, n, g);
        }
        return encodeFloat(tensor('f32', spec.shape, w.data), 'bf16').data;
      },
    }));
    await writeModel(tunedPath, sources, { config: llamaConfig(shape), maxShardSize: shardSize });
  } finally {
    await base.close();
  }
}

/** d (m × n, row-major) += B·A with B (m × r), A (r × n) random normal. */
function addLowRank(d: Float32Array, m: number, n: number, g: ReturnType<typeof rng>): void {
  const r = PLANTED_RANK;
  const b = g.fillNormal(new Float32Array(m * r), 0, PLANTED_STD);
  const a = g.fillNormal(new Float32Array(r * n), 0, PLANTED_STD);
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let k = 0; k < r; k++) {
      const bik = b[i * r + k];
      const ak = k * n;
      for (let j = 0; j < n; j++) d[row + j] += bik * a[ak + j];
    }
  }
}

/** numpy doing each job's math tensor by tensor: `python3 -c SCRIPT <job> <model> <base>` prints {seconds, maxRssBytes, matrices}. */
export const NUMPY_SCRIPT = `
import json, os, re, struct, sys, time

${NUMPY_READER}
${NUMPY_RSVD}
job, model_path, base_path = sys.argv[1], sys.argv[2], sys.argv[3]
skip = re.compile(r'embed|lm_head')
t0 = T0  # from before numpy's import: lowrank's time is its whole process too
tensors = open_model(model_path)
base = open_model(base_path) if job == 'extract' else None
count = 0
ranks = []
for name, entry in tensors.items():
    if len(entry[3]) != 2: continue
    if job != 'analyze' and skip.search(name): continue
    w = read(entry)
    if job == 'analyze':
        u, s, vt = rsvd(w, 64, 10, 2)
        fro = float(np.linalg.norm(w))
    elif job == 'extract':
        d = w - read(base[name])
        u, s, vt = np.linalg.svd(d, full_matrices=False)
        b = u[:, :16] * s[:16]
        a = vt[:16]
    else:
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        e = np.cumsum(s.astype(np.float64) ** 2)
        k = int(np.searchsorted(e, 0.9 * e[-1]) + 1)
        b = u[:, :k] * s[:k]
        a = vt[:k]
        ranks.append(k)
    count += 1
out = {'seconds': time.perf_counter() - t0, 'maxRssBytes': _max_rss_bytes(), 'matrices': count}
if ranks: out['ranks'] = ranks
print(json.dumps(out))
`;
