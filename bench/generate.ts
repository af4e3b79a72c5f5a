/**
 * The `generate` suite: greedy text generation (prefill and decode tokens/s, batch 1 and 8) with a
 * KV cache, lowrank next to PyTorch on the CPU and onnxruntime-node in the same run, on the same
 * weights and prompts:
 *   - the built-in model (assets/builtin/model, Llama 0.84M): 32 prompt tokens, 64 new tokens;
 *   - the ~100M random Llama of the train suite (hidden 768, 8 layers, vocabulary 32000, bf16 on
 *     disk): 32 prompt tokens, 32 new tokens.
 * Everything computes in float32. Prompts are seeded random token ids, every sequence of a batch
 * the same length (no padding); greedy, no stop token. Prefill tokens/s = batch·prompt / the time
 * of the forward over the prompts (the peers also count choosing the first new token there,
 * lowrank's generate() in its decode time: one argmax over the vocabulary per sequence); decode
 * tokens/s = batch·(new − 1) / the time of every later step. Medians over the timed runs after
 * untimed warmup runs, the same count for every peer: 8 on the built-in model, where a run is 64
 * steps of well under a millisecond and V8 moves the step's code to its optimizing tier only after
 * a few hundred of them (with one warmup run the suite measured lowrank before that tier);
 * 1 on the 99M model; peak RSS of each process.
 *
 * PyTorch: Debian's python3-torch (installed with apt-get when no python3 imports torch, the column
 * missing if that fails), the Llama forward written here in torch (RMSNorm, RoPE rotate_half as
 * Hugging Face, GQA, SwiGLU, lm_head) with its own KV cache (torch.cat), torch.inference_mode(),
 * torch.set_num_threads(1) (its products run on OpenBLAS's own threads). onnxruntime-node (the
 * engine under transformers.js): that same torch module exported with torch.onnx.export, the cache
 * as explicit inputs and outputs (past_k/v_<layer> → present_k/v_<layer>, dynamic batch and
 * positions), run with the default CPU execution provider at 1 and 2 intra-op threads (the better
 * reported). It is not a dependency of lowrank: the suite installs a pinned version into
 * bench/.peers/ with npm (the CPU build ships in the npm package; its postinstall download of CUDA
 * bits is skipped), and reports the column as missing if that fails.
 *
 * lowrank and PyTorch run under the environment as it is and without OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE, each compared at its better setting. The decode floor: the bytes of the
 * float32 weights a decode step reads (all but the embedding table) over the memory bandwidth
 * measured in the same run (numpy's OpenBLAS sdot over a 256 MiB array, and a 256 MiB
 * Float32Array copy counted as read + write; the faster). The generated tokens of the three are
 * compared (a count of matching tokens before each sequence's first difference: float32 rounding
 * may flip a late token on random weights, which is reported, not failed).
 *
 * Then adapters on the ~100M model at batch 1: k = 1, 2, 4 random LoRA adapters (rank 16, alpha
 * 32, on q_proj, k_proj, v_proj, o_proj, non-zero A and B) active at once, unmerged, against one
 * merged into the weights: decode tokens/s and the ratio to the merged model.
 *
 * Targets: decode at batch 1 at least PyTorch's tokens/s and within 1.5x of onnxruntime-node's.
 * `-- quick`: a smoke run on a tiny model (seconds).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../src/io/synthetic.js';
import { openModel, writeModel } from '../src/io/hf.js';
import { writeAdapter, type LoraModuleTensors } from '../src/io/peft.js';
import { tensor } from '../src/core/tensor.js';
import { rng } from '../src/core/rng.js';
import { blasSettings, findTorch, fmtMiB, fmtRatio, median, now, printTable, PY_PEAK_RSS, requireNumpy, runNodeJson, runPythonJson, withTempDir, type SuiteOptions } from './util.js';
import { NUMPY_READER } from './checkpoint.js';

export const description = 'greedy generation, prefill and decode tokens/s at batch 1 and 8: lowrank vs PyTorch CPU vs onnxruntime-node; unmerged adapters vs merged';

const BUILTIN = fileURLToPath(new URL('../../assets/builtin/model', import.meta.url));
/** The train suite's ~100M config. */
const M100: LlamaShape = { hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 8, num_attention_heads: 12, num_key_value_heads: 4, vocab_size: 32000 };
const TINY: LlamaShape = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512 };
/** Where onnxruntime-node is installed on demand (ignored by git), and the version pinned. */
const PEERS_DIR = fileURLToPath(new URL('../../bench/.peers/', import.meta.url));
const ORT_VERSION = '1.30.0';
const ORT_THREADS = [1, 2];
/** Below this many weight bytes a decode step reads from cache, not memory, and the floor does not apply. */
const CACHE_RESIDENT = 32e6;
const ADAPTER_RANK = 16;
const ADAPTER_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

