/**
 * The `tools` suite: the command-line tools end to end on a Llama-shaped bf16 checkpoint, the fast
 * decompositions next to the full SVD (`--exact`) and next to numpy doing the same math tensor by
 * tensor, with the accuracy the fast paths promise checked in this process.
 *
 * A base checkpoint is written to a temporary folder — by default TinyLlama-1.1B's shapes (hidden
 * 2048, intermediate 5632, 22 layers, 32/4 heads, vocab 32000: 1.1B parameters, bf16, 2 GB shards),
 * a few hours on a 2-core machine because each `-exact` job and each numpy peer runs ~150 full
 * SVDs up to 5632 × 2048, and each side runs twice, with the environment as is and without the
 * OpenBLAS overrides, the faster counting (the run prints which); `-- medium` uses hidden 1024,
 * intermediate 2816, 4 layers (~0.1B parameters, 100 MB shards). Then a tuned copy: the same
 * weights plus a planted rank-8 update on every q_proj and v_proj and small Gaussian noise on every
 * matrix, made lazily tensor by tensor from the base so memory stays bounded. Then, each in a fresh
 * process so its peak RSS is its own:
 *
 *   analyze              `lowrank analyze <tuned> --fast --json <tmp>` — numpy: per matrix a
 *                        randomized SVD top-64 (Halko, 10 oversamples, 2 power iterations) and ‖W‖_F;
 *   extract              `lowrank extract --base <base> --tuned <tuned> --rank 16 --out <tmp>` (the
 *                        default fast path: randomized SVD or Gram matrix per ΔW);
 *   extract-exact        the same with `--exact` (full SVD of every ΔW) — numpy for both: per
 *                        targeted matrix ΔW = tuned − base, `np.linalg.svd(ΔW, full_matrices=False)`,
 *                        top-16 factors;
 *   compress-rank        `lowrank compress <base> --policy rank:16 --out <tmp>`;
 *   compress-rank-exact  the same with `--exact` — numpy for both: per targeted matrix
 *                        `np.linalg.svd(W, full_matrices=False)`, top-16 factors;
 *   compress             `lowrank compress <base> --policy energy:0.9 --out <tmp>` (incremental
 *                        randomized QB, the Gram matrix past an eighth of min(m, n));
 *   compress-exact       the same with `--exact` — numpy for both: per targeted matrix the SVD, the
 *                        rank keeping 90 % of Σσ², and the factors.
 *
 * numpy runs once per family and its time stands next to both jobs of the family. The run prints
 * time fast / time exact against the issue's targets (extract ≤ 0.1, compress-rank ≤ 0.1, compress
 * ≤ 1/3) and time / numpy. Then the checks, in this process:
 *
 *   - extract and compress-rank: for every projection (q, k, v, o, gate, up, down) of the first,
 *     middle and last layer, ΔW (extract) or W of the base (compress-rank) decomposed at rank 16
 *     by `truncatedSvd` with method 'exact' (the Eckart–Young optimum Σ_{i>16} σᵢ²) and by its
 *     default (the fast error ‖M − U·diag(s)·Vᵀ‖²_F); excess = √(error/optimum) − 1, target max
 *     ≤ 1 %. This checks the decomposition itself, before the factors are rounded to bf16.
 *   - compress: on the output of the last `compress` try (the same deterministic computation as
 *     the fastest), for every factored layer 1 − ‖W − U·V‖²_F/‖W‖²_F in float64 from the stored
 *     factors, target ≥ 0.9; and the parameters after compression, Σ rank·(m + n) over factored
 *     layers plus m·n over skipped ones, of `compress` against `compress-exact` (the QB may pick
 *     a rank or two above the exact energy rank).
 *
 * Targeted matrices are every 2-D weight except the embeddings and the output head (the tools'
 * default); analyze covers every 2-D weight. The numpy script parses the safetensors headers
 * itself (8-byte little-endian length, JSON) and decodes bf16 by shifting the uint16 words into
 * the high half of a uint32 (no packages besides numpy). numpy writes no output files; lowrank's
 * times include writing its JSON, adapter or compressed model. lowrank runs as
 * `node bin/lowrank.js …` under a small python3 parent that times it and reads its peak RSS from
 * getrusage(RUSAGE_CHILDREN); numpy reports its own from getrusage(RUSAGE_SELF).
 *
 * `npm run bench -- tools -- quick` runs a small model (hidden 512, 4 layers) as a smoke test
 * (matrices under 512 rows or columns take the exact path anyway, so its ratios mean little).
 * `-- jobs=extract,extract-exact` runs only those jobs (and only the checks of the fast jobs among
 * them; the parameter comparison needs both compress jobs). `-- numpy-threads=N` sets
 * OPENBLAS/OMP/MKL_NUM_THREADS for the numpy runs (multithreaded OpenBLAS slows down badly when
 * the cores are shared with other work). `-- no-numpy` leaves the numpy peers out (on 1.1B each
 * runs ~150 full SVDs under two settings, ~40 minutes a family); `-- exact-once` runs each `-exact` job
 * once, without the OpenBLAS overrides (the faster setting for the full SVD in the runs so far),
 * instead of under both.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFloat, tensor, toFloat, type Tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../src/io/synthetic.js';
import { openModel, writeModel, type Model } from '../src/io/hf.js';
import type { TensorSource } from '../src/io/safetensors/writer.js';
import { truncatedSvd, type TruncationMethod } from '../src/linalg/truncated.js';
import { sumSquares } from '../src/linalg/check.js';
import { matmulAdd } from '../src/linalg/matmul.js';
import { openCompressed, type CompressManifest } from '../src/tools/compress.js';
import { blasSettings, fmtMiB, fmtRatio, fmtSeconds, now, printTable, requireNumpy, runPythonJson, withTempDir, type SuiteOptions } from './util.js';
import { checkpointArgs, fastest, NUMPY_READER, NUMPY_RSVD, timeLowrank, withBlasThreads, type Measured } from './checkpoint.js';

export const description = 'lowrank analyze --fast / extract / compress, fast and --exact, on a Llama-shaped bf16 checkpoint vs numpy (time, peak RSS, speedup and accuracy targets)';

const PLANTED_RANK = 8;
/** Entries of the planted factors B (out × 8) and A (8 × in) ~ N(0, PLANTED_STD²). */
const PLANTED_STD = 0.02;
/** Noise on every matrix of the tuned model, about a tenth of bf16's resolution at the weights' scale. */
const NOISE_STD = 2e-4;
const WEIGHT_STD = 0.02;

