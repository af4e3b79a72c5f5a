/**
 * `lowrank init --model <dir> --method <name> --rank r --out <dir>`: an adapter initialized from the
 * weights (PiSSA, MiLoRA, OLoRA, ...) as a PEFT adapter folder, plus the residual model folder for
 * methods that change the base.
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { methodNames } from '../../methods/registry.js';
import { initAdapter, type InitAdapterResult } from '../../tools/init.js';
import { parseLayerTargets } from '../../tools/targets.js';
import { table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';
import { fractionFlag, integerFlag } from '../parse.js';
import { methodOptionValues, withMethodOptions } from '../methodOptions.js';

interface InitFlags {
  model: string;
  method: string;
  rank: string;
  alpha?: string;
  rslora?: boolean;
  targets?: string;
  niter?: string;
  seed?: string;
  energy?: string;
  elbow?: boolean;
  out: string;
  residualOut?: string;
  force?: boolean;
  json?: boolean;
  set?: string[];
}


/** Adds the command to the program. */
export function register(program: Command): void {
  withMethodOptions(
    program
      .command('init')
    .description('initialize an adapter from the weights (PiSSA, MiLoRA, OLoRA, ...) as a PEFT adapter folder, and the residual model it trains over')
    .requiredOption('--model <dir>', 'model folder (not modified)')
    .requiredOption('--method <name>', `one of: ${methodNames().join(', ')}`)
    .requiredOption('--rank <r>', 'adapter rank')
    .option('--alpha <a>', 'lora_alpha (default: the rank, i.e. scaling 1)')
    .option('--rslora', 'rsLoRA scaling alpha/√r')
    .option('--targets <list|all-linear|regex>', "module-name suffixes ('q_proj,v_proj'), all-linear (every 2-D weight but embeddings and the head; the default), or a regex of whole module names")
    .option('--niter <n>', 'randomized SVD with n power iterations (PEFT pissa_niter_n); default exact')
    .option('--seed <n>', 'seed of randomized SVDs and random inits (default 0)')
    .option('--energy <f>', 'svfit, soka: each layer\'s rank keeps this fraction of Σσ² (svfit default 0.99), capped at --rank')
    .option('--elbow', 'soka: each layer\'s rank at the elbow of its Kronecker spectrum, capped at --rank')
    .requiredOption('--out <dir>', 'adapter folder (written atomically)')
    .option('--residual-out <dir>', 'residual model folder (default: <out>-residual)')
    .option('--force', 'replace existing output folders')
    .option('--json', 'print the result as JSON')
  )
    .action(async (opts: InitFlags) => {
      const alpha = opts.alpha === undefined ? undefined : Number(opts.alpha);
      if (alpha !== undefined && !(Number.isFinite(alpha) && alpha > 0)) throw new LowrankError('E_USAGE', `--alpha must be a positive number, got '${opts.alpha}'`);
      let bar: Progress | undefined;
      const res = await initAdapter({
        model: opts.model,
        method: opts.method,
        rank: integerFlag('--rank', opts.rank, 1),
        alpha,
        useRslora: opts.rslora === true,
        targets: opts.targets === undefined ? undefined : parseLayerTargets(opts.targets),
        niter: opts.niter === undefined ? undefined : integerFlag('--niter', opts.niter, 0),
        seed: opts.seed === undefined ? undefined : integerFlag('--seed', opts.seed, 0),
        energy: opts.energy === undefined ? undefined : fractionFlag('--energy', opts.energy),
        elbow: opts.elbow === true,
        options: methodOptionValues(opts.method, opts.set),
        out: opts.out,
        residualOut: opts.residualOut,
        overwrite: opts.force === true,
        onTensor: (name, _i, n) => {
          bar ??= progress(opts.method, n);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      process.stdout.write(opts.json === true ? JSON.stringify(res, null, 2) + '\n' : render(res));
    });
}

function render(res: InitAdapterResult): string {
  const rows = res.layers.map((l) => [l.name, `${l.shape[0]}×${l.shape[1]}`, String(l.rank), formatCount(l.trainable)]);
  const residual = res.residualOut === undefined ? '' : ` and the residual model ${res.residualOut} (load the adapter over it)`;
  return [table(['module', 'shape', 'rank', 'trainable'], rows, [2, 3]), '', `wrote ${res.method} adapter ${res.out} (r = ${String(res.config.r)}${res.config.lora_alpha === undefined ? '' : `, lora_alpha = ${String(res.config.lora_alpha)}`}, ${formatCount(res.trainable)} trainable parameters)${residual}`, ''].join('\n');
}