/** What each peer prints: seconds of each timed run, the last run's generated ids, peak RSS. */
interface Run {
  readonly prefillSeconds: number[];
  readonly decodeSeconds: number[];
  readonly tokens: number[][];
  readonly maxRssBytes: number;
  readonly prefillTokens?: number;
  readonly decodeTokens?: number;
}

/** A run with its setting and rates. */
interface Measured {
  readonly setting: string;
  readonly run: Run;
  readonly prefillTps: number;
  readonly decodeTps: number;
}

interface Workload {
  readonly name: string;
  readonly dir: string;
  readonly batches: readonly number[];
  readonly prompt: number;
  readonly newTokens: number;
  readonly warmup: number;
  readonly reps: number;
}

/** The 1, 5 and 15 minute load averages, as the kernel prints them. */
function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}


/** onnxruntime-node from bench/.peers (installed there with npm at the pinned version if missing), or why not. */
function findOrt(): { ok: boolean; note?: string } {
  const pkg = join(PEERS_DIR, 'node_modules', 'onnxruntime-node', 'package.json');
  const installed = (): boolean => existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version === ORT_VERSION;
  if (installed()) return { ok: true };
  // ONNXRUNTIME_NODE_INSTALL=skip: the CPU build is in the npm package; without it the postinstall
  // script fetches the CUDA execution provider from NuGet on linux/x64.
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', PEERS_DIR, `onnxruntime-node@${ORT_VERSION}`], {
    encoding: 'utf8',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
  if (installed()) return { ok: true, note: `installed onnxruntime-node@${ORT_VERSION} into ${PEERS_DIR} for the onnxruntime-node column (not a lowrank dependency)` };
  const why = r.error?.message ?? (r.stderr ?? '').trim().split('\n').slice(-2).join(' ');
  return { ok: false, note: `onnxruntime-node@${ORT_VERSION} could not be installed with npm (${why}); the onnxruntime-node column is missing` };
}

/** Memory bandwidth in bytes/s: numpy's sdot over 256 MiB (read) and a 256 MiB Float32Array copy (read + write), the faster. */
function measureBandwidth(): { bytesPerSecond: number; numpyDot: number; nodeCopy: number } {
  const n = 64 << 20;
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n);
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = now();
    b.set(a);
    times.push(now() - t0);
  }
  const nodeCopy = (2 * a.byteLength) / Math.min(...times.slice(1));
  const { numpyDot } = runPythonJson<{ numpyDot: number }>(`
import json
a = np.ones(${n}, np.float32)
ts = []
for i in range(6):
    t = _time.perf_counter(); a.dot(a); ts.append(_time.perf_counter() - t)
print(json.dumps({'numpyDot': a.nbytes / min(ts[1:])}))
`);
  return { bytesPerSecond: Math.max(numpyDot, nodeCopy), numpyDot, nodeCopy };
}

/** The bytes of float32 weights one decode step reads: every tensor but the embedding table (unless it is also the output layer). */
async function decodeBytes(dir: string): Promise<{ params: number; bytes: number }> {
  const m = await openModel(dir);
  try {
    const tied = !m.has('lm_head.weight');
    let params = 0;
    let read = 0;
    for (const t of m.tensors) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      params += n;
      if (t.name !== 'model.embed_tokens.weight' || tied) read += n;
    }
    return { params, bytes: 4 * read };
  } finally {
    await m.close();
  }
}

