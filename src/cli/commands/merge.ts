/**
 * `lowrank merge --base <model> --adapter <dir> [--adapter <dir> ...] [--weight w ...] --out <dir>`:
 * merge LoRA adapters into a base model (PEFT's merge_and_unload), or with `--combine` combine them
 * into one adapter (PEFT's add_weighted_adapter: cat, svd, linear as the exact weighted sum, and
 * ties / dare_linear / dare_ties / magnitude_prune on the updates, truncated by SVD).
 */
import { Option, type Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import type { MajoritySign } from '../../tools/taskArithmetic.js';
import { combineAdapters, mergeAdapters, COMBINE_METHODS, type CombineMethod, type CombineResult, type MergeResult } from '../../tools/merge.js';
import { table } from '../format.js';
import { progress, type Progress } from '../progress.js';

interface MergeFlags {
  base?: string;
  adapter: string[];
  weight: string[];
  combine?: string;
  rank?: string;
  density?: string;
  majoritySign?: string;
  seed?: string;
  out: string;
  force?: boolean;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseNumber(flag: string, text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x)) throw new LowrankError('E_USAGE', `${flag} must be a finite number, got '${text}'`);
  return x;
}

function parseRank(text: string): number {
  const r = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `--rank must be a positive integer, got '${text}'`);
  return r;
}

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('merge')
    .description('merge LoRA adapters into a base model (W + Σ w·scaling·B·A, PEFT merge_and_unload), or combine them into one adapter with --combine')
    .option('--base <model>', 'base model folder (not needed with --combine)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder (repeat for several)', collect, [])
    .option('--weight <w>', "weight of each adapter's update, in the order of --adapter (repeat; default 1 each)", collect, [])
    .option('--combine <method>', `combine the adapters into one adapter instead: ${COMBINE_METHODS.join(', ')}`)
    .option('--rank <r>', 'rank of the svd combination (default: full rank) and of ties/dare/magnitude_prune (default: the largest adapter rank)')
    .option('--density <d>', 'ties, dare_linear, dare_ties, magnitude_prune: fraction of each update\'s entries kept, in (0, 1]')
    .addOption(new Option('--majority-sign <method>', 'ties, dare_ties: sign election by the sum of the updates (total) or of their signs (frequency)').choices(['total', 'frequency']))
    .option('--seed <n>', 'dare_linear, dare_ties: seed of the random drops (default 0)')
    .requiredOption('--out <dir>', 'output model (or, with --combine, adapter) folder, written atomically')
    .option('--force', 'replace the output folder if it exists')
    .option('--json', 'print the result as JSON')
    .action(async (opts: MergeFlags) => {
      if (opts.adapter.length === 0) throw new LowrankError('E_USAGE', 'give at least one --adapter');
      if (opts.weight.length > 0 && opts.weight.length !== opts.adapter.length) {
        throw new LowrankError('E_USAGE', `${opts.weight.length} --weight for ${opts.adapter.length} --adapter: give one weight per adapter, or none`);
      }
      const weights = opts.weight.map((w) => parseNumber('--weight', w));
      const adapters = opts.adapter.map((dir, i) => ({ dir, weight: weights[i] ?? 1 }));
      const rank = opts.rank === undefined ? undefined : parseRank(opts.rank);
      let bar: Progress | undefined;
      const tick = (title: string) => (name: string, _i: number, n: number): void => {
        bar ??= progress(title, n);
        bar.tick(1, name);
      };
      if (opts.combine !== undefined) {
        if (!(COMBINE_METHODS as readonly string[]).includes(opts.combine)) throw new LowrankError('E_USAGE', `--combine must be one of ${COMBINE_METHODS.join(', ')}, got '${opts.combine}'`);
        if (opts.base !== undefined) throw new LowrankError('E_USAGE', '--combine writes an adapter: --base is not used');
        const density = opts.density === undefined ? undefined : parseNumber('--density', opts.density);
        const seed = opts.seed === undefined ? undefined : parseNumber('--seed', opts.seed);
        const majoritySign = opts.majoritySign as MajoritySign | undefined;
        const res = await combineAdapters({ adapters, combine: opts.combine as CombineMethod, rank, density, majoritySign, seed, out: opts.out, overwrite: opts.force === true, onModule: tick('combining') }).finally(() => bar?.stop());
        process.stdout.write(opts.json === true ? JSON.stringify(combineJson(res), null, 2) + '\n' : renderCombine(res, opts.combine));
        return;
      }
      if (opts.base === undefined) throw new LowrankError('E_USAGE', 'give --base <model> (or --combine to write an adapter)');
      if (rank !== undefined) throw new LowrankError('E_USAGE', '--rank is only used with --combine');
      if (opts.density !== undefined || opts.majoritySign !== undefined || opts.seed !== undefined) throw new LowrankError('E_USAGE', '--density, --majority-sign and --seed are only used with --combine');
      const res = await mergeAdapters({ base: opts.base, adapters, out: opts.out, overwrite: opts.force === true, onTensor: tick('merging') }).finally(() => bar?.stop());
      process.stdout.write(opts.json === true ? JSON.stringify(res, null, 2) + '\n' : renderMerge(res));
    });
}

function combineJson(res: CombineResult): object {
  return { out: res.out, r: res.config.r, modules: res.modules };
}

function renderMerge(res: MergeResult): string {
  const replaced = res.replaced.length > 0 ? `, ${res.replaced.length} replaced from modules_to_save` : '';
  return `wrote ${res.out}: ${res.merged.length} weights merged${replaced}, ${res.unchanged} unchanged, ${res.shards.length} shard${res.shards.length === 1 ? '' : 's'}\n`;
}

function renderCombine(res: CombineResult, method: string): string {
  const rows = res.modules.map((m) => [m.name, String(m.rank), m.relError.toExponential(2)]);
  return [table(['module', 'rank', 'rel. error'], rows, [1, 2]), '', `wrote ${res.out}: ${res.modules.length} modules combined by ${method}, r = lora_alpha = ${res.config.r} (scaling 1)`, ''].join('\n');
}