/** The rank of extract and compress-rank, and the energy share of compress. */
const RANK = 16;
const ENERGY = 0.9;

type Family = 'analyze' | 'extract' | 'compress-rank' | 'compress';
type Targeted = Exclude<Family, 'analyze'>;

/** Time fast / time exact each family is to reach. */
const SPEEDUP_TARGET: Readonly<Record<Targeted, number>> = { extract: 0.1, 'compress-rank': 0.1, compress: 1 / 3 };
/** The most a fast rank-16 result may be above the Eckart–Young optimum, relatively (in ‖·‖_F). */
const EXCESS_TARGET = 0.01;
/** The modules sampled for the optimum checks, in each of the first, middle and last layer. */
const SAMPLED_MODULES = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

interface Job {
  readonly name: string;
  readonly family: Family;
  readonly exact: boolean;
}

const JOBS: readonly Job[] = [
  { name: 'analyze', family: 'analyze', exact: false },
  ...(['extract', 'compress-rank', 'compress'] as const).flatMap((family) => [
    { name: family, family, exact: false },
    { name: `${family}-exact`, family, exact: true },
  ]),
];

/** A peer's run at its fastest setting (see {@link fastest}). */
type Best<T> = T & { config: string; tried: { config: string; seconds: number }[] };

interface NumpyResult extends Measured {
  matrices: number;
  ranks?: number[];
}

interface JobResult {
  job: string;
  family: Family;
  exact: boolean;
  command: string;
  lowrank: Best<Measured>;
  /** Absent with `no-numpy`. */
  numpy?: Best<NumpyResult>;
  timeRatio?: number;
}

interface Speedup {
  family: Targeted;
  fastSeconds: number;
  /** Absent when the -exact job was not run. */
  exactSeconds?: number;
  fastOverExact?: number;
  target: number;
  pass?: boolean;
  fastOverNumpy?: number;
  exactOverNumpy?: number;
}

