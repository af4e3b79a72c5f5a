/**
 * `lowrank compare [--model <dir> --data <train.jsonl> --eval <eval.jsonl>] --methods lora,pissa,...`:
 * every method trained on one task from the same seed and data, one table (train/compare.ts);
 * --json writes the rows with every step's loss, --html a page with the loss curves and the table.
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { checkOutput, writeFileAtomic } from '../../io/atomic.js';
import { checkMethods, compareHtml, compareMethods, compareTable, DEFAULT_LR, FALLBACK_LR, folderTask } from '../../train/compare.js';
import { table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { integerFlag, positiveFlag } from '../parse.js';
import { progress, type Progress } from '../progress.js';
import { perMethodOptionValues, withMethodOptions } from '../methodOptions.js';

interface CompareFlags {
  model?: string;
  data?: string;
  eval?: string;
  methods: string;
  rank: string;
  steps: string;
  lr?: string;
  batch?: string;
  seqLen?: string;
  set?: string[];
  json?: string;
  html?: string;
  force?: boolean;
}

/** LoRA and PiSSA, then the shared-basis family of the adapter engine. */
const DEFAULT_METHODS = 'lora,pissa,vera,nola,randlora,unilora,vblora,loraxs,tinylora,mos,blocklora';

const LR_HELP = `${Object.entries(DEFAULT_LR).map(([m, lr]) => `${m} ${lr}`).join(', ')}, others ${FALLBACK_LR}`;

/** Adds the command to the program. */
export function register(program: Command): void {
  withMethodOptions(
    program
      .command('compare')
      .description('train several adapter methods on one task from the same seed and data and compare them in one table (default: the built-in model and its addition task)')
      .option('--model <dir>', 'model folder with tokenizer.json (default: the built-in model and task); needs --data and --eval')
      .option('--data <file>', 'training JSONL (with --model), as lowrank train reads it')
      .option('--eval <file>', 'held-out JSONL (with --model)')
      .option('--methods <list>', 'comma-separated methods, in the order of the rows', DEFAULT_METHODS)
      .option('--rank <r>', 'adapter rank (alpha = 2·rank)', '8')
      .option('--steps <n>', 'optimizer steps per method', '60')
      .option('--lr <x>', `one peak learning rate for every method (default per method: ${LR_HELP})`)
      .option('--batch <n>', 'sequences per step (default: 16 on the built-in task, 4 with --model)')
      .option('--seq-len <n>', 'tokens per sequence with --model (default 128; the built-in task packs 32)')
      .option('--json <file>', 'also write the rows, with every step\'s loss, to this JSON file (atomically)')
      .option('--html <file>', 'also write an HTML page with the loss curves and the table (atomically)')
      .option('--force', 'replace the --json or --html file if it exists'),
    true,
  ).action(async (f: CompareFlags) => {
    const methods = f.methods.split(',').map((m) => m.trim()).filter((m) => m !== '');
    checkMethods(methods);
    const options = perMethodOptionValues(methods, f.set);
    const { model, data, eval: held } = f;
    if (model === undefined && (data !== undefined || held !== undefined)) throw new LowrankError('E_USAGE', '--data and --eval need --model (without it the built-in task is used)');
    if (model !== undefined && (data === undefined || held === undefined)) throw new LowrankError('E_USAGE', '--model needs --data <train.jsonl> and --eval <eval.jsonl>');
    if (model === undefined && f.seqLen !== undefined) throw new LowrankError('E_USAGE', '--seq-len needs --model (the built-in task packs 32 tokens)');
    const steps = integerFlag('--steps', f.steps, 1);
    const settings = {
      methods,
      options,
      steps,
      rank: integerFlag('--rank', f.rank, 1),
      lr: f.lr === undefined ? undefined : positiveFlag('--lr', f.lr),
      batch: f.batch === undefined ? undefined : integerFlag('--batch', f.batch, 1),
    };
    const seqLen = integerFlag('--seq-len', f.seqLen ?? '128', 2);
    for (const out of [f.json, f.html]) {
      if (out !== undefined) await checkOutput(out, f.force);
    }
    const task = model === undefined || data === undefined || held === undefined ? undefined : await folderTask(model, data, held, seqLen);
    const what = task === undefined ? 'built-in model (Llama, 0.84M parameters) on the addition task ("12 plus 7 is" → " 19.")' : `${model} on ${data} (held out: ${held})`;
    process.stdout.write(`${what}: ${methods.join(', ')}, rank ${settings.rank}, ${steps} steps each\n`);
    const width = Math.max(...methods.map((m) => m.length));
    let bar: Progress | undefined;
    const rows = await compareMethods({
      ...settings,
      task,
      onStep: (method, step, total, loss) => {
        bar ??= progress(method.padEnd(width), total);
        bar.tick(1, `loss ${loss.toFixed(3)}`);
        if (step === total) {
          bar.stop();
          bar = undefined;
        }
      },
    }).finally(() => bar?.stop());
    const { header, cells, right } = compareTable(rows, formatCount);
    process.stdout.write(`\n${table(header, cells, right)}\n`);
    if (f.json !== undefined) {
      const text = JSON.stringify({ model: model ?? 'builtin', data, eval: held, steps, rank: settings.rank, rows }, null, 2) + '\n';
      await writeFileAtomic(f.json, (fh) => fh.writeFile(text), { overwrite: f.force === true });
      process.stdout.write(`\nwrote ${f.json}\n`);
    }
    if (f.html !== undefined) {
      const html = await compareHtml(rows, { note: `${what}; rank ${settings.rank}, ${steps} steps, the same seed and data for every method` });
      await writeFileAtomic(f.html, (fh) => fh.writeFile(html), { overwrite: f.force === true });
      process.stdout.write(`${f.json === undefined ? '\n' : ''}wrote ${f.html}\n`);
    }
  });
}
