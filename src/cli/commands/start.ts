/**
 * `lowrank start [--out <dir>] [--steps N]`: the main job on the built-in default (what `npm start`
 * runs): LoRA and PiSSA fine-tunes of the built-in model side by side, a results table, both
 * adapters in PEFT format and an HTML report of what each changed.
 */
import type { Command } from 'commander';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LowrankError } from '../../core/errors.js';
import { MAIN_JOB, runMainJob, type Accuracy } from '../../train/mainJob.js';
import { table } from '../format.js';
import { progress, type Progress } from '../progress.js';

export function register(program: Command): void {
  program
    .command('start')
    .description('the main job on the built-in model: fine-tune it with LoRA and PiSSA side by side on a new task, write both adapters and what each changed')
    .option('--out <dir>', 'output folder (default: a new temporary folder)')
    .option('--steps <n>', 'optimizer steps per method', String(MAIN_JOB.steps))
    .action(async (opts: { out?: string; steps: string }) => {
      const steps = Number(opts.steps);
      if (!Number.isInteger(steps) || steps < 1) throw new LowrankError('E_USAGE', `--steps must be a positive integer, got '${opts.steps}'`);
      const out = opts.out ?? (await mkdtemp(join(tmpdir(), 'lowrank-start-')));
      process.stdout.write(`built-in model (Llama, 0.84M parameters, trained on generated sentences and counting) → a new task: "12 plus 7 is" → " 19."\n`);
      const bars = new Map<string, Progress>();
      const { rows, heldOut, baseAnswers, baseAccuracy, page } = await runMainJob({
        out,
        steps,
        onStep: (method, step, total, loss) => {
          let bar = bars.get(method);
          if (bar === undefined) {
            bar = progress(method.padEnd(5), total);
            bars.set(method, bar);
          }
          bar.tick(1, `loss ${loss.toFixed(3)}`);
          if (step === total) bar.stop();
          else if (process.stderr.isTTY !== true && step % 100 === 0) process.stdout.write(`${method} step ${step}/${total}: loss ${loss.toFixed(3)}\n`);
        },
      });
      const pct = (a: Accuracy): string => `${((100 * a.correct) / a.total).toFixed(0)} %`;
      const body = rows.map((r) => [r.method, r.trainLoss.toFixed(3), `${r.evalBefore.toFixed(3)} → ${r.evalAfter.toFixed(3)}`, `${pct(r.accuracyBefore)} → ${pct(r.accuracyAfter)}`, String(r.trainable), `${r.seconds.toFixed(1)} s`]);
      process.stdout.write(`\n${table(['method', 'final train loss', 'held-out loss', `exact match (${baseAccuracy.total} held-out sums)`, 'trainable', 'time'], body, [1, 3, 4, 5])}\n\n`);
      const examples = heldOut.slice(0, 4).map((e, i) => [`${e.prompt} …`, JSON.stringify(e.completion), JSON.stringify(baseAnswers[i]), ...rows.map((r) => JSON.stringify(r.answers[i]))]);
      process.stdout.write(`${table(['held-out prompt', 'expected', 'base', ...rows.map((r) => r.method)], examples, [])}\n\n`);
      for (const r of rows) process.stdout.write(`${r.method}: adapter ${r.adapter} (PEFT), report ${r.report}\n`);
      process.stdout.write(`comparison page (loss curves, accuracy, examples): ${page}\n`);
    });
}