interface SampledExcess {
  weight: string;
  shape: number[];
  /** How the default truncatedSvd decomposed it, with its power iterations and note. */
  method: TruncationMethod;
  niter?: number;
  note?: string;
  errorSq: number;
  optimumSq: number;
  excess: number;
}

interface OptimumCheck {
  family: 'extract' | 'compress-rank';
  target: number;
  matrices: SampledExcess[];
  maxExcess: number;
  pass: boolean;
  seconds: number;
}

interface LayerEnergy {
  module: string;
  rank: number;
  method?: TruncationMethod;
  energy: number;
}

interface EnergyCheck {
  target: number;
  /** Every factored layer of the fast output. */
  layers: LayerEnergy[];
  skipped: number;
  /** Absent when no layer is factored. */
  minEnergy?: number;
  pass: boolean;
  seconds: number;
}

interface ParameterComparison {
  fast: number;
  exact: number;
  fastOverExact: number;
  /** The largest rank the fast path chose above the exact one, over every targeted layer. */
  maxRankAbove: number;
}

export async function run(opts: SuiteOptions): Promise<unknown> {
  const numpy = requireNumpy();
  const { quick, shape, shardSize, numpyThreads } = checkpointArgs(opts.args);
  const jobs = selectedJobs(opts.args);
  const withNumpy = !opts.args.includes('no-numpy');
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

    const outOf = (job: string): string => join(dir, `out-${job}`);
    const results = timeJobs(jobs, base, tuned, outOf, withNumpy ? numpyThreads ?? 'default' : undefined, dir, opts.args.includes('exact-once'));
    console.log('');
    printTable(['job', 'lowrank time', 'lowrank peak RSS', 'numpy time', 'numpy peak RSS', 'time lowrank/numpy'],
      results.map((r) => [r.job, fmtSeconds(r.lowrank.seconds), fmtMiB(r.lowrank.maxRssBytes), r.numpy === undefined ? '-' : fmtSeconds(r.numpy.seconds), r.numpy === undefined ? '-' : fmtMiB(r.numpy.maxRssBytes), r.timeRatio === undefined ? '-' : fmtRatio(r.timeRatio)]));
    const speeds = speedups(results);
    printSpeedups(speeds);

    const ran = (name: string): boolean => results.some((r) => r.job === name);
    const optimum: OptimumCheck[] = [];
    for (const family of ['extract', 'compress-rank'] as const) {
      if (ran(family)) optimum.push(await optimumCheck(family, base, tuned, shape.num_hidden_layers));
    }
    const energy = ran('compress') ? await energyCheck(outOf('compress'), base) : undefined;
    const parameters = ran('compress') && ran('compress-exact') ? await compareParameters(outOf('compress'), outOf('compress-exact')) : undefined;
    printChecks(optimum, energy, parameters);

    return {
      quick, numpy, numpyThreads: numpyThreads ?? 'default', shape, parameters: params, bytesPerModel: written.totalSize, shards: written.shards.length, generateSeconds: genSeconds,
      jobs: results, speedups: speeds, optimum, energy, compressedParameters: parameters,
    };
  });
}

/** The jobs `jobs=a,b` names (every job without it). */
function selectedJobs(args: readonly string[]): Job[] {
  const only = args.find((a) => a.startsWith('jobs='))?.slice('jobs='.length).split(',');
  if (only === undefined) return [...JOBS];
  const unknown = only.filter((name) => !JOBS.some((j) => j.name === name));
  if (unknown.length > 0) throw new Error(`unknown job(s) ${unknown.join(', ')}: jobs= takes ${JOBS.map((j) => j.name).join(', ')}`);
  return JOBS.filter((j) => only.includes(j.name));
}

/** The command line of a job writing to `out`. */
function jobArgs(job: Job, base: string, tuned: string, out: string): string[] {
  const exact = job.exact ? ['--exact'] : [];
  switch (job.family) {
    case 'analyze':
      return ['analyze', tuned, '--fast', '--json', `${out}.json`];
    case 'extract':
      return ['extract', '--base', base, '--tuned', tuned, '--rank', String(RANK), '--out', out, ...exact];
    case 'compress-rank':
      return ['compress', base, '--policy', `rank:${RANK}`, '--out', out, ...exact];
    case 'compress':
      return ['compress', base, '--policy', `energy:${ENERGY}`, '--out', out, ...exact];
  }
}

