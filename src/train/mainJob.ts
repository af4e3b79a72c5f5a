/**
 * lowrank's main job on its built-in default (what `npm start` runs): the built-in model — a small
 * Llama (0.84M parameters) that assets/builtin/make.py trained on generated "subject verb object"
 * sentences and counting — is adapted to a task it has never seen, two-number addition ("12 plus 7
 * is" → " 19."), with LoRA and with PiSSA side by side; each adapter is evaluated on held-out sums
 * (loss, and exact match of its greedy answers), written as a PEFT adapter folder, and analyzed
 * (what the fine-tune changed) into an HTML report; one page compares the two.
 */
import { IN_NODE } from '../core/host.js';
import { join, relative } from '../io/paths.js';
import { writeFileAtomic } from '../io/atomic.js';
import { openModel } from '../io/hf.js';
import { loadCausalLm, type CausalLm } from '../nn/causalLm.js';
import { exactMatch } from '../infer/text.js';
import { mainJobHtml } from './mainJobPage.js';
import { analyzeModel } from '../analysis/model.js';
import { loadTokenizer } from './tokenizer.js';
import { pack, shuffled, type Example, type Sequence } from './data.js';
import { attachAdapter, evaluate, saveTrainedAdapter, train, trainableCount, type TrainOptions } from './loop.js';
import { IGNORE } from '../nn/loss.js';
import type { OptionValues } from '../methods/options.js';

const NODE_URL = 'node:url';
/**
 * The built-in model folder: in Node, the package's assets/builtin/model; in a browser,
 * /builtin/model on the file system the page installed, where the page puts the model's files
 * (the studio fetches them from its server).
 */
export const BUILTIN_MODEL = IN_NODE
  ? ((await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_URL)) as typeof import('node:url')).fileURLToPath(new URL('../../../assets/builtin/model', import.meta.url))
  : '/builtin/model';
/** The files of the built-in model folder. */
export const BUILTIN_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'] as const;

/** Exact matches of greedy answers on the held-out sums. */
export interface Accuracy {
  readonly correct: number;
  readonly total: number;
}

/** One method's result. */
export interface MainJobRow {
  readonly method: string;
  /** The loss of every step. */
  readonly losses: readonly number[];
  readonly trainLoss: number;
  readonly evalBefore: number;
  readonly evalAfter: number;
  /** Before training (the adapter attached at its init) and after. */
  readonly accuracyBefore: Accuracy;
  readonly accuracyAfter: Accuracy;
  /** The fine-tuned model's answer to each held-out sum. */
  readonly answers: readonly string[];
  readonly trainable: number;
  readonly seconds: number;
  readonly adapter: string;
  readonly report: string;
}

/** What the main job found, and where it wrote it. */
export interface MainJobResult {
  readonly rows: MainJobRow[];
  /** The held-out sums, and the base model's answers to them. */
  readonly heldOut: readonly { readonly prompt: string; readonly completion: string }[];
  readonly baseAnswers: readonly string[];
  readonly baseAccuracy: Accuracy;
  /** The comparison page (HTML). */
  readonly page: string;
}

export interface MainJobOptions {
  readonly out: string;
  readonly steps?: number;
  readonly methods?: readonly string[];
  readonly onStep?: (method: string, step: number, steps: number, loss: number) => void;
}

/** The addition task: every a + b for a, b < 30, split 80/20 from a fixed seed. */
export function additionTask(): { train: { prompt: string; completion: string }[]; eval: { prompt: string; completion: string }[] } {
  const all: { prompt: string; completion: string }[] = [];
  for (let a = 0; a < 30; a++) for (let b = 0; b < 30; b++) all.push({ prompt: `${a} plus ${b} is`, completion: ` ${a + b}.` });
  const mixed = shuffled(all, 2026);
  const cut = Math.floor(0.8 * mixed.length);
  return { train: mixed.slice(0, cut), eval: mixed.slice(cut) };
}

/**
 * Peak learning rates of AdamW by method on the built-in task at `lowrank compare`'s 60 steps: the
 * best final train loss of a sweep over 3e-3, 1e-2, 3e-2 and 1e-1 (SVFit, VeRA, Uni-LoRA and
 * TinyLoRA also 0.3 and 1; rank 8), run on the first built-in model (sentences only). The methods that train a few numbers over frozen factors
 * or random bases (SVFit's singular values, LoLDU's diagonal, NOLA's coefficients) want larger
 * rates than those that train LoRA's factors. A method missing here gets {@link FALLBACK_LR};
 * `lr` in the options overrides every one.
 */
export const DEFAULT_LR: Readonly<Record<string, number>> = {
  lora: 1e-2,
  dora: 1e-2,
  pissa: 2e-3,
  milora: 1e-2,
  olora: 3e-3,
  soma: 1e-2,
  svfit: 3e-1,
  loldu: 3e-2,
  nola: 3e-2,
  vera: 1e-1,
  randlora: 3e-3,
  unilora: 1,
  vblora: 3e-2,
  loraxs: 3e-2,
  tinylora: 3e-2,
  mos: 1e-2,
  blocklora: 1e-2,
};

/**
 * Options the built-in task needs where a method's defaults are sized for large models: VB-LoRA's
 * sub-vectors of 256 do not divide the built-in model's 128 and 344 (8 divides every size), and
 * MoS's equivalent rank 2 gives 4 layers too small a shard pool for rank 8 (4 fits: half of LoRA's
 * parameters). Options given for the method replace these.
 */
export const BUILTIN_OPTIONS: Readonly<Record<string, OptionValues>> = {
  vblora: { vector_length: 8 },
  mos: { valid_param_lora_r: 4 },
};

