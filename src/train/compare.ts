/**
 * `lowrank compare`: every adapter method asked for trained on one task from the same seed and
 * data, one row each — trainable parameters, final train loss, held-out loss before and after,
 * the steps it takes to reach LoRA's final train loss, time and peak memory — with every step's
 * loss, and an HTML page of the loss curves on one chart and the table.
 *
 * The task is the built-in one (the main job's model, data and settings, mainJob.ts) or a model
 * folder with training and held-out JSONL files read as `lowrank train` reads them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { LowrankError } from '../core/errors.js';
import { openModel } from '../io/hf.js';
import { DEFAULT_TARGETS, loadCausalLm } from '../nn/causalLm.js';
import { getMethod } from '../methods/registry.js';
import type { OptionValues } from '../methods/options.js';
import type { LayerTargets } from '../tools/targets.js';
import { pack, readJsonl, type Sequence } from './data.js';
import { lossChart } from './lossChart.js';
import { loadTokenizer } from './tokenizer.js';
import { attachAdapter, evaluate, train, trainableCount, trainableMethods } from './loop.js';
import { BUILTIN_OPTIONS, BUILTIN_TRAINING, builtinTask, defaultLr } from './mainJob.js';
export { DEFAULT_LR, FALLBACK_LR, defaultLr } from './mainJob.js';

/** What the methods train on: a model folder, its training and held-out sequences, the target layers. */
export interface CompareTask {
  readonly model: string;
  readonly train: readonly Sequence[];
  readonly eval: readonly Sequence[];
  /** Default: the family's (DEFAULT_TARGETS), as `lowrank train`. */
  readonly targets?: LayerTargets;
}

/** A model folder with training and held-out JSONL files, tokenized and packed as `lowrank train` does. */
export async function folderTask(model: string, trainFile: string, evalFile: string, seqLen: number): Promise<CompareTask> {
  const tok = await loadTokenizer(model);
  const task = { model, train: pack(await readJsonl(trainFile, tok), seqLen), eval: pack(await readJsonl(evalFile, tok), seqLen) };
  if (task.train.length === 0) throw new LowrankError('E_USAGE', `the training data is shorter than one sequence of ${seqLen} tokens`, { file: trainFile });
  if (task.eval.length === 0) throw new LowrankError('E_USAGE', `the held-out data is shorter than one sequence of ${seqLen} tokens`, { file: evalFile });
  return task;
}

/** The settings of a folder task left unset: `lowrank train`'s defaults (and rank 8). */
const FOLDER_TRAINING = { rank: 8, batch: 4, warmup: 10, clip: 1, seed: 0 } as const;

export interface CompareOptions {
  /** The methods, in the order of the rows; each must have a training term. */
  readonly methods: readonly string[];
  /** Default: the built-in task with its settings (rank 8, alpha 16, all linear layers, batch 16, warmup 5, clip 1, seed 0). */
  readonly task?: CompareTask;
  readonly rank?: number;
  /** Default: 2·rank. */
  readonly alpha?: number;
  /** Default 60. */
  readonly steps?: number;
  readonly batch?: number;
  /** One learning rate for every method; default: each method's {@link defaultLr}. */
  readonly lr?: number;
  readonly warmup?: number;
  readonly clip?: number;
  readonly seed?: number;
  /** Each method's own options, by method name. */
  readonly options?: Readonly<Record<string, OptionValues>>;
  readonly onStep?: (method: string, step: number, steps: number, loss: number) => void;
}

/** How a row's peak memory was measured. */
export type PeakSource = 'VmHWM' | 'sampled';

/** One method's result. */
export interface CompareRow {
  readonly method: string;
  readonly lr: number;
  readonly options: OptionValues;
  readonly trainable: number;
  /** The loss of every step. */
  readonly losses: readonly number[];
  readonly trainLoss: number;
  readonly evalBefore: number;
  readonly evalAfter: number;
  /** The first step (from 1) whose loss is ≤ LoRA's final train loss; null: none; absent when LoRA is not compared. */
  readonly stepsToLora?: number | null;
  /** From attaching the adapter to the end of the held-out evaluation after training. */
  readonly seconds: number;
  /** The process's peak resident memory while the method loaded, trained and was evaluated. */
  readonly peakMiB: number;
  /**
   * VmHWM: the kernel's peak RSS, reset before the method (Linux /proc/self/clear_refs); sampled:
   * the largest RSS seen at each step, where the reset is not allowed.
   */
  readonly peakSource: PeakSource;
}

