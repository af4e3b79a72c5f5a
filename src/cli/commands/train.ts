/**
 * `lowrank train --model <dir> --data <train.jsonl> --method lora|dora|pissa|milora|olora|soma|svfit|loldu --rank r
 * --steps N --out <adapter dir>` and `lowrank eval --model <dir> [--adapter <dir>] --data <file>`:
 * adapter training of a Llama-family or GPT-2 model folder with its tokenizer.json, and evaluation.
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { openModel } from '../../io/hf.js';
import { DEFAULT_TARGETS, loadCausalLm } from '../../nn/causalLm.js';
import { loadTokenizer } from '../../train/tokenizer.js';
import { pack, readJsonl } from '../../train/data.js';
import { attachAdapter, evaluate, loadAdapterInto, saveTrainedAdapter, train, trainableCount, trainableMethods } from '../../train/loop.js';
import { loadCheckpoint, saveCheckpoint } from '../../train/checkpoint.js';
import { parseLayerTargets } from '../../tools/targets.js';
import { progress, type Progress } from '../progress.js';
import { integerFlag, positiveFlag } from '../parse.js';
import { methodOptionValues, withMethodOptions } from '../methodOptions.js';

const int = integerFlag;
const positive = positiveFlag;

interface TrainFlags {
  model: string;
  data: string;
  eval?: string;
  method: string;
  rank: string;
  alpha?: string;
  rslora?: boolean;
  targets?: string;
  steps: string;
  batch: string;
  seqLen: string;
  accumulate: string;
  lr: string;
  warmup: string;
  clip: string;
  weightDecay: string;
  seed: string;
  out: string;
  force?: boolean;
  checkpoint?: string;
  checkpointEvery: string;
  resume?: boolean;
  set?: string[];
}

/** Adds the commands to the program. */
export function register(program: Command): void {
  withMethodOptions(
    program
      .command('train')
    .description('train a low-rank adapter on a Llama-family or GPT-2 model folder (with tokenizer.json) and write it as a PEFT adapter folder')
    .requiredOption('--model <dir>', 'model folder with config.json, weights and tokenizer.json')
    .requiredOption('--data <file>', 'training JSONL: {"text": ...} or {"prompt": ..., "completion": ...} per line')
    .option('--eval <file>', 'evaluation JSONL (loss and perplexity before and after)')
    .option('--method <name>', `${trainableMethods().join(', ')}`, 'lora')
    .requiredOption('--rank <r>', 'adapter rank')
    .option('--alpha <a>', 'lora_alpha (default: 2·rank)')
    .option('--rslora', 'rank-stabilized scaling alpha/√r instead of alpha/r')
    .option('--targets <list|all-linear|regex>', "layers (default: PEFT's for the family: q_proj,v_proj for Llama, c_attn for GPT-2)")
    .option('--steps <n>', 'optimizer steps', '100')
    .option('--batch <n>', 'sequences per micro-batch', '4')
    .option('--seq-len <n>', 'tokens per sequence', '128')
    .option('--accumulate <n>', 'micro-batches per step', '1')
    .option('--lr <x>', 'peak learning rate (AdamW)', '2e-3')
    .option('--warmup <n>', 'warmup steps', '10')
    .option('--clip <x>', 'gradient-norm clip', '1')
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', '0')
    .option('--seed <n>', 'seed (init, shuffling)', '0')
    .requiredOption('--out <dir>', 'adapter folder (written atomically)')
    .option('--force', 'replace the output folder if it exists')
    .option('--checkpoint <file>', 'save the adapter and optimizer state to this .safetensors file as training goes')
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--resume', 'continue from --checkpoint (same options and data): the result equals an uninterrupted run')
  )
    .action(async (f: TrainFlags) => {
      const rank = int('--rank', f.rank, 1);
      const alpha = f.alpha === undefined ? 2 * rank : positive('--alpha', f.alpha);
      const steps = int('--steps', f.steps, 1);
      const seqLen = int('--seq-len', f.seqLen, 2);
      const batch = int('--batch', f.batch, 1);
      const targets = f.targets === undefined ? undefined : parseLayerTargets(f.targets);
      const weightDecay = Number(f.weightDecay);
      if (!(weightDecay >= 0)) throw new LowrankError('E_USAGE', `--weight-decay must be a number ≥ 0, not '${f.weightDecay}'`);
      const opts = { method: f.method, rank, alpha, useRslora: f.rslora === true, weightDecay, steps, batch, accumulate: int('--accumulate', f.accumulate, 1), lr: positive('--lr', f.lr), warmup: int('--warmup', f.warmup, 0), clip: positive('--clip', f.clip), seed: int('--seed', f.seed, 0), options: methodOptionValues(f.method, f.set) };
      const tok = await loadTokenizer(f.model);
      const data = pack(await readJsonl(f.data, tok), seqLen);
      const evalData = f.eval === undefined ? undefined : pack(await readJsonl(f.eval, tok), seqLen);
      const folder = await openModel(f.model);
      const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
      const adapter = await attachAdapter(m, { ...opts, targets: targets ?? DEFAULT_TARGETS[m.family] });
      if (f.resume === true && f.checkpoint === undefined) throw new LowrankError('E_USAGE', '--resume needs --checkpoint <file>');
      const every = int('--checkpoint-every', f.checkpointEvery, 1);
      const start = f.resume === true ? await loadCheckpoint(f.checkpoint as string, adapter) : 0;
      const before = evalData === undefined ? undefined : await evaluate(m, evalData, batch);
      let bar: Progress | undefined;
      const t0 = performance.now();
      const losses: number[] = [];
      const onStep = ({ step, loss, tokens }: { step: number; loss: number; tokens: number }): void => {
        bar ??= progress('training', steps - start);
        bar.tick(1, `loss ${loss.toFixed(4)} | ${Math.round((tokens - start * opts.accumulate * batch * seqLen) / ((performance.now() - t0) / 1000))} tok/s | step ${step}`);
      };
      try {
        for (let from = start; from < steps; from = Math.min(steps, from + every)) {
          losses.push(...(await train(m, adapter, data, { ...opts, stopAt: from + every, onStep }, from)));
          if (f.checkpoint !== undefined) await saveCheckpoint(f.checkpoint, adapter, Math.min(steps, from + every));
        }
      } finally {
        bar?.stop();
      }
      if (losses.length === 0) throw new LowrankError('E_USAGE', `the checkpoint is already at step ${start} of ${steps}`);
      const after = evalData === undefined ? undefined : await evaluate(m, evalData, batch);
      const saved = await saveTrainedAdapter(adapter, f.out, { baseModel: f.model, overwrite: f.force === true });
      const seconds = (performance.now() - t0) / 1000;
      const trainable = trainableCount(adapter);
      const lines = [`${f.method} r ${rank}: loss ${losses[0].toFixed(4)} → ${losses[losses.length - 1].toFixed(4)} in ${steps} steps (${seconds.toFixed(1)} s), ${trainable} trainable parameters`];
      if (before !== undefined && after !== undefined) lines.push(`eval loss ${before.loss.toFixed(4)} → ${after.loss.toFixed(4)}, perplexity ${before.perplexity.toFixed(2)} → ${after.perplexity.toFixed(2)}`);
      lines.push(`wrote ${f.out} (${saved.peft_type === 'LORA' ? 'a PEFT LoRA' : `a ${String(saved.peft_type)} adapter`} on ${f.model})`);
      process.stdout.write(lines.join('\n') + '\n');
    });

  program
    .command('eval')
    .description('loss and perplexity of a Llama-family or GPT-2 model (optionally with a PEFT LoRA or DoRA adapter) on a JSONL file')
    .requiredOption('--model <dir>', 'model folder with tokenizer.json')
    .option('--adapter <dir>', 'an adapter folder: PEFT LoRA or DoRA, or any method lowrank trains (VeRA, NOLA, ...)')
    .requiredOption('--data <file>', 'JSONL file')
    .option('--seq-len <n>', 'tokens per sequence', '128')
    .option('--batch <n>', 'sequences per batch', '4')
    .option('--json', 'print {"loss", "perplexity", "tokens"} as JSON')
    .action(async (f: { model: string; adapter?: string; data: string; seqLen: string; batch: string; json?: boolean }) => {
      const tok = await loadTokenizer(f.model);
      const data = pack(await readJsonl(f.data, tok), int('--seq-len', f.seqLen, 2));
      if (data.length === 0) throw new LowrankError('E_USAGE', 'the data is shorter than one sequence (lower --seq-len)', { file: f.data });
      const folder = await openModel(f.model);
      const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
      if (f.adapter !== undefined) await loadAdapterInto(m, f.adapter);
      const r = await evaluate(m, data, int('--batch', f.batch, 1));
      process.stdout.write(f.json === true ? JSON.stringify({ loss: r.loss, perplexity: r.perplexity, tokens: r.tokens }) + '\n' : `loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)} over ${r.tokens} tokens\n`);
    });
}