/** The learning rate of a method without one in {@link DEFAULT_LR}: LoRA's. */
export const FALLBACK_LR = 1e-2;

/** The default learning rate of a method. */
export function defaultLr(method: string): number {
  return Object.hasOwn(DEFAULT_LR, method) ? DEFAULT_LR[method] : FALLBACK_LR;
}

/** The built-in task's training settings (compare's; the main job runs longer, {@link MAIN_JOB}): rank 8, alpha 16, every linear layer, batches of 16, warmup 5, clip 1, seed 0. */
export const BUILTIN_TRAINING = { rank: 8, alpha: 16, targets: 'all-linear', batch: 16, warmup: 5, clip: 1, seed: 0 } as const;

/**
 * The main job's run, longer than compare's 60 steps: at 800 steps (warmup 40), LoRA at 3e-3 and
 * PiSSA at 2e-3 answer 63 % and 71 % of the held-out sums exactly, about a minute each on 2 cores
 * (`npx lowrank start`); at 60 steps, 7 % and 12 % (`npx lowrank start --steps 60`). Other methods
 * run at their {@link defaultLr}.
 */
export const MAIN_JOB = { steps: 800, warmup: 40, lr: { lora: 3e-3, pissa: 2e-3 } as Readonly<Record<string, number>> } as const;

/** The built-in model and the addition task as it trains on it. */
export interface BuiltinTask {
  readonly model: string;
  readonly train: Sequence[];
  readonly eval: Sequence[];
}

/**
 * The addition task tokenized by the built-in model's tokenizer, each sum an example with its
 * prompt masked and an end token after it, packed into sequences of 32 tokens.
 */
export async function builtinTask(): Promise<BuiltinTask> {
  const tok = await loadTokenizer(BUILTIN_MODEL);
  const toExamples = (pairs: { prompt: string; completion: string }[]): Example[] =>
    pairs.map(({ prompt, completion }) => {
      const p = tok.encode(prompt);
      const c = Int32Array.from([...tok.encode(completion), tok.eosId ?? 0]);
      const ids = Int32Array.from([...p, ...c]);
      const labels = ids.slice();
      labels.fill(IGNORE, 0, p.length);
      return { ids, labels };
    });
  const task = additionTask();
  return { model: BUILTIN_MODEL, train: pack(toExamples(task.train), 32), eval: pack(toExamples(task.eval), 32) };
}

async function loadBuiltin(): Promise<CausalLm<'f32'>> {
  const folder = await openModel(BUILTIN_MODEL);
  return loadCausalLm(folder, 'f32').finally(() => folder.close());
}

export async function runMainJob(opts: MainJobOptions): Promise<MainJobResult> {
  const { train: trainSeqs, eval: evalSeqs } = await builtinTask();
  const tok = await loadTokenizer(BUILTIN_MODEL);
  const heldOut = additionTask().eval;
  const greedy = { stopIds: tok.eosId === undefined ? [] : [tok.eosId] };
  const accuracy = async (m: CausalLm<'f32'>): Promise<Accuracy & { answers: string[] }> => exactMatch(m, tok, heldOut, greedy);
  const base = await accuracy(await loadBuiltin());
  const steps = opts.steps ?? MAIN_JOB.steps;
  const rows: MainJobRow[] = [];
  for (const method of opts.methods ?? ['lora', 'pissa']) {
    const model = await loadBuiltin();
    const lr = Object.hasOwn(MAIN_JOB.lr, method) ? MAIN_JOB.lr[method] : defaultLr(method);
    const topts: TrainOptions = { method, ...BUILTIN_TRAINING, warmup: Math.min(MAIN_JOB.warmup, Math.floor(steps / 20)), steps, lr, onStep: ({ step, loss }) => opts.onStep?.(method, step, steps, loss) };
    const t0 = performance.now();
    const adapter = await attachAdapter(model, topts);
    const before = await evaluate(model, evalSeqs, 16);
    const accuracyBefore = await accuracy(model);
    const losses = await train(model, adapter, trainSeqs, topts);
    const after = await evaluate(model, evalSeqs, 16);
    const accuracyAfter = await accuracy(model);
    const seconds = (performance.now() - t0) / 1000;
    const dir = join(opts.out, method);
    await saveTrainedAdapter(adapter, dir, { baseModel: BUILTIN_MODEL, overwrite: true });
    const analysis = await analyzeModel(BUILTIN_MODEL, { adapter: dir, keepSpectra: true });
    const report = join(opts.out, `${method}-report.html`);
    // Loaded here: the report's plotting code is the largest module of the CLI to start up.
    const { renderReport } = await import('../analysis/report.js');
    const html = await renderReport(analysis, { title: `what ${method} changed in the built-in model` });
    await writeFileAtomic(report, (fh) => fh.writeFile(html), { overwrite: true });
    const trainable = trainableCount(adapter);
    rows.push({
      method,
      losses,
      trainLoss: losses[losses.length - 1],
      evalBefore: before.loss,
      evalAfter: after.loss,
      accuracyBefore: { correct: accuracyBefore.correct, total: accuracyBefore.total },
      accuracyAfter: { correct: accuracyAfter.correct, total: accuracyAfter.total },
      answers: accuracyAfter.answers,
      trainable,
      seconds,
      adapter: dir,
      report,
    });
  }
  const result = { rows, heldOut, baseAnswers: base.answers, baseAccuracy: { correct: base.correct, total: base.total } };
  const page = join(opts.out, 'compare.html');
  const html = await mainJobHtml(result, { reports: (r) => relative(opts.out, r.report), adapters: (r) => relative(opts.out, r.adapter) });
  await writeFileAtomic(page, (fh) => fh.writeFile(html), { overwrite: true });
  return { ...result, page };
}
