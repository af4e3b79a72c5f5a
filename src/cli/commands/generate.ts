/**
 * `lowrank generate --model <dir> [--adapter <dir> ...] --prompt <text> | --data <prompts.jsonl>`:
 * text from a Llama-family or GPT-2 model folder, with adapters applied unmerged. One prompt streams
 * its answer as it comes; several adapters answer in turn over one loaded base (hot swap).
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { openModel } from '../../io/hf.js';
import { loadCausalLm } from '../../nn/causalLm.js';
import { loadTokenizer } from '../../train/tokenizer.js';
import { readPrompts } from '../../train/data.js';
import { activate, loadAdapter, type LoadedAdapter } from '../../infer/adapters.js';
import { generateText, type TextOptions } from '../../infer/text.js';
import { fractionFlag, integerFlag } from '../parse.js';

interface GenerateFlags {
  model: string;
  adapter: string[];
  prompt?: string;
  data?: string;
  maxNewTokens: string;
  temperature: string;
  topK: string;
  topP: string;
  seed: string;
  stop?: string;
  batch: string;
  json?: boolean;
}

/** The model's end-of-sequence ids: the tokenizer's and config.json's eos_token_id (a number or a list). */
function eosIds(config: Readonly<Record<string, unknown>> | undefined, tokenizerEos: number | undefined): number[] {
  const c = config?.eos_token_id;
  const fromConfig = typeof c === 'number' ? [c] : Array.isArray(c) ? c.filter((x): x is number => typeof x === 'number') : [];
  return [...new Set([...(tokenizerEos === undefined ? [] : [tokenizerEos]), ...fromConfig])];
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text with a Llama-family or GPT-2 model folder (with tokenizer.json), adapters applied unmerged')
    .requiredOption('--model <dir>', 'model folder with config.json, weights and tokenizer.json')
    .option('--adapter <dir>', 'an adapter folder (PEFT LoRA/DoRA or any method lowrank trains); repeat to compare adapters side by side', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--prompt <text>', 'one prompt (its answer streams as it comes)')
    .option('--data <file>', 'JSONL of {"prompt": ...} records, generated in batches')
    .option('--max-new-tokens <n>', 'new tokens per prompt at most', '64')
    .option('--temperature <t>', '0: greedy; above 0: sampling', '0')
    .option('--top-k <k>', 'sample from the k most likely tokens (0: all)', '0')
    .option('--top-p <p>', 'sample from the most likely tokens up to this probability', '1')
    .option('--seed <n>', 'seed of the sampling', '0')
    .option('--stop <text>', 'end an answer where this text appears')
    .option('--batch <n>', 'prompts per batch with --data', '8')
    .option('--json', 'print one JSON object per prompt (and adapter): prompt_ids, generated_ids, text, tokens_per_second')
    .action(async (f: GenerateFlags) => {
      if ((f.prompt === undefined) === (f.data === undefined)) throw new LowrankError('E_USAGE', 'give exactly one of --prompt <text> and --data <prompts.jsonl>');
      const temperature = Number(f.temperature);
      if (f.temperature.trim() === '' || !(temperature >= 0) || !Number.isFinite(temperature)) throw new LowrankError('E_USAGE', `--temperature must be a number ≥ 0, got '${f.temperature}'`);
      const tok = await loadTokenizer(f.model);
      const prompts = f.data !== undefined ? await readPrompts(f.data) : [{ prompt: f.prompt ?? '' }];
      const folder = await openModel(f.model);
      const config = folder.config;
      const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
      const adapters: (LoadedAdapter<'f32'> | undefined)[] = f.adapter.length === 0 ? [undefined] : [];
      for (const dir of f.adapter) adapters.push(await loadAdapter(m, dir));
      const bos = config?.bos_token_id;
      const stream = f.prompt !== undefined && f.json !== true;
      const opts: TextOptions = {
        maxNewTokens: integerFlag('--max-new-tokens', f.maxNewTokens, 0),
        temperature,
        topK: integerFlag('--top-k', f.topK, 0),
        topP: fractionFlag('--top-p', f.topP),
        seed: integerFlag('--seed', f.seed, 0),
        stopIds: eosIds(config, tok.eosId),
        stopText: f.stop,
        bosId: typeof bos === 'number' ? bos : tok.eosId,
        batch: integerFlag('--batch', f.batch, 1),
        onText: stream ? (_, delta) => process.stdout.write(delta) : undefined,
      };
      const label = (a: LoadedAdapter<'f32'> | undefined): string => (a === undefined ? 'base' : a.name);
      const width = Math.max(...adapters.map((a) => label(a).length));
      const results = [];
      for (const a of adapters) {
        activate(m, a === undefined ? [] : [a]);
        if (stream) process.stdout.write(`${adapters.length > 1 ? `[${label(a).padEnd(width)}] ` : ''}${prompts[0].prompt}`);
        const answers = await generateText(m, tok, prompts.map((p) => p.prompt), opts);
        if (stream) process.stdout.write('\n');
        results.push({ adapter: a, answers });
      }
      if (stream) return;
      for (const [i, p] of prompts.entries()) {
        for (const { adapter, answers } of results) {
          const { text, generation: g } = answers[i];
          if (f.json === true) {
            const record = { prompt: p.prompt, ...(f.adapter.length > 0 ? { adapter: adapter?.dir } : {}), prompt_ids: [...g.promptIds], generated_ids: [...g.generatedIds], text, finish: g.finish, tokens_per_second: g.seconds > 0 ? g.generatedIds.length / g.seconds : 0 };
            process.stdout.write(JSON.stringify(record) + '\n');
          } else process.stdout.write(`${results.length > 1 ? `[${label(adapter).padEnd(width)}] ` : ''}${p.prompt}${text}\n`);
        }
      }
    });
}