/**
 * Times each job (fastest of the OpenBLAS settings) and its family's numpy peer (run once per
 * family; none when `numpyThreads` is undefined, 'default' leaving the thread variables as they are).
 */
function timeJobs(jobs: readonly Job[], base: string, tuned: string, outOf: (job: string) => string, numpyThreads: string | undefined, dir: string, exactOnce: boolean): JobResult[] {
  const peers = new Map<Family, Best<NumpyResult>>();
  const results: JobResult[] = [];
  for (const job of jobs) {
    const out = outOf(job.name);
    const args = jobArgs(job, base, tuned, out);
    const removeOutput = (): void => {
      rmSync(out, { recursive: true, force: true });
      rmSync(`${out}.json`, { force: true });
    };
    // Each try writes afresh (the output of the one before removed, not overwritten inside the timing).
    const run = (env: NodeJS.ProcessEnv): Measured => {
      removeOutput();
      return timeLowrank(args, env);
    };
    const lr = job.exact && exactOnce ? once(run) : fastest(run);
    // The compress outputs stay for the energy and parameter checks; the others only take disk.
    if (job.family !== 'compress') removeOutput();
    let np = peers.get(job.family);
    if (np === undefined && numpyThreads !== undefined) {
      np = timeNumpy(job.family, base, tuned, numpyThreads === 'default' ? undefined : numpyThreads);
      peers.set(job.family, np);
    }
    const ratio = np === undefined ? undefined : lr.seconds / np.seconds;
    console.log(`${job.name}: lowrank ${fmtSeconds(lr.seconds)} ${fmtMiB(lr.maxRssBytes)} (${lr.config})` + (np === undefined ? '' : `, numpy ${fmtSeconds(np.seconds)} ${fmtMiB(np.maxRssBytes)} (${np.config}; ${np.matrices} matrices)`));
    results.push({ job: job.name, family: job.family, exact: job.exact, command: `lowrank ${args.join(' ').replaceAll(dir, '<tmp>')}`, lowrank: lr, numpy: np, timeRatio: ratio });
  }
  return results;
}

/** One try, without the OpenBLAS overrides (where the full SVD ran fastest here). */
function once(run: (env: NodeJS.ProcessEnv) => Measured): Best<Measured> {
  const setting = blasSettings().at(-1) ?? { name: 'env as is', env: process.env };
  const r = run(setting.env);
  return { ...r, config: `${setting.name} (one try)`, tried: [{ config: setting.name, seconds: r.seconds }] };
}

function timeNumpy(family: Family, base: string, tuned: string, numpyThreads: string | undefined): Best<NumpyResult> {
  const model = family === 'compress' || family === 'compress-rank' ? base : tuned;
  return withBlasThreads(numpyThreads, () => fastest((env) => runPythonJson<NumpyResult>(NUMPY_SCRIPT, [family, model, base], 'python3', env)));
}

/** Per family whose fast job ran: fast against exact (when that ran too) and against numpy. */
function speedups(results: readonly JobResult[]): Speedup[] {
  return (['extract', 'compress-rank', 'compress'] as const).flatMap((family): Speedup[] => {
    const fast = results.find((r) => r.family === family && !r.exact);
    const exact = results.find((r) => r.family === family && r.exact);
    if (fast === undefined) return [];
    const target = SPEEDUP_TARGET[family];
    const s: Speedup = { family, fastSeconds: fast.lowrank.seconds, target, fastOverNumpy: fast.timeRatio };
    if (exact === undefined) return [s];
    const ratio = fast.lowrank.seconds / exact.lowrank.seconds;
    return [{ ...s, exactSeconds: exact.lowrank.seconds, fastOverExact: ratio, pass: ratio <= target, exactOverNumpy: exact.timeRatio }];
  });
}

function printSpeedups(speeds: readonly Speedup[]): void {
  if (speeds.length === 0) return;
  console.log('');
  printTable(['family', 'fast', 'exact', 'fast/exact', 'target', 'verdict', 'fast/numpy', 'exact/numpy'], speeds.map((s) => [
    s.family,
    fmtSeconds(s.fastSeconds),
    s.exactSeconds === undefined ? '-' : fmtSeconds(s.exactSeconds),
    s.fastOverExact === undefined ? '-' : fmtFraction(s.fastOverExact),
    `≤ ${fmtFraction(s.target)}`,
    verdict(s.pass),
    s.fastOverNumpy === undefined ? '-' : fmtRatio(s.fastOverNumpy),
    s.exactOverNumpy === undefined ? '-' : fmtRatio(s.exactOverNumpy),
  ]));
}