/** Resets the kernel's peak-RSS mark of this process; false where that is not possible (not Linux, not allowed). */
async function resetPeak(): Promise<boolean> {
  try {
    await writeFile('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** VmHWM in bytes, or undefined where /proc/self/status does not give it. */
async function peakRss(): Promise<number | undefined> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(status);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** Checks a method list before any training: known, trainable, no repeats (E_USAGE). */
export function checkMethods(methods: readonly string[]): void {
  if (methods.length === 0) throw new LowrankError('E_USAGE', 'no methods to compare');
  const trainable = trainableMethods();
  const seen = new Set<string>();
  for (const name of methods) {
    getMethod(name);
    if (!trainable.includes(name)) throw new LowrankError('E_USAGE', `${name} cannot be trained yet (trainable: ${trainable.join(', ')})`);
    if (seen.has(name)) throw new LowrankError('E_USAGE', `${name} is listed twice`);
    seen.add(name);
  }
}

/**
 * Trains each method on the task from a fresh copy of the model, the same seed and data, and
 * returns one row per method in the order given.
 *
 * @example
 * const rows = await compareMethods({ methods: ['lora', 'pissa', 'nola'], steps: 60 });
 */
export async function compareMethods(opts: CompareOptions): Promise<CompareRow[]> {
  checkMethods(opts.methods);
  for (const name of Object.keys(opts.options ?? {})) {
    if (!opts.methods.includes(name)) throw new LowrankError('E_USAGE', `options are given for ${name}, which is not among the methods compared (${opts.methods.join(', ')})`);
  }
  const task: CompareTask = opts.task ?? { ...(await builtinTask()), targets: BUILTIN_TRAINING.targets };
  const defaults = opts.task === undefined ? BUILTIN_TRAINING : FOLDER_TRAINING;
  const rank = opts.rank ?? defaults.rank;
  const batch = opts.batch ?? defaults.batch;
  const steps = opts.steps ?? 60;
  const rows: Omit<CompareRow, 'stepsToLora'>[] = [];
  for (const method of opts.methods) {
    const options = { ...(opts.task === undefined ? BUILTIN_OPTIONS[method] : undefined), ...opts.options?.[method] };
    const lr = opts.lr ?? defaultLr(method);
    const reset = await resetPeak();
    let sampled = process.memoryUsage().rss;
    const folder = await openModel(task.model);
    const model = await loadCausalLm(folder, 'f32').finally(() => folder.close());
    const topts = {
      method,
      rank,
      alpha: opts.alpha ?? 2 * rank,
      targets: task.targets ?? DEFAULT_TARGETS[model.family],
      steps,
      batch,
      lr,
      warmup: opts.warmup ?? defaults.warmup,
      clip: opts.clip ?? defaults.clip,
      seed: opts.seed ?? defaults.seed,
      options,
      onStep: ({ step, loss }: { step: number; loss: number }) => {
        sampled = Math.max(sampled, process.memoryUsage().rss);
        opts.onStep?.(method, step, steps, loss);
      },
    };
    const t0 = performance.now();
    const adapter = await attachAdapter(model, topts);
    const before = await evaluate(model, task.eval, batch);
    const losses = await train(model, adapter, task.train, topts);
    const after = await evaluate(model, task.eval, batch);
    const seconds = (performance.now() - t0) / 1000;
    sampled = Math.max(sampled, process.memoryUsage().rss);
    const hwm = reset ? await peakRss() : undefined;
    rows.push({
      method,
      lr,
      options,
      trainable: trainableCount(adapter),
      losses,
      trainLoss: losses[losses.length - 1],
      evalBefore: before.loss,
      evalAfter: after.loss,
      seconds,
      peakMiB: (hwm ?? sampled) / 2 ** 20,
      peakSource: hwm === undefined ? 'sampled' : 'VmHWM',
    });
  }
  const lora = rows.find((r) => r.method === 'lora');
  if (lora === undefined) return rows;
  return rows.map((r) => {
    const i = r.losses.findIndex((l) => l <= lora.trainLoss);
    return { ...r, stepsToLora: i < 0 ? null : i + 1 };
  });
}

/** The table of the rows as text cells (the CLI's and the page's): its header, cells and right-aligned columns. */
export function compareTable(rows: readonly CompareRow[], count: (n: number) => string = String): { header: string[]; cells: string[][]; right: number[] } {
  const reach = rows.some((r) => r.stepsToLora !== undefined);
  const sampled = rows.some((r) => r.peakSource === 'sampled');
  const header = ['method', 'lr', 'trainable', 'final train loss', 'held-out before', 'held-out after', ...(reach ? ["steps to LoRA's loss"] : []), 'time (s)', sampled ? 'peak RSS (MiB, sampled per step)' : 'peak RSS (MiB)'];
  const cells = rows.map((r) => [
    r.method,
    String(r.lr),
    count(r.trainable),
    r.trainLoss.toFixed(3),
    r.evalBefore.toFixed(3),
    r.evalAfter.toFixed(3),
    ...(reach ? [r.stepsToLora === null || r.stepsToLora === undefined ? '—' : String(r.stepsToLora)] : []),
    r.seconds.toFixed(1),
    r.peakMiB.toFixed(0),
  ]);
  return { header, cells, right: header.map((_, i) => i).filter((i) => i > 0) };
}

/**
 * One self-contained HTML page (no scripts, no external resources): the loss curves of every
 * method on one chart and the table.
 */
export async function compareHtml(rows: readonly CompareRow[], opts: { title?: string; note?: string } = {}): Promise<string> {
  const { esc, htmlPage, tableHtml } = await import('../analysis/report.js');
  const title = opts.title ?? `lowrank compare: ${rows.map((r) => r.method).join(', ')}`;
  const chart = await lossChart(rows);
  const { header, cells } = compareTable(rows);
  const note = opts.note === undefined ? '' : `<p class="note">${esc(opts.note)}</p>\n`;
  return htmlPage(title, `${note}<figure id="losses">${chart}</figure>\n${tableHtml(header, cells, 'compare')}`, '\ntable.compare td:nth-child(n+2){text-align:right;font-variant-numeric:tabular-nums}');
}