/** k LoRA adapter folders for the model (rank 16, alpha 32, attention projections, random non-zero A and B). */
async function writeAdapters(modelDir: string, dir: string, k: number): Promise<string[]> {
  const m = await openModel(modelDir);
  const shapes = m.tensors.filter((t) => ADAPTER_TARGETS.some((p) => t.name.endsWith(`.${p}.weight`))).map((t) => ({ name: t.name.slice(0, -'.weight'.length), out: t.shape[0], in: t.shape[1] }));
  await m.close();
  const dirs: string[] = [];
  for (let i = 0; i < k; i++) {
    const g = rng(100 + i);
    const modules: LoraModuleTensors[] = shapes.map((s) => {
      const A = tensor('f32', [ADAPTER_RANK, s.in]);
      const B = tensor('f32', [s.out, ADAPTER_RANK]);
      g.fillNormal(A.data, 0, 1 / Math.sqrt(s.in));
      g.fillNormal(B.data, 0, 0.02);
      return { name: s.name, A, B };
    });
    const out = join(dir, `adapter-${i}`);
    await writeAdapter(out, { r: ADAPTER_RANK, lora_alpha: 2 * ADAPTER_RANK, target_modules: ADAPTER_TARGETS, base_model_name_or_path: modelDir, task_type: 'CAUSAL_LM' }, modules);
    dirs.push(out);
  }
  return dirs;
}

function measure(setting: string, run: Run, batch: number, prompt: number, newTokens: number): Measured {
  return { setting, run, prefillTps: (batch * prompt) / median(run.prefillSeconds), decodeTps: (batch * (newTokens - 1)) / median(run.decodeSeconds) };
}

/** The run with the most decode tokens/s. */
const best = (ms: readonly Measured[]): Measured | undefined => (ms.length === 0 ? undefined : ms.reduce((a, b) => (b.decodeTps > a.decodeTps ? b : a)));

/** Tokens that agree before each sequence's first difference, summed over the batch, as `n/total`. */
function matching(a: Run | undefined, b: Run | undefined): string {
  if (a === undefined || b === undefined) return '-';
  let n = 0;
  let total = 0;
  a.tokens.forEach((seq, i) => {
    const other = b.tokens[i] ?? [];
    total += seq.length;
    let j = 0;
    while (j < seq.length && seq[j] === other[j]) j++;
    n += j;
  });
  return `${n}/${total}`;
}