/** Every sampled projection (see {@link SAMPLED_MODULES}) of the first, middle and last layer. */
function sampledWeights(layers: number): string[] {
  const indices = [...new Set([0, Math.floor(layers / 2), layers - 1])];
  return indices.flatMap((i) => SAMPLED_MODULES.map((m) => `model.layers.${i}.${m}.weight`));
}

/** The fast rank-16 decomposition against the exact one on the sampled ΔW (extract) or W (compress-rank). */
async function optimumCheck(family: 'extract' | 'compress-rank', basePath: string, tunedPath: string, layers: number): Promise<OptimumCheck> {
  const t0 = now();
  const base = await openModel(basePath);
  try {
    const tuned = family === 'extract' ? await openModel(tunedPath) : undefined;
    try {
      const matrices: SampledExcess[] = [];
      for (const name of sampledWeights(layers)) {
        const m = tuned === undefined ? await base.readAs(name, 'f32') : await difference(tuned, base, name);
        matrices.push(await excessOf(name, m));
      }
      const maxExcess = Math.max(...matrices.map((x) => x.excess));
      return { family, target: EXCESS_TARGET, matrices, maxExcess, pass: maxExcess <= EXCESS_TARGET, seconds: now() - t0 };
    } finally {
      await tuned?.close();
    }
  } finally {
    await base.close();
  }
}

/** tuned − base of one weight, as f32 (how extract forms ΔW). */
async function difference(tuned: Model, base: Model, name: string): Promise<Tensor<'f32'>> {
  const d = await tuned.readAs(name, 'f32');
  const b = await base.readAs(name, 'f32');
  for (let i = 0; i < d.data.length; i++) d.data[i] -= b.data[i];
  return d;
}

async function excessOf(weight: string, m: Tensor<'f32'>): Promise<SampledExcess> {
  const exact = await truncatedSvd(m, { rank: RANK }, { method: 'exact' });
  const fast = await truncatedSvd(m, { rank: RANK });
  const { errorSq } = fast;
  const { optimumSq } = exact;
  const excess = optimumSq > 0 ? Math.sqrt(errorSq / optimumSq) - 1 : errorSq > 0 ? Infinity : 0;
  return {
    weight,
    shape: [...m.shape],
    method: fast.method,
    ...(fast.niter !== undefined ? { niter: fast.niter } : {}),
    ...(fast.note !== undefined ? { note: fast.note } : {}),
    errorSq,
    optimumSq,
    excess,
  };
}

/** 1 − ‖W − U·V‖²_F/‖W‖²_F in float64 for every factored layer of a compressed output, W from the base. */
async function energyCheck(out: string, basePath: string): Promise<EnergyCheck> {
  const t0 = now();
  const c = await openCompressed(out);
  try {
    const base = await openModel(basePath);
    try {
      const layers: LayerEnergy[] = [];
      for (const [module, e] of Object.entries(c.manifest.modules)) {
        const w = toFloat(await base.readAs(e.weight, 'f32'), 'f64');
        const { u, v } = await c.factors(module);
        const residual = await matmulAdd(w, toFloat(u, 'f64'), toFloat(v, 'f64'), { alpha: -1 });
        const total = sumSquares(w.data);
        const energy = total === 0 ? 1 : 1 - sumSquares(residual.data) / total;
        layers.push({ module, rank: e.rank, ...(e.method !== undefined ? { method: e.method } : {}), energy });
      }
      const minEnergy = layers.length === 0 ? undefined : Math.min(...layers.map((l) => l.energy));
      return { target: ENERGY, layers, skipped: Object.keys(c.manifest.skipped).length, minEnergy, pass: layers.every((l) => l.energy >= ENERGY), seconds: now() - t0 };
    } finally {
      await base.close();
    }
  } finally {
    await c.close();
  }
}

