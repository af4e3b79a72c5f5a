/** `lowrank params --model <dir> --rank r [--method name ...]`: trainable parameters per adapter method. */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { methodNames } from '../../methods/registry.js';
import { adapterParams } from '../../tools/params.js';
import { parseLayerTargets } from '../../tools/targets.js';
import { table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { methodOptionValues, withMethodOptions } from '../methodOptions.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  withMethodOptions(
    program
      .command('params')
    .description("trainable parameters of each adapter method on a model's layers, next to LoRA's at the same rank (from the shapes; no weights read)")
    .requiredOption('--model <dir>', 'model folder')
    .requiredOption('--rank <r>', 'adapter rank')
    .option('--method <name>', `a method (repeat; default all: ${methodNames().join(', ')})`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--targets <list|all-linear|regex>', "module-name suffixes ('q_proj,v_proj'), all-linear (default), or a regex of whole module names")
    .option('--json', 'print the counts as JSON'),
  ).action(async (opts: { model: string; rank: string; method: string[]; targets?: string; json?: boolean; set: string[] }) => {
      const rank = Number(opts.rank);
      if (!/^\s*\d+\s*$/.test(opts.rank) || rank < 1) throw new LowrankError('E_USAGE', `--rank must be a positive integer, got '${opts.rank}'`);
      const targets = opts.targets === undefined ? 'all-linear' : parseLayerTargets(opts.targets);
      const methods = opts.method.length > 0 ? opts.method : undefined;
      if (opts.set.length > 0 && methods?.length !== 1) throw new LowrankError('E_USAGE', '--set needs exactly one --method');
      const options = methods?.length === 1 ? { [methods[0]]: methodOptionValues(methods[0], opts.set) } : undefined;
      const res = await adapterParams({ model: opts.model, rank, methods, targets, options });
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(res, null, 2) + '\n');
        return;
      }
      const rows = [['lora', formatCount(res.lora), '0', '1.00x'], ...res.methods.map((m) => [m.method, formatCount(m.trainable), formatCount(m.frozen), `${m.fewerThanLora.toFixed(2)}x`])];
      process.stdout.write(`${res.layers} layers, model ${formatCount(res.modelParams)} parameters, rank ${rank}\n\n${table(['method', 'trainable', 'frozen in adapter', 'fewer than LoRA'], rows, [1, 2, 3])}\n`);
    });
}