export async function run(opts: SuiteOptions): Promise<unknown> {
  const numpy = requireNumpy();
  const quick = opts.args.includes('quick');
  const torch = findTorch();
  if (torch.note !== undefined) console.log(torch.note);
  const ort = findOrt();
  if (ort.note !== undefined) console.log(ort.note);
  const settings = blasSettings();
  const loadBefore = loadAverage();
  console.log(`load average at the start: ${loadBefore} (on ${cpus().length} cores; other work on the machine makes every timing here noisy)`);
  return withTempDir('lowrank-bench-generate-', async (dir) => {
    const bw = measureBandwidth();
    console.log(`memory bandwidth: ${(bw.bytesPerSecond / 1e9).toFixed(1)} GB/s (numpy sdot read ${(bw.numpyDot / 1e9).toFixed(1)}, Float32Array copy read+write ${(bw.nodeCopy / 1e9).toFixed(1)})`);
    const workloads: Workload[] = [];
    if (quick) {
      await writeModel(join(dir, 'tiny'), randomWeights(llamaTensors(TINY), { seed: 1, dtype: 'bf16', std: 0.02 }), { config: llamaConfig(TINY) });
      workloads.push({ name: 'tiny Llama', dir: join(dir, 'tiny'), batches: [1, 2], prompt: 8, newTokens: 8, warmup: 1, reps: 2 });
    } else {
      workloads.push({ name: 'built-in (0.84M)', dir: BUILTIN, batches: [1, 8], prompt: 32, newTokens: 64, warmup: 8, reps: 5 });
      await writeModel(join(dir, 'm100'), randomWeights(llamaTensors(M100), { seed: 1, dtype: 'bf16', std: 0.02 }), { config: llamaConfig(M100) });
      const { params } = await decodeBytes(join(dir, 'm100'));
      workloads.push({ name: `random Llama (${(params / 1e6).toFixed(0)}M)`, dir: join(dir, 'm100'), batches: [1, 8], prompt: 32, newTokens: 32, warmup: 1, reps: 5 });
    }
    const results: Record<string, unknown>[] = [];
    const prefillRows: string[][] = [];
    const decodeRows: string[][] = [];
    const checkRows: string[][] = [];
    const settingRows: string[][] = [];
    const targets: string[] = [];
    const bestLowrankEnv = new Map<string, NodeJS.ProcessEnv>();
    for (const w of workloads) {
      const { params, bytes } = await decodeBytes(w.dir);
      const floorSteps = bw.bytesPerSecond / bytes;
      let onnx: string | undefined;
      let exportNote: string | undefined;
      if (torch.python !== undefined && ort.ok) {
        onnx = join(dir, `${results.length}.onnx`);
        try {
          const t0 = now();
          runPythonJson(PY_MODEL + PY_EXPORT, [w.dir, onnx, String(w.prompt + w.newTokens)], torch.python);
          console.log(`${w.name}: exported with torch.onnx.export in ${(now() - t0).toFixed(1)} s`);
        } catch (e) {
          exportNote = `torch.onnx.export failed: ${e instanceof Error ? e.message.split('\n').slice(-1)[0] : String(e)}`;
          console.log(`${w.name}: ${exportNote}; the onnxruntime-node column is missing`);
          onnx = undefined;
        }
      }
      const vocab = (JSON.parse(readFileSync(join(w.dir, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
      for (const batch of w.batches) {
        const ids = join(dir, `${results.length}.ids`);
        const g = rng(7 + batch);
        await writeFile(ids, new Uint8Array(Int32Array.from({ length: batch * w.prompt }, () => g.uint32() % vocab).buffer));
        const args = [w.dir, ids, String(batch), String(w.prompt), String(w.newTokens), String(w.warmup), String(w.reps)];
        const m = (s: string, r: Run): Measured => measure(s, r, batch, w.prompt, w.newTokens);
        const lr = settings.map((s) => m(s.name, runNodeJson<Run>('generate-child.js', args, [], s.env)));
        const pt = torch.python === undefined ? [] : settings.map((s) => m(s.name, runPythonJson<Run>(PY_MODEL + PY_GENERATE, args, torch.python, s.env)));
        const ox = onnx === undefined ? [] : ORT_THREADS.map((t) => m(`${t} thread${t > 1 ? 's' : ''}`, runNodeJson<Run>('generate-ort.js', [PEERS_DIR, onnx as string, ...args, String(t)])));
        const [bl, bp, bo] = [best(lr) as Measured, best(pt), best(ox)];
        bestLowrankEnv.set(`${w.dir}:${batch}`, settings.find((s) => s.name === bl.setting)?.env ?? process.env);
        for (const [peer, ms] of [['lowrank', lr], ['PyTorch', pt], ['onnxruntime-node', ox]] as const) {
          for (const x of ms) settingRows.push([w.name, String(batch), peer, x.setting, x.prefillTps.toFixed(0), x.decodeTps.toFixed(1)]);
        }
        const cell = (x: Measured | undefined, f: (x: Measured) => number, digits: number): string => (x === undefined ? 'missing' : f(x).toFixed(digits));
        const ratio = (a: number, b: number | undefined): string => (b === undefined ? '-' : fmtRatio(a / b));
        const shape = `${batch}×${w.prompt}+${w.newTokens}`;
        prefillRows.push([w.name, shape, bl.prefillTps.toFixed(0), cell(bp, (x) => x.prefillTps, 0), cell(bo, (x) => x.prefillTps, 0), ratio(bl.prefillTps, bp?.prefillTps), ratio(bl.prefillTps, bo?.prefillTps)]);
        decodeRows.push([w.name, shape, bl.decodeTps.toFixed(1), cell(bp, (x) => x.decodeTps, 1), cell(bo, (x) => x.decodeTps, 1), ratio(bl.decodeTps, bp?.decodeTps), ratio(bl.decodeTps, bo?.decodeTps), bytes < CACHE_RESIDENT ? 'in cache' : (batch * floorSteps).toFixed(0)]);
        checkRows.push([w.name, shape, matching(bl.run, bp?.run), matching(bl.run, bo?.run), matching(bp?.run, bo?.run), fmtMiB(bl.run.maxRssBytes), bp === undefined ? '-' : fmtMiB(bp.run.maxRssBytes), bo === undefined ? '-' : fmtMiB(bo.run.maxRssBytes)]);
        if (batch === 1) {
          const vsPt = bp === undefined ? 'not measured (no PyTorch)' : `${bl.decodeTps >= bp.decodeTps ? 'pass' : 'MISS'} (${fmtRatio(bl.decodeTps / bp.decodeTps)})`;
          const vsOrt = bo === undefined ? 'not measured (no onnxruntime-node)' : `${bl.decodeTps * 1.5 >= bo.decodeTps ? 'pass' : 'MISS'} (${fmtRatio(bl.decodeTps / bo.decodeTps)})`;
          targets.push(`${w.name}, batch 1 decode: ≥ PyTorch ${vsPt}; within 1.5x of onnxruntime-node ${vsOrt}`);
        }
        const libraryCounts = bl.run.prefillTokens === batch * w.prompt && bl.run.decodeTokens === batch * (w.newTokens - 1);
        if (!libraryCounts) console.log(`note: generate() counted ${bl.run.prefillTokens} prefill and ${bl.run.decodeTokens} decode tokens for ${shape}; the suite uses ${batch * w.prompt} and ${batch * (w.newTokens - 1)}`);
        const summary = (ms: readonly Measured[]): unknown[] => ms.map((x) => ({ setting: x.setting, prefillTokensPerSecond: x.prefillTps, decodeTokensPerSecond: x.decodeTps, ...x.run }));
        results.push({ workload: w.name, params, decodeBytes: bytes, floorDecodeStepsPerSecond: floorSteps, batch, prompt: w.prompt, newTokens: w.newTokens, reps: w.reps, lowrank: summary(lr), torch: summary(pt), ort: summary(ox), exportNote: exportNote ?? null });
      }
      console.log(`${w.name}: decode floor ${(bytes / 1e6).toFixed(1)} MB of float32 weights per step / ${(bw.bytesPerSecond / 1e9).toFixed(1)} GB/s = ${((1e3 * bytes) / bw.bytesPerSecond).toFixed(2)} ms per step${bytes < CACHE_RESIDENT ? ' (the weights stay in cache: not a bound here)' : ''}`);
    }
    console.log('\nprefill tokens/s (batch×prompt+new; each peer at its best setting):');
    printTable(['model', 'shape', 'lowrank', 'PyTorch CPU', 'onnxruntime-node', 'lowrank/PyTorch', 'lowrank/ORT'], prefillRows);
    console.log('\ndecode tokens/s (the floor: batch × memory bandwidth / float32 weight bytes per step):');
    printTable(['model', 'shape', 'lowrank', 'PyTorch CPU', 'onnxruntime-node', 'lowrank/PyTorch', 'lowrank/ORT', 'floor'], decodeRows);
    console.log('\nsame greedy tokens (matching before the first difference) and peak RSS:');
    printTable(['model', 'shape', 'lowrank=PyTorch', 'lowrank=ORT', 'PyTorch=ORT', 'RSS lowrank', 'RSS PyTorch', 'RSS ORT'], checkRows);
    console.log('\nevery setting:');
    printTable(['model', 'batch', 'peer', 'setting', 'prefill tok/s', 'decode tok/s'], settingRows);

    const a = workloads[workloads.length - 1];
    const adapters = await adapterRows(a, dir, bestLowrankEnv.get(`${a.dir}:1`) ?? process.env, quick ? [1, 2] : [1, 2, 4]);
    console.log('\ntargets:');
    for (const t of targets) console.log(`  ${t}`);
    const loadAfter = loadAverage();
    console.log(`\nload average at the end: ${loadAfter} (this suite itself keeps about one core busy)`);
    return { quick, loadAverage: { start: loadBefore, end: loadAfter }, numpy, torch: torch.version ?? null, onnxruntimeNode: ort.ok ? ORT_VERSION : null, bandwidth: bw, results, adapters };
  });
}

/** Decode at batch 1 with k unmerged adapters against one merged, on one workload, lowrank at its better setting. */
async function adapterRows(w: Workload, dir: string, env: NodeJS.ProcessEnv, ks: readonly number[]): Promise<unknown[]> {
  const dirs = await writeAdapters(w.dir, dir, Math.max(...ks));
  const vocab = (JSON.parse(readFileSync(join(w.dir, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
  const ids = join(dir, 'adapters.ids');
  const g = rng(5);
  await writeFile(ids, new Uint8Array(Int32Array.from({ length: w.prompt }, () => g.uint32() % vocab).buffer));
  const args = [w.dir, ids, '1', String(w.prompt), String(w.newTokens), String(w.warmup), String(w.reps)];
  const rows: { name: string; mode: string; k: number; m: Measured }[] = [];
  const go = (name: string, mode: string, k: number): void => {
    const r = runNodeJson<Run>('generate-child.js', [...args, mode, ...dirs.slice(0, k)], [], env);
    rows.push({ name, mode, k, m: measure(name, r, 1, w.prompt, w.newTokens) });
  };
  go('base (no adapter)', 'none', 0);
  go('1 adapter merged', 'merged', 1);
  for (const k of ks) go(`${k} unmerged`, 'unmerged', k);
  const merged = rows[1].m;
  console.log(`\nadapters on ${w.name}, batch 1, ${w.prompt}+${w.newTokens} tokens: LoRA rank ${ADAPTER_RANK} on ${ADAPTER_TARGETS.join(',')}, random A and B, k active at once:`);
  printTable(
    ['adapters', 'prefill tok/s', 'decode tok/s', 'decode / merged', 'same tokens as merged', 'peak RSS'],
    rows.map(({ name, m }) => [name, m.prefillTps.toFixed(0), m.decodeTps.toFixed(1), fmtRatio(m.decodeTps / merged.decodeTps), name.startsWith('1 ') ? matching(m.run, merged.run) : '-', fmtMiB(m.run.maxRssBytes)]),
  );
  return rows.map(({ name, mode, k, m }) => ({ name, mode, adapters: k, prefillTokensPerSecond: m.prefillTps, decodeTokensPerSecond: m.decodeTps, decodeVsMerged: m.decodeTps / merged.decodeTps, ...m.run }));
}

/** The Llama forward in torch with the KV cache as explicit inputs and outputs (what is exported to ONNX, and what PyTorch runs). */
const PY_MODEL = `${PY_PEAK_RSS}
import json, os, struct, sys
import torch
import torch.nn.functional as F
${NUMPY_READER}
class Llama(torch.nn.Module):
    """Hugging Face LlamaForCausalLM's forward (RMSNorm, RoPE rotate_half, GQA, SwiGLU) with the KV
    cache as explicit inputs and outputs: forward(ids [B, T], past_k0, past_v0, ...) -> (logits of
    the last position [B, vocab], present_k0, present_v0, ...), caches [B, kv heads, positions, head dim]."""
    def __init__(self, path, max_pos):
        super().__init__()
        cfg = json.load(open(os.path.join(path, 'config.json')))
        W = {name: read(e) for name, e in open_model(path).items()}
        H = cfg['hidden_size']; nh = cfg['num_attention_heads']; nkv = cfg.get('num_key_value_heads') or nh
        hd = cfg.get('head_dim') or H // nh
        theta = float(cfg.get('rope_theta') or (cfg.get('rope_parameters') or {}).get('rope_theta', 10000.0))
        self.nh, self.nkv, self.hd, self.L = nh, nkv, hd, cfg['num_hidden_layers']
        self.eps = float(cfg.get('rms_norm_eps', 1e-6))
        inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        f = np.outer(np.arange(max_pos, dtype=np.float64), inv)
        emb = np.concatenate([f, f], axis=1)
        self.register_buffer('cos', torch.from_numpy(np.cos(emb).astype(np.float32)))
        self.register_buffer('sin', torch.from_numpy(np.sin(emb).astype(np.float32)))
        t = lambda n: torch.nn.Parameter(torch.from_numpy(W[n]), requires_grad=False)
        self.embed = t('model.embed_tokens.weight')
        self.lm_head = self.embed if cfg.get('tie_word_embeddings') or 'lm_head.weight' not in W else t('lm_head.weight')
        self.norm = t('model.norm.weight')
        self.layers = torch.nn.ModuleList()
        for l in range(self.L):
            p = f'model.layers.{l}.'
            m = torch.nn.Module()
            for k, n in (('ln1', 'input_layernorm'), ('ln2', 'post_attention_layernorm'), ('q', 'self_attn.q_proj'), ('k', 'self_attn.k_proj'), ('v', 'self_attn.v_proj'), ('o', 'self_attn.o_proj'), ('g', 'mlp.gate_proj'), ('u', 'mlp.up_proj'), ('d', 'mlp.down_proj')):
                setattr(m, k, t(p + n + '.weight'))
            self.layers.append(m)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, cos, sin):
        h = self.hd // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

    def forward(self, ids, *past):
        nh, nkv, hd = self.nh, self.nkv, self.hd
        g = nh // nkv
        B, T = ids.shape[0], ids.shape[1]
        P = past[0].shape[2]
        S = P + T
        cos, sin = self.cos[P:S], self.sin[P:S]
        mask = torch.arange(S).unsqueeze(0) > (torch.arange(T) + P).unsqueeze(1)
        x = F.embedding(ids, self.embed)
        present = []
        for l, m in enumerate(self.layers):
            h = self.rms(x, m.ln1)
            q = self.rope(F.linear(h, m.q).view(B, T, nh, hd).transpose(1, 2), cos, sin)
            k = self.rope(F.linear(h, m.k).view(B, T, nkv, hd).transpose(1, 2), cos, sin)
            v = F.linear(h, m.v).view(B, T, nkv, hd).transpose(1, 2)
            k = torch.cat([past[2 * l], k], 2)
            v = torch.cat([past[2 * l + 1], v], 2)
            present += [k, v]
            # query head j reads kv head j // g (Hugging Face's repeat_kv) without repeating the cache
            s = torch.matmul(q.reshape(B, nkv, g * T, hd), k.transpose(2, 3)).view(B, nkv, g, T, S) * hd ** -0.5
            a = torch.softmax(s.masked_fill(mask, float('-inf')), -1)
            o = torch.matmul(a.view(B, nkv, g * T, S), v).view(B, nh, T, hd).transpose(1, 2).reshape(B, T, nh * hd)
            x = x + F.linear(o, m.o)
            h = self.rms(x, m.ln2)
            x = x + F.linear(F.silu(F.linear(h, m.g)) * F.linear(h, m.u), m.d)
        return (F.linear(self.rms(x[:, -1], self.norm), self.lm_head), *present)
`;

/** PyTorch's greedy loop: prefill, then one token per step, the cache fed back. */
const PY_GENERATE = `
path, ids_file, B, T, new, warmup, reps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
torch.set_num_threads(1)
m = Llama(path, T + new).eval()
ids = torch.from_numpy(np.fromfile(ids_file, dtype=np.int32)[:B * T].reshape(B, T).astype(np.int64))
def generate():
    with torch.inference_mode():
        t0 = _time.perf_counter()
        out = m(ids, *[torch.zeros(B, m.nkv, 0, m.hd) for _ in range(2 * m.L)])
        nxt = out[0].argmax(-1)
        toks = [nxt]
        t1 = _time.perf_counter()
        for _ in range(new - 1):
            out = m(nxt.unsqueeze(1), *out[1:])
            nxt = out[0].argmax(-1)
            toks.append(nxt)
        t2 = _time.perf_counter()
    return t1 - t0, t2 - t1, torch.stack(toks, 1).tolist()
pre, dec = [], []
for i in range(warmup + reps):
    p, d, tokens = generate()
    if i >= warmup: pre.append(p); dec.append(d)
print(json.dumps({'prefillSeconds': pre, 'decodeSeconds': dec, 'tokens': tokens, 'maxRssBytes': _peak_rss_bytes()}))
`;

/** torch.onnx.export of that module: caches as inputs past_k/v_<l> and outputs present_k/v_<l>, batch and positions dynamic. */
const PY_EXPORT = `
path, out, max_pos = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = Llama(path, max_pos).eval()
B, T, P = 2, 3, 4
ids = torch.zeros(B, T, dtype=torch.int64)
past = [torch.zeros(B, m.nkv, P, m.hd) for _ in range(2 * m.L)]
past_names = [f'past_{kv}_{l}' for l in range(m.L) for kv in 'kv']
present_names = [f'present_{kv}_{l}' for l in range(m.L) for kv in 'kv']
axes = {'input_ids': {0: 'batch', 1: 'seq'}, 'logits': {0: 'batch'}}
axes.update({n: {0: 'batch', 2: 'past'} for n in past_names})
axes.update({n: {0: 'batch', 2: 'total'} for n in present_names})
with torch.no_grad():
    torch.onnx.export(m, (ids, *past), out, input_names=['input_ids', *past_names], output_names=['logits', *present_names], dynamic_axes=axes, opset_version=17, do_constant_folding=True)
print(json.dumps({'bytes': os.path.getsize(out)}))
`;