/** The parameters after compression of the fast and the exact output, from their manifests. */
async function compareParameters(fastOut: string, exactOut: string): Promise<ParameterComparison> {
  const [fast, exact] = [await readManifest(fastOut), await readManifest(exactOut)];
  const exactRanks = ranksOf(exact);
  let maxRankAbove = -Infinity;
  for (const [module, rank] of ranksOf(fast)) maxRankAbove = Math.max(maxRankAbove, rank - (exactRanks.get(module) ?? rank));
  const [pf, pe] = [parametersOf(fast), parametersOf(exact)];
  return { fast: pf, exact: pe, fastOverExact: pf / pe, maxRankAbove };
}

async function readManifest(out: string): Promise<CompressManifest> {
  const c = await openCompressed(out);
  await c.close();
  return c.manifest;
}

/** Σ rank·(m + n) over factored layers plus m·n over the layers left dense. */
function parametersOf(man: CompressManifest): number {
  const factored = Object.values(man.modules).reduce((s, e) => s + e.rank * (e.shape[0] + e.shape[1]), 0);
  return factored + Object.values(man.skipped).reduce((s, e) => s + e.shape[0] * e.shape[1], 0);
}

/** Every targeted layer's chosen rank, factored or not. */
function ranksOf(man: CompressManifest): Map<string, number> {
  return new Map([...Object.entries(man.modules), ...Object.entries(man.skipped)].map(([module, e]) => [module, e.rank]));
}

function printChecks(optimum: readonly OptimumCheck[], energy: EnergyCheck | undefined, parameters: ParameterComparison | undefined): void {
  if (optimum.length > 0) {
    console.log('');
    printTable(['check', 'matrix', 'shape', 'fast method', 'excess over optimum'], optimum.flatMap((o) => o.matrices.map((x) => [
      o.family,
      x.weight,
      x.shape.join('×'),
      `${x.method}${x.niter !== undefined ? ` (${x.niter} power its)` : ''}${x.note !== undefined ? ' *' : ''}`,
      fmtPercent(x.excess),
    ])));
    for (const o of optimum) for (const x of o.matrices) if (x.note !== undefined) console.log(`* ${o.family} ${x.weight}: ${x.note}`);
  }
  const rows: string[][] = optimum.map((o) => [`${o.family}: max excess over the rank-${RANK} optimum (${o.matrices.length} sampled, ${fmtSeconds(o.seconds)})`, fmtPercent(o.maxExcess), `≤ ${fmtPercent(o.target)}`, verdict(o.pass)]);
  if (energy !== undefined) {
    const what = `compress: min energy kept over ${energy.layers.length} factored layers (${energy.skipped} dense, ${fmtSeconds(energy.seconds)})`;
    rows.push([what, energy.minEnergy === undefined ? '-' : energy.minEnergy.toFixed(5), `≥ ${ENERGY}`, energy.minEnergy === undefined ? 'n/a' : verdict(energy.pass)]);
  }
  if (parameters !== undefined) {
    rows.push([`compress: parameters after, fast/exact (${parameters.fast} / ${parameters.exact}; max rank above exact ${parameters.maxRankAbove})`, fmtFraction(parameters.fastOverExact), '-', '-']);
  }
  if (rows.length === 0) return;
  console.log('');
  printTable(['check', 'value', 'target', 'verdict'], rows);
}

function verdict(pass: boolean | undefined): string {
  return pass === undefined ? '-' : pass ? 'PASS' : 'MISS';
}

/** A ratio to three decimals, for ratios compared with a target near 0.1. */
function fmtFraction(r: number): string {
  return `${r.toFixed(3)}x`;
}

function fmtPercent(x: number): string {
  return `${(100 * x).toFixed(3)} %`;
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

/** numpy doing each family's math tensor by tensor: `python3 -c SCRIPT <family> <model> <base>` prints {seconds, maxRssBytes, matrices}. */
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
        b = u[:, :${RANK}] * s[:${RANK}]
        a = vt[:${RANK}]
    elif job == 'compress-rank':
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        b = u[:, :${RANK}] * s[:${RANK}]
        a = vt[:${RANK}]
    else:
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        e = np.cumsum(s.astype(np.float64) ** 2)
        k = int(np.searchsorted(e, ${ENERGY} * e[-1]) + 1)
        b = u[:, :k] * s[:k]
        a = vt[:k]
        ranks.append(k)
    count += 1
out = {'seconds': time.perf_counter() - t0, 'maxRssBytes': _max_rss_bytes(), 'matrices': count}
if ranks: out['ranks'] = ranks
print(json.dumps(out))
`;
